/// RAdam's variance rectification, computed on the host from the step count alone.
///
/// `rho_inf = 2 / (1 - beta_2) - 1`, `rho_t = rho_inf - 2 t beta_2^t / (1 - beta_2^t)`;
/// while `rho_t > 4` the variance of the adaptive rate is tractable and the step is scaled by
/// `r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))`.
#[derive(Clone, Debug)]
pub struct Rectification {
    /// The coefficient of the second moment.
    pub beta_2: f64,
}

impl Rectification {
    /// `Some(r_t)` when the variance is tractable at step `time` (`rho_t > 4`, holocron's
    /// threshold), `None` otherwise.
    pub fn factor(&self, time: usize) -> Option<f64> {
        holocron_optim_core::rules::moments::rectification(self.beta_2, time)
    }
}
