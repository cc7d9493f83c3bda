//! AdaBelief: its rule, hyperparameters and coefficients.

use super::moments::MomentCoefficients;
use crate::hyper::{CrossChecks, OptimizerRule};

/// AdaBelief's hyperparameters, one list for this crate and every Burn crate's config.
#[doc(hidden)]
#[macro_export]
macro_rules! __fields_adabelief {
    ($callback:ident [$($pass:tt)*]) => {
        $callback! { [$($pass)*]
            /// Coefficient of the first moment.
            beta_1: f64 = 0.9 => beta,
            /// Coefficient of the belief (second) moment.
            beta_2: f64 = 0.999 => beta,
            /// Added to the belief every step and to the denominator.
            epsilon: f64 = 1e-8 => positive,
            /// L2 weight decay `lambda`, added to the gradient.
            weight_decay: f64 = 0.0 => non_negative,
            /// Whether the denominator uses the running maximum of the belief (AMSGrad).
            amsgrad: bool = false,
        }
    };
}

__fields_adabelief!(
    hyperparameters[/// AdaBelief's hyperparameters (see the Burn crates' `AdaBelief` for the equations).
    AdaBelief]
);

impl CrossChecks for AdaBelief {}

/// AdaBelief's rule, one pass, element by element:
///
/// ```text
/// g <- g + lambda p
/// m <- beta_1 m + (1 - beta_1) g
/// s <- beta_2 s + (1 - beta_2) (g - m)^2 + eps      (AMSGrad: s_max <- max(s_max, s))
/// p <- p - lr / (1 - beta_1^t) * m / (sqrt(s or s_max) / sqrt(1 - beta_2^t) + eps)
/// ```
pub struct AdaBeliefRule;

#[doc(hidden)]
#[macro_export]
macro_rules! __rule_adabelief {
    ($mode:ident) => {
        $crate::dual! { $mode;
            use blocks;
            /// The scalars of one step.
            struct Coefficients {
                weight_decay, beta_1, fresh_1, beta_2, fresh_2, inverse_correction_1,
                inverse_sqrt_correction_2, epsilon, lr,
            }
            /// One element: the parameter, `m`, `s` and (AMSGrad) `s_max`.
            struct Cells { p, m, s, s_max }
            ;
            #[cube]
            /// The step of one element.
            fn update(c: Coefficients<F>, g: F, x: Cells<F>) flags(amsgrad) -> Cells<F> {
                let g = l2::<F>(g, x.p, c.weight_decay);
                let m = ema::<F>(x.m, g, c.beta_1, c.fresh_1);
                let residual = g - m;
                // The paper's epsilon inside the belief, every step.
                let s = ema::<F>(x.s, residual * residual, c.beta_2, c.fresh_2) + c.epsilon;
                let s_max = running_max::<F>(x.s_max, s, amsgrad);
                let denominator = denominator::<F>(s_max, c.inverse_sqrt_correction_2, c.epsilon);
                let p = x.p - m * c.inverse_correction_1 / denominator * c.lr;
                Cells::<F> { p, m, s, s_max }
            }
        }
        $crate::element_rule! { $mode;
            $crate::rules::adabelief::AdaBeliefRule {
                coefficients: Coefficients, cells: Cells, update: update, lanes: 3,
                optional_lanes: 1,
            }
        }
    };
}
__rule_adabelief!(cpu);

impl AdaBelief {
    /// The coefficients of step `time` (this step included).
    pub fn coefficients(&self, lr: f64, time: usize) -> Coefficients<f64> {
        let m = MomentCoefficients::new(self.beta_1, self.beta_2, true, time);
        Coefficients {
            weight_decay: self.weight_decay,
            beta_1: m.beta_1,
            fresh_1: m.fresh_1,
            beta_2: m.beta_2,
            fresh_2: m.fresh_2,
            inverse_correction_1: m.inverse_correction_1,
            inverse_sqrt_correction_2: m.inverse_sqrt_correction_2,
            epsilon: self.epsilon,
            lr,
        }
    }
}

impl OptimizerRule for AdaBelief {
    const NAME: &'static str = "AdaBelief";
    const STATE_NAMES: &'static [&'static str] = &["moment_1", "moment_2", "max_moment_2"];
    const COUNTS_STEPS: bool = true;

    fn state_names(&self) -> Vec<&'static str> {
        Self::STATE_NAMES[..if self.amsgrad { 3 } else { 2 }].to_vec()
    }

    type Rule = AdaBeliefRule;

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
        AdaBelief::coefficients(self, lr, time)
    }
}
