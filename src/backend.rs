//! The one place where a cargo feature picks the backend of the tests and examples:
//! `--features cuda` (an NVIDIA GPU), else `--features wgpu` (any Vulkan, Metal or DX12
//! device; Mesa's lavapipe gives one on a CPU), else `--features dispatch` (Burn's
//! `Dispatch` backend over ndarray and Flex: two distinct CPU devices, for the multi-device
//! tests only), else ndarray (the default).
//!
//! The library itself is generic over every Burn backend; only the tests and examples need
//! to choose one.

#[cfg(feature = "cuda")]
mod chosen {
    /// The f32 backend.
    pub type Backend = burn::backend::Cuda<f32>;
    /// The f64 backend, where the chosen backend has f64 (ndarray, CUDA).
    pub type Backend64 = burn::backend::Cuda<f64>;
    /// The backend's name, for reports.
    pub const NAME: &str = "cuda";
}

#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
mod chosen {
    /// The f32 backend.
    pub type Backend = burn::backend::Wgpu<f32>;
    /// The backend's name, for reports.
    pub const NAME: &str = "wgpu";
}

#[cfg(all(feature = "dispatch", not(any(feature = "wgpu", feature = "cuda"))))]
mod chosen {
    /// Burn's `Dispatch` backend, its devices those of ndarray and of Flex.
    pub type Backend = burn::Dispatch;
    /// The backend's name, for reports.
    pub const NAME: &str = "dispatch (ndarray, flex)";
}

#[cfg(not(any(feature = "wgpu", feature = "cuda", feature = "dispatch")))]
mod chosen {
    /// The f32 backend.
    pub type Backend = burn::backend::NdArray<f32>;
    /// The f64 backend, where the chosen backend has f64 (ndarray, CUDA).
    pub type Backend64 = burn::backend::NdArray<f64>;
    /// The backend's name, for reports.
    pub const NAME: &str = "ndarray";
}

pub use chosen::*;

/// The chosen f32 backend with automatic differentiation, as optimizers need it.
pub type Autodiff = burn::backend::Autodiff<Backend>;

/// Whether the chosen backend has an f64 variant ([`Backend64`] exists).
pub const HAS_F64: bool = cfg!(any(
    feature = "cuda",
    not(any(feature = "wgpu", feature = "dispatch"))
));

/// `n` devices of the chosen backend for Burn's multi-device training strategies:
///
/// - ndarray: the one CPU device, `n` times (Burn runs one worker thread per entry; the
///   devices' gradients and steps take the multi-device code paths, on one memory);
/// - WGPU: the default device, `n` times, likewise. Two distinct WGPU devices cannot train
///   together on Burn 0.21: moving a tensor between them (`to_device`) goes through CubeCL
///   0.10's server-to-server transfer, which only its CUDA server implements (the WGPU
///   server's `comm_init` and `send` are `unimplemented!()`), so the first gradient moved
///   to the main device panics;
/// - Dispatch: the ndarray device and the Flex device, two CPU devices with their own
///   tensors (an operation on tensors of both panics, as on two GPUs); at most 2;
/// - CUDA: GPUs `0..n`.
///
/// # Panics
///
/// On Dispatch for `n > 2`.
pub fn devices(n: usize) -> Vec<burn::tensor::Device<Backend>> {
    #[cfg(feature = "cuda")]
    return (0..n).map(burn::backend::cuda::CudaDevice::new).collect();
    #[cfg(all(feature = "dispatch", not(any(feature = "wgpu", feature = "cuda"))))]
    {
        use burn::DispatchDevice;
        assert!(n <= 2, "the Dispatch tests have 2 devices, not {n}");
        let both = [
            DispatchDevice::NdArray(Default::default()),
            DispatchDevice::Flex(Default::default()),
        ];
        return both[..n].to_vec();
    }
    #[cfg(not(any(feature = "cuda", feature = "dispatch")))]
    vec![Default::default(); n]
}
