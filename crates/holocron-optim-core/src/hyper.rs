//! Each optimizer's hyperparameters as one list (name, type, default, allowed range, doc),
//! from which this crate builds the rule's hyperparameter struct and its validation, and
//! each Burn crate its `Config`: the list is a macro that hands its fields to a macro of
//! the caller's choosing.

use crate::ConfigError;
use crate::Rule;
use crate::error::Checker;
use crate::tensor::DeviceTensor;

/// An optimizer's hyperparameters, with everything a Burn crate needs to run it on device
/// tensors: its state's names and shapes, validation, and one step.
pub trait OptimizerRule: Checked + Clone + core::fmt::Debug + Send + Sync + 'static {
    /// The optimizer's name, as errors and records show it.
    const NAME: &'static str;
    /// Every state tensor this optimizer can keep, in order.
    const STATE_NAMES: &'static [&'static str];
    /// Whether the state records a step count.
    const COUNTS_STEPS: bool;

    /// The state tensors this configuration keeps (a subset of [`Self::STATE_NAMES`], in
    /// the same order).
    fn state_names(&self) -> Vec<&'static str>;

    /// The shape of each kept state tensor for a parameter of shape `shape`.
    fn state_shapes(&self, shape: &[usize]) -> Vec<Vec<usize>> {
        self.state_names()
            .iter()
            .map(|name| {
                if Self::SCALAR_STATE.contains(name) {
                    vec![1]
                } else {
                    shape.to_vec()
                }
            })
            .collect()
    }

    /// The state tensors of one element whatever the parameter's shape.
    const SCALAR_STATE: &'static [&'static str] = &[];

    /// Checks every hyperparameter; an error names `config` and the field.
    fn validate(&self, config: &'static str) -> Result<(), ConfigError> {
        self.check(config)
    }

    /// The rule that steps this optimizer.
    type Rule: Rule;

    /// The rule's flag (AMSGrad, or LARS's momentum): whether its optional lanes are kept.
    fn flag(&self) -> bool;

    /// The coefficients of step `time` (this step included, from 1) on a parameter of shape
    /// `shape`; `first` when no state exists yet.
    fn coefficients(
        &self,
        lr: f64,
        time: usize,
        first: bool,
        shape: &[usize],
    ) -> <Self::Rule as Rule>::Coefficients<f64>;

    /// The state before the first step, shaped like the flattened gradient: zeros.
    fn initial_state<T: DeviceTensor>(&self, grad: &T) -> Vec<T> {
        zeros(self, grad)
    }

    /// One step on flattened tensors: `param` and `grad` of `n` elements (the product of
    /// `shape`, the parameter's shape), `time` the steps taken so far, `state` the kept
    /// state tensors flattened (one-element ones of one element), `None` before the first
    /// step. Returns the new parameter and state, in [`Self::state_names`] order.
    fn step_tensors<T: DeviceTensor>(
        &self,
        lr: f64,
        time: usize,
        shape: &[usize],
        param: T,
        grad: T,
        state: Option<Vec<T>>,
    ) -> (T, Vec<T>) {
        let first = state.is_none();
        let state = state.unwrap_or_else(|| self.initial_state(&grad));
        let c = self.coefficients(lr, time + 1, first, shape);
        let n = shape.iter().product();
        crate::tensor::step::<Self::Rule, T>(c, self.flag(), param, grad, state, n)
    }
}

/// Hyperparameters checked against their ranges (written by `hyperparameters!` from the
/// field list).
pub trait Checked {
    /// Checks every field against its allowed range, then the fields' relations; an error
    /// names `config` and the field.
    fn check(&self, config: &'static str) -> Result<(), ConfigError>;
}

/// Checks that tie hyperparameters together, beyond each field's own range.
pub trait CrossChecks {
    /// `Ok` unless two fields conflict.
    fn cross_check(&self, _check: &Checker) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Zero state before the first step: one zero tensor per kept state tensor, shaped like
/// the gradient or of one element.
pub fn zeros<R: OptimizerRule, T: DeviceTensor>(rule: &R, grad: &T) -> Vec<T> {
    rule.state_names()
        .iter()
        .map(|name| {
            if R::SCALAR_STATE.contains(name) {
                grad.scalar_like(0.0)
            } else {
                grad.full_like(0.0)
            }
        })
        .collect()
}

/// The callback that builds a rule's hyperparameter struct from its field list: the
/// struct (`pub` fields, documented as the list says), `Default` from the defaults, and
/// `validate` from the ranges.
#[doc(hidden)]
#[macro_export]
macro_rules! hyperparameters {
    (
        [$(#[$meta:meta])* $name:ident]
        $(
            $(#[doc = $doc:literal])*
            $field:ident: $ty:ty = $default:literal $(| $value:expr)? $(=> $check:ident)?,
        )*
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                $(
                    ///
                    #[doc = concat!("Allowed: ", $crate::expected!($check), ".")]
                )?
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $crate::hyperparameters!(@default $default $(| $value)?),)* }
            }
        }

        impl $crate::hyper::Checked for $name {
            fn check(&self, config: &'static str) -> Result<(), $crate::ConfigError> {
                let check = $crate::Checker::new(config);
                $($(check.$check(stringify!($field), self.$field)?;)?)*
                $crate::hyper::CrossChecks::cross_check(self, &check)
            }
        }
    };
    (@default $default:literal | $value:expr) => { $value };
    (@default $default:literal) => { $default };
}
