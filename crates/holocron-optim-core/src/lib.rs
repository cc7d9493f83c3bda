//! The numerics of [holocron-optim](https://docs.rs/holocron-optim), without Burn: each
//! optimizer's update rule written once and instantiated three ways, so that every Burn
//! version's crate computes the same update from the same source.
//!
//! - **CPU loops**: the rules' phases are plain Rust functions generic over [`Arith`],
//!   instantiated for `f32` and `f64` ([`Real`]) by a Burn crate's in-place loops over a
//!   tensor's buffers ([`Rule`]'s methods on lanes), run in parallel chunks, each compiled
//!   for the CPU's widest instruction set, by [`cpu`] (for both Burn crates' ndarray
//!   backends).
//! - **Device tensors**: the same functions instantiated for [`tensor::Lazy`], whose every
//!   operation is an operation of the backend's tensors ([`tensor::DeviceTensor`], which a
//!   Burn crate implements); [`OptimizerRule::step_tensors`] runs one optimizer step that
//!   way on any backend.
//! - **CubeCL kernels**: [`kernels!`] writes the same phases as `#[cube]` functions in the
//!   crate that expands it, compiled with that crate's CubeCL (each Burn release has its
//!   own; the rule is shared, the compiled kernel is not).
//!
//! Beside the rules: each optimizer's hyperparameters (one list per optimizer, from which
//! both this crate's hyperparameter structs and the Burn crates' configurations are
//! written, see [`hyper`]), their validation ([`Checker`], [`ConfigError`]) and the
//! coefficients of each step; which path a step may take and which it took
//! ([`execution`]).
//!
//! The equations, and where they differ from holocron's code, are in the Burn crates' docs
//! and in `docs/numerics.md` of the repository.
//!
//! ```
//! use holocron_optim_core::OptimizerRule;
//! use holocron_optim_core::rules::adabelief::AdaBelief;
//!
//! let rule = AdaBelief { amsgrad: true, ..AdaBelief::default() };
//! assert_eq!(rule.state_names(), ["moment_1", "moment_2", "max_moment_2"]);
//! assert!(AdaBelief { beta_1: 1.0, ..rule }.validate("AdaBeliefConfig").is_err());
//! ```

#![warn(missing_docs)]

pub mod arith;
pub mod cpu;
#[doc(hidden)]
pub mod dual;
mod error;
pub mod execution;
#[macro_use]
pub mod hyper;
pub mod passes;
pub mod rule;
pub mod rules;
pub mod tensor;

pub use arith::{Arith, Real};
pub use error::{Checker, ConfigError, check_learning_rate, check_sync};
pub use execution::{Execution, StepPath, StepPaths, step_paths};
pub use hyper::OptimizerRule;
pub use rule::Rule;

/// Writes the CubeCL side of every rule in the module where it is expanded: a `prelude`
/// of the comparisons the rule bodies use, the `CubeRule` trait, the `blocks` and `sums`
/// modules, one module per rule (`adabelief`, `adamp`, `adan`, `ademamix`, `lamb` (LAMB and
/// RaLars's trust rule), `lars`, `tadam`) with its structs, phases and the `CubeRule`
/// implementation for this crate's rule type, and `passes`, the kernels a crate launches
/// (the summing and update passes of any rule, the fold of partial sums, the wrappers'
/// sync, Scout's coherence; their grid is in [`passes`]).
///
/// The kernels are written once for the CubeCL of both Burn versions; what differs between
/// them the expanding crate says:
/// - `cubecl` as a dependency, under that name;
/// - `Lane<F>` in the expanding module: the type of a kernel's array of `F`, `Array<F>` in
///   CubeCL 0.10 (Burn 0.21), `Box<[F]>` in CubeCL 0.11 (Burn 0.22), whose kernels take
///   slices where CubeCL 0.10's took arrays;
/// - `shared_lane::<F>(len)` in the expanding module, a `#[cube]` function giving a cube's
///   shared memory of `len` `F`s (`SharedMemory::<F>::new` in CubeCL 0.10,
///   `Shared::<[F]>::new_slice` in CubeCL 0.11);
/// - a `cube_struct!` macro in scope that writes a struct of `Float` fields as its CubeCL
///   derives it: `#[derive(CubeType, Clone, Copy)]`, and with CubeCL 0.11 also
///   `#[cube(derive(Clone, Copy))]`, since it moves expanded values rather than cloning
///   them, and the rule bodies use a struct more than once.
///
/// ```text
/// macro_rules! cube_struct {
///     ($($item:tt)*) => {
///         #[derive(CubeType, Clone, Copy)]
///         $($item)*
///     };
/// }
/// mod kernels {
///     use cubecl::prelude::*;
///     pub type Lane<F> = Array<F>;
///     #[cube]
///     pub fn shared_lane<F: Float>(#[comptime] len: usize) -> SharedMemory<F> {
///         SharedMemory::<F>::new(len)
///     }
///     holocron_optim_core::kernels!();
/// }
/// ```
///
/// The rule macros call the phases as `self::phase::<F>(..)`: CubeCL 0.11 writes its
/// expansion context with the span of a call's first token, which must come from the
/// macro that also writes the function around the call.
#[macro_export]
macro_rules! kernels {
    () => {
        /// The comparisons of the rule bodies, as kernel functions, and the expanding
        /// crate's array type.
        pub mod prelude {
            pub use super::Lane;
            use cubecl::prelude::*;

            /// `a < b`.
            #[cube]
            pub fn less<F: Float>(a: F, b: F) -> bool {
                a < b
            }

            /// `a == b`.
            #[cube]
            pub fn equals<F: Float>(a: F, b: F) -> bool {
                a == b
            }

            /// `a || b`.
            #[cube]
            #[allow(unused_variables)]
            pub fn either<F: Float>(a: bool, b: bool) -> bool {
                a || b
            }
        }

        use cubecl::prelude::*;
        use sums::Sums;
        $crate::cube_rule_trait!();

        /// The element-wise blocks.
        pub mod blocks {
            $crate::__rule_blocks!(cube);
        }
        /// The sums of a summing pass.
        pub mod sums {
            $crate::__rule_sums!(cube);
        }
        /// AdaBelief.
        pub mod adabelief {
            $crate::__rule_adabelief!(cube);
        }
        /// AdamP.
        pub mod adamp {
            $crate::__rule_adamp!(cube);
        }
        /// Adan.
        pub mod adan {
            $crate::__rule_adan!(cube);
        }
        /// AdEMAMix.
        pub mod ademamix {
            $crate::__rule_ademamix!(cube);
        }
        /// LAMB and RaLars.
        pub mod lamb {
            $crate::__rule_trust!(cube);
        }
        /// LARS.
        pub mod lars {
            $crate::__rule_lars!(cube);
        }
        /// TAdam.
        pub mod tadam {
            $crate::__rule_tadam!(cube);
        }
        /// The kernels: one generic kernel per pass, instantiated for each rule through its
        /// `CubeRule` implementation, plus the wrappers' sync and Scout's coherence
        /// ([`passes`]($crate::passes) has their grid).
        pub mod passes {
            use super::Lane;
            use super::shared_lane;
            $crate::__kernel_passes!();
        }
    };
}
