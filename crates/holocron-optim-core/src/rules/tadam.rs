//! TAdam: its rule, hyperparameters and coefficients.

use super::moments::bias_correction;
use crate::hyper::{CrossChecks, OptimizerRule, zeros};
use crate::tensor::DeviceTensor;

/// TAdam's hyperparameters, one list for this crate and every Burn crate's config.
#[doc(hidden)]
#[macro_export]
macro_rules! __fields_tadam {
    ($callback:ident [$($pass:tt)*]) => {
        $callback! { [$($pass)*]
            /// Sets the initial weight sum `W_0 = beta_1 / (1 - beta_1)` and its decay: `W` is
            /// multiplied by `(2 beta_1 - 1) / beta_1` each step, which turns negative below 0.5
            /// (and the weights with it, until a step divides by zero).
            beta_1: f64 = 0.9 => at_least_half,
            /// Coefficient of the second moment.
            beta_2: f64 = 0.999 => beta,
            /// Added to the denominators.
            epsilon: f64 = 1e-8 => positive,
            /// L2 weight decay `lambda`, added to the gradient.
            weight_decay: f64 = 0.0 => non_negative,
            /// Whether the denominator uses the running maximum of `v` (AMSGrad).
            amsgrad: bool = false,
            /// Degrees of freedom `nu` of the Student-t; `None` uses each tensor's number of
            /// elements. Bounded so that `nu + d` stays finite in `f32`.
            dof: Option<f64> = "None" | None => optional_degrees_of_freedom,
        }
    };
}

__fields_tadam!(
    hyperparameters[/// TAdam's hyperparameters (see the Burn crates' `TAdam` for the equations).
    TAdam]
);

impl CrossChecks for TAdam {}

/// TAdam's rule, two passes: the Mahalanobis-like distance of the gradient from the first
/// moment, then the weighted update (`d` the tensor's number of elements, `nu` the degrees
/// of freedom, `W` the carried weight sum):
///
/// ```text
/// w <- (nu + d) / (nu + sum (g - m)^2 / (v + eps))
/// m <- W / (W + w) m + w / (W + w) g,    W <- (2 beta_1 - 1) / beta_1 W + w
/// v <- beta_2 v + (1 - beta_2) g^2        (AMSGrad: v_max <- max(v_max, v))
/// p <- p - lr / (1 - beta_1^t) m / (sqrt(v) / sqrt(1 - beta_2^t) + eps)
/// ```
pub struct TAdamRule;

#[doc(hidden)]
#[macro_export]
macro_rules! __rule_tadam {
    ($mode:ident) => {
        $crate::dual! { $mode;
            use blocks;
            /// The scalars of one step.
            struct Coefficients {
                weight_decay, epsilon, dof, dof_plus_numel, weight_sum_decay, beta_2, fresh_2,
                inverse_sqrt_correction_2, step_size,
            }
            /// One element: the parameter, `m`, `v` and (AMSGrad) `v_max`.
            struct Cells { p, m, v, v_max }
            /// One element's term of the distance.
            struct Distance { distance }
            /// The weights of the old moment and of the gradient, and the next weight sum.
            struct Weights { keep, fresh, weight_sum }
            ;
            #[cube]
            /// One element's term of the distance.
            fn distance(c: Coefficients<F>, g: F, x: Cells<F>) flags(_amsgrad) -> Distance<F> {
                let residual = l2::<F>(g, x.p, c.weight_decay) - x.m;
                Distance::<F> { distance: residual * residual / (x.v + c.epsilon) }
            }

            #[cube]
            /// The weights from the distance and the weight sum.
            fn weights(c: Coefficients<F>, t: Distance<F>, weight_sum: F) -> Weights<F> {
                let weight = c.dof_plus_numel / (t.distance + c.dof);
                let total = weight_sum + weight;
                Weights::<F> {
                    keep: weight_sum / total,
                    fresh: weight / total,
                    weight_sum: weight_sum * c.weight_sum_decay + weight,
                }
            }

            #[cube]
            /// The step of one element.
            fn update(c: Coefficients<F>, s: Weights<F>, g: F, x: Cells<F>) flags(amsgrad) -> Cells<F> {
                let g = l2::<F>(g, x.p, c.weight_decay);
                let m = x.m * s.keep + g * s.fresh;
                let v = ema::<F>(x.v, g * g, c.beta_2, c.fresh_2);
                let v_max = running_max::<F>(x.v_max, v, amsgrad);
                let denominator = denominator::<F>(v_max, c.inverse_sqrt_correction_2, c.epsilon);
                Cells::<F> { p: x.p - m / denominator * c.step_size, m, v, v_max }
            }
        }
        $crate::two_pass_rule! { $mode;
            $crate::rules::tadam::TAdamRule {
                coefficients: Coefficients, cells: Cells, terms: Distance, scalars: Weights,
                terms_of: distance, scalars_of: weights, update: update, lanes: 3, optional_lanes: 1,
                carries: weight_sum, sums_read_param_for: weight_decay,
            }
        }
    };
}
__rule_tadam!(cpu);

impl TAdam {
    /// The coefficients of step `time` (this step included) on a tensor of `numel` elements.
    pub fn coefficients(&self, lr: f64, time: usize, numel: f64) -> Coefficients<f64> {
        let dof = self.dof.unwrap_or(numel);
        Coefficients {
            weight_decay: self.weight_decay,
            epsilon: self.epsilon,
            dof,
            dof_plus_numel: dof + numel,
            weight_sum_decay: (2.0 * self.beta_1 - 1.0) / self.beta_1,
            beta_2: self.beta_2,
            fresh_2: 1.0 - self.beta_2,
            inverse_sqrt_correction_2: 1.0 / bias_correction(self.beta_2, time).sqrt(),
            step_size: lr / bias_correction(self.beta_1, time),
        }
    }

    /// The weight sum before the first step, `W_0 = beta_1 / (1 - beta_1)`.
    pub fn initial_weight_sum(&self) -> f64 {
        self.beta_1 / (1.0 - self.beta_1)
    }
}

impl OptimizerRule for TAdam {
    const NAME: &'static str = "TAdam";
    const STATE_NAMES: &'static [&'static str] =
        &["moment_1", "moment_2", "max_moment_2", "weight_sum"];
    const SCALAR_STATE: &'static [&'static str] = &["weight_sum"];
    const COUNTS_STEPS: bool = true;

    fn state_names(&self) -> Vec<&'static str> {
        let mut names = vec!["moment_1", "moment_2"];
        if self.amsgrad {
            names.push("max_moment_2");
        }
        names.push("weight_sum");
        names
    }

    type Rule = TAdamRule;

    fn initial_state<T: DeviceTensor>(&self, grad: &T) -> Vec<T> {
        let mut lanes = zeros(self, grad);
        *lanes.last_mut().expect("the weight-sum lane") =
            grad.scalar_like(self.initial_weight_sum());
        lanes
    }

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
        TAdam::coefficients(self, lr, time, shape.iter().product::<usize>() as f64)
    }
}
