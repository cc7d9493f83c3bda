//! Errors raised when a configuration holds a hyperparameter outside its allowed range:
//! the checks are `holocron-optim-core`'s, shared with the crate for Burn 0.22.

pub use holocron_optim_core::ConfigError;
pub(crate) use holocron_optim_core::{Checker, check_learning_rate, expected};

/// The clipping threshold of Burn's configuration, for [`Checker::clipping`].
pub(crate) fn clipping_threshold(
    clipping: &Option<burn::optim::grad_clipping::GradientClippingConfig>,
) -> Option<f32> {
    use burn::optim::grad_clipping::GradientClippingConfig::{Norm, Value};
    clipping.as_ref().map(|(Value(t) | Norm(t))| *t)
}
