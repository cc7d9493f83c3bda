//! The kernels of the rules that scale a step by whole-tensor sums (LARS, LAMB, RaLars,
//! TAdam, AdamP): a summing pass (which also folds the gradient into the moments where the
//! sums need the new moments), then an update pass that reads the totals. The scalar
//! arithmetic between the two (trust ratio, Student-t weight, projection test) runs in
//! every unit of the update pass, on the device. Each kernel's coefficient layout `c` is
//! written at its launch, in the optimizer's file.

use cubecl::prelude::*;

use super::blocks::{denominator, ema, second_moment, trust_ratio};
use super::sums::store_cube_sums;

/// LARS's sums `[‖p‖², ‖g‖²]`.
#[cube(launch)]
pub(super) fn norms_kernel<F: Float>(
    p: &Array<F>,
    g: &Array<F>,
    partials: &mut Array<F>,
    #[comptime] units: usize,
) {
    let mut pp = F::new(0.0);
    let mut gg = F::new(0.0);
    let mut i = ABSOLUTE_POS;
    while i < p.len() {
        pp += p[i] * p[i];
        gg += g[i] * g[i];
        i += CUBE_COUNT * units;
    }
    store_cube_sums::<F>(partials, pp, gg, F::new(0.0), F::new(0.0), units);
}

/// LARS's update. `c`: `[lambda, lo, hi, keep, fresh, step_direction, step_buffer, lr]`
/// (the heavy-ball weights of `fused::rules::HeavyBallRule`).
#[cube(launch)]
pub(super) fn lars_kernel<F: Float>(
    p: &mut Array<F>,
    g: &Array<F>,
    buffer: &mut Array<F>,
    totals: &Array<F>,
    c: &Array<F>,
    #[comptime] momentum: bool,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        let param_norm = F::sqrt(totals[0]);
        let ratio = trust_ratio::<F>(
            param_norm,
            F::sqrt(totals[1]) + param_norm * c[0],
            c[1],
            c[2],
        );
        let direction = (g[i] + p[i] * c[0]) * ratio;
        let mut step = direction;
        if momentum {
            let b = ema::<F>(buffer, i, direction, c[3], c[4]);
            step = direction * c[5] + b * c[6];
        }
        p[i] = p[i] - step * c[7];
    }
}

/// The direction of LAMB and RaLars from the moments `m` and `s` (the second moment the
/// denominator uses): `m_hat / (den a + 1 - a) factor` (see `fused::trust::AdamDirection`),
/// plus the decay `lambda p`. `c`: `[.., inverse_correction_1 (4), inverse_sqrt_correction_2,
/// epsilon, a, 1 - a, factor, lambda (10), ..]`.
#[cube]
fn trust_update<F: Float>(p: F, m: F, s: F, c: &Array<F>) -> F {
    let adaptive = denominator::<F>(s, c[5], c[6]) * c[7] + c[8];
    m * c[4] / adaptive * c[9] + p * c[10]
}

/// LAMB's and RaLars's first pass: the moments, then the sums `[‖p‖², ‖u‖²]`. `c`:
/// `[beta_1, 1 - beta_1, beta_2, 1 - beta_2, ..]` then as [`trust_update`], then `[lo, hi,
/// lr]`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn trust_sums_kernel<F: Float>(
    p: &Array<F>,
    g: &Array<F>,
    m: &mut Array<F>,
    v: &mut Array<F>,
    v_max: &mut Array<F>,
    partials: &mut Array<F>,
    c: &Array<F>,
    #[comptime] amsgrad: bool,
    #[comptime] units: usize,
) {
    let mut pp = F::new(0.0);
    let mut uu = F::new(0.0);
    let mut i = ABSOLUTE_POS;
    while i < p.len() {
        let grad = g[i];
        let first = ema::<F>(m, i, grad, c[0], c[1]);
        let second = second_moment::<F>(v, v_max, i, grad * grad, c[2], c[3], F::new(0.0), amsgrad);
        let update = trust_update::<F>(p[i], first, second, c);
        pp += p[i] * p[i];
        uu += update * update;
        i += CUBE_COUNT * units;
    }
    store_cube_sums::<F>(partials, pp, uu, F::new(0.0), F::new(0.0), units);
}

/// LAMB's and RaLars's update, `s` the lane the denominator uses (`v`, or `v_max`).
#[cube(launch)]
pub(super) fn trust_kernel<F: Float>(
    p: &mut Array<F>,
    m: &Array<F>,
    s: &Array<F>,
    totals: &Array<F>,
    c: &Array<F>,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        let ratio = trust_ratio::<F>(F::sqrt(totals[0]), F::sqrt(totals[1]), c[11], c[12]);
        let update = trust_update::<F>(p[i], m[i], s[i], c);
        p[i] = p[i] - update * ratio * c[13];
    }
}

/// TAdam's first pass: the Mahalanobis distance `Σ (g + lambda p - m)² / (v + eps)` under
/// the moments so far. `c`: `[lambda, epsilon, ..]`.
#[cube(launch)]
pub(super) fn distance_kernel<F: Float>(
    p: &Array<F>,
    g: &Array<F>,
    m: &Array<F>,
    v: &Array<F>,
    partials: &mut Array<F>,
    c: &Array<F>,
    #[comptime] units: usize,
) {
    let mut distance = F::new(0.0);
    let mut i = ABSOLUTE_POS;
    while i < p.len() {
        let residual = g[i] + p[i] * c[0] - m[i];
        distance += residual * residual / (v[i] + c[1]);
        i += CUBE_COUNT * units;
    }
    let zero = F::new(0.0);
    store_cube_sums::<F>(partials, distance, zero, zero, zero, units);
}

/// TAdam's update. The weight sum is read from `weight_sum` and its next value written to
/// `next_weight_sum` (a one-element buffer each: every unit reads the old value). `c`:
/// `[lambda, epsilon, dof, dof + numel, (2 beta_1 - 1) / beta_1, beta_2, 1 - beta_2,
/// inverse_sqrt_correction_2, lr / correction_1]`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn tadam_kernel<F: Float>(
    p: &mut Array<F>,
    g: &Array<F>,
    m: &mut Array<F>,
    v: &mut Array<F>,
    v_max: &mut Array<F>,
    weight_sum: &Array<F>,
    next_weight_sum: &mut Array<F>,
    totals: &Array<F>,
    c: &Array<F>,
    #[comptime] amsgrad: bool,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        let weight = c[3] / (totals[0] + c[2]);
        let sum = weight_sum[0];
        let total = sum + weight;
        let grad = g[i] + p[i] * c[0];
        let first = m[i] * (sum / total) + grad * weight / total;
        m[i] = first;
        let second = second_moment::<F>(v, v_max, i, grad * grad, c[5], c[6], F::new(0.0), amsgrad);
        p[i] = p[i] - first / denominator::<F>(second, c[7], c[1]) * c[8];
        if i == 0 {
            next_weight_sum[0] = sum * c[4] + weight;
        }
    }
}

/// AdamP's direction `m_hat / (sqrt(v_hat) + eps)`. `c`: `[.., inverse_correction_1 (5),
/// inverse_sqrt_correction_2, epsilon, ..]`.
#[cube]
fn adamp_direction<F: Float>(m: F, s: F, c: &Array<F>) -> F {
    m * c[5] / denominator::<F>(s, c[6], c[7])
}

/// AdamP's first pass: the decayed gradient into the moments, then the sums `[p·p, g·g,
/// p·g, p·u]` that decide the projection. `c`: `[lambda, beta_1, 1 - beta_1, beta_2,
/// 1 - beta_2, ..]` then as [`adamp_direction`], then `[floor, delta / sqrt(numel),
/// projection epsilon, lr]`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn adamp_sums_kernel<F: Float>(
    p: &Array<F>,
    g: &Array<F>,
    m: &mut Array<F>,
    v: &mut Array<F>,
    v_max: &mut Array<F>,
    partials: &mut Array<F>,
    c: &Array<F>,
    #[comptime] amsgrad: bool,
    #[comptime] units: usize,
) {
    let mut pp = F::new(0.0);
    let mut gg = F::new(0.0);
    let mut pg = F::new(0.0);
    let mut pu = F::new(0.0);
    let mut i = ABSOLUTE_POS;
    while i < p.len() {
        let param = p[i];
        let grad = g[i] + param * c[0];
        let first = ema::<F>(m, i, grad, c[1], c[2]);
        let second = second_moment::<F>(v, v_max, i, grad * grad, c[3], c[4], F::new(0.0), amsgrad);
        pp += param * param;
        gg += grad * grad;
        pg += param * grad;
        pu += param * adamp_direction::<F>(first, second, c);
        i += CUBE_COUNT * units;
    }
    store_cube_sums::<F>(partials, pp, gg, pg, pu, units);
}

/// AdamP's update: the direction, without its radial component when the cosine of `p` and
/// `g` falls below the threshold (`ScaleInvariantProjection::radial_of`).
#[cube(launch)]
pub(super) fn adamp_kernel<F: Float>(
    p: &mut Array<F>,
    m: &Array<F>,
    s: &Array<F>,
    totals: &Array<F>,
    c: &Array<F>,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        let param_norm = F::sqrt(totals[0]);
        let cosine = totals[2] / (max(param_norm, c[8]) * max(F::sqrt(totals[1]), c[8]));
        let shifted_norm = param_norm + c[10];
        let radial = select(cosine < c[9], totals[3] / shifted_norm, F::new(0.0)) / shifted_norm;
        let update = adamp_direction::<F>(m[i], s[i], c) - p[i] * radial;
        p[i] = p[i] - update * c[11];
    }
}

/// Scout's coherence of one tensor: the sum over elements of `std(u) / max |u - mean(u)|`
/// (0 where the maximum is 0), `u` the element's steps between successive `rows` (at least
/// three rows; the count is a constant of the compiled kernel).
#[cube(launch)]
pub(super) fn similarity_sums_kernel<F: Float>(
    rows: &Sequence<Array<F>>,
    partials: &mut Array<F>,
    #[comptime] units: usize,
) {
    let steps = comptime![rows.len() - 1usize];
    let zero = F::new(0.0);
    let n = rows[0usize].len();
    let mut total = zero;
    let mut i = ABSOLUTE_POS;
    while i < n {
        let mut mean = zero;
        #[unroll]
        for k in 0..steps {
            mean += rows[k + 1usize][i] - rows[k][i];
        }
        mean /= F::cast_from(steps);
        let mut largest = zero;
        let mut squares = zero;
        #[unroll]
        for k in 0..steps {
            let deviation = rows[k + 1usize][i] - rows[k][i] - mean;
            largest = max(largest, F::abs(deviation));
            squares += deviation * deviation;
        }
        let spread = F::sqrt(squares / F::cast_from(steps - 1usize));
        let flat = largest == zero;
        total += select(flat, zero, spread / select(flat, F::new(1.0), largest));
        i += CUBE_COUNT * units;
    }
    store_cube_sums::<F>(partials, total, zero, zero, zero, units);
}
