use crate::Execution;
use core::marker::PhantomData;

use burn::module::{AutodiffModule, ParamId};
use burn::optim::{GradientsParams, LearningRate, MultiGradientsParams, Optimizer};
use burn::record::Record;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use hashbrown::HashMap;

use super::slow::{self, FlatParams, SyncRate};

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
    inner: O,
    sync_rate: f64,
    sync_period: usize,
    execution: Execution,
    steps: usize,
    slow: FlatParams<B::InnerBackend>,
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
            inner,
            sync_rate,
            sync_period,
            execution,
            steps: 0,
            slow: HashMap::new(),
            _module: PhantomData,
        }
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    fn after_inner_step(&mut self, module: M) -> M {
        self.steps += 1;
        if self.steps.is_multiple_of(self.sync_period) {
            let rate = SyncRate::Fixed(self.sync_rate);
            slow::sync(&mut self.slow, module, &rate, self.execution)
        } else {
            module
        }
    }
}

impl<O, M, B> Optimizer<M, B> for Lookahead<O, M, B>
where
    O: Optimizer<M, B>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
{
    type Record = LookaheadRecord<B, O::Record>;

    fn step(&mut self, lr: LearningRate, module: M, grads: GradientsParams) -> M {
        slow::capture_new::<B, M>(&mut self.slow, &module);
        let module = self.inner.step(lr, module, grads);
        self.after_inner_step(module)
    }

    fn step_multi(&mut self, lr: LearningRate, module: M, grads: MultiGradientsParams) -> M {
        slow::capture_new::<B, M>(&mut self.slow, &module);
        let module = self.inner.step_multi(lr, module, grads);
        self.after_inner_step(module)
    }

    fn to_record(&self) -> Self::Record {
        LookaheadRecord {
            inner: self.inner.to_record(),
            slow_weights: slow::to_record::<B>(&self.slow),
            steps: self.steps,
        }
    }

    fn load_record(self, record: Self::Record) -> Self {
        Self {
            inner: self.inner.load_record(record.inner),
            slow: slow::from_record::<B>(record.slow_weights),
            steps: record.steps,
            ..self
        }
    }
}
