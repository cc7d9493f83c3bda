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
/// go ([`Gather`]) rather than copied.
///
/// # Panics
///
/// If a lane does not have the parameter's number of elements.
pub fn run_arrays<E: Real, K: Kernel>(
    kernel: &K,
    param: &mut SharedArray<E>,
    grad: Option<&SharedArray<E>>,
    state: &mut [SharedArray<E>],
) {
    for array in std::iter::once(&mut *param).chain(state.iter_mut()) {
        if !array.is_standard_layout() {
            *array = row_major(array.view());
        }
    }
    let mut run = |grad: &[E], gather: Option<&Gather<'_, E>>| {
        kernel.run_any(Lanes {
            param: param.as_slice_mut().expect("standard layout"),
            grad,
            gather,
            state: state
                .iter_mut()
                .map(|s| s.as_slice_mut().expect("standard layout"))
                .collect(),
        })
    };
    match grad {
        None => run(&[], None),
        Some(grad) if grad.is_standard_layout() => {
            run(grad.as_slice().expect("standard layout"), None)
        }
        Some(grad) => {
            let view = grad.view();
            match Gather::of(&view) {
                Some(gather) => run(&[], Some(&gather)),
                None => {
                    let copy = row_major(view);
                    run(copy.as_slice().expect("standard layout"), None)
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
