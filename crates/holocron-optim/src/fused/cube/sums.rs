//! Whole-tensor sums on the device, for the rules that scale a step by a norm or a dot
//! product. A summing pass runs a fixed grid of cubes; each unit folds a strided run of
//! elements, each cube folds its units in shared memory and stores four partial sums, and
//! one more cube folds the partials into the four totals that the update pass reads.
//!
//! Nothing is read back to the host, and the order of additions depends only on the
//! tensor's size, so a run repeats bit for bit.

use cubecl::prelude::*;

/// Units per cube of a summing pass (a power of two; WebGPU allows 256 by default).
pub(super) const UNITS: usize = 256;
/// Cubes of a summing pass at most: enough to fill a large GPU.
const MAX_CUBES: usize = 1024;
/// Elements each unit folds at least, so that the fold in shared memory (its barriers
/// above all, which a CPU-backed device pays dearly) stays small beside the pass itself.
const MIN_PER_UNIT: usize = 32;
/// Sums per pass; a rule that needs fewer leaves the rest at zero.
pub(super) const SUMS: usize = 4;

/// The grid of a summing pass over `n` elements.
pub(super) fn cubes(n: usize) -> usize {
    n.div_ceil(UNITS * MIN_PER_UNIT).clamp(1, MAX_CUBES)
}

/// Folds each unit's four values over the cube and stores the cube's sums at
/// `partials[4 CUBE_POS..]`. Every unit of the cube must call it.
#[cube]
pub(super) fn store_cube_sums<F: Float>(
    partials: &mut Array<F>,
    a: F,
    b: F,
    c: F,
    d: F,
    #[comptime] units: usize,
) {
    let mut shared = SharedMemory::<F>::new(units * 4);
    let unit = UNIT_POS as usize;
    shared[unit] = a;
    shared[units + unit] = b;
    shared[2 * units + unit] = c;
    shared[3 * units + unit] = d;
    sync_cube();
    let mut half = CUBE_DIM as usize / 2;
    while half > 0 {
        if unit < half {
            #[unroll]
            for k in 0..4usize {
                let at = k * units + unit;
                shared[at] = shared[at] + shared[at + half];
            }
        }
        sync_cube();
        half /= 2;
    }
    if unit == 0 {
        #[unroll]
        for k in 0..4usize {
            partials[CUBE_POS * 4 + k] = shared[k * units];
        }
    }
}

/// One cube: the four totals of a summing pass from its per-cube partials.
#[cube(launch)]
pub(super) fn finish_sums_kernel<F: Float>(
    partials: &Array<F>,
    totals: &mut Array<F>,
    #[comptime] units: usize,
) {
    let cubes = partials.len() / 4;
    let mut a = F::new(0.0);
    let mut b = F::new(0.0);
    let mut c = F::new(0.0);
    let mut d = F::new(0.0);
    let mut j = UNIT_POS as usize;
    while j < cubes {
        a += partials[j * 4];
        b += partials[j * 4 + 1];
        c += partials[j * 4 + 2];
        d += partials[j * 4 + 3];
        j += units;
    }
    store_cube_sums::<F>(totals, a, b, c, d, units);
}
