use burn::optim::LearningRate;
use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

use super::{optimizer_config, simple_optimizer};
use crate::Execution;
use crate::blocks::{
    HeavyBall, HeavyBallState, L2Decay, TrustRatio, VectorMask, broadcast, l2_norm,
};
use crate::checkpoint::tensor_shape;
use crate::fused;
use crate::rule::{dual, two_pass_rule};

optimizer_config! {
    /// Configuration of [`Lars`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `momentum` | `momentum` | 0 |
    /// | `dampening` | `dampening` | 0 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | `nesterov` | `nesterov` | false |
    /// | `scale_clip` | `scale_clip` | (0, 10) |
    ///
    /// # Example
    ///
    /// ```
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::{Linear, LinearConfig};
    /// use holocron_optim::LarsConfig;
    ///
    /// type B = Autodiff<NdArray>;
    /// let optim = LarsConfig::new()
    ///     .with_momentum(0.9)
    ///     .with_weight_decay(5e-4)
    ///     .init::<B, Linear<B>>();
    /// # let _ = optim;
    /// assert!(LarsConfig::new().with_nesterov(true).try_init::<B, Linear<B>>().is_err());
    /// ```
    pub struct LarsConfig for Lars {
        /// Momentum factor `m`.
        momentum: f64 = 0.0 => non_negative,
        /// Dampening of new directions in the momentum buffer.
        dampening: f64 = 0.0 => unit,
        /// L2 weight decay `lambda`, added to the gradient and to the trust-ratio denominator.
        weight_decay: f64 = 0.0 => non_negative,
        /// Nesterov momentum; needs `momentum > 0` and `dampening = 0`.
        nesterov: bool = false,
        /// Bounds `(lo, hi)` of the parameter norm in the trust ratio.
        scale_clip: (f64, f64) = "(0.0, 10.0)" => clip_range,
        /// Whether rank-1 tensors (biases, normalisation scales) take no weight decay, as
        /// SimCLR, BYOL and BERT train; `false` (holocron) decays every tensor.
        exclude_vectors_from_weight_decay: bool = false,
        /// Whether rank-1 tensors take the plain step, unscaled by the trust ratio, as SimCLR,
        /// BYOL and BERT train; `false` (holocron) scales every tensor.
        exclude_vectors_from_trust_ratio: bool = false,
    }
    also: |check, config| {
        if config.nesterov && !(config.momentum > 0.0 && config.dampening == 0.0) {
            check.fail(
                "nesterov",
                (config.momentum, config.dampening),
                "momentum > 0 and dampening = 0 when nesterov is true (value shown: (momentum, dampening))",
            )
        } else {
            Ok(())
        }
    }
}

/// LARS: layer-wise adaptive rate scaling, from ["Large batch training of convolutional
/// networks"](https://arxiv.org/abs/1708.03888).
///
/// For each parameter tensor, with `t >= 1`:
///
/// ```text
/// gamma = clamp(‖p‖, lo, hi) / (‖g‖ + lambda ‖p‖)      (1 when either side is 0)
/// d     = gamma (g + lambda p)
/// buf   = d                                  (first step)
/// buf   = m buf + (1 - dampening) d          (later steps)
/// d     = d + m buf  if nesterov  else  buf  (when m > 0)
/// p    <- p - lr d
/// ```
///
/// With `exclude_vectors_from_weight_decay` a rank-1 tensor (a bias, a normalisation
/// scale) takes `lambda = 0`; with `exclude_vectors_from_trust_ratio` its ratio is 1 (the
/// SimCLR, BYOL and BERT convention, optax's masks; [`VectorMask`](crate::blocks::VectorMask)).
///
/// The paper's global schedule `lr_t = lr (1 - t/T)^2` is a learning-rate schedule, provided
/// as [`PolynomialLrSchedulerConfig`](crate::PolynomialLrSchedulerConfig).
///
/// # Differences from holocron
///
/// holocron 0.3.0 applies the trust ratio after the momentum buffer and ignores
/// `scale_clip`. Here the ratio scales the direction before momentum (the paper, timm) and
/// the norm is clamped to `scale_clip`. Both agree when `momentum = 0` and `‖p‖` lies
/// inside the clip range.
#[derive(Clone, Debug)]
pub struct Lars {
    decay: L2Decay,
    trust: TrustRatio,
    mask: VectorMask,
    momentum: HeavyBall,
    execution: Execution,
}

/// State of [`Lars`]: the momentum buffer (no state at all without momentum).
#[derive(Record, Clone, Debug)]
pub struct LarsState<B: Backend, const D: usize> {
    /// The heavy-ball momentum buffer.
    pub momentum: HeavyBallState<B, D>,
}

impl LarsConfig {
    fn build_unchecked(&self) -> Lars {
        Lars {
            execution: self.execution,
            decay: L2Decay::new(self.weight_decay),
            trust: TrustRatio::new(self.scale_clip),
            mask: VectorMask {
                weight_decay: self.exclude_vectors_from_weight_decay,
                trust_ratio: self.exclude_vectors_from_trust_ratio,
            },
            momentum: HeavyBall {
                momentum: self.momentum,
                dampening: self.dampening,
                nesterov: self.nesterov,
            },
        }
    }
}

simple_optimizer! { Lars, LarsState,
    step: |optim, lr, tensor, grad, state| {
        let stepped = fused::rule_step::<LarsRule, B, D, _>(
            optim.execution,
            optim.momentum.momentum != 0.0,
            |time| optim.coefficients(lr, time, D),
            tensor,
            grad,
            state,
            // LARS keeps no step count: 1 once the momentum buffer exists, else 0.
            |state, grad| (usize::from(state.is_some()), optim.lanes(state, grad)),
            |_, lanes| Self::state(lanes),
        );
        let (tensor, grad, state) = match stepped {
            Ok(stepped) => return stepped,
            Err(declined) => declined,
        };
        let decay = optim.mask.decay(D, optim.decay);
        let direction = decay.apply(grad.clone(), &tensor);
        let direction = if optim.mask.trusts(D) {
            let param_norm = l2_norm(&tensor);
            let denominator = l2_norm(&grad).add(param_norm.clone().mul_scalar(decay.weight_decay));
            direction.mul(broadcast(optim.trust.ratio(param_norm, denominator)))
        } else {
            direction
        };
        let (direction, momentum) = optim.momentum.apply(direction, state.map(|s| s.momentum));
        let tensor = tensor.sub(direction.mul_scalar(lr));
        (tensor, momentum.map(|momentum| LarsState { momentum }))
    },
    to_device: |state, device| LarsState { momentum: state.momentum.to_device(device) },
    shapes: |state| vec![("momentum.buffer", tensor_shape(&state.momentum.buffer))],
}

impl Lars {
    /// The coefficients of a step of a tensor of rank `rank`, `time` 1 for the first.
    fn coefficients(&self, lr: LearningRate, time: usize, rank: usize) -> cpu::Coefficients<f64> {
        let [keep, fresh, step_direction, step_buffer] = self.momentum.weights(time == 1);
        cpu::Coefficients {
            weight_decay: self.mask.decay(rank, self.decay).weight_decay,
            lo: self.trust.lo,
            hi: self.trust.hi,
            trusted: if self.mask.trusts(rank) { 1.0 } else { 0.0 },
            keep,
            fresh,
            step_direction,
            step_buffer,
            lr,
        }
    }

    /// The fused paths' lanes: `[]` without momentum, else `[buffer]` (zero before the
    /// first step).
    fn lanes<B: Backend, const D: usize>(
        &self,
        state: Option<LarsState<B, D>>,
        grad: &Tensor<B, D>,
    ) -> Vec<Tensor<B, D>> {
        match state {
            _ if self.momentum.momentum == 0.0 => vec![],
            Some(s) => vec![s.momentum.buffer],
            None => vec![grad.zeros_like()],
        }
    }

    /// Back from [`Self::lanes`].
    fn state<B: Backend, const D: usize>(lanes: Vec<Tensor<B, D>>) -> Option<LarsState<B, D>> {
        lanes.into_iter().next().map(|buffer| LarsState {
            momentum: HeavyBallState { buffer },
        })
    }
}

/// LARS's rule: the norms `‖p‖` and `‖g‖`, the trust ratio, then the update with the
/// momentum buffer (the lane exists only with momentum).
struct LarsRule;

two_pass_rule! {
    LarsRule {
        coefficients: Coefficients, cells: Cells, terms: Norms, scalars: Scalars,
        terms_of: norms, scalars_of: scalars, update: update, lanes: 1, optional_lanes: 1,
    }
}

dual! {
    use crate::rule::blocks;
    /// The scalars of one step: the heavy-ball weights are those of `HeavyBall::weights`.
    /// `trusted` is 1 where the trust ratio applies, 0 for a tensor the mask leaves out.
    struct Coefficients {
        weight_decay, lo, hi, trusted, keep, fresh, step_direction, step_buffer, lr,
    }
    /// One element: the parameter and (with momentum) its buffer.
    struct Cells { p, buffer }
    /// The summed squares of the parameter and the gradient.
    struct Norms { pp, gg }
    /// The trust ratio.
    struct Scalars { ratio }
    ;
    #[cube]
    fn norms(_c: Coefficients<F>, g: F, x: Cells<F>) flags(_momentum) -> Norms<F> {
        Norms::<F> { pp: x.p * x.p, gg: g * g }
    }

    #[cube]
    fn scalars(c: Coefficients<F>, t: Norms<F>, _carried: F) -> Scalars<F> {
        let param_norm = F::sqrt(t.pp);
        let denominator = F::sqrt(t.gg) + param_norm * c.weight_decay;
        Scalars::<F> { ratio: trust_ratio::<F>(param_norm, denominator, c.lo, c.hi, c.trusted) }
    }

    #[cube]
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
