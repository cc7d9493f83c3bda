//! What a record must look like to fit a model, per optimizer and wrapper.

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::{AdaptorRecord, AdaptorRecordV1};
use burn::optim::{Optimizer, SimpleOptimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use hashbrown::HashMap;

use super::{CheckpointError, CheckpointErrorKind};
use crate::{Lookahead, LookaheadRecord, Scout, ScoutRecord};

/// A float parameter of a model, as a record is checked against it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    /// The path of the parameter in the module, e.g. `fc1.weight`.
    pub path: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// The float parameters of a model, by id.
#[derive(Debug, Clone, Default)]
pub struct ModuleParams {
    params: HashMap<ParamId, ParamInfo>,
}

impl ModuleParams {
    /// Collects the float parameters of `module`.
    pub fn of<B: Backend, M: Module<B>>(module: &M) -> Self {
        struct Collect {
            path: Vec<String>,
            params: HashMap<ParamId, ParamInfo>,
        }
        impl<B: Backend> ModuleVisitor<B> for Collect {
            fn enter_module(&mut self, name: &str, _container_type: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _name: &str, _container_type: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let shape = param.lazy_shape().to_vec();
                let path = self.path.join(".");
                self.params.insert(param.id, ParamInfo { path, shape });
            }
        }
        let mut collect = Collect {
            path: vec![],
            params: HashMap::new(),
        };
        module.visit(&mut collect);
        Self {
            params: collect.params,
        }
    }

    /// The parameter with this id, or an error saying the record holds state for a
    /// parameter the model does not have.
    pub fn get(&self, id: &ParamId, what: &str) -> Result<&ParamInfo, CheckpointError> {
        self.params.get(id).ok_or_else(|| {
            mismatch(format!(
                "it holds {what} for parameter id {id} which the model does not have \
                 (a different model, or the model's own record was not loaded first: \
                 parameter ids are stored there)"
            ))
        })
    }
}

impl ModuleParams {
    /// `saved` without the entries of parameters the model no longer has (a layer removed
    /// since the save), so that their state is dropped rather than kept forever; refused
    /// when the model has none of them (another model, or the model's own record was not
    /// loaded first).
    pub fn known<V>(
        &self,
        mut saved: HashMap<ParamId, V>,
        what: &str,
    ) -> Result<HashMap<ParamId, V>, CheckpointError> {
        let Some(first) = saved.keys().next().copied() else {
            return Ok(saved);
        };
        saved.retain(|id, _| self.params.contains_key(id));
        if saved.is_empty() {
            self.get(&first, what)?;
        }
        Ok(saved)
    }
}

fn mismatch(message: String) -> CheckpointError {
    CheckpointError::new(CheckpointErrorKind::ModelMismatch, message)
}

/// The per-parameter state layout of a [`SimpleOptimizer`], so that a record can be checked
/// against a model before use.
pub trait StateLayout<B: Backend>: SimpleOptimizer<B> {
    /// The name stored in checkpoints.
    const NAME: &'static str;

    /// The name and shape of each tensor of `state` that has the parameter's shape.
    fn state_shapes<const D: usize>(state: &Self::State<D>) -> Vec<(&'static str, Vec<usize>)>;

    /// The number of steps `state` has taken, where it counts them.
    fn step_count<const D: usize>(_state: &Self::State<D>) -> Option<usize> {
        None
    }

    /// The name, shape and expected shape of each tensor of `state` whose shape does not
    /// follow the parameter's (TAdam's one-element weight sum).
    fn fixed_shapes<const D: usize>(
        _state: &Self::State<D>,
    ) -> Vec<(&'static str, Vec<usize>, Vec<usize>)> {
        Vec::new()
    }
}

/// The most steps a saved state may count: more than any training run takes, and far
/// enough from `usize::MAX` that the next step's count cannot overflow.
pub const MAX_STEP_COUNT: usize = u32::MAX as usize;

/// An optimizer whose record can be checked against a model: this crate's optimizers
/// inside Burn's [`OptimizerAdaptor`], Burn's SGD, Adam and AdamW, and the wrappers around
/// any of them.
pub trait CheckedRecord<M: AutodiffModule<B>, B: AutodiffBackend>: Optimizer<M, B> {
    /// The name stored in checkpoints, e.g. `Lookahead(Lamb)`.
    fn checkpoint_name(&self) -> String;

    /// `record` fitted to the model: the state of parameters the model no longer has
    /// dropped ([`ModuleParams::known`]), and every other state checked to have the rank
    /// and shape of its parameter.
    fn fit_record(
        &self,
        record: Self::Record,
        params: &ModuleParams,
    ) -> Result<Self::Record, CheckpointError>;
}

fn check_state<O: StateLayout<B>, B: Backend>(
    id: &ParamId,
    record: &AdaptorRecordV1<O, B>,
    params: &ModuleParams,
) -> Result<(), CheckpointError> {
    let param = params.get(id, "optimizer state")?;
    fn layout<O: StateLayout<B>, B: Backend, const D: usize>(
        state: &O::State<D>,
    ) -> (usize, SavedLayout) {
        let layout = SavedLayout {
            shapes: O::state_shapes(state),
            step_count: O::step_count(state),
            fixed: O::fixed_shapes(state),
        };
        (D, layout)
    }
    let (rank, saved) = match record {
        AdaptorRecordV1::Rank0(s) => layout::<O, B, 0>(s),
        AdaptorRecordV1::Rank1(s) => layout::<O, B, 1>(s),
        AdaptorRecordV1::Rank2(s) => layout::<O, B, 2>(s),
        AdaptorRecordV1::Rank3(s) => layout::<O, B, 3>(s),
        AdaptorRecordV1::Rank4(s) => layout::<O, B, 4>(s),
        AdaptorRecordV1::Rank5(s) => layout::<O, B, 5>(s),
        AdaptorRecordV1::Rank6(s) => layout::<O, B, 6>(s),
        AdaptorRecordV1::Rank7(s) => layout::<O, B, 7>(s),
        AdaptorRecordV1::Rank8(s) => layout::<O, B, 8>(s),
    };
    if rank != param.shape.len() {
        return Err(mismatch(format!(
            "parameter `{}` has rank {} (shape {:?}), its saved state has rank {rank}",
            param.path,
            param.shape.len(),
            param.shape
        )));
    }
    for (field, shape) in saved.shapes {
        if shape != param.shape {
            return Err(mismatch(format!(
                "parameter `{}` has shape {:?}, its saved state `{field}` has shape {shape:?}",
                param.path, param.shape
            )));
        }
    }
    for (field, shape, expected) in saved.fixed {
        if shape != expected {
            return Err(mismatch(format!(
                "the saved state `{field}` of parameter `{}` has shape {shape:?}, not {expected:?}",
                param.path
            )));
        }
    }
    match saved.step_count {
        Some(count) if count > MAX_STEP_COUNT => Err(mismatch(format!(
            "the saved state of parameter `{}` counts {count} steps, more than the {MAX_STEP_COUNT} a state may count",
            param.path
        ))),
        _ => Ok(()),
    }
}

/// What [`check_state`] reads of one parameter's saved state.
struct SavedLayout {
    shapes: Vec<(&'static str, Vec<usize>)>,
    step_count: Option<usize>,
    fixed: Vec<(&'static str, Vec<usize>, Vec<usize>)>,
}

impl<O, M, B> CheckedRecord<M, B> for OptimizerAdaptor<O, M, B>
where
    O: StateLayout<B::InnerBackend>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
{
    fn checkpoint_name(&self) -> String {
        O::NAME.to_string()
    }

    fn fit_record(
        &self,
        record: Self::Record,
        params: &ModuleParams,
    ) -> Result<Self::Record, CheckpointError> {
        let record = params.known(record, "optimizer state")?;
        record.iter().try_for_each(|(id, state)| match state {
            AdaptorRecord::V1(state) => check_state(id, state, params),
        })?;
        Ok(record)
    }
}

/// Checks flattened weights (slow weights, window rows) against the parameters' sizes.
fn check_flat<B: Backend>(
    id: &ParamId,
    what: &str,
    weights: &Tensor<B, 1>,
    params: &ModuleParams,
) -> Result<(), CheckpointError> {
    let param = params.get(id, what)?;
    let numel: usize = param.shape.iter().product();
    let saved = weights.shape().num_elements();
    if saved != numel {
        return Err(mismatch(format!(
            "parameter `{}` has {numel} elements (shape {:?}), its saved {what} have {saved}",
            param.path, param.shape
        )));
    }
    Ok(())
}

/// The slow weights of a wrapper's record fitted to the model: those of parameters it no
/// longer has dropped, the others checked against their parameter's size.
fn fit_slow<B: Backend>(
    weights: HashMap<ParamId, Tensor<B, 1>>,
    params: &ModuleParams,
) -> Result<HashMap<ParamId, Tensor<B, 1>>, CheckpointError> {
    let weights = params.known(weights, "slow weights")?;
    weights
        .iter()
        .try_for_each(|(id, w)| check_flat(id, "slow weights", w, params))?;
    Ok(weights)
}

/// [`CheckedRecord`] for a wrapper: its name around the inner optimizer's, and its record
/// fitted by `fit` (which gets the record with the inner one already fitted).
macro_rules! checked_wrapper {
    ($wrapper:ident, |$record:ident, $params:ident| $fit:expr) => {
        impl<O, M, B> CheckedRecord<M, B> for $wrapper<O, M, B>
        where
            O: CheckedRecord<M, B>,
            M: AutodiffModule<B>,
            B: AutodiffBackend,
        {
            fn checkpoint_name(&self) -> String {
                format!(
                    concat!(stringify!($wrapper), "({})"),
                    self.inner().checkpoint_name()
                )
            }

            fn fit_record(
                &self,
                record: Self::Record,
                $params: &ModuleParams,
            ) -> Result<Self::Record, CheckpointError> {
                let inner = self.inner().fit_record(record.inner, $params)?;
                let $record = Self::Record { inner, ..record };
                $fit
            }
        }
    };
}

checked_wrapper!(Lookahead, |record, params| Ok(LookaheadRecord {
    slow_weights: fit_slow(record.slow_weights, params)?,
    ..record
}));

checked_wrapper!(Scout, |record, params| {
    let window = params.known(record.window, "window weights")?;
    window.iter().try_for_each(|(id, rows)| {
        rows.iter()
            .try_for_each(|w| check_flat(id, "window weights", w, params))
    })?;
    Ok(ScoutRecord {
        slow_weights: fit_slow(record.slow_weights, params)?,
        window,
        ..record
    })
});

pub(crate) fn shape<B: Backend, const D: usize>(tensor: &Tensor<B, D>) -> Vec<usize> {
    tensor.shape().to_vec()
}

impl<B: Backend> StateLayout<B> for burn::optim::Sgd<B> {
    const NAME: &'static str = "burn::Sgd";

    fn state_shapes<const D: usize>(_state: &Self::State<D>) -> Vec<(&'static str, Vec<usize>)> {
        // Burn keeps the momentum buffer private: only the rank can be checked.
        vec![]
    }
}

fn adaptive_momentum_shapes<B: Backend, const D: usize>(
    state: &burn::optim::AdaptiveMomentumState<B, D>,
) -> Vec<(&'static str, Vec<usize>)> {
    let mut shapes = vec![
        ("moment_1", shape(&state.moment_1)),
        ("moment_2", shape(&state.moment_2)),
    ];
    if let Some(max) = &state.max_moment_2 {
        shapes.push(("max_moment_2", shape(max)));
    }
    shapes
}

/// Burn's Adam and AdamW keep the same adaptive-momentum state.
macro_rules! burn_adaptive_momentum {
    ($($optim:ident),*) => {$(
        impl<B: Backend> StateLayout<B> for burn::optim::$optim {
            const NAME: &'static str = concat!("burn::", stringify!($optim));

            fn state_shapes<const D: usize>(
                state: &Self::State<D>,
            ) -> Vec<(&'static str, Vec<usize>)> {
                adaptive_momentum_shapes(&state.momentum)
            }

            fn step_count<const D: usize>(state: &Self::State<D>) -> Option<usize> {
                Some(state.momentum.time)
            }
        }
    )*};
}

burn_adaptive_momentum!(Adam, AdamW);

pub(crate) use shape as tensor_shape;
