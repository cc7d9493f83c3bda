use super::{RuleOptimizer, optimizer_config};

holocron_optim_core::__fields_lars!(optimizer_config [
    /// Configuration of [`Lars`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `momentum` | `momentum` | 0 |
    /// | `dampening` | `dampening` | 0 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | `nesterov` | `nesterov` | false |
    /// | `scale_clip` | `scale_clip` | (0, 10) |
    ///
    /// `nesterov` needs `momentum > 0` and `dampening = 0`; [`Self::validate`] refuses it
    /// otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// use holocron_optim_burn022::LarsConfig;
    ///
    /// let optim = LarsConfig::new()
    ///     .with_momentum(0.9)
    ///     .with_weight_decay(5e-4)
    ///     .init();
    /// # let _ = optim;
    /// assert!(LarsConfig::new().with_nesterov(true).try_init().is_err());
    /// ```
    pub struct LarsConfig for Lars: holocron_optim_core::rules::lars::Lars
]);

/// LARS: layer-wise adaptive rate scaling, from ["Large batch training of convolutional
/// networks"](https://arxiv.org/abs/1708.03888).
///
/// For each parameter tensor, with `t >= 1`:
///
/// ```text
/// gamma = clamp(‖p‖, lo, hi) / (‖g‖ + lambda ‖p‖)      (1 when either side is 0)
/// d     = gamma (g + lambda p)
/// buf   = d                                  (first step)
/// buf   = m buf + (1 - dampening) d          (later steps)
/// d     = d + m buf  if nesterov  else  buf  (when m > 0)
/// p    <- p - lr d
/// ```
///
/// With `exclude_vectors_from_weight_decay` a rank-1 tensor (a bias, a normalisation
/// scale) takes `lambda = 0`; with `exclude_vectors_from_trust_ratio` its ratio is 1 (the
/// SimCLR, BYOL and BERT convention, optax's masks).
///
/// Its state: the momentum buffer `buf` (`momentum_buffer`) with momentum, nothing without;
/// LARS counts no steps (its state's [`time`](crate::RuleState::time) is 1 once a parameter
/// has stepped).
///
/// The paper's global schedule `lr_t = lr (1 - t/T)^2` is a learning-rate schedule (Burn's
/// `burn::lr_scheduler` has linear and other schedulers to pass to `step`).
///
/// # Differences from holocron
///
/// holocron 0.3.0 applies the trust ratio after the momentum buffer and ignores
/// `scale_clip`. Here the ratio scales the direction before momentum (the paper, timm) and
/// the norm is clamped to `scale_clip`. Both agree when `momentum = 0` and `‖p‖` lies
/// inside the clip range.
pub type Lars = RuleOptimizer<holocron_optim_core::rules::lars::Lars>;
