//! Optimizers from [holocron.optim](https://github.com/frgfm/Holocron) for the
//! [Burn](https://burn.dev) deep-learning framework, version 0.22.
//!
//! Each optimizer has a `#[derive(Config)]` configuration whose `init()` returns Burn's
//! [`ModuleOptimizer`](burn::optim::ModuleOptimizer), exactly like
//! `burn::optim::AdamConfig`, so it drops into a Burn training loop or `Learner`:
//!
//! | optimizer | configuration | paper |
//! |---|---|---|
//! | [`Lars`] | [`LarsConfig`] | [LARS](https://arxiv.org/abs/1708.03888) |
//! | [`Lamb`] | [`LambConfig`] | [LAMB](https://arxiv.org/abs/1904.00962) |
//! | [`RaLars`] | [`RaLarsConfig`] | [RAdam](https://arxiv.org/abs/1908.03265) + LARS |
//! | [`TAdam`] | [`TAdamConfig`] | [TAdam](https://arxiv.org/abs/2003.00179) |
//! | [`AdaBelief`] | [`AdaBeliefConfig`] | [AdaBelief](https://arxiv.org/abs/2010.07468) |
//! | [`AdamP`] | [`AdamPConfig`] | [AdamP](https://arxiv.org/abs/2006.08217) |
//! | [`Adan`] | [`AdanConfig`] | [Adan](https://arxiv.org/abs/2208.06677) |
//! | [`AdEMAMix`] | [`AdEMAMixConfig`] | [AdEMAMix](https://arxiv.org/abs/2409.03137) |
//!
//! The update rules are those of [`holocron_optim_core`], the numerics this crate shares with
//! the crate for Burn 0.21 (`holocron-optim`): every optimizer is a [`RuleOptimizer`] over
//! its core rule. On Burn's CPU backends (Flex and ndarray, `f32` and `f64`) a step runs the
//! core's fused CPU loops, the 0.21 crate's own: one in-place pass over the parameter and
//! its state (two for the rules with whole-tensor sums), over rayon's threads, each chunk
//! compiled for the CPU's widest instruction set ([`vectorization`]), with the same bits
//! under any thread count. On Burn's CubeCL backend (`f32`, the `wgpu` and `cuda` features;
//! with Burn's operation fusion through the `fusion` feature) it runs the rules' CubeCL
//! kernels, from the same source as the 0.21 crate's, in place too (on CUDA only with
//! [`Execution::Fused`], as they have not run there yet). Elsewhere (other dtypes, other
//! backends) it runs as Burn tensor operations on the parameter's device, in its dtype, the
//! parameter, its gradient and its state flattened to one dimension ([`flat::FlatTensor`]).
//! No path reads a value back to the host. A configuration's `execution` field ([`Execution`]) picks the path, and
//! [`step_paths`] counts which one each step took.
//!
//! Two wrappers take any Burn 0.22 [`Optimizer`](burn::optim::Optimizer) (one of the above
//! from its configuration's `build()`, or Burn's own): [`Lookahead`] ([`LookaheadConfig`])
//! and [`Scout`] ([`ScoutConfig`]). Both are per-parameter optimizers themselves, whose state
//! ([`SlowState`]) holds the inner state, the slow weights and Scout's window, so they go
//! into `ModuleOptimizer`, its parameter groups and a `Learner` as well.
//!
//! A configuration with a hyperparameter out of range is refused with a [`ConfigError`]
//! naming the field, the value and the allowed range (`validate`, `try_build`,
//! `try_init`). Hyperparameters are `f64`: the step's scalars are computed on the host in
//! double precision.
//!
//! The state of each parameter ([`RuleState`]) saves and loads with Burn's optimizer records
//! (`ModuleOptimizer::to_record`, `load_record`, `save`, `load`): its step count and one
//! tensor per state lane, each in its dtype, so that a run resumed from a record continues
//! bit for bit as the uninterrupted run.
//!
//! # Example
//!
//! ```
//! use burn::module::{Module, Param};
//! use burn::optim::GradientsParams;
//! use burn::tensor::{Device, Tensor};
//! use holocron_optim_burn022::LambConfig;
//!
//! #[derive(Module, Debug)]
//! struct Model {
//!     weight: Param<Tensor<1>>,
//! }
//!
//! let device = Device::default().autodiff();
//! let mut model = Model {
//!     weight: Param::from_tensor(Tensor::from_floats([3.0, -2.0], &device)),
//! };
//! let mut optim = LambConfig::new().init();
//! let steps = 300;
//! for step in 0..steps {
//!     // Minimise ‖w - 1‖².
//!     let loss = model.weight.val().sub_scalar(1.0).square().sum();
//!     let grads = GradientsParams::from_grads(loss.backward(), &model);
//!     // LAMB's steps have length lr * ‖w‖, so the rate decays to land on the minimum.
//!     let lr = 0.05 * (1.0 - step as f64 / steps as f64);
//!     model = optim.step(lr, model, grads);
//! }
//! let w: Vec<f32> = model.weight.val().try_into_vec_as().unwrap();
//! assert!(w.iter().all(|x| (x - 1.0).abs() < 0.01), "{w:?}");
//! ```

#![deny(missing_docs)]

#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod cube;
pub mod flat;
mod fused;
mod optim;
pub mod state;
mod wrapper;

pub use holocron_optim_core;
pub use holocron_optim_core::cpu::isa::{VECTORIZATION_VAR, Vectorization, vectorization};
pub use holocron_optim_core::{
    ConfigError, Execution, OptimizerRule, StepPath, StepPaths, step_paths,
};
pub use optim::*;
pub use state::RuleState;
pub use wrapper::{
    Lookahead, LookaheadConfig, LookaheadSync, Rate, Scout, ScoutConfig, ScoutSync, SlowState,
    SyncRule, Wrapper,
};
