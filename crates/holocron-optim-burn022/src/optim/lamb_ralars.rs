//! LAMB and RaLars: one step of Adam's moments, a direction from them (Adam's, scaled by a
//! factor, or the corrected momentum alone), decoupled L2 decay and the layer-wise trust
//! ratio. The two optimizers differ only in the direction at each step count, so they share
//! their state and their rule; each keeps its own configuration (RaLars has no
//! `bias_correction`, LAMB no rectification).

use super::{RuleOptimizer, optimizer_config};

holocron_optim_core::__fields_lamb!(optimizer_config [
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
    /// use holocron_optim_burn022::LambConfig;
    ///
    /// let optim = LambConfig::new().with_weight_decay(1e-2).init();
    /// # let _ = optim;
    /// let err = LambConfig::new().with_beta_2(1.0).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "LambConfig.beta_2 = 1.0: expected a value in [0, 1)");
    /// ```
    pub struct LambConfig for Lamb: holocron_optim_core::rules::lamb::Lamb
]);

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
/// With `exclude_vectors_from_weight_decay` a rank-1 tensor (a bias, a normalisation
/// scale) takes `lambda = 0`; with `exclude_vectors_from_trust_ratio` its ratio is 1 (the
/// SimCLR, BYOL and BERT convention, optax's masks).
///
/// Its state: the step count, `moment_1` (`m`) and `moment_2` (`v`).
///
/// # Differences from holocron
///
/// holocron 0.3.0 does not bias-correct the moments; `bias_correction = false` reproduces
/// it exactly. Its documentation's `‖r_t + θ_t‖` is read as `‖r_t + λθ_t‖`, as its code does.
pub type Lamb = RuleOptimizer<holocron_optim_core::rules::lamb::Lamb>;

holocron_optim_core::__fields_ralars!(optimizer_config [
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
    /// use holocron_optim_burn022::RaLarsConfig;
    ///
    /// let optim = RaLarsConfig::new()
    ///     .with_force_adaptive_momentum(true)
    ///     .init();
    /// # let _ = optim;
    /// ```
    pub struct RaLarsConfig for RaLars: holocron_optim_core::rules::lamb::RaLars
]);

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
/// With `exclude_vectors_from_weight_decay` a rank-1 tensor (a bias, a normalisation
/// scale) takes `lambda = 0`; with `exclude_vectors_from_trust_ratio` its ratio is 1 (the
/// SimCLR, BYOL and BERT convention, optax's masks).
///
/// Its state: the step count, `moment_1` (`m`) and `moment_2` (`v`).
///
/// This is holocron 0.3.0 exactly, including its `rho_t > 4` threshold (the RAdam authors'
/// code uses `rho_t >= 5`, PyTorch's `RAdam` `rho_t > 5`).
pub type RaLars = RuleOptimizer<holocron_optim_core::rules::lamb::RaLars>;
