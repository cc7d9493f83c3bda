//! LAMB and RaLars: one rule (Adam's moments, a direction from them, decoupled L2 decay and
//! the layer-wise trust ratio), two sets of hyperparameters that differ in the direction at
//! each step count.

use super::moments::{MomentCoefficients, VectorMask, rectification};
use crate::hyper::{CrossChecks, OptimizerRule};

/// LAMB's hyperparameters, one list for this crate and every Burn crate's config.
#[doc(hidden)]
#[macro_export]
macro_rules! __fields_lamb {
    ($callback:ident [$($pass:tt)*]) => {
        $callback! { [$($pass)*]
            /// Coefficient of the first moment.
            beta_1: f64 = 0.9 => beta,
            /// Coefficient of the second moment.
            beta_2: f64 = 0.999 => beta,
            /// Added to the denominator.
            epsilon: f64 = 1e-8 => positive,
            /// Decoupled weight decay `lambda` added to the update before the trust ratio.
            weight_decay: f64 = 0.0 => non_negative,
            /// Bounds `(lo, hi)` of the parameter norm in the trust ratio.
            scale_clip: (f64, f64) = "(0.0, 10.0)" | (0.0, 10.0) => clip_range,
            /// Whether the moments are bias-corrected; `false` reproduces holocron 0.3.0.
            bias_correction: bool = true,
            /// Whether rank-1 tensors (biases, normalisation scales) take no weight decay, as
            /// SimCLR, BYOL and BERT train; `false` (holocron) decays every tensor.
            exclude_vectors_from_weight_decay: bool = false,
            /// Whether rank-1 tensors take the plain step, unscaled by the trust ratio, as SimCLR,
            /// BYOL and BERT train; `false` (holocron) scales every tensor.
            exclude_vectors_from_trust_ratio: bool = false,
        }
    };
}

/// RaLars's hyperparameters, one list for this crate and every Burn crate's config.
#[doc(hidden)]
#[macro_export]
macro_rules! __fields_ralars {
    ($callback:ident [$($pass:tt)*]) => {
        $callback! { [$($pass)*]
            /// Coefficient of the first moment.
            beta_1: f64 = 0.9 => beta,
            /// Coefficient of the second moment.
            beta_2: f64 = 0.999 => beta,
            /// Added to the denominator.
            epsilon: f64 = 1e-8 => positive,
            /// Decoupled weight decay `lambda` added to the update before the trust ratio.
            weight_decay: f64 = 0.0 => non_negative,
            /// While the variance is not tractable, use Adam's adaptive step instead of plain
            /// momentum.
            force_adaptive_momentum: bool = false,
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

__fields_lamb!(
    hyperparameters[/// LAMB's hyperparameters (see the Burn crates' `Lamb` for the equations).
    Lamb]
);

__fields_ralars!(
    hyperparameters[/// RaLars's hyperparameters (see the Burn crates' `RaLars` for the equations).
    RaLars]
);

impl CrossChecks for Lamb {}
impl CrossChecks for RaLars {}

/// The direction of a step: Adam's (`adaptive`, scaled by `factor`) or the corrected first
/// moment alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Direction {
    /// Whether the first moment is divided by Adam's denominator.
    pub adaptive: bool,
    /// The factor of the direction (RAdam's rectification; 1 otherwise).
    pub factor: f64,
}

impl Direction {
    /// Adam's direction.
    pub const ADAM: Direction = Direction {
        adaptive: true,
        factor: 1.0,
    };
}

/// The hyperparameters LAMB and RaLars share, as the trust rule's coefficients take them.
#[derive(Clone, Copy, Debug)]
pub struct Trust {
    /// Coefficient of the first moment.
    pub beta_1: f64,
    /// Coefficient of the second moment.
    pub beta_2: f64,
    /// Added to the denominator.
    pub epsilon: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Bounds of the parameter norm in the trust ratio.
    pub scale_clip: (f64, f64),
    /// Whether the moments are bias-corrected.
    pub bias_correction: bool,
    /// Which vectors are left out of decay and ratio.
    pub mask: VectorMask,
}

/// The rule of LAMB and RaLars, two passes: Adam's moments and the norms of `p` and of the
/// update `u`, then
///
/// ```text
/// u <- factor m_hat / (sqrt(v_hat) + eps)   (adaptive)   or   m_hat   + lambda p
/// p <- p - lr clamp(||p||, lo, hi) / ||u|| u             (ratio 1 where either norm is 0)
/// ```
pub struct TrustRule;

#[doc(hidden)]
#[macro_export]
macro_rules! __rule_trust {
    ($mode:ident) => {
        $crate::dual! { $mode;
            use blocks;
            /// The scalars of one step: the moments', the direction (`adaptive` 1 for Adam's,
            /// 0 for the momentum alone, `fixed = 1 - adaptive`), the decay and the ratio's.
            struct Coefficients {
                beta_1, fresh_1, beta_2, fresh_2, inverse_correction_1, inverse_sqrt_correction_2,
                epsilon, adaptive, fixed, factor, weight_decay, lo, hi, trusted, lr,
            }
            /// One element: the parameter, `m`, `v` and (AMSGrad) `v_max`.
            struct Cells { p, m, v, v_max }
            /// One element's terms of `‖p‖²` and `‖u‖²`.
            struct Norms { pp, uu }
            /// The trust ratio.
            struct Scalars { ratio }
            ;
            #[cube]
            /// The moments' update, in the summing pass.
            fn advance(c: Coefficients<F>, g: F, x: Cells<F>) flags(amsgrad) -> Cells<F> {
                let m = ema::<F>(x.m, g, c.beta_1, c.fresh_1);
                let v = ema::<F>(x.v, g * g, c.beta_2, c.fresh_2);
                Cells::<F> { p: x.p, m, v, v_max: running_max::<F>(x.v_max, v, amsgrad) }
            }

            #[cube]
            /// The update `u` before the trust ratio.
            fn direction(c: Coefficients<F>, x: Cells<F>) flags(amsgrad) -> F {
                let second = running_max::<F>(x.v_max, x.v, amsgrad);
                let denominator = denominator::<F>(second, c.inverse_sqrt_correction_2, c.epsilon);
                let scaled = x.m * c.inverse_correction_1 / (denominator * c.adaptive + c.fixed);
                l2::<F>(scaled * c.factor, x.p, c.weight_decay)
            }

            #[cube]
            /// One element's terms of the norms.
            fn norms(c: Coefficients<F>, _g: F, x: Cells<F>) flags(amsgrad) -> Norms<F> {
                let u = direction::<F>(c, x, amsgrad);
                Norms::<F> { pp: x.p * x.p, uu: u * u }
            }

            #[cube]
            /// The trust ratio from the norms.
            fn scalars(c: Coefficients<F>, t: Norms<F>, _carried: F) -> Scalars<F> {
                let ratio = trust_ratio::<F>(F::sqrt(t.pp), F::sqrt(t.uu), c.lo, c.hi, c.trusted);
                Scalars::<F> { ratio }
            }

            #[cube]
            /// The step of one element, from its update `u` (its `direction`).
            fn update(c: Coefficients<F>, s: Scalars<F>, u: F, x: Cells<F>) flags(_amsgrad) -> Cells<F> {
                Cells::<F> { p: x.p - u * s.ratio * c.lr, m: x.m, v: x.v, v_max: x.v_max }
            }
        }
        $crate::two_pass_rule! { $mode;
            $crate::rules::lamb::TrustRule {
                coefficients: Coefficients, cells: Cells, terms: Norms, scalars: Scalars,
                advance: advance, terms_of: norms, scalars_of: scalars, update: update, lanes: 3,
                optional_lanes: 1, update_stores: 1, update_reads_grad: false, stash: direction,
            }
        }
    };
}
__rule_trust!(cpu);

impl Trust {
    /// The coefficients of step `time` (this step included) with `direction`, on a tensor
    /// of rank `rank`.
    pub fn coefficients(
        &self,
        lr: f64,
        time: usize,
        direction: Direction,
        rank: usize,
    ) -> Coefficients<f64> {
        let m = MomentCoefficients::new(self.beta_1, self.beta_2, self.bias_correction, time);
        let adaptive = if direction.adaptive { 1.0 } else { 0.0 };
        Coefficients {
            beta_1: m.beta_1,
            fresh_1: m.fresh_1,
            beta_2: m.beta_2,
            fresh_2: m.fresh_2,
            inverse_correction_1: m.inverse_correction_1,
            inverse_sqrt_correction_2: m.inverse_sqrt_correction_2,
            epsilon: self.epsilon,
            adaptive,
            fixed: 1.0 - adaptive,
            factor: direction.factor,
            weight_decay: self.mask.decay(rank, self.weight_decay),
            lo: self.scale_clip.0,
            hi: self.scale_clip.1,
            trusted: if self.mask.trusts(rank) { 1.0 } else { 0.0 },
            lr,
        }
    }
}

impl Lamb {
    /// The shared hyperparameters of the trust rule.
    pub fn trust(&self) -> Trust {
        Trust {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
            scale_clip: self.scale_clip,
            bias_correction: self.bias_correction,
            mask: VectorMask {
                weight_decay: self.exclude_vectors_from_weight_decay,
                trust_ratio: self.exclude_vectors_from_trust_ratio,
            },
        }
    }

    /// The direction at every step: Adam's.
    pub fn direction_at(&self, _time: usize) -> Direction {
        Direction::ADAM
    }
}

impl RaLars {
    /// The shared hyperparameters of the trust rule (always bias-corrected).
    pub fn trust(&self) -> Trust {
        Trust {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
            scale_clip: self.scale_clip,
            bias_correction: true,
            mask: VectorMask {
                weight_decay: self.exclude_vectors_from_weight_decay,
                trust_ratio: self.exclude_vectors_from_trust_ratio,
            },
        }
    }

    /// The direction at step `time`: rectified Adam once the variance is tractable, else
    /// the momentum alone (or Adam's, with `force_adaptive_momentum`).
    pub fn direction_at(&self, time: usize) -> Direction {
        match rectification(self.beta_2, time) {
            Some(factor) => Direction {
                adaptive: true,
                factor,
            },
            None => Direction {
                adaptive: self.force_adaptive_momentum,
                factor: 1.0,
            },
        }
    }
}

macro_rules! trust_optimizer {
    ($($rule:ident $name:literal),*) => {$(
        impl OptimizerRule for $rule {
            const NAME: &'static str = $name;
            const STATE_NAMES: &'static [&'static str] = &["moment_1", "moment_2"];
            const COUNTS_STEPS: bool = true;

            fn state_names(&self) -> Vec<&'static str> {
                Self::STATE_NAMES.to_vec()
            }


            type Rule = TrustRule;

            fn flag(&self) -> bool {
                false
            }

            fn coefficients(
                &self,
                lr: f64,
                time: usize,
                _first: bool,
                shape: &[usize],
            ) -> Coefficients<f64> {
                self.trust().coefficients(lr, time, self.direction_at(time), shape.len())
            }
        }
    )*};
}
trust_optimizer!(Lamb "Lamb", RaLars "RaLars");
