//! The rules, from `holocron-optim-core`: written once there for the CPU loops (generic
//! over the element type) and the kernels, whose `#[cube]` side is expanded here with the
//! CubeCL of Burn 0.21 ([`kernels`]).

pub(crate) use holocron_optim_core::{Real, Rule};

/// How CubeCL 0.10 derives the kernels' structs (`kernels!` writes each one through this).
#[cfg(any(feature = "wgpu", feature = "cuda"))]
macro_rules! cube_struct {
    ($($item:tt)*) => {
        #[derive(CubeType, Clone, Copy)]
        $($item)*
    };
}

/// Every rule's kernel side, compiled with this crate's CubeCL.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
#[allow(missing_docs, dead_code, clippy::too_many_arguments)]
pub(crate) mod kernels {
    use cubecl::prelude::*;

    /// A kernel's array in CubeCL 0.10.
    pub type Lane<F> = Array<F>;

    /// A cube's shared memory of `len` elements in CubeCL 0.10.
    #[cube]
    pub fn shared_lane<F: Float>(#[comptime] len: usize) -> SharedMemory<F> {
        SharedMemory::<F>::new(len)
    }

    holocron_optim_core::kernels!();
}
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub(crate) use kernels::CubeRule;

/// A [`Rule`] with its kernels where the GPU features are on.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub(crate) trait FusedRule: Rule + CubeRule {}
#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl<R: Rule + CubeRule> FusedRule for R {}
/// A [`Rule`] with its kernels where the GPU features are on.
#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
pub(crate) trait FusedRule: Rule {}
#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
impl<R: Rule> FusedRule for R {}
