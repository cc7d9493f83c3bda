//! Errors raised when a configuration holds a hyperparameter outside its allowed range.

use core::fmt;

/// A hyperparameter outside its allowed range.
///
/// The message names the configuration, the field, the value that was given and the range
/// that is allowed, e.g. `LambConfig.beta_2 = 1: expected a value in [0, 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The configuration type, e.g. `"LambConfig"`.
    pub config: &'static str,
    /// The field of that configuration, e.g. `"beta_2"`.
    pub field: &'static str,
    /// The value that was refused, as written by `{:?}`.
    pub value: String,
    /// The allowed range or rule, in words, e.g. `"a value in [0, 1)"`.
    pub expected: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{} = {}: expected {}",
            self.config, self.field, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// Range checks shared by every configuration. `!(x >= 0)` style comparisons also refuse NaN.
pub(crate) struct Checker {
    config: &'static str,
}

impl Checker {
    pub(crate) fn new(config: &'static str) -> Self {
        Self { config }
    }

    pub(crate) fn fail(
        &self,
        field: &'static str,
        value: impl fmt::Debug,
        expected: &'static str,
    ) -> Result<(), ConfigError> {
        Err(ConfigError {
            config: self.config,
            field,
            value: format!("{value:?}"),
            expected,
        })
    }

    /// `0 <= value < inf`.
    pub(crate) fn non_negative(&self, field: &'static str, value: f64) -> Result<(), ConfigError> {
        if value >= 0.0 && value.is_finite() {
            Ok(())
        } else {
            self.fail(field, value, "a finite value >= 0")
        }
    }

    /// `0 < value < inf`.
    pub(crate) fn positive(&self, field: &'static str, value: f64) -> Result<(), ConfigError> {
        if value > 0.0 && value.is_finite() {
            Ok(())
        } else {
            self.fail(field, value, "a finite value > 0")
        }
    }

    /// `0 <= value < 1`, the range of an exponential-average coefficient.
    pub(crate) fn beta(&self, field: &'static str, value: f64) -> Result<(), ConfigError> {
        if (0.0..1.0).contains(&value) {
            Ok(())
        } else {
            self.fail(field, value, "a value in [0, 1)")
        }
    }

    /// [`Self::beta`] for each `(field, value)`.
    pub(crate) fn betas(&self, fields: &[(&'static str, f64)]) -> Result<(), ConfigError> {
        fields
            .iter()
            .try_for_each(|&(field, value)| self.beta(field, value))
    }

    /// [`Self::non_negative`] for each `(field, value)`.
    pub(crate) fn non_negatives(&self, fields: &[(&'static str, f64)]) -> Result<(), ConfigError> {
        fields
            .iter()
            .try_for_each(|&(field, value)| self.non_negative(field, value))
    }

    /// `0 <= value <= 1`.
    pub(crate) fn unit(&self, field: &'static str, value: f64) -> Result<(), ConfigError> {
        if (0.0..=1.0).contains(&value) {
            Ok(())
        } else {
            self.fail(field, value, "a value in [0, 1]")
        }
    }

    /// A `(lo, hi)` clip range with `0 <= lo <= hi < inf`.
    pub(crate) fn clip_range(
        &self,
        field: &'static str,
        (lo, hi): (f64, f64),
    ) -> Result<(), ConfigError> {
        if lo >= 0.0 && lo <= hi && hi.is_finite() {
            Ok(())
        } else {
            self.fail(field, (lo, hi), "(lo, hi) with 0 <= lo <= hi < inf")
        }
    }
}
