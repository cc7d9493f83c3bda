use super::trust::{Direction, TrustHyperparameters, TrustStep};
use super::{optimizer_config, simple_optimizer};
use crate::blocks::{AdamMomentsState, Rectification};

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
