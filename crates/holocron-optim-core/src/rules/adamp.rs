//! AdamP: its rule, hyperparameters and coefficients.

use super::moments::MomentCoefficients;
use crate::hyper::{CrossChecks, OptimizerRule};

/// AdamP's hyperparameters, one list for this crate and every Burn crate's config.
#[doc(hidden)]
#[macro_export]
macro_rules! __fields_adamp {
    ($callback:ident [$($pass:tt)*]) => {
        $callback! { [$($pass)*]
            /// Coefficient of the first moment.
            beta_1: f64 = 0.9 => beta,
            /// Coefficient of the second moment.
            beta_2: f64 = 0.999 => beta,
            /// Added to the denominator and to `‖p‖` in the projection.
            epsilon: f64 = 1e-8 => positive,
            /// L2 weight decay `lambda`, added to the gradient.
            weight_decay: f64 = 0.0 => non_negative,
            /// Whether the denominator uses the running maximum of `v` (AMSGrad).
            amsgrad: bool = false,
            /// Cosine threshold of the projection, divided by `sqrt(numel)`.
            delta: f64 = 0.1 => positive,
        }
    };
}

__fields_adamp!(
    hyperparameters[/// AdamP's hyperparameters (see the Burn crates' `AdamP` for the equations).
    AdamP]
);

impl CrossChecks for AdamP {}

/// The floor of the norms in the projection's cosine (holocron's, and the paper code's).
pub const COSINE_NORM_FLOOR: f64 = 1e-8;

/// AdamP's rule, two passes: Adam's moments and the dot products of the projection test,
/// then the update with the radial component removed where the cosine between `p` and
/// `g` is below `delta / sqrt(numel)`:
///
/// ```text
/// u <- m_hat / (sqrt(v_hat) + eps)
/// u <- u - (p / (||p|| + eps)) <p / (||p|| + eps), u>     where |cos(p, g)| < delta / sqrt(n)
/// p <- p - lr u
/// ```
pub struct AdamPRule;

#[doc(hidden)]
#[macro_export]
macro_rules! __rule_adamp {
    ($mode:ident) => {
        $crate::dual! { $mode;
            use blocks;
            /// The scalars of one step; `threshold` is `delta / sqrt(numel)`, `norm_floor` the
            /// floor of the norms in the cosine.
            struct Coefficients {
                weight_decay, beta_1, fresh_1, beta_2, fresh_2, inverse_correction_1,
                inverse_sqrt_correction_2, epsilon, norm_floor, threshold, lr,
            }
            /// One element: the parameter, `m`, `v` and (AMSGrad) `v_max`.
            struct Cells { p, m, v, v_max }
            /// One element's terms of `‖p‖²`, `‖g‖²`, `<p, g>` and `<p, u>`.
            struct Dots { pp, gg, pg, pu }
            /// The radial coefficient: `<p, u> / (‖p‖ + eps)²` where projected, else 0.
            struct Projection { radial }
            ;
            #[cube]
            /// The moments' update, in the summing pass.
            fn advance(c: Coefficients<F>, g: F, x: Cells<F>) flags(amsgrad) -> Cells<F> {
                let g = l2::<F>(g, x.p, c.weight_decay);
                let m = ema::<F>(x.m, g, c.beta_1, c.fresh_1);
                let v = ema::<F>(x.v, g * g, c.beta_2, c.fresh_2);
                Cells::<F> { p: x.p, m, v, v_max: running_max::<F>(x.v_max, v, amsgrad) }
            }

            #[cube]
            /// Adam's direction `m_hat / (sqrt(v_hat) + eps)`.
            fn direction(c: Coefficients<F>, x: Cells<F>) flags(amsgrad) -> F {
                let second = running_max::<F>(x.v_max, x.v, amsgrad);
                let denominator = denominator::<F>(second, c.inverse_sqrt_correction_2, c.epsilon);
                x.m * c.inverse_correction_1 / denominator
            }

            #[cube]
            /// One element's terms of the dot products.
            fn dots(c: Coefficients<F>, g: F, x: Cells<F>) flags(amsgrad) -> Dots<F> {
                let g = l2::<F>(g, x.p, c.weight_decay);
                let u = direction::<F>(c, x, amsgrad);
                Dots::<F> { pp: x.p * x.p, gg: g * g, pg: x.p * g, pu: x.p * u }
            }

            #[cube]
            /// The projection test and coefficient from the dot products.
            fn projection(c: Coefficients<F>, t: Dots<F>, _carried: F) -> Projection<F> {
                let param_norm = F::sqrt(t.pp);
                let cosine = t.pg / (max(param_norm, c.norm_floor) * max(F::sqrt(t.gg), c.norm_floor));
                let shifted_norm = param_norm + c.epsilon;
                let radial = select(less::<F>(cosine, c.threshold), t.pu / shifted_norm, F::new(0.0));
                Projection::<F> { radial: radial / shifted_norm }
            }

            #[cube]
            /// The step of one element, from its Adam direction `d` (its `direction`).
            fn update(c: Coefficients<F>, s: Projection<F>, d: F, x: Cells<F>) flags(_amsgrad) -> Cells<F> {
                let u = d - x.p * s.radial;
                Cells::<F> { p: x.p - u * c.lr, m: x.m, v: x.v, v_max: x.v_max }
            }
        }
        $crate::two_pass_rule! { $mode;
            $crate::rules::adamp::AdamPRule {
                coefficients: Coefficients, cells: Cells, terms: Dots, scalars: Projection,
                advance: advance, terms_of: dots, scalars_of: projection, update: update, lanes: 3,
                optional_lanes: 1, update_stores: 1, update_reads_grad: false, stash: direction,
            }
        }
    };
}
__rule_adamp!(cpu);

impl AdamP {
    /// The coefficients of step `time` (this step included) on a tensor of `numel` elements.
    pub fn coefficients(&self, lr: f64, time: usize, numel: usize) -> Coefficients<f64> {
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
            norm_floor: COSINE_NORM_FLOOR,
            threshold: self.delta / (numel as f64).sqrt(),
            lr,
        }
    }
}

impl OptimizerRule for AdamP {
    const NAME: &'static str = "AdamP";
    const STATE_NAMES: &'static [&'static str] = &["moment_1", "moment_2", "max_moment_2"];
    const COUNTS_STEPS: bool = true;

    fn state_names(&self) -> Vec<&'static str> {
        Self::STATE_NAMES[..if self.amsgrad { 3 } else { 2 }].to_vec()
    }

    type Rule = AdamPRule;

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
        let _ = first;
        AdamP::coefficients(self, lr, time, shape.iter().product())
    }
}
