use core::marker::PhantomData;

use burn::module::{AutodiffModule, ModuleMapper, Param, ParamId};
use burn::optim::{GradientsParams, LearningRate, MultiGradientsParams, Optimizer};
use burn::record::Record;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use hashbrown::HashMap;

use super::slow::{self, Core, SyncRate, wrapper_optimizer};
use crate::Execution;
use crate::fused::{self, Kernel, Lanes, Real, Reduction};

/// The weights of one parameter at the start of the window and after each step in it.
type Window<B> = HashMap<ParamId, Vec<Tensor<B, 1>>>;

/// Scout: Lookahead whose sync rate follows how coherent the fast steps were
/// (holocron's wrapper, after ["Lookahead Optimizer"](https://arxiv.org/abs/1907.08610)).
///
/// The window holds the slow weights and the fast weights after each inner step. At a sync,
/// for each parameter tensor, with `u` the `sync_period` successive differences of its
/// window (one row per step):
///
/// ```text
/// sim       = mean over elements of  std(u, unbiased) / max |u - mean(u)|   (0/0 counts as 0)
/// coherence = mean over tensors of sim
/// rate      = max(1 - coherence, sync_rate)
/// slow <- slow + rate (fast - slow);   fast <- slow
/// ```
///
/// # Memory
///
/// Scout holds `sync_period + 1` copies of the parameters: the slow weights (which start
/// the window) and one per inner step of the window, the last of which is the model
/// itself. With the default `sync_period = 6`, that is 6 copies on top of the model and the
/// inner optimizer's state, plus a few parameter-sized temporaries during a sync
/// (`cargo run --release --example wrapper_memory` measures it; see the README).
///
/// # Differences from holocron
///
/// holocron gives NaN for an element whose steps never deviate from their mean (0/0), for
/// instance a parameter without gradient, and for `sync_period = 1` (no unbiased std of
/// one row); the NaN rate then resets the fast weights at every sync and training stops.
/// Here a 0/0 element counts as 0, and with `sync_period = 1` the coherence is 0 (so the
/// rate is 1 and the slow weights follow the fast ones).
#[derive(Clone)]
pub struct Scout<O, M, B: AutodiffBackend> {
    core: Core<O, B::InnerBackend>,
    window: Window<B::InnerBackend>,
    /// The rows of the last window, kept after a sync so that the next window's snapshots
    /// are copied into them rather than into fresh allocations (fused path only).
    spare: Window<B::InnerBackend>,
    _module: PhantomData<fn() -> M>,
}

/// Record of [`Scout`]: everything needed to continue exactly where it stopped, in the
/// middle of a window too.
#[derive(Record)]
pub struct ScoutRecord<B: Backend, R: Record<B>> {
    /// The inner optimizer's record.
    pub inner: R,
    /// The slow weights, flattened, by parameter id.
    pub slow_weights: HashMap<ParamId, Tensor<B, 1>>,
    /// The current window, flattened, by parameter id.
    pub window: HashMap<ParamId, Vec<Tensor<B, 1>>>,
    /// Inner steps taken so far.
    pub steps: usize,
}

impl<O, M, B> Scout<O, M, B>
where
    O: Optimizer<M, B>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
{
    pub(crate) fn new(inner: O, sync_rate: f64, sync_period: usize, execution: Execution) -> Self {
        Self {
            core: Core::new(inner, sync_rate, sync_period, execution),
            window: HashMap::new(),
            spare: HashMap::new(),
            _module: PhantomData,
        }
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.core.inner
    }

    fn before_inner_step(&mut self, module: &M) {
        slow::capture_new::<B, M>(&mut self.core.slow, module, None);
        // The window and its spare rows follow the slow weights: a parameter that left the
        // model leaves them too (and the coherence).
        let slow = &self.core.slow;
        self.window.retain(|id, _| slow.contains_key(id));
        self.spare.retain(|id, _| slow.contains_key(id));
        for (id, weights) in &self.core.slow {
            self.window
                .entry(*id)
                .or_insert_with(|| vec![weights.clone()]);
        }
    }

    /// Moves the slow weights, window and spare rows of each parameter to its device.
    fn follow_devices(&mut self, module: &M) {
        let Self {
            core,
            window,
            spare,
            ..
        } = self;
        slow::on_devices::<B, M>(module, |id, device| {
            let rows = [window.get_mut(&id), spare.get_mut(&id)];
            let tensors = core.slow.get_mut(&id).into_iter();
            for tensor in tensors.chain(rows.into_iter().flatten().flatten()) {
                slow::follow(tensor, device);
            }
        });
    }

    fn after_inner_step(&mut self, module: M) -> M {
        self.follow_devices(&module);
        let sync = self.core.count_step();
        let module = if self.core.execution.loops() {
            let mut snapshot = Snapshot::<B> {
                window: &mut self.window,
                spare: &mut self.spare,
            };
            module.map(&mut snapshot)
        } else {
            for (id, weights) in slow::snapshot::<B, M>(&module) {
                if let Some(rows) = self.window.get_mut(&id) {
                    rows.push(weights);
                }
            }
            module
        };
        if !sync {
            return module;
        }
        let rate = if self.core.execution.loops() && fused_window(&self.window) {
            // Read on the host: the fused path's buffers are host memory.
            let coherence = fused_coherence(&self.window).unwrap_or(0.0);
            SyncRate::Fixed((1.0 - coherence).max(self.core.sync_rate))
        } else {
            match coherence(&self.window, self.core.execution) {
                Some(coherence) => SyncRate::Computed(
                    coherence
                        .neg()
                        .add_scalar(1.0)
                        .clamp_min(self.core.sync_rate),
                ),
                None => SyncRate::Fixed(1.0f64.max(self.core.sync_rate)),
            }
        };
        // The window's rows share buffers with the weights; let them go first, so that the
        // sync can write the weights in place. The others are the next window's buffers.
        for (id, mut rows) in self.window.drain() {
            if self.core.execution.loops() && rows.len() > 1 {
                rows.remove(0);
                self.spare.insert(id, rows);
            }
        }
        let module = slow::sync(&mut self.core.slow, module, &rate, self.core.execution);
        self.window = self
            .core
            .slow
            .iter()
            .map(|(id, weights)| (*id, vec![weights.clone()]))
            .collect();
        module
    }
}

/// The windows of the tensors that have elements: an empty parameter has no steps to
/// agree on, and its similarity (a sum over no elements divided by none) would be NaN.
fn nonempty<B: Backend>(window: &Window<B>) -> impl Iterator<Item = &Vec<Tensor<B, 1>>> {
    window.values().filter(|rows| {
        rows.first()
            .is_some_and(|row| row.shape().num_elements() > 0)
    })
}

/// The mean over tensors (those with elements) of each tensor's step coherence, or `None`
/// when no tensor has two steps in its window (every similarity is then 0, and so is the
/// coherence). With `fused` on WGPU or CUDA each tensor's similarity is a kernel's sum.
fn coherence<B: Backend>(window: &Window<B>, execution: Execution) -> Option<Tensor<B, 1>> {
    let count = nonempty(window).count() as f64;
    nonempty(window)
        .filter_map(|rows| similarity(rows, execution))
        // Each tensor's similarity is on its parameter's device.
        .reduce(|a, b| {
            let b = slow::moved(b, &a.device());
            a.add(b)
        })
        .map(|total| total.div_scalar(count))
}

/// Appends each parameter's current value to its window row list, copying it into a spare
/// row where one of the right size is left from the last window.
struct Snapshot<'a, B: AutodiffBackend> {
    window: &'a mut Window<B::InnerBackend>,
    spare: &'a mut Window<B::InnerBackend>,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Snapshot<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        slow::map_value(param, |id, fast| {
            let Some(rows) = self.window.get_mut(&id) else {
                return fast;
            };
            let numel = fast.shape().num_elements();
            let spare = self
                .spare
                .get_mut(&id)
                .and_then(Vec::pop)
                .filter(|row| row.dims()[0] == numel && row.dtype() == fast.dtype());
            match spare {
                Some(row) if fused::supports::<B::InnerBackend>(fast.dtype()) => {
                    let (fast, mut copied) = fused::run(&CopyInto, (fast, None, vec![row]));
                    rows.push(copied.pop().expect("the copied row"));
                    fast
                }
                _ => {
                    rows.push(fast.clone().reshape([numel]));
                    fast
                }
            }
        })
    }
}

/// Copies the parameter lane into the one state lane.
struct CopyInto;

impl Kernel for CopyInto {
    fn run<E: Real, const FLAG: bool>(&self, mut lanes: Lanes<'_, E>) {
        lanes.pass(
            |Lanes {
                 param, mut state, ..
             }| {
                state[0][..param.len()].copy_from_slice(param);
                []
            },
        );
    }
}

/// Whether the fused path can read every row of the window.
fn fused_window<B: Backend>(window: &Window<B>) -> bool {
    window
        .values()
        .flatten()
        .all(|row| fused::supports::<B>(row.dtype()))
}

/// [`coherence`] on the fused path, on the host.
fn fused_coherence<B: Backend>(window: &Window<B>) -> Option<f64> {
    let count = nonempty(window).count() as f64;
    nonempty(window)
        .filter(|rows| rows.len() >= 3)
        .map(|rows| {
            let numel = rows[0].shape().num_elements() as f64;
            let [sum] = fused::reduce(&Similarity, rows);
            sum / numel
        })
        .reduce(|a, b| a + b)
        .map(|total| total / count)
}

/// [`similarity`] element by element: the sum over elements of
/// `std(u) / max |u - mean(u)|` (0 where the maximum is 0), `u` the steps of the element.
struct Similarity;

impl Reduction<1> for Similarity {
    fn sums<E: Real>(&self, rows: &[&[E]]) -> [f64; 1] {
        // Blocks of elements, each row's steps applied to the whole block at a time: every
        // loop below runs over contiguous memory and vectorizes.
        const BLOCK: usize = 256;
        let steps = rows.len() - 1;
        let (count, dof) = (E::of(steps as f64), E::of((steps - 1) as f64));
        let zero = E::of(0.0);
        let n = rows[0].len();
        let mut total = 0.0;
        let (mut mean, mut max, mut squares) = ([zero; BLOCK], [zero; BLOCK], [zero; BLOCK]);
        let mut start = 0;
        while start < n {
            let len = BLOCK.min(n - start);
            let step = |k: usize| {
                let (from, to) = (
                    &rows[k][start..start + len],
                    &rows[k + 1][start..start + len],
                );
                from.iter().zip(to).map(|(&a, &b)| b - a)
            };
            let (mean, max, squares) = (&mut mean[..len], &mut max[..len], &mut squares[..len]);
            for (m, u) in mean.iter_mut().zip(step(0)) {
                *m = u;
            }
            for k in 1..steps {
                for (m, u) in mean.iter_mut().zip(step(k)) {
                    *m = *m + u;
                }
            }
            for (m, (x, s)) in mean.iter_mut().zip(max.iter_mut().zip(squares.iter_mut())) {
                *m = *m / count;
                *x = zero;
                *s = zero;
            }
            for k in 0..steps {
                for ((u, m), (x, s)) in step(k)
                    .zip(mean.iter())
                    .zip(max.iter_mut().zip(squares.iter_mut()))
                {
                    let d = u - *m;
                    *x = x.max(d.abs());
                    *s = *s + d * d;
                }
            }
            for (x, s) in max.iter().zip(squares.iter()) {
                if *x != zero {
                    total += ((*s / dof).sqrt() / *x).wide();
                }
            }
            start += len;
        }
        [total]
    }
}

/// `mean(std(u) / max |u - mean(u)|)` over elements, `u` the successive differences of
/// `rows`; `None` (a similarity of 0) with fewer than two differences.
///
/// The differences are formed one at a time, twice (for the mean, then for the
/// deviations), so the sync needs a few parameter-sized temporaries on top of the window
/// rather than another copy of the whole window.
fn similarity<B: Backend>(rows: &[Tensor<B, 1>], execution: Execution) -> Option<Tensor<B, 1>> {
    let steps = rows.len().checked_sub(1).filter(|&n| n >= 2)?;
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if let Some(sum) = fused::cube::allowed::<B>(execution)
        .then(|| fused::cube::similarity_sum(rows))
        .flatten()
    {
        return Some(sum.div_scalar(rows[0].shape().num_elements() as f64));
    }
    let _ = execution;
    let update = |i: usize| rows[i + 1].clone().sub(rows[i].clone());
    let mean = (1..steps)
        .fold(update(0), |sum, i| sum.add(update(i)))
        .div_scalar(steps as f64);
    let deviation = |i: usize| update(i).sub(mean.clone());
    let first = deviation(0);
    let (max_deviation, sum_squares) =
        (1..steps).fold((first.clone().abs(), first.square()), |(max, sum), i| {
            let d = deviation(i);
            (max.max_pair(d.clone().abs()), sum.add(d.square()))
        });
    let std = sum_squares.div_scalar((steps - 1) as f64).sqrt();
    let flat = max_deviation.clone().equal_elem(0.0);
    let ratio = std
        .div(max_deviation.mask_fill(flat.clone(), 1.0))
        .mask_fill(flat, 0.0);
    // Not `mean()`: on Burn 0.21's WGPU backend it drops every element past the 65 536th
    // (the mean of 70 001 ones is 0.936); `sum()` counts them all.
    Some(
        ratio
            .sum()
            .div_scalar(rows[0].shape().num_elements() as f64),
    )
}

wrapper_optimizer!(Scout, ScoutRecord,
    to_record: |this| {
        window: this
            .window
            .iter()
            .map(|(id, rows)| (*id, rows.iter().map(|t| Tensor::from_inner(t.clone())).collect()))
            .collect(),
    },
    load_record: |loaded, record| Scout {
        window: record
            .window
            .into_iter()
            .map(|(id, rows)| (id, rows.into_iter().map(|t| t.inner()).collect()))
            .collect(),
        ..loaded
    },
);

#[cfg(all(test, any(feature = "wgpu", feature = "cuda")))]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::similarity;
    use crate::Execution;
    use crate::fused::cube::launches;

    #[cfg(feature = "cuda")]
    type Gpu = burn::backend::Cuda;
    #[cfg(not(feature = "cuda"))]
    type Gpu = burn::backend::Wgpu;

    /// The coherence kernel and the composed similarity against the same sums on the host in
    /// f64, over a window of 5 rows whose steps are flat in a third of the elements (the 0
    /// branch): 24 elements (a golden case's tensor) and 70 001. More than 65 536 elements:
    /// Burn's `mean` on WGPU drops the rest, and the composed similarity once did too. At
    /// 70 001 the summing pass runs 9 cubes whose units each fold a strided run of elements,
    /// the machinery every summed rule's kernels share (`fused::cube::sums`).
    #[test]
    fn the_similarity_kernel_and_the_composed_one_match_the_host() {
        for n in [24, 70_001] {
            similarity_matches_the_host(n);
        }
    }

    fn similarity_matches_the_host(n: usize) {
        let values: Vec<Vec<f32>> = (0..5u64)
            .map(|k| {
                (0..n as u64)
                    .map(|i| match i % 3 {
                        0 => k as f32 * 0.5,
                        _ => ((i * 7919 + k * k * 104_729) % 1000) as f32 / 1000.0,
                    })
                    .collect()
            })
            .collect();
        let ratio = |i: usize| {
            let u: Vec<f64> = (0..4)
                .map(|k| f64::from(values[k + 1][i]) - f64::from(values[k][i]))
                .collect();
            let mean = u.iter().sum::<f64>() / 4.0;
            let largest = u.iter().map(|x| (x - mean).abs()).fold(0.0, f64::max);
            let squares: f64 = u.iter().map(|x| (x - mean).powi(2)).sum();
            if largest > 0.0 {
                (squares / 3.0).sqrt() / largest
            } else {
                0.0
            }
        };
        let host = (0..n).map(ratio).sum::<f64>() / n as f64;
        let device = Default::default();
        let rows: Vec<Tensor<Gpu, 1>> = values
            .into_iter()
            .map(|v| Tensor::from_data(TensorData::new(v, [n]), &device))
            .collect();
        let before = launches();
        let fused: f32 = similarity(&rows, Execution::Fused).unwrap().into_scalar();
        assert_eq!(launches() - before, 1, "the kernel did not run");
        let composed: f32 = similarity(&rows, Execution::Composed)
            .unwrap()
            .into_scalar();
        assert_eq!(launches() - before, 1, "Execution::Composed ran a kernel");
        assert!(host > 0.1, "a degenerate window: {host}");
        for (path, value) in [("kernel", fused), ("composed", composed)] {
            let error = (f64::from(value) - host).abs() / host;
            assert!(
                error < 1e-5,
                "n = {n}, {path}: {value} vs {host} on the host"
            );
        }
    }
}
