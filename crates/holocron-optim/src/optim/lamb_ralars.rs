//! LAMB and RaLars: one step ([`TrustStep`]) of Adam's moments, a direction from them
//! (Adam's, scaled by a factor, or the corrected momentum alone), decoupled L2 decay and the
//! layer-wise trust ratio. The two optimizers differ only in the direction at each step
//! count, so they share their state, their rule and its kernels; each keeps its own
//! configuration (RaLars has no `bias_correction`, LAMB no rectification).

use burn::optim::LearningRate;
use burn::tensor::{Tensor, backend::Backend};

use super::{optimizer_config, simple_optimizer};
use crate::Execution;
use crate::blocks::{AdamMoments, AdamMomentsState, L2Decay, TrustRatio, VectorMask};
use crate::fused;
use holocron_optim_core::rules;
use holocron_optim_core::rules::lamb::Direction;

holocron_optim_core::__fields_lamb!(optimizer_config [
    /// Configuration of [`Lamb`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `betas` | `beta_1`, `beta_2` | 0.9, 0.999 |
    /// | `eps` | `epsilon` | 1e-8 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | `scale_clip` | `scale_clip` | (0, 10) |
    /// | (none) | `bias_correction` | true |
    ///
    /// # Example
    ///
    /// ```
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::{Linear, LinearConfig};
    /// use holocron_optim::LambConfig;
    ///
    /// type B = Autodiff<NdArray>;
    /// let optim = LambConfig::new().with_weight_decay(1e-2).init::<B, Linear<B>>();
    /// # let _ = optim;
    /// let err = LambConfig::new().with_beta_2(1.0).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "LambConfig.beta_2 = 1.0: expected a value in [0, 1)");
    /// ```
    pub struct LambConfig for Lamb: holocron_optim_core::rules::lamb::Lamb
]);

/// LAMB: layer-wise adaptive moments, from ["Large batch optimization for deep learning:
/// training BERT in 76 minutes"](https://arxiv.org/abs/1904.00962).
///
/// For each parameter tensor, with `t >= 1`:
///
/// ```text
/// m <- beta_1 m + (1 - beta_1) g          m_hat = m / (1 - beta_1^t)
/// v <- beta_2 v + (1 - beta_2) g^2        v_hat = v / (1 - beta_2^t)
/// u  = m_hat / (sqrt(v_hat) + eps) + lambda p
/// p <- p - lr * clamp(‖p‖, lo, hi) / ‖u‖ * u      (ratio 1 when either norm is 0)
/// ```
///
/// With `bias_correction = false`, `m_hat = m` and `v_hat = v`.
///
/// With `exclude_vectors_from_weight_decay` a rank-1 tensor (a bias, a normalisation
/// scale) takes `lambda = 0`; with `exclude_vectors_from_trust_ratio` its ratio is 1 (the
/// SimCLR, BYOL and BERT convention, optax's masks; [`VectorMask`](crate::blocks::VectorMask)).
///
/// # Differences from holocron
///
/// holocron 0.3.0 does not bias-correct the moments; `bias_correction = false` reproduces
/// it exactly. Its documentation's `‖r_t + θ_t‖` is read as `‖r_t + λθ_t‖`, as its code does.
#[derive(Clone, Debug)]
pub struct Lamb {
    step: TrustStep,
}

/// State of [`Lamb`]: step count and Adam moments.
pub type LambState<B, const D: usize> = AdamMomentsState<B, D>;

impl LambConfig {
    fn build_unchecked(&self) -> Lamb {
        Lamb {
            step: TrustStep::new(self.rule().trust(), self.execution),
        }
    }
}

simple_optimizer! { Lamb, LambState,
    step: |optim, lr, tensor, grad, state| {
                let (tensor, moments) = optim
            .step
            .step(lr, tensor, grad, state, |_| Direction::ADAM);
        (tensor, Some(moments))
    },
    to_device: |state, device| state.to_device(device),
    shapes: |state| state.shapes(),
    step_count: |state| Some(state.time),
}

holocron_optim_core::__fields_ralars!(optimizer_config [
    /// Configuration of [`RaLars`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `betas` | `beta_1`, `beta_2` | 0.9, 0.999 |
    /// | `eps` | `epsilon` | 1e-8 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | `force_adaptive_momentum` | `force_adaptive_momentum` | false |
    /// | `scale_clip` | `scale_clip` | (0, 10) |
    ///
    /// # Example
    ///
    /// ```
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::{Linear, LinearConfig};
    /// use holocron_optim::RaLarsConfig;
    ///
    /// type B = Autodiff<NdArray>;
    /// let optim = RaLarsConfig::new()
    ///     .with_force_adaptive_momentum(true)
    ///     .init::<B, Linear<B>>();
    /// # let _ = optim;
    /// ```
    pub struct RaLarsConfig for RaLars: holocron_optim_core::rules::lamb::RaLars
]);

/// RaLars: rectified Adam ([RAdam](https://arxiv.org/abs/1908.03265)) with the LARS
/// layer-wise trust ratio ([LARS](https://arxiv.org/abs/1708.03888)).
///
/// For each parameter tensor, with `t >= 1` and `m`, `v` Adam's moments:
///
/// ```text
/// rho_inf = 2 / (1 - beta_2) - 1
/// rho_t   = rho_inf - 2 t beta_2^t / (1 - beta_2^t)
/// u = r_t * m_hat / (sqrt(v_hat) + eps)   if rho_t > 4, with RAdam's r_t
/// u = m_hat / (sqrt(v_hat) + eps)         else, if force_adaptive_momentum
/// u = m_hat                               else
/// u <- u + lambda p
/// p <- p - lr * clamp(‖p‖, lo, hi) / ‖u‖ * u      (ratio 1 when either norm is 0)
/// ```
///
/// With `exclude_vectors_from_weight_decay` a rank-1 tensor (a bias, a normalisation
/// scale) takes `lambda = 0`; with `exclude_vectors_from_trust_ratio` its ratio is 1 (the
/// SimCLR, BYOL and BERT convention, optax's masks; [`VectorMask`](crate::blocks::VectorMask)).
///
/// This is holocron 0.3.0 exactly, including its `rho_t > 4` threshold (the RAdam authors'
/// code uses `rho_t >= 5`, PyTorch's `RAdam` `rho_t > 5`).
#[derive(Clone, Debug)]
pub struct RaLars {
    step: TrustStep,
    rule: rules::lamb::RaLars,
}

/// State of [`RaLars`]: step count and Adam moments.
pub type RaLarsState<B, const D: usize> = AdamMomentsState<B, D>;

impl RaLarsConfig {
    fn build_unchecked(&self) -> RaLars {
        let rule = self.rule();
        RaLars {
            step: TrustStep::new(rule.trust(), self.execution),
            rule,
        }
    }
}

simple_optimizer! { RaLars, RaLarsState,
    step: |optim, lr, tensor, grad, state| {
                let direction = |time| optim.rule.direction_at(time);
        let (tensor, moments) = optim.step.step(lr, tensor, grad, state, direction);
        (tensor, Some(moments))
    },
    to_device: |state, device| state.to_device(device),
    shapes: |state| state.shapes(),
    step_count: |state| Some(state.time),
}

/// The shared part of [`Lamb`] and [`RaLars`].
#[derive(Clone, Debug)]
struct TrustStep {
    pub core: rules::lamb::Trust,
    pub moments: AdamMoments,
    pub epsilon: f64,
    pub decay: L2Decay,
    pub trust: TrustRatio,
    pub mask: VectorMask,
    pub execution: Execution,
}

impl TrustStep {
    /// The step of the given (validated) hyperparameters.
    pub fn new(h: rules::lamb::Trust, execution: Execution) -> Self {
        TrustStep {
            core: h,
            moments: AdamMoments::new(h.beta_1, h.beta_2, false, h.bias_correction),
            epsilon: h.epsilon,
            decay: L2Decay::new(h.weight_decay),
            trust: TrustRatio::new(h.scale_clip),
            mask: VectorMask {
                weight_decay: h.mask.weight_decay,
                trust_ratio: h.mask.trust_ratio,
            },
            execution,
        }
    }

    /// One step; `direction` gives the direction at a step count (this step included).
    pub fn step<B: Backend, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        moments: Option<AdamMomentsState<B, D>>,
        direction: impl Fn(usize) -> Direction,
    ) -> (Tensor<B, D>, AdamMomentsState<B, D>) {
        let amsgrad = self.moments.second.amsgrad;
        let (pack, unpack) = AdamMomentsState::packing(amsgrad);
        let stepped = fused::rule_step::<rules::lamb::TrustRule, B, D, _>(
            self.execution,
            amsgrad,
            |time| self.core.coefficients(lr, time, direction(time), D),
            tensor,
            grad,
            moments,
            pack,
            unpack,
        );
        let (tensor, grad, moments) = match stepped {
            Ok((tensor, Some(moments))) => return (tensor, moments),
            Ok((_, None)) => unreachable!("the moments are always kept"),
            Err(declined) => declined,
        };
        let moments = self.moments.update(grad, moments);
        let Direction { adaptive, factor } = direction(moments.time);
        let update = if adaptive {
            let update = self.moments.direction(&moments, self.epsilon);
            if factor == 1.0 {
                update
            } else {
                update.mul_scalar(factor)
            }
        } else {
            self.moments.first(&moments)
        };
        let update = self.mask.decay(D, self.decay).apply(update, &tensor);
        let update = if self.mask.trusts(D) {
            self.trust.scale(&tensor, update)
        } else {
            update
        };
        (tensor.sub(update.mul_scalar(lr)), moments)
    }
}
