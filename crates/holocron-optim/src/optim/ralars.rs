use burn::config::Config;
use burn::optim::{LearningRate, SimpleOptimizer, grad_clipping::GradientClippingConfig};
use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

use super::config_entry_points;
use crate::blocks::{
    AdamMoments, AdamMomentsState, L2Decay, Rectification, SecondMoment, TrustRatio,
};
use crate::checkpoint::StateLayout;
use crate::error::{Checker, ConfigError};
use crate::fused::rules::{AdamRule, L2Rule};
#[cfg(any(feature = "wgpu", feature = "cuda"))]
use crate::fused::trust::CubeTrustStep;
use crate::fused::trust::{AdamDirection, trust_scaled_step};
use crate::fused::{self, Kernel, Lanes, Real, Step};

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
#[derive(Config, Debug)]
pub struct RaLarsConfig {
    /// Coefficient of the first moment (`[0, 1)`).
    #[config(default = 0.9)]
    pub beta_1: f64,
    /// Coefficient of the second moment (`[0, 1)`).
    #[config(default = 0.999)]
    pub beta_2: f64,
    /// Added to the denominator (`>= 0`).
    #[config(default = 1e-8)]
    pub epsilon: f64,
    /// Decoupled weight decay `lambda` added to the update before the trust ratio (`>= 0`).
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// While the variance is not tractable, use Adam's adaptive step instead of plain
    /// momentum.
    #[config(default = false)]
    pub force_adaptive_momentum: bool,
    /// Bounds `(lo, hi)` of the parameter norm in the trust ratio.
    #[config(default = "(0.0, 10.0)")]
    pub scale_clip: (f64, f64),
    /// Whether to run the fused in-place step where the backend has one (ndarray in `f32`
    /// and `f64`; CubeCL kernels on WGPU and CUDA in `f32`); `false` always runs Burn's
    /// composed tensor operations. Both compute the same update.
    #[config(default = true)]
    pub fused: bool,
    /// Gradient clipping applied by the adaptor before the step.
    pub grad_clipping: Option<GradientClippingConfig>,
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
/// This is holocron 0.3.0 exactly, including its `rho_t > 4` threshold (the RAdam authors'
/// code uses `rho_t >= 5`, PyTorch's `RAdam` `rho_t > 5`).
#[derive(Clone, Debug)]
pub struct RaLars {
    moments: AdamMoments,
    rectification: Rectification,
    epsilon: f64,
    force_adaptive_momentum: bool,
    decay: L2Decay,
    trust: TrustRatio,
    fused: bool,
}

/// State of [`RaLars`].
#[derive(Record, Clone, Debug)]
pub struct RaLarsState<B: Backend, const D: usize> {
    /// Step count and Adam moments.
    pub moments: AdamMomentsState<B, D>,
}

impl RaLarsConfig {
    /// Checks every hyperparameter against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = Checker::new("RaLarsConfig");
        check.beta("beta_1", self.beta_1)?;
        check.beta("beta_2", self.beta_2)?;
        check.non_negative("epsilon", self.epsilon)?;
        check.non_negative("weight_decay", self.weight_decay)?;
        check.clip_range("scale_clip", self.scale_clip)
    }

    fn build_unchecked(&self) -> RaLars {
        RaLars {
            fused: self.fused,
            moments: AdamMoments {
                beta_1: self.beta_1,
                second: SecondMoment {
                    beta: self.beta_2,
                    amsgrad: false,
                },
                bias_correction: true,
            },
            rectification: Rectification {
                beta_2: self.beta_2,
            },
            epsilon: self.epsilon,
            force_adaptive_momentum: self.force_adaptive_momentum,
            decay: L2Decay {
                weight_decay: self.weight_decay,
            },
            trust: TrustRatio {
                lo: self.scale_clip.0,
                hi: self.scale_clip.1,
            },
        }
    }
}

config_entry_points!(RaLarsConfig, RaLars);

impl<B: Backend> SimpleOptimizer<B> for RaLars {
    type State<const D: usize> = RaLarsState<B, D>;

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
                let step = CubeTrustStep {
                    moments: &self.moments,
                    epsilon: self.epsilon,
                    decay: &self.decay,
                    trust: &self.trust,
                };
                step.run(|time| self.direction_at(time), lr, t, g, s)
            }) {
                Ok((tensor, moments)) => {
                    return (tensor, moments.map(|moments| RaLarsState { moments }));
                }
                Err(refused) => refused,
            };
        if self.fused && fused::supported(&tensor, &grad) {
            let amsgrad = self.moments.second.amsgrad;
            let (tensor, moments) = fused::moments_step(self, lr, amsgrad, tensor, grad, moments);
            return (tensor, Some(RaLarsState { moments }));
        }
        let moments = self.moments.update(grad, moments);
        let update = match self.rectification.factor(moments.time) {
            Some(r_t) => self
                .moments
                .direction(&moments, self.epsilon)
                .mul_scalar(r_t),
            None if self.force_adaptive_momentum => self.moments.direction(&moments, self.epsilon),
            None => self.moments.first(&moments),
        };
        let update = self.trust.scale(&tensor, self.decay.apply(update, &tensor));
        (
            tensor.sub(update.mul_scalar(lr)),
            Some(RaLarsState { moments }),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        RaLarsState {
            moments: state.moments.to_device(device),
        }
    }
}

impl RaLars {
    /// The direction at step `time` for the fused paths, as `(adaptive, factor)` of
    /// `AdamDirection::new`: the rectified Adam direction, the plain one when forced, else
    /// the momentum alone.
    fn direction_at(&self, time: usize) -> (bool, f64) {
        match self.rectification.factor(time) {
            Some(r) => (true, r),
            None => (self.force_adaptive_momentum, 1.0),
        }
    }
}

impl<B: Backend> StateLayout<B> for RaLars {
    const NAME: &'static str = "RaLars";

    fn state_shapes<const D: usize>(state: &RaLarsState<B, D>) -> Vec<(&'static str, Vec<usize>)> {
        state.moments.shapes()
    }
}

/// Two passes: the moments and the norms `‖p‖`, `‖u‖`, then the scaled update.
impl Kernel for Step<'_, RaLars> {
    fn amsgrad(&self) -> bool {
        self.optim.moments.second.amsgrad
    }

    fn run<E: Real, const AMSGRAD: bool>(&self, mut lanes: Lanes<'_, E>) {
        let optim = self.optim;
        let rule = AdamRule::<E>::new(&optim.moments, self.time, optim.epsilon, 0.0);
        let decay = L2Rule::<E>::new(&optim.decay);
        let (adaptive, factor) = optim.direction_at(self.time);
        let direction = AdamDirection::new(rule, adaptive, factor);
        trust_scaled_step::<E, AMSGRAD>(&mut lanes, rule, direction, decay, &optim.trust, self.lr);
    }
}
