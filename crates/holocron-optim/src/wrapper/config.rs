use burn::config::Config;
use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;

use super::{Lookahead, Scout};
use crate::Execution;
use crate::error::ConfigError;

/// A wrapper's configuration: `sync_rate` (documented by the caller), `sync_period` and
/// `execution`, with the same defaults for both wrappers, and its `validate`, `init` and
/// `try_init`.
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
            #[config(default = 0.5)]
            pub sync_rate: f64,
            /// Number of inner steps between syncs (`>= 1`).
            #[config(default = 6)]
            pub sync_period: usize,
            /// Which implementation runs the sync (see [`Execution`]); all compute the same.
            #[config(default = "Execution::Auto")]
            pub execution: Execution,
        }

        impl $config {
            /// Checks both fields against their allowed ranges.
            pub fn validate(&self) -> Result<(), ConfigError> {
                holocron_optim_core::check_sync(stringify!($config), self.sync_rate, self.sync_period)
            }

            #[doc = concat!("Wraps `inner` (any Burn optimizer) in a [`", stringify!($wrapper), "`].")]
            ///
            /// # Panics
            ///
            /// If a field is outside its allowed range; the message is the
            /// [`ConfigError`] of [`Self::validate`]. Use [`Self::try_init`] to get it
            /// as a `Result`.
            pub fn init<O, M, B>(&self, inner: O) -> $wrapper<O, M, B>
            where
                O: Optimizer<M, B>,
                M: AutodiffModule<B>,
                B: AutodiffBackend,
            {
                self.try_init(inner).unwrap_or_else(|err| panic!("{err}"))
            }

            /// Like [`Self::init`], but returns an invalid field as an error.
            pub fn try_init<O, M, B>(&self, inner: O) -> Result<$wrapper<O, M, B>, ConfigError>
            where
                O: Optimizer<M, B>,
                M: AutodiffModule<B>,
                B: AutodiffBackend,
            {
                self.validate()?;
                Ok($wrapper::new(
                    inner,
                    self.sync_rate,
                    self.sync_period,
                    self.execution,
                ))
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
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::Linear;
    /// use holocron_optim::{LambConfig, LookaheadConfig};
    ///
    /// type B = Autodiff<NdArray>;
    /// let optim = LookaheadConfig::new()
    ///     .with_sync_period(5)
    ///     .init(LambConfig::new().init::<B, Linear<B>>());
    /// # let _ = optim;
    /// ```
    pub struct LookaheadConfig for Lookahead {
        /// How far the slow weights move towards the fast ones at a sync (`[0, 1]`).
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
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::Linear;
    /// use holocron_optim::{AdaBeliefConfig, ScoutConfig};
    ///
    /// type B = Autodiff<NdArray>;
    /// let optim = ScoutConfig::new().init(AdaBeliefConfig::new().init::<B, Linear<B>>());
    /// # let _ = optim;
    /// ```
    pub struct ScoutConfig for Scout {
        /// The lowest rate at which the slow weights move towards the fast ones (`[0, 1]`).
        sync_rate,
    }
}
