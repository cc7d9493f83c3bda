//! The CPU loops: a rule's step as one in-place pass over a parameter, its gradient and its
//! state (two where the rule needs whole-tensor sums), instead of one pass and one fresh
//! buffer per tensor operation, for every Burn version's crate.
//!
//! The rules' phases ([`Rule`](crate::Rule)'s methods on lanes) run chunk by chunk in
//! parallel, on the calling thread and rayon's ([`Lanes::pass`]), each chunk's loop
//! compiled for the widest instruction set the CPU has ([`isa`]), and whole-tensor sums
//! added in chunk order, so that a step gives the same bits under any thread count.
//! [`run_arrays`] and [`reduce_arrays`] run them on the `ndarray` arrays behind the tensors
//! of Burn's ndarray backend (the same `ndarray` release in Burn 0.21 and 0.22); a Burn crate
//! only takes its tensors apart into those arrays and puts them back.

pub mod isa;
mod lanes;
mod loops;
mod parallel;
mod relayout;

pub use lanes::{CHUNK, Lanes, Terms, reduce_rows, sum_each};
pub use loops::RuleStep;
pub use relayout::{Gather, row_major};

use ndarray::{ArcArray, IxDyn};

use crate::Real;

/// An array behind a tensor of Burn's ndarray backend, in any layout.
pub type SharedArray<E> = ArcArray<E, IxDyn>;

/// An optimizer's rule over the raw buffers of one parameter tensor.
pub trait Kernel: Sync {
    /// The rule's flag (AMSGrad, or LARS's momentum): whether its optional lanes exist.
    fn flag(&self) -> bool {
        false
    }

    /// Whether the kernel may write over the gradient: where the gradient's buffer is the
    /// step's own, in row-major order, [`run_arrays`] then gives it as
    /// [`Lanes::writable_grad`].
    fn stashes(&self) -> bool {
        false
    }

    /// Updates the parameter and state lanes in place from the gradient lane. `FLAG` is
    /// [`Self::flag`], as a constant so that each case compiles to its own loop.
    fn run<E: Real, const FLAG: bool>(&self, lanes: Lanes<'_, E>);

    /// [`Self::run`] with the flag [`Self::flag`] gives.
    fn run_any<E: Real>(&self, lanes: Lanes<'_, E>) {
        if self.flag() {
            self.run::<E, true>(lanes)
        } else {
            self.run::<E, false>(lanes)
        }
    }
}

/// A sum over the elements of some same-sized tensors, read only (a wrapper's statistics
/// of its weights).
pub trait Reduction<const K: usize>: Sync {
    /// The `K` sums over one chunk of the rows (all of the same length).
    fn sums<E: Real>(&self, rows: &[&[E]]) -> [f64; K];
}

/// `array` in row-major order: itself when it is, else a copy (a transposed, permuted or
/// broadcast view, see [`row_major`]), so that every lane indexes elements the same way.
pub fn standard<E: Copy>(array: SharedArray<E>) -> SharedArray<E> {
    if array.is_standard_layout() {
        array
    } else {
        row_major(array.view())
    }
}

/// Runs `kernel` on a parameter, its gradient (none for a wrapper's sync) and its state
/// lanes, updating the parameter and the state in place: a buffer shared with another
/// array is copied first (as ndarray does on a write), one in another order is brought to
/// row-major order ([`standard`]). A gradient in another order (Burn's backward gives every
/// convolution weight's with its first two axes swapped) is read chunk by chunk as the loops
/// go ([`Gather`]) rather than copied. A kernel that [stashes](Kernel::stashes) may write
/// over a gradient in row-major order whose buffer nothing else holds; any other gradient
/// is only read.
///
/// # Panics
///
/// If a lane does not have the parameter's number of elements.
pub fn run_arrays<E: Real, K: Kernel>(
    kernel: &K,
    param: &mut SharedArray<E>,
    grad: Option<&mut SharedArray<E>>,
    state: &mut [SharedArray<E>],
) {
    for array in std::iter::once(&mut *param).chain(state.iter_mut()) {
        if !array.is_standard_layout() {
            *array = row_major(array.view());
        }
    }
    let mut run = |grad: &[E], gather: Option<&Gather<'_, E>>, writable_grad: Option<&mut [E]>| {
        kernel.run_any(Lanes {
            param: param.as_slice_mut().expect("standard layout"),
            grad,
            gather,
            writable_grad,
            state: state
                .iter_mut()
                .map(|s| s.as_slice_mut().expect("standard layout"))
                .collect(),
        })
    };
    match grad {
        None => run(&[], None, None),
        Some(grad) if kernel.stashes() && grad.is_standard_layout() && grad.is_unique() => run(
            &[],
            None,
            Some(grad.as_slice_mut().expect("standard layout")),
        ),
        Some(grad) if grad.is_standard_layout() => {
            run(grad.as_slice().expect("standard layout"), None, None)
        }
        Some(grad) => {
            let view = grad.view();
            match Gather::of(&view) {
                Some(gather) => run(&[], Some(&gather), None),
                None => {
                    let copy = row_major(view);
                    run(copy.as_slice().expect("standard layout"), None, None)
                }
            }
        }
    }
}

/// The sums of `reduction` over `rows` (arrays of one length, in row-major order), chunk by
/// chunk in parallel and added in chunk order; the rows are only read.
///
/// # Panics
///
/// If a row is not in row-major order or the rows differ in length.
pub fn reduce_arrays<E: Real, R: Reduction<K>, const K: usize>(
    reduction: &R,
    rows: &[SharedArray<E>],
) -> [f64; K] {
    let slices: Vec<&[E]> = rows
        .iter()
        .map(|a| a.as_slice().expect("standard layout"))
        .collect();
    reduce_rows(&slices, |chunk| reduction.sums(chunk))
}

#[cfg(test)]
mod tests {
    use ndarray::{ArcArray, IxDyn};

    use super::{CHUNK, RuleStep, SharedArray, run_arrays};
    use crate::Rule;
    use crate::rules::adamp::{AdamP, AdamPRule};
    use crate::rules::lamb::{Direction, Lamb, TrustRule};

    /// `n` values of a fixed pseudo-random sequence in `[-1, 1)`, with `seed`.
    fn values(n: usize, seed: u64) -> SharedArray<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let v: Vec<f32> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        ArcArray::from_shape_vec(IxDyn(&[n]), v).unwrap()
    }

    /// Three steps of `step` on a parameter of a few chunks, the gradient given as the
    /// step's own buffer or shared with another array: the parameter, the state, and each
    /// step's gradient after the step.
    fn run<R: Rule>(
        step: impl Fn(usize) -> RuleStep<R>,
        lanes: usize,
        shared_gradient: bool,
    ) -> (Vec<SharedArray<f32>>, Vec<Vec<f32>>) {
        let n = 2 * CHUNK + 1000;
        let mut param = values(n, 1);
        let mut state: Vec<SharedArray<f32>> = (0..lanes).map(|_| values(n, 0) * 0.0).collect();
        let mut after = vec![];
        for time in 1..=3 {
            let mut grad = values(n, 10 + time as u64);
            let other = shared_gradient.then(|| grad.clone());
            run_arrays(&step(time), &mut param, Some(&mut grad), &mut state);
            drop(other);
            after.push(grad.iter().copied().collect());
        }
        state.insert(0, param);
        (state, after)
    }

    /// A rule that stashes writes over a gradient of its own (the stashed values differ
    /// from the gradient's), leaves a shared one as it was, and steps the parameter and the
    /// state to the same bits either way.
    fn stashing_matches_recomputing<R: Rule>(step: impl Fn(usize) -> RuleStep<R> + Copy) {
        assert!(R::STASHES);
        let (stashed, written) = run(step, 2, false);
        let (recomputed, read) = run(step, 2, true);
        for (time, (w, r)) in written.iter().zip(&read).enumerate() {
            let original: Vec<f32> = values(w.len(), 11 + time as u64).iter().copied().collect();
            assert_eq!(r, &original, "a shared gradient is only read");
            assert_ne!(
                w, &original,
                "the summing pass wrote over the step's own gradient"
            );
        }
        for (a, b) in stashed.iter().zip(&recomputed) {
            let bits = |x: &SharedArray<f32>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b));
        }
    }

    #[test]
    fn lamb_stashes_its_direction_to_the_same_bits() {
        let lamb = Lamb {
            weight_decay: 0.01,
            ..Lamb::default()
        };
        stashing_matches_recomputing(|time| RuleStep::<TrustRule> {
            coefficients: lamb.trust().coefficients(1e-2, time, Direction::ADAM, 1),
            flag: false,
        });
    }

    #[test]
    fn adamp_stashes_its_direction_to_the_same_bits() {
        let adamp = AdamP::default();
        let n = 2 * CHUNK + 1000;
        stashing_matches_recomputing(|time| RuleStep::<AdamPRule> {
            coefficients: adamp.coefficients(1e-2, time, n),
            flag: false,
        });
    }
}
