//! The step that LAMB and RaLars share: Adam's moments, a direction from them, L2 decay,
//! and the layer-wise trust ratio, in two passes (the norms, then the update).

use super::rules::{AdamRule, L2Rule, MomentLanes};
use super::{Lanes, Real, sum_each};
use crate::blocks::TrustRatio;

/// A direction from the corrected moments: `factor m_hat / den` when adaptive, else
/// `m_hat` alone (RaLars before its variance is tractable). One branch-free formula,
/// `m_hat / (den a + (1 - a)) factor`, exact in each case (`a` is 0 or 1).
#[derive(Clone, Copy)]
pub(crate) struct AdamDirection<E> {
    rule: AdamRule<E>,
    adaptive: E,
    fixed: E,
    factor: E,
}

impl<E: Real> AdamDirection<E> {
    /// Adam's direction `m_hat / (sqrt(v_hat) + eps)` (LAMB).
    pub fn adam(rule: AdamRule<E>) -> Self {
        Self::new(rule, true, 1.0)
    }

    /// `factor` times Adam's direction when `adaptive`, else the corrected momentum.
    pub fn new(rule: AdamRule<E>, adaptive: bool, factor: f64) -> Self {
        let adaptive = if adaptive { 1.0 } else { 0.0 };
        Self {
            rule,
            adaptive: E::of(adaptive),
            fixed: E::of(1.0 - adaptive),
            factor: E::of(factor),
        }
    }

    #[inline(always)]
    fn at(self, m: E, v: E) -> E {
        self.rule.first(m) / (self.rule.denominator(v) * self.adaptive + self.fixed) * self.factor
    }
}

/// `p <- p - lr ratio(‖p‖, ‖u‖) u` with `u = direction(m, v) + lambda p`, after folding
/// the gradient into the moments. Lanes: Adam's moments.
pub(crate) fn trust_scaled_step<E: Real, const AMSGRAD: bool>(
    lanes: &mut Lanes<'_, E>,
    rule: AdamRule<E>,
    direction: AdamDirection<E>,
    decay: L2Rule<E>,
    trust: &TrustRatio,
    lr: f64,
) {
    let [pp, uu] = lanes.pass(
        |Lanes {
             param,
             grad,
             mut state,
         }| {
            let mut moments = MomentLanes::<E, AMSGRAD>::new(&mut state, param.len());
            let (n, grad) = (param.len(), &grad[..param.len()]);
            sum_each(n, |i| {
                let (p, g) = (param[i], grad[i]);
                let (m, v) = moments.update(rule, i, g);
                let update = decay.apply(direction.at(m, v), p);
                [p * p, update * update]
            })
        },
    );
    let ratio = E::of(trust.ratio_of(pp.sqrt(), uu.sqrt()));
    let lr = E::of(lr);
    lanes.pass(
        |Lanes {
             param, mut state, ..
         }| {
            let moments = MomentLanes::<E, AMSGRAD>::new(&mut state, param.len());
            for (i, p) in param.iter_mut().enumerate() {
                let (m, v) = moments.get(i);
                let update = decay.apply(direction.at(m, v), *p);
                *p = *p - update * ratio * lr;
            }
            []
        },
    );
}

/// The step of LAMB and RaLars on the CubeCL kernels (`cube::Rule::Trust`): the same
/// blocks as [`trust_scaled_step`], the direction at each step count given by `direction`
/// as `(adaptive, factor)` of [`AdamDirection::new`].
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub(crate) struct CubeTrustStep<'a> {
    pub moments: &'a crate::blocks::AdamMoments,
    pub epsilon: f64,
    pub decay: &'a crate::blocks::L2Decay,
    pub trust: &'a TrustRatio,
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl CubeTrustStep<'_> {
    /// Runs the kernels; the tensors come back when they cannot run.
    pub fn run<B: burn::tensor::backend::Backend, const D: usize>(
        &self,
        direction: impl Fn(usize) -> (bool, f64),
        lr: f64,
        param: burn::tensor::Tensor<B, D>,
        grad: burn::tensor::Tensor<B, D>,
        state: Option<crate::blocks::AdamMomentsState<B, D>>,
    ) -> super::cube::CubeStep<B, D, crate::blocks::AdamMomentsState<B, D>> {
        let amsgrad = self.moments.second.amsgrad;
        let coefficients = |time| {
            let mut c = super::cube::adam_coefficients(self.moments, time, self.epsilon);
            let (adaptive, factor) = direction(time);
            let adaptive = if adaptive { 1.0 } else { 0.0 };
            c.extend([
                adaptive,
                1.0 - adaptive,
                factor,
                self.decay.weight_decay,
                self.trust.lo,
                self.trust.hi,
                lr,
            ]);
            c
        };
        let rule = super::cube::Rule::Trust { amsgrad };
        super::cube::moments_step(rule, amsgrad, coefficients, param, grad, state)
    }
}
