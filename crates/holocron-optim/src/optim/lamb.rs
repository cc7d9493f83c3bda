use burn::config::Config;
use burn::optim::{LearningRate, SimpleOptimizer, grad_clipping::GradientClippingConfig};
use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

use super::config_entry_points;
use crate::blocks::{AdamMoments, AdamMomentsState, L2Decay, SecondMoment, TrustRatio};
use crate::checkpoint::StateLayout;
use crate::error::{Checker, ConfigError};
use crate::fused::rules::{AdamRule, L2Rule};
#[cfg(any(feature = "wgpu", feature = "cuda"))]
use crate::fused::trust::CubeTrustStep;
use crate::fused::trust::{AdamDirection, trust_scaled_step};
use crate::fused::{self, Kernel, Lanes, Real, Step};

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
#[derive(Config, Debug)]
pub struct LambConfig {
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
    /// Bounds `(lo, hi)` of the parameter norm in the trust ratio.
    #[config(default = "(0.0, 10.0)")]
    pub scale_clip: (f64, f64),
    /// Whether the moments are bias-corrected; `false` reproduces holocron 0.3.0.
    #[config(default = true)]
    pub bias_correction: bool,
    /// Whether to run the fused in-place step where the backend has one (ndarray in `f32`
    /// and `f64`; CubeCL kernels on WGPU and CUDA in `f32`); `false` always runs Burn's
    /// composed tensor operations. Both compute the same update.
    #[config(default = true)]
    pub fused: bool,
    /// Gradient clipping applied by the adaptor before the step.
    pub grad_clipping: Option<GradientClippingConfig>,
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
/// # Differences from holocron
///
/// holocron 0.3.0 does not bias-correct the moments; `bias_correction = false` reproduces
/// it exactly. Its documentation's `‖r_t + θ_t‖` is read as `‖r_t + λθ_t‖`, as its code does.
#[derive(Clone, Debug)]
pub struct Lamb {
    moments: AdamMoments,
    epsilon: f64,
    decay: L2Decay,
    trust: TrustRatio,
    fused: bool,
}

/// State of [`Lamb`].
#[derive(Record, Clone, Debug)]
pub struct LambState<B: Backend, const D: usize> {
    /// Step count and Adam moments.
    pub moments: AdamMomentsState<B, D>,
}

impl LambConfig {
    /// Checks every hyperparameter against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = Checker::new("LambConfig");
        check.beta("beta_1", self.beta_1)?;
        check.beta("beta_2", self.beta_2)?;
        check.non_negative("epsilon", self.epsilon)?;
        check.non_negative("weight_decay", self.weight_decay)?;
        check.clip_range("scale_clip", self.scale_clip)
    }

    fn build_unchecked(&self) -> Lamb {
        Lamb {
            fused: self.fused,
            moments: AdamMoments {
                beta_1: self.beta_1,
                second: SecondMoment {
                    beta: self.beta_2,
                    amsgrad: false,
                },
                bias_correction: self.bias_correction,
            },
            epsilon: self.epsilon,
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

config_entry_points!(LambConfig, Lamb);

impl<B: Backend> SimpleOptimizer<B> for Lamb {
    type State<const D: usize> = LambState<B, D>;

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
                step.run(|_| (true, 1.0), lr, t, g, s)
            }) {
                Ok((tensor, moments)) => {
                    return (tensor, moments.map(|moments| LambState { moments }));
                }
                Err(refused) => refused,
            };
        if self.fused && fused::supported(&tensor, &grad) {
            let amsgrad = self.moments.second.amsgrad;
            let (tensor, moments) = fused::moments_step(self, lr, amsgrad, tensor, grad, moments);
            return (tensor, Some(LambState { moments }));
        }
        let moments = self.moments.update(grad, moments);
        let update = self
            .decay
            .apply(self.moments.direction(&moments, self.epsilon), &tensor);
        let update = self.trust.scale(&tensor, update);
        (
            tensor.sub(update.mul_scalar(lr)),
            Some(LambState { moments }),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        LambState {
            moments: state.moments.to_device(device),
        }
    }
}

impl<B: Backend> StateLayout<B> for Lamb {
    const NAME: &'static str = "Lamb";

    fn state_shapes<const D: usize>(state: &LambState<B, D>) -> Vec<(&'static str, Vec<usize>)> {
        state.moments.shapes()
    }
}

/// Two passes: the moments and the norms `‖p‖`, `‖u‖`, then the scaled update.
impl Kernel for Step<'_, Lamb> {
    fn amsgrad(&self) -> bool {
        self.optim.moments.second.amsgrad
    }

    fn run<E: Real, const AMSGRAD: bool>(&self, mut lanes: Lanes<'_, E>) {
        let optim = self.optim;
        let rule = AdamRule::<E>::new(&optim.moments, self.time, optim.epsilon, 0.0);
        let decay = L2Rule::<E>::new(&optim.decay);
        let direction = AdamDirection::adam(rule);
        trust_scaled_step::<E, AMSGRAD>(&mut lanes, rule, direction, decay, &optim.trust, self.lr);
    }
}
