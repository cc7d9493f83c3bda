//! Buffers as kernel arguments, with the lengths the kernels may index checked once, here.

use burn_cubecl::CubeRuntime;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::rule::kernels::passes::finish_sums_kernel;
use holocron_optim_core::passes::{self as sums, SUMS, UNITS};

/// A device buffer of `len` `f32`s, handed to kernels as an array of that length.
pub(super) struct Buffer {
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
    pub fn of<R: CubeRuntime>(t: &CubeTensor<R>, len: usize) -> Self {
        assert_eq!(
            t.dtype,
            burn::tensor::DType::F32,
            "kernels run on f32 buffers"
        );
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
    pub fn empty<R: CubeRuntime>(client: &ComputeClient<R>, len: usize) -> Self {
        Self {
            handle: client.empty(len * size_of::<f32>()),
            len,
        }
    }

    /// A buffer holding `values`, rounded to `f32`.
    pub fn from_values<R: CubeRuntime>(client: &ComputeClient<R>, values: &[f64]) -> Self {
        let values: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        Self {
            handle: client.create_from_slice(f32::as_bytes(&values)),
            len: values.len(),
        }
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The buffer as a kernel's array.
    pub fn arg<R: CubeRuntime>(&self) -> ArrayArg<R> {
        // SAFETY: every constructor holds at least `len` f32s: `of` checks the tensor's
        // buffer size, `empty` and `from_values` allocate exactly that many.
        unsafe { ArrayArg::from_raw_parts(self.handle.clone(), self.len) }
    }
}

/// The grids of the launches over one tensor of `n` elements.
pub(super) struct Grid<R: CubeRuntime> {
    pub client: ComputeClient<R>,
    pub n: usize,
}

impl<R: CubeRuntime> Grid<R> {
    pub fn new(client: &ComputeClient<R>, n: usize) -> Self {
        Self {
            client: client.clone(),
            n,
        }
    }

    /// One unit per element.
    pub fn each(&self) -> (CubeCount, CubeDim) {
        let cube_dim = CubeDim::new(&self.client, self.n);
        let cube_count = cubecl::calculate_cube_count_elemwise(&self.client, self.n, cube_dim);
        (cube_count, cube_dim)
    }

    /// Runs a summing pass (`pass` gets its grid and the per-cube partial sums to write),
    /// then folds the partial sums into the [`SUMS`] totals that an update pass reads.
    pub fn summed(&self, pass: impl FnOnce(CubeCount, CubeDim, ArrayArg<R>)) -> Buffer {
        let cubes = sums::cubes(self.n);
        let partials = Buffer::empty(&self.client, cubes * SUMS);
        let cube_dim = CubeDim::new_1d(UNITS as u32);
        pass(
            CubeCount::Static(cubes as u32, 1, 1),
            cube_dim,
            partials.arg(),
        );
        let totals = Buffer::empty(&self.client, SUMS);
        finish_sums_kernel::launch::<f32, R>(
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
