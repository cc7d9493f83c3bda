use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

use super::{optimizer_config, simple_optimizer};
use crate::Execution;
use crate::blocks::{
    HeavyBall, HeavyBallState, L2Decay, TrustRatio, VectorMask, broadcast, l2_norm,
};
use crate::checkpoint::tensor_shape;
use crate::fused;
use holocron_optim_core::rules;

holocron_optim_core::__fields_lars!(optimizer_config [
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
    pub struct LarsConfig for Lars: holocron_optim_core::rules::lars::Lars
]);

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
    rule: rules::lars::Lars,
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
            rule: self.rule(),
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
        let stepped = fused::rule_step::<rules::lars::LarsRule, B, D, _>(
            optim.execution,
            optim.momentum.momentum != 0.0,
            |time| optim.rule.coefficients(lr, time == 1, D),
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
