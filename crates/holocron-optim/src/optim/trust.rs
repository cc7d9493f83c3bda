//! The step LAMB and RaLars share: Adam's moments, a direction from them (Adam's, scaled
//! by a factor, or the corrected momentum alone), decoupled L2 decay, and the layer-wise
//! trust ratio. The two optimizers differ only in the direction at each step count.

use burn::optim::LearningRate;
use burn::tensor::{Tensor, backend::Backend};

use crate::Execution;
use crate::blocks::with_moment_coefficients;
use crate::blocks::{AdamMoments, AdamMomentsState, L2Decay, TrustRatio};
use crate::fused;
use crate::rule::{dual, two_pass_rule};

/// The direction at one step count: `factor` times Adam's direction when `adaptive`, else
/// the bias-corrected momentum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Direction {
    pub adaptive: bool,
    pub factor: f64,
}

impl Direction {
    /// Adam's direction (LAMB).
    pub const ADAM: Direction = Direction {
        adaptive: true,
        factor: 1.0,
    };
}

/// The shared part of [`Lamb`](super::Lamb) and [`RaLars`](super::RaLars).
#[derive(Clone, Debug)]
pub(super) struct TrustStep {
    pub moments: AdamMoments,
    pub epsilon: f64,
    pub decay: L2Decay,
    pub trust: TrustRatio,
    pub execution: Execution,
}

/// The hyperparameters LAMB and RaLars share.
pub(super) struct TrustHyperparameters {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    pub scale_clip: (f64, f64),
    pub bias_correction: bool,
    pub execution: Execution,
}

impl TrustStep {
    /// The step of the given (validated) hyperparameters.
    pub fn new(h: TrustHyperparameters) -> Self {
        TrustStep {
            moments: AdamMoments::new(h.beta_1, h.beta_2, false, h.bias_correction),
            epsilon: h.epsilon,
            decay: L2Decay::new(h.weight_decay),
            trust: TrustRatio::new(h.scale_clip),
            execution: h.execution,
        }
    }

    /// One step; `direction` gives the direction at a step count (this step included).
    pub fn step<B: Backend, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        moments: Option<AdamMomentsState<B, D>>,
        direction: impl Fn(usize) -> Direction,
    ) -> (Tensor<B, D>, AdamMomentsState<B, D>) {
        let amsgrad = self.moments.second.amsgrad;
        let (pack, unpack) = AdamMomentsState::packing(amsgrad);
        let stepped = fused::rule_step::<TrustRule, B, D, _>(
            self.execution,
            amsgrad,
            |time| self.coefficients(lr, time, direction(time)),
            tensor,
            grad,
            moments,
            pack,
            unpack,
        );
        let (tensor, grad, moments) = match stepped {
            Ok((tensor, Some(moments))) => return (tensor, moments),
            Ok((_, None)) => unreachable!("the moments are always kept"),
            Err(declined) => declined,
        };
        let moments = self.moments.update(grad, moments);
        let Direction { adaptive, factor } = direction(moments.time);
        let update = if adaptive {
            let update = self.moments.direction(&moments, self.epsilon);
            if factor == 1.0 {
                update
            } else {
                update.mul_scalar(factor)
            }
        } else {
            self.moments.first(&moments)
        };
        let update = self.trust.scale(&tensor, self.decay.apply(update, &tensor));
        (tensor.sub(update.mul_scalar(lr)), moments)
    }

    /// The coefficients of step `time` (this step included).
    fn coefficients(
        &self,
        lr: LearningRate,
        time: usize,
        direction: Direction,
    ) -> cpu::Coefficients<f64> {
        let adaptive = if direction.adaptive { 1.0 } else { 0.0 };
        with_moment_coefficients!(
            self.moments,
            time,
            cpu::Coefficients {
                epsilon: self.epsilon,
                adaptive,
                fixed: 1.0 - adaptive,
                factor: direction.factor,
                weight_decay: self.decay.weight_decay,
                lo: self.trust.lo,
                hi: self.trust.hi,
                lr,
            }
        )
    }
}

/// The rule: the moments and the norms `‖p‖`, `‖u‖`, then the scaled update.
struct TrustRule;

two_pass_rule!(TrustRule {
    coefficients: Coefficients,
    cells: Cells,
    terms: Norms,
    scalars: Scalars,
    advance: advance,
    terms_of: norms,
    scalars_of: scalars,
    update: update,
    lanes: 3,
    optional_lanes: 1,
    update_stores: 1,
});

dual! {
    use crate::rule::blocks;
    /// The scalars of one step; `adaptive` is 1 for Adam's direction and 0 for the
    /// momentum alone, `fixed = 1 - adaptive`.
    struct Coefficients {
        beta_1, fresh_1, beta_2, fresh_2, inverse_correction_1, inverse_sqrt_correction_2,
        epsilon, adaptive, fixed, factor, weight_decay, lo, hi, lr,
    }
    /// One element: the parameter, `m`, `v` and (AMSGrad) `v_max`.
    struct Cells { p, m, v, v_max }
    /// `‖p‖²` and `‖u‖²`.
    struct Norms { pp, uu }
    /// The trust ratio.
    struct Scalars { ratio }
    ;
    #[cube]
    fn advance(c: Coefficients<F>, g: F, x: Cells<F>) flags(amsgrad) -> Cells<F> {
        let m = ema::<F>(x.m, g, c.beta_1, c.fresh_1);
        let v = ema::<F>(x.v, g * g, c.beta_2, c.fresh_2);
        Cells::<F> { p: x.p, m, v, v_max: running_max::<F>(x.v_max, v, amsgrad) }
    }

    #[cube]
    /// `u = factor m_hat / (den a + 1 - a) + lambda p`: exact for `a` 0 or 1, no branch.
    fn direction(c: Coefficients<F>, x: Cells<F>) flags(amsgrad) -> F {
        let second = running_max::<F>(x.v_max, x.v, amsgrad);
        let denominator = denominator::<F>(second, c.inverse_sqrt_correction_2, c.epsilon);
        let scaled = x.m * c.inverse_correction_1 / (denominator * c.adaptive + c.fixed);
        l2::<F>(scaled * c.factor, x.p, c.weight_decay)
    }

    #[cube]
    fn norms(c: Coefficients<F>, _g: F, x: Cells<F>) flags(amsgrad) -> Norms<F> {
        let u = direction::<F>(c, x, amsgrad);
        Norms::<F> { pp: x.p * x.p, uu: u * u }
    }

    #[cube]
    fn scalars(c: Coefficients<F>, t: Norms<F>, _carried: F) -> Scalars<F> {
        Scalars::<F> { ratio: trust_ratio::<F>(F::sqrt(t.pp), F::sqrt(t.uu), c.lo, c.hi) }
    }

    #[cube]
    fn update(c: Coefficients<F>, s: Scalars<F>, _g: F, x: Cells<F>) flags(amsgrad) -> Cells<F> {
        let u = direction::<F>(c, x, amsgrad);
        Cells::<F> { p: x.p - u * s.ratio * c.lr, m: x.m, v: x.v, v_max: x.v_max }
    }
}
