//! Lookahead and Scout: per-parameter Burn 0.22 [`Optimizer`]s over any other, with their
//! configurations and their state.

mod lookahead;
mod scout;
mod state;

pub use lookahead::Lookahead;
pub use scout::Scout;
pub use state::SlowState;

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{ModuleOptimizer, Optimizer};
use burn::tensor::Tensor;
use holocron_optim_core::ConfigError;

/// `slow + rate (fast - slow)`; the slow weights as they were when `rate` is 0.
fn pull<const D: usize>(slow: Tensor<D>, fast: Tensor<D>, rate: f64) -> Tensor<D> {
    if rate == 0.0 {
        slow
    } else {
        slow.clone().add(fast.sub(slow).mul_scalar(rate))
    }
}

/// Stops a step whose state holds slow weights of another shape than the parameter.
fn check_slow_shape<const D: usize>(wrapper: &str, slow: &Tensor<D>, param: &Tensor<D>) {
    assert_eq!(
        slow.dims(),
        param.dims(),
        "{wrapper}: slow weights of shape {:?} for a parameter of shape {:?} (a state of \
         another model?)",
        slow.dims(),
        param.dims(),
    );
}

/// A wrapper's configuration: `sync_rate` (documented by the caller), `sync_period` and
/// `grad_clipping`, with the same defaults for both wrappers, and its `validate`, `build`,
/// `try_build`, `init` and `try_init`.
macro_rules! wrapper_config {
    (
        $(#[$meta:meta])*
        pub struct $config:ident for $wrapper:ident {
            $(#[$rate_meta:meta])*
            sync_rate,
        }
    ) => {
        $(#[$meta])*
        #[derive(Config, Debug)]
        pub struct $config {
            $(#[$rate_meta])*
            ///
            #[doc = concat!("Allowed: ", holocron_optim_core::expected!(unit), ".")]
            #[config(default = 0.5)]
            pub sync_rate: f64,
            /// Number of inner steps of a parameter between its syncs.
            ///
            #[doc = concat!("Allowed: ", holocron_optim_core::expected!(period), ".")]
            #[config(default = 6)]
            pub sync_period: usize,
            /// Gradient clipping applied by Burn's [`ModuleOptimizer`] before the step
            /// (by [`Self::init`]; the inner optimizer given to it is used bare).
            ///
            #[doc = concat!("Allowed: ", holocron_optim_core::expected!(clipping), ".")]
            pub grad_clipping: Option<GradientClippingConfig>,
        }

        impl $config {
            /// Checks every field against its allowed range.
            ///
            /// # Errors
            ///
            /// The first field outside its range, as a [`ConfigError`] naming this
            /// configuration, the field, the value and the range.
            pub fn validate(&self) -> Result<(), ConfigError> {
                holocron_optim_core::check_sync(stringify!($config), self.sync_rate, self.sync_period)?;
                holocron_optim_core::Checker::new(stringify!($config)).clipping(
                    "grad_clipping",
                    &self.grad_clipping,
                    crate::optim::clipping_threshold(&self.grad_clipping),
                )
            }

            #[doc = concat!("Wraps `inner` (any Burn 0.22 [`Optimizer`], e.g. one of this crate's `build()`) in a bare [`", stringify!($wrapper), "`].")]
            ///
            /// # Panics
            ///
            /// If a field is outside its allowed range; the message is the [`ConfigError`] of
            /// [`Self::validate`].
            pub fn build<O: Optimizer>(&self, inner: O) -> $wrapper<O> {
                self.try_build(inner).unwrap_or_else(|err| panic!("{err}"))
            }

            /// Like [`Self::build`], but returns an invalid field as an error.
            ///
            /// # Errors
            ///
            /// The [`ConfigError`] of [`Self::validate`].
            pub fn try_build<O: Optimizer>(&self, inner: O) -> Result<$wrapper<O>, ConfigError> {
                self.validate()?;
                Ok($wrapper {
                    inner,
                    sync_rate: self.sync_rate,
                    sync_period: self.sync_period,
                })
            }

            #[doc = concat!("Wraps `inner` in a [`", stringify!($wrapper), "`] inside Burn's [`ModuleOptimizer`], with")]
            /// gradient clipping when `grad_clipping` is set.
            ///
            /// # Panics
            ///
            /// If a field is outside its allowed range; the message is the [`ConfigError`] of
            /// [`Self::validate`]. Use [`Self::try_init`] to get it as a `Result`.
            pub fn init<O: Optimizer>(&self, inner: O) -> ModuleOptimizer {
                self.try_init(inner).unwrap_or_else(|err| panic!("{err}"))
            }

            /// Like [`Self::init`], but returns an invalid field as an error.
            ///
            /// # Errors
            ///
            /// The [`ConfigError`] of [`Self::validate`].
            pub fn try_init<O: Optimizer>(&self, inner: O) -> Result<ModuleOptimizer, ConfigError> {
                let mut optim = ModuleOptimizer::from(self.try_build(inner)?);
                if let Some(clipping) = &self.grad_clipping {
                    optim = optim.with_grad_clipping(clipping.init());
                }
                Ok(optim)
            }
        }
    };
}

wrapper_config! {
    /// Configuration of [`Lookahead`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `sync_rate` | `sync_rate` | 0.5 |
    /// | `sync_period` | `sync_period` | 6 |
    ///
    /// # Example
    ///
    /// ```
    /// use holocron_optim_burn022::{LambConfig, LookaheadConfig};
    ///
    /// // Lookahead over LAMB, for every parameter of a module.
    /// let optim = LookaheadConfig::new()
    ///     .with_sync_period(5)
    ///     .init(LambConfig::new().with_weight_decay(0.01).build());
    /// # let _ = optim;
    /// ```
    pub struct LookaheadConfig for Lookahead {
        /// How far the slow weights move towards the fast ones at a sync.
        sync_rate,
    }
}

wrapper_config! {
    /// Configuration of [`Scout`]: the same fields and defaults as [`LookaheadConfig`];
    /// `sync_rate` is the lowest rate a sync may use.
    ///
    /// # Example
    ///
    /// ```
    /// use holocron_optim_burn022::{AdaBeliefConfig, ScoutConfig};
    ///
    /// let optim = ScoutConfig::new().init(AdaBeliefConfig::new().build());
    /// # let _ = optim;
    /// ```
    pub struct ScoutConfig for Scout {
        /// The lowest rate at which the slow weights move towards the fast ones.
        sync_rate,
    }
}
