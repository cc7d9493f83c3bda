//! Burn tensors to CubeCL buffers and back, with or without Burn's operation fusion.

use core::any::{Any, TypeId};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorPrimitive};
use burn_cubecl::CubeRuntime;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;

use super::fusion;

/// The tensor's CubeCL primitive (out of the fusion stream, on a fusion backend).
pub(super) fn take<B: Backend, R: CubeRuntime, const D: usize>(t: Tensor<B, D>) -> CubeTensor<R> {
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
pub(super) fn give<B: Backend, R: CubeRuntime, const D: usize>(t: CubeTensor<R>) -> Tensor<B, D> {
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

/// The tensor made contiguous, and copied if another tensor shares its buffer: as on
/// ndarray, so that a kernel runs in every case and a run does not depend on who holds
/// what.
///
/// The copy is this module's own kernel, not `CubeTensor::copy`: on CUDA (an H200,
/// 2026-12-04) a parameter that a wrapper's window or slow weights shared came out of
/// `CubeTensor::copy` with other values, and the step that followed diverged from the
/// composed one; WGPU's copy was right.
pub(super) fn writable<R: CubeRuntime>(t: CubeTensor<R>) -> CubeTensor<R> {
    let t = into_contiguous(t);
    if t.can_mut() { t } else { super::copied(&t) }
}
