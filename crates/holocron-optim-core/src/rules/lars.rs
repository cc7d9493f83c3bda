//! LARS: its rule, hyperparameters and coefficients.

use super::moments::{VectorMask, heavy_ball};
use crate::ConfigError;
use crate::error::Checker;
use crate::hyper::{CrossChecks, OptimizerRule};

/// LARS's hyperparameters, one list for this crate and every Burn crate's config.
#[doc(hidden)]
#[macro_export]
macro_rules! __fields_lars {
    ($callback:ident [$($pass:tt)*]) => {
        $callback! { [$($pass)*]
            /// Momentum factor `m`.
            momentum: f64 = 0.0 => non_negative,
            /// Dampening of new directions in the momentum buffer.
            dampening: f64 = 0.0 => unit,
            /// L2 weight decay `lambda`, added to the gradient and to the trust-ratio denominator.
            weight_decay: f64 = 0.0 => non_negative,
            /// Nesterov momentum; needs `momentum > 0` and `dampening = 0`.
            nesterov: bool = false,
            /// Bounds `(lo, hi)` of the parameter norm in the trust ratio.
            scale_clip: (f64, f64) = "(0.0, 10.0)" | (0.0, 10.0) => clip_range,
            /// Whether rank-1 tensors (biases, normalisation scales) take no weight decay, as
            /// SimCLR, BYOL and BERT train; `false` (holocron) decays every tensor.
            exclude_vectors_from_weight_decay: bool = false,
            /// Whether rank-1 tensors take the plain step, unscaled by the trust ratio, as SimCLR,
            /// BYOL and BERT train; `false` (holocron) scales every tensor.
            exclude_vectors_from_trust_ratio: bool = false,
        }
    };
}

__fields_lars!(
    hyperparameters[/// LARS's hyperparameters (see the Burn crates' `Lars` for the equations).
    Lars]
);

impl CrossChecks for Lars {
    fn cross_check(&self, check: &Checker) -> Result<(), ConfigError> {
        if self.nesterov && !(self.momentum > 0.0 && self.dampening == 0.0) {
            check.fail(
                "nesterov",
                (self.momentum, self.dampening),
                "momentum > 0 and dampening = 0 when nesterov is true (value shown: (momentum, dampening))",
            )
        } else {
            Ok(())
        }
    }
}

/// LARS's rule, two passes: the norms of the parameter and of the gradient, then
///
/// ```text
/// ratio <- clamp(||p||, lo, hi) / (||g|| + lambda ||p||)   (1 where either side is 0)
/// d <- (g + lambda p) ratio
/// buffer <- mu buffer + (1 - dampening) d      (d at the first step; without momentum: none)
/// p <- p - lr (d + mu buffer)   (Nesterov)   or   p - lr buffer   (or p - lr d)
/// ```
pub struct LarsRule;

#[doc(hidden)]
#[macro_export]
macro_rules! __rule_lars {
    ($mode:ident) => {
        $crate::dual! { $mode;
            use blocks;
            /// The scalars of one step.
            struct Coefficients {
                weight_decay, lo, hi, trusted, keep, fresh, step_direction, step_buffer, lr,
            }
            /// One element: the parameter and (with momentum) the momentum buffer.
            struct Cells { p, buffer }
            /// One element's terms of the squared norms.
            struct Norms { pp, gg }
            /// What the update pass needs of the norms.
            struct Scalars { ratio }
            ;
            #[cube]
            /// One element's terms of the squared norms of the parameter and the gradient.
            fn norms(_c: Coefficients<F>, g: F, x: Cells<F>) flags(_momentum) -> Norms<F> {
                Norms::<F> { pp: x.p * x.p, gg: g * g }
            }

            #[cube]
            /// The trust ratio from the squared norms.
            fn scalars(c: Coefficients<F>, t: Norms<F>, _carried: F) -> Scalars<F> {
                let param_norm = F::sqrt(t.pp);
                let denominator = F::sqrt(t.gg) + param_norm * c.weight_decay;
                Scalars::<F> { ratio: trust_ratio::<F>(param_norm, denominator, c.lo, c.hi, c.trusted) }
            }

            #[cube]
            /// The step of one element.
            fn update(c: Coefficients<F>, s: Scalars<F>, g: F, x: Cells<F>) flags(momentum) -> Cells<F> {
                let direction = l2::<F>(g, x.p, c.weight_decay) * s.ratio;
                let mut step = direction;
                let mut buffer = x.buffer;
                if momentum {
                    buffer = x.buffer * c.keep + direction * c.fresh;
                    step = direction * c.step_direction + buffer * c.step_buffer;
                }
                Cells::<F> { p: x.p - step * c.lr, buffer }
            }
        }
        $crate::two_pass_rule! { $mode;
            $crate::rules::lars::LarsRule {
                coefficients: Coefficients, cells: Cells, terms: Norms, scalars: Scalars,
                terms_of: norms, scalars_of: scalars, update: update, lanes: 1, optional_lanes: 1,
            }
        }
    };
}
__rule_lars!(cpu);

impl Lars {
    /// The vector mask of the configuration.
    pub fn mask(&self) -> VectorMask {
        VectorMask {
            weight_decay: self.exclude_vectors_from_weight_decay,
            trust_ratio: self.exclude_vectors_from_trust_ratio,
        }
    }

    /// Whether the rule keeps a momentum buffer.
    pub fn has_momentum(&self) -> bool {
        self.momentum != 0.0
    }

    /// The coefficients of a step on a tensor of rank `rank`; `first` when no momentum
    /// buffer exists yet.
    pub fn coefficients(&self, lr: f64, first: bool, rank: usize) -> Coefficients<f64> {
        let [keep, fresh, step_direction, step_buffer] =
            heavy_ball(self.momentum, self.dampening, self.nesterov, first);
        let mask = self.mask();
        Coefficients {
            weight_decay: mask.decay(rank, self.weight_decay),
            lo: self.scale_clip.0,
            hi: self.scale_clip.1,
            trusted: if mask.trusts(rank) { 1.0 } else { 0.0 },
            keep,
            fresh,
            step_direction,
            step_buffer,
            lr,
        }
    }
}

impl OptimizerRule for Lars {
    const NAME: &'static str = "Lars";
    const STATE_NAMES: &'static [&'static str] = &["momentum_buffer"];
    // LARS keeps no step count: its buffer's existence says whether a step was taken.
    const COUNTS_STEPS: bool = false;

    fn state_names(&self) -> Vec<&'static str> {
        Self::STATE_NAMES[..usize::from(self.has_momentum())].to_vec()
    }

    type Rule = LarsRule;

    fn flag(&self) -> bool {
        self.has_momentum()
    }

    fn coefficients(
        &self,
        lr: f64,
        time: usize,
        first: bool,
        shape: &[usize],
    ) -> Coefficients<f64> {
        // LARS keeps no step count: the first step is the one without a buffer.
        let _ = time;
        Lars::coefficients(self, lr, first, shape.len())
    }
}
