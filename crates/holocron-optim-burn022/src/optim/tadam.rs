use super::{RuleOptimizer, optimizer_config};

holocron_optim_core::__fields_tadam!(optimizer_config [
    /// Configuration of [`TAdam`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `betas` | `beta_1`, `beta_2` | 0.9, 0.999 |
    /// | `eps` | `epsilon` | 1e-8 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | `amsgrad` | `amsgrad` | false |
    /// | `dof` | `dof` | `None` (the tensor's number of elements) |
    ///
    /// # Example
    ///
    /// ```
    /// use holocron_optim_burn022::TAdamConfig;
    ///
    /// let optim = TAdamConfig::new().with_dof(Some(2.0)).init();
    /// # let _ = optim;
    /// ```
    pub struct TAdamConfig for TAdam: holocron_optim_core::rules::tadam::TAdam
]);

/// TAdam, from ["TAdam: A Robust Stochastic Gradient Optimizer"](https://arxiv.org/abs/2003.00179).
///
/// For each parameter tensor of `d` elements, with `t >= 1`, `m_0 = 0`, `v_0 = 0` and
/// `W_0 = beta_1 / (1 - beta_1)`:
///
/// ```text
/// g <- g + lambda p
/// w  = (nu + d) / (nu + sum((g - m)^2 / (v + eps)))
/// m <- W / (W + w) m + w / (W + w) g
/// W <- W (2 beta_1 - 1) / beta_1 + w
/// v <- beta_2 v + (1 - beta_2) g^2            (AMSGrad: v_max <- max(v_max, v))
/// p <- p - lr / (1 - beta_1^t) * m / (sqrt(v or v_max) / sqrt(1 - beta_2^t) + eps)
/// ```
///
/// Its state: the step count, `moment_1` (`m`), `moment_2` (`v`), with AMSGrad
/// `max_moment_2` (`v_max`), and `weight_sum` (`W`, one element, stored with shape
/// `[1; D]`).
///
/// This is holocron 0.3.0 exactly (and the paper); its documentation's `(g_t - g_{t-1})` in
/// `v_t` is a typo. `w` and `W` are one-element tensors that stay on the device.
pub type TAdam = RuleOptimizer<holocron_optim_core::rules::tadam::TAdam>;
