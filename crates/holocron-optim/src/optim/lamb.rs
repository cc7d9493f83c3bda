use burn::config::Config;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::record::Record;
use burn::tensor::backend::Backend;

use super::trust::{Direction, TrustHyperparameters, TrustStep};
use super::{config_entry_points, simple_optimizer};
use crate::Execution;
use crate::blocks::AdamMomentsState;

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
    /// Which implementation runs the step (see [`Execution`]); all compute the same update.
    #[config(default = "Execution::Auto")]
    pub execution: Execution,
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
    step: TrustStep,
}

/// State of [`Lamb`].
#[derive(Record, Clone, Debug)]
pub struct LambState<B: Backend, const D: usize> {
    /// Step count and Adam moments.
    pub moments: AdamMomentsState<B, D>,
}

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

config_entry_points!(LambConfig, Lamb, validate: |check, config| {
    check.betas(&[("beta_1", config.beta_1), ("beta_2", config.beta_2)])?;
    check.non_negatives(&[
        ("epsilon", config.epsilon),
        ("weight_decay", config.weight_decay),
    ])?;
    check.clip_range("scale_clip", config.scale_clip)
});

simple_optimizer! { Lamb, LambState,
    step: |optim, lr, tensor, grad, state| {
        let moments = state.map(|s| s.moments);
        let (tensor, moments) = optim
            .step
            .step(lr, tensor, grad, moments, |_| Direction::ADAM);
        (tensor, Some(LambState { moments }))
    },
    to_device: |state, device| LambState { moments: state.moments.to_device(device) },
    shapes: |state| state.moments.shapes(),
}
