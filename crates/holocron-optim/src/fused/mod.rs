//! Fused optimizer steps: one in-place pass over a parameter, its gradient and its state
//! (two where the rule needs a whole-tensor norm or dot product), instead of one pass and
//! one fresh buffer per tensor operation.
//!
//! Each optimizer writes its rule once, over raw buffers (a [`Kernel`]), from the
//! element-wise forms of the blocks in [`rules`]. The rule runs where the backend lets us
//! reach its buffers: Burn's ndarray backend, in `f32` and `f64`, multi-threaded with
//! rayon. On the CubeCL backends (WGPU, CUDA) every optimizer and wrapper sync launches
//! kernels of its own, in `f32` (`cube`). Every other case, and every
//! optimizer built with `fused = false`, runs the composed tensor operations. Both paths
//! compute the same thing: `tests/fused.rs` and `tests/cross_backend.rs` hold them to it,
//! and the golden test runs on both.

#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub(crate) mod cube;
mod lanes;
#[cfg(feature = "ndarray")]
mod ndarray;
mod real;
pub(crate) mod rules;
pub(crate) mod trust;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

use crate::blocks::AdamMomentsState;

pub(crate) use lanes::{Lanes, sum_each};
pub(crate) use real::Real;

/// An optimizer's rule over the raw buffers of one parameter tensor.
pub(crate) trait Kernel: Sync {
    /// Whether the state holds an AMSGrad maximum (the [`run`] flag is then `true`).
    fn amsgrad(&self) -> bool {
        false
    }

    /// Updates the parameter and state lanes in place from the gradient lane. `AMSGRAD` is
    /// [`Self::amsgrad`], as a constant so that each case compiles to its own loop.
    fn run<E: Real, const AMSGRAD: bool>(&self, lanes: Lanes<'_, E>);

    /// [`Self::run`] with the flag [`Self::amsgrad`] gives.
    fn run_any<E: Real>(&self, lanes: Lanes<'_, E>) {
        if self.amsgrad() {
            self.run::<E, true>(lanes)
        } else {
            self.run::<E, false>(lanes)
        }
    }
}

/// A sum over the elements of some same-sized tensors, read only (a wrapper's statistics
/// of its weights).
pub(crate) trait Reduction<const K: usize>: Sync {
    /// The `K` sums over one chunk of the rows (all of the same length).
    fn sums<E: Real>(&self, rows: &[&[E]]) -> [f64; K];
}

/// Whether the backend has a fused path for tensors of `dtype`.
#[cfg_attr(not(feature = "ndarray"), allow(clippy::extra_unused_type_parameters))]
pub(crate) fn supports<B: Backend>(dtype: DType) -> bool {
    #[cfg(feature = "ndarray")]
    if ndarray::is_ndarray::<B>() {
        return matches!(dtype, DType::F32 | DType::F64);
    }
    let _ = dtype;
    false
}

/// Whether [`run`] can take these tensors: a backend with a fused path, and a parameter
/// and gradient of the same `f32` or `f64` dtype.
pub(crate) fn supported<B: Backend, const D: usize>(
    param: &Tensor<B, D>,
    grad: &Tensor<B, D>,
) -> bool {
    supports::<B>(param.dtype()) && grad.dtype() == param.dtype()
}

/// The sums of `reduction` over `rows`, which [`supports`] must accept (all of one dtype
/// and size).
pub(crate) fn reduce<B: Backend, R: Reduction<K>, const K: usize>(
    reduction: &R,
    rows: &[Tensor<B, 1>],
) -> [f64; K] {
    #[cfg(feature = "ndarray")]
    if ndarray::is_ndarray::<B>() {
        return ndarray::reduce(reduction, rows);
    }
    let _ = (reduction, rows);
    unreachable!("fused::reduce called without a fused path (check `supports` first)")
}

/// Runs `kernel` on the tensors and returns the parameter and the state, in the order given.
/// Without a gradient (a wrapper's sync), the kernel sees an empty gradient lane. The
/// state may have another rank than the parameter (a wrapper keeps flat copies): lanes are
/// flat, and no tensor is reshaped (Burn's ndarray reshape copies).
///
/// # Panics
///
/// Unless [`supported`] said yes for `param` and `grad`, or if a state tensor does not have
/// the parameter's number of elements.
pub(crate) fn run<B: Backend, const D: usize, const S: usize, K: Kernel>(
    kernel: &K,
    param: Tensor<B, D>,
    grad: Option<Tensor<B, D>>,
    state: Vec<Tensor<B, S>>,
) -> (Tensor<B, D>, Vec<Tensor<B, S>>) {
    #[cfg(test)]
    RUNS.with(|runs| runs.set(runs.get() + 1));
    #[cfg(feature = "ndarray")]
    if ndarray::is_ndarray::<B>() {
        return ndarray::run(kernel, param, grad, state);
    }
    let _ = (kernel, param, grad, state);
    unreachable!("fused::run called without a fused path (check `supported` first)")
}

#[cfg(test)]
thread_local! {
    /// Fused steps run on this thread.
    static RUNS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// [`run`] for one optimizer step ([`Step`]) at step count `time` (this step included).
pub(crate) fn run_step<'a, B: Backend, const D: usize, O>(
    optim: &'a O,
    lr: f64,
    time: usize,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    lanes: Vec<Tensor<B, D>>,
) -> (Tensor<B, D>, Vec<Tensor<B, D>>)
where
    Step<'a, O>: Kernel,
{
    run(&Step { optim, lr, time }, param, Some(grad), lanes)
}

/// The fused step of an optimizer whose state is Adam's moments alone (LAMB, RaLars,
/// AdaBelief, AdamP): its kernel sees the lanes `[m, v]`, or `[m, v, v_max]` with AMSGrad.
pub(crate) fn moments_step<'a, B: Backend, const D: usize, O>(
    optim: &'a O,
    lr: f64,
    amsgrad: bool,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    state: Option<AdamMomentsState<B, D>>,
) -> (Tensor<B, D>, AdamMomentsState<B, D>)
where
    Step<'a, O>: Kernel,
{
    let (time, lanes) = AdamMomentsState::into_lanes(state, &grad, amsgrad);
    let time = time + 1;
    let (param, lanes) = run_step(optim, lr, time, param, grad, lanes);
    let moments = AdamMomentsState::from_lanes(time, &mut lanes.into_iter(), amsgrad);
    (param, moments)
}

/// One step of the optimizer `O` as a [`Kernel`]: the optimizer, the learning rate, and
/// the step count including this step (1 on the first).
pub(crate) struct Step<'a, O> {
    pub optim: &'a O,
    pub lr: f64,
    pub time: usize,
}

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use core::cell::Cell;

    use burn::backend::NdArray;
    use burn::optim::SimpleOptimizer;
    use burn::tensor::{DType, Tensor};

    use super::RUNS;
    use crate::*;

    /// Two steps of `optim` (without, then with state); returns the fused runs they made.
    fn fused_runs<O: SimpleOptimizer<NdArray<f64>>>(optim: O) -> usize {
        let full =
            |v: f64| Tensor::<NdArray<f64>, 1>::full([9], v, (&Default::default(), DType::F64));
        let before = RUNS.with(Cell::get);
        let (param, state) = optim.step(1e-2, full(1.0), full(0.5), None);
        let _ = optim.step(1e-2, param, full(-0.5), state);
        RUNS.with(Cell::get) - before
    }

    #[test]
    fn every_optimizer_takes_the_fused_path_on_ndarray() {
        let runs = [
            fused_runs(LarsConfig::new().with_momentum(0.9).build()),
            fused_runs(LambConfig::new().build()),
            fused_runs(RaLarsConfig::new().build()),
            fused_runs(TAdamConfig::new().build()),
            fused_runs(AdaBeliefConfig::new().build()),
            fused_runs(AdamPConfig::new().build()),
            fused_runs(AdanConfig::new().build()),
            fused_runs(AdEMAMixConfig::new().build()),
        ];
        assert_eq!(runs, [2; 8]);
    }

    #[test]
    fn fused_false_takes_the_composed_path() {
        let runs = [
            fused_runs(LarsConfig::new().with_fused(false).build()),
            fused_runs(LambConfig::new().with_fused(false).build()),
            fused_runs(RaLarsConfig::new().with_fused(false).build()),
            fused_runs(TAdamConfig::new().with_fused(false).build()),
            fused_runs(AdaBeliefConfig::new().with_fused(false).build()),
            fused_runs(AdamPConfig::new().with_fused(false).build()),
            fused_runs(AdanConfig::new().with_fused(false).build()),
            fused_runs(AdEMAMixConfig::new().with_fused(false).build()),
        ];
        assert_eq!(runs, [0; 8]);
    }
}
