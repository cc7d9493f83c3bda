use super::{RuleOptimizer, optimizer_config};

holocron_optim_core::__fields_adamp!(optimizer_config [
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
    /// use holocron_optim_burn022::AdamPConfig;
    ///
    /// let optim = AdamPConfig::new().with_delta(0.5).init();
    /// # let _ = optim;
    /// ```
    pub struct AdamPConfig for AdamP: holocron_optim_core::rules::adamp::AdamP
]);

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
/// Its state: the step count, `moment_1` (`m`), `moment_2` (`v`) and, with AMSGrad,
/// `max_moment_2` (`v_max`).
///
/// The official clovaai AdamP differs (absolute cosine, channel-wise test, `wd_ratio`); this
/// is holocron's variant, exactly.
pub type AdamP = RuleOptimizer<holocron_optim_core::rules::adamp::AdamP>;
