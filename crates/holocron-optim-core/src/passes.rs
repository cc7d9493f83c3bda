//! The kernels' grid: how many cubes a summing pass runs and how many units each holds,
//! constants of the compiled kernels that the launching crates size their launches and
//! buffers by. The kernels themselves are written by [`kernels!`](crate::kernels!).
//!
//! A summing pass runs a fixed grid of cubes; each unit folds a strided run of elements,
//! each cube folds its units in shared memory and stores four partial sums, and one more
//! cube folds the partials into the four totals that the update pass reads. Nothing is read
//! back to the host, and the order of additions depends only on the tensor's size, so a run
//! repeats bit for bit.

/// Units per cube of a summing pass (a power of two; WebGPU allows 256 by default).
pub const UNITS: usize = 256;
/// Cubes of a summing pass at most: enough to fill a large GPU.
const MAX_CUBES: usize = 1024;
/// Elements each unit folds at least, so that the fold in shared memory (its barriers
/// above all, which a CPU-backed device pays dearly) stays small beside the pass itself.
const MIN_PER_UNIT: usize = 32;
/// Sums per pass; a rule that needs fewer leaves the rest at zero.
pub const SUMS: usize = 4;

/// The grid of a summing pass over `n` elements: its number of cubes.
pub fn cubes(n: usize) -> usize {
    n.div_ceil(UNITS * MIN_PER_UNIT).clamp(1, MAX_CUBES)
}

/// The kernels every rule shares (written by [`kernels!`](crate::kernels!) into its
/// `passes` module): one generic kernel per pass, instantiated for each rule through its
/// `CubeRule` implementation, the fold of a summing pass's partial sums, and the wrappers'
/// sync and Scout's coherence.
#[doc(hidden)]
#[macro_export]
macro_rules! __kernel_passes {
    () => {
        use super::CubeRule;
        use cubecl::prelude::*;

        /// A summed rule's summing pass over a fixed grid: each unit folds a strided run of
        /// elements, each cube stores its four partial sums.
        #[cube(launch)]
        pub fn sums_kernel<F: Float, R: CubeRule>(
            lanes: &mut Sequence<Lane<F>>,
            g: &Lane<F>,
            c: &Lane<F>,
            partials: &mut Lane<F>,
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

        /// A rule's update pass: one unit per element; a summed rule's units compute the
        /// scalars from the totals themselves (nothing is read back to the host).
        #[cube(launch)]
        #[allow(clippy::too_many_arguments)]
        pub fn update_kernel<F: Float, R: CubeRule>(
            lanes: &mut Sequence<Lane<F>>,
            g: &Lane<F>,
            c: &Lane<F>,
            totals: &Lane<F>,
            carried: &Lane<F>,
            next_carried: &mut Lane<F>,
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
        pub fn copy_kernel<F: Float>(from: &Lane<F>, to: &mut Lane<F>) {
            let i = ABSOLUTE_POS;
            if i < to.len() {
                to[i] = from[i];
            }
        }

        /// A wrapper's sync: `slow <- slow + rate (fast - slow)`, then `fast <- slow`; the
        /// rate is `rate[0]`, known on the host or computed on the device.
        #[cube(launch)]
        pub fn pull_kernel<F: Float>(fast: &mut Lane<F>, slow: &mut Lane<F>, rate: &Lane<F>) {
            let i = ABSOLUTE_POS;
            if i < fast.len() {
                let pulled = slow[i] + (fast[i] - slow[i]) * rate[0];
                slow[i] = pulled;
                fast[i] = pulled;
            }
        }

        /// Scout's coherence of one tensor: the sum over elements of
        /// `std(u) / max |u - mean(u)|` (0 where the maximum is 0), `u` the element's steps
        /// between successive `rows` (at least three rows; the count is a constant of the
        /// compiled kernel) of `n` elements each.
        #[cube(launch)]
        pub fn similarity_sums_kernel<F: Float>(
            rows: &Sequence<Lane<F>>,
            n: usize,
            partials: &mut Lane<F>,
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

        /// Folds each unit's four values over the cube and stores the cube's sums at
        /// `partials[4 CUBE_POS..]`. Every unit of the cube must call it.
        #[cube]
        pub fn store_cube_sums<F: Float>(
            partials: &mut Lane<F>,
            a: F,
            b: F,
            c: F,
            d: F,
            #[comptime] units: usize,
        ) {
            let mut shared = shared_lane::<F>(units * 4);
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
        pub fn finish_sums_kernel<F: Float>(
            partials: &Lane<F>,
            totals: &mut Lane<F>,
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
    };
}
