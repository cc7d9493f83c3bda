use burn::config::Config;
use burn::optim::{LearningRate, SimpleOptimizer, grad_clipping::GradientClippingConfig};
use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

use super::config_entry_points;
use crate::blocks::{AdamMoments, AdamMomentsState, L2Decay, SecondMoment, ema};
use crate::checkpoint::{StateLayout, tensor_shape};
use crate::error::{Checker, ConfigError};
use crate::fused::rules::{AdamRule, Ema, L2Rule, MomentLanes};
use crate::fused::{self, Kernel, Lanes, Real, Step};

/// Configuration of [`AdEMAMix`].
///
/// | holocron keyword | field | default |
/// |---|---|---|
/// | `betas` | `beta_1`, `beta_2`, `beta_3` | 0.9, 0.999, 0.9999 |
/// | `alpha` | `alpha` | 5.0 |
/// | `eps` | `epsilon` | 1e-8 |
/// | `weight_decay` | `weight_decay` | 0 |
///
/// # Example
///
/// ```
/// use burn::backend::{Autodiff, NdArray};
/// use burn::nn::{Linear, LinearConfig};
/// use holocron_optim::AdEMAMixConfig;
///
/// type B = Autodiff<NdArray>;
/// let optim = AdEMAMixConfig::new().with_alpha(2.0).init::<B, Linear<B>>();
/// # let _ = optim;
/// ```
#[derive(Config, Debug)]
pub struct AdEMAMixConfig {
    /// Coefficient of the fast gradient average (`[0, 1)`).
    #[config(default = 0.9)]
    pub beta_1: f64,
    /// Coefficient of the second moment (`[0, 1)`).
    #[config(default = 0.999)]
    pub beta_2: f64,
    /// Coefficient of the slow gradient average (`[0, 1)`).
    #[config(default = 0.9999)]
    pub beta_3: f64,
    /// Weight of the slow average in the update (`>= 0`).
    #[config(default = 5.0)]
    pub alpha: f64,
    /// Added to the denominator (`>= 0`).
    #[config(default = 1e-8)]
    pub epsilon: f64,
    /// L2 weight decay `lambda`, added to the gradient (`>= 0`).
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Whether to run the fused in-place step where the backend has one (ndarray in `f32`
    /// and `f64`; CubeCL kernels on WGPU and CUDA in `f32`); `false` always runs Burn's
    /// composed tensor operations. Both compute the same update.
    #[config(default = true)]
    pub fused: bool,
    /// Gradient clipping applied by the adaptor before the step.
    pub grad_clipping: Option<GradientClippingConfig>,
}

/// AdEMAMix, from ["The AdEMAMix Optimizer: Better, Faster, Older"](https://arxiv.org/abs/2409.03137).
///
/// For each parameter tensor, with `t >= 1`:
///
/// ```text
/// g   <- g + lambda p
/// m1  <- beta_1 m1 + (1 - beta_1) g
/// nu  <- beta_2 nu + (1 - beta_2) g^2
/// m2  <- beta_3 m2 + (1 - beta_3) g          (never bias-corrected)
/// p   <- p - lr (m1 / (1 - beta_1^t) + alpha m2) / (sqrt(nu) / sqrt(1 - beta_2^t) + eps)
/// ```
///
/// This is holocron 0.3.0 exactly; its documentation's `(g_t - m_t)^2 + eps` second moment
/// is a typo for the `g^2` of its code.
#[derive(Clone, Debug)]
pub struct AdEMAMix {
    moments: AdamMoments,
    beta_3: f64,
    alpha: f64,
    epsilon: f64,
    decay: L2Decay,
    fused: bool,
}

/// State of [`AdEMAMix`].
#[derive(Record, Clone, Debug)]
pub struct AdEMAMixState<B: Backend, const D: usize> {
    /// Step count, fast average `m1` and second moment `nu`.
    pub moments: AdamMomentsState<B, D>,
    /// The slow gradient average `m2`.
    pub slow_moment: Tensor<B, D>,
}

impl AdEMAMixConfig {
    /// Checks every hyperparameter against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = Checker::new("AdEMAMixConfig");
        check.beta("beta_1", self.beta_1)?;
        check.beta("beta_2", self.beta_2)?;
        check.beta("beta_3", self.beta_3)?;
        check.non_negative("alpha", self.alpha)?;
        check.non_negative("epsilon", self.epsilon)?;
        check.non_negative("weight_decay", self.weight_decay)
    }

    fn build_unchecked(&self) -> AdEMAMix {
        AdEMAMix {
            fused: self.fused,
            moments: AdamMoments {
                beta_1: self.beta_1,
                second: SecondMoment {
                    beta: self.beta_2,
                    amsgrad: false,
                },
                bias_correction: true,
            },
            beta_3: self.beta_3,
            alpha: self.alpha,
            epsilon: self.epsilon,
            decay: L2Decay {
                weight_decay: self.weight_decay,
            },
        }
    }
}

config_entry_points!(AdEMAMixConfig, AdEMAMix);

impl<B: Backend> SimpleOptimizer<B> for AdEMAMix {
    type State<const D: usize> = AdEMAMixState<B, D>;

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
        let grad = self.decay.apply(grad, &tensor);
        let (moments, slow_moment) = match state {
            Some(s) => (Some(s.moments), Some(s.slow_moment)),
            None => (None, None),
        };
        let slow_moment = ema(slow_moment, grad.clone(), self.beta_3);
        let moments = self.moments.update(grad, moments);
        let numerator = self
            .moments
            .first(&moments)
            .add(slow_moment.clone().mul_scalar(self.alpha));
        let update = numerator.div(self.moments.denominator(&moments, self.epsilon));
        let state = AdEMAMixState {
            moments,
            slow_moment,
        };
        (tensor.sub(update.mul_scalar(lr)), Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        AdEMAMixState {
            moments: state.moments.to_device(device),
            slow_moment: state.slow_moment.to_device(device),
        }
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl AdEMAMix {
    /// The step as one CubeCL kernel; the tensors come back when it cannot run.
    fn cube_step<B: Backend, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<AdEMAMixState<B, D>>,
    ) -> fused::cube::CubeStep<B, D, AdEMAMixState<B, D>> {
        use crate::blocks::bias_correction;
        let (time, lanes) = Self::lanes(state, &grad);
        let (beta_1, beta_2) = (self.moments.beta_1, self.moments.second.beta);
        let next = time + 1;
        let c = [
            self.decay.weight_decay,
            self.beta_3,
            1.0 - self.beta_3,
            beta_1,
            1.0 - beta_1,
            beta_2,
            1.0 - beta_2,
            1.0 / bias_correction(beta_1, next),
            self.alpha,
            1.0 / bias_correction(beta_2, next).sqrt(),
            self.epsilon,
            lr,
        ];
        let rule = fused::cube::Rule::AdEMAMix;
        fused::cube::step(rule, &c, tensor, grad, time, lanes, Self::state)
    }
}

impl<B: Backend> StateLayout<B> for AdEMAMix {
    const NAME: &'static str = "AdEMAMix";

    fn state_shapes<const D: usize>(
        state: &AdEMAMixState<B, D>,
    ) -> Vec<(&'static str, Vec<usize>)> {
        {
            let mut shapes = state.moments.shapes();
            shapes.push(("slow_moment", tensor_shape(&state.slow_moment)));
            shapes
        }
    }
}

impl AdEMAMix {
    fn fused_step<B: Backend, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<AdEMAMixState<B, D>>,
    ) -> (Tensor<B, D>, Option<AdEMAMixState<B, D>>) {
        let (time, lanes) = Self::lanes(state, &grad);
        let time = time + 1;
        let (tensor, lanes) = fused::run_step(self, lr, time, tensor, grad, lanes);
        (tensor, Some(Self::state(time, lanes)))
    }

    /// The fused lanes `[m2, m1, nu]` and the step count; zeros and 0 before the first step.
    fn lanes<B: Backend, const D: usize>(
        state: Option<AdEMAMixState<B, D>>,
        grad: &Tensor<B, D>,
    ) -> (usize, Vec<Tensor<B, D>>) {
        let (moments, slow_moment) = match state {
            Some(s) => (Some(s.moments), s.slow_moment),
            None => (None, grad.zeros_like()),
        };
        let (time, moment_lanes) = AdamMomentsState::into_lanes(moments, grad, false);
        let mut lanes = vec![slow_moment];
        lanes.extend(moment_lanes);
        (time, lanes)
    }

    /// Back from [`Self::lanes`], with step count `time`.
    fn state<B: Backend, const D: usize>(
        time: usize,
        lanes: Vec<Tensor<B, D>>,
    ) -> AdEMAMixState<B, D> {
        let mut lanes = lanes.into_iter();
        let slow_moment = lanes.next().expect("slow-moment lane");
        AdEMAMixState {
            moments: AdamMomentsState::from_lanes(time, &mut lanes, false),
            slow_moment,
        }
    }
}

/// Lanes: `[m2, m1, nu]`.
impl Kernel for Step<'_, AdEMAMix> {
    fn run<E: Real, const AMSGRAD: bool>(&self, mut lanes: Lanes<'_, E>) {
        let optim = self.optim;
        let rule = AdamRule::<E>::new(&optim.moments, self.time, optim.epsilon, 0.0);
        let slow = Ema::<E>::new(optim.beta_3);
        let alpha = E::of(optim.alpha);
        let decay = L2Rule::<E>::new(&optim.decay);
        let lr = E::of(self.lr);
        lanes.pass(
            |Lanes {
                 param,
                 grad,
                 mut state,
             }| {
                let (slow_lane, moment_lanes) = state.split_at_mut(1);
                let slow_lane = &mut slow_lane[0][..param.len()];
                let mut moments = MomentLanes::<E, AMSGRAD>::new(moment_lanes, param.len());
                let (n, grad) = (param.len(), &grad[..param.len()]);
                for i in 0..n {
                    let (p, g) = (&mut param[i], grad[i]);
                    let g = decay.apply(g, *p);
                    let m2 = slow.apply(slow_lane[i], g);
                    slow_lane[i] = m2;
                    let (m, v) = moments.update(rule, i, g);
                    let numerator = rule.first(m) + m2 * alpha;
                    *p = *p - numerator / rule.denominator(v) * lr;
                }
                []
            },
        );
    }
}
