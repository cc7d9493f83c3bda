//! Optimizers from [holocron.optim](https://github.com/frgfm/Holocron) for the
//! [Burn](https://burn.dev) deep-learning framework.
//!
//! Each optimizer has a `#[derive(Config)]` configuration whose `init()` returns Burn's
//! [`OptimizerAdaptor`](burn::optim::adaptor::OptimizerAdaptor), exactly like
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
//! The optimizers are built from the shared [`blocks`] (moments with AMSGrad, bias
//! correction, weight decay, trust ratio, rectification, projection). A configuration
//! with a hyperparameter out of range is refused with a [`ConfigError`] naming the field,
//! the value and the allowed range.
//!
//! Hyperparameters are `f64`: the step's scalars are computed on the host in double
//! precision, and every tensor operation stays on the device.
//!
//! Each optimizer's update rule is written once and runs three ways, chosen by the
//! configuration's [`Execution`] (default [`Execution::Auto`]):
//!
//! - on Burn's ndarray backend (this crate's default `ndarray` feature), a fused step: the
//!   buffers are updated in place in one or two multi-threaded passes, without
//!   parameter-sized temporaries;
//! - with the `wgpu` or `cuda` feature, CubeCL kernels of this crate, in `f32`, with or
//!   without Burn's operation fusion (`Fusion<CubeBackend>`, which Burn's default features
//!   build), which `Auto` uses on both;
//! - Burn's composed tensor operations everywhere else, and with [`Execution::Composed`].
//!
//! All compute the same update; [`step_paths`] tells which path steps took.
//!
//! The optimizers and wrappers run under Burn's multi-device training strategies too; the
//! `distributed` feature (Burn's, with `wgpu` or `cuda`) keeps Burn's data-parallel mark on
//! parameters through the wrappers' syncs, and the `collective` feature adds
//! `ZeroRedundancy`, the optimizer state sharded across data-parallel workers (ZeRO stage
//! 1). The repository's `docs/multi-device.md` says what runs where.
//!
//! # Example
//!
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use burn::module::{Module, Param};
//! use burn::optim::{GradientsParams, Optimizer};
//! use burn::tensor::Tensor;
//! use burn::optim::lr_scheduler::LrScheduler;
//! use holocron_optim::{LambConfig, PolynomialLrSchedulerConfig};
//!
//! type B = Autodiff<NdArray>;
//!
//! #[derive(Module, Debug)]
//! struct Model<B: burn::tensor::backend::Backend> {
//!     weight: Param<Tensor<B, 1>>,
//! }
//!
//! let device = Default::default();
//! let mut model = Model::<B> {
//!     weight: Param::from_tensor(Tensor::from_floats([3.0, -2.0], &device)),
//! };
//! let mut optim = LambConfig::new().init::<B, Model<B>>();
//! // LAMB's steps have length lr * ‖w‖, so the rate decays to land on the minimum.
//! let mut schedule = PolynomialLrSchedulerConfig::new(0.05, 300).init().unwrap();
//! for _ in 0..300 {
//!     // Minimise ‖w - 1‖².
//!     let loss = model.weight.val().sub_scalar(1.0).square().sum();
//!     let grads = GradientsParams::from_grads(loss.backward(), &model);
//!     model = optim.step(schedule.step(), model, grads);
//! }
//! let w: Vec<f32> = model.weight.val().into_data().to_vec().unwrap();
//! assert!(w.iter().all(|x| (x - 1.0).abs() < 0.01), "{w:?}");
//! ```

#![warn(missing_docs)]

pub mod blocks;
pub mod checkpoint;
pub(crate) mod error;
// Without the `ndarray` feature no backend reaches the fused kernels.
#[cfg_attr(not(feature = "ndarray"), allow(dead_code))]
mod fused;
mod optim;
mod rule;
mod schedule;
mod wrapper;

pub use error::ConfigError;
pub use holocron_optim_core::cpu::isa::{VECTORIZATION_VAR, Vectorization, vectorization};
pub use holocron_optim_core::execution::{Execution, StepPath, StepPaths, step_paths};
pub use optim::*;
pub use schedule::{PolynomialLrScheduler, PolynomialLrSchedulerConfig};
#[cfg(feature = "collective")]
pub use wrapper::{GradientReduction, ShardState, ZeroRedundancy, ZeroRedundancyConfig};
pub use wrapper::{Lookahead, LookaheadConfig, LookaheadRecord, Scout, ScoutConfig, ScoutRecord};

/// Burn's collective operations (`burn-collective`, the version this crate uses), with
/// which every [`ZeroRedundancy`] worker registers.
#[cfg(feature = "collective")]
pub use burn_collective as collective;
