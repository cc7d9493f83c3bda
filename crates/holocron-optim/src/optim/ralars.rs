use burn::config::Config;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::record::Record;
use burn::tensor::backend::Backend;

use super::trust::{Direction, TrustHyperparameters, TrustStep};
use super::{config_entry_points, simple_optimizer};
use crate::Execution;
use crate::blocks::{AdamMomentsState, Rectification};

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
    /// Which implementation runs the step (see [`Execution`]); all compute the same update.
    #[config(default = "Execution::Auto")]
    pub execution: Execution,
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
    step: TrustStep,
    rectification: Rectification,
    force_adaptive_momentum: bool,
}

/// State of [`RaLars`].
#[derive(Record, Clone, Debug)]
pub struct RaLarsState<B: Backend, const D: usize> {
    /// Step count and Adam moments.
    pub moments: AdamMomentsState<B, D>,
}

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
                execution: self.execution,
            }),
            rectification: Rectification {
                beta_2: self.beta_2,
            },
            force_adaptive_momentum: self.force_adaptive_momentum,
        }
    }
}

config_entry_points!(RaLarsConfig, RaLars, validate: |check, config| {
    check.betas(&[("beta_1", config.beta_1), ("beta_2", config.beta_2)])?;
    check.non_negatives(&[
        ("epsilon", config.epsilon),
        ("weight_decay", config.weight_decay),
    ])?;
    check.clip_range("scale_clip", config.scale_clip)
});

simple_optimizer! { RaLars, RaLarsState,
    step: |optim, lr, tensor, grad, state| {
        let moments = state.map(|s| s.moments);
        let direction = |time| optim.direction_at(time);
        let (tensor, moments) = optim.step.step(lr, tensor, grad, moments, direction);
        (tensor, Some(RaLarsState { moments }))
    },
    to_device: |state, device| RaLarsState { moments: state.moments.to_device(device) },
    shapes: |state| state.moments.shapes(),
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
