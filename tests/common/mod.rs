//! Test support shared by the workspace test targets: every optimizer behind one enum, a
//! module made of explicit parameter tensors of ranks 1 to 4, helpers to step it with
//! given gradients, and readers of every optimizer's and wrapper's state by name.
#![allow(dead_code)]

use std::collections::BTreeMap;

use burn::module::{AutodiffModule, Module, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::AdaptorRecord;
use burn::optim::{GradientsParams, Optimizer, Sgd, SgdConfig, SgdState, SimpleOptimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Element, Tensor, TensorData};
use holocron_optim::blocks::{AdamMomentsState, SecondMomentState};
use holocron_optim::checkpoint::CheckedRecord;
use holocron_optim::*;

/// Any optimizer configuration of this crate, plus plain SGD (the inner optimizer of some
/// golden wrapper cases).
#[derive(Debug)]
pub enum AnyConfig {
    Lars(LarsConfig),
    Lamb(LambConfig),
    RaLars(RaLarsConfig),
    TAdam(TAdamConfig),
    AdaBelief(AdaBeliefConfig),
    AdamP(AdamPConfig),
    Adan(AdanConfig),
    AdEMAMix(AdEMAMixConfig),
    Sgd,
}

/// Something to do with an optimizer, whatever its concrete type. Every optimizer built
/// here (this crate's, Burn's SGD, and wrappers around them) can be checkpointed.
pub trait WithOptimizer<B: AutodiffBackend, M: AutodiffModule<B>> {
    type Output;
    fn run<O: CheckedRecord<M, B>>(self, optim: O) -> Self::Output;
}

impl AnyConfig {
    /// Initializes the optimizer and hands it to `job`.
    pub fn with<B, M, J>(&self, job: J) -> J::Output
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
        J: WithOptimizer<B, M>,
    {
        match self {
            AnyConfig::Lars(c) => job.run(c.init::<B, M>()),
            AnyConfig::Lamb(c) => job.run(c.init::<B, M>()),
            AnyConfig::RaLars(c) => job.run(c.init::<B, M>()),
            AnyConfig::TAdam(c) => job.run(c.init::<B, M>()),
            AnyConfig::AdaBelief(c) => job.run(c.init::<B, M>()),
            AnyConfig::AdamP(c) => job.run(c.init::<B, M>()),
            AnyConfig::Adan(c) => job.run(c.init::<B, M>()),
            AnyConfig::AdEMAMix(c) => job.run(c.init::<B, M>()),
            AnyConfig::Sgd => job.run(SgdConfig::new().init::<B, M>()),
        }
    }

    /// The same configuration on the fused path wherever one exists (`Execution::Fused`)
    /// or always on the composed one (SGD has no fused step).
    pub fn with_fused(self, fused: bool) -> Self {
        self.with_execution(if fused {
            Execution::Fused
        } else {
            Execution::Composed
        })
    }

    /// The same configuration with another [`Execution`].
    pub fn with_execution(self, execution: Execution) -> Self {
        use AnyConfig::*;
        match self {
            Lars(c) => Lars(c.with_execution(execution)),
            Lamb(c) => Lamb(c.with_execution(execution)),
            RaLars(c) => RaLars(c.with_execution(execution)),
            TAdam(c) => TAdam(c.with_execution(execution)),
            AdaBelief(c) => AdaBelief(c.with_execution(execution)),
            AdamP(c) => AdamP(c.with_execution(execution)),
            Adan(c) => Adan(c.with_execution(execution)),
            AdEMAMix(c) => AdEMAMix(c.with_execution(execution)),
            Sgd => Sgd,
        }
    }

    /// The error `try_init` returns for this configuration, as a message.
    pub fn try_init_error<B: AutodiffBackend, M: AutodiffModule<B>>(&self) -> Option<String> {
        let message = |e: ConfigError| e.to_string();
        match self {
            AnyConfig::Lars(c) => c.try_init::<B, M>().err().map(message),
            AnyConfig::Lamb(c) => c.try_init::<B, M>().err().map(message),
            AnyConfig::RaLars(c) => c.try_init::<B, M>().err().map(message),
            AnyConfig::TAdam(c) => c.try_init::<B, M>().err().map(message),
            AnyConfig::AdaBelief(c) => c.try_init::<B, M>().err().map(message),
            AnyConfig::AdamP(c) => c.try_init::<B, M>().err().map(message),
            AnyConfig::Adan(c) => c.try_init::<B, M>().err().map(message),
            AnyConfig::AdEMAMix(c) => c.try_init::<B, M>().err().map(message),
            AnyConfig::Sgd => None,
        }
    }

    /// Validation result of the configuration, as a message.
    pub fn validate(&self) -> Result<(), String> {
        let result = match self {
            AnyConfig::Lars(c) => c.validate(),
            AnyConfig::Lamb(c) => c.validate(),
            AnyConfig::RaLars(c) => c.validate(),
            AnyConfig::TAdam(c) => c.validate(),
            AnyConfig::AdaBelief(c) => c.validate(),
            AnyConfig::AdamP(c) => c.validate(),
            AnyConfig::Adan(c) => c.validate(),
            AnyConfig::AdEMAMix(c) => c.validate(),
            AnyConfig::Sgd => Ok(()),
        };
        result.map_err(|e| e.to_string())
    }
}

/// Which rank and slot a parameter occupies in a [`ParamSet`].
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub rank: usize,
    pub index: usize,
}

/// A module holding explicit parameter tensors of ranks 1 to 4.
#[derive(Module, Debug)]
pub struct ParamSet<B: Backend> {
    pub rank1: Vec<Param<Tensor<B, 1>>>,
    pub rank2: Vec<Param<Tensor<B, 2>>>,
    pub rank3: Vec<Param<Tensor<B, 3>>>,
    pub rank4: Vec<Param<Tensor<B, 4>>>,
}

pub fn tensor<B: Backend, const D: usize>(
    shape: &[usize],
    values: &[f64],
    device: &B::Device,
) -> Tensor<B, D> {
    // Burn 0.21 keeps one default float dtype per device, shared by NdArray<f32> and
    // NdArray<f64>: name the dtype so one process can hold both.
    let dtype = <B::FloatElem as Element>::dtype();
    let data = TensorData::new(values.to_vec(), shape.to_vec()).convert::<B::FloatElem>();
    Tensor::from_data(data, (device, dtype))
}

impl<B: Backend> ParamSet<B> {
    /// Builds the set from `(shape, values)` pairs, in order; returns each one's slot.
    pub fn new(specs: &[(Vec<usize>, Vec<f64>)], device: &B::Device) -> (Self, Vec<Slot>) {
        let mut set = ParamSet {
            rank1: vec![],
            rank2: vec![],
            rank3: vec![],
            rank4: vec![],
        };
        let mut slots = vec![];
        for (shape, values) in specs {
            let rank = shape.len();
            let index = match rank {
                1 => push(&mut set.rank1, shape, values, device),
                2 => push(&mut set.rank2, shape, values, device),
                3 => push(&mut set.rank3, shape, values, device),
                4 => push(&mut set.rank4, shape, values, device),
                _ => panic!("rank {rank} is not supported by the test parameter set"),
            };
            slots.push(Slot { rank, index });
        }
        (set, slots)
    }

    /// Rebuilds the set with the same parameter ids but the given values and shapes, as a
    /// model whose layers changed would look to a saved optimizer record.
    pub fn with_ids(
        ids: &[ParamId],
        specs: &[(Vec<usize>, Vec<f64>)],
        device: &B::Device,
    ) -> (Self, Vec<Slot>) {
        let (mut set, slots) = Self::new(specs, device);
        for (slot, id) in slots.iter().zip(ids) {
            match slot.rank {
                1 => set.rank1[slot.index] = Param::initialized(*id, set.rank1[slot.index].val()),
                2 => set.rank2[slot.index] = Param::initialized(*id, set.rank2[slot.index].val()),
                3 => set.rank3[slot.index] = Param::initialized(*id, set.rank3[slot.index].val()),
                _ => set.rank4[slot.index] = Param::initialized(*id, set.rank4[slot.index].val()),
            }
        }
        (set, slots)
    }

    pub fn id(&self, slot: Slot) -> ParamId {
        match slot.rank {
            1 => self.rank1[slot.index].id,
            2 => self.rank2[slot.index].id,
            3 => self.rank3[slot.index].id,
            _ => self.rank4[slot.index].id,
        }
    }

    /// The device of every parameter, by id.
    pub fn devices(&self) -> std::collections::HashMap<ParamId, B::Device> {
        let mut devices = std::collections::HashMap::new();
        let mut add = |id: ParamId, device: B::Device| {
            devices.insert(id, device);
        };
        self.rank1.iter().for_each(|p| add(p.id, p.val().device()));
        self.rank2.iter().for_each(|p| add(p.id, p.val().device()));
        self.rank3.iter().for_each(|p| add(p.id, p.val().device()));
        self.rank4.iter().for_each(|p| add(p.id, p.val().device()));
        devices
    }

    /// The values of a parameter, row-major, as f64.
    pub fn values(&self, slot: Slot) -> Vec<f64> {
        match slot.rank {
            1 => flat_values(&self.rank1[slot.index].val()),
            2 => flat_values(&self.rank2[slot.index].val()),
            3 => flat_values(&self.rank3[slot.index].val()),
            _ => flat_values(&self.rank4[slot.index].val()),
        }
    }
}

fn push<B: Backend, const D: usize>(
    list: &mut Vec<Param<Tensor<B, D>>>,
    shape: &[usize],
    values: &[f64],
    device: &B::Device,
) -> usize {
    list.push(Param::from_tensor(tensor(shape, values, device)));
    list.len() - 1
}

/// Gradients for the given slots (`None`: that parameter gets no gradient this step).
pub fn gradients<B: AutodiffBackend>(
    set: &ParamSet<B>,
    slots: &[Slot],
    shapes: &[Vec<usize>],
    grads: &[Option<Vec<f64>>],
    device: &B::Device,
) -> GradientsParams {
    let mut params = GradientsParams::new();
    for ((slot, shape), grad) in slots.iter().zip(shapes).zip(grads) {
        let Some(values) = grad else { continue };
        let id = set.id(*slot);
        match slot.rank {
            1 => params.register(id, tensor::<B::InnerBackend, 1>(shape, values, device)),
            2 => params.register(id, tensor::<B::InnerBackend, 2>(shape, values, device)),
            3 => params.register(id, tensor::<B::InnerBackend, 3>(shape, values, device)),
            _ => params.register(id, tensor::<B::InnerBackend, 4>(shape, values, device)),
        }
    }
    params
}

/// The element-wise sum of two sets of gradients, each given for every tensor.
pub fn summed(a: &[Option<Vec<f64>>], b: &[Option<Vec<f64>>]) -> Vec<Option<Vec<f64>>> {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let (x, y) = (x.as_ref().unwrap(), y.as_ref().unwrap());
            Some(x.iter().zip(y).map(|(u, v)| u + v).collect())
        })
        .collect()
}

/// A deterministic, sign-changing sequence of `n` values for gradients and parameters.
pub fn wave(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|k| ((k as f64 + 1.0) * 1.618 + seed * 2.5).sin() * (1.0 + (k % 3) as f64))
        .collect()
}

/// A parameter set of ranks 1 to 4 with non-zero values, plus its slots and shapes.
pub fn mixed_params<B: Backend>(device: &B::Device) -> (ParamSet<B>, Vec<Slot>, Vec<Vec<usize>>) {
    let (specs, shapes) = mixed_specs();
    let (set, slots) = ParamSet::new(&specs, device);
    (set, slots, shapes)
}

/// A parameter's shape and row-major values.
pub type Spec = (Vec<usize>, Vec<f64>);

/// The shapes and values of [`mixed_params`], and the shapes alone.
pub fn mixed_specs() -> (Vec<Spec>, Vec<Vec<usize>>) {
    let shapes: Vec<Vec<usize>> = vec![vec![5], vec![4, 3], vec![2, 2, 3], vec![2, 3, 2, 2]];
    let specs: Vec<_> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), wave(s.iter().product(), i as f64)))
        .collect();
    (specs, shapes)
}

/// Gradients for `mixed_params` at `step`.
pub fn mixed_grads(shapes: &[Vec<usize>], step: usize) -> Vec<Option<Vec<f64>>> {
    shapes
        .iter()
        .enumerate()
        .map(|(i, s)| Some(wave(s.iter().product(), 10.0 * step as f64 + i as f64)))
        .collect()
}

/// A wrapper around the inner optimizer, if any.
#[derive(Debug, Clone)]
pub enum WrapperConfig {
    Lookahead(LookaheadConfig),
    Scout(ScoutConfig),
}

impl WrapperConfig {
    /// The same wrapper with its sync on the fused path wherever one exists, or always on
    /// the composed one.
    pub fn with_fused(self, fused: bool) -> Self {
        let execution = if fused {
            Execution::Fused
        } else {
            Execution::Composed
        };
        match self {
            WrapperConfig::Lookahead(c) => WrapperConfig::Lookahead(c.with_execution(execution)),
            WrapperConfig::Scout(c) => WrapperConfig::Scout(c.with_execution(execution)),
        }
    }
}

/// Runs `job` with the optimizer wrapped as `wrapper` says.
pub struct Wrap<J> {
    pub wrapper: Option<WrapperConfig>,
    pub job: J,
}

impl<B, M, J> WithOptimizer<B, M> for Wrap<J>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    J: WithOptimizer<B, M>,
{
    type Output = J::Output;

    fn run<O: CheckedRecord<M, B>>(self, optim: O) -> J::Output {
        match self.wrapper {
            None => self.job.run(optim),
            Some(WrapperConfig::Lookahead(c)) => self.job.run(c.init(optim)),
            Some(WrapperConfig::Scout(c)) => self.job.run(c.init(optim)),
        }
    }
}

/// Every optimizer with each flag that adds state, and both wrappers (period 4, so that a
/// run of a few steps ends in the middle of a window).
pub fn flagged_case(name: &str) -> (AnyConfig, Option<WrapperConfig>) {
    use AnyConfig::*;
    match name {
        "lars" => (Lars(LarsConfig::new()), None),
        "lars_momentum" => (Lars(LarsConfig::new().with_momentum(0.9)), None),
        "lars_nesterov" => (
            Lars(LarsConfig::new().with_momentum(0.9).with_nesterov(true)),
            None,
        ),
        "lamb" => (Lamb(LambConfig::new().with_weight_decay(0.01)), None),
        "ralars" => (RaLars(RaLarsConfig::new()), None),
        "tadam" => (TAdam(TAdamConfig::new()), None),
        "tadam_amsgrad" => (TAdam(TAdamConfig::new().with_amsgrad(true)), None),
        "adabelief_amsgrad" => (AdaBelief(AdaBeliefConfig::new().with_amsgrad(true)), None),
        "adamp_amsgrad" => (AdamP(AdamPConfig::new().with_amsgrad(true)), None),
        "adan" => (Adan(AdanConfig::new()), None),
        "adan_amsgrad" => (Adan(AdanConfig::new().with_amsgrad(true)), None),
        "ademamix" => (AdEMAMix(AdEMAMixConfig::new()), None),
        "lookahead_lamb" => (
            Lamb(LambConfig::new()),
            Some(WrapperConfig::Lookahead(
                LookaheadConfig::new().with_sync_period(4),
            )),
        ),
        "scout_adabelief" => (
            AdaBelief(AdaBeliefConfig::new()),
            Some(WrapperConfig::Scout(ScoutConfig::new().with_sync_period(4))),
        ),
        other => panic!("unknown case {other}"),
    }
}

/// One parameter's optimizer state by this crate's state names (`moment_1`, `moment_2`,
/// `max_moment_2`, `time`, ...; wrappers add `slow`), each flattened to `f64` values
/// (`time` as one value). These are the names of the golden files' `state` entries.
pub type NamedValues = BTreeMap<String, Vec<f64>>;

/// The values of a tensor, row-major, as `f64`.
pub fn flat_values<B: Backend, const D: usize>(tensor: &Tensor<B, D>) -> Vec<f64> {
    tensor
        .clone()
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .unwrap()
}

/// A [`SimpleOptimizer`] whose per-parameter state can be read by name.
pub trait NamedState<B: Backend>: SimpleOptimizer<B> {
    fn named<const D: usize>(state: Self::State<D>) -> NamedValues;
}

fn put<B: Backend, const D: usize>(out: &mut NamedValues, name: &str, tensor: &Tensor<B, D>) {
    out.insert(name.to_string(), flat_values(tensor));
}

fn put_time(out: &mut NamedValues, time: usize) {
    out.insert("time".to_string(), vec![time as f64]);
}

/// `moment_2` and, with AMSGrad, `max_moment_2`.
fn put_second<B: Backend, const D: usize>(out: &mut NamedValues, second: &SecondMomentState<B, D>) {
    put(out, "moment_2", &second.average);
    if let Some(max) = &second.max_average {
        put(out, "max_moment_2", max);
    }
}

/// `time`, `moment_1`, `moment_2` and `max_moment_2` (AMSGrad only).
fn adam_moments<B: Backend, const D: usize>(moments: &AdamMomentsState<B, D>) -> NamedValues {
    let mut out = NamedValues::new();
    put_time(&mut out, moments.time);
    put(&mut out, "moment_1", &moments.moment_1);
    put_second(&mut out, &moments.moment_2);
    out
}

impl<B: Backend> NamedState<B> for Lars {
    fn named<const D: usize>(state: LarsState<B, D>) -> NamedValues {
        let mut out = NamedValues::new();
        put(&mut out, "momentum.buffer", &state.momentum.buffer);
        out
    }
}

impl<B: Backend> NamedState<B> for Lamb {
    fn named<const D: usize>(state: LambState<B, D>) -> NamedValues {
        adam_moments(&state)
    }
}

impl<B: Backend> NamedState<B> for RaLars {
    fn named<const D: usize>(state: RaLarsState<B, D>) -> NamedValues {
        adam_moments(&state)
    }
}

impl<B: Backend> NamedState<B> for AdaBelief {
    fn named<const D: usize>(state: AdaBeliefState<B, D>) -> NamedValues {
        adam_moments(&state)
    }
}

impl<B: Backend> NamedState<B> for AdamP {
    fn named<const D: usize>(state: AdamPState<B, D>) -> NamedValues {
        adam_moments(&state)
    }
}

impl<B: Backend> NamedState<B> for AdEMAMix {
    fn named<const D: usize>(state: AdEMAMixState<B, D>) -> NamedValues {
        let mut out = adam_moments(&state.moments);
        put(&mut out, "slow_moment", &state.slow_moment);
        out
    }
}

impl<B: Backend> NamedState<B> for TAdam {
    fn named<const D: usize>(state: TAdamState<B, D>) -> NamedValues {
        let mut out = NamedValues::new();
        put_time(&mut out, state.time);
        put(&mut out, "moment_1", &state.moment_1);
        put_second(&mut out, &state.moment_2);
        put(&mut out, "weight_sum", &state.weight_sum);
        out
    }
}

impl<B: Backend> NamedState<B> for Adan {
    fn named<const D: usize>(state: AdanState<B, D>) -> NamedValues {
        let mut out = NamedValues::new();
        put_time(&mut out, state.time);
        put(&mut out, "moment_1", &state.moment_1);
        put(&mut out, "moment_diff", &state.moment_diff);
        put(&mut out, "previous_grad", &state.previous_grad);
        put_second(&mut out, &state.moment_2);
        out
    }
}

impl<B: Backend> NamedState<B> for Sgd<B> {
    fn named<const D: usize>(state: SgdState<B, D>) -> NamedValues {
        // Burn keeps its momentum buffer private; the golden cases use SGD without momentum.
        assert!(
            state.momentum.is_none(),
            "the state of Burn's SGD with momentum cannot be read"
        );
        NamedValues::new()
    }
}

/// An optimizer whose record can be read per parameter, by state name.
pub trait ReadStates<M: AutodiffModule<B>, B: AutodiffBackend>: Optimizer<M, B> {
    /// The state `record` holds for the parameter `id` of rank `rank`, `None` when it holds
    /// none.
    fn param_state(record: &Self::Record, id: ParamId, rank: usize) -> Option<NamedValues>;
}

impl<O, M, B> ReadStates<M, B> for OptimizerAdaptor<O, M, B>
where
    O: NamedState<B::InnerBackend>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
{
    fn param_state(record: &Self::Record, id: ParamId, rank: usize) -> Option<NamedValues> {
        let state: AdaptorRecord<O, B> = record.get(&id)?.clone();
        Some(match rank {
            1 => O::named(state.into_state::<1>()),
            2 => O::named(state.into_state::<2>()),
            3 => O::named(state.into_state::<3>()),
            4 => O::named(state.into_state::<4>()),
            _ => panic!("rank {rank} is not supported by the test parameter set"),
        })
    }
}

/// The inner optimizer's state plus the wrapper's slow weights, if it holds them.
fn with_slow<B: Backend>(
    inner: Option<NamedValues>,
    slow: Option<&Tensor<B, 1>>,
) -> Option<NamedValues> {
    let Some(slow) = slow else { return inner };
    let mut out = inner.unwrap_or_default();
    put(&mut out, "slow", slow);
    Some(out)
}

impl<O, M, B> ReadStates<M, B> for Lookahead<O, M, B>
where
    O: ReadStates<M, B>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
{
    fn param_state(record: &Self::Record, id: ParamId, rank: usize) -> Option<NamedValues> {
        with_slow(
            O::param_state(&record.inner, id, rank),
            record.slow_weights.get(&id),
        )
    }
}

impl<O, M, B> ReadStates<M, B> for Scout<O, M, B>
where
    O: ReadStates<M, B>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
{
    fn param_state(record: &Self::Record, id: ParamId, rank: usize) -> Option<NamedValues> {
        with_slow(
            O::param_state(&record.inner, id, rank),
            record.slow_weights.get(&id),
        )
    }
}

/// Like [`WithOptimizer`], for jobs that also read the optimizer's state.
pub trait WithReadableOptimizer<B: AutodiffBackend, M: AutodiffModule<B>> {
    type Output;
    fn run<O: CheckedRecord<M, B> + ReadStates<M, B>>(self, optim: O) -> Self::Output;
}

impl AnyConfig {
    /// Like [`AnyConfig::with`], for a job that reads the optimizer's state.
    pub fn with_readable<B, M, J>(&self, job: J) -> J::Output
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
        J: WithReadableOptimizer<B, M>,
    {
        match self {
            AnyConfig::Lars(c) => job.run(c.init::<B, M>()),
            AnyConfig::Lamb(c) => job.run(c.init::<B, M>()),
            AnyConfig::RaLars(c) => job.run(c.init::<B, M>()),
            AnyConfig::TAdam(c) => job.run(c.init::<B, M>()),
            AnyConfig::AdaBelief(c) => job.run(c.init::<B, M>()),
            AnyConfig::AdamP(c) => job.run(c.init::<B, M>()),
            AnyConfig::Adan(c) => job.run(c.init::<B, M>()),
            AnyConfig::AdEMAMix(c) => job.run(c.init::<B, M>()),
            AnyConfig::Sgd => job.run(SgdConfig::new().init::<B, M>()),
        }
    }
}

impl<B, M, J> WithReadableOptimizer<B, M> for Wrap<J>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    J: WithReadableOptimizer<B, M>,
{
    type Output = J::Output;

    fn run<O: CheckedRecord<M, B> + ReadStates<M, B>>(self, optim: O) -> J::Output {
        match self.wrapper {
            None => self.job.run(optim),
            Some(WrapperConfig::Lookahead(c)) => self.job.run(c.init(optim)),
            Some(WrapperConfig::Scout(c)) => self.job.run(c.init(optim)),
        }
    }
}
