//! The optimizers, one file each (LAMB and RaLars, which share their step, one file):
//! configuration, optimizer, state record and the
//! [`SimpleOptimizer`](burn::optim::SimpleOptimizer) implementation.

mod adabelief;
mod adamp;
mod adan;
mod ademamix;
mod lamb_ralars;
mod lars;
mod tadam;

pub use adabelief::{AdaBelief, AdaBeliefConfig, AdaBeliefState};
pub use adamp::{AdamP, AdamPConfig, AdamPState};
pub use adan::{Adan, AdanConfig, AdanState};
pub use ademamix::{AdEMAMix, AdEMAMixConfig, AdEMAMixState};
pub use lamb_ralars::{Lamb, LambConfig, LambState, RaLars, RaLarsConfig, RaLarsState};
pub use lars::{Lars, LarsConfig, LarsState};
pub use tadam::{TAdam, TAdamConfig, TAdamState};

/// Declares an optimizer's configuration from its hyperparameter list in
/// `holocron-optim-core` (`holocron_optim_core::__fields_<name>!(optimizer_config [docs
/// pub struct Config for Optimizer: CoreRule])`, one line per hyperparameter: `name: type =
/// default => check`, where `check` names the [`Checker`](holocron_optim_core::Checker)
/// range that the core rule's validation applies and the field's doc states): a Burn
/// [`Config`](burn::config::Config) with those fields, the `execution` and `grad_clipping`
/// fields every configuration has, `rule()` (the core rule's hyperparameters), and the
/// `validate`-backed `build`, `try_build`, `init` and `try_init`. The optimizer provides
/// `build_unchecked(&self) -> $optim`.
macro_rules! optimizer_config {
    (
        [$(#[$meta:meta])* pub struct $config:ident for $optim:ident: $rule:path]
        $(
            $(#[doc = $doc:literal])*
            $field:ident: $ty:ty = $default:literal $(| $value:expr)? $(=> $check:ident)?,
        )*
    ) => {
        $(#[$meta])*
        #[derive(burn::config::Config, Debug)]
        pub struct $config {
            $(
                $(#[doc = $doc])*
                $(
                    ///
                    #[doc = concat!("Allowed: ", $crate::error::expected!($check), ".")]
                )?
                #[config(default = $default)]
                pub $field: $ty,
            )*
            /// Which implementation runs the step (see [`Execution`](crate::Execution)); all
            /// compute the same update.
            #[config(default = "crate::Execution::Auto")]
            pub execution: $crate::Execution,
            /// Gradient clipping applied by the adaptor before the step.
            ///
            #[doc = concat!("Allowed: ", $crate::error::expected!(clipping), ".")]
            pub grad_clipping: Option<burn::optim::grad_clipping::GradientClippingConfig>,
        }

        impl $config {
            /// Checks every hyperparameter against its allowed range.
            pub fn validate(&self) -> Result<(), $crate::ConfigError> {
                holocron_optim_core::OptimizerRule::validate(&self.rule(), stringify!($config))?;
                let check = $crate::error::Checker::new(stringify!($config));
                let threshold = $crate::error::clipping_threshold(&self.grad_clipping);
                check.clipping("grad_clipping", &self.grad_clipping, threshold)
            }

            /// The hyperparameters as `holocron-optim-core`'s rule takes them.
            pub fn rule(&self) -> $rule {
                $rule { $($field: self.$field,)* }
            }

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
pub(crate) use optimizer_config;

/// Implements Burn's [`SimpleOptimizer`](burn::optim::SimpleOptimizer) and this crate's
/// [`StateLayout`](crate::checkpoint::StateLayout) for an optimizer from its step, the move
/// of its state to a device, the names and shapes of its state tensors and, where it keeps
/// them, its step count and its state tensors of a fixed shape (checked on load), so that
/// each optimizer's file holds only what is its own.
macro_rules! simple_optimizer {
    (
        $optim:ident, $state:ident,
        step: |$this:ident, $lr:ident, $tensor:ident, $grad:ident, $old:ident| $step:block,
        to_device: |$moved:ident, $device:ident| $to_device:expr,
        shapes: |$shaped:ident| $shapes:expr,
        $(step_count: |$counted:ident| $step_count:expr,)?
        $(fixed_shapes: |$fixed:ident| $fixed_shapes:expr,)?
    ) => {
        impl<B: burn::tensor::backend::Backend> burn::optim::SimpleOptimizer<B> for $optim {
            type State<const D: usize> = $state<B, D>;

            fn step<const D: usize>(
                &self,
                $lr: burn::optim::LearningRate,
                $tensor: burn::tensor::Tensor<B, D>,
                $grad: burn::tensor::Tensor<B, D>,
                $old: Option<Self::State<D>>,
            ) -> (burn::tensor::Tensor<B, D>, Option<Self::State<D>>) {
                $crate::error::check_learning_rate(stringify!($optim), $lr);
                let $this = self;
                $step
            }

            fn to_device<const D: usize>(
                $moved: Self::State<D>,
                $device: &B::Device,
            ) -> Self::State<D> {
                $to_device
            }
        }

        impl<B: burn::tensor::backend::Backend> $crate::checkpoint::StateLayout<B> for $optim {
            const NAME: &'static str = stringify!($optim);

            fn state_shapes<const D: usize>(
                $shaped: &Self::State<D>,
            ) -> Vec<(&'static str, Vec<usize>)> {
                $shapes
            }

            $(
                fn step_count<const D: usize>($counted: &Self::State<D>) -> Option<usize> {
                    $step_count
                }
            )?

            $(
                fn fixed_shapes<const D: usize>(
                    $fixed: &Self::State<D>,
                ) -> Vec<(&'static str, Vec<usize>, Vec<usize>)> {
                    $fixed_shapes
                }
            )?
        }
    };
}
pub(crate) use simple_optimizer;
