use super::{optimizer_config, simple_optimizer};
use crate::Execution;
use crate::blocks::{AdamMoments, AdamMomentsState, L2Decay};
use crate::fused;
use holocron_optim_core::rules;

holocron_optim_core::__fields_adabelief!(optimizer_config [
    /// Configuration of [`AdaBelief`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `betas` | `beta_1`, `beta_2` | 0.9, 0.999 |
    /// | `eps` | `epsilon` | 1e-8 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | `amsgrad` | `amsgrad` | false |
    ///
    /// # Example
    ///
    /// ```
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::{Linear, LinearConfig};
    /// use holocron_optim::AdaBeliefConfig;
    ///
    /// type B = Autodiff<NdArray>;
    /// let optim = AdaBeliefConfig::new().with_amsgrad(true).init::<B, Linear<B>>();
    /// # let _ = optim;
    /// ```
    pub struct AdaBeliefConfig for AdaBelief: holocron_optim_core::rules::adabelief::AdaBelief
]);

/// AdaBelief, from ["AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
/// Gradients"](https://arxiv.org/abs/2010.07468).
///
/// For each parameter tensor, with `t >= 1`:
///
/// ```text
/// g <- g + lambda p
/// m <- beta_1 m + (1 - beta_1) g
/// s <- beta_2 s + (1 - beta_2) (g - m)^2 + eps      (AMSGrad: s_max <- max(s_max, s), used below)
/// p <- p - lr / (1 - beta_1^t) * m / (sqrt(s or s_max) / sqrt(1 - beta_2^t) + eps)
/// ```
///
/// # Differences from holocron
///
/// holocron 0.3.0 does not add `eps` to the stored belief `s`; the paper (Algorithm 2) and
/// the official code do, and so does this crate.
#[derive(Clone, Debug)]
pub struct AdaBelief {
    rule: rules::adabelief::AdaBelief,
    moments: AdamMoments,
    epsilon: f64,
    decay: L2Decay,
    execution: Execution,
}

/// State of [`AdaBelief`]: step count, first moment and belief (in the second moment's place).
pub type AdaBeliefState<B, const D: usize> = AdamMomentsState<B, D>;

impl AdaBeliefConfig {
    fn build_unchecked(&self) -> AdaBelief {
        AdaBelief {
            rule: self.rule(),
            execution: self.execution,
            moments: AdamMoments::new(self.beta_1, self.beta_2, self.amsgrad, true),
            epsilon: self.epsilon,
            decay: L2Decay::new(self.weight_decay),
        }
    }
}

simple_optimizer! { AdaBelief, AdaBeliefState,
    step: |optim, lr, tensor, grad, state| {
        let amsgrad = optim.moments.second.amsgrad;
        let (pack, unpack) = AdamMomentsState::packing(amsgrad);
        let stepped = fused::rule_step::<rules::adabelief::AdaBeliefRule, B, D, _>(
            optim.execution,
            amsgrad,
            |time| optim.rule.coefficients(lr, time),
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
        let moments = optim.moments.update_belief(grad, moments, optim.epsilon);
        let update = optim.moments.direction(&moments, optim.epsilon);
        (
            tensor.sub(update.mul_scalar(lr)),
            Some(moments),
        )
    },
    to_device: |state, device| state.to_device(device),
    shapes: |state| state.shapes(),
    step_count: |state| Some(state.time),
}
