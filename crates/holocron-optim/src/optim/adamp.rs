use burn::optim::LearningRate;

use super::{optimizer_config, simple_optimizer};
use crate::Execution;
use crate::blocks::with_moment_coefficients;
use crate::blocks::{AdamMoments, AdamMomentsState, L2Decay, ScaleInvariantProjection};
use crate::fused;
use crate::rule::{dual, two_pass_rule};

optimizer_config! {
    /// Configuration of [`AdamP`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `betas` | `beta_1`, `beta_2` | 0.9, 0.999 |
    /// | `eps` | `epsilon` | 1e-8 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | `amsgrad` | `amsgrad` | false |
    /// | `delta` | `delta` | 0.1 |
    ///
    /// # Example
    ///
    /// ```
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::{Linear, LinearConfig};
    /// use holocron_optim::AdamPConfig;
    ///
    /// type B = Autodiff<NdArray>;
    /// let optim = AdamPConfig::new().with_delta(0.5).init::<B, Linear<B>>();
    /// # let _ = optim;
    /// ```
    pub struct AdamPConfig for AdamP {
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
}

/// AdamP, from ["AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant
/// Weights"](https://arxiv.org/abs/2006.08217), as holocron implements it.
///
/// For each parameter tensor, with `t >= 1`:
///
/// ```text
/// g <- g + lambda p
/// m, v      Adam's moments of g (AMSGrad: v_max <- max(v_max, v))
/// u  = m / (1 - beta_1^t) / (sqrt(v or v_max) / sqrt(1 - beta_2^t) + eps)
/// if cos(p, g) < delta / sqrt(numel):     (one signed cosine over the whole tensor)
///     n = p / (‖p‖ + eps);   u <- u - (n·u) n
/// p <- p - lr u
/// ```
///
/// The official clovaai AdamP differs (absolute cosine, channel-wise test, `wd_ratio`); this
/// is holocron's variant, exactly.
#[derive(Clone, Debug)]
pub struct AdamP {
    moments: AdamMoments,
    epsilon: f64,
    decay: L2Decay,
    projection: ScaleInvariantProjection,
    execution: Execution,
}

/// State of [`AdamP`]: step count and Adam moments.
pub type AdamPState<B, const D: usize> = AdamMomentsState<B, D>;

impl AdamPConfig {
    fn build_unchecked(&self) -> AdamP {
        AdamP {
            execution: self.execution,
            moments: AdamMoments::new(self.beta_1, self.beta_2, self.amsgrad, true),
            epsilon: self.epsilon,
            decay: L2Decay::new(self.weight_decay),
            projection: ScaleInvariantProjection {
                delta: self.delta,
                epsilon: self.epsilon,
            },
        }
    }
}

simple_optimizer! { AdamP, AdamPState,
    step: |optim, lr, tensor, grad, state| {
        let amsgrad = optim.moments.second.amsgrad;
        let numel = tensor.shape().num_elements();
        let (pack, unpack) = AdamMomentsState::packing(amsgrad);
        let stepped = fused::rule_step::<AdamPRule, B, D, _>(
            optim.execution,
            amsgrad,
            |time| optim.coefficients(lr, time, numel),
            tensor,
            grad,
            state,
            pack,
            unpack,
        );
        let (tensor, grad, moments) = match stepped {
            Ok((tensor, moments)) => {
                return (tensor, moments);
            }
            Err(declined) => declined,
        };
        let grad = optim.decay.apply(grad, &tensor);
        let moments = optim.moments.update(grad.clone(), moments);
        let update = optim.moments.direction(&moments, optim.epsilon);
        let update = optim.projection.apply(&tensor, &grad, update);
        (
            tensor.sub(update.mul_scalar(lr)),
            Some(moments),
        )
    },
    to_device: |state, device| state.to_device(device),
    shapes: |state| state.shapes(),
    step_count: |state| Some(state.time),
}

impl AdamP {
    /// The coefficients of step `time` (this step included) for a tensor of `numel`
    /// elements.
    fn coefficients(&self, lr: LearningRate, time: usize, numel: usize) -> cpu::Coefficients<f64> {
        let [norm_floor, threshold] = self.projection.test(numel);
        with_moment_coefficients!(
            self.moments,
            time,
            cpu::Coefficients {
                weight_decay: self.decay.weight_decay,
                epsilon: self.epsilon,
                norm_floor,
                threshold,
                lr,
            }
        )
    }
}

/// AdamP's rule: the decayed gradient into the moments and the sums `p·p`, `g·g`, `p·g`,
/// `p·u` that decide the projection, then the (projected) update.
struct AdamPRule;

two_pass_rule! {
    AdamPRule {
        coefficients: Coefficients, cells: Cells, terms: Dots, scalars: Projection,
        advance: advance, terms_of: dots, scalars_of: projection, update: update, lanes: 3,
        optional_lanes: 1, update_stores: 1,
    }
}

dual! {
    use crate::rule::blocks;
    /// The scalars of one step; `threshold` is `delta / sqrt(numel)`, `norm_floor` the
    /// smallest norm the cosine divides by.
    struct Coefficients {
        weight_decay, beta_1, fresh_1, beta_2, fresh_2, inverse_correction_1,
        inverse_sqrt_correction_2, epsilon, norm_floor, threshold, lr,
    }
    /// One element: the parameter, `m`, `v` and (AMSGrad) `v_max`.
    struct Cells { p, m, v, v_max }
    /// The sums `p·p`, `g·g`, `p·g` and `p·u`.
    struct Dots { pp, gg, pg, pu }
    /// `n·u / (‖p‖ + eps)`: the radial component to take off, 0 when the update is kept.
    struct Projection { radial }
    ;
    #[cube]
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
    fn dots(c: Coefficients<F>, g: F, x: Cells<F>) flags(amsgrad) -> Dots<F> {
        let g = l2::<F>(g, x.p, c.weight_decay);
        let u = direction::<F>(c, x, amsgrad);
        Dots::<F> { pp: x.p * x.p, gg: g * g, pg: x.p * g, pu: x.p * u }
    }

    #[cube]
    fn projection(c: Coefficients<F>, t: Dots<F>, _carried: F) -> Projection<F> {
        let param_norm = F::sqrt(t.pp);
        let cosine = t.pg / (max(param_norm, c.norm_floor) * max(F::sqrt(t.gg), c.norm_floor));
        let shifted_norm = param_norm + c.epsilon;
        let radial = select(cosine < c.threshold, t.pu / shifted_norm, F::new(0.0));
        Projection::<F> { radial: radial / shifted_norm }
    }

    #[cube]
    fn update(c: Coefficients<F>, s: Projection<F>, _g: F, x: Cells<F>) flags(amsgrad) -> Cells<F> {
        let u = direction::<F>(c, x, amsgrad) - x.p * s.radial;
        Cells::<F> { p: x.p - u * c.lr, m: x.m, v: x.v, v_max: x.v_max }
    }
}
