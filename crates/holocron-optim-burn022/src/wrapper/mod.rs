//! Lookahead and Scout: per-parameter Burn 0.22 [`Optimizer`]s over any other, with their
//! configurations and their state.

mod lookahead;
mod scout;
mod state;

pub use lookahead::{Lookahead, LookaheadSync};
pub use scout::{Scout, ScoutSync};
pub use state::SlowState;

use core::fmt::Debug;
use core::marker::PhantomData;

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};
use holocron_optim_core::ConfigError;

/// How a wrapper's slow weights follow the fast ones at a sync: [`LookaheadSync`] or
/// [`ScoutSync`].
pub trait SyncRule: Clone + Copy + Debug + Send + Sync + 'static {
    /// The wrapper's name, for messages.
    const NAME: &'static str;
    /// Whether the wrapper keeps the parameter after each step since the last sync (its
    /// window, which [`Self::rate`] reads).
    const KEEPS_WINDOW: bool;

    /// The rate of a sync of `slow` towards the fast weights, from the configured
    /// `sync_rate` and, for a rule that [keeps one](Self::KEEPS_WINDOW), the `window`
    /// (whose last row is the fast weights; empty for a rule that keeps none).
    fn rate<const D: usize>(sync_rate: f64, slow: &Tensor<D>, window: &[Tensor<D>]) -> Rate<D>;
}

/// The rate of a sync.
pub enum Rate<const D: usize> {
    /// A number, known on the host.
    Fixed(f64),
    /// A one-element tensor of shape `[1; D]`, computed on the parameter's device.
    Computed(Box<Tensor<D>>),
}

/// A per-parameter Burn 0.22 [`Optimizer`] that steps each parameter with `inner` and syncs
/// it with its slow weights every `sync_period` of its steps, by the rule `S`:
/// [`Lookahead`] and [`Scout`].
#[derive(Clone, Debug)]
pub struct Wrapper<O, S> {
    inner: O,
    sync_rate: f64,
    sync_period: usize,
    sync: PhantomData<S>,
}

impl<O: Optimizer, S: SyncRule> Wrapper<O, S> {
    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }
}

impl<O: Optimizer, S: SyncRule> Optimizer for Wrapper<O, S> {
    type State<const D: usize> = SlowState<O::State<D>, D>;

    /// One inner step of `tensor`, then its sync when its period is complete.
    ///
    /// # Panics
    ///
    /// When `state` (e.g. loaded from a record) does not fit the parameter: slow weights or
    /// window rows of another shape, or a window of another length than the steps since the
    /// last sync.
    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (inner, steps, slow, mut window) = match state {
            Some(state) => (state.inner, state.steps, state.slow, state.window),
            None => (None, 0, tensor.clone(), Vec::new()),
        };
        let rows = if S::KEEPS_WINDOW {
            steps % self.sync_period
        } else {
            0
        };
        assert!(
            slow.dims() == tensor.dims()
                && window.len() == rows
                && window.iter().all(|row| row.dims() == tensor.dims()),
            "{}: a state of slow weights of shape {:?} and {} window rows after {steps} steps, \
             for a parameter of shape {:?} with sync_period {} (a state of another \
             configuration or another model?)",
            S::NAME,
            slow.dims(),
            window.len(),
            tensor.dims(),
            self.sync_period,
        );
        let (fast, inner) = self.inner.step(lr, tensor, grad, inner);
        let steps = steps + 1;
        let synced = steps.is_multiple_of(self.sync_period);
        if S::KEEPS_WINDOW {
            window.push(fast.clone());
        }
        let (fast, slow) = if synced {
            let rate = S::rate(self.sync_rate, &slow, &window);
            // The window's rows share buffers with the weights: let them go before the pull.
            window.clear();
            let slow = pull(slow, fast, rate);
            (slow.clone(), slow)
        } else {
            (fast, slow)
        };
        let state = SlowState {
            inner,
            steps,
            slow,
            window,
        };
        (fast, Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.into_device(device, O::to_device)
    }
}

/// `slow + rate (fast - slow)`: the slow weights as they were when `rate` is 0, and the fast
/// ones for a parameter without elements.
fn pull<const D: usize>(slow: Tensor<D>, fast: Tensor<D>, rate: Rate<D>) -> Tensor<D> {
    if slow.shape().num_elements() == 0 {
        return fast;
    }
    match rate {
        Rate::Fixed(0.0) => slow,
        Rate::Fixed(rate) => slow.clone().add(fast.sub(slow).mul_scalar(rate)),
        Rate::Computed(rate) => slow.clone().add(fast.sub(slow).mul(*rate)),
    }
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
                Ok(Wrapper {
                    inner,
                    sync_rate: self.sync_rate,
                    sync_period: self.sync_period,
                    sync: PhantomData,
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
