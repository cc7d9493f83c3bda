use burn::config::Config;
use burn::optim::{LearningRate, SimpleOptimizer, grad_clipping::GradientClippingConfig};
use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

use super::config_entry_points;
use crate::blocks::{
    AdamMoments, AdamMomentsState, L2Decay, ScaleInvariantProjection, SecondMoment,
};
use crate::checkpoint::StateLayout;
use crate::error::{Checker, ConfigError};
use crate::fused::rules::{AdamRule, L2Rule, MomentLanes};
use crate::fused::{self, Kernel, Lanes, Real, Step, sum_each};

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
#[derive(Config, Debug)]
pub struct AdamPConfig {
    /// Coefficient of the first moment (`[0, 1)`).
    #[config(default = 0.9)]
    pub beta_1: f64,
    /// Coefficient of the second moment (`[0, 1)`).
    #[config(default = 0.999)]
    pub beta_2: f64,
    /// Added to the denominator and to `‖p‖` in the projection (`>= 0`).
    #[config(default = 1e-8)]
    pub epsilon: f64,
    /// L2 weight decay `lambda`, added to the gradient (`>= 0`).
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Whether the denominator uses the running maximum of `v` (AMSGrad).
    #[config(default = false)]
    pub amsgrad: bool,
    /// Cosine threshold of the projection, divided by `sqrt(numel)` (`> 0`).
    #[config(default = 0.1)]
    pub delta: f64,
    /// Whether to run the fused in-place step where the backend has one (ndarray in `f32`
    /// and `f64`; CubeCL kernels on WGPU and CUDA in `f32`); `false` always runs Burn's
    /// composed tensor operations. Both compute the same update.
    #[config(default = true)]
    pub fused: bool,
    /// Gradient clipping applied by the adaptor before the step.
    pub grad_clipping: Option<GradientClippingConfig>,
}

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
    moments: AdamMoments,
    epsilon: f64,
    decay: L2Decay,
    projection: ScaleInvariantProjection,
    fused: bool,
}

/// State of [`AdamP`].
#[derive(Record, Clone, Debug)]
pub struct AdamPState<B: Backend, const D: usize> {
    /// Step count and Adam moments.
    pub moments: AdamMomentsState<B, D>,
}

impl AdamPConfig {
    /// Checks every hyperparameter against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = Checker::new("AdamPConfig");
        check.beta("beta_1", self.beta_1)?;
        check.beta("beta_2", self.beta_2)?;
        check.non_negative("epsilon", self.epsilon)?;
        check.non_negative("weight_decay", self.weight_decay)?;
        check.positive("delta", self.delta)
    }

    fn build_unchecked(&self) -> AdamP {
        AdamP {
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
            projection: ScaleInvariantProjection {
                delta: self.delta,
                epsilon: self.epsilon,
            },
        }
    }
}

config_entry_points!(AdamPConfig, AdamP);

impl<B: Backend> SimpleOptimizer<B> for AdamP {
    type State<const D: usize> = AdamPState<B, D>;

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
                    return (tensor, moments.map(|moments| AdamPState { moments }));
                }
                Err(refused) => refused,
            };
        if self.fused && fused::supported(&tensor, &grad) {
            let amsgrad = self.moments.second.amsgrad;
            let (tensor, moments) = fused::moments_step(self, lr, amsgrad, tensor, grad, moments);
            return (tensor, Some(AdamPState { moments }));
        }
        let grad = self.decay.apply(grad, &tensor);
        let moments = self.moments.update(grad.clone(), moments);
        let update = self.moments.direction(&moments, self.epsilon);
        let update = self.projection.apply(&tensor, &grad, update);
        (
            tensor.sub(update.mul_scalar(lr)),
            Some(AdamPState { moments }),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        AdamPState {
            moments: state.moments.to_device(device),
        }
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl AdamP {
    /// The step as CubeCL kernels; the tensors come back when they cannot run.
    fn cube_step<B: Backend, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        moments: Option<AdamMomentsState<B, D>>,
    ) -> fused::cube::CubeStep<B, D, AdamMomentsState<B, D>> {
        let amsgrad = self.moments.second.amsgrad;
        let numel = tensor.shape().num_elements();
        let coefficients = |time| {
            let mut c = vec![self.decay.weight_decay];
            c.extend(fused::cube::adam_coefficients(
                &self.moments,
                time,
                self.epsilon,
            ));
            c.extend(self.projection.constants(numel));
            c.push(lr);
            c
        };
        let rule = fused::cube::Rule::AdamP { amsgrad };
        fused::cube::moments_step(rule, amsgrad, coefficients, tensor, grad, moments)
    }
}

impl<B: Backend> StateLayout<B> for AdamP {
    const NAME: &'static str = "AdamP";

    fn state_shapes<const D: usize>(state: &AdamPState<B, D>) -> Vec<(&'static str, Vec<usize>)> {
        state.moments.shapes()
    }
}

/// Two passes: the moments and the sums `p·p`, `g·g`, `p·g`, `p·u` that decide the
/// projection, then the (projected) update.
impl Kernel for Step<'_, AdamP> {
    fn amsgrad(&self) -> bool {
        self.optim.moments.second.amsgrad
    }

    fn run<E: Real, const AMSGRAD: bool>(&self, mut lanes: Lanes<'_, E>) {
        let optim = self.optim;
        let rule = AdamRule::<E>::new(&optim.moments, self.time, optim.epsilon, 0.0);
        let decay = L2Rule::<E>::new(&optim.decay);
        let [pp, gg, pg, pu] = lanes.pass(
            |Lanes {
                 param,
                 grad,
                 mut state,
             }| {
                let mut moments = MomentLanes::<E, AMSGRAD>::new(&mut state, param.len());
                let (n, grad) = (param.len(), &grad[..param.len()]);
                sum_each(n, |i| {
                    let (p, g) = (param[i], grad[i]);
                    let g = decay.apply(g, p);
                    let (m, v) = moments.update(rule, i, g);
                    let update = rule.direction(m, v);
                    [p * p, g * g, p * g, p * update]
                })
            },
        );
        let (norm, radial) = optim.projection.radial_of(lanes.len(), pp, gg, pg, pu);
        // `(p / norm) radial` as one product: a division per element costs more than the
        // memory traffic here.
        let radial = E::of(radial / norm);
        let lr = E::of(self.lr);
        lanes.pass(
            |Lanes {
                 param, mut state, ..
             }| {
                let moments = MomentLanes::<E, AMSGRAD>::new(&mut state, param.len());
                for (i, p) in param.iter_mut().enumerate() {
                    let (m, v) = moments.get(i);
                    let update = rule.direction(m, v) - *p * radial;
                    *p = *p - update * lr;
                }
                []
            },
        );
    }
}
