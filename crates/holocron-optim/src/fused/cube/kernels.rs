//! The kernels: one generic kernel per pass, instantiated for each rule through its
//! `CubeRule` implementation (`crate::rule`), plus the
//! wrappers' sync and Scout's coherence.

use cubecl::prelude::*;

use super::sums::store_cube_sums;
use crate::rule::CubeRule;

/// A summed rule's summing pass over a fixed grid: each unit folds a strided run of
/// elements, each cube stores its four partial sums.
#[cube(launch)]
pub(super) fn sums_kernel<F: Float, R: CubeRule>(
    lanes: &mut Sequence<Array<F>>,
    g: &Array<F>,
    c: &Array<F>,
    partials: &mut Array<F>,
    #[comptime] count: usize,
    #[comptime] flag: bool,
    #[comptime] units: usize,
) {
    let mut s0 = F::new(0.0);
    let mut s1 = F::new(0.0);
    let mut s2 = F::new(0.0);
    let mut s3 = F::new(0.0);
    let mut i = ABSOLUTE_POS;
    while i < g.len() {
        let terms = R::sums::<F>(c, g, lanes, i, count, flag);
        s0 += terms.s0;
        s1 += terms.s1;
        s2 += terms.s2;
        s3 += terms.s3;
        i += CUBE_COUNT * units;
    }
    store_cube_sums::<F>(partials, s0, s1, s2, s3, units);
}

/// A rule's update pass: one unit per element; a summed rule's units compute the scalars
/// from the totals themselves (nothing is read back to the host).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn update_kernel<F: Float, R: CubeRule>(
    lanes: &mut Sequence<Array<F>>,
    g: &Array<F>,
    c: &Array<F>,
    totals: &Array<F>,
    carried: &Array<F>,
    next_carried: &mut Array<F>,
    #[comptime] count: usize,
    #[comptime] flag: bool,
) {
    let i = ABSOLUTE_POS;
    if i < g.len() {
        R::update::<F>(c, totals, carried, next_carried, g, lanes, i, count, flag);
    }
}

/// `to <- from`: the private copy of a shared buffer that a kernel is about to write.
#[cube(launch)]
pub(super) fn copy_kernel<F: Float>(from: &Array<F>, to: &mut Array<F>) {
    let i = ABSOLUTE_POS;
    if i < to.len() {
        to[i] = from[i];
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

/// Scout's coherence of one tensor: the sum over elements of `std(u) / max |u - mean(u)|`
/// (0 where the maximum is 0), `u` the element's steps between successive `rows` (at least
/// three rows; the count is a constant of the compiled kernel) of `n` elements each.
#[cube(launch)]
pub(super) fn similarity_sums_kernel<F: Float>(
    rows: &Sequence<Array<F>>,
    n: usize,
    partials: &mut Array<F>,
    #[comptime] units: usize,
) {
    let steps = comptime![rows.len() - 1usize];
    let zero = F::new(0.0);
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
