//! The same initial parameters and gradients, stepped on ndarray and on the GPU backend
//! chosen by cargo feature (`--features wgpu` or `--features cuda`), give the same
//! trajectory within the f32 tolerance, for every optimizer and flag and both wrappers.
//!
//! Compiled only with a GPU backend feature: on ndarray alone there is nothing to compare.
#![cfg(all(feature = "ndarray", any(feature = "wgpu", feature = "cuda")))]

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::AutodiffBackend;
use common::{ParamSet, WithOptimizer, Wrap, gradients, mixed_grads, mixed_params};
use holocron_optim::checkpoint::CheckedRecord;
use holocron_optim_suite::backend;
use rstest::rstest;

type Cpu = Autodiff<NdArray<f32>>;
type Gpu = backend::Autodiff;

const STEPS: usize = 20;
/// The golden tests' f32 tolerance (docs/numerics.md), relative to `max(|value|, 1e-2)`.
const TOL: f64 = 2e-4;

/// Every value of every parameter after every step; parameter 2 never gets a gradient.
struct Trajectory;

impl<B: AutodiffBackend> WithOptimizer<B, ParamSet<B>> for Trajectory {
    type Output = Vec<Vec<f64>>;

    fn run<O: CheckedRecord<ParamSet<B>, B>>(self, mut optim: O) -> Self::Output {
        let device = Default::default();
        let (mut set, slots, shapes) = mixed_params::<B>(&device);
        let mut out = vec![];
        for k in 0..STEPS {
            let mut grads = mixed_grads(&shapes, k);
            grads[2] = None;
            let grads = gradients(&set, &slots, &shapes, &grads, &device);
            set = optim.step(0.01, set, grads);
            out.push(slots.iter().flat_map(|s| set.values(*s)).collect());
        }
        out
    }
}

#[rstest]
fn same_trajectory_on_ndarray_and_gpu(
    #[values(
        "lars",
        "lars_momentum",
        "lars_nesterov",
        "lamb",
        "ralars",
        "tadam",
        "tadam_amsgrad",
        "adabelief_amsgrad",
        "adamp_amsgrad",
        "adan",
        "adan_amsgrad",
        "ademamix",
        "lookahead_lamb",
        "scout_adabelief"
    )]
    name: &str,
) {
    let (config, wrapper) = common::flagged_case(name);
    let cpu = config.with::<Cpu, _, _>(Wrap {
        wrapper: wrapper.clone(),
        job: Trajectory,
    });
    let gpu = config.with::<Gpu, _, _>(Wrap {
        wrapper,
        job: Trajectory,
    });
    let mut worst = 0.0f64;
    for (step, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        for (x, y) in c.iter().zip(g) {
            let err = (x - y).abs() / x.abs().max(1e-2);
            assert!(
                err <= TOL,
                "{name}: step {}: ndarray {x} vs {} {y}",
                step + 1,
                backend::NAME
            );
            worst = worst.max(err);
        }
    }
    println!(
        "{name}: ndarray vs {}: max rel gap {worst:.2e}",
        backend::NAME
    );
}
