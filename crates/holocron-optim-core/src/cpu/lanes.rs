//! The lanes of one step and their parallel passes.

use super::parallel::run_jobs;
use super::relayout::Gather;
use crate::Real;

/// The raw buffers of one parameter tensor's step, all of the same length and in the same
/// (row-major) order: the parameter and the state lanes are updated in place, the gradient
/// is read.
pub struct Lanes<'a, E> {
    /// The parameter.
    pub param: &'a mut [E],
    /// The gradient (empty where `gather` reads it, or where there is none).
    pub grad: &'a [E],
    /// The gradient, where it is a view in another order: [`Lanes::pass`] reads each
    /// chunk's part of it into `grad` just before the chunk runs.
    pub gather: Option<&'a Gather<'a, E>>,
    /// The gradient, where the step may write over it (`grad` is then empty): given only to
    /// a kernel that [stashes](super::Kernel::stashes), whose summing pass leaves there what
    /// its update pass reads.
    pub writable_grad: Option<&'a mut [E]>,
    /// The state tensors, in the order the optimizer listed them.
    pub state: Vec<&'a mut [E]>,
}

/// Elements per parallel task: large enough that scheduling costs nothing next to the
/// memory traffic, small enough that two cores share a 256K-element tensor.
pub const CHUNK: usize = 1 << 15;

impl<E: Real> Lanes<'_, E> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.param.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.param.is_empty()
    }

    /// Runs `pass` on matching chunks of every lane, in parallel (the calling thread and
    /// rayon's), and returns the sum of the `K` values the chunks return (the partial
    /// sums of a norm or dot product; `K = 0` for a pass that only updates).
    pub fn pass<const K: usize>(
        &mut self,
        pass: impl Fn(Lanes<'_, E>) -> [f64; K] + Sync,
    ) -> [f64; K] {
        let n = self.len();
        // An empty gradient lane is a kernel without gradient (a wrapper's sync).
        let grad_len = match (&self.writable_grad, self.gather) {
            (Some(grad), _) => grad.len(),
            (None, Some(gather)) => gather.len(),
            (None, None) => self.grad.len(),
        };
        assert!(
            grad_len == 0 || grad_len == n,
            "gradient and parameter differ in size"
        );
        for lane in &self.state {
            assert_eq!(
                lane.len(),
                n,
                "optimizer state and parameter differ in size"
            );
        }
        let gather = self.gather;
        // Chunk `start..start + len` with its gradient, read first where it is gathered.
        let run = |start: usize, lanes: Lanes<'_, E>| match gather {
            None => pass(lanes),
            Some(gather) => E::with_buffer(|buffer| {
                gather.read(start, lanes.param.len(), buffer);
                pass(Lanes {
                    grad: buffer,
                    ..lanes
                })
            }),
        };
        if n <= CHUNK {
            return run(
                0,
                Lanes {
                    param: self.param,
                    grad: self.grad,
                    gather: None,
                    writable_grad: self.writable_grad.as_deref_mut(),
                    state: self.state.iter_mut().map(|s| &mut **s).collect(),
                },
            );
        }
        let mut state_chunks: Vec<_> = self.state.iter_mut().map(|s| s.chunks_mut(CHUNK)).collect();
        let mut grad_chunks = self.grad.chunks(CHUNK);
        let mut writable_chunks = self
            .writable_grad
            .as_deref_mut()
            .map(|g| g.chunks_mut(CHUNK));
        let jobs: Vec<(usize, Lanes<'_, E>)> = self
            .param
            .chunks_mut(CHUNK)
            .enumerate()
            .map(|(c, param)| {
                let lanes = Lanes {
                    param,
                    grad: grad_chunks.next().unwrap_or(&[]),
                    gather: None,
                    writable_grad: writable_chunks.as_mut().and_then(Iterator::next),
                    state: state_chunks
                        .iter_mut()
                        .map(|chunks| chunks.next().expect("lanes of equal length"))
                        .collect(),
                };
                (c * CHUNK, lanes)
            })
            .collect();
        in_chunk_order(&run_jobs(jobs, &|(start, lanes)| run(start, lanes)))
    }
}

/// [`Lanes::pass`] for read-only rows: `sums` runs on matching chunks of every row, in
/// parallel, and the `K` sums it returns are added up.
pub fn reduce_rows<E: Real, const K: usize>(
    rows: &[&[E]],
    sums: impl Fn(&[&[E]]) -> [f64; K] + Sync,
) -> [f64; K] {
    let n = rows.first().map_or(0, |r| r.len());
    for row in rows {
        assert_eq!(row.len(), n, "rows differ in size");
    }
    let ranges: Vec<_> = (0..n.div_ceil(CHUNK))
        .map(|c| c * CHUNK..(c * CHUNK + CHUNK).min(n))
        .collect();
    let partials = run_jobs(ranges, &|range| {
        let chunk: Vec<&[E]> = rows.iter().map(|r| &r[range.clone()]).collect();
        sums(&chunk)
    });
    in_chunk_order(&partials)
}

/// The chunks' partial sums added in chunk order. Added as the threads finish them, in
/// the order the scheduling happens to take, the totals, and a run resumed with another
/// thread count, would differ in the last bits. Collected first, the partials keep their
/// chunk's place.
fn in_chunk_order<const K: usize>(partials: &[[f64; K]]) -> [f64; K] {
    let mut total = [0.0; K];
    for partial in partials {
        for (sum, value) in total.iter_mut().zip(partial) {
            *sum += value;
        }
    }
    total
}

/// The `K` terms of some sums at each index, for [`sum_each`].
///
/// A trait rather than a closure because `at` must be `#[inline(always)]`, which a closure
/// cannot be: the chunk loops are compiled once per instruction set
/// (`super::isa`), and each copy must have the terms inlined, or it makes one call per
/// element.
pub trait Terms<E, const K: usize> {
    /// How many of the `K` terms are summed: a rule with fewer sums than `K` leaves the
    /// others zero, and adding up those zeros costs as much as adding up the terms.
    const USED: usize = K;
    /// The terms at index `i`.
    fn at(&mut self, i: usize) -> [E; K];
}

/// Sums the first [`Terms::USED`] values `terms.at(i)` returns for `i` in `0..n` (the
/// others are returned as zero), calling it once per index in order.
///
/// One running sum would be a chain of dependent additions, which the compiler may not
/// reorder, and that chain would keep the whole loop (moment updates included) scalar. So
/// the values of a block of indices go to a small scratch array first, in a loop free of
/// reductions that vectorizes, and each block is then added in `f64` to 32 independent
/// running sums, added together once at the end: with eight (one vector), each addition
/// waited on the one before, and LARS's summing pass on BERT's tensors took as long as its
/// update pass, which moves 2.5 times the bytes. The scratch (`K` × 1024 elements, on the
/// stack) is the only memory this adds. The terms stay in the element type, which keeps the
/// first loop as wide as the element-wise ones; only their sum is widened.
///
/// The compiler leaves the last 16 elements of each block to a scalar copy of the loop
/// (the bounds checks it keeps ask for one), where each element of LAMB's and RaLars's
/// terms takes a square root and a division of its own. With blocks of 256
/// that copy took about a fifth of LAMB's summing pass; blocks of 1024 make it a
/// sixty-fourth of the elements, and 2048 made AdamP's four scratch rows (32 KiB) spill
/// out of the L1 cache. Each value still goes to running sum `index % 32`, in index order,
/// whatever the block size (a multiple of 32), so the totals do not depend on it.
#[inline(always)]
pub fn sum_each<E: Real, const K: usize, T: Terms<E, K>>(n: usize, terms: &mut T) -> [f64; K] {
    const BLOCK: usize = 1024;
    let used = T::USED.min(K);
    let mut scratch = [[E::of(0.0); BLOCK]; K];
    let mut partials = [[0.0f64; PARTIALS]; K];
    let mut start = 0;
    while start < n {
        let len = BLOCK.min(n - start);
        for j in 0..len {
            let values = terms.at(start + j);
            for (lane, value) in scratch.iter_mut().zip(values).take(used) {
                lane[j] = value;
            }
        }
        for (partial, lane) in partials.iter_mut().zip(&scratch).take(used) {
            add_block(partial, &lane[..len]);
        }
        start += len;
    }
    partials.map(|partial| partial.iter().sum())
}

/// The running sums of [`sum_each`]: four vectors of eight `f64`, enough to keep the adds
/// of a core with two adders and a four-cycle latency busy.
const PARTIALS: usize = 32;

/// Adds `values` to the running sums, value `j` to sum `j % PARTIALS`.
#[inline(always)]
fn add_block<E: Real>(partial: &mut [f64; PARTIALS], values: &[E]) {
    let chunks = values.chunks_exact(PARTIALS);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (sum, value) in partial.iter_mut().zip(chunk) {
            *sum += value.wide();
        }
    }
    for (sum, value) in partial.iter_mut().zip(rest) {
        *sum += value.wide();
    }
}

#[cfg(test)]
mod tests {
    use super::{CHUNK, Lanes};

    /// The chunk sums of one lane under `threads` threads: chunks whose sums are
    /// `1e16, 1, -1e16, 1, ...`, where the order of the additions decides the total.
    fn total_under(threads: usize) -> f64 {
        let chunk_sums = [1e16, 1.0, -1e16, 1.0, 1e16, 1.0, -1e16, 1.0];
        let mut param = vec![0.0f64; CHUNK * chunk_sums.len()];
        for (c, sum) in chunk_sums.iter().enumerate() {
            param[c * CHUNK] = *sum;
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut lanes = Lanes {
                param: &mut param,
                grad: &[],
                gather: None,
                writable_grad: None,
                state: vec![],
            };
            let [total] = lanes.pass(|chunk| [chunk.param.iter().sum::<f64>()]);
            total
        })
    }

    /// Chunk sums are added in chunk order whatever the thread count: the total is the
    /// left-to-right sum (1e16 + 1 rounds to 1e16, and so on), under 1 to 4 threads.
    #[test]
    fn chunk_sums_add_in_chunk_order() {
        let in_order = [1e16, 1.0, -1e16, 1.0, 1e16, 1.0, -1e16, 1.0]
            .iter()
            .fold(0.0f64, |total, sum| total + sum);
        for threads in 1..=4 {
            assert_eq!(
                total_under(threads).to_bits(),
                in_order.to_bits(),
                "{threads} threads"
            );
        }
    }
}
