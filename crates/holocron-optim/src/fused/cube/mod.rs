//! The fused path on Burn's CubeCL backends (WGPU, CUDA), with or without Burn's operation
//! fusion: kernels that update a parameter and its state in place.
//!
//! - [`detect`]: which runtime a backend runs on;
//! - [`bridge`] and [`fusion`]: Burn tensors to CubeCL buffers and back;
//! - [`launch`]: buffers as kernel arguments, with their lengths checked;
//! - the kernels are the core's (`holocron_optim_core::kernels!`, expanded in
//!   `crate::rule::kernels` with CubeCL 0.10), generic over the rules; their grid is
//!   [`holocron_optim_core::passes`].
//!
//! A rule without sums takes one launch per parameter tensor, the update pass; a summed
//! rule three: a summing pass, one cube that folds its partial sums, and the update pass,
//! which reads the totals on the device. A kernel runs on `f32` tensors; a strided tensor
//! is made contiguous first, and a buffer that another tensor shares is copied before it
//! is written (as on ndarray), so a resumed run repeats an uninterrupted one bit for bit.
//! The coefficients of a step travel as a small array built from the rule's typed
//! coefficient struct, so one compiled kernel serves every step.

mod bridge;
mod detect;
mod fusion;
mod launch;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use burn_cubecl::CubeRuntime;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::step::Launched;
use crate::rule::FusedRule;
use crate::rule::kernels::passes::*;
use bridge::{give, take, writable};
use detect::{Runtime, runtime};
use holocron_optim_core::cpu::RuleStep;
use holocron_optim_core::passes::{SUMS, UNITS};
use launch::{Buffer, Grid};

/// Whether `B` is a CubeCL backend this module can launch on, and the tensors are `f32`.
pub(crate) fn supported<B: Backend, const D: usize>(
    param: &Tensor<B, D>,
    grad: &Tensor<B, D>,
) -> bool {
    runtime::<B>().is_some() && param.dtype() == DType::F32 && grad.dtype() == DType::F32
}

/// Whether this project's tests have run the kernels on `B`'s runtime, so that
/// [`crate::Execution::Auto`] uses them there: WGPU through Mesa's software Vulkan in every
/// CI run, CUDA on an NVIDIA H200 (the golden, fused, cross-backend, checkpoint, wrapper and
/// suite tests, 2026-12-04; `docs/backends.md`).
pub(crate) fn validated<B: Backend>() -> bool {
    runtime::<B>().is_some()
}

/// Whether `execution` lets the kernels run on `B`.
pub(crate) fn allowed<B: Backend>(execution: crate::Execution) -> bool {
    match execution {
        crate::Execution::Composed => false,
        crate::Execution::Fused => true,
        crate::Execution::Auto => validated::<B>(),
    }
}

/// One step of a rule on the kernels; `lanes` are the state lanes.
pub(crate) fn step<R: FusedRule, B: Backend, const D: usize>(
    kernel: &RuleStep<R>,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    lanes: Vec<Tensor<B, D>>,
) -> Launched<B, D> {
    match runtime::<B>().expect("a CubeCL backend (checked by `supported`)") {
        #[cfg(feature = "wgpu")]
        Runtime::Wgpu => step_on::<R, B, cubecl::wgpu::WgpuRuntime, D>(kernel, param, grad, lanes),
        #[cfg(feature = "cuda")]
        Runtime::Cuda => step_on::<R, B, cubecl::cuda::CudaRuntime, D>(kernel, param, grad, lanes),
    }
}

/// The tensors of a step handed back: parameter, gradient and state lanes.
type Unprepared<B, const D: usize> = (Tensor<B, D>, Tensor<B, D>, Vec<Tensor<B, D>>);

/// The buffers of one step, ready for the kernels: the parameter and the state lanes of
/// its size (writable), the gradient (contiguous), and the carried scalar's lane if any.
struct Prepared<R: CubeRuntime> {
    cells: Vec<CubeTensor<R>>,
    grad: CubeTensor<R>,
    carried: Option<CubeTensor<R>>,
    n: usize,
}

impl<R: CubeRuntime> Prepared<R> {
    /// Takes the tensors when every lane is `f32` with the parameter's element count (the
    /// carried lane one element), the rule expects `count` lanes and the tensor is not
    /// empty (no grid); else gives them back, for the composed operations.
    fn new<B: Backend, const D: usize>(
        param: Tensor<B, D>,
        grad: Tensor<B, D>,
        mut lanes: Vec<Tensor<B, D>>,
        count: usize,
        carries: bool,
    ) -> Result<Self, Unprepared<B, D>> {
        let n = param.shape().num_elements();
        let carried = if carries { lanes.pop() } else { None };
        let fits = |t: &Tensor<B, D>, len: usize| {
            t.dtype() == DType::F32 && t.shape().num_elements() == len
        };
        let fit = n > 0
            && lanes.len() + 1 == count
            && fits(&grad, n)
            && lanes.iter().all(|t| fits(t, n))
            && carried.as_ref().is_none_or(|t| fits(t, 1))
            && carries == carried.is_some();
        if !fit {
            lanes.extend(carried);
            return Err((param, grad, lanes));
        }
        let mut cells = vec![writable(take::<B, R, D>(param))];
        cells.extend(lanes.into_iter().map(|t| writable(take::<B, R, D>(t))));
        Ok(Self {
            cells,
            grad: into_contiguous(take::<B, R, D>(grad)),
            carried: carried.map(|t| into_contiguous(take::<B, R, D>(t))),
            n,
        })
    }

    fn client(&self) -> &ComputeClient<R> {
        &self.cells[0].client
    }

    /// The cells as the kernels' sequence of lanes.
    fn lanes(&self) -> SequenceArg<R, Array<f32>> {
        let mut lanes = SequenceArg::<R, Array<f32>>::new();
        for cell in &self.cells {
            lanes.push(Buffer::of(cell, self.n).arg());
        }
        lanes
    }

    fn grad(&self) -> ArrayArg<R> {
        Buffer::of(&self.grad, self.n).arg()
    }

    /// The parameter and the state lanes back as Burn tensors.
    fn give<B: Backend, const D: usize>(self) -> (Tensor<B, D>, Vec<Tensor<B, D>>) {
        let mut cells = self.cells.into_iter().map(give::<B, R, D>);
        let param = cells.next().expect("the parameter");
        let mut lanes: Vec<_> = cells.collect();
        lanes.extend(self.carried.map(give::<B, R, D>));
        (param, lanes)
    }
}

/// The coefficients of a step as the kernels' array, checked against the length the
/// rule's kernels read.
fn coefficients<R: CubeRuntime>(
    client: &ComputeClient<R>,
    values: Vec<f64>,
    expected: usize,
) -> Buffer {
    assert_eq!(
        values.len(),
        expected,
        "the rule's kernels read {expected} coefficients"
    );
    Buffer::from_values(client, &values)
}

fn step_on<Rule: FusedRule, B: Backend, R: CubeRuntime, const D: usize>(
    kernel: &RuleStep<Rule>,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    lanes: Vec<Tensor<B, D>>,
) -> Launched<B, D> {
    let count = Rule::lanes(kernel.flag);
    let mut step = Prepared::<R>::new(param, grad, lanes, count, Rule::CARRIES)?;
    let client = step.client().clone();
    let c = coefficients(
        &client,
        Rule::to_vec(kernel.coefficients),
        Rule::COEFFICIENTS,
    );
    let grid = Grid::new(&client, step.n);
    let totals = if Rule::SUMMED {
        grid.summed(|cube_count, cube_dim, partials| {
            sums_kernel::launch::<f32, Rule, R>(
                &client,
                cube_count,
                cube_dim,
                step.lanes(),
                step.grad(),
                c.arg(),
                partials,
                count,
                kernel.flag,
                UNITS,
            );
        })
    } else {
        // The update kernel of a rule without sums never reads them.
        Buffer::empty(&client, SUMS)
    };
    // Every unit reads the old carried value, so the next one goes to a buffer of its own.
    let carried = match &step.carried {
        Some(t) => Buffer::of(t, 1),
        None => Buffer::empty(&client, 1),
    };
    let next_carried = Buffer::empty(&client, 1);
    let (cube_count, cube_dim) = grid.each();
    update_kernel::launch::<f32, Rule, R>(
        &client,
        cube_count,
        cube_dim,
        step.lanes(),
        step.grad(),
        c.arg(),
        totals.arg(),
        carried.arg(),
        next_carried.arg(),
        count,
        kernel.flag,
    );
    if let Some(old) = step.carried.take() {
        step.carried = Some(CubeTensor::new_contiguous(
            client.clone(),
            old.device.clone(),
            old.meta.shape().clone(),
            next_carried.handle().clone(),
            DType::F32,
        ));
    }
    Ok(step.give())
}

/// A contiguous `f32` tensor's values in a buffer of their own (see [`bridge::writable`]).
fn copied<R: CubeRuntime>(t: &CubeTensor<R>) -> CubeTensor<R> {
    let n = t.meta.num_elements();
    let from = Buffer::of(t, n);
    let to = Buffer::empty(&t.client, n);
    let (cube_count, cube_dim) = Grid::new(&t.client, n).each();
    copy_kernel::launch::<f32, R>(&t.client, cube_count, cube_dim, from.arg(), to.arg());
    CubeTensor::new_contiguous(
        t.client.clone(),
        t.device.clone(),
        t.meta.shape().clone(),
        to.handle().clone(),
        DType::F32,
    )
}

/// A parameter's fast weights and its flat slow weights.
pub(crate) type Pulled<B, const D: usize> = (Tensor<B, D>, Tensor<B, 1>);

/// A wrapper's sync on the device, `slow <- slow + rate (fast - slow)` then
/// `fast <- slow`, with `rate` known on the host (`Ok`) or a one-element tensor on the
/// device (`Err`). Gives the weights back unchanged when a kernel cannot take them.
pub(crate) fn pull<B: Backend, const D: usize>(
    fast: Tensor<B, D>,
    slow: Tensor<B, 1>,
    rate: Result<f64, &Tensor<B, 1>>,
) -> Result<Pulled<B, D>, Pulled<B, D>> {
    let rate_fits = match rate {
        Ok(_) => true,
        Err(rate) => rate.dtype() == DType::F32,
    };
    let n = fast.shape().num_elements();
    let fits = fast.dtype() == DType::F32
        && slow.dtype() == DType::F32
        && rate_fits
        && n > 0
        && slow.shape().num_elements() == n;
    match runtime::<B>() {
        _ if !fits => Err((fast, slow)),
        None => Err((fast, slow)),
        #[cfg(feature = "wgpu")]
        Some(Runtime::Wgpu) => Ok(pull_on::<B, cubecl::wgpu::WgpuRuntime, D>(fast, slow, rate)),
        #[cfg(feature = "cuda")]
        Some(Runtime::Cuda) => Ok(pull_on::<B, cubecl::cuda::CudaRuntime, D>(fast, slow, rate)),
    }
}

fn pull_on<B: Backend, R: CubeRuntime, const D: usize>(
    fast: Tensor<B, D>,
    slow: Tensor<B, 1>,
    rate: Result<f64, &Tensor<B, 1>>,
) -> Pulled<B, D> {
    let fast = writable(take::<B, R, D>(fast));
    let slow = writable(take::<B, R, 1>(slow));
    let n = fast.meta.num_elements();
    let grid = Grid::new(&fast.client, n);
    let rate = match rate {
        Ok(rate) => Buffer::from_values(&grid.client, &[rate]),
        Err(rate) => Buffer::of(&into_contiguous(take::<B, R, 1>(rate.clone())), 1),
    };
    let (cube_count, cube_dim) = grid.each();
    pull_kernel::launch::<f32, R>(
        &grid.client,
        cube_count,
        cube_dim,
        Buffer::of(&fast, n).arg(),
        Buffer::of(&slow, n).arg(),
        rate.arg(),
    );
    count_launch();
    (give(fast), give(slow))
}

/// The sum over elements of Scout's similarity of a tensor's window `rows` (see
/// `wrapper::scout`), as a one-element tensor; `None` when a kernel cannot take the rows
/// (fewer than three, not `f32`, or not all of one size).
pub(crate) fn similarity_sum<B: Backend>(rows: &[Tensor<B, 1>]) -> Option<Tensor<B, 1>> {
    let n = rows.first()?.shape().num_elements();
    let fits = |row: &Tensor<B, 1>| row.dtype() == DType::F32 && row.shape().num_elements() == n;
    if rows.len() < 3 || n == 0 || !rows.iter().all(fits) {
        return None;
    }
    match runtime::<B>()? {
        #[cfg(feature = "wgpu")]
        Runtime::Wgpu => Some(similarity_on::<B, cubecl::wgpu::WgpuRuntime>(rows)),
        #[cfg(feature = "cuda")]
        Runtime::Cuda => Some(similarity_on::<B, cubecl::cuda::CudaRuntime>(rows)),
    }
}

fn similarity_on<B: Backend, R: CubeRuntime>(rows: &[Tensor<B, 1>]) -> Tensor<B, 1> {
    let rows: Vec<CubeTensor<R>> = rows
        .iter()
        .map(|row| into_contiguous(take::<B, R, 1>(row.clone())))
        .collect();
    let n = rows[0].meta.num_elements();
    let grid = Grid::new(&rows[0].client, n);
    let totals = grid.summed(|count, dim, partials| {
        let mut sequence = SequenceArg::<R, Array<f32>>::new();
        for row in &rows {
            sequence.push(Buffer::of(row, n).arg());
        }
        similarity_sums_kernel::launch::<f32, R>(
            &grid.client,
            count,
            dim,
            sequence,
            n,
            partials,
            UNITS,
        );
    });
    let totals = CubeTensor::new_contiguous(
        grid.client.clone(),
        rows[0].device.clone(),
        burn::tensor::Shape::new([SUMS]),
        totals.handle().clone(),
        DType::F32,
    );
    count_launch();
    give::<B, R, 1>(totals).slice(0..1)
}

/// Counts a wrapper sync that ran on kernels (tests only).
fn count_launch() {
    #[cfg(test)]
    LAUNCHES.with(|l| l.set(l.get() + 1));
}

#[cfg(test)]
thread_local! {
    /// Wrapper syncs run on kernels on this thread.
    static LAUNCHES: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Wrapper syncs run on kernels on this thread so far.
#[cfg(test)]
pub(crate) fn launches() -> usize {
    LAUNCHES.with(core::cell::Cell::get)
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use burn::backend::Wgpu;
    use burn::optim::SimpleOptimizer;
    use burn::tensor::{DType, Tensor};

    use crate::fused::{every_step_on, paths_of_every_optimizer};
    use crate::*;

    fn paths(execution: Execution) -> Vec<StepPaths> {
        paths_of_every_optimizer::<Wgpu>(execution, 300)
    }

    #[test]
    fn every_optimizer_steps_on_kernels_on_wgpu() {
        assert_eq!(paths(Execution::Auto), every_step_on(StepPath::Kernels));
        assert_eq!(paths(Execution::Fused), every_step_on(StepPath::Kernels));
    }

    #[test]
    fn composed_launches_no_kernel() {
        assert_eq!(
            paths(Execution::Composed),
            every_step_on(StepPath::Composed)
        );
    }

    #[test]
    fn a_shared_parameter_is_copied_before_the_kernel_writes() {
        let optim = AdaBeliefConfig::new().build();
        let param = Tensor::<Wgpu, 1>::full([300], 0.5, (&Default::default(), DType::F32));
        let kept = param.clone();
        let grad = Tensor::<Wgpu, 1>::full([300], 0.1, (&Default::default(), DType::F32));
        let before = step_paths();
        let (param, _) = SimpleOptimizer::<Wgpu>::step(&optim, 1e-2, param, grad, None);
        assert_eq!(
            step_paths().since(before).kernels,
            1,
            "the kernel did not run"
        );
        let kept: Vec<f32> = kept.into_data().to_vec().unwrap();
        assert!(kept.iter().all(|&x| x == 0.5), "the kept clone changed");
        let moved: Vec<f32> = param.into_data().to_vec().unwrap();
        assert!(moved.iter().all(|&x| x < 0.5), "the parameter did not move");
    }
}
