use super::{RuleOptimizer, optimizer_config};

holocron_optim_core::__fields_adabelief!(optimizer_config [
    /// Configuration of [`AdaBelief`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `betas` | `beta_1`, `beta_2` | 0.9, 0.999 |
    /// | `eps` | `epsilon` | 1e-8 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | `amsgrad` | `amsgrad` | false |
    ///
    /// # Example
    ///
    /// ```
    /// use holocron_optim_burn022::AdaBeliefConfig;
    ///
    /// let optim = AdaBeliefConfig::new().with_amsgrad(true).init();
    /// # let _ = optim;
    /// ```
    pub struct AdaBeliefConfig for AdaBelief: holocron_optim_core::rules::adabelief::AdaBelief
]);

/// AdaBelief, from ["AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
/// Gradients"](https://arxiv.org/abs/2010.07468).
///
/// For each parameter tensor, with `t >= 1`:
///
/// ```text
/// g <- g + lambda p
/// m <- beta_1 m + (1 - beta_1) g
/// s <- beta_2 s + (1 - beta_2) (g - m)^2 + eps      (AMSGrad: s_max <- max(s_max, s), used below)
/// p <- p - lr / (1 - beta_1^t) * m / (sqrt(s or s_max) / sqrt(1 - beta_2^t) + eps)
/// ```
///
/// Its state: the step count, `moment_1` (`m`), `moment_2` (the belief `s`) and, with
/// AMSGrad, `max_moment_2` (`s_max`).
///
/// # Differences from holocron
///
/// holocron 0.3.0 does not add `eps` to the stored belief `s`; the paper (Algorithm 2) and
/// the official code do, and so does this crate.
pub type AdaBelief = RuleOptimizer<holocron_optim_core::rules::adabelief::AdaBelief>;
