use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

use super::{optimizer_config, simple_optimizer};
use crate::Execution;
use crate::blocks::{AdamMoments, AdamMomentsState, L2Decay, ema};
use crate::checkpoint::tensor_shape;
use crate::fused;
use holocron_optim_core::rules;

holocron_optim_core::__fields_ademamix!(optimizer_config [
    /// Configuration of [`AdEMAMix`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `betas` | `beta_1`, `beta_2`, `beta_3` | 0.9, 0.999, 0.9999 |
    /// | `alpha` | `alpha` | 5.0 |
    /// | `eps` | `epsilon` | 1e-8 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | (none; the paper's `T_alpha`, `T_beta3`) | `alpha_warmup`, `beta_3_warmup` | `None` |
    ///
    /// # Example
    ///
    /// ```
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::{Linear, LinearConfig};
    /// use holocron_optim::AdEMAMixConfig;
    ///
    /// type B = Autodiff<NdArray>;
    /// let optim = AdEMAMixConfig::new().with_alpha(2.0).init::<B, Linear<B>>();
    /// # let _ = optim;
    /// // The paper's recipe: both warm-ups over the whole run (here 10 000 steps).
    /// let optim = AdEMAMixConfig::new()
    ///     .with_alpha_warmup(Some(10_000))
    ///     .with_beta_3_warmup(Some(10_000))
    ///     .init::<B, Linear<B>>();
    /// # let _ = optim;
    /// ```
    pub struct AdEMAMixConfig for AdEMAMix: holocron_optim_core::rules::ademamix::AdEMAMix
]);

/// AdEMAMix, from ["The AdEMAMix Optimizer: Better, Faster, Older"](https://arxiv.org/abs/2409.03137).
///
/// For each parameter tensor, with `t >= 1`:
///
/// ```text
/// g   <- g + lambda p
/// m1  <- beta_1 m1 + (1 - beta_1) g
/// nu  <- beta_2 nu + (1 - beta_2) g^2
/// m2  <- beta_3 m2 + (1 - beta_3) g          (never bias-corrected)
/// p   <- p - lr (m1 / (1 - beta_1^t) + alpha m2) / (sqrt(nu) / sqrt(1 - beta_2^t) + eps)
/// ```
///
/// With warm-ups (the paper's Algorithm 1; both off by default, as in holocron), step `t`
/// uses `alpha(t)` and `beta_3(t)` in place of `alpha` and `beta_3`:
///
/// ```text
/// alpha(t)  = alpha * min(t / T_alpha, 1)
/// beta_3(t) = min(exp(ln(beta_1) ln(beta_3) / ((1 - t/T_beta3) ln(beta_3) + (t/T_beta3) ln(beta_1))), beta_3)
///                                                                  (beta_3 once t >= T_beta3)
/// ```
///
/// `beta_3(t)` moves the slow average's half-life `ln(0.5) / ln(beta)` linearly from
/// `beta_1`'s to `beta_3`'s. (The authors' PyTorch code adds `1e-8` to `beta` inside those
/// logarithms; the formula here is the paper's.)
///
/// This is holocron 0.3.0 exactly; its documentation's `(g_t - m_t)^2 + eps` second moment
/// is a typo for the `g^2` of its code.
#[derive(Clone, Debug)]
pub struct AdEMAMix {
    rule: rules::ademamix::AdEMAMix,
    moments: AdamMoments,
    epsilon: f64,
    decay: L2Decay,
    execution: Execution,
}

/// State of [`AdEMAMix`].
#[derive(Record, Clone, Debug)]
pub struct AdEMAMixState<B: Backend, const D: usize> {
    /// Step count, fast average `m1` and second moment `nu`.
    pub moments: AdamMomentsState<B, D>,
    /// The slow gradient average `m2`.
    pub slow_moment: Tensor<B, D>,
}

impl AdEMAMixConfig {
    fn build_unchecked(&self) -> AdEMAMix {
        AdEMAMix {
            rule: self.rule(),
            execution: self.execution,
            moments: AdamMoments::new(self.beta_1, self.beta_2, false, true),
            epsilon: self.epsilon,
            decay: L2Decay::new(self.weight_decay),
        }
    }
}

simple_optimizer! { AdEMAMix, AdEMAMixState,
    step: |optim, lr, tensor, grad, state| {
        let stepped = fused::rule_step::<rules::ademamix::AdEMAMixRule, B, D, _>(
            optim.execution,
            false,
            |time| optim.rule.coefficients(lr, time),
            tensor,
            grad,
            state,
            Self::lanes,
            |time, lanes| Some(Self::state(time, lanes)),
        );
        let (tensor, grad, state) = match stepped {
            Ok(stepped) => return stepped,
            Err(declined) => declined,
        };
        let grad = optim.decay.apply(grad, &tensor);
        let (moments, slow_moment) = match state {
            Some(s) => (Some(s.moments), Some(s.slow_moment)),
            None => (None, None),
        };
        let time = moments.as_ref().map_or(0, |m| m.time) + 1;
        let slow_moment = ema(slow_moment, grad.clone(), optim.rule.beta_3_at(time));
        let moments = optim.moments.update(grad, moments);
        let numerator = optim
            .moments
            .first(&moments)
            .add(slow_moment.clone().mul_scalar(optim.rule.alpha_at(time)));
        let update = numerator.div(optim.moments.denominator(&moments, optim.epsilon));
        let state = AdEMAMixState {
            moments,
            slow_moment,
        };
        (tensor.sub(update.mul_scalar(lr)), Some(state))
    },
    to_device: |state, device| {
        AdEMAMixState {
            moments: state.moments.to_device(device),
            slow_moment: state.slow_moment.to_device(device),
        }
    },
    shapes: |state| {
        {
            let mut shapes = state.moments.shapes();
            shapes.push(("slow_moment", tensor_shape(&state.slow_moment)));
            shapes
        }
    },
    step_count: |state| Some(state.moments.time),
}

impl AdEMAMix {
    /// The fused lanes `[m2, m1, nu]` and the step count; zeros and 0 before the first step.
    fn lanes<B: Backend, const D: usize>(
        state: Option<AdEMAMixState<B, D>>,
        grad: &Tensor<B, D>,
    ) -> (usize, Vec<Tensor<B, D>>) {
        let (moments, slow_moment) = match state {
            Some(s) => (Some(s.moments), s.slow_moment),
            None => (None, grad.zeros_like()),
        };
        let (time, moment_lanes) = AdamMomentsState::into_lanes(moments, grad, false);
        let mut lanes = vec![slow_moment];
        lanes.extend(moment_lanes);
        (time, lanes)
    }

    /// Back from [`Self::lanes`], with step count `time`.
    fn state<B: Backend, const D: usize>(
        time: usize,
        lanes: Vec<Tensor<B, D>>,
    ) -> AdEMAMixState<B, D> {
        let mut lanes = lanes.into_iter();
        let slow_moment = lanes.next().expect("slow-moment lane");
        AdEMAMixState {
            moments: AdamMomentsState::from_lanes(time, &mut lanes, false),
            slow_moment,
        }
    }
}
