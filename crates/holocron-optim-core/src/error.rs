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

/// The allowed range of each check of [`Checker`], in words: the error message and the
/// configurations' field docs read the same text.
#[doc(hidden)]
#[macro_export]
macro_rules! expected {
    (non_negative) => {
        "a finite value >= 0"
    };
    (positive) => {
        "a finite value > 0"
    };
    (optional_degrees_of_freedom) => {
        "None or a value in (0, 1e30]"
    };
    (clipping) => {
        "None, or Value(threshold) or Norm(threshold) with a finite threshold > 0"
    };
    (beta) => {
        "a value in [0, 1)"
    };
    (at_least_half) => {
        "a value in [0.5, 1)"
    };
    (unit) => {
        "a value in [0, 1]"
    };
    (clip_range) => {
        "(lo, hi) with 0 <= lo <= hi < inf"
    };
    (warmup) => {
        "None or a number of steps >= 1"
    };
    (period) => {
        "an integer >= 1"
    };
}

/// Range checks shared by every configuration, one per word of [`expected!`](crate::expected!). Comparisons
/// are written so that NaN is refused.
pub struct Checker {
    config: &'static str,
}

impl Checker {
    /// The checks of the configuration named `config` (as errors show it).
    pub fn new(config: &'static str) -> Self {
        Self { config }
    }

    /// The error for `field`, shown as `value`, outside the range `expected`.
    pub fn fail(
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

    /// `Ok` when `within`, else the error for `value` and the range `expected`.
    pub fn require(
        &self,
        field: &'static str,
        value: impl fmt::Debug,
        within: bool,
        expected: &'static str,
    ) -> Result<(), ConfigError> {
        if within {
            Ok(())
        } else {
            self.fail(field, value, expected)
        }
    }

    /// `0 <= value < inf`.
    pub fn non_negative(&self, field: &'static str, value: f64) -> Result<(), ConfigError> {
        let within = value >= 0.0 && value.is_finite();
        self.require(field, value, within, expected!(non_negative))
    }

    /// `0 < value < inf`.
    pub fn positive(&self, field: &'static str, value: f64) -> Result<(), ConfigError> {
        let within = value > 0.0 && value.is_finite();
        self.require(field, value, within, expected!(positive))
    }

    /// `None`, or `0 < value <= 1e30`: degrees of freedom that stay finite when added to a
    /// tensor's element count in `f32`.
    pub fn optional_degrees_of_freedom(
        &self,
        field: &'static str,
        value: Option<f64>,
    ) -> Result<(), ConfigError> {
        let within = value.is_none_or(|value| value > 0.0 && value <= 1e30);
        self.require(field, value, within, expected!(optional_degrees_of_freedom))
    }

    /// No clipping, or a clipping threshold that is finite and positive (a negative norm
    /// would reverse every update, NaN would make every parameter NaN).
    /// `shown` is the configuration's value as the error shows it (Burn's clipping enum),
    /// `threshold` its threshold.
    pub fn clipping(
        &self,
        field: &'static str,
        shown: impl fmt::Debug,
        threshold: Option<f32>,
    ) -> Result<(), ConfigError> {
        let within = threshold.is_none_or(|t| t > 0.0 && t.is_finite());
        self.require(field, shown, within, expected!(clipping))
    }

    /// `0 <= value < 1`, the range of an exponential-average coefficient.
    pub fn beta(&self, field: &'static str, value: f64) -> Result<(), ConfigError> {
        let within = (0.0..1.0).contains(&value);
        self.require(field, value, within, expected!(beta))
    }

    /// `0.5 <= value < 1`.
    pub fn at_least_half(&self, field: &'static str, value: f64) -> Result<(), ConfigError> {
        let within = (0.5..1.0).contains(&value);
        self.require(field, value, within, expected!(at_least_half))
    }

    /// `0 <= value <= 1`.
    pub fn unit(&self, field: &'static str, value: f64) -> Result<(), ConfigError> {
        let within = (0.0..=1.0).contains(&value);
        self.require(field, value, within, expected!(unit))
    }

    /// No warm-up, or one of at least one step (a warm-up of 0 steps would divide by 0).
    pub fn warmup(&self, field: &'static str, n: Option<usize>) -> Result<(), ConfigError> {
        self.require(field, n, n != Some(0), expected!(warmup))
    }

    /// A number of steps between two events, at least 1.
    pub fn period(&self, field: &'static str, n: usize) -> Result<(), ConfigError> {
        self.require(field, n, n >= 1, expected!(period))
    }

    /// A `(lo, hi)` clip range with `0 <= lo <= hi < inf`.
    pub fn clip_range(&self, field: &'static str, (lo, hi): (f64, f64)) -> Result<(), ConfigError> {
        let within = lo >= 0.0 && lo <= hi && hi.is_finite();
        self.require(field, (lo, hi), within, expected!(clip_range))
    }
}

/// Checks the two hyperparameters of the Lookahead and Scout wrappers (both Burn crates'
/// configurations): `sync_rate` in `[0, 1]`, `sync_period >= 1`.
///
/// # Errors
///
/// The first of the two outside its range, naming the configuration `config`.
pub fn check_sync(
    config: &'static str,
    sync_rate: f64,
    sync_period: usize,
) -> Result<(), ConfigError> {
    let check = Checker::new(config);
    check.unit("sync_rate", sync_rate)?;
    check.period("sync_period", sync_period)
}

/// Stops a step whose learning rate is NaN, infinite or negative: such a step would write
/// NaN into the parameters or climb the loss, and `SimpleOptimizer::step` has no error to
/// return.
///
/// # Panics
///
/// With `"{optimizer}: learning rate {lr}: expected a finite value >= 0"`.
pub fn check_learning_rate(optimizer: &str, lr: f64) {
    assert!(
        lr >= 0.0 && lr.is_finite(),
        "{optimizer}: learning rate {lr:?}: expected {}",
        expected!(non_negative)
    );
}
