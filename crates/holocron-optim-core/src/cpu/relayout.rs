//! Strided arrays read in row-major order, fast for the layouts Burn's backward produces.
//!
//! The CPU loops index every lane by the same position, so a gradient that is a view in
//! another order is read in row-major order. Burn's ndarray backward hands out such views
//! for every convolution weight (`swap_dims(0, 1)` of the gradient it computes), and
//! ndarray's own `as_standard_layout` copies them one element at a time through an index
//! iterator: on a ResNet-18 that copy took about ten times as long as the optimizer's
//! update. Here the dimensions that stay contiguous are merged into runs read whole, and
//! the CPU loops read each chunk's part of the gradient just before they use it
//! ([`Gather::read`]), into a buffer that stays in cache: no gradient-sized copy is written
//! and read again.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use ndarray::{ArcArray, ArrayD, ArrayViewD, IxDyn};

/// How many cache lines ahead of its copy [`Gather::read`] asks for the next runs: enough
/// to cover the time a line takes to come from memory, few enough that they are still in
/// L1 when read.
const PREFETCH_LINES: usize = 32;

/// Elements of `E` in a cache line.
const fn line<E>() -> usize {
    let elements = 64 / size_of::<E>();
    if elements == 0 { 1 } else { elements }
}

/// `view` in row-major order, in a new array.
pub fn row_major<E: Copy>(view: ArrayViewD<'_, E>) -> ArcArray<E, IxDyn> {
    let shape = view.shape().to_vec();
    let values = match Gather::of(&view) {
        Some(gather) => {
            let mut values = vec![];
            gather.read(0, gather.len(), &mut values);
            values
        }
        None => view.iter().copied().collect(),
    };
    ArrayD::from_shape_vec(IxDyn(&shape), values)
        .expect("as many elements as the shape")
        .into_shared()
}

/// A view's elements in row-major order, read a range at a time.
///
/// The view, with its dimensions of length 1 dropped and neighbours whose elements follow
/// each other in memory merged, is walked as `outer` dimensions, then `rows`, then `cols`,
/// each element of which is a run of `run` elements contiguous in memory.
pub struct Gather<'a, E> {
    source: *const E,
    outer: Vec<(usize, isize)>,
    rows: (usize, isize),
    cols: (usize, isize),
    run: usize,
    len: usize,
    view: PhantomData<&'a [E]>,
}

// SAFETY: a `Gather` only reads the view it borrows, as a shared `&[E]` would.
unsafe impl<E: Sync> Sync for Gather<'_, E> {}

impl<'a, E: Copy> Gather<'a, E> {
    /// `None` for a view this does not read (one with a negative stride).
    pub fn of(view: &'a ArrayViewD<'a, E>) -> Option<Self> {
        if view.strides().iter().any(|&s| s < 0) {
            return None;
        }
        let mut dims: Vec<(usize, isize)> = vec![];
        for (&len, &stride) in view.shape().iter().zip(view.strides()) {
            match dims.last_mut() {
                _ if len == 1 => {}
                Some((outer_len, outer_stride)) if *outer_stride == stride * len as isize => {
                    *outer_len *= len;
                    *outer_stride = stride;
                }
                _ => dims.push((len, stride)),
            }
        }
        let run = match dims.last() {
            Some(&(len, 1)) => {
                dims.pop();
                len
            }
            _ => 1,
        };
        let cols = dims.pop().unwrap_or((1, 0));
        let rows = dims.pop().unwrap_or((1, 0));
        Some(Gather {
            source: view.as_ptr(),
            outer: dims,
            rows,
            cols,
            run,
            len: view.len(),
            view: PhantomData,
        })
    }
}

impl<E: Copy> Gather<'_, E> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements `start..start + n` in row-major order, into `out` (cleared first).
    pub fn read(&self, start: usize, n: usize, out: &mut Vec<E>) {
        assert!(start + n <= self.len, "a range inside the view");
        out.clear();
        out.reserve(n);
        let slots = &mut out.spare_capacity_mut()[..n];
        let end = start + n;
        let row_len = self.cols.0 * self.run;
        // In a swapped convolution weight's gradient, rows lie closer in memory than
        // columns: reading whole rows a column at a time walks memory in order (each column's
        // part of the range is one contiguous stretch), where reading row by row jumps a
        // column's stride after every run, a jump the hardware prefetchers do not follow.
        let columns_first = row_len > 0 && self.cols.1.unsigned_abs() > self.rows.1.unsigned_abs();
        let (whole_from, whole_to) = if columns_first {
            (start.div_ceil(row_len) * row_len, end / row_len * row_len)
        } else {
            (end, end)
        };
        if whole_from < whole_to {
            self.read_by_rows(start, whole_from, start, slots);
            match self.run {
                1 => self.read_by_columns::<1>(whole_from, whole_to, start, slots),
                9 => self.read_by_columns::<9>(whole_from, whole_to, start, slots),
                _ => self.read_by_columns::<0>(whole_from, whole_to, start, slots),
            }
            self.read_by_rows(whole_to, end, start, slots);
        } else {
            self.read_by_rows(start, end, start, slots);
        }
        // SAFETY: the reads above wrote each of the first `n` slots once.
        unsafe { out.set_len(n) };
    }

    /// Elements `from..to` (any range) into `slots`, whose first is element `start`, row by
    /// row and run by run.
    fn read_by_rows(&self, from: usize, to: usize, start: usize, slots: &mut [MaybeUninit<E>]) {
        let (rows, row_stride) = self.rows;
        let (cols, col_stride) = self.cols;
        let run = self.run;
        let row_len = cols * run;
        // Columns further apart than a cache line: the next runs are fetched ahead, as in
        // `read_by_columns`.
        let far_columns = col_stride.unsigned_abs() > line::<E>();
        let ahead = (PREFETCH_LINES / run.div_ceil(line::<E>())).max(1);
        let mut at = from;
        while at < to {
            let row = at / row_len;
            let row_start = row * row_len;
            let row_end = (row_start + row_len).min(to);
            let base = self.outer_offset(row / rows) + (row % rows) as isize * row_stride;
            let (mut c, mut k) = ((at - row_start) / run, (at - row_start) % run);
            while at < row_end {
                if far_columns && at + ahead * run < row_end {
                    self.prefetch_run(base + (c + ahead) as isize * col_stride);
                }
                let take = (run - k).min(row_end - at);
                let from = base + c as isize * col_stride + k as isize;
                // SAFETY: `from` is the offset of element (…, row, c, k) of the view, and the
                // `take` elements after it lie in the same run, which is contiguous in the
                // view's memory (`Gather::of`); the view is borrowed for `'a`.
                let values = unsafe { std::slice::from_raw_parts(self.source.offset(from), take) };
                // Element by element: runs are short (9 for a 3 x 3 kernel, 1 for a 1 x 1),
                // where a call to `memcpy` per run would cost more than the copy.
                for (slot, value) in slots[at - start..at - start + take].iter_mut().zip(values) {
                    slot.write(*value);
                }
                at += take;
                c += 1;
                k = 0;
            }
        }
    }

    /// The whole rows `from..to` (multiples of the row length) into `slots`, whose first is
    /// element `start`, a column at a time for each stretch of rows under one outer index.
    /// `RUN` is the run length, or 0 for a length known only at run time (the common
    /// lengths, 9 and 1, are copied with fixed-size moves).
    fn read_by_columns<const RUN: usize>(
        &self,
        from: usize,
        to: usize,
        start: usize,
        slots: &mut [MaybeUninit<E>],
    ) {
        let (rows, row_stride) = self.rows;
        let (cols, col_stride) = self.cols;
        let run = if RUN == 0 { self.run } else { RUN };
        let row_len = cols * run;
        let (mut row, last) = (from / row_len, to / row_len);
        while row < last {
            let stretch_end = ((row / rows + 1) * rows).min(last);
            let first = self.outer_offset(row / rows) + (row % rows) as isize * row_stride;
            let written = &mut slots[row * row_len - start..stretch_end * row_len - start];
            let count = stretch_end - row;
            let ahead = PREFETCH_LINES.div_ceil((count * run).div_ceil(line::<E>()));
            for c in 0..cols {
                if c + ahead < cols {
                    self.prefetch_column(first + (c + ahead) as isize * col_stride, count);
                }
                let column = first + c as isize * col_stride;
                for (i, out_row) in written.chunks_exact_mut(row_len).enumerate() {
                    let from = column + i as isize * row_stride;
                    let slots = &mut out_row[c * run..(c + 1) * run];
                    // SAFETY: `from` is the offset of element (…, row + i, c, 0) of the view,
                    // whose run of `run` elements is contiguous in its memory (`Gather::of`),
                    // and `slots` has `run` elements; the view is borrowed for `'a`.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            self.source.offset(from),
                            slots.as_mut_ptr().cast::<E>(),
                            run,
                        );
                    }
                }
            }
            row = stretch_end;
        }
    }

    /// Asks the CPU to fetch the `count` runs of one column whose first starts at offset
    /// `first`: a column's runs lie a column's stride from the previous column's (2.3 KB for
    /// a 64-channel 3 x 3 convolution, 18 KB for 512), a jump the hardware prefetchers do
    /// not follow, and the copy's stores fill the store buffer before the out-of-order core
    /// reaches the next column's loads.
    #[inline(always)]
    fn prefetch_column(&self, first: isize, count: usize) {
        let (_, row_stride) = self.rows;
        if row_stride == self.run as isize {
            // One stretch: a line at a time, and one more for a start inside a line.
            for k in 0..=count * self.run / line::<E>() {
                self.prefetch(first + (k * line::<E>()) as isize);
            }
        } else {
            for i in 0..count {
                self.prefetch_run(first + i as isize * row_stride);
            }
        }
    }

    /// Asks the CPU to fetch the run at offset `at` (its first and last lines; the hardware
    /// fetches the lines between).
    #[inline(always)]
    fn prefetch_run(&self, at: isize) {
        self.prefetch(at);
        if self.run > 1 {
            self.prefetch(at + self.run as isize - 1);
        }
    }

    /// Asks the CPU to fetch the cache line of offset `at` into L1.
    #[inline(always)]
    fn prefetch(&self, at: isize) {
        // SAFETY: a prefetch reads nothing into the program and cannot fault (the addresses
        // are inside the view's memory all the same); SSE, which has it, is part of every
        // x86-64 CPU. Elsewhere the hardware prefetchers are left to it.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(self.source.wrapping_offset(at).cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = at;
    }

    /// The memory offset of outer index `b` (the outer dimensions in row-major order).
    fn outer_offset(&self, mut b: usize) -> isize {
        let mut offset = 0;
        for &(len, stride) in self.outer.iter().rev() {
            offset += (b % len) as isize * stride;
            b /= len;
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, Axis, IxDyn, s};

    use super::{Gather, row_major};

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
        // Read in ranges that start and end inside runs and rows, as the loops' chunks do, and
        // ranges that span whole rows (read a column at a time where columns are further
        // apart in memory than rows).
        if let Some(gather) = Gather::of(&view) {
            let mut read = vec![];
            let mut part = vec![];
            let mut start = 0;
            for width in [7, 1, 13, 40, 1500, 2600].into_iter().cycle() {
                if start >= gather.len() {
                    break;
                }
                let n = width.min(gather.len() - start);
                gather.read(start, n, &mut part);
                read.extend_from_slice(&part);
                start += n;
            }
            assert_eq!(read, expected, "{what}: read in ranges");
        }
    }

    /// The layouts Burn hands out (a convolution weight's gradient is the swap of its
    /// first two axes, 3 x 3 and 1 x 1 kernels; a Linear weight's transpose; slices with a
    /// step; a broadcast), each against ndarray's element-by-element order.
    #[test]
    fn views_are_copied_in_row_major_order() {
        let conv = counting(&[70, 40, 3, 3]);
        let mut swapped = conv.view();
        swapped.swap_axes(0, 1);
        check(swapped.clone(), "3x3 kernel, axes 0 and 1 swapped");
        check(
            swapped.slice(s![..;2, .., .., ..]).into_dyn(),
            "3x3 kernel, axes 0 and 1 swapped, every other row (rows apart in memory)",
        );
        let pointwise = counting(&[45, 70, 1, 1]);
        let mut swapped = pointwise.view();
        swapped.swap_axes(0, 1);
        check(swapped, "1x1 kernel, axes 0 and 1 swapped");
        let matrix = counting(&[33, 65]);
        check(matrix.t().into_dyn(), "transposed matrix");
        let cube = counting(&[5, 6, 7]);
        let permuted = cube.view().permuted_axes(IxDyn(&[2, 0, 1]));
        check(permuted, "permuted axes");
        let batched = counting(&[4, 30, 20, 3]);
        let permuted = batched.view().permuted_axes(IxDyn(&[0, 2, 1, 3]));
        check(
            permuted,
            "middle axes swapped under an outer axis, runs of 3",
        );
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
