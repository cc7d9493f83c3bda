use super::trust::{Direction, TrustHyperparameters, TrustStep};
use super::{optimizer_config, simple_optimizer};
use crate::blocks::AdamMomentsState;

optimizer_config! {
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
    pub struct LambConfig for Lamb {
        /// Coefficient of the first moment.
        beta_1: f64 = 0.9 => beta,
        /// Coefficient of the second moment.
        beta_2: f64 = 0.999 => beta,
        /// Added to the denominator.
        epsilon: f64 = 1e-8 => positive,
        /// Decoupled weight decay `lambda` added to the update before the trust ratio.
        weight_decay: f64 = 0.0 => non_negative,
        /// Bounds `(lo, hi)` of the parameter norm in the trust ratio.
        scale_clip: (f64, f64) = "(0.0, 10.0)" => clip_range,
        /// Whether the moments are bias-corrected; `false` reproduces holocron 0.3.0.
        bias_correction: bool = true,
    }
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
    step: TrustStep,
}

/// State of [`Lamb`]: step count and Adam moments.
pub type LambState<B, const D: usize> = AdamMomentsState<B, D>;

impl LambConfig {
    fn build_unchecked(&self) -> Lamb {
        Lamb {
            step: TrustStep::new(TrustHyperparameters {
                beta_1: self.beta_1,
                beta_2: self.beta_2,
                epsilon: self.epsilon,
                weight_decay: self.weight_decay,
                scale_clip: self.scale_clip,
                bias_correction: self.bias_correction,
                execution: self.execution,
            }),
        }
    }
}

simple_optimizer! { Lamb, LambState,
    step: |optim, lr, tensor, grad, state| {
                let (tensor, moments) = optim
            .step
            .step(lr, tensor, grad, state, |_| Direction::ADAM);
        (tensor, Some(moments))
    },
    to_device: |state, device| state.to_device(device),
    shapes: |state| state.shapes(),
    step_count: |state| Some(state.time),
}
