use super::{optimizer_config, simple_optimizer};
use crate::Execution;
use crate::blocks::{AdamMoments, AdamMomentsState, L2Decay, ScaleInvariantProjection};
use crate::fused;
use holocron_optim_core::rules;

holocron_optim_core::__fields_adamp!(optimizer_config [
    /// Configuration of [`AdamP`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `betas` | `beta_1`, `beta_2` | 0.9, 0.999 |
    /// | `eps` | `epsilon` | 1e-8 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | `amsgrad` | `amsgrad` | false |
    /// | `delta` | `delta` | 0.1 |
    ///
    /// # Example
    ///
    /// ```
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::{Linear, LinearConfig};
    /// use holocron_optim::AdamPConfig;
    ///
    /// type B = Autodiff<NdArray>;
    /// let optim = AdamPConfig::new().with_delta(0.5).init::<B, Linear<B>>();
    /// # let _ = optim;
    /// ```
    pub struct AdamPConfig for AdamP: holocron_optim_core::rules::adamp::AdamP
]);

/// AdamP, from ["AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant
/// Weights"](https://arxiv.org/abs/2006.08217), as holocron implements it.
///
/// For each parameter tensor, with `t >= 1`:
///
/// ```text
/// g <- g + lambda p
/// m, v      Adam's moments of g (AMSGrad: v_max <- max(v_max, v))
/// u  = m / (1 - beta_1^t) / (sqrt(v or v_max) / sqrt(1 - beta_2^t) + eps)
/// if cos(p, g) < delta / sqrt(numel):     (one signed cosine over the whole tensor)
///     n = p / (‖p‖ + eps);   u <- u - (n·u) n
/// p <- p - lr u
/// ```
///
/// The official clovaai AdamP differs (absolute cosine, channel-wise test, `wd_ratio`); this
/// is holocron's variant, exactly.
#[derive(Clone, Debug)]
pub struct AdamP {
    rule: rules::adamp::AdamP,
    moments: AdamMoments,
    epsilon: f64,
    decay: L2Decay,
    projection: ScaleInvariantProjection,
    execution: Execution,
}

/// State of [`AdamP`]: step count and Adam moments.
pub type AdamPState<B, const D: usize> = AdamMomentsState<B, D>;

impl AdamPConfig {
    fn build_unchecked(&self) -> AdamP {
        AdamP {
            rule: self.rule(),
            execution: self.execution,
            moments: AdamMoments::new(self.beta_1, self.beta_2, self.amsgrad, true),
            epsilon: self.epsilon,
            decay: L2Decay::new(self.weight_decay),
            projection: ScaleInvariantProjection {
                delta: self.delta,
                epsilon: self.epsilon,
            },
        }
    }
}

simple_optimizer! { AdamP, AdamPState,
    step: |optim, lr, tensor, grad, state| {
        let amsgrad = optim.moments.second.amsgrad;
        let numel = tensor.shape().num_elements();
        let (pack, unpack) = AdamMomentsState::packing(amsgrad);
        let stepped = fused::rule_step::<rules::adamp::AdamPRule, B, D, _>(
            optim.execution,
            amsgrad,
            |time| optim.rule.coefficients(lr, time, numel),
            tensor,
            grad,
            state,
            pack,
            unpack,
        );
        let (tensor, grad, moments) = match stepped {
            Ok((tensor, moments)) => {
                return (tensor, moments);
            }
            Err(declined) => declined,
        };
        let grad = optim.decay.apply(grad, &tensor);
        let moments = optim.moments.update(grad.clone(), moments);
        let update = optim.moments.direction(&moments, optim.epsilon);
        let update = optim.projection.apply(&tensor, &grad, update);
        (
            tensor.sub(update.mul_scalar(lr)),
            Some(moments),
        )
    },
    to_device: |state, device| state.to_device(device),
    shapes: |state| state.shapes(),
    step_count: |state| Some(state.time),
}
