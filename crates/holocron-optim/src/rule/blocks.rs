//! The element-wise blocks the rules are built from, each written once for the CPU loops
//! and the kernels; the counterparts of the tensor blocks of [`crate::blocks`], applying
//! their operations in the same order, except that a division by a per-step constant is a
//! multiplication by its reciprocal.

use super::dual;

dual! {
    ;
    #[cube]
    /// [`crate::blocks::ema`]: `beta average + fresh x` (`fresh = 1 - beta`).
    fn ema(average: F, x: F, beta: F, fresh: F) -> F {
        average * beta + x * fresh
    }

    #[cube]
    /// The value Adam's denominator uses: the second moment, or with AMSGrad its running
    /// maximum (the maximum so far taken against the new average).
    fn running_max(max_so_far: F, average: F) flags(amsgrad) -> F {
        let mut value = average;
        if amsgrad {
            value = max(max_so_far, average);
        }
        value
    }

    #[cube]
    /// Adam's denominator `sqrt(v) / sqrt(bias_correction) + epsilon`, from the inverse
    /// square root of the correction.
    fn denominator(second: F, inverse_sqrt_correction: F, epsilon: F) -> F {
        F::sqrt(second) * inverse_sqrt_correction + epsilon
    }

    #[cube]
    /// [`crate::blocks::L2Decay`]: `x + lambda p`.
    fn l2(x: F, p: F, weight_decay: F) -> F {
        x + p * weight_decay
    }

    #[cube]
    /// [`crate::blocks::TrustRatio`]: `clamp(norm, lo, hi) / denominator`, and 1 when
    /// either side is 0 (a mask, not a branch: the kernels have no host read-back) or the
    /// tensor is left out of the ratio (`trusted` 0, [`crate::blocks::VectorMask`]).
    fn trust_ratio(norm: F, denominator: F, lo: F, hi: F, trusted: F) -> F {
        let numerator = min(max(norm, lo), hi);
        let zero = F::new(0.0);
        let degenerate = numerator == zero || denominator == zero || trusted == zero;
        let safe = select(degenerate, F::new(1.0), denominator);
        select(degenerate, F::new(1.0), numerator / safe)
    }
}
