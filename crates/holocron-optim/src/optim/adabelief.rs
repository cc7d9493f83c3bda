use burn::optim::LearningRate;

use super::{optimizer_config, simple_optimizer};
use crate::Execution;
use crate::blocks::with_moment_coefficients;
use crate::blocks::{AdamMoments, AdamMomentsState, L2Decay};
use crate::fused;
use crate::rule::{dual, element_rule};

optimizer_config! {
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
    pub struct AdaBeliefConfig for AdaBelief {
        /// Coefficient of the first moment.
        beta_1: f64 = 0.9 => beta,
        /// Coefficient of the belief (second) moment.
        beta_2: f64 = 0.999 => beta,
        /// Added to the belief every step and to the denominator.
        epsilon: f64 = 1e-8 => positive,
        /// L2 weight decay `lambda`, added to the gradient.
        weight_decay: f64 = 0.0 => non_negative,
        /// Whether the denominator uses the running maximum of the belief (AMSGrad).
        amsgrad: bool = false,
    }
}

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
        let stepped = fused::rule_step::<AdaBeliefRule, B, D, _>(
            optim.execution,
            amsgrad,
            |time| optim.coefficients(lr, time),
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

impl AdaBelief {
    /// The coefficients of step `time` (this step included).
    fn coefficients(&self, lr: LearningRate, time: usize) -> cpu::Coefficients<f64> {
        with_moment_coefficients!(
            self.moments,
            time,
            cpu::Coefficients {
                weight_decay: self.decay.weight_decay,
                epsilon: self.epsilon,
                lr,
            }
        )
    }
}

/// AdaBelief's rule, one pass: the equations of [`AdaBelief`], element by element.
struct AdaBeliefRule;

element_rule! {
    AdaBeliefRule {
        coefficients: Coefficients, cells: Cells, update: update, lanes: 3, optional_lanes: 1,
    }
}

dual! {
    use crate::rule::blocks;
    /// The scalars of one step.
    struct Coefficients {
        weight_decay, beta_1, fresh_1, beta_2, fresh_2, inverse_correction_1,
        inverse_sqrt_correction_2, epsilon, lr,
    }
    /// One element: the parameter, `m`, `s` and (AMSGrad) `s_max`.
    struct Cells { p, m, s, s_max }
    ;
    #[cube]
    fn update(c: Coefficients<F>, g: F, x: Cells<F>) flags(amsgrad) -> Cells<F> {
        let g = l2::<F>(g, x.p, c.weight_decay);
        let m = ema::<F>(x.m, g, c.beta_1, c.fresh_1);
        let residual = g - m;
        // The paper's epsilon inside the belief, every step.
        let s = ema::<F>(x.s, residual * residual, c.beta_2, c.fresh_2) + c.epsilon;
        let s_max = running_max::<F>(x.s_max, s, amsgrad);
        let denominator = denominator::<F>(s_max, c.inverse_sqrt_correction_2, c.epsilon);
        let p = x.p - m * c.inverse_correction_1 / denominator * c.lr;
        Cells::<F> { p, m, s, s_max }
    }
}
