//! AdEMAMix: its rule, hyperparameters and coefficients.

use super::moments::MomentCoefficients;
use crate::ConfigError;
use crate::error::Checker;
use crate::hyper::{CrossChecks, OptimizerRule};

/// AdEMAMix's hyperparameters, one list for this crate and every Burn crate's config.
#[doc(hidden)]
#[macro_export]
macro_rules! __fields_ademamix {
    ($callback:ident [$($pass:tt)*]) => {
        $callback! { [$($pass)*]
            /// Coefficient of the fast gradient average.
            beta_1: f64 = 0.9 => beta,
            /// Coefficient of the second moment.
            beta_2: f64 = 0.999 => beta,
            /// Coefficient of the slow gradient average.
            beta_3: f64 = 0.9999 => beta,
            /// Weight of the slow average in the update.
            alpha: f64 = 5.0 => non_negative,
            /// Added to the denominator.
            epsilon: f64 = 1e-8 => positive,
            /// L2 weight decay `lambda`, added to the gradient.
            weight_decay: f64 = 0.0 => non_negative,
            /// Steps `T_alpha` over which the slow average's weight ramps up linearly from 0 to
            /// `alpha`; `None` (holocron's behaviour) uses `alpha` from the first step.
            alpha_warmup: Option<usize> = "None" | None => warmup,
            /// Steps `T_beta3` over which the slow average's coefficient rises from `beta_1` to
            /// `beta_3` along the paper's schedule (its half-life grows linearly); `None`
            /// (holocron's behaviour) uses `beta_3` from the first step.
            beta_3_warmup: Option<usize> = "None" | None => warmup,
        }
    };
}

__fields_ademamix!(
    hyperparameters[/// AdEMAMix's hyperparameters (see the Burn crates' `AdEMAMix` for the equations).
    AdEMAMix]
);

impl CrossChecks for AdEMAMix {
    fn cross_check(&self, check: &Checker) -> Result<(), ConfigError> {
        // The schedule interpolates the logarithms of beta_1 and beta_3: both must be > 0.
        let positive = self.beta_1 > 0.0 && self.beta_3 > 0.0;
        let betas = (self.beta_1, self.beta_3);
        let expected =
            "beta_1 > 0 and beta_3 > 0 when beta_3 warms up (value shown: (beta_1, beta_3))";
        check.require(
            "beta_3_warmup",
            betas,
            self.beta_3_warmup.is_none() || positive,
            expected,
        )
    }
}

/// AdEMAMix's rule, one pass, element by element:
///
/// ```text
/// g <- g + lambda p
/// m_slow <- beta_3(t) m_slow + (1 - beta_3(t)) g
/// m <- beta_1 m + (1 - beta_1) g,   v <- beta_2 v + (1 - beta_2) g^2
/// p <- p - lr (m_hat + alpha(t) m_slow) / (sqrt(v_hat) + eps)
/// ```
pub struct AdEMAMixRule;

#[doc(hidden)]
#[macro_export]
macro_rules! __rule_ademamix {
    ($mode:ident) => {
        $crate::dual! { $mode;
            use blocks;
            /// The scalars of one step (`beta_3` and `alpha` at this step of their warm-ups).
            struct Coefficients {
                weight_decay, beta_1, fresh_1, beta_2, fresh_2, beta_3, fresh_3, inverse_correction_1,
                alpha, inverse_sqrt_correction_2, epsilon, lr,
            }
            /// One element: the parameter, the slow average, `m` and `v`.
            struct Cells { p, slow, m, v }
            ;
            #[cube]
            /// The step of one element.
            fn update(c: Coefficients<F>, g: F, x: Cells<F>) flags(_no_flag) -> Cells<F> {
                let g = l2::<F>(g, x.p, c.weight_decay);
                let slow = ema::<F>(x.slow, g, c.beta_3, c.fresh_3);
                let m = ema::<F>(x.m, g, c.beta_1, c.fresh_1);
                let v = ema::<F>(x.v, g * g, c.beta_2, c.fresh_2);
                let numerator = m * c.inverse_correction_1 + slow * c.alpha;
                let denominator = denominator::<F>(v, c.inverse_sqrt_correction_2, c.epsilon);
                let p = x.p - numerator / denominator * c.lr;
                Cells::<F> { p, slow, m, v }
            }
        }
        $crate::element_rule! { $mode;
            $crate::rules::ademamix::AdEMAMixRule {
                coefficients: Coefficients, cells: Cells, update: update, lanes: 4,
                optional_lanes: 0,
            }
        }
    };
}
__rule_ademamix!(cpu);

impl AdEMAMix {
    /// The coefficients of step `time` (this step included).
    pub fn coefficients(&self, lr: f64, time: usize) -> Coefficients<f64> {
        let m = MomentCoefficients::new(self.beta_1, self.beta_2, true, time);
        let beta_3 = self.beta_3_at(time);
        Coefficients {
            weight_decay: self.weight_decay,
            beta_1: m.beta_1,
            fresh_1: m.fresh_1,
            beta_2: m.beta_2,
            fresh_2: m.fresh_2,
            beta_3,
            fresh_3: 1.0 - beta_3,
            inverse_correction_1: m.inverse_correction_1,
            alpha: self.alpha_at(time),
            inverse_sqrt_correction_2: m.inverse_sqrt_correction_2,
            epsilon: self.epsilon,
            lr,
        }
    }

    /// The slow average's weight at step `time`: linear from 0 to `alpha` over the warm-up.
    pub fn alpha_at(&self, time: usize) -> f64 {
        match self.alpha_warmup {
            Some(warmup) if time < warmup => self.alpha * time as f64 / warmup as f64,
            _ => self.alpha,
        }
    }

    /// The slow average's coefficient at step `time`: from `beta_1` to `beta_3` over the
    /// warm-up, its half-life growing linearly (the paper's schedule), capped at `beta_3`.
    pub fn beta_3_at(&self, time: usize) -> f64 {
        match self.beta_3_warmup {
            Some(warmup) if time < warmup => {
                let a = time as f64 / warmup as f64;
                let (ln_1, ln_3) = (self.beta_1.ln(), self.beta_3.ln());
                (ln_1 * ln_3 / ((1.0 - a) * ln_3 + a * ln_1))
                    .exp()
                    .min(self.beta_3)
            }
            _ => self.beta_3,
        }
    }
}

impl OptimizerRule for AdEMAMix {
    const NAME: &'static str = "AdEMAMix";
    const STATE_NAMES: &'static [&'static str] = &["slow_moment", "moment_1", "moment_2"];
    const COUNTS_STEPS: bool = true;

    fn state_names(&self) -> Vec<&'static str> {
        Self::STATE_NAMES.to_vec()
    }

    type Rule = AdEMAMixRule;

    fn flag(&self) -> bool {
        false
    }

    fn coefficients(
        &self,
        lr: f64,
        time: usize,
        first: bool,
        shape: &[usize],
    ) -> Coefficients<f64> {
        let _ = (first, shape);
        AdEMAMix::coefficients(self, lr, time)
    }
}
