//! Which implementation runs a step: the choice a configuration makes ([`Execution`]) and
//! what actually ran ([`StepPath`], counted per thread by [`step_paths`]).

use core::cell::Cell;

use serde::{Deserialize, Serialize};

/// Where an optimizer step or a wrapper's sync may run.
///
/// Every path computes the same update (the golden tests hold each one to the Python
/// reference); they differ in speed and memory:
///
/// - the **composed** path is Burn's tensor operations, on any backend and dtype, one
///   fresh buffer per operation;
/// - the **CPU loops** ([`crate::cpu`]) update the buffers of Burn's ndarray backend (and,
///   on Burn 0.22, of Flex) in
///   place, in one or two multi-threaded passes (`f32` and `f64`);
/// - the **kernels** are the rules' CubeCL kernels on WGPU and CUDA (`f32`), with or
///   without Burn's operation fusion (on Burn 0.22, `holocron-optim-burn022`, with fusion
///   through that crate's `fusion` feature).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Execution {
    /// The fused path where this project's tests have run it: the CPU loops on ndarray and Flex,
    /// the kernels on WGPU (in every CI run, on Mesa's software Vulkan, both Burn versions)
    /// and on CUDA with Burn 0.21 (on an NVIDIA H200; CI has no GPU, see
    /// `docs/backends.md`). On Burn 0.22, CUDA takes the kernels only with [`Self::Fused`]
    /// until they have run there.
    #[default]
    Auto,
    /// Burn's composed tensor operations, always.
    Composed,
    /// The fused path wherever one exists: the CPU loops on ndarray and Flex, the kernels on WGPU
    /// and CUDA. Tensors no fused path takes (another dtype, another backend) still run
    /// the composed operations.
    Fused,
}

impl Execution {
    /// Whether the CPU loops may run.
    pub fn loops(self) -> bool {
        self != Execution::Composed
    }
}

/// The implementation one step ran on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepPath {
    /// Burn's composed tensor operations.
    Composed,
    /// The in-place CPU loops on Burn's ndarray backend (or Flex).
    CpuLoops,
    /// This crate's CubeCL kernels.
    Kernels,
}

/// How many optimizer steps (one per parameter tensor) ran on each path on this thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepPaths {
    /// Steps on Burn's composed operations.
    pub composed: usize,
    /// Steps on the CPU loops.
    pub cpu_loops: usize,
    /// Steps on the kernels.
    pub kernels: usize,
}

impl StepPaths {
    /// The steps counted since `earlier` (a value this function returned before).
    pub fn since(self, earlier: StepPaths) -> StepPaths {
        StepPaths {
            composed: self.composed - earlier.composed,
            cpu_loops: self.cpu_loops - earlier.cpu_loops,
            kernels: self.kernels - earlier.kernels,
        }
    }

    /// The number of steps on `path`.
    pub fn on(self, path: StepPath) -> usize {
        match path {
            StepPath::Composed => self.composed,
            StepPath::CpuLoops => self.cpu_loops,
            StepPath::Kernels => self.kernels,
        }
    }
}

thread_local! {
    static PATHS: Cell<StepPaths> = const {
        Cell::new(StepPaths { composed: 0, cpu_loops: 0, kernels: 0 })
    };
}

/// The optimizer steps run on this thread so far, by path: take it before and after some
/// steps and compare ([`StepPaths::since`]) to see which path they took.
///
/// ```
/// use holocron_optim_core::execution::{StepPath, count, step_paths};
///
/// let before = step_paths();
/// count(StepPath::CpuLoops);
/// assert_eq!(step_paths().since(before).on(StepPath::CpuLoops), 1);
/// assert_eq!(step_paths().since(before).on(StepPath::Composed), 0);
/// ```
pub fn step_paths() -> StepPaths {
    PATHS.with(Cell::get)
}

/// Counts one step on `path` (called by the Burn crates as each step runs).
pub fn count(path: StepPath) {
    PATHS.with(|paths| {
        let mut p = paths.get();
        match path {
            StepPath::Composed => p.composed += 1,
            StepPath::CpuLoops => p.cpu_loops += 1,
            StepPath::Kernels => p.kernels += 1,
        }
        paths.set(p);
    });
}
