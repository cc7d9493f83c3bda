//! The fast paths on Burn 0.22: a step on a tensor of Burn's Flex or ndarray backend runs
//! the core's in-place CPU loops ([`holocron_optim_core::cpu`], the same code the crate for
//! Burn 0.21 runs) on the buffers behind the parameter, its gradient and its state; on an
//! `f32` tensor of Burn's CubeCL backend (WGPU, CUDA) the rules' kernels ([`crate::cube`]).
//!
//! Burn 0.22 hands the optimizer tensors of its run-time dispatch backend; a tensor on one
//! of these devices (not autodiff: `ModuleOptimizer` steps the inner tensors) is taken apart
//! into its buffer with `Tensor::try_into_primitive` and put back with
//! `Tensor::from_primitive`. Any other tensor (another device, another dtype) is handed back
//! for the composed operations.

#[cfg(any(feature = "ndarray", feature = "flex"))]
use burn::backend::DispatchDevice;
#[cfg(any(feature = "ndarray", feature = "flex"))]
use burn::tensor::DType;
use burn::tensor::Tensor;
#[cfg(any(
    feature = "ndarray",
    feature = "flex",
    feature = "wgpu",
    feature = "cuda"
))]
use holocron_optim_core::cpu::RuleStep;
use holocron_optim_core::{Execution, OptimizerRule, StepPath};

/// The tensors of a step no fast path took: the parameter, the gradient and the state lanes
/// as they were (none before the first step); boxed, as tensors are large values.
pub(crate) type Declined<const D: usize> = Box<(Tensor<D>, Tensor<D>, Option<Vec<Tensor<D>>>)>;

/// A stepped parameter and its state lanes.
pub(crate) type Stepped<const D: usize> = (Tensor<D>, Vec<Tensor<D>>);

/// The backends whose tensors a fast path takes apart.
#[cfg(any(
    feature = "ndarray",
    feature = "flex",
    feature = "wgpu",
    feature = "cuda"
))]
#[derive(Clone, Copy, PartialEq, Eq)]
enum InPlace {
    /// Burn's ndarray backend (`ndarray` feature): the CPU loops.
    #[cfg(feature = "ndarray")]
    NdArray,
    /// Burn's Flex backend (`flex` feature): the CPU loops.
    #[cfg(feature = "flex")]
    Flex,
    /// Burn's CubeCL backend (`wgpu` or `cuda` feature): the kernels.
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    Cube,
}

#[cfg(any(
    feature = "ndarray",
    feature = "flex",
    feature = "wgpu",
    feature = "cuda"
))]
impl InPlace {
    /// The fast path that can take `t` as `execution` allows: a tensor of one of the
    /// backends above, not an autodiff one, in `f32` or `f64` (the kernels: `f32`).
    #[allow(unused_variables)]
    fn of<const D: usize>(t: &Tensor<D>, execution: Execution) -> Option<Self> {
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        if crate::cube::takes(t, execution) {
            return Some(InPlace::Cube);
        }
        #[cfg(any(feature = "ndarray", feature = "flex"))]
        {
            let device = t.device();
            if device.is_autodiff()
                || !matches!(t.dtype(), DType::F32 | DType::F64)
                || !execution.loops()
            {
                return None;
            }
            // Unreachable where the build has only these backends.
            #[allow(unreachable_patterns)]
            match device.as_dispatch() {
                #[cfg(feature = "ndarray")]
                DispatchDevice::NdArray(_) => return Some(InPlace::NdArray),
                #[cfg(feature = "flex")]
                DispatchDevice::Flex(_) => return Some(InPlace::Flex),
                _ => {}
            }
        }
        None
    }

    /// Whether this path has `R`'s step (the CPU loops have every rule's).
    #[cfg_attr(
        not(any(feature = "wgpu", feature = "cuda")),
        allow(clippy::extra_unused_type_parameters)
    )]
    fn steps<R: OptimizerRule>(self) -> bool {
        match self {
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            InPlace::Cube => crate::cube::has_kernels::<R::Rule>(),
            #[allow(unreachable_patterns)]
            _ => true,
        }
    }
}

/// One step of `rule` on a fast path, as `execution` allows: the new parameter and state
/// lanes (in [`OptimizerRule::state_names`] order, each of the parameter's shape or, for a
/// one-element lane, of its own) and the path that ran, or the tensors back when no fast path
/// takes them.
///
/// `time` is the number of steps taken so far, `lanes` the state (none before the first
/// step, which starts from the rule's own first state).
#[cfg(any(
    feature = "ndarray",
    feature = "flex",
    feature = "wgpu",
    feature = "cuda"
))]
pub(crate) fn step<R: OptimizerRule, const D: usize>(
    rule: &R,
    execution: Execution,
    lr: f64,
    time: usize,
    param: Tensor<D>,
    grad: Tensor<D>,
    lanes: Option<Vec<Tensor<D>>>,
) -> Result<(Stepped<D>, StepPath), Declined<D>> {
    let dtype = param.dtype();
    let path = InPlace::of(&param, execution).filter(|path| path.steps::<R>());
    // Every tensor on the parameter's backend, in its dtype (a gradient or state on another
    // device goes to the composed operations, which move it or say why not).
    let on_path = |t: &Tensor<D>| path.is_some() && InPlace::of(t, execution) == path;
    let lanes_on_path = lanes.as_ref().is_none_or(|lanes| lanes.iter().all(on_path));
    let path = match path {
        Some(path) if on_path(&grad) && grad.dtype() == dtype && lanes_on_path => path,
        _ => return Err(Box::new((param, grad, lanes))),
    };
    let shape = param.dims();
    let first = lanes.is_none();
    let lanes = lanes.unwrap_or_else(|| {
        let n = shape.iter().product::<usize>();
        // The rule's own first state (zeros, TAdam's initial weight sum), shaped as kept.
        let flat = crate::flat::FlatTensor(grad.clone().reshape([n]));
        rule.initial_state(&flat)
            .into_iter()
            .zip(rule.state_shapes(&shape))
            .map(|(lane, lane_shape)| {
                lane.0
                    .reshape(crate::optim::lane_dims::<D>(R::NAME, &lane_shape))
            })
            .collect()
    });
    // A state saved in another precision loads in that precision; it steps in the
    // parameter's, as the composed operations would.
    let lanes: Vec<Tensor<D>> = lanes
        .into_iter()
        .map(|t| if t.dtype() == dtype { t } else { t.cast(dtype) })
        .collect();
    let step = RuleStep::<R::Rule> {
        coefficients: rule.coefficients(lr, time + 1, first, &shape),
        flag: rule.flag(),
    };
    #[allow(unused_variables)]
    let f32 = dtype == burn::tensor::DType::F32;
    Ok(match path {
        #[cfg(feature = "ndarray")]
        InPlace::NdArray if f32 => (
            ndarray::run::<f32, _, D>(&step, param, grad, lanes),
            StepPath::CpuLoops,
        ),
        #[cfg(feature = "ndarray")]
        InPlace::NdArray => (
            ndarray::run::<f64, _, D>(&step, param, grad, lanes),
            StepPath::CpuLoops,
        ),
        #[cfg(feature = "flex")]
        InPlace::Flex if f32 => (
            flex::run::<f32, _, D>(&step, param, grad, lanes),
            StepPath::CpuLoops,
        ),
        #[cfg(feature = "flex")]
        InPlace::Flex => (
            flex::run::<f64, _, D>(&step, param, grad, lanes),
            StepPath::CpuLoops,
        ),
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        InPlace::Cube => (
            crate::cube::run(&step, param, grad, lanes),
            StepPath::Kernels,
        ),
    })
}

/// Without a backend feature no tensor reaches a fast path.
#[cfg(not(any(
    feature = "ndarray",
    feature = "flex",
    feature = "wgpu",
    feature = "cuda"
)))]
pub(crate) fn step<R: OptimizerRule, const D: usize>(
    _rule: &R,
    _execution: Execution,
    _lr: f64,
    _time: usize,
    param: Tensor<D>,
    grad: Tensor<D>,
    lanes: Option<Vec<Tensor<D>>>,
) -> Result<(Stepped<D>, StepPath), Declined<D>> {
    Err(Box::new((param, grad, lanes)))
}

// Burn 0.22 deprecates its ndarray backend (for Flex); it is still the backend of this
// crate's `ndarray` feature, as of Burn 0.21's crate.
#[cfg(feature = "ndarray")]
#[allow(deprecated)]
mod ndarray {
    use burn::backend::ndarray::{NdArray, NdArrayTensor};
    use burn::tensor::Tensor;
    use holocron_optim_core::Real;
    use holocron_optim_core::cpu::{self, Kernel, SharedArray};

    /// Runs `kernel` in place on the arrays behind the tensors, all of element type `E`.
    pub(super) fn run<E: NdElement, K: Kernel, const D: usize>(
        kernel: &K,
        param: Tensor<D>,
        grad: Tensor<D>,
        lanes: Vec<Tensor<D>>,
    ) -> (Tensor<D>, Vec<Tensor<D>>) {
        let mut param = array::<E, D>(param);
        let mut grad = array::<E, D>(grad);
        let mut state: Vec<SharedArray<E>> = lanes.into_iter().map(array::<E, D>).collect();
        cpu::run_arrays(kernel, &mut param, Some(&mut grad), &mut state);
        // The gradient's buffer goes before the parameter's comes back: nothing else holds it.
        drop(grad);
        (
            tensor::<E, D>(param),
            state.into_iter().map(tensor::<E, D>).collect(),
        )
    }

    fn array<E: NdElement, const D: usize>(t: Tensor<D>) -> SharedArray<E> {
        let primitive = t
            .try_into_primitive::<NdArray>()
            .unwrap_or_else(|e| panic!("an ndarray tensor (checked by `CpuBackend::of`): {e:?}"));
        E::unwrap(primitive)
    }

    fn tensor<E: NdElement, const D: usize>(array: SharedArray<E>) -> Tensor<D> {
        Tensor::from_primitive::<NdArray>(E::wrap(array))
    }

    /// The element types of the loops, and their variant of Burn's ndarray tensor.
    pub(super) trait NdElement: Real {
        fn unwrap(t: NdArrayTensor) -> SharedArray<Self>;
        fn wrap(array: SharedArray<Self>) -> NdArrayTensor;
    }

    macro_rules! nd_element {
        ($ty:ty, $variant:ident) => {
            impl NdElement for $ty {
                fn unwrap(t: NdArrayTensor) -> SharedArray<Self> {
                    match t {
                        NdArrayTensor::$variant(storage) => storage.into_shared(),
                        other => panic!("expected a {} tensor, got {:?}", stringify!($ty), other),
                    }
                }

                fn wrap(array: SharedArray<Self>) -> NdArrayTensor {
                    NdArrayTensor::from(array)
                }
            }
        };
    }
    nd_element!(f32, F32);
    nd_element!(f64, F64);
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::flex::{Flex, FlexTensor};
    use burn::tensor::Tensor;
    use holocron_optim_core::Real;
    use holocron_optim_core::cpu::{Kernel, Lanes};

    /// Runs `kernel` in place on the buffers behind the tensors, all of element type `E`: a
    /// buffer shared with another tensor is copied first (Flex's copy on write), a view
    /// (transposed, sliced) is brought to a buffer of its own in row-major order.
    pub(super) fn run<E: FlexElement, K: Kernel, const D: usize>(
        kernel: &K,
        param: Tensor<D>,
        grad: Tensor<D>,
        lanes: Vec<Tensor<D>>,
    ) -> (Tensor<D>, Vec<Tensor<D>>) {
        let mut param = whole::<E, D>(param);
        let mut grad = whole::<E, D>(grad);
        let mut state: Vec<FlexTensor> = lanes.into_iter().map(whole::<E, D>).collect();
        // A kernel that stashes may write over a gradient whose buffer nothing else holds.
        let (grad_lane, writable_grad) = if kernel.stashes() && grad.is_unique() {
            (&[][..], Some(E::slice_mut(&mut grad)))
        } else {
            (E::slice(&grad), None)
        };
        kernel.run_any(Lanes {
            param: E::slice_mut(&mut param),
            grad: grad_lane,
            gather: None,
            writable_grad,
            state: state.iter_mut().map(E::slice_mut).collect(),
        });
        // The gradient's buffer goes before the parameter's comes back: nothing else holds it.
        drop(grad);
        (
            Tensor::from_primitive::<Flex>(param),
            state
                .into_iter()
                .map(Tensor::from_primitive::<Flex>)
                .collect(),
        )
    }

    /// The primitive of `t`, with a buffer that holds exactly its elements in row-major order
    /// (copied into one otherwise), so that its storage is its lane.
    fn whole<E: FlexElement, const D: usize>(t: Tensor<D>) -> FlexTensor {
        let t = t
            .try_into_primitive::<Flex>()
            .unwrap_or_else(|e| panic!("a Flex tensor (checked by `CpuBackend::of`): {e:?}"));
        let n = t.layout().num_elements();
        let exact = t.bytes().len() == n * size_of::<E>();
        if exact && t.layout().contiguous_offsets() == Some((0, n)) {
            t
        } else {
            t.to_contiguous()
        }
    }

    /// The element types of the loops, and their view of a Flex buffer.
    pub(super) trait FlexElement: Real {
        fn slice(t: &FlexTensor) -> &[Self];
        fn slice_mut(t: &mut FlexTensor) -> &mut [Self];
    }

    macro_rules! flex_element {
        ($($ty:ty),*) => {$(
            impl FlexElement for $ty {
                fn slice(t: &FlexTensor) -> &[Self] {
                    t.storage::<$ty>()
                }

                fn slice_mut(t: &mut FlexTensor) -> &mut [Self] {
                    t.storage_mut::<$ty>()
                }
            }
        )*};
    }
    flex_element!(f32, f64);
}
