//! Row-major copies of strided arrays, fast for the layouts Burn's backward produces.
//!
//! The CPU loops index every lane by the same position, so a gradient that is a view in
//! another order is copied into row-major order first. Burn's ndarray backward hands out
//! such views for every convolution weight (`swap_dims(0, 1)` of the gradient it computes)
//! and ndarray's own `as_standard_layout` walks them one element at a time through an index
//! iterator: on a ResNet-18 that copy took about ten times as long as the optimizer's update.
//! Here the dimensions that stay contiguous are merged into runs copied whole, and the last
//! two remaining dimensions are copied in tiles, so that both sides stay in cache.

use std::mem::MaybeUninit;

use burn::backend::ndarray::SharedArray;
use ndarray::{ArrayD, ArrayViewD, IxDyn};

/// Runs per side of a tile.
const TILE: usize = 32;

/// `view` in row-major order, in a new array.
pub(super) fn row_major<E: Copy + Send + Sync>(view: ArrayViewD<'_, E>) -> SharedArray<E> {
    let shape = view.shape().to_vec();
    let mut out = vec![];
    row_major_into(view, &mut out);
    ArrayD::from_shape_vec(IxDyn(&shape), out)
        .expect("as many elements as the shape")
        .into_shared()
}

/// `view`'s elements in row-major order, in `out` (its old contents dropped, its memory
/// reused).
pub(super) fn row_major_into<E: Copy + Send + Sync>(view: ArrayViewD<'_, E>, out: &mut Vec<E>) {
    out.clear();
    let Some(plan) = Plan::of(&view) else {
        out.extend(view.iter().copied());
        return;
    };
    let n = view.len();
    out.reserve(n);
    let written = plan.copy(view.as_ptr(), out.spare_capacity_mut());
    assert_eq!(written, n, "every element written once");
    // SAFETY: `copy` wrote the first `n` elements, as it returned.
    unsafe { out.set_len(n) };
}

/// The copy of a view as loops: `outer` dimensions (length, stride) walked in row-major
/// order, then a tile loop over the dimensions `rows` and `cols`, each element of which is a
/// run of `run` elements contiguous in the source.
struct Plan {
    outer: Vec<(usize, isize)>,
    rows: (usize, isize),
    cols: (usize, isize),
    run: usize,
}

impl Plan {
    /// `None` for a view this does not take (a negative stride).
    fn of<E>(view: &ArrayViewD<'_, E>) -> Option<Plan> {
        if view.strides().iter().any(|&s| s < 0) {
            return None;
        }
        // Row-major order; a dimension of length 1 moves nothing.
        let mut dims: Vec<(usize, isize)> = view
            .shape()
            .iter()
            .zip(view.strides())
            .filter(|(len, _)| **len != 1)
            .map(|(&len, &stride)| (len, stride))
            .collect();
        // Neighbours whose elements follow each other in the source are one dimension.
        let mut merged: Vec<(usize, isize)> = vec![];
        for (len, stride) in dims.drain(..) {
            match merged.last_mut() {
                Some((outer_len, outer_stride)) if *outer_stride == stride * len as isize => {
                    *outer_len *= len;
                    *outer_stride = stride;
                }
                _ => merged.push((len, stride)),
            }
        }
        let run = match merged.last() {
            Some(&(len, 1)) => {
                merged.pop();
                len
            }
            _ => 1,
        };
        let cols = merged.pop().unwrap_or((1, 0));
        let rows = merged.pop().unwrap_or((1, 0));
        Some(Plan {
            outer: merged,
            rows,
            cols,
            run,
        })
    }

    /// Copies the view starting at `source` into `out`, in order; returns how many
    /// elements it wrote. Each band of `TILE` rows goes to `out` as one contiguous range,
    /// so the bands are copied in parallel.
    fn copy<E: Copy + Send + Sync>(&self, source: *const E, out: &mut [MaybeUninit<E>]) -> usize {
        use rayon::prelude::*;
        let outer_count: usize = self.outer.iter().map(|(len, _)| len).product();
        let (rows, cols) = (self.rows.0, self.cols.0);
        let row_len = cols * self.run;
        let n = outer_count * rows * row_len;
        // Bands: (outer index, first row, the band's part of `out`).
        let mut bands = vec![];
        let mut rest = &mut out[..n];
        for b in 0..outer_count {
            for first in (0..rows).step_by(TILE) {
                let band_rows = TILE.min(rows - first);
                let (band, tail) = rest.split_at_mut(band_rows * row_len);
                bands.push((b, first, band));
                rest = tail;
            }
        }
        let source = Source(source);
        bands
            .into_par_iter()
            .for_each(|(b, first, band)| self.copy_band(&source, b, first, band));
        n
    }

    /// Rows `first..` (as many as `band` holds) of outer index `b`, tile by tile.
    fn copy_band<E: Copy>(
        &self,
        source: &Source<E>,
        b: usize,
        first: usize,
        band: &mut [MaybeUninit<E>],
    ) {
        let (_, row_stride) = self.rows;
        let (cols, col_stride) = self.cols;
        let row_len = cols * self.run;
        // The outer index's offset, the last dimension fastest.
        let mut base = 0isize;
        let mut rest = b;
        for &(len, stride) in self.outer.iter().rev() {
            base += (rest % len) as isize * stride;
            rest /= len;
        }
        let band_rows = band.len() / row_len.max(1);
        for col_tile in (0..cols).step_by(TILE) {
            for r in 0..band_rows {
                let row = base + (first + r) as isize * row_stride;
                for c in col_tile..(col_tile + TILE).min(cols) {
                    let at = row + c as isize * col_stride;
                    // SAFETY: `at` is the offset of element (…, first + r, c, 0) of the view,
                    // and its `run` elements follow it contiguously (`Plan::of`), so the
                    // whole run lies inside the view's memory, which outlives the copy.
                    let run = unsafe { std::slice::from_raw_parts(source.0.offset(at), self.run) };
                    let to = r * row_len + c * self.run;
                    for (slot, value) in band[to..to + self.run].iter_mut().zip(run) {
                        slot.write(*value);
                    }
                }
            }
        }
    }
}

/// The view's first element, shared by the threads that copy disjoint bands of it.
struct Source<E>(*const E);

// SAFETY: the bands only read through the pointer, while the view they copy is borrowed.
unsafe impl<E: Sync> Sync for Source<E> {}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, Axis, IxDyn, s};

    use super::row_major;

    fn counting(shape: &[usize]) -> ArrayD<f32> {
        let n: usize = shape.iter().product();
        ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|i| i as f32).collect()).unwrap()
    }

    fn check(view: ndarray::ArrayViewD<'_, f32>, what: &str) {
        let expected: Vec<f32> = view.iter().copied().collect();
        let copied = row_major(view.clone());
        assert_eq!(copied.shape(), view.shape(), "{what}: shape");
        assert!(copied.is_standard_layout(), "{what}: layout");
        assert_eq!(copied.as_slice().unwrap(), &expected[..], "{what}: values");
    }

    /// The layouts Burn hands out (a convolution weight's gradient is the swap of its
    /// first two axes, 3 x 3 and 1 x 1 kernels; a Linear weight's transpose; slices with a
    /// step; a broadcast), each against ndarray's element-by-element order.
    #[test]
    fn views_are_copied_in_row_major_order() {
        let conv = counting(&[70, 40, 3, 3]);
        let mut swapped = conv.view();
        swapped.swap_axes(0, 1);
        check(swapped, "3x3 kernel, axes 0 and 1 swapped");
        let pointwise = counting(&[45, 70, 1, 1]);
        let mut swapped = pointwise.view();
        swapped.swap_axes(0, 1);
        check(swapped, "1x1 kernel, axes 0 and 1 swapped");
        let matrix = counting(&[33, 65]);
        check(matrix.t().into_dyn(), "transposed matrix");
        let cube = counting(&[5, 6, 7]);
        let permuted = cube.view().permuted_axes(IxDyn(&[2, 0, 1]));
        check(permuted, "permuted axes");
        check(
            conv.slice(s![..;2, 1.., .., ..;2]).into_dyn(),
            "slices with steps",
        );
        let row = counting(&[1, 37]);
        check(row.broadcast(IxDyn(&[50, 37])).unwrap(), "a broadcast row");
        check(counting(&[40, 1, 3]).view(), "row-major already");
        check(counting(&[0, 3]).view(), "empty");
        check(counting(&[]).view(), "a scalar");
        let mut reversed = counting(&[8, 9]);
        reversed.invert_axis(Axis(1));
        check(reversed.view(), "a reversed axis (ndarray's copy)");
    }
}
