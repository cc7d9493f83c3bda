//! Adan: its rule, hyperparameters and coefficients.

use super::moments::bias_correction;
use crate::hyper::{CrossChecks, OptimizerRule};

/// Adan's hyperparameters, one list for this crate and every Burn crate's config.
#[doc(hidden)]
#[macro_export]
macro_rules! __fields_adan {
    ($callback:ident [$($pass:tt)*]) => {
        $callback! { [$($pass)*]
            /// Coefficient of the gradient average.
            beta_1: f64 = 0.98 => beta,
            /// Coefficient of the gradient-difference average.
            beta_2: f64 = 0.92 => beta,
            /// Coefficient of the second moment.
            beta_3: f64 = 0.99 => beta,
            /// Added to the denominator.
            epsilon: f64 = 1e-8 => positive,
            /// Proximal weight decay `lambda`: `p <- p / (1 + lr lambda)` after the step.
            weight_decay: f64 = 0.0 => non_negative,
            /// Whether the denominator uses the running maximum of `n` (AMSGrad).
            amsgrad: bool = false,
        }
    };
}

__fields_adan!(
    hyperparameters[/// Adan's hyperparameters (see the Burn crates' `Adan` for the equations).
    Adan]
);

impl CrossChecks for Adan {}

/// Adan's rule, one pass, element by element (`diff = g - g_prev`, 0 at the first step):
///
/// ```text
/// m <- beta_1 m + (1 - beta_1) g
/// v <- beta_2 v + (1 - beta_2) diff
/// n <- beta_3 n + (1 - beta_3) (g + beta_2 diff)^2          (AMSGrad: n_max <- max(n_max, n))
/// p <- (p - lr (m_hat + beta_2 v_hat) / (sqrt(n_hat) + eps)) / (1 + lr lambda)
/// ```
pub struct AdanRule;

#[doc(hidden)]
#[macro_export]
macro_rules! __rule_adan {
    ($mode:ident) => {
        $crate::dual! { $mode;
            use blocks;
            /// The scalars of one step; `difference` is 0 at the first step (no previous
            /// gradient), else 1.
            struct Coefficients {
                difference, beta_1, fresh_1, beta_2, fresh_2, beta_3, fresh_3, inverse_correction_1,
                scale_2, inverse_sqrt_correction_3, epsilon, lr, proximal,
            }
            /// One element: the parameter, `m`, `v`, the previous gradient, `n` and (AMSGrad)
            /// `n_max`.
            struct Cells { p, m, v, previous, n, n_max }
            ;
            #[cube]
            /// The step of one element.
            fn update(c: Coefficients<F>, g: F, x: Cells<F>) flags(amsgrad) -> Cells<F> {
                let diff = (g - x.previous) * c.difference;
                let m = ema::<F>(x.m, g, c.beta_1, c.fresh_1);
                let v = ema::<F>(x.v, diff, c.beta_2, c.fresh_2);
                let nesterov = g + diff * c.beta_2;
                let n = ema::<F>(x.n, nesterov * nesterov, c.beta_3, c.fresh_3);
                let n_max = running_max::<F>(x.n_max, n, amsgrad);
                let numerator = m * c.inverse_correction_1 + v * c.scale_2;
                let denominator = denominator::<F>(n_max, c.inverse_sqrt_correction_3, c.epsilon);
                let p = (x.p - numerator / denominator * c.lr) / c.proximal;
                Cells::<F> { p, m, v, previous: g, n, n_max }
            }
        }
        $crate::element_rule! { $mode;
            $crate::rules::adan::AdanRule {
                coefficients: Coefficients, cells: Cells, update: update, lanes: 5,
                optional_lanes: 1,
            }
        }
    };
}
__rule_adan!(cpu);

impl Adan {
    /// The coefficients of step `time` (this step included).
    pub fn coefficients(&self, lr: f64, time: usize) -> Coefficients<f64> {
        Coefficients {
            // The first difference is zero: the (zero) previous gradient counts with weight 0.
            difference: if time == 1 { 0.0 } else { 1.0 },
            beta_1: self.beta_1,
            fresh_1: 1.0 - self.beta_1,
            beta_2: self.beta_2,
            fresh_2: 1.0 - self.beta_2,
            beta_3: self.beta_3,
            fresh_3: 1.0 - self.beta_3,
            inverse_correction_1: 1.0 / bias_correction(self.beta_1, time),
            scale_2: self.beta_2 / bias_correction(self.beta_2, time),
            inverse_sqrt_correction_3: 1.0 / bias_correction(self.beta_3, time).sqrt(),
            epsilon: self.epsilon,
            lr,
            proximal: 1.0 + lr * self.weight_decay,
        }
    }
}

impl OptimizerRule for Adan {
    const NAME: &'static str = "Adan";
    const STATE_NAMES: &'static [&'static str] = &[
        "moment_1",
        "moment_diff",
        "previous_grad",
        "moment_2",
        "max_moment_2",
    ];
    const COUNTS_STEPS: bool = true;

    fn state_names(&self) -> Vec<&'static str> {
        Self::STATE_NAMES[..if self.amsgrad { 5 } else { 4 }].to_vec()
    }

    type Rule = AdanRule;

    fn flag(&self) -> bool {
        self.amsgrad
    }

    fn coefficients(
        &self,
        lr: f64,
        time: usize,
        first: bool,
        shape: &[usize],
    ) -> Coefficients<f64> {
        let _ = (first, shape);
        Adan::coefficients(self, lr, time)
    }
}
