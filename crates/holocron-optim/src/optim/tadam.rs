use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

use super::{optimizer_config, simple_optimizer};
use crate::Execution;
use crate::blocks::{L2Decay, SecondMoment, SecondMomentState, bias_correction, broadcast};
use crate::checkpoint::tensor_shape;
use crate::fused;
use holocron_optim_core::rules;

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
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::{Linear, LinearConfig};
    /// use holocron_optim::TAdamConfig;
    ///
    /// type B = Autodiff<NdArray>;
    /// let optim = TAdamConfig::new().with_dof(Some(2.0)).init::<B, Linear<B>>();
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
/// This is holocron 0.3.0 exactly (and the paper); its documentation's `(g_t - g_{t-1})` in
/// `v_t` is a typo. `w` and `W` are one-element tensors that stay on the device.
#[derive(Clone, Debug)]
pub struct TAdam {
    rule: rules::tadam::TAdam,
    beta_1: f64,
    second: SecondMoment,
    epsilon: f64,
    decay: L2Decay,
    dof: Option<f64>,
    execution: Execution,
}

/// State of [`TAdam`].
#[derive(Record, Clone, Debug)]
pub struct TAdamState<B: Backend, const D: usize> {
    /// The number of steps taken.
    pub time: usize,
    /// The robust first moment `m`.
    pub moment_1: Tensor<B, D>,
    /// The second moment `v`.
    pub moment_2: SecondMomentState<B, D>,
    /// The weight sum `W` (one element).
    pub weight_sum: Tensor<B, 1>,
}

impl TAdamConfig {
    fn build_unchecked(&self) -> TAdam {
        TAdam {
            rule: self.rule(),
            execution: self.execution,
            beta_1: self.beta_1,
            second: SecondMoment {
                beta: self.beta_2,
                amsgrad: self.amsgrad,
            },
            epsilon: self.epsilon,
            decay: L2Decay::new(self.weight_decay),
            dof: self.dof,
        }
    }
}

simple_optimizer! { TAdam, TAdamState,
    step: |optim, lr, tensor, grad, state| {
        let numel = tensor.shape().num_elements() as f64;
        let stepped = fused::rule_step::<rules::tadam::TAdamRule, B, D, _>(
            optim.execution,
            optim.second.amsgrad,
            |time| optim.rule.coefficients(lr, time, numel),
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
        let grad = optim.decay.apply(grad, &tensor);
        let dof = optim.dof.unwrap_or(numel);
        let (time, moment_1, moment_2, weight_sum) = optim.unpack(state, &grad);
        let time = time + 1;

        // Weight of this gradient under the Student-t model fitted so far.
        let variance = match &moment_2 {
            Some(v) => v.average.clone().add_scalar(optim.epsilon),
            None => grad.full_like(optim.epsilon),
        };
        let distance = grad
            .clone()
            .sub(moment_1.clone())
            .square()
            .div(variance)
            .sum();
        let weight = distance.add_scalar(dof).recip().mul_scalar(dof + numel);
        let total = weight_sum.clone().add(weight.clone());
        let moment_1 = moment_1
            .mul(broadcast(weight_sum.clone().div(total.clone())))
            .add(
                grad.clone()
                    .mul(broadcast(weight.clone()))
                    .div(broadcast(total)),
            );
        let weight_sum = weight_sum
            .mul_scalar((2.0 * optim.beta_1 - 1.0) / optim.beta_1)
            .add(weight);
        let moment_2 = optim.second.update(moment_2, grad.square(), 0.0);

        let denominator =
            moment_2.denominator(bias_correction(optim.second.beta, time), optim.epsilon);
        let step_size = lr / bias_correction(optim.beta_1, time);
        let tensor = tensor.sub(moment_1.clone().div(denominator).mul_scalar(step_size));
        let state = TAdamState {
            time,
            moment_1,
            moment_2,
            weight_sum,
        };
        (tensor, Some(state))
    },
    to_device: |state, device| {
        TAdamState {
            time: state.time,
            moment_1: state.moment_1.to_device(device),
            moment_2: state.moment_2.to_device(device),
            weight_sum: state.weight_sum.to_device(device),
        }
    },
    shapes: |state| {
        {
            // `weight_sum` is one element whatever the parameter's shape.
            let mut shapes = vec![("moment_1", tensor_shape(&state.moment_1))];
            shapes.extend(state.moment_2.shapes("moment_2", "max_moment_2"));
            shapes
        }
    },
    step_count: |state| Some(state.time),
    fixed_shapes: |state| vec![("weight_sum", tensor_shape(&state.weight_sum), vec![1])],
}

/// A [`TAdamState`] in pieces: step count, `m`, `v` and `W`.
type Unpacked<B, const D: usize> = (
    usize,
    Tensor<B, D>,
    Option<SecondMomentState<B, D>>,
    Tensor<B, 1>,
);

impl TAdam {
    /// The state's pieces; before the first step `m = 0`, no `v`, and `W = beta_1 / (1 - beta_1)`.
    fn unpack<B: Backend, const D: usize>(
        &self,
        state: Option<TAdamState<B, D>>,
        grad: &Tensor<B, D>,
    ) -> Unpacked<B, D> {
        match state {
            Some(s) => (s.time, s.moment_1, Some(s.moment_2), s.weight_sum),
            None => (
                0,
                grad.zeros_like(),
                None,
                // Burn's default float type is per device, not per backend type: take the
                // gradient's dtype so an f64 run keeps W in f64.
                Tensor::full(
                    [1],
                    self.beta_1 / (1.0 - self.beta_1),
                    (&grad.device(), grad.dtype()),
                ),
            ),
        }
    }

    /// The fused paths' lanes `[m, v, W]` or `[m, v, v_max, W]`, the weight sum `W` as a
    /// one-element lane of the parameter's rank, and the step count so far.
    fn lanes<B: Backend, const D: usize>(
        &self,
        state: Option<TAdamState<B, D>>,
        grad: &Tensor<B, D>,
    ) -> (usize, Vec<Tensor<B, D>>) {
        let amsgrad = self.second.amsgrad;
        let (time, moment_1, moment_2, weight_sum) = self.unpack(state, grad);
        let mut lanes = vec![moment_1];
        lanes.extend(SecondMomentState::into_lanes(moment_2, grad, amsgrad));
        lanes.push(weight_sum.reshape([1; D]));
        (time, lanes)
    }

    /// Back from [`Self::lanes`], with the new step count.
    fn state<B: Backend, const D: usize>(
        &self,
        time: usize,
        lanes: Vec<Tensor<B, D>>,
    ) -> TAdamState<B, D> {
        let mut lanes = lanes.into_iter();
        let moment_1 = lanes.next().expect("first-moment lane");
        let moment_2 = SecondMomentState::from_lanes(&mut lanes, self.second.amsgrad);
        let weight_sum = lanes.next().expect("weight-sum lane").reshape([1]);
        TAdamState {
            time,
            moment_1,
            moment_2,
            weight_sum,
        }
    }
}
