//! The bridge to Burn's operation fusion (`Fusion<CubeBackend>`, what Burn's default
//! features build for WGPU and CUDA): a fusion tensor is a handle into a stream of queued
//! operations. The kernels take their tensors out of the stream once the operations that
//! produce them have been dispatched (nothing is read back to the host), and hand their
//! results back to the stream as new tensors.

use core::any::TypeId;

use burn_cubecl::fusion::FusionCubeRuntime;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{CubeBackend, CubeRuntime};
use burn_fusion::stream::OperationStreams;
use burn_fusion::{FusionTensor, NoOp};
use burn_ir::{BackendIr, InitOperationIr, OperationIr, OperationOutput};

/// The fusion backend's inner backend. Its element types do not matter here: they only
/// give the default dtypes, and every tensor carries its own.
type Inner<R> = CubeBackend<R, f32, i32, u32>;

/// A fusion tensor over the runtime `R`.
pub(super) type Fused<R> = FusionTensor<FusionCubeRuntime<R>>;

/// Whether `primitive` is the float primitive of `Fusion<CubeBackend<R, ..>>`.
pub(super) fn is_fused<R: CubeRuntime>(primitive: TypeId) -> bool {
    primitive == TypeId::of::<Fused<R>>()
}

/// The tensor's buffer, after the queued operations it depends on have been dispatched.
/// A tensor that nothing else holds leaves the stream, so its buffer can be written in
/// place; a shared one stays there, and [`super::writable`] copies it.
pub(super) fn resolve<R: CubeRuntime>(tensor: Fused<R>) -> CubeTensor<R> {
    let client = tensor.client.clone();
    client.resolve_tensor_float::<Inner<R>>(tensor)
}

/// The buffer as a new tensor of the stream.
pub(super) fn register<R: CubeRuntime>(tensor: CubeTensor<R>) -> Fused<R> {
    let client = burn_fusion::get_client::<Inner<R>>(&tensor.device);
    let (shape, dtype) = (tensor.meta.shape().clone(), tensor.dtype);
    let handle = <Inner<R> as BackendIr>::float_tensor_handle(tensor);
    let init = InitOperationIr::create(shape, dtype, || client.register_tensor_handle(handle));
    client
        .register(
            OperationStreams::default(),
            OperationIr::Init(init),
            NoOp::<Inner<R>>::new(),
        )
        .output()
}
