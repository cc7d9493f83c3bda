//! Which CubeCL runtime a Burn backend runs on, from its float tensor type.

use core::any::TypeId;

use burn::tensor::backend::Backend;
use burn_cubecl::CubeRuntime;
use burn_cubecl::tensor::CubeTensor;

use super::fusion;

/// The runtimes this crate launches kernels on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Runtime {
    #[cfg(feature = "wgpu")]
    Wgpu,
    #[cfg(feature = "cuda")]
    Cuda,
}

/// The runtime of `B`: a `CubeBackend` or a `Fusion<CubeBackend>` over WGPU or CUDA.
pub(super) fn runtime<B: Backend>() -> Option<Runtime> {
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

/// Whether `primitive` is the float primitive of a backend over the runtime `R`.
#[cfg_attr(not(all(feature = "wgpu", feature = "cuda")), allow(dead_code))]
fn is_primitive_of<R: CubeRuntime>(primitive: TypeId) -> bool {
    fusion::is_fused::<R>(primitive) || primitive == TypeId::of::<CubeTensor<R>>()
}
