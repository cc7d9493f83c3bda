//! The fused path on Burn's CubeCL backends (WGPU, CUDA), with or without Burn's operation
//! fusion: kernels that update a parameter and its state in place.
//!
//! The element-wise rules (AdaBelief, AdEMAMix, Adan) and a wrapper's sync take one launch
//! per parameter tensor. The rules that scale a step by whole-tensor sums (LARS, LAMB,
//! RaLars, TAdam, AdamP) take three: a summing pass, one cube that folds its partial sums,
//! and the update pass, which reads the totals on the device (`sums`, `two_pass`).
//!
//! A kernel runs on `f32` tensors; a strided tensor is made contiguous first, and a buffer
//! that another tensor shares is copied before it is written (as on ndarray), so the kernel
//! runs whoever holds what and a resumed run repeats an uninterrupted one bit for bit.
//!
//! The coefficients of a step (betas, corrections, learning rate) travel as a small array
//! created for each launch, so one compiled kernel serves every step.

mod blocks;
mod elementwise;
mod fusion;
mod sums;
mod two_pass;

use core::any::{Any, TypeId};

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use burn_cubecl::CubeRuntime;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::blocks::{AdamMoments, AdamMomentsState};

use elementwise::*;
use sums::{SUMS, UNITS, finish_sums_kernel};
use two_pass::*;

/// The kernels, by optimizer; each reads its coefficients from `c` (see the callers).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rule {
    /// Lanes `[m, s]` or `[m, s, s_max]`.
    AdaBelief { amsgrad: bool },
    /// Lanes `[m2, m1, nu]`.
    AdEMAMix,
    /// Lanes `[m, v, g_prev, n]` or `[m, v, g_prev, n, n_max]`.
    Adan { amsgrad: bool },
    /// Lanes `[]`, or `[buffer]` with momentum.
    Lars,
    /// LAMB and RaLars. Lanes `[m, v]` or `[m, v, v_max]`.
    Trust { amsgrad: bool },
    /// Lanes `[m, v, w]` or `[m, v, v_max, w]`, the weight sum `w` of one element.
    TAdam { amsgrad: bool },
    /// Lanes `[m, v]` or `[m, v, v_max]`.
    AdamP { amsgrad: bool },
}

impl Rule {
    /// The trailing lanes of one element (the rest have the parameter's size).
    fn scalar_lanes(self) -> usize {
        match self {
            Rule::TAdam { .. } => 1,
            _ => 0,
        }
    }
}

/// Whether `B` is a CubeCL backend this module can launch on, and the tensors are `f32`.
pub(crate) fn supported<B: Backend, const D: usize>(
    param: &Tensor<B, D>,
    grad: &Tensor<B, D>,
) -> bool {
    runtime::<B>().is_some() && param.dtype() == DType::F32 && grad.dtype() == DType::F32
}

#[derive(Clone, Copy)]
enum Runtime {
    #[cfg(feature = "wgpu")]
    Wgpu,
    #[cfg(feature = "cuda")]
    Cuda,
}

fn runtime<B: Backend>() -> Option<Runtime> {
    let primitive = TypeId::of::<B::FloatTensorPrimitive>();
    #[cfg(feature = "wgpu")]
    if is_primitive_of::<cubecl::wgpu::WgpuRuntime>(primitive) {
        return Some(Runtime::Wgpu);
    }
    #[cfg(feature = "cuda")]
    if is_primitive_of::<cubecl::cuda::CudaRuntime>(primitive) {
        return Some(Runtime::Cuda);
    }
    let _ = primitive;
    None
}

/// Whether `primitive` is the float primitive of a backend over the runtime `R`: a
/// `CubeBackend`, or a `Fusion<CubeBackend>`.
#[cfg_attr(not(all(feature = "wgpu", feature = "cuda")), allow(dead_code))]
fn is_primitive_of<R: CubeRuntime>(primitive: TypeId) -> bool {
    if fusion::is_fused::<R>(primitive) {
        return true;
    }
    primitive == TypeId::of::<CubeTensor<R>>()
}

/// The parameter and state after a step.
pub(crate) type Stepped<B, const D: usize> = (Tensor<B, D>, Vec<Tensor<B, D>>);

/// The tensors of one step, handed back unchanged when the state does not fit the kernel
/// (another dtype).
pub(crate) type Refused<B, const D: usize> = (Tensor<B, D>, Tensor<B, D>, Vec<Tensor<B, D>>);

/// A step on the CubeCL path: the parameter and the new state, or, when the kernel cannot
/// run, the tensors back with the state as it was (none before the first step).
pub(crate) type CubeStep<B, const D: usize, S> =
    Result<(Tensor<B, D>, Option<S>), (Tensor<B, D>, Tensor<B, D>, Option<S>)>;

/// The CubeCL branch of an optimizer's `step`: `cube_step` when the optimizer is `fused`
/// and the tensors suit a kernel ([`supported`]), else the tensors back.
pub(crate) fn attempt<B: Backend, const D: usize, S>(
    fused: bool,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    state: Option<S>,
    cube_step: impl FnOnce(Tensor<B, D>, Tensor<B, D>, Option<S>) -> CubeStep<B, D, S>,
) -> CubeStep<B, D, S> {
    if fused && supported(&param, &grad) {
        cube_step(param, grad, state)
    } else {
        Err((param, grad, state))
    }
}

/// Runs `rule` in place with coefficients `c` on the lanes packed from a state after
/// `time` steps; `unpack` rebuilds a state from lanes and a step count.
///
/// # Panics
///
/// Unless [`supported`] said yes.
pub(crate) fn step<B: Backend, const D: usize, S>(
    rule: Rule,
    c: &[f64],
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    time: usize,
    lanes: Vec<Tensor<B, D>>,
    unpack: impl Fn(usize, Vec<Tensor<B, D>>) -> S,
) -> CubeStep<B, D, S> {
    let stepped = match runtime::<B>().expect("a CubeCL backend (checked by `supported`)") {
        #[cfg(feature = "wgpu")]
        Runtime::Wgpu => run_on::<B, cubecl::wgpu::WgpuRuntime, D>(rule, c, param, grad, lanes),
        #[cfg(feature = "cuda")]
        Runtime::Cuda => run_on::<B, cubecl::cuda::CudaRuntime, D>(rule, c, param, grad, lanes),
    };
    match stepped {
        Ok((param, lanes)) => Ok((param, Some(unpack(time + 1, lanes)))),
        Err((param, grad, lanes)) => Err((param, grad, (time > 0).then(|| unpack(time, lanes)))),
    }
}

/// [`step`] for an optimizer whose state is Adam's moments alone (LAMB, RaLars, AdaBelief,
/// AdamP): lanes `[m, v]`, or `[m, v, v_max]` with AMSGrad; `coefficients` gets the step
/// count including this step.
pub(crate) fn moments_step<B: Backend, const D: usize>(
    rule: Rule,
    amsgrad: bool,
    coefficients: impl FnOnce(usize) -> Vec<f64>,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    state: Option<AdamMomentsState<B, D>>,
) -> CubeStep<B, D, AdamMomentsState<B, D>> {
    let (time, lanes) = AdamMomentsState::into_lanes(state, &grad, amsgrad);
    let c = coefficients(time + 1);
    step(rule, &c, param, grad, time, lanes, |time, lanes| {
        AdamMomentsState::from_lanes(time, &mut lanes.into_iter(), amsgrad)
    })
}

/// Adam's moments at step `time` as kernel coefficients: `[beta_1, 1 - beta_1, beta_2,
/// 1 - beta_2, 1 / correction_1, 1 / sqrt(correction_2), epsilon]`.
pub(crate) fn adam_coefficients(moments: &AdamMoments, time: usize, epsilon: f64) -> Vec<f64> {
    let (correction_1, correction_2) = moments.corrections(time);
    let (beta_1, beta_2) = (moments.beta_1, moments.second.beta);
    vec![
        beta_1,
        1.0 - beta_1,
        beta_2,
        1.0 - beta_2,
        1.0 / correction_1,
        1.0 / correction_2.sqrt(),
        epsilon,
    ]
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
    let fits = fast.dtype() == DType::F32 && slow.dtype() == DType::F32 && rate_fits;
    match runtime::<B>() {
        _ if !fits => Err((fast, slow)),
        None => Err((fast, slow)),
        #[cfg(feature = "wgpu")]
        Some(Runtime::Wgpu) => pull_on::<B, cubecl::wgpu::WgpuRuntime, D>(fast, slow, rate),
        #[cfg(feature = "cuda")]
        Some(Runtime::Cuda) => pull_on::<B, cubecl::cuda::CudaRuntime, D>(fast, slow, rate),
    }
}

fn pull_on<B: Backend, R: CubeRuntime, const D: usize>(
    fast: Tensor<B, D>,
    slow: Tensor<B, 1>,
    rate: Result<f64, &Tensor<B, 1>>,
) -> Result<Pulled<B, D>, Pulled<B, D>> {
    let n = fast.shape().num_elements();
    if n == 0 || slow.shape().num_elements() != n {
        return Err((fast, slow));
    }
    let fast = writable(take::<B, R, D>(fast));
    let slow = writable(take::<B, R, 1>(slow));
    let launcher = Launcher::new(&fast);
    let rate = match rate {
        Ok(rate) => launcher.coefficients(&[rate]).arg(),
        Err(rate) => {
            let rate = into_contiguous(take::<B, R, 1>(rate.clone()));
            Buffer::new(rate.handle, 1).arg()
        }
    };
    let (cube_count, cube_dim) = launcher.each();
    pull_kernel::launch::<f32, R>(
        &launcher.client,
        cube_count,
        cube_dim,
        launcher.lane(&fast),
        launcher.lane(&slow),
        rate,
    );
    count_launch();
    Ok((give(fast), give(slow)))
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
    let l = Launcher::new(&rows[0]);
    let totals = l.summed(|count, dim, partials| {
        let mut sequence = SequenceArg::<R, Array<f32>>::new();
        for row in &rows {
            sequence.push(l.lane(row));
        }
        similarity_sums_kernel::launch::<f32, R>(&l.client, count, dim, sequence, partials, UNITS);
    });
    let totals = CubeTensor::new_contiguous(
        l.client.clone(),
        rows[0].device.clone(),
        burn::tensor::Shape::new([SUMS]),
        totals.handle,
        DType::F32,
    );
    count_launch();
    give::<B, R, 1>(totals).slice(0..1)
}

/// The tensor made contiguous, and copied if another tensor shares its buffer: as on
/// ndarray, so that a kernel runs in every case and a run does not depend on who holds
/// what.
fn writable<R: CubeRuntime>(t: CubeTensor<R>) -> CubeTensor<R> {
    let t = into_contiguous(t);
    if t.can_mut() { t } else { t.copy() }
}

/// A device buffer of `len` `f32`s, handed to kernels as an array.
struct Buffer {
    handle: Handle,
    len: usize,
}

impl Buffer {
    fn new(handle: Handle, len: usize) -> Self {
        Self { handle, len }
    }

    fn arg<R: CubeRuntime>(&self) -> ArrayArg<R> {
        // Sound: every buffer here holds at least `len` f32s.
        unsafe { ArrayArg::from_raw_parts(self.handle.clone(), self.len) }
    }
}

/// The arguments and grids of the launches over one parameter tensor of `n` elements.
struct Launcher<R: CubeRuntime> {
    client: ComputeClient<R>,
    n: usize,
}

impl<R: CubeRuntime> Launcher<R> {
    fn new(param: &CubeTensor<R>) -> Self {
        Self {
            client: param.client.clone(),
            n: param.meta.num_elements(),
        }
    }

    /// A lane of the parameter's size.
    fn lane(&self, t: &CubeTensor<R>) -> ArrayArg<R> {
        Buffer::new(t.handle.clone(), self.n).arg()
    }

    /// The AMSGrad maximum (or momentum buffer), or a one-element placeholder that the
    /// kernel never reads.
    fn optional(&self, lane: Option<&CubeTensor<R>>) -> ArrayArg<R> {
        match lane {
            Some(lane) => self.lane(lane),
            None => self.coefficients(&[0.0]).arg(),
        }
    }

    /// A step's coefficients, rounded to `f32`.
    fn coefficients(&self, c: &[f64]) -> Buffer {
        let c: Vec<f32> = c.iter().map(|&x| x as f32).collect();
        Buffer::new(self.client.create_from_slice(f32::as_bytes(&c)), c.len())
    }

    /// The grid of an element-wise pass: one unit per element.
    fn each(&self) -> (CubeCount, CubeDim) {
        let cube_dim = CubeDim::new(&self.client, self.n);
        let cube_count = cubecl::calculate_cube_count_elemwise(&self.client, self.n, cube_dim);
        (cube_count, cube_dim)
    }

    /// Runs a summing pass (`pass` gets its grid and the partial sums to write), then folds
    /// the partial sums into the [`SUMS`] totals that the update pass reads.
    fn summed(&self, pass: impl FnOnce(CubeCount, CubeDim, ArrayArg<R>)) -> Buffer {
        let cubes = sums::cubes(self.n);
        let partials = Buffer::new(
            self.client.empty(cubes * SUMS * size_of::<f32>()),
            cubes * SUMS,
        );
        let cube_dim = CubeDim::new_1d(UNITS as u32);
        pass(
            CubeCount::Static(cubes as u32, 1, 1),
            cube_dim,
            partials.arg(),
        );
        let totals = Buffer::new(self.client.empty(SUMS * size_of::<f32>()), SUMS);
        finish_sums_kernel::launch::<f32, R>(
            &self.client,
            CubeCount::Static(1, 1, 1),
            cube_dim,
            partials.arg(),
            totals.arg(),
            UNITS,
        );
        totals
    }
}

fn run_on<B: Backend, R: CubeRuntime, const D: usize>(
    rule: Rule,
    c: &[f64],
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    state: Vec<Tensor<B, D>>,
) -> Result<Stepped<B, D>, Refused<B, D>> {
    let param = take::<B, R, D>(param);
    let grad = take::<B, R, D>(grad);
    let state: Vec<CubeTensor<R>> = state.into_iter().map(take::<B, R, D>).collect();
    let n = param.meta.num_elements();
    // A state loaded in another precision (or of another size, which a checked load
    // refuses) goes to the composed operations, and so does an empty tensor (no grid).
    let full_lanes = state.len().saturating_sub(rule.scalar_lanes());
    let fits =
        |t: &CubeTensor<R>, len: usize| t.dtype == DType::F32 && t.meta.num_elements() == len;
    let state_fits = state
        .iter()
        .enumerate()
        .all(|(k, t)| fits(t, if k < full_lanes { n } else { 1 }));
    if n == 0 || !(state_fits && fits(&grad, n)) {
        return Err((
            give(param),
            give(grad),
            state.into_iter().map(give).collect(),
        ));
    }
    let param = writable(param);
    let grad = into_contiguous(grad);
    let mut state: Vec<CubeTensor<R>> = state.into_iter().map(writable).collect();
    let launcher = Launcher::new(&param);
    let l = &launcher;
    let client = &l.client;
    let (cube_count, cube_dim) = l.each();
    let c = l.coefficients(c);
    let mut next_weight_sum = None;
    match (rule, state.as_slice()) {
        (Rule::AdaBelief { amsgrad }, [m, v, rest @ ..]) => {
            adabelief_kernel::launch::<f32, R>(
                client,
                cube_count,
                cube_dim,
                l.lane(&param),
                l.lane(&grad),
                l.lane(m),
                l.lane(v),
                l.optional(rest.first()),
                c.arg(),
                amsgrad,
            );
        }
        (Rule::AdEMAMix, [slow, m, v]) => {
            ademamix_kernel::launch::<f32, R>(
                client,
                cube_count,
                cube_dim,
                l.lane(&param),
                l.lane(&grad),
                l.lane(slow),
                l.lane(m),
                l.lane(v),
                c.arg(),
            );
        }
        (Rule::Adan { amsgrad }, [m, v, previous, second, rest @ ..]) => {
            adan_kernel::launch::<f32, R>(
                client,
                cube_count,
                cube_dim,
                l.lane(&param),
                l.lane(&grad),
                l.lane(m),
                l.lane(v),
                l.lane(previous),
                l.lane(second),
                l.optional(rest.first()),
                c.arg(),
                amsgrad,
            );
        }
        (Rule::Lars, buffer) => {
            let totals = l.summed(|count, dim, partials| {
                norms_kernel::launch::<f32, R>(
                    client,
                    count,
                    dim,
                    l.lane(&param),
                    l.lane(&grad),
                    partials,
                    UNITS,
                );
            });
            lars_kernel::launch::<f32, R>(
                client,
                cube_count,
                cube_dim,
                l.lane(&param),
                l.lane(&grad),
                l.optional(buffer.first()),
                totals.arg(),
                c.arg(),
                !buffer.is_empty(),
            );
        }
        (Rule::Trust { amsgrad }, [m, v, rest @ ..]) => {
            let totals = l.summed(|count, dim, partials| {
                trust_sums_kernel::launch::<f32, R>(
                    client,
                    count,
                    dim,
                    l.lane(&param),
                    l.lane(&grad),
                    l.lane(m),
                    l.lane(v),
                    l.optional(rest.first()),
                    partials,
                    c.arg(),
                    amsgrad,
                    UNITS,
                );
            });
            trust_kernel::launch::<f32, R>(
                client,
                cube_count,
                cube_dim,
                l.lane(&param),
                l.lane(m),
                l.lane(rest.first().unwrap_or(v)),
                totals.arg(),
                c.arg(),
            );
        }
        (Rule::TAdam { amsgrad }, [m, v, rest @ .., weight_sum]) => {
            let totals = l.summed(|count, dim, partials| {
                distance_kernel::launch::<f32, R>(
                    client,
                    count,
                    dim,
                    l.lane(&param),
                    l.lane(&grad),
                    l.lane(m),
                    l.lane(v),
                    partials,
                    c.arg(),
                    UNITS,
                );
            });
            // Every unit reads the old weight sum, so the new one goes to a buffer of its own.
            let next = CubeTensor::new_contiguous(
                client.clone(),
                weight_sum.device.clone(),
                weight_sum.meta.shape().clone(),
                client.empty(size_of::<f32>()),
                DType::F32,
            );
            tadam_kernel::launch::<f32, R>(
                client,
                cube_count,
                cube_dim,
                l.lane(&param),
                l.lane(&grad),
                l.lane(m),
                l.lane(v),
                l.optional(rest.first()),
                Buffer::new(weight_sum.handle.clone(), 1).arg(),
                Buffer::new(next.handle.clone(), 1).arg(),
                totals.arg(),
                c.arg(),
                amsgrad,
            );
            next_weight_sum = Some(next);
        }
        (Rule::AdamP { amsgrad }, [m, v, rest @ ..]) => {
            let totals = l.summed(|count, dim, partials| {
                adamp_sums_kernel::launch::<f32, R>(
                    client,
                    count,
                    dim,
                    l.lane(&param),
                    l.lane(&grad),
                    l.lane(m),
                    l.lane(v),
                    l.optional(rest.first()),
                    partials,
                    c.arg(),
                    amsgrad,
                    UNITS,
                );
            });
            adamp_kernel::launch::<f32, R>(
                client,
                cube_count,
                cube_dim,
                l.lane(&param),
                l.lane(m),
                l.lane(rest.first().unwrap_or(v)),
                totals.arg(),
                c.arg(),
            );
        }
        (rule, lanes) => unreachable!("{rule:?} with {} lanes", lanes.len()),
    }
    if let Some(next) = next_weight_sum {
        *state.last_mut().expect("the weight-sum lane") = next;
    }
    count_launch();
    Ok((give(param), state.into_iter().map(give).collect()))
}

/// Counts a step that ran on kernels (tests only).
fn count_launch() {
    #[cfg(test)]
    LAUNCHES.with(|l| l.set(l.get() + 1));
}

#[cfg(test)]
thread_local! {
    /// Steps and syncs run on kernels on this thread.
    static LAUNCHES: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Steps and syncs run on kernels on this thread so far.
#[cfg(test)]
pub(crate) fn launches() -> usize {
    LAUNCHES.with(core::cell::Cell::get)
}

/// The tensor's CubeCL primitive (out of the fusion stream, on a fusion backend).
fn take<B: Backend, R: CubeRuntime, const D: usize>(t: Tensor<B, D>) -> CubeTensor<R> {
    let mut slot = Some(t.into_primitive().tensor());
    let slot = &mut slot as &mut dyn Any;
    if let Some(fused) = slot.downcast_mut::<Option<fusion::Fused<R>>>() {
        return fusion::resolve(fused.take().expect("a primitive"));
    }
    slot.downcast_mut::<Option<CubeTensor<R>>>()
        .and_then(Option::take)
        .expect("a CubeCL primitive (checked by `supported`)")
}

/// Back from [`take`].
fn give<B: Backend, R: CubeRuntime, const D: usize>(t: CubeTensor<R>) -> Tensor<B, D> {
    if fusion::is_fused::<R>(TypeId::of::<B::FloatTensorPrimitive>()) {
        return from_primitive(fusion::register(t));
    }
    from_primitive(t)
}

fn from_primitive<B: Backend, const D: usize, P: 'static>(primitive: P) -> Tensor<B, D> {
    let mut slot = Some(primitive);
    let primitive = (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<B::FloatTensorPrimitive>>()
        .and_then(Option::take)
        .expect("a CubeCL backend (checked by `supported`)");
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

/// The totals `[‖p‖², ‖g‖², 0, 0]` of LARS's summing pass, read back (tests only).
#[cfg(all(test, feature = "wgpu"))]
fn sums_of_norms(p: Tensor<burn::backend::Wgpu, 1>, g: Tensor<burn::backend::Wgpu, 1>) -> Vec<f32> {
    type R = cubecl::wgpu::WgpuRuntime;
    type W = burn::backend::Wgpu;
    let (p, g) = (take::<W, R, 1>(p), take::<W, R, 1>(g));
    let l = Launcher::new(&p);
    let totals = l.summed(|count, dim, partials| {
        norms_kernel::launch::<f32, R>(
            &l.client,
            count,
            dim,
            l.lane(&p),
            l.lane(&g),
            partials,
            UNITS,
        );
    });
    let bytes = l.client.read_one(totals.handle).expect("the totals");
    f32::from_bytes(&bytes).to_vec()
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use core::cell::Cell;

    use burn::backend::Wgpu;
    use burn::optim::SimpleOptimizer;
    use burn::tensor::{DType, Tensor};

    use super::LAUNCHES;
    use crate::*;

    fn launches<O: SimpleOptimizer<Wgpu>>(optim: O) -> usize {
        let full = |v: f64| Tensor::<Wgpu, 1>::full([300], v, (&Default::default(), DType::F32));
        let before = LAUNCHES.with(Cell::get);
        let (param, state) = optim.step(1e-2, full(1.0), full(0.5), None);
        let _ = optim.step(1e-2, param, full(-0.5), state);
        LAUNCHES.with(Cell::get) - before
    }

    #[test]
    fn every_optimizer_steps_on_kernels_on_wgpu() {
        let runs = [
            launches(LarsConfig::new().build()),
            launches(LarsConfig::new().with_momentum(0.9).build()),
            launches(LambConfig::new().build()),
            launches(RaLarsConfig::new().build()),
            launches(TAdamConfig::new().build()),
            launches(TAdamConfig::new().with_amsgrad(true).build()),
            launches(AdaBeliefConfig::new().build()),
            launches(AdaBeliefConfig::new().with_amsgrad(true).build()),
            launches(AdamPConfig::new().with_amsgrad(true).build()),
            launches(AdEMAMixConfig::new().build()),
            launches(AdanConfig::new().build()),
            launches(AdanConfig::new().with_amsgrad(true).build()),
        ];
        assert_eq!(runs, [2; 12]);
    }

    #[test]
    fn fused_false_launches_no_kernel() {
        let runs = [
            launches(LarsConfig::new().with_fused(false).build()),
            launches(LambConfig::new().with_fused(false).build()),
            launches(RaLarsConfig::new().with_fused(false).build()),
            launches(TAdamConfig::new().with_fused(false).build()),
            launches(AdaBeliefConfig::new().with_fused(false).build()),
            launches(AdamPConfig::new().with_fused(false).build()),
            launches(AdEMAMixConfig::new().with_fused(false).build()),
            launches(AdanConfig::new().with_fused(false).build()),
        ];
        assert_eq!(runs, [0; 8]);
    }

    /// The sums of a summing pass over more elements than its grid has units (each unit
    /// folds a strided run) against the same sums on the host, in f64.
    #[test]
    fn summing_pass_matches_the_host() {
        let n: usize = 1024 * 256 * 2 + 1234;
        let values: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let other: Vec<f32> = values.iter().rev().copied().collect();
        let device = Default::default();
        let p = Tensor::<Wgpu, 1>::from_data(
            burn::tensor::TensorData::new(values.clone(), [n]),
            &device,
        );
        let g = Tensor::<Wgpu, 1>::from_data(
            burn::tensor::TensorData::new(other.clone(), [n]),
            &device,
        );
        let totals = super::sums_of_norms(p, g);
        let pp: f64 = values.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        let gg: f64 = other.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        let relative = |a: f32, b: f64| (f64::from(a) - b).abs() / b;
        assert!(relative(totals[0], pp) < 1e-5, "{} vs {pp}", totals[0]);
        assert!(relative(totals[1], gg) < 1e-5, "{} vs {gg}", totals[1]);
        assert_eq!(totals[2..], [0.0, 0.0]);
    }

    #[test]
    fn a_shared_parameter_is_copied_before_the_kernel_writes() {
        let optim = AdaBeliefConfig::new().build();
        let param = Tensor::<Wgpu, 1>::full([300], 0.5, (&Default::default(), DType::F32));
        let kept = param.clone();
        let grad = Tensor::<Wgpu, 1>::full([300], 0.1, (&Default::default(), DType::F32));
        let before = LAUNCHES.with(Cell::get);
        let (param, _) = SimpleOptimizer::<Wgpu>::step(&optim, 1e-2, param, grad, None);
        assert_eq!(
            LAUNCHES.with(Cell::get),
            before + 1,
            "the kernel did not run"
        );
        let kept: Vec<f32> = kept.into_data().to_vec().unwrap();
        assert!(kept.iter().all(|&x| x == 0.5), "the kept clone changed");
        let moved: Vec<f32> = param.into_data().to_vec().unwrap();
        assert!(moved.iter().all(|&x| x < 0.5), "the parameter did not move");
    }
}
