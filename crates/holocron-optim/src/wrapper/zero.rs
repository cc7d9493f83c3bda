//! Optimizer state sharded across data-parallel workers (ZeRO stage 1), over Burn's
//! collective operations.

use core::marker::PhantomData;

use burn::config::Config;
use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{
    GradientsParams, LearningRate, MultiGradientsParams, Optimizer, SimpleOptimizer,
};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorPrimitive};
use burn_collective::{PeerId, ReduceOperation};
use hashbrown::{HashMap, HashSet};
use serde::{Deserialize, Serialize};

use super::Lookahead;
use super::slow::map_value;
use crate::error::{Checker, ConfigError};

/// How [`ZeroRedundancy`] combines the workers' gradients before the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GradientReduction {
    /// The sum over workers, as Burn's multi-device strategies add the devices' gradients.
    Sum,
    /// The mean over workers, as PyTorch's `DistributedDataParallel` averages them.
    Mean,
    /// None: the gradients given to `step` are already the same on every worker (reduced
    /// by the caller, e.g. during backward by Burn's `DistributedDataParallel`).
    AlreadyReduced,
}

/// Configuration of [`ZeroRedundancy`].
#[derive(Config, Debug)]
pub struct ZeroRedundancyConfig {
    /// Number of data-parallel workers (`>= 1`), each registered with `burn_collective`
    /// as peer `0..workers`.
    pub workers: usize,
    /// How the workers' gradients are combined.
    #[config(default = "GradientReduction::Sum")]
    pub gradients: GradientReduction,
}

impl ZeroRedundancyConfig {
    /// Checks `workers` and the worker's `rank`.
    pub fn validate(&self, rank: usize) -> Result<(), ConfigError> {
        let check = Checker::new("ZeroRedundancyConfig");
        check.period("workers", self.workers)?;
        if rank >= self.workers {
            check.fail("rank", rank, "an integer < workers")?;
        }
        Ok(())
    }

    /// Wraps `inner` for the worker `rank` (its `burn_collective` peer id).
    ///
    /// # Panics
    ///
    /// If `workers` is 0 or `rank >= workers`; [`Self::try_init`] returns the error.
    pub fn init<O, M, B>(&self, rank: usize, inner: O) -> ZeroRedundancy<O, M, B>
    where
        O: Optimizer<M, B> + ShardState,
        M: AutodiffModule<B>,
        B: AutodiffBackend,
    {
        self.try_init(rank, inner)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Like [`Self::init`], but returns an invalid field as an error.
    pub fn try_init<O, M, B>(
        &self,
        rank: usize,
        inner: O,
    ) -> Result<ZeroRedundancy<O, M, B>, ConfigError>
    where
        O: Optimizer<M, B> + ShardState,
        M: AutodiffModule<B>,
        B: AutodiffBackend,
    {
        self.validate(rank)?;
        Ok(ZeroRedundancy {
            inner,
            rank,
            workers: self.workers,
            gradients: self.gradients,
            owners: None,
            _module: PhantomData,
        })
    }
}

/// An optimizer whose per-parameter state can be limited to some of the parameters: the
/// inner optimizer of [`ZeroRedundancy`].
///
/// Burn's `OptimizerAdaptor` (every optimizer of this crate, and Burn's own) keeps state
/// only for the parameters it gets a gradient for, which `ZeroRedundancy` gives it only
/// for the worker's shard; [`Lookahead`] keeps slow weights for every parameter of the
/// module unless told its shard. [`Scout`](crate::Scout) has none: its sync rate is a
/// mean over all the parameters, which a shard does not have.
pub trait ShardState {
    /// From now on, keeps state only for the parameters in `owned`.
    fn keep_only(&mut self, owned: &HashSet<ParamId>);
}

impl<O, M, B> ShardState for OptimizerAdaptor<O, M, B>
where
    O: SimpleOptimizer<B::InnerBackend>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
{
    fn keep_only(&mut self, _owned: &HashSet<ParamId>) {}
}

impl<O, M, B> ShardState for Lookahead<O, M, B>
where
    O: Optimizer<M, B> + ShardState,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
{
    fn keep_only(&mut self, owned: &HashSet<ParamId>) {
        self.shard(owned.clone());
        self.inner_mut().keep_only(owned);
    }
}

/// ZeRO stage 1 ([Rajbhandari et al., 2020](https://arxiv.org/abs/1910.02054)), as
/// PyTorch's `ZeroRedundancyOptimizer`: each of `workers` data-parallel workers keeps the
/// optimizer state of about `1/workers` of the parameters (by elements) and steps only
/// those; the updated parameters are then shared with the other workers.
///
/// Each worker runs its own copy of the model on its own batch, in its own thread (or
/// process), and calls `step` with its own gradients. A step:
///
/// ```text
/// owner(p)   = the worker with the fewest elements so far, parameters taken from the
///              largest to the smallest (ties: module order, lowest rank); fixed at the
///              first step
/// g(p)       = all_reduce(g_worker(p))          (sum or mean; skipped if already reduced)
/// p         <- inner step on p                  (only where owner(p) = this worker)
/// p         <- broadcast(p) from owner(p)       (every parameter with a gradient)
/// ```
///
/// so every worker ends each step with the same parameters as one optimizer stepping the
/// whole model on the reduced gradients (the same arithmetic; the reduction's order may
/// differ in the last bits). The state of a parameter lives only on its owner; wrap
/// [`Lookahead`] and its slow weights are sharded the same way. [`Self::owned`] tells which
/// parameters this worker owns; its record holds only their state (save one per worker).
///
/// Every worker registers with Burn's collective operations before its first step, as peer
/// `rank` of `workers` (`holocron_optim::collective::register::<Backend>(PeerId::from(rank),
/// device, CollectiveConfig::default().with_num_devices(workers))`, the inner backend),
/// and all workers must have gradients for the same parameters at every step (the
/// collective calls pair up in module order).
///
/// ```
/// # #[cfg(feature = "ndarray")] {
/// use burn::backend::{Autodiff, NdArray};
/// use burn::module::{Module, Param};
/// use burn::optim::{GradientsParams, Optimizer};
/// use burn::tensor::{Tensor, TensorData};
/// use holocron_optim::collective::{self, CollectiveConfig, PeerId};
/// use holocron_optim::{AdaBeliefConfig, ZeroRedundancyConfig};
///
/// type B = Autodiff<NdArray>;
///
/// #[derive(Module, Debug)]
/// struct Model<B: burn::tensor::backend::Backend> {
///     weight: Param<Tensor<B, 2>>,
///     bias: Param<Tensor<B, 1>>,
/// }
///
/// let workers = 2;
/// let threads: Vec<_> = (0..workers)
///     .map(|rank| {
///         std::thread::spawn(move || {
///             let device = Default::default();
///             let config = CollectiveConfig::default().with_num_devices(workers);
///             collective::register::<NdArray>(PeerId::from(rank), device, config).unwrap();
///             let weight = TensorData::new(vec![0.5f32, -1.0, 2.0, 0.25], [2, 2]);
///             let bias = TensorData::new(vec![0.1f32, -0.2], [2]);
///             let mut model = Model::<B> {
///                 weight: Param::from_tensor(Tensor::from_data(weight, &device)),
///                 bias: Param::from_tensor(Tensor::from_data(bias, &device)),
///             };
///             let mut optim = ZeroRedundancyConfig::new(workers)
///                 .init(rank, AdaBeliefConfig::new().init());
///             for _ in 0..3 {
///                 // Each worker's own loss (here, on its own scale of the weights).
///                 let scale = 1.0 + rank as f32;
///                 let loss = model.weight.val().mul_scalar(scale).sum()
///                     + model.bias.val().powi_scalar(2).sum();
///                 let grads = GradientsParams::from_grads(loss.backward(), &model);
///                 model = optim.step(1e-2, model, grads);
///             }
///             // The worker owns one of the two tensors and keeps state for it only.
///             assert_eq!(optim.owned().len(), 1);
///             collective::finish_collective::<NdArray>(PeerId::from(rank)).unwrap();
///             model.weight.val().into_data()
///         })
///     })
///     .collect();
/// let weights: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
/// assert_eq!(weights[0], weights[1]);
/// # }
/// ```
#[derive(Clone)]
pub struct ZeroRedundancy<O, M, B: AutodiffBackend> {
    inner: O,
    rank: usize,
    workers: usize,
    gradients: GradientReduction,
    /// Each parameter's owner, fixed at the first step.
    owners: Option<HashMap<ParamId, usize>>,
    _module: PhantomData<fn() -> (M, B)>,
}

impl<O, M, B> ZeroRedundancy<O, M, B>
where
    O: Optimizer<M, B> + ShardState,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
{
    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The parameters this worker owns (steps and keeps the state of); empty before the
    /// first step.
    pub fn owned(&self) -> HashSet<ParamId> {
        self.owners
            .iter()
            .flatten()
            .filter(|(_, owner)| **owner == self.rank)
            .map(|(id, _)| *id)
            .collect()
    }

    fn peer(&self) -> PeerId {
        PeerId::from(self.rank)
    }

    /// Assigns the owners at the first step (and tells the inner optimizer its shard).
    fn assign_owners(&mut self, module: &M) {
        if self.owners.is_none() {
            self.owners = Some(partition::<B, M>(module, self.workers));
            let owned = self.owned();
            self.inner.keep_only(&owned);
        }
    }
}

/// Assigns each parameter of `module` to one of `workers`, balancing their elements.
fn partition<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    workers: usize,
) -> HashMap<ParamId, usize> {
    struct Sizes(Vec<(ParamId, usize)>);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Sizes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push((param.id, param.val().shape().num_elements()));
        }
    }
    let mut sizes = Sizes(Vec::new());
    module.visit(&mut sizes);
    let mut params = sizes.0;
    // Stable: equal sizes keep module order, so every worker computes the same owners.
    params.sort_by_key(|(_, numel)| core::cmp::Reverse(*numel));
    let mut load = vec![0usize; workers];
    params
        .into_iter()
        .map(|(id, numel)| {
            let (owner, _) = load
                .iter()
                .enumerate()
                .min_by_key(|(rank, load)| (**load, *rank))
                .expect("at least one worker");
            load[owner] += numel;
            (id, owner)
        })
        .collect()
}

/// Reduces each gradient over the workers (in module order, as every worker does) and
/// keeps those of the parameters this worker owns; `reduced` receives every parameter
/// that had a gradient.
struct Reduce<'a, B: AutodiffBackend> {
    grads: GradientsParams,
    owned: GradientsParams,
    reduced: &'a mut HashSet<ParamId>,
    owners: &'a HashMap<ParamId, usize>,
    rank: usize,
    reduction: GradientReduction,
    _backend: PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Reduce<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) else {
            return;
        };
        let operation = match self.reduction {
            GradientReduction::Sum => Some(ReduceOperation::Sum),
            GradientReduction::Mean => Some(ReduceOperation::Mean),
            GradientReduction::AlreadyReduced => None,
        };
        let grad = match operation {
            Some(operation) => {
                let reduced = burn_collective::all_reduce::<B::InnerBackend>(
                    PeerId::from(self.rank),
                    grad.into_primitive().tensor(),
                    operation,
                )
                .unwrap_or_else(|err| panic!("ZeroRedundancy: all-reduce of a gradient: {err:?}"));
                Tensor::from_primitive(TensorPrimitive::Float(reduced))
            }
            None => grad,
        };
        self.reduced.insert(param.id);
        if self.owners.get(&param.id) == Some(&self.rank) {
            self.owned.register(param.id, grad);
        }
    }
}

/// Gives every parameter that had a gradient its owner's value.
struct Share<'a> {
    reduced: &'a HashSet<ParamId>,
    owners: &'a HashMap<ParamId, usize>,
    peer: PeerId,
    rank: usize,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Share<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if !self.reduced.contains(&param.id) {
            return param;
        }
        let owner = self.owners.get(&param.id) == Some(&self.rank);
        map_value(param, |_, value| {
            let sent = owner.then(|| value.into_primitive().tensor());
            let shared = burn_collective::broadcast::<B::InnerBackend>(self.peer, sent)
                .unwrap_or_else(|err| panic!("ZeroRedundancy: broadcast of a parameter: {err:?}"));
            Tensor::from_primitive(TensorPrimitive::Float(shared))
        })
    }
}

/// One gradient per parameter: the sum of its gradients from Burn's devices.
struct Combine<'a> {
    multi: MultiGradientsParams,
    grads: &'a mut GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Combine<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some((grad, _)) = self.multi.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register(param.id, grad);
        }
    }
}

impl<O, M, B> Optimizer<M, B> for ZeroRedundancy<O, M, B>
where
    O: Optimizer<M, B> + ShardState,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
{
    type Record = O::Record;

    fn step(&mut self, lr: LearningRate, module: M, grads: GradientsParams) -> M {
        self.assign_owners(&module);
        let owners = self.owners.as_ref().expect("assigned above");
        let mut reduced = HashSet::new();
        let mut reduce = Reduce::<B> {
            grads,
            owned: GradientsParams::new(),
            reduced: &mut reduced,
            owners,
            rank: self.rank,
            reduction: self.gradients,
            _backend: PhantomData,
        };
        module.visit(&mut reduce);
        let owned = reduce.owned;
        let module = self.inner.step(lr, module, owned);
        module.map(&mut Share {
            reduced: &reduced,
            owners,
            peer: self.peer(),
            rank: self.rank,
        })
    }

    /// Adds each parameter's gradients from Burn's devices, then steps as [`Self::step`].
    fn step_multi(&mut self, lr: LearningRate, module: M, grads: MultiGradientsParams) -> M {
        let mut combined = GradientsParams::new();
        module.visit(&mut Combine {
            multi: grads,
            grads: &mut combined,
        });
        self.step(lr, module, combined)
    }

    fn to_record(&self) -> O::Record {
        self.inner.to_record()
    }

    fn load_record(self, record: O::Record) -> Self {
        Self {
            inner: self.inner.load_record(record),
            ..self
        }
    }
}
