//! The optimizers: one generic [`RuleOptimizer`] over the rules of `holocron-optim-core`,
//! and one file per optimizer (LAMB and RaLars, which share their step, one file) with its
//! configuration and its type alias.

mod adabelief;
mod adamp;
mod adan;
mod ademamix;
mod lamb_ralars;
mod lars;
mod tadam;

pub use adabelief::{AdaBelief, AdaBeliefConfig};
pub use adamp::{AdamP, AdamPConfig};
pub use adan::{Adan, AdanConfig};
pub use ademamix::{AdEMAMix, AdEMAMixConfig};
pub use lamb_ralars::{Lamb, LambConfig, RaLars, RaLarsConfig};
pub use lars::{Lars, LarsConfig};
pub use tadam::{TAdam, TAdamConfig};

use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};
use holocron_optim_core::execution::{Execution, StepPath, count};
use holocron_optim_core::{ConfigError, OptimizerRule};

use crate::flat::FlatTensor;
use crate::state::RuleState;

/// Declares an optimizer's configuration: a Burn [`Config`](burn::config::Config) with one
/// line per hyperparameter (`name: type = default => check`, the fields of the core rule
/// `$rule`, where `default` is Burn's `#[config(default = ..)]` and `check` names the allowed
/// range the field's doc states), then the `grad_clipping` field every configuration has,
/// and `rule`, `validate` and the `validate`-backed `build`, `try_build`, `init` and
/// `try_init`.
///
/// The second form takes the header in brackets and the fields after it, as the field lists
/// of `holocron-optim-core` (`__fields_<optimizer>!(optimizer_config [header])`) hand them
/// over (their `| value` is the core struct's default, unused here): so each configuration
/// is written from the same list as the core rule's struct, docs and defaults included.
macro_rules! optimizer_config {
    (
        [$(#[$meta:meta])* pub struct $config:ident for $optim:ident: $rule:path]
        $(
            $(#[$field_meta:meta])*
            $field:ident: $ty:ty = $default:literal $(| $value:expr)? $(=> $check:ident)?,
        )*
    ) => {
        $crate::optim::optimizer_config! {
            $(#[$meta])*
            pub struct $config for $optim: $rule {
                $(
                    $(#[$field_meta])*
                    $field: $ty = $default $(=> $check)?,
                )*
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $config:ident for $optim:ident: $rule:path {
            $(
                $(#[$field_meta:meta])*
                $field:ident: $ty:ty = $default:tt $(=> $check:ident)?,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(burn::config::Config, Debug)]
        pub struct $config {
            $(
                $(#[$field_meta])*
                $(
                    ///
                    #[doc = concat!("Allowed: ", holocron_optim_core::expected!($check), ".")]
                )?
                #[config(default = $default)]
                pub $field: $ty,
            )*
            /// Gradient clipping applied by Burn's
            /// [`ModuleOptimizer`](burn::optim::ModuleOptimizer) before the step.
            ///
            #[doc = concat!("Allowed: ", holocron_optim_core::expected!(clipping), ".")]
            pub grad_clipping: Option<burn::grad_clipping::GradientClippingConfig>,
            /// Which implementation runs the step (see [`Execution`](crate::Execution)); all
            /// compute the same update.
            #[config(default = "crate::Execution::Auto")]
            pub execution: $crate::Execution,
        }

        impl $config {
            /// Each field with a range, and that range in words, as the field's doc states it
            /// and [`Self::validate`]'s error gives it.
            pub const ALLOWED: &'static [(&'static str, &'static str)] = &[
                $($((stringify!($field), holocron_optim_core::expected!($check)),)?)*
                ("grad_clipping", holocron_optim_core::expected!(clipping)),
            ];

            /// The update rule of these hyperparameters (`holocron-optim-core`'s), unchecked.
            pub fn rule(&self) -> $rule {
                $rule {
                    $($field: self.$field,)*
                }
            }

            /// Checks every hyperparameter against its allowed range.
            ///
            /// # Errors
            ///
            /// The first hyperparameter outside its range, as a [`ConfigError`](crate::ConfigError) naming this
            /// configuration, the field, the value and the range.
            pub fn validate(&self) -> Result<(), $crate::ConfigError> {
                holocron_optim_core::OptimizerRule::validate(&self.rule(), stringify!($config))?;
                holocron_optim_core::Checker::new(stringify!($config)).clipping(
                    "grad_clipping",
                    &self.grad_clipping,
                    $crate::optim::clipping_threshold(&self.grad_clipping),
                )
            }

            #[doc = concat!("Builds the bare [`", stringify!($optim), "`] (a Burn [`Optimizer`](burn::optim::Optimizer)")]
            /// for one parameter tensor at a time, e.g. for
            /// [`ModuleOptimizer::with_group`](burn::optim::ModuleOptimizer::with_group)).
            ///
            /// # Panics
            ///
            /// If a hyperparameter is outside its allowed range; the message is the
            /// [`ConfigError`](crate::ConfigError) of [`Self::validate`].
            pub fn build(&self) -> $optim {
                self.try_build().unwrap_or_else(|err| panic!("{err}"))
            }

            #[doc = concat!("Builds the bare [`", stringify!($optim), "`], or returns the first hyperparameter outside its range.")]
            ///
            /// # Errors
            ///
            /// The [`ConfigError`](crate::ConfigError) of [`Self::validate`].
            pub fn try_build(&self) -> Result<$optim, $crate::ConfigError> {
                self.validate()?;
                Ok($crate::RuleOptimizer::from_rule_unchecked(self.rule()).with_execution(self.execution))
            }

            #[doc = concat!("Initializes the optimizer for a module: [`", stringify!($optim), "`] inside Burn's")]
            /// [`ModuleOptimizer`](burn::optim::ModuleOptimizer), with gradient clipping when
            /// `grad_clipping` is set, exactly as `burn::optim::AdamConfig::init`.
            ///
            /// # Panics
            ///
            /// If a hyperparameter is outside its allowed range; the message is the
            /// [`ConfigError`](crate::ConfigError) of [`Self::validate`]. Use
            /// [`Self::try_init`] to get it as a `Result`.
            pub fn init(&self) -> burn::optim::ModuleOptimizer {
                self.try_init().unwrap_or_else(|err| panic!("{err}"))
            }

            /// Like [`Self::init`], but returns an invalid hyperparameter as an error.
            ///
            /// # Errors
            ///
            /// The [`ConfigError`](crate::ConfigError) of [`Self::validate`].
            pub fn try_init(&self) -> Result<burn::optim::ModuleOptimizer, $crate::ConfigError> {
                let mut optim = burn::optim::ModuleOptimizer::from(self.try_build()?);
                if let Some(clipping) = &self.grad_clipping {
                    optim = optim.with_grad_clipping(clipping.init());
                }
                Ok(optim)
            }
        }
    };
}
pub(crate) use optimizer_config;

/// The threshold of a gradient clipping configuration.
pub(crate) fn clipping_threshold(
    clipping: &Option<burn::grad_clipping::GradientClippingConfig>,
) -> Option<f32> {
    use burn::grad_clipping::GradientClippingConfig::{Norm, Value};
    clipping.as_ref().map(|c| match c {
        Value(threshold) | Norm(threshold) => *threshold,
    })
}

/// A Burn 0.22 [`Optimizer`] that steps each parameter tensor with an update rule of
/// `holocron-optim-core` ([`OptimizerRule`]).
///
/// On Burn's CPU backends (Flex and ndarray, `f32` and `f64`) a step runs the rule's fused
/// CPU loops ([`holocron_optim_core::cpu`]) on the buffers of the parameter, its gradient and
/// its state, in place; on Burn's CubeCL backend (`f32`; WGPU, and CUDA with
/// [`Execution::Fused`](crate::Execution); with Burn's operation fusion through this crate's
/// `fusion` feature) the rule's kernels, in place too. Elsewhere, or with
/// [`Execution::Composed`](crate::Execution), it
/// flattens the parameter and its gradient to one dimension, hands them with the state to
/// [`OptimizerRule::step_tensors`] (every operation a tensor operation on the parameter's
/// device, in its dtype), and gives the new parameter and state their shapes back. Neither
/// path reads a value back to the host. The state is a [`RuleState`].
///
/// Build one from an optimizer's configuration (`build()` for the bare optimizer, `init()`
/// for Burn's [`ModuleOptimizer`](burn::optim::ModuleOptimizer)); the crate names one type
/// per rule ([`Lars`](crate::Lars), [`Lamb`](crate::Lamb), ...).
#[derive(Clone, Debug)]
pub struct RuleOptimizer<R: OptimizerRule> {
    rule: R,
    execution: Execution,
}

impl<R: OptimizerRule> RuleOptimizer<R> {
    /// The optimizer of `rule`, after checking its hyperparameters (the errors name the
    /// rule, [`OptimizerRule::NAME`], in place of a configuration).
    ///
    /// # Errors
    ///
    /// The first hyperparameter outside its range.
    pub fn new(rule: R) -> Result<Self, ConfigError> {
        rule.validate(R::NAME)?;
        Ok(Self::from_rule_unchecked(rule))
    }

    pub(crate) fn from_rule_unchecked(rule: R) -> Self {
        Self {
            rule,
            execution: Execution::Auto,
        }
    }

    /// This optimizer with its steps run as `execution` allows (all paths compute the same
    /// update).
    pub fn with_execution(self, execution: Execution) -> Self {
        Self { execution, ..self }
    }

    /// Which implementation may run the steps.
    pub fn execution(&self) -> Execution {
        self.execution
    }

    /// One step as Burn tensor operations ([`OptimizerRule::step_tensors`]) on the
    /// flattened tensors, whose results get their shapes back: the parameter's, and
    /// `lane_dims` for the state lanes (`lane_shapes` as the rule gives them).
    #[allow(clippy::too_many_arguments)]
    fn composed_step<const D: usize>(
        &self,
        lr: LearningRate,
        time: usize,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        lanes: Option<Vec<Tensor<D>>>,
        lane_shapes: &[Vec<usize>],
        lane_dims: &[[usize; D]],
    ) -> (Tensor<D>, Vec<Tensor<D>>) {
        let shape = tensor.dims();
        let numel = shape.iter().product::<usize>();
        let lanes = lanes.map(|lanes| {
            lanes
                .into_iter()
                .zip(lane_shapes)
                .map(|(lane, shape)| FlatTensor(lane.reshape([shape.iter().product::<usize>()])))
                .collect()
        });
        let (param, lanes) = self.rule.step_tensors(
            lr,
            time,
            &shape,
            FlatTensor(tensor.reshape([numel])),
            FlatTensor(grad.reshape([numel])),
            lanes,
        );
        let tensors = lanes
            .into_iter()
            .zip(lane_dims)
            .map(|(lane, dims)| lane.0.reshape(*dims))
            .collect();
        (param.0.reshape(shape), tensors)
    }

    /// The update rule and its hyperparameters.
    pub fn rule(&self) -> &R {
        &self.rule
    }
}

/// The dims of a state lane of shape `shape` in a state of rank `D`: the shape itself when it
/// has rank `D`, `[1; D]` for a one-element lane of another rank.
///
/// # Panics
///
/// For a lane of neither kind (a rule whose `state_shapes` breaks its contract).
pub(crate) fn lane_dims<const D: usize>(rule: &str, shape: &[usize]) -> [usize; D] {
    if let Ok(dims) = <[usize; D]>::try_from(shape) {
        dims
    } else {
        assert_eq!(
            shape.iter().product::<usize>(),
            1,
            "{rule}: a state lane of shape {shape:?} in the state of a rank-{D} parameter"
        );
        [1; D]
    }
}

impl<R: OptimizerRule> Optimizer for RuleOptimizer<R> {
    type State<const D: usize> = RuleState<R, D>;

    /// One step of the rule on `tensor`.
    ///
    /// # Panics
    ///
    /// When `lr` is NaN, infinite or negative; when `state` (e.g. loaded from a record) does
    /// not hold the lanes this configuration keeps, with the shapes it expects (a record of
    /// another configuration, such as one with AMSGrad, or of another model).
    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        holocron_optim_core::check_learning_rate(R::NAME, lr);
        let shape = tensor.dims();
        let names = self.rule.state_names();
        let lane_shapes = self.rule.state_shapes(&shape);
        assert_eq!(
            names.len(),
            lane_shapes.len(),
            "{}: {} state names, {} state shapes",
            R::NAME,
            names.len(),
            lane_shapes.len()
        );
        let lane_dims: Vec<[usize; D]> = lane_shapes
            .iter()
            .map(|lane| lane_dims::<D>(R::NAME, lane))
            .collect();
        let (time, lanes) = match state {
            None => (0, None),
            Some(state) => {
                let held: Vec<_> = state.tensors().iter().map(Tensor::dims).collect();
                assert!(
                    state.names() == names.as_slice() && held == lane_dims,
                    "{}: the state of a parameter of shape {shape:?} holds {:?} of shapes \
                     {held:?}; this configuration keeps {names:?} of shapes {lane_dims:?} \
                     (a state of another configuration or another model?)",
                    R::NAME,
                    state.names(),
                );
                let (time, _, tensors) = state.into_parts();
                (time, Some(tensors))
            }
        };
        let declined =
            crate::fused::step(&self.rule, self.execution, lr, time, tensor, grad, lanes);
        let (param, tensors) = match declined {
            Ok((stepped, path)) => {
                count(path);
                stepped
            }
            Err(declined) => {
                let (tensor, grad, lanes) = *declined;
                count(StepPath::Composed);
                self.composed_step(lr, time, tensor, grad, lanes, &lane_shapes, &lane_dims)
            }
        };
        assert_eq!(
            tensors.len(),
            names.len(),
            "{}: the step returned {} state lanes for {names:?}",
            R::NAME,
            tensors.len()
        );
        let time = if R::COUNTS_STEPS { time + 1 } else { 1 };
        (param, Some(RuleState::new(time, names, tensors)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.to_device(device)
    }
}
