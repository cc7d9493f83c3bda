use burn::config::Config;
use burn::optim::{LearningRate, SimpleOptimizer, grad_clipping::GradientClippingConfig};
use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

use super::config_entry_points;
use crate::blocks::{AdamMoments, AdamMomentsState, L2Decay, SecondMoment};
use crate::checkpoint::StateLayout;
use crate::error::{Checker, ConfigError};
use crate::fused::rules::{AdamRule, L2Rule, MomentLanes};
use crate::fused::{self, Kernel, Lanes, Real, Step};

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
#[derive(Config, Debug)]
pub struct AdaBeliefConfig {
    /// Coefficient of the first moment (`[0, 1)`).
    #[config(default = 0.9)]
    pub beta_1: f64,
    /// Coefficient of the belief (second) moment (`[0, 1)`).
    #[config(default = 0.999)]
    pub beta_2: f64,
    /// Added to the belief every step and to the denominator (`>= 0`).
    #[config(default = 1e-8)]
    pub epsilon: f64,
    /// L2 weight decay `lambda`, added to the gradient (`>= 0`).
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Whether the denominator uses the running maximum of the belief (AMSGrad).
    #[config(default = false)]
    pub amsgrad: bool,
    /// Whether to run the fused in-place step where the backend has one (ndarray in `f32`
    /// and `f64`; CubeCL kernels on WGPU and CUDA in `f32`); `false` always runs Burn's
    /// composed tensor operations. Both compute the same update.
    #[config(default = true)]
    pub fused: bool,
    /// Gradient clipping applied by the adaptor before the step.
    pub grad_clipping: Option<GradientClippingConfig>,
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
    fused: bool,
}

/// State of [`AdaBelief`].
#[derive(Record, Clone, Debug)]
pub struct AdaBeliefState<B: Backend, const D: usize> {
    /// Step count, first moment and belief.
    pub moments: AdamMomentsState<B, D>,
}

impl AdaBeliefConfig {
    /// Checks every hyperparameter against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = Checker::new("AdaBeliefConfig");
        check.beta("beta_1", self.beta_1)?;
        check.beta("beta_2", self.beta_2)?;
        check.non_negative("epsilon", self.epsilon)?;
        check.non_negative("weight_decay", self.weight_decay)
    }

    fn build_unchecked(&self) -> AdaBelief {
        AdaBelief {
            fused: self.fused,
            moments: AdamMoments {
                beta_1: self.beta_1,
                second: SecondMoment {
                    beta: self.beta_2,
                    amsgrad: self.amsgrad,
                },
                bias_correction: true,
            },
            epsilon: self.epsilon,
            decay: L2Decay {
                weight_decay: self.weight_decay,
            },
        }
    }
}

config_entry_points!(AdaBeliefConfig, AdaBelief);

impl<B: Backend> SimpleOptimizer<B> for AdaBelief {
    type State<const D: usize> = AdaBeliefState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let moments = state.map(|s| s.moments);
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        let (tensor, grad, moments) =
            match fused::cube::attempt(self.fused, tensor, grad, moments, |t, g, s| {
                self.cube_step(lr, t, g, s)
            }) {
                Ok((tensor, moments)) => {
                    return (tensor, moments.map(|moments| AdaBeliefState { moments }));
                }
                Err(refused) => refused,
            };
        if self.fused && fused::supported(&tensor, &grad) {
            let amsgrad = self.moments.second.amsgrad;
            let (tensor, moments) = fused::moments_step(self, lr, amsgrad, tensor, grad, moments);
            return (tensor, Some(AdaBeliefState { moments }));
        }
        let grad = self.decay.apply(grad, &tensor);
        let moments = self.moments.update_belief(grad, moments, self.epsilon);
        let update = self.moments.direction(&moments, self.epsilon);
        (
            tensor.sub(update.mul_scalar(lr)),
            Some(AdaBeliefState { moments }),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        AdaBeliefState {
            moments: state.moments.to_device(device),
        }
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl AdaBelief {
    /// The step as one CubeCL kernel; the tensors come back when it cannot run.
    fn cube_step<B: Backend, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        moments: Option<AdamMomentsState<B, D>>,
    ) -> fused::cube::CubeStep<B, D, AdamMomentsState<B, D>> {
        let amsgrad = self.moments.second.amsgrad;
        let coefficients = |time| {
            let (beta_1, beta_2) = (self.moments.beta_1, self.moments.second.beta);
            let (correction_1, correction_2) = self.moments.corrections(time);
            vec![
                self.decay.weight_decay,
                beta_1,
                1.0 - beta_1,
                beta_2,
                1.0 - beta_2,
                self.epsilon,
                1.0 / correction_2.sqrt(),
                self.epsilon,
                1.0 / correction_1,
                lr,
            ]
        };
        let rule = fused::cube::Rule::AdaBelief { amsgrad };
        fused::cube::moments_step(rule, amsgrad, coefficients, tensor, grad, moments)
    }
}

impl<B: Backend> StateLayout<B> for AdaBelief {
    const NAME: &'static str = "AdaBelief";

    fn state_shapes<const D: usize>(
        state: &AdaBeliefState<B, D>,
    ) -> Vec<(&'static str, Vec<usize>)> {
        state.moments.shapes()
    }
}

impl Kernel for Step<'_, AdaBelief> {
    fn amsgrad(&self) -> bool {
        self.optim.moments.second.amsgrad
    }

    fn run<E: Real, const AMSGRAD: bool>(&self, mut lanes: Lanes<'_, E>) {
        let optim = self.optim;
        let rule = AdamRule::<E>::new(&optim.moments, self.time, optim.epsilon, optim.epsilon);
        let decay = L2Rule::<E>::new(&optim.decay);
        let lr = E::of(self.lr);
        lanes.pass(
            |Lanes {
                 param,
                 grad,
                 mut state,
             }| {
                let mut moments = MomentLanes::<E, AMSGRAD>::new(&mut state, param.len());
                let (n, grad) = (param.len(), &grad[..param.len()]);
                for i in 0..n {
                    let (p, g) = (&mut param[i], grad[i]);
                    let (m, v) = moments.update_belief(rule, i, decay.apply(g, *p));
                    *p = *p - rule.direction(m, v) * lr;
                }
                []
            },
        );
    }
}
