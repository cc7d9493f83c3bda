use burn::config::Config;
use burn::optim::{LearningRate, SimpleOptimizer, grad_clipping::GradientClippingConfig};
use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

use super::config_entry_points;
use crate::blocks::{HeavyBall, HeavyBallState, L2Decay, TrustRatio, broadcast, l2_norm};
use crate::checkpoint::{StateLayout, tensor_shape};
use crate::error::{Checker, ConfigError};
use crate::fused::rules::{HeavyBallRule, L2Rule};
use crate::fused::{self, Kernel, Lanes, Real, sum_each};

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
#[derive(Config, Debug)]
pub struct LarsConfig {
    /// Momentum factor `m` (`>= 0`).
    #[config(default = 0.0)]
    pub momentum: f64,
    /// Dampening of new directions in the momentum buffer (`[0, 1]`).
    #[config(default = 0.0)]
    pub dampening: f64,
    /// L2 weight decay `lambda` (`>= 0`), added to the gradient and to the trust-ratio
    /// denominator.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Nesterov momentum; needs `momentum > 0` and `dampening = 0`.
    #[config(default = false)]
    pub nesterov: bool,
    /// Bounds `(lo, hi)` of the parameter norm in the trust ratio.
    #[config(default = "(0.0, 10.0)")]
    pub scale_clip: (f64, f64),
    /// Whether to run the fused in-place step where the backend has one (ndarray in `f32`
    /// and `f64`; CubeCL kernels on WGPU and CUDA in `f32`); `false` always runs Burn's
    /// composed tensor operations. Both compute the same update.
    #[config(default = true)]
    pub fused: bool,
    /// Gradient clipping applied by the adaptor before the step.
    pub grad_clipping: Option<GradientClippingConfig>,
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
    momentum: HeavyBall,
    fused: bool,
}

/// State of [`Lars`]: the momentum buffer (no state at all without momentum).
#[derive(Record, Clone, Debug)]
pub struct LarsState<B: Backend, const D: usize> {
    /// The heavy-ball momentum buffer.
    pub momentum: HeavyBallState<B, D>,
}

impl LarsConfig {
    /// Checks every hyperparameter against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = Checker::new("LarsConfig");
        check.non_negative("momentum", self.momentum)?;
        check.unit("dampening", self.dampening)?;
        check.non_negative("weight_decay", self.weight_decay)?;
        check.clip_range("scale_clip", self.scale_clip)?;
        if self.nesterov && !(self.momentum > 0.0 && self.dampening == 0.0) {
            return check.fail(
                "nesterov",
                (self.momentum, self.dampening),
                "momentum > 0 and dampening = 0 when nesterov is true (value shown: (momentum, dampening))",
            );
        }
        Ok(())
    }

    fn build_unchecked(&self) -> Lars {
        Lars {
            fused: self.fused,
            decay: L2Decay {
                weight_decay: self.weight_decay,
            },
            trust: TrustRatio {
                lo: self.scale_clip.0,
                hi: self.scale_clip.1,
            },
            momentum: HeavyBall {
                momentum: self.momentum,
                dampening: self.dampening,
                nesterov: self.nesterov,
            },
        }
    }
}

config_entry_points!(LarsConfig, Lars);

impl<B: Backend> SimpleOptimizer<B> for Lars {
    type State<const D: usize> = LarsState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        let (tensor, grad, state) =
            match fused::cube::attempt(self.fused, tensor, grad, state, |t, g, s| {
                self.cube_step(lr, t, g, s)
            }) {
                Ok(stepped) => return stepped,
                Err(refused) => refused,
            };
        if self.fused && fused::supported(&tensor, &grad) {
            return self.fused_step(lr, tensor, grad, state);
        }
        let param_norm = l2_norm(&tensor);
        let denominator =
            l2_norm(&grad).add(param_norm.clone().mul_scalar(self.decay.weight_decay));
        let gamma = self.trust.ratio(param_norm, denominator);
        let direction = self.decay.apply(grad, &tensor).mul(broadcast(gamma));
        let (direction, momentum) = self.momentum.apply(direction, state.map(|s| s.momentum));
        let tensor = tensor.sub(direction.mul_scalar(lr));
        (tensor, momentum.map(|momentum| LarsState { momentum }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        LarsState {
            momentum: state.momentum.to_device(device),
        }
    }
}

impl<B: Backend> StateLayout<B> for Lars {
    const NAME: &'static str = "Lars";

    fn state_shapes<const D: usize>(state: &LarsState<B, D>) -> Vec<(&'static str, Vec<usize>)> {
        vec![("momentum.buffer", tensor_shape(&state.momentum.buffer))]
    }
}

impl Lars {
    fn fused_step<B: Backend, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<LarsState<B, D>>,
    ) -> (Tensor<B, D>, Option<LarsState<B, D>>) {
        let first = state.is_none();
        let lanes = self.lanes(state, &grad);
        let (tensor, lanes) = fused::run(
            &LarsStep {
                optim: self,
                lr,
                first,
            },
            tensor,
            Some(grad),
            lanes,
        );
        (tensor, Self::state(lanes))
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

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl Lars {
    /// The step as CubeCL kernels; the tensors come back when they cannot run.
    fn cube_step<B: Backend, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<LarsState<B, D>>,
    ) -> fused::cube::CubeStep<B, D, LarsState<B, D>> {
        // Without momentum there is no state at all, hence an optional state inside.
        let time = usize::from(state.is_some());
        let lanes = self.lanes(state, &grad);
        let [keep, fresh, step_direction, step_buffer] =
            HeavyBallRule::<f64>::weights(&self.momentum, time == 0);
        let c = [
            self.decay.weight_decay,
            self.trust.lo,
            self.trust.hi,
            keep,
            fresh,
            step_direction,
            step_buffer,
            lr,
        ];
        let unpack = |_, lanes: Vec<Tensor<B, D>>| Self::state(lanes);
        match fused::cube::step(
            fused::cube::Rule::Lars,
            &c,
            tensor,
            grad,
            time,
            lanes,
            unpack,
        ) {
            Ok((tensor, state)) => Ok((tensor, state.flatten())),
            Err((tensor, grad, state)) => Err((tensor, grad, state.flatten())),
        }
    }
}

/// A LARS step: it keeps no step count, only whether this is the first step.
struct LarsStep<'a> {
    optim: &'a Lars,
    lr: f64,
    first: bool,
}

/// Two passes: the norms `‖p‖`, `‖g‖`, then the update. Lanes: `[]`, or `[buffer]` with
/// momentum.
impl Kernel for LarsStep<'_> {
    fn run<E: Real, const AMSGRAD: bool>(&self, mut lanes: Lanes<'_, E>) {
        let optim = self.optim;
        let [pp, gg] = lanes.pass(|Lanes { param, grad, .. }| {
            let (n, grad) = (param.len(), &grad[..param.len()]);
            sum_each(n, |i| [param[i] * param[i], grad[i] * grad[i]])
        });
        let param_norm = pp.sqrt();
        let denominator = gg.sqrt() + param_norm * optim.decay.weight_decay;
        let ratio = E::of(optim.trust.ratio_of(param_norm, denominator));
        let decay = L2Rule::<E>::new(&optim.decay);
        let momentum = HeavyBallRule::<E>::new(&optim.momentum, self.first);
        let lr = E::of(self.lr);
        lanes.pass(
            |Lanes {
                 param,
                 grad,
                 mut state,
             }| match state.first_mut() {
                Some(buffer) => {
                    for ((p, &g), b) in param.iter_mut().zip(grad).zip(buffer.iter_mut()) {
                        let direction = decay.apply(g, *p) * ratio;
                        *p = *p - momentum.apply(b, direction) * lr;
                    }
                    []
                }
                None => {
                    for (p, &g) in param.iter_mut().zip(grad) {
                        *p = *p - decay.apply(g, *p) * ratio * lr;
                    }
                    []
                }
            },
        );
    }
}
