//! The optimizers, one file each: configuration, optimizer, state record and the
//! [`SimpleOptimizer`](burn::optim::SimpleOptimizer) implementation.

mod adabelief;
mod adamp;
mod adan;
mod ademamix;
mod lamb;
mod lars;
mod ralars;
mod tadam;
mod trust;

pub use adabelief::{AdaBelief, AdaBeliefConfig, AdaBeliefState};
pub use adamp::{AdamP, AdamPConfig, AdamPState};
pub use adan::{Adan, AdanConfig, AdanState};
pub use ademamix::{AdEMAMix, AdEMAMixConfig, AdEMAMixState};
pub use lamb::{Lamb, LambConfig, LambState};
pub use lars::{Lars, LarsConfig, LarsState};
pub use ralars::{RaLars, RaLarsConfig, RaLarsState};
pub use tadam::{TAdam, TAdamConfig, TAdamState};

/// Adds `validate`-backed `build`, `try_build`, `init` and `try_init` to a configuration,
/// the same four entry points for every optimizer. The configuration provides
/// `validate(&self) -> Result<(), ConfigError>` and `build_unchecked(&self) -> $optim`.
macro_rules! config_entry_points {
    ($config:ident, $optim:ident) => {
        impl $config {
            #[doc = concat!("Builds the bare [`", stringify!($optim), "`] (a [`SimpleOptimizer`](burn::optim::SimpleOptimizer)).")]
            ///
            /// # Panics
            ///
            /// If a hyperparameter is outside its allowed range; the message is the
            /// [`ConfigError`](crate::ConfigError) of [`Self::validate`].
            pub fn build(&self) -> $optim {
                self.try_build().unwrap_or_else(|err| panic!("{err}"))
            }

            #[doc = concat!("Builds the bare [`", stringify!($optim), "`], or returns the first hyperparameter outside its range.")]
            pub fn try_build(&self) -> Result<$optim, $crate::ConfigError> {
                self.validate()?;
                Ok(self.build_unchecked())
            }

            #[doc = concat!("Initializes the optimizer for a module: [`", stringify!($optim), "`] inside Burn's")]
            /// [`OptimizerAdaptor`](burn::optim::adaptor::OptimizerAdaptor), with gradient
            /// clipping when `grad_clipping` is set, exactly as `burn::optim::AdamConfig::init`.
            ///
            /// # Panics
            ///
            /// If a hyperparameter is outside its allowed range; the message is the
            /// [`ConfigError`](crate::ConfigError) of [`Self::validate`]. Use
            /// [`Self::try_init`] to get it as a `Result`.
            pub fn init<B, M>(&self) -> burn::optim::adaptor::OptimizerAdaptor<$optim, M, B>
            where
                B: burn::tensor::backend::AutodiffBackend,
                M: burn::module::AutodiffModule<B>,
            {
                self.try_init().unwrap_or_else(|err| panic!("{err}"))
            }

            /// Like [`Self::init`], but returns an invalid hyperparameter as an error.
            pub fn try_init<B, M>(
                &self,
            ) -> Result<burn::optim::adaptor::OptimizerAdaptor<$optim, M, B>, $crate::ConfigError>
            where
                B: burn::tensor::backend::AutodiffBackend,
                M: burn::module::AutodiffModule<B>,
            {
                let mut optim = burn::optim::adaptor::OptimizerAdaptor::from(self.try_build()?);
                if let Some(clipping) = &self.grad_clipping {
                    optim = optim.with_grad_clipping(clipping.init());
                }
                Ok(optim)
            }
        }
    };
}
pub(crate) use config_entry_points;
