//! LAMB and RaLars: one step ([`TrustStep`]) of Adam's moments, a direction from them
//! (Adam's, scaled by a factor, or the corrected momentum alone), decoupled L2 decay and the
//! layer-wise trust ratio. The two optimizers differ only in the direction at each step
//! count, so they share their state, their rule and its kernels; each keeps its own
//! configuration (RaLars has no `bias_correction`, LAMB no rectification).

use burn::optim::LearningRate;
use burn::tensor::{Tensor, backend::Backend};

use super::{optimizer_config, simple_optimizer};
use crate::Execution;
use crate::blocks::with_moment_coefficients;
use crate::blocks::{
    AdamMoments, AdamMomentsState, L2Decay, Rectification, TrustRatio, VectorMask,
};
use crate::fused;
use crate::rule::{dual, two_pass_rule};

optimizer_config! {
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
    pub struct LambConfig for Lamb {
        /// Coefficient of the first moment.
        beta_1: f64 = 0.9 => beta,
        /// Coefficient of the second moment.
        beta_2: f64 = 0.999 => beta,
        /// Added to the denominator.
        epsilon: f64 = 1e-8 => positive,
        /// Decoupled weight decay `lambda` added to the update before the trust ratio.
        weight_decay: f64 = 0.0 => non_negative,
        /// Bounds `(lo, hi)` of the parameter norm in the trust ratio.
        scale_clip: (f64, f64) = "(0.0, 10.0)" => clip_range,
        /// Whether the moments are bias-corrected; `false` reproduces holocron 0.3.0.
        bias_correction: bool = true,
        /// Whether rank-1 tensors (biases, normalisation scales) take no weight decay, as
        /// SimCLR, BYOL and BERT train; `false` (holocron) decays every tensor.
        exclude_vectors_from_weight_decay: bool = false,
        /// Whether rank-1 tensors take the plain step, unscaled by the trust ratio, as SimCLR,
        /// BYOL and BERT train; `false` (holocron) scales every tensor.
        exclude_vectors_from_trust_ratio: bool = false,
    }
}

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
            step: TrustStep::new(TrustHyperparameters {
                beta_1: self.beta_1,
                beta_2: self.beta_2,
                epsilon: self.epsilon,
                weight_decay: self.weight_decay,
                scale_clip: self.scale_clip,
                bias_correction: self.bias_correction,
                mask: self.vector_mask(),
                execution: self.execution,
            }),
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

optimizer_config! {
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
    pub struct RaLarsConfig for RaLars {
        /// Coefficient of the first moment.
        beta_1: f64 = 0.9 => beta,
        /// Coefficient of the second moment.
        beta_2: f64 = 0.999 => beta,
        /// Added to the denominator.
        epsilon: f64 = 1e-8 => positive,
        /// Decoupled weight decay `lambda` added to the update before the trust ratio.
        weight_decay: f64 = 0.0 => non_negative,
        /// While the variance is not tractable, use Adam's adaptive step instead of plain
        /// momentum.
        force_adaptive_momentum: bool = false,
        /// Bounds `(lo, hi)` of the parameter norm in the trust ratio.
        scale_clip: (f64, f64) = "(0.0, 10.0)" => clip_range,
        /// Whether rank-1 tensors (biases, normalisation scales) take no weight decay, as
        /// SimCLR, BYOL and BERT train; `false` (holocron) decays every tensor.
        exclude_vectors_from_weight_decay: bool = false,
        /// Whether rank-1 tensors take the plain step, unscaled by the trust ratio, as SimCLR,
        /// BYOL and BERT train; `false` (holocron) scales every tensor.
        exclude_vectors_from_trust_ratio: bool = false,
    }
}

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
    rectification: Rectification,
    force_adaptive_momentum: bool,
}

/// State of [`RaLars`]: step count and Adam moments.
pub type RaLarsState<B, const D: usize> = AdamMomentsState<B, D>;

impl RaLarsConfig {
    fn build_unchecked(&self) -> RaLars {
        RaLars {
            step: TrustStep::new(TrustHyperparameters {
                beta_1: self.beta_1,
                beta_2: self.beta_2,
                epsilon: self.epsilon,
                weight_decay: self.weight_decay,
                scale_clip: self.scale_clip,
                bias_correction: true,
                mask: self.vector_mask(),
                execution: self.execution,
            }),
            rectification: Rectification {
                beta_2: self.beta_2,
            },
            force_adaptive_momentum: self.force_adaptive_momentum,
        }
    }
}

simple_optimizer! { RaLars, RaLarsState,
    step: |optim, lr, tensor, grad, state| {
                let direction = |time| optim.direction_at(time);
        let (tensor, moments) = optim.step.step(lr, tensor, grad, state, direction);
        (tensor, Some(moments))
    },
    to_device: |state, device| state.to_device(device),
    shapes: |state| state.shapes(),
    step_count: |state| Some(state.time),
}

impl RaLars {
    /// The direction at step `time`: the rectified Adam direction, the plain one when
    /// forced, else the momentum alone.
    fn direction_at(&self, time: usize) -> Direction {
        match self.rectification.factor(time) {
            Some(factor) => Direction {
                adaptive: true,
                factor,
            },
            None => Direction {
                adaptive: self.force_adaptive_momentum,
                factor: 1.0,
            },
        }
    }
}

/// The mask of a configuration's two `exclude_vectors_from_*` fields.
macro_rules! vector_mask {
    ($($config:ident),*) => {$(
        impl $config {
            fn vector_mask(&self) -> VectorMask {
                VectorMask {
                    weight_decay: self.exclude_vectors_from_weight_decay,
                    trust_ratio: self.exclude_vectors_from_trust_ratio,
                }
            }
        }
    )*};
}
vector_mask!(LambConfig, RaLarsConfig);

/// The direction at one step count: `factor` times Adam's direction when `adaptive`, else
/// the bias-corrected momentum.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Direction {
    pub adaptive: bool,
    pub factor: f64,
}

impl Direction {
    /// Adam's direction (LAMB).
    pub const ADAM: Direction = Direction {
        adaptive: true,
        factor: 1.0,
    };
}

/// The shared part of [`Lamb`] and [`RaLars`].
#[derive(Clone, Debug)]
struct TrustStep {
    pub moments: AdamMoments,
    pub epsilon: f64,
    pub decay: L2Decay,
    pub trust: TrustRatio,
    pub mask: VectorMask,
    pub execution: Execution,
}

/// The hyperparameters LAMB and RaLars share.
struct TrustHyperparameters {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    pub scale_clip: (f64, f64),
    pub bias_correction: bool,
    pub mask: VectorMask,
    pub execution: Execution,
}

impl TrustStep {
    /// The step of the given (validated) hyperparameters.
    pub fn new(h: TrustHyperparameters) -> Self {
        TrustStep {
            moments: AdamMoments::new(h.beta_1, h.beta_2, false, h.bias_correction),
            epsilon: h.epsilon,
            decay: L2Decay::new(h.weight_decay),
            trust: TrustRatio::new(h.scale_clip),
            mask: h.mask,
            execution: h.execution,
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
        let stepped = fused::rule_step::<TrustRule, B, D, _>(
            self.execution,
            amsgrad,
            |time| self.coefficients(lr, time, direction(time), D),
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

    /// The coefficients of step `time` (this step included) of a tensor of rank `rank`.
    fn coefficients(
        &self,
        lr: LearningRate,
        time: usize,
        direction: Direction,
        rank: usize,
    ) -> cpu::Coefficients<f64> {
        let adaptive = if direction.adaptive { 1.0 } else { 0.0 };
        with_moment_coefficients!(
            self.moments,
            time,
            cpu::Coefficients {
                epsilon: self.epsilon,
                adaptive,
                fixed: 1.0 - adaptive,
                factor: direction.factor,
                weight_decay: self.mask.decay(rank, self.decay).weight_decay,
                lo: self.trust.lo,
                hi: self.trust.hi,
                trusted: if self.mask.trusts(rank) { 1.0 } else { 0.0 },
                lr,
            }
        )
    }
}

/// The rule: the moments and the norms `‖p‖`, `‖u‖`, then the scaled update.
struct TrustRule;

two_pass_rule! {
    TrustRule {
        coefficients: Coefficients, cells: Cells, terms: Norms, scalars: Scalars,
        advance: advance, terms_of: norms, scalars_of: scalars, update: update, lanes: 3,
        optional_lanes: 1, update_stores: 1,
    }
}

dual! {
    use crate::rule::blocks;
    /// The scalars of one step; `adaptive` is 1 for Adam's direction and 0 for the
    /// momentum alone, `fixed = 1 - adaptive`.
    struct Coefficients {
        beta_1, fresh_1, beta_2, fresh_2, inverse_correction_1, inverse_sqrt_correction_2,
        epsilon, adaptive, fixed, factor, weight_decay, lo, hi, trusted, lr,
    }
    /// One element: the parameter, `m`, `v` and (AMSGrad) `v_max`.
    struct Cells { p, m, v, v_max }
    /// `‖p‖²` and `‖u‖²`.
    struct Norms { pp, uu }
    /// The trust ratio.
    struct Scalars { ratio }
    ;
    #[cube]
    fn advance(c: Coefficients<F>, g: F, x: Cells<F>) flags(amsgrad) -> Cells<F> {
        let m = ema::<F>(x.m, g, c.beta_1, c.fresh_1);
        let v = ema::<F>(x.v, g * g, c.beta_2, c.fresh_2);
        Cells::<F> { p: x.p, m, v, v_max: running_max::<F>(x.v_max, v, amsgrad) }
    }

    #[cube]
    /// `u = factor m_hat / (den a + 1 - a) + lambda p`: exact for `a` 0 or 1, no branch.
    fn direction(c: Coefficients<F>, x: Cells<F>) flags(amsgrad) -> F {
        let second = running_max::<F>(x.v_max, x.v, amsgrad);
        let denominator = denominator::<F>(second, c.inverse_sqrt_correction_2, c.epsilon);
        let scaled = x.m * c.inverse_correction_1 / (denominator * c.adaptive + c.fixed);
        l2::<F>(scaled * c.factor, x.p, c.weight_decay)
    }

    #[cube]
    fn norms(c: Coefficients<F>, _g: F, x: Cells<F>) flags(amsgrad) -> Norms<F> {
        let u = direction::<F>(c, x, amsgrad);
        Norms::<F> { pp: x.p * x.p, uu: u * u }
    }

    #[cube]
    fn scalars(c: Coefficients<F>, t: Norms<F>, _carried: F) -> Scalars<F> {
        let ratio = trust_ratio::<F>(F::sqrt(t.pp), F::sqrt(t.uu), c.lo, c.hi, c.trusted);
        Scalars::<F> { ratio }
    }

    #[cube]
    fn update(c: Coefficients<F>, s: Scalars<F>, _g: F, x: Cells<F>) flags(amsgrad) -> Cells<F> {
        let u = direction::<F>(c, x, amsgrad);
        Cells::<F> { p: x.p - u * s.ratio * c.lr, m: x.m, v: x.v, v_max: x.v_max }
    }
}
