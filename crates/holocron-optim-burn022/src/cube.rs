//! The rules' kernels on Burn 0.22's CubeCL backend (WGPU, CUDA): a step on an `f32` tensor
//! of that backend updates the parameter and its state in place, with the kernels that
//! `holocron_optim_core::kernels!` writes, compiled here with CubeCL 0.11 (the crate for
//! Burn 0.21 compiles the same rules with CubeCL 0.10).
//!
//! A rule without sums takes one launch per parameter tensor, the update pass; a summed rule
//! three: a summing pass, one cube that folds its partial sums, and the update pass, which
//! reads the totals on the device (nothing is read back to the host). A strided tensor is
//! made contiguous first, and a buffer that another tensor shares is copied before it is
//! written, as on the CPU backends, so a resumed run repeats an uninterrupted one bit for
//! bit. The coefficients of a step travel as a small array built from the rule's typed
//! coefficients, so one compiled kernel serves every step.
//!
//! With Burn's operation fusion (Burn's default features) a CubeCL tensor is a handle into
//! the fusion stream. With this crate's `fusion` feature the kernels take their tensors out
//! of the stream once the operations that produce them have been dispatched (nothing is read
//! back to the host) and hand their results back to it as new tensors ([`fusion`]); without
//! it, a fused tensor steps on the tensor operations.

use core::any::TypeId;

use burn::backend::DispatchDevice;
use burn::tensor::{DType, Tensor};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{CubeBackend, CubeDevice};
use cubecl::client::Client;
use cubecl::prelude::*;
use cubecl::server::Handle;
use holocron_optim_core::cpu::RuleStep;
use holocron_optim_core::passes::{self, SUMS, UNITS};
use holocron_optim_core::rules::{
    adabelief::AdaBeliefRule, adamp::AdamPRule, adan::AdanRule, ademamix::AdEMAMixRule,
    lamb::TrustRule, lars::LarsRule, tadam::TAdamRule,
};
use holocron_optim_core::{Execution, Rule};

use crate::fused::Stepped;

/// How CubeCL 0.11 derives the kernels' structs: their expanded form is moved where a
/// rule body uses it, so it must be `Copy` too.
macro_rules! cube_struct {
    ($($item:tt)*) => {
        #[derive(CubeType, Clone, Copy)]
        #[cube(derive(Clone, Copy))]
        $($item)*
    };
}

/// Every rule's kernel side, compiled with CubeCL 0.11.
#[allow(missing_docs, dead_code, clippy::too_many_arguments)]
mod kernels {
    use cubecl::prelude::*;

    /// A kernel's array in CubeCL 0.11 (a slice).
    pub type Lane<F> = Box<[F]>;

    /// A cube's shared memory of `len` elements in CubeCL 0.11.
    #[cube]
    pub fn shared_lane<F: Float>(#[comptime] len: usize) -> Shared<[F]> {
        Shared::<[F]>::new_slice(len)
    }

    holocron_optim_core::kernels!();
}

use kernels::CubeRule;
use kernels::passes::{copy_kernel, finish_sums_kernel, sums_kernel, update_kernel};

/// Whether `t` is a tensor the kernels can take: `f32`, not empty (no grid), on a device of
/// Burn's CubeCL backend (not autodiff: `ModuleOptimizer` steps the inner tensors) whose
/// runtime `execution` allows, in a build that can take its tensors apart ([`bridged`]).
pub(crate) fn takes<const D: usize>(t: &Tensor<D>, execution: Execution) -> bool {
    let device = t.device();
    let empty = t.shape().num_elements() == 0;
    if empty || device.is_autodiff() || t.dtype() != DType::F32 || !bridged() {
        return false;
    }
    // Unreachable where the build has only CubeCL backends.
    #[allow(unreachable_patterns)]
    match device.as_dispatch() {
        DispatchDevice::Cube(device) => allowed(device, execution),
        _ => false,
    }
}

/// Whether this build can take the CubeCL backend's tensors apart: with the `fusion`
/// feature always (Burn's CubeCL backend is then the fusion backend); without it, where Burn
/// is built without operation fusion (its tensors are then `CubeTensor`s, not handles into
/// the fusion stream).
fn bridged() -> bool {
    cfg!(feature = "fusion") || TypeId::of::<burn_cubecl::Cube>() == TypeId::of::<CubeBackend>()
}

/// Whether `execution` lets the kernels run on `device`: [`Execution::Auto`] where this
/// project's tests ran them on Burn 0.22 (WGPU, on Mesa's software Vulkan in every CI run),
/// [`Execution::Fused`] on every CubeCL runtime.
fn allowed(device: &CubeDevice, execution: Execution) -> bool {
    match execution {
        Execution::Composed => false,
        Execution::Fused => true,
        Execution::Auto => device.runtime() == cubecl::RuntimeId::Wgpu,
    }
}

/// Whether `R` has kernels here: one of the seven rules `kernels!` writes.
pub(crate) fn has_kernels<R: Rule>() -> bool {
    launcher::<R>().is_some()
}

/// One step of a rule on the kernels; `lanes` are the state lanes, all of the parameter's
/// element count (a carried scalar's one element), every tensor taken by [`takes`].
///
/// # Panics
///
/// If the rule has no kernels ([`has_kernels`]) or a lane does not have its size.
pub(crate) fn run<R: Rule, const D: usize>(
    kernel: &RuleStep<R>,
    param: Tensor<D>,
    grad: Tensor<D>,
    lanes: Vec<Tensor<D>>,
) -> Stepped<D> {
    let launch = launcher::<R>().expect("a rule with kernels (checked by `has_kernels`)");
    let dims = param.dims();
    let dims_of: Vec<_> = lanes.iter().map(Tensor::dims).collect();
    let mut step = Prepared::new::<R, D>(param, grad, lanes);
    launch(&mut step, R::to_vec(kernel.coefficients), kernel.flag);
    let mut cells = step.cells.into_iter().map(tensor::<D>);
    let param = cells.next().expect("the parameter");
    let mut lanes: Vec<Tensor<D>> = cells.collect();
    lanes.extend(step.carried.map(tensor::<D>));
    debug_assert_eq!(param.dims(), dims);
    debug_assert_eq!(lanes.iter().map(Tensor::dims).collect::<Vec<_>>(), dims_of);
    (param, lanes)
}

/// The launches of one rule's step, for the rule that `R` is.
type Launch = fn(&mut Prepared, Vec<f64>, bool);

/// The launches of `R`'s step: the generic step instantiated for the rule type that `R` is
/// (each rule's `CubeRule` implementation lives in [`kernels`], apart from the generic
/// optimizer).
fn launcher<R: Rule>() -> Option<Launch> {
    macro_rules! find {
        ($($rule:ty),*) => {{
            $(if TypeId::of::<R>() == TypeId::of::<$rule>() {
                return Some(launch::<$rule>);
            })*
            None
        }};
    }
    find!(
        AdaBeliefRule,
        AdamPRule,
        AdanRule,
        AdEMAMixRule,
        TrustRule,
        LarsRule,
        TAdamRule
    )
}

/// The buffers of one step: the parameter and the state lanes of its size (writable), the
/// gradient (contiguous), and the carried scalar's lane if any.
struct Prepared {
    cells: Vec<CubeTensor>,
    grad: CubeTensor,
    carried: Option<CubeTensor>,
    n: usize,
}

impl Prepared {
    fn new<R: Rule, const D: usize>(
        param: Tensor<D>,
        grad: Tensor<D>,
        mut lanes: Vec<Tensor<D>>,
    ) -> Self {
        let n = param.shape().num_elements();
        let carried = if R::CARRIES { lanes.pop() } else { None };
        let mut cells = vec![writable(primitive(param))];
        cells.extend(lanes.into_iter().map(|t| writable(primitive(t))));
        Self {
            cells,
            grad: into_contiguous(primitive(grad)),
            carried: carried.map(|t| into_contiguous(primitive(t))),
            n,
        }
    }

    fn client(&self) -> &Client {
        &self.cells[0].client
    }

    /// The cells as the kernels' sequence of lanes.
    fn lanes(&self) -> SequenceArg<Box<[f32]>> {
        let mut lanes = SequenceArg::<Box<[f32]>>::new();
        for cell in &self.cells {
            lanes.push(Buffer::of(cell, self.n).arg());
        }
        lanes
    }

    fn grad(&self) -> BufferArg {
        Buffer::of(&self.grad, self.n).arg()
    }
}

/// One step of the rule `C` on the prepared buffers, with the step's coefficients in their
/// array form and the rule's flag.
fn launch<C: Rule + CubeRule>(step: &mut Prepared, coefficients: Vec<f64>, flag: bool) {
    let count = C::lanes(flag);
    assert_eq!(
        step.cells.len(),
        count,
        "{count} lanes (parameter included) for this rule"
    );
    assert_eq!(
        coefficients.len(),
        C::COEFFICIENTS,
        "the rule's kernels read {} coefficients",
        C::COEFFICIENTS
    );
    let client = step.client().clone();
    let c = Buffer::from_values(&client, &coefficients);
    let grid = Grid::new(&client, step.n);
    let totals = if C::SUMMED {
        grid.summed(|cube_count, cube_dim, partials| {
            sums_kernel::launch::<f32, C>(
                &client,
                cube_count,
                cube_dim,
                step.lanes(),
                step.grad(),
                c.arg(),
                partials,
                count,
                flag,
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
    update_kernel::launch::<f32, C>(
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
        flag,
    );
    if let Some(old) = step.carried.take() {
        step.carried = Some(CubeTensor::new_contiguous(
            client,
            old.device.clone(),
            old.meta.shape().clone(),
            next_carried.handle,
            DType::F32,
        ));
    }
}

/// The CubeCL primitive of a tensor that [`takes`] accepted. Burn's CubeCL backend
/// (`burn_cubecl::Cube`) is the fusion backend wherever any crate of the build turns Burn's
/// fusion on; this crate knows it is only with its own `fusion` feature, and without it
/// takes only the unfused backend's `CubeTensor`s (see [`bridged`]).
fn primitive<const D: usize>(t: Tensor<D>) -> CubeTensor {
    let primitive = t
        .try_into_primitive::<burn_cubecl::Cube>()
        .unwrap_or_else(|e| panic!("a CubeCL tensor (checked by `takes`): {e:?}"));
    #[cfg(feature = "fusion")]
    return fusion::resolve(primitive);
    #[cfg(not(feature = "fusion"))]
    cast(primitive)
}

/// Back from [`primitive`] (into the fusion stream with the `fusion` feature).
fn tensor<const D: usize>(t: CubeTensor) -> Tensor<D> {
    #[cfg(feature = "fusion")]
    return Tensor::from_primitive::<burn_cubecl::Cube>(fusion::register(t));
    #[cfg(not(feature = "fusion"))]
    Tensor::from_primitive::<burn_cubecl::Cube>(cast(t))
}

/// `value` as the type it is: the unfused backend's primitive, which is `CubeTensor` in the
/// builds that reach here (checked by [`bridged`]) but a fusion tensor in others.
#[cfg(not(feature = "fusion"))]
fn cast<T: 'static, U: 'static>(value: T) -> U {
    let mut slot = Some(value);
    (&mut slot as &mut dyn core::any::Any)
        .downcast_mut::<Option<U>>()
        .and_then(Option::take)
        .expect("Burn's CubeCL backend without fusion (checked by `bridged`)")
}

/// The bridge to Burn's operation fusion (`Fusion<CubeBackend>`, what Burn's default
/// features build for WGPU and CUDA): a fusion tensor is a handle into a stream of queued
/// operations.
#[cfg(feature = "fusion")]
mod fusion {
    use burn_cubecl::CubeBackend;
    use burn_cubecl::fusion::FusionCubeRuntime;
    use burn_cubecl::tensor::CubeTensor;
    use burn_fusion::stream::StreamId;
    use burn_fusion::{FusionTensor, NoOp};
    use burn_ir::{BackendIr, InitOperationIr, OperationIr, OperationOutput};

    /// A tensor of the fusion stream over Burn's CubeCL backend.
    type Fused = FusionTensor<FusionCubeRuntime>;

    /// The tensor's buffer, after the queued operations it depends on have been dispatched.
    /// A tensor that nothing else holds leaves the stream, so its buffer can be written in
    /// place; a shared one stays there, and `writable` copies it.
    pub(super) fn resolve(tensor: Fused) -> CubeTensor {
        let client = tensor.client.clone();
        client.resolve_tensor_float::<CubeBackend>(tensor)
    }

    /// The buffer as a new tensor of the stream.
    pub(super) fn register(tensor: CubeTensor) -> Fused {
        let client = burn_fusion::get_client::<CubeBackend>(&tensor.device);
        let (shape, dtype) = (tensor.meta.shape().clone(), tensor.dtype);
        let handle = <CubeBackend as BackendIr>::float_tensor_handle(tensor);
        let init = InitOperationIr::create(shape, dtype, || client.register_tensor_handle(handle));
        client
            .register(
                StreamId::current(),
                OperationIr::Init(init),
                NoOp::<CubeBackend>::new(),
            )
            .output()
    }
}

/// The tensor made contiguous, and copied if another tensor shares its buffer: as on the CPU
/// backends, so that a kernel runs in every case and a run does not depend on who holds
/// what. The copy is a kernel of the core's, as in the crate for Burn 0.21 (whose CUDA run
/// found `CubeTensor::copy` unreliable for this).
fn writable(t: CubeTensor) -> CubeTensor {
    let t = into_contiguous(t);
    if t.can_mut() { t } else { copied(&t) }
}

/// A contiguous `f32` tensor's values in a buffer of their own.
fn copied(t: &CubeTensor) -> CubeTensor {
    let n = t.meta.num_elements();
    let from = Buffer::of(t, n);
    let to = Buffer::empty(&t.client, n);
    let (cube_count, cube_dim) = Grid::new(&t.client, n).each();
    copy_kernel::launch::<f32>(&t.client, cube_count, cube_dim, from.arg(), to.arg());
    CubeTensor::new_contiguous(
        t.client.clone(),
        t.device.clone(),
        t.meta.shape().clone(),
        to.handle,
        DType::F32,
    )
}

/// A device buffer of `len` `f32`s, handed to kernels as a slice of that length.
struct Buffer {
    handle: Handle,
    len: usize,
}

impl Buffer {
    /// The first `len` `f32`s of a tensor's buffer.
    ///
    /// # Panics
    ///
    /// If the tensor holds fewer than `len` `f32`s: this check is what makes [`Self::arg`]
    /// sound.
    fn of(t: &CubeTensor, len: usize) -> Self {
        assert_eq!(t.dtype, DType::F32, "kernels run on f32 buffers");
        assert!(
            t.meta.num_elements() >= len && t.handle.size() as usize >= len * size_of::<f32>(),
            "a buffer of {} bytes cannot hold {len} f32s",
            t.handle.size()
        );
        Self {
            handle: t.handle.clone(),
            len,
        }
    }

    /// A fresh buffer of `len` `f32`s (contents unspecified until a kernel writes them).
    fn empty(client: &Client, len: usize) -> Self {
        Self {
            handle: client.empty(len * size_of::<f32>()),
            len,
        }
    }

    /// A buffer holding `values`, rounded to `f32`.
    fn from_values(client: &Client, values: &[f64]) -> Self {
        let values: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        Self {
            handle: client.create_from_slice(f32::as_bytes(&values)),
            len: values.len(),
        }
    }

    /// The buffer as a kernel's slice.
    fn arg(&self) -> BufferArg {
        // SAFETY: every constructor holds at least `len` f32s: `of` checks the tensor's
        // buffer size, `empty` and `from_values` allocate exactly that many.
        unsafe { BufferArg::from_raw_parts(self.handle.clone(), self.len) }
    }
}

/// The grids of the launches over one tensor of `n` elements.
struct Grid {
    client: Client,
    n: usize,
}

impl Grid {
    fn new(client: &Client, n: usize) -> Self {
        Self {
            client: client.clone(),
            n,
        }
    }

    /// One unit per element.
    fn each(&self) -> (CubeCount, CubeDim) {
        let cube_dim = CubeDim::new(&self.client, self.n);
        let cube_count = cubecl::calculate_cube_count_elemwise(&self.client, self.n, cube_dim);
        (cube_count, cube_dim)
    }

    /// Runs a summing pass (`pass` gets its grid and the per-cube partial sums to write),
    /// then folds the partial sums into the [`SUMS`] totals that an update pass reads.
    fn summed(&self, pass: impl FnOnce(CubeCount, CubeDim, BufferArg)) -> Buffer {
        let cubes = passes::cubes(self.n);
        let partials = Buffer::empty(&self.client, cubes * SUMS);
        let cube_dim = CubeDim::new_1d(UNITS as u32);
        pass(
            CubeCount::Static(cubes as u32, 1, 1),
            cube_dim,
            partials.arg(),
        );
        let totals = Buffer::empty(&self.client, SUMS);
        finish_sums_kernel::launch::<f32>(
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
