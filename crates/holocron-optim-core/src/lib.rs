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
/// modules, and one module per rule (`adabelief`, `adamp`, `adan`, `ademamix`, `lamb`
/// (LAMB and RaLars's trust rule), `lars`, `tadam`) with its structs, phases and the
/// `CubeRule` implementation for this crate's rule type. The expanding crate needs
/// `cubecl` as a dependency, under that name, and a `cube_struct!` macro in scope that
/// writes a struct of `Float` fields as its CubeCL derives it: CubeCL 0.10 (Burn 0.21)
/// with `#[derive(CubeType, Clone, Copy)]`; CubeCL 0.11 (Burn 0.22) needs
/// `#[cube(derive(Clone, Copy))]` as well, since its expanded values are moved rather than
/// cloned, and the rule bodies use a struct more than once.
///
/// ```text
/// macro_rules! cube_struct {
///     ($($item:tt)*) => {
///         #[derive(CubeType, Clone, Copy)]
///         $($item)*
///     };
/// }
/// mod kernels {
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
        /// The comparisons of the rule bodies, as kernel functions.
        pub mod prelude {
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
    };
}
