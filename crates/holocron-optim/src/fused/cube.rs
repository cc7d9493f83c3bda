//! The fused path on Burn's CubeCL backends (WGPU, CUDA) without Burn's `fusion` feature:
//! one kernel launch per parameter tensor updates the parameter and its state in place.
//!
//! Only the element-wise rules have a kernel so far (AdaBelief, AdEMAMix, Adan); the rules
//! that need a whole-tensor norm or dot product run the composed operations on these
//! backends. A kernel runs on `f32` tensors; a strided tensor is made contiguous first, and
//! a buffer that another tensor shares is copied before it is written (as on ndarray), so
//! the kernel runs whoever holds what and a resumed run repeats an uninterrupted one bit
//! for bit.
//!
//! The coefficients of a step (betas, corrections, learning rate) travel as a small array
//! created for each launch, so one compiled kernel serves every step.

use core::any::{Any, TypeId};

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use burn_cubecl::CubeRuntime;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

/// The kernels, by optimizer; each reads its coefficients from `c` (see the callers).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rule {
    /// Lanes `[m, s]` or `[m, s, s_max]`.
    AdaBelief { amsgrad: bool },
    /// Lanes `[m2, m1, nu]`.
    AdEMAMix,
    /// Lanes `[m, v, g_prev, n]` or `[m, v, g_prev, n, n_max]`.
    Adan { amsgrad: bool },
}

#[cube(launch)]
fn adabelief_kernel<F: Float>(
    p: &mut Array<F>,
    g: &Array<F>,
    m: &mut Array<F>,
    v: &mut Array<F>,
    v_max: &mut Array<F>,
    c: &Array<F>,
    #[comptime] amsgrad: bool,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        let grad = g[i] + p[i] * c[0];
        let first = m[i] * c[1] + grad * c[2];
        m[i] = first;
        let residual = grad - first;
        let mut second = v[i] * c[3] + residual * residual * c[4] + c[5];
        v[i] = second;
        if amsgrad {
            second = max(v_max[i], second);
            v_max[i] = second;
        }
        let denominator = F::sqrt(second) * c[6] + c[7];
        p[i] = p[i] - first * c[8] / denominator * c[9];
    }
}

#[cube(launch)]
fn ademamix_kernel<F: Float>(
    p: &mut Array<F>,
    g: &Array<F>,
    slow: &mut Array<F>,
    m: &mut Array<F>,
    v: &mut Array<F>,
    c: &Array<F>,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        let grad = g[i] + p[i] * c[0];
        let slow_average = slow[i] * c[1] + grad * c[2];
        slow[i] = slow_average;
        let first = m[i] * c[3] + grad * c[4];
        m[i] = first;
        let second = v[i] * c[5] + grad * grad * c[6];
        v[i] = second;
        let numerator = first * c[7] + slow_average * c[8];
        let denominator = F::sqrt(second) * c[9] + c[10];
        p[i] = p[i] - numerator / denominator * c[11];
    }
}

#[cube(launch)]
fn adan_kernel<F: Float>(
    p: &mut Array<F>,
    g: &Array<F>,
    m: &mut Array<F>,
    v: &mut Array<F>,
    previous: &mut Array<F>,
    n: &mut Array<F>,
    n_max: &mut Array<F>,
    c: &Array<F>,
    #[comptime] amsgrad: bool,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        let grad = g[i];
        let diff = (grad - previous[i]) * c[0];
        previous[i] = grad;
        let first = m[i] * c[1] + grad * c[2];
        m[i] = first;
        let diff_average = v[i] * c[3] + diff * c[4];
        v[i] = diff_average;
        let nesterov = grad + diff * c[5];
        let mut second = n[i] * c[6] + nesterov * nesterov * c[7];
        n[i] = second;
        if amsgrad {
            second = max(n_max[i], second);
            n_max[i] = second;
        }
        let numerator = first * c[8] + diff_average * c[9];
        let denominator = F::sqrt(second) * c[10] + c[11];
        p[i] = (p[i] - numerator / denominator * c[12]) / c[13];
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
    if primitive == TypeId::of::<CubeTensor<cubecl::wgpu::WgpuRuntime>>() {
        return Some(Runtime::Wgpu);
    }
    #[cfg(feature = "cuda")]
    if primitive == TypeId::of::<CubeTensor<cubecl::cuda::CudaRuntime>>() {
        return Some(Runtime::Cuda);
    }
    let _ = primitive;
    None
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
    match run(rule, c, param, grad, lanes) {
        Ok((param, lanes)) => Ok((param, Some(unpack(time + 1, lanes)))),
        Err((param, grad, lanes)) => Err((param, grad, (time > 0).then(|| unpack(time, lanes)))),
    }
}

/// Runs `rule` in place on the parameter and state lanes with coefficients `c`.
fn run<B: Backend, const D: usize>(
    rule: Rule,
    c: &[f64],
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    state: Vec<Tensor<B, D>>,
) -> Result<Stepped<B, D>, Refused<B, D>> {
    match runtime::<B>().expect("a CubeCL backend (checked by `supported`)") {
        #[cfg(feature = "wgpu")]
        Runtime::Wgpu => run_on::<B, cubecl::wgpu::WgpuRuntime, D>(rule, c, param, grad, state),
        #[cfg(feature = "cuda")]
        Runtime::Cuda => run_on::<B, cubecl::cuda::CudaRuntime, D>(rule, c, param, grad, state),
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
    // refuses) goes to the composed operations.
    let fits = |t: &CubeTensor<R>| t.dtype == DType::F32 && t.meta.num_elements() == n;
    if !(state.iter().all(fits) && fits(&grad)) {
        return Err((
            give(param),
            give(grad),
            state.into_iter().map(give).collect(),
        ));
    }
    // As on ndarray, a buffer that another tensor shares is copied before it is written,
    // so the kernel runs in every case and a run does not depend on who holds what.
    let writable = |t: CubeTensor<R>| {
        let t = into_contiguous(t);
        if t.can_mut() { t } else { t.copy() }
    };
    let param = writable(param);
    let grad = into_contiguous(grad);
    let state: Vec<CubeTensor<R>> = state.into_iter().map(writable).collect();
    let client = param.client.clone();
    let coefficients: Vec<f32> = c.iter().map(|&x| x as f32).collect();
    let c = client.create_from_slice(f32::as_bytes(&coefficients));
    let array = |t: &CubeTensor<R>| unsafe { ArrayArg::from_raw_parts(t.handle.clone(), n) };
    // An unused AMSGrad lane is a one-element placeholder the kernel never reads.
    let placeholder = || unsafe {
        ArrayArg::from_raw_parts(client.create_from_slice(f32::as_bytes(&[0.0f32])), 1)
    };
    let cube_dim = CubeDim::new(&client, n);
    let cube_count = cubecl::calculate_cube_count_elemwise(&client, n, cube_dim);
    let coefficients = unsafe { ArrayArg::from_raw_parts(c, coefficients.len()) };
    let (p, g) = (array(&param), array(&grad));
    match (rule, state.as_slice()) {
        (Rule::AdaBelief { amsgrad }, [m, v, rest @ ..]) => {
            let v_max = rest.first().map_or_else(placeholder, array);
            adabelief_kernel::launch::<f32, R>(
                &client,
                cube_count,
                cube_dim,
                p,
                g,
                array(m),
                array(v),
                v_max,
                coefficients,
                amsgrad,
            );
        }
        (Rule::AdEMAMix, [slow, m, v]) => {
            ademamix_kernel::launch::<f32, R>(
                &client,
                cube_count,
                cube_dim,
                p,
                g,
                array(slow),
                array(m),
                array(v),
                coefficients,
            );
        }
        (Rule::Adan { amsgrad }, [m, v, previous, second, rest @ ..]) => {
            let n_max = rest.first().map_or_else(placeholder, array);
            adan_kernel::launch::<f32, R>(
                &client,
                cube_count,
                cube_dim,
                p,
                g,
                array(m),
                array(v),
                array(previous),
                array(second),
                n_max,
                coefficients,
                amsgrad,
            );
        }
        (rule, lanes) => unreachable!("{rule:?} with {} lanes", lanes.len()),
    }
    #[cfg(test)]
    LAUNCHES.with(|l| l.set(l.get() + 1));
    Ok((give(param), state.into_iter().map(give).collect()))
}

#[cfg(test)]
thread_local! {
    /// Kernel launches on this thread.
    static LAUNCHES: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

fn take<B: Backend, R: CubeRuntime, const D: usize>(t: Tensor<B, D>) -> CubeTensor<R> {
    let mut slot = Some(t.into_primitive().tensor());
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<CubeTensor<R>>>()
        .and_then(Option::take)
        .expect("a CubeCL primitive (checked by `supported`)")
}

fn give<B: Backend, R: CubeRuntime, const D: usize>(t: CubeTensor<R>) -> Tensor<B, D> {
    let mut slot = Some(t);
    let primitive = (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<B::FloatTensorPrimitive>>()
        .and_then(Option::take)
        .expect("a CubeCL backend (checked by `supported`)");
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
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
    fn element_wise_optimizers_launch_their_kernel_on_wgpu() {
        let runs = [
            launches(AdaBeliefConfig::new().build()),
            launches(AdaBeliefConfig::new().with_amsgrad(true).build()),
            launches(AdEMAMixConfig::new().build()),
            launches(AdanConfig::new().build()),
            launches(AdanConfig::new().with_amsgrad(true).build()),
            launches(AdanConfig::new().with_fused(false).build()),
        ];
        assert_eq!(runs, [2, 2, 2, 2, 2, 0]);
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
