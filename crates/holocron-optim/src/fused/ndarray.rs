//! The fused path on Burn's ndarray backend: the tensor primitives are taken apart into
//! their `ArcArray` buffers, updated in place, and put back together.

use core::any::{Any, TypeId};

use burn::backend::ndarray::{NdArrayTensor, SharedArray};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorMetadata, TensorPrimitive};

use holocron_optim_core::cpu;

use super::{Kernel, Real, Reduction};

/// Whether `B` stores its float tensors as ndarray arrays (`NdArray<f32>`, `NdArray<f64>`,
/// whatever their int and quantization types).
pub(super) fn is_ndarray<B: Backend>() -> bool {
    TypeId::of::<B::FloatTensorPrimitive>() == TypeId::of::<NdArrayTensor>()
}

/// Runs `kernel` on the buffers of `param`, `grad` and `state`, in place where a buffer is
/// not shared (a shared one is copied first, as Burn's own operations do), in `param`'s
/// dtype (`F32` or `F64`, which [`super::supported`] checked).
pub(super) fn run<B: Backend, const D: usize, const S: usize, K: Kernel>(
    kernel: &K,
    param: Tensor<B, D>,
    grad: Option<Tensor<B, D>>,
    state: Vec<Tensor<B, S>>,
) -> (Tensor<B, D>, Vec<Tensor<B, S>>) {
    match param.dtype() {
        DType::F64 => run_as::<f64, B, D, S, K>(kernel, param, grad, state),
        DType::F32 => run_as::<f32, B, D, S, K>(kernel, param, grad, state),
        other => unreachable!("no fused path for {other:?}"),
    }
}

fn run_as<E: NdElement, B: Backend, const D: usize, const S: usize, K: Kernel>(
    kernel: &K,
    param: Tensor<B, D>,
    grad: Option<Tensor<B, D>>,
    state: Vec<Tensor<B, S>>,
) -> (Tensor<B, D>, Vec<Tensor<B, S>>) {
    let dtype = param.dtype();
    // A record saved in another precision loads in that precision; bring it to the
    // parameter's once, as the composed operations would have to.
    let grad = grad.map(|t| if t.dtype() == dtype { t } else { t.cast(dtype) });
    let state = state
        .into_iter()
        .map(|t| if t.dtype() == dtype { t } else { t.cast(dtype) });
    let mut param = unwrap::<E, B, D>(param);
    let mut grad = grad.map(unwrap::<E, B, D>);
    let mut state: Vec<SharedArray<E>> = state.map(unwrap::<E, B, S>).collect();
    cpu::run_arrays(kernel, &mut param, grad.as_mut(), &mut state);
    (
        tensor::<E, B, D>(param),
        state.into_iter().map(tensor::<E, B, S>).collect(),
    )
}

/// The sums of `reduction` over `rows`, chunk by chunk in parallel; the rows are only read,
/// so a buffer shared with another tensor is not copied.
pub(super) fn reduce<B: Backend, R: Reduction<K>, const K: usize>(
    reduction: &R,
    rows: &[Tensor<B, 1>],
) -> [f64; K] {
    match rows.first().map(Tensor::dtype) {
        Some(DType::F64) => reduce_as::<f64, B, R, K>(reduction, rows),
        Some(DType::F32) => reduce_as::<f32, B, R, K>(reduction, rows),
        Some(other) => unreachable!("no fused path for {other:?}"),
        None => [0.0; K],
    }
}

fn reduce_as<E: NdElement, B: Backend, R: Reduction<K>, const K: usize>(
    reduction: &R,
    rows: &[Tensor<B, 1>],
) -> [f64; K] {
    let arrays: Vec<SharedArray<E>> = rows
        .iter()
        .map(|t| cpu::standard(unwrap::<E, B, 1>(t.clone())))
        .collect();
    cpu::reduce_arrays(reduction, &arrays)
}

/// The array behind a tensor, in whatever layout it has.
fn unwrap<E: NdElement, B: Backend, const D: usize>(t: Tensor<B, D>) -> SharedArray<E> {
    let mut slot = Some(t.into_primitive().tensor());
    let primitive = (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<NdArrayTensor>>()
        .and_then(Option::take)
        .expect("an ndarray primitive (checked by `supported`)");
    E::unwrap(primitive)
}

fn tensor<E: NdElement, B: Backend, const D: usize>(array: SharedArray<E>) -> Tensor<B, D> {
    let mut slot = Some(E::wrap(array));
    let primitive = (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<B::FloatTensorPrimitive>>()
        .and_then(Option::take)
        .expect("an ndarray backend (checked by `supported`)");
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

/// The element types with a fused path, and their ndarray variant.
trait NdElement: Real {
    fn unwrap(t: NdArrayTensor) -> SharedArray<Self>;
    fn wrap(array: SharedArray<Self>) -> NdArrayTensor;
}

macro_rules! nd_element {
    ($ty:ty, $variant:ident) => {
        impl NdElement for $ty {
            fn unwrap(t: NdArrayTensor) -> SharedArray<Self> {
                match t {
                    NdArrayTensor::$variant(storage) => storage.into_shared(),
                    other => panic!(
                        "expected a {} tensor, got {:?}",
                        stringify!($ty),
                        other.dtype()
                    ),
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

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::optim::SimpleOptimizer;
    use burn::tensor::{DType, Tensor};

    use crate::{AdanConfig, LambConfig};

    type B = NdArray<f32>;

    /// Where a tensor's elements live.
    fn address(t: &Tensor<B, 2>) -> usize {
        super::unwrap::<f32, B, 2>(t.clone()).as_ptr() as usize
    }

    fn filled(value: f64) -> Tensor<B, 2> {
        Tensor::full([64, 48], value, (&Default::default(), DType::F32))
    }

    #[test]
    fn unique_buffers_are_updated_in_place() {
        let optim = AdanConfig::new().build();
        let param = filled(0.5);
        let at = address(&param);
        let (param, state) = SimpleOptimizer::<B>::step(&optim, 1e-2, param, filled(0.1), None);
        assert_eq!(
            address(&param),
            at,
            "the first step wrote a new parameter buffer"
        );
        let state = state.expect("Adan keeps state");
        let moment_at = address(&state.moment_1);
        let (param, state) =
            SimpleOptimizer::<B>::step(&optim, 1e-2, param, filled(-0.2), Some(state));
        assert_eq!(
            address(&param),
            at,
            "a later step wrote a new parameter buffer"
        );
        assert_eq!(
            address(&state.unwrap().moment_1),
            moment_at,
            "the state moved"
        );
    }

    #[test]
    fn shared_buffers_are_copied_before_writing() {
        let optim = LambConfig::new().build();
        let param = filled(0.5);
        let kept = param.clone();
        let (param, _) = SimpleOptimizer::<B>::step(&optim, 1e-2, param, filled(0.1), None);
        assert_ne!(address(&param), address(&kept));
        let kept: Vec<f32> = kept.into_data().to_vec().unwrap();
        assert!(kept.iter().all(|&x| x == 0.5), "the kept clone changed");
        let moved: Vec<f32> = param.into_data().to_vec().unwrap();
        assert!(moved.iter().all(|&x| x < 0.5), "the parameter did not move");
    }

    /// A gradient laid out as Burn's backward gives a convolution weight's (its first two
    /// axes swapped) steps the parameter exactly as the same values in row-major order,
    /// step after step, on a tensor of two chunks of the CPU loops (the boundary inside a
    /// 3 x 3 run).
    #[test]
    fn a_permuted_gradient_steps_as_a_row_major_one() {
        use burn::tensor::backend::Backend;
        use burn::tensor::{Distribution, TensorData};
        let device = Default::default();
        let optim = LambConfig::new().with_weight_decay(1e-2).build();
        let shape = [64, 96, 3, 3];
        let values: Vec<f32> = (0..64 * 96 * 9).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |permuted: bool| {
            let mut param =
                Tensor::<B, 4>::from_data(TensorData::new(values.clone(), shape), &device);
            let mut state = None;
            for k in 0..3 {
                B::seed(&device, k);
                let normal = Distribution::Normal(0.0, 1.0);
                let grad = Tensor::<B, 4>::random([96, 64, 3, 3], normal, &device).swap_dims(0, 1);
                assert!(!super::unwrap::<f32, B, 4>(grad.clone()).is_standard_layout());
                let grad = if permuted {
                    grad
                } else {
                    Tensor::from_data(grad.into_data(), &device)
                };
                (param, state) = SimpleOptimizer::<B>::step(&optim, 1e-2, param, grad, state);
            }
            param.into_data().to_vec::<f32>().unwrap()
        };
        let (permuted, row_major) = (run(true), run(false));
        assert_ne!(permuted, values, "the parameter moved");
        assert!(
            permuted
                .iter()
                .zip(&row_major)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "a permuted gradient stepped differently"
        );
    }
}
