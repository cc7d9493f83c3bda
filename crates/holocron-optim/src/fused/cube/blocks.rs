//! The element-wise blocks shared by the kernels, in CubeCL form (the counterparts of
//! [`crate::fused::rules`]): each takes its coefficients as arguments and applies the
//! operations in the same order as the other paths.

use cubecl::prelude::*;

/// `avg <- beta avg + fresh x` at `i`; returns the new average.
#[cube]
pub(super) fn ema<F: Float>(average: &mut Array<F>, i: usize, x: F, beta: F, fresh: F) -> F {
    let value = average[i] * beta + x * fresh;
    average[i] = value;
    value
}

/// The second moment at `i`: `v <- beta v + fresh x + shift`, and with AMSGrad its running
/// maximum; returns the value the denominator uses.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn second_moment<F: Float>(
    v: &mut Array<F>,
    v_max: &mut Array<F>,
    i: usize,
    x: F,
    beta: F,
    fresh: F,
    shift: F,
    #[comptime] amsgrad: bool,
) -> F {
    let mut second = v[i] * beta + x * fresh + shift;
    v[i] = second;
    if amsgrad {
        second = max(v_max[i], second);
        v_max[i] = second;
    }
    second
}

/// Adam's denominator `sqrt(v) / sqrt(bias_correction) + epsilon`, the inverse square root
/// of the correction given.
#[cube]
pub(super) fn denominator<F: Float>(second: F, inverse_sqrt_correction: F, epsilon: F) -> F {
    F::sqrt(second) * inverse_sqrt_correction + epsilon
}

/// [`crate::blocks::TrustRatio`]: `clamp(norm, lo, hi) / denominator`, 1 when either side
/// is 0.
#[cube]
pub(super) fn trust_ratio<F: Float>(norm: F, denominator: F, lo: F, hi: F) -> F {
    let numerator = min(max(norm, lo), hi);
    let zero = F::new(0.0);
    let degenerate = select(numerator == zero, true, denominator == zero);
    select(degenerate, F::new(1.0), numerator / denominator)
}
