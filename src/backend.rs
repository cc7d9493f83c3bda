//! The one place where a cargo feature picks the backend of the tests and examples:
//! `--features cuda` (an NVIDIA GPU), else `--features wgpu` (any Vulkan, Metal or DX12
//! device; Mesa's lavapipe gives one on a CPU), else ndarray (the default).
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

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
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
pub const HAS_F64: bool = cfg!(any(feature = "cuda", not(feature = "wgpu")));
