use super::{RuleOptimizer, optimizer_config};

holocron_optim_core::__fields_ademamix!(optimizer_config [
    /// Configuration of [`AdEMAMix`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `betas` | `beta_1`, `beta_2`, `beta_3` | 0.9, 0.999, 0.9999 |
    /// | `alpha` | `alpha` | 5.0 |
    /// | `eps` | `epsilon` | 1e-8 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | (none; the paper's `T_alpha`, `T_beta3`) | `alpha_warmup`, `beta_3_warmup` | `None` |
    ///
    /// With `beta_3_warmup`, `beta_1` and `beta_3` must be `> 0` (the schedule interpolates
    /// their logarithms); [`Self::validate`] refuses them otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// use holocron_optim_burn022::AdEMAMixConfig;
    ///
    /// let optim = AdEMAMixConfig::new().with_alpha(2.0).init();
    /// # let _ = optim;
    /// // The paper's recipe: both warm-ups over the whole run (here 10 000 steps).
    /// let optim = AdEMAMixConfig::new()
    ///     .with_alpha_warmup(Some(10_000))
    ///     .with_beta_3_warmup(Some(10_000))
    ///     .init();
    /// # let _ = optim;
    /// ```
    pub struct AdEMAMixConfig for AdEMAMix: holocron_optim_core::rules::ademamix::AdEMAMix
]);

/// AdEMAMix, from ["The AdEMAMix Optimizer: Better, Faster, Older"](https://arxiv.org/abs/2409.03137).
///
/// For each parameter tensor, with `t >= 1`:
///
/// ```text
/// g   <- g + lambda p
/// m1  <- beta_1 m1 + (1 - beta_1) g
/// nu  <- beta_2 nu + (1 - beta_2) g^2
/// m2  <- beta_3 m2 + (1 - beta_3) g          (never bias-corrected)
/// p   <- p - lr (m1 / (1 - beta_1^t) + alpha m2) / (sqrt(nu) / sqrt(1 - beta_2^t) + eps)
/// ```
///
/// With warm-ups (the paper's Algorithm 1; both off by default, as in holocron), step `t`
/// uses `alpha(t)` and `beta_3(t)` in place of `alpha` and `beta_3`:
///
/// ```text
/// alpha(t)  = alpha * min(t / T_alpha, 1)
/// beta_3(t) = min(exp(ln(beta_1) ln(beta_3) / ((1 - t/T_beta3) ln(beta_3) + (t/T_beta3) ln(beta_1))), beta_3)
///                                                                  (beta_3 once t >= T_beta3)
/// ```
///
/// `beta_3(t)` moves the slow average's half-life `ln(0.5) / ln(beta)` linearly from
/// `beta_1`'s to `beta_3`'s. (The authors' PyTorch code adds `1e-8` to `beta` inside those
/// logarithms; the formula here is the paper's.)
///
/// Its state: the step count, `slow_moment` (`m2`), `moment_1` (`m1`) and `moment_2`
/// (`nu`).
///
/// This is holocron 0.3.0 exactly; its documentation's `(g_t - m_t)^2 + eps` second moment
/// is a typo for the `g^2` of its code.
pub type AdEMAMix = RuleOptimizer<holocron_optim_core::rules::ademamix::AdEMAMix>;
