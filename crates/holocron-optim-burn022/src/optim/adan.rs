use super::{RuleOptimizer, optimizer_config};

holocron_optim_core::__fields_adan!(optimizer_config [
    /// Configuration of [`Adan`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `betas` | `beta_1`, `beta_2`, `beta_3` | 0.98, 0.92, 0.99 |
    /// | `eps` | `epsilon` | 1e-8 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | `amsgrad` | `amsgrad` | false |
    ///
    /// # Example
    ///
    /// ```
    /// use holocron_optim_burn022::AdanConfig;
    ///
    /// let optim = AdanConfig::new().with_weight_decay(2e-2).init();
    /// # let _ = optim;
    /// ```
    pub struct AdanConfig for Adan: holocron_optim_core::rules::adan::Adan
]);

/// Adan, from ["Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
/// Models"](https://arxiv.org/abs/2208.06677), with the official code's semantics.
///
/// For each parameter tensor, with `t >= 1` and `g_0 = g_1` (the first difference is 0):
///
/// ```text
/// m <- beta_1 m + (1 - beta_1) g
/// v <- beta_2 v + (1 - beta_2) (g - g_prev)
/// n <- beta_3 n + (1 - beta_3) (g + beta_2 (g - g_prev))^2    (AMSGrad: n_max <- max(n_max, n))
/// p <- p - lr (m / (1 - beta_1^t) + beta_2 v / (1 - beta_2^t)) / (sqrt(n or n_max) / sqrt(1 - beta_3^t) + eps)
/// p <- p / (1 + lr lambda)
/// ```
///
/// Its state: the step count, `moment_1` (`m`), `moment_diff` (`v`), `previous_grad`,
/// `moment_2` (`n`) and, with AMSGrad, `max_moment_2` (`n_max`).
///
/// Without AMSGrad this matches `burn::optim::AdanConfig` (with `no_prox = false`).
///
/// # Differences from holocron
///
/// holocron 0.3.0 never updates its previous gradient (its difference is always `g`) and also
/// adds `lambda p` to the gradient. Neither bug is reproduced: this is the official Adan
/// (sail-sg/Adan, timm, Burn).
pub type Adan = RuleOptimizer<holocron_optim_core::rules::adan::Adan>;
