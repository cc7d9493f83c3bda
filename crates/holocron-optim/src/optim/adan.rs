use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

use super::{optimizer_config, simple_optimizer};
use crate::Execution;
use crate::blocks::{ProximalDecay, SecondMoment, SecondMomentState, bias_correction, ema};
use crate::checkpoint::tensor_shape;
use crate::fused;
use holocron_optim_core::rules;

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
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::{Linear, LinearConfig};
    /// use holocron_optim::AdanConfig;
    ///
    /// type B = Autodiff<NdArray>;
    /// let optim = AdanConfig::new().with_weight_decay(2e-2).init::<B, Linear<B>>();
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
/// Without AMSGrad this matches `burn::optim::AdanConfig` (with `no_prox = false`).
///
/// # Differences from holocron
///
/// holocron 0.3.0 never updates its previous gradient (its difference is always `g`) and also
/// adds `lambda p` to the gradient. Neither bug is reproduced: this is the official Adan
/// (sail-sg/Adan, timm, Burn).
#[derive(Clone, Debug)]
pub struct Adan {
    rule: rules::adan::Adan,
    beta_1: f64,
    beta_2: f64,
    second: SecondMoment,
    epsilon: f64,
    decay: ProximalDecay,
    execution: Execution,
}

/// State of [`Adan`].
#[derive(Record, Clone, Debug)]
pub struct AdanState<B: Backend, const D: usize> {
    /// The number of steps taken.
    pub time: usize,
    /// The gradient average `m`.
    pub moment_1: Tensor<B, D>,
    /// The gradient-difference average `v`.
    pub moment_diff: Tensor<B, D>,
    /// The second moment `n`.
    pub moment_2: SecondMomentState<B, D>,
    /// The gradient of the previous step.
    pub previous_grad: Tensor<B, D>,
}

impl AdanConfig {
    fn build_unchecked(&self) -> Adan {
        Adan {
            rule: self.rule(),
            execution: self.execution,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            second: SecondMoment {
                beta: self.beta_3,
                amsgrad: self.amsgrad,
            },
            epsilon: self.epsilon,
            decay: ProximalDecay::new(self.weight_decay),
        }
    }
}

simple_optimizer! { Adan, AdanState,
    step: |optim, lr, tensor, grad, state| {
        let stepped = fused::rule_step::<rules::adan::AdanRule, B, D, _>(
            optim.execution,
            optim.second.amsgrad,
            |time| optim.rule.coefficients(lr, time),
            tensor,
            grad,
            state,
            |state, grad| optim.lanes(state, grad),
            |time, lanes| Some(optim.state(time, lanes)),
        );
        let (tensor, grad, state) = match stepped {
            Ok(stepped) => return stepped,
            Err(declined) => declined,
        };
        let (time, moment_1, moment_diff, moment_2, diff) = match state {
            Some(s) => (
                s.time,
                Some(s.moment_1),
                s.moment_diff,
                Some(s.moment_2),
                grad.clone().sub(s.previous_grad),
            ),
            // The first difference is zero; so is the average of differences.
            None => (0, None, grad.zeros_like(), None, grad.zeros_like()),
        };
        let time = time + 1;
        let moment_1 = ema(moment_1, grad.clone(), optim.beta_1);
        let moment_diff = ema(Some(moment_diff), diff.clone(), optim.beta_2);
        let nesterov_grad = grad.clone().add(diff.mul_scalar(optim.beta_2));
        let moment_2 = optim.second.update(moment_2, nesterov_grad.square(), 0.0);

        let numerator = moment_1
            .clone()
            .div_scalar(bias_correction(optim.beta_1, time))
            .add(
                moment_diff
                    .clone()
                    .mul_scalar(optim.beta_2)
                    .div_scalar(bias_correction(optim.beta_2, time)),
            );
        let denominator =
            moment_2.denominator(bias_correction(optim.second.beta, time), optim.epsilon);
        let tensor = tensor.sub(numerator.div(denominator).mul_scalar(lr));
        let state = AdanState {
            time,
            moment_1,
            moment_diff,
            moment_2,
            previous_grad: grad,
        };
        (optim.decay.apply(tensor, lr), Some(state))
    },
    to_device: |state, device| {
        AdanState {
            time: state.time,
            moment_1: state.moment_1.to_device(device),
            moment_diff: state.moment_diff.to_device(device),
            moment_2: state.moment_2.to_device(device),
            previous_grad: state.previous_grad.to_device(device),
        }
    },
    shapes: |state| {
        {
            let mut shapes = vec![
                ("moment_1", tensor_shape(&state.moment_1)),
                ("moment_diff", tensor_shape(&state.moment_diff)),
                ("previous_grad", tensor_shape(&state.previous_grad)),
            ];
            shapes.extend(state.moment_2.shapes("moment_2", "max_moment_2"));
            shapes
        }
    },
    step_count: |state| Some(state.time),
}

impl Adan {
    /// The fused lanes `[m, v, g_prev, n]` (and `n_max` with AMSGrad) and the step count;
    /// zeros and 0 before the first step, whose previous gradient is not read (the first
    /// difference is 0).
    fn lanes<B: Backend, const D: usize>(
        &self,
        state: Option<AdanState<B, D>>,
        grad: &Tensor<B, D>,
    ) -> (usize, Vec<Tensor<B, D>>) {
        let (time, mut lanes, moment_2) = match state {
            Some(s) => (
                s.time,
                vec![s.moment_1, s.moment_diff, s.previous_grad],
                Some(s.moment_2),
            ),
            None => (
                0,
                vec![grad.zeros_like(), grad.zeros_like(), grad.zeros_like()],
                None,
            ),
        };
        lanes.extend(SecondMomentState::into_lanes(
            moment_2,
            grad,
            self.second.amsgrad,
        ));
        (time, lanes)
    }

    /// Back from [`Self::lanes`], with step count `time`.
    fn state<B: Backend, const D: usize>(
        &self,
        time: usize,
        lanes: Vec<Tensor<B, D>>,
    ) -> AdanState<B, D> {
        let mut lanes = lanes.into_iter();
        let mut next = || lanes.next().expect("Adan lane");
        let (moment_1, moment_diff, previous_grad) = (next(), next(), next());
        AdanState {
            time,
            moment_1,
            moment_diff,
            moment_2: SecondMomentState::from_lanes(&mut lanes, self.second.amsgrad),
            previous_grad,
        }
    }
}
