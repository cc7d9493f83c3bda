use crate::Execution;
use core::marker::PhantomData;

use burn::module::{AutodiffModule, ParamId};
use burn::optim::{GradientsParams, LearningRate, MultiGradientsParams, Optimizer};
use burn::record::Record;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use hashbrown::HashMap;

use super::slow::{self, Core, SyncRate, wrapper_optimizer};

/// Lookahead, from ["Lookahead Optimizer: k steps forward, 1 step back"](https://arxiv.org/abs/1907.08610):
/// wraps any Burn optimizer (the fast one) and every `sync_period` steps pulls the weights
/// back towards a slow copy.
///
/// ```text
/// slow = the parameters before their first inner step
/// after each inner step: k <- k + 1
/// if k % sync_period == 0:
///     slow <- slow + sync_rate (fast - slow)        (untouched when sync_rate = 0)
///     fast <- slow
/// ```
///
/// Every float parameter of the module takes part in the sync, with or without a gradient.
/// It holds one extra copy of the parameters. Build it with
/// [`LookaheadConfig`](crate::LookaheadConfig).
#[derive(Clone)]
pub struct Lookahead<O, M, B: AutodiffBackend> {
    core: Core<O, B::InnerBackend>,
    _module: PhantomData<fn() -> M>,
}

/// Record of [`Lookahead`]: everything needed to continue exactly where it stopped.
#[derive(Record)]
pub struct LookaheadRecord<B: Backend, R: Record<B>> {
    /// The inner optimizer's record.
    pub inner: R,
    /// The slow weights, flattened, by parameter id.
    pub slow_weights: HashMap<ParamId, Tensor<B, 1>>,
    /// Inner steps taken so far.
    pub steps: usize,
}

impl<O, M, B> Lookahead<O, M, B>
where
    O: Optimizer<M, B>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
{
    pub(crate) fn new(inner: O, sync_rate: f64, sync_period: usize, execution: Execution) -> Self {
        Self {
            core: Core::new(inner, sync_rate, sync_period, execution),
            _module: PhantomData,
        }
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.core.inner
    }

    /// Keeps slow weights only for `owned`: a worker's shard under
    /// [`ZeroRedundancy`](crate::ZeroRedundancy), whose other parameters another worker
    /// syncs and shares.
    #[cfg(feature = "collective")]
    pub(crate) fn shard(&mut self, owned: hashbrown::HashSet<ParamId>) {
        self.core.slow.retain(|id, _| owned.contains(id));
        self.core.only = Some(owned);
    }

    #[cfg(feature = "collective")]
    pub(crate) fn inner_mut(&mut self) -> &mut O {
        &mut self.core.inner
    }

    fn before_inner_step(&mut self, module: &M) {
        slow::capture_new::<B, M>(&mut self.core.slow, module, self.core.only.as_ref());
    }

    fn after_inner_step(&mut self, module: M) -> M {
        slow::follow_devices::<B, M>(&mut self.core.slow, &module);
        if self.core.count_step() {
            let rate = SyncRate::Fixed(self.core.sync_rate);
            slow::sync(&mut self.core.slow, module, &rate, self.core.execution)
        } else {
            module
        }
    }
}

wrapper_optimizer!(Lookahead, LookaheadRecord,
    to_record: |this| {},
    load_record: |loaded, record| loaded,
);
