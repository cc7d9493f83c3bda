//! The kernels of the element-wise rules (AdaBelief, AdEMAMix, Adan) and of a wrapper's
//! sync: one unit per element, one pass. Each kernel's coefficient layout `c` is written at
//! its launch, in the optimizer's file.

use cubecl::prelude::*;

use super::blocks::{denominator, ema, second_moment};

/// AdaBelief. `c`: `[lambda, beta_1, 1 - beta_1, beta_2, 1 - beta_2, epsilon (the belief's
/// shift), inverse_sqrt_correction_2, epsilon, inverse_correction_1, lr]`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn adabelief_kernel<F: Float>(
    p: &mut Array<F>,
    g: &Array<F>,
    m: &mut Array<F>,
    v: &mut Array<F>,
    v_max: &mut Array<F>,
    c: &Array<F>,
    #[comptime] amsgrad: bool,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        let grad = g[i] + p[i] * c[0];
        let first = ema::<F>(m, i, grad, c[1], c[2]);
        let residual = grad - first;
        let second =
            second_moment::<F>(v, v_max, i, residual * residual, c[3], c[4], c[5], amsgrad);
        p[i] = p[i] - first * c[8] / denominator::<F>(second, c[6], c[7]) * c[9];
    }
}

/// AdEMAMix. `c`: `[lambda, beta_3, 1 - beta_3, beta_1, 1 - beta_1, beta_2, 1 - beta_2,
/// inverse_correction_1, alpha, inverse_sqrt_correction_2, epsilon, lr]`.
#[cube(launch)]
pub(super) fn ademamix_kernel<F: Float>(
    p: &mut Array<F>,
    g: &Array<F>,
    slow: &mut Array<F>,
    m: &mut Array<F>,
    v: &mut Array<F>,
    c: &Array<F>,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        let grad = g[i] + p[i] * c[0];
        let slow_average = ema::<F>(slow, i, grad, c[1], c[2]);
        let first = ema::<F>(m, i, grad, c[3], c[4]);
        let second = ema::<F>(v, i, grad * grad, c[5], c[6]);
        let numerator = first * c[7] + slow_average * c[8];
        p[i] = p[i] - numerator / denominator::<F>(second, c[9], c[10]) * c[11];
    }
}

/// Adan. `c`: `[0 on the first step else 1, beta_1, 1 - beta_1, beta_2, 1 - beta_2,
/// beta_2 (Nesterov weight), beta_3, 1 - beta_3, inverse_correction_1, beta_2 /
/// correction_2, inverse_sqrt_correction_3, epsilon, lr, 1 + lr lambda]`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn adan_kernel<F: Float>(
    p: &mut Array<F>,
    g: &Array<F>,
    m: &mut Array<F>,
    v: &mut Array<F>,
    previous: &mut Array<F>,
    n: &mut Array<F>,
    n_max: &mut Array<F>,
    c: &Array<F>,
    #[comptime] amsgrad: bool,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        let grad = g[i];
        let diff = (grad - previous[i]) * c[0];
        previous[i] = grad;
        let first = ema::<F>(m, i, grad, c[1], c[2]);
        let diff_average = ema::<F>(v, i, diff, c[3], c[4]);
        let nesterov = grad + diff * c[5];
        let second = second_moment::<F>(
            n,
            n_max,
            i,
            nesterov * nesterov,
            c[6],
            c[7],
            F::new(0.0),
            amsgrad,
        );
        let numerator = first * c[8] + diff_average * c[9];
        p[i] = (p[i] - numerator / denominator::<F>(second, c[10], c[11]) * c[12]) / c[13];
    }
}

/// A wrapper's sync: `slow <- slow + rate (fast - slow)`, then `fast <- slow`; the rate is
/// `rate[0]`, known on the host or computed on the device.
#[cube(launch)]
pub(super) fn pull_kernel<F: Float>(fast: &mut Array<F>, slow: &mut Array<F>, rate: &Array<F>) {
    let i = ABSOLUTE_POS;
    if i < fast.len() {
        let pulled = slow[i] + (fast[i] - slow[i]) * rate[0];
        slow[i] = pulled;
        fast[i] = pulled;
    }
}
