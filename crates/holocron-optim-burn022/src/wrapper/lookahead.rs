use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use super::SlowState;

/// Lookahead, from ["Lookahead Optimizer: k steps forward, 1 step back"](https://arxiv.org/abs/1907.08610),
/// as a per-parameter Burn 0.22 [`Optimizer`] over any other (the fast one): every
/// `sync_period` inner steps of a parameter, its weights are pulled back towards a slow copy.
///
/// For each parameter:
///
/// ```text
/// slow = the parameter before its first inner step
/// after each inner step: k <- k + 1
/// if k % sync_period == 0:
///     slow <- slow + sync_rate (fast - slow)        (untouched when sync_rate = 0)
///     fast <- slow
/// ```
///
/// The state of a parameter ([`SlowState`]) holds the inner optimizer's state, the slow
/// weights (one extra copy of the parameter) and the step count, so Lookahead goes into
/// Burn's `ModuleOptimizer`, its parameter groups and a `Learner`, and its record resumes
/// a run exactly. Build it with [`LookaheadConfig`](crate::LookaheadConfig).
///
/// # Differences from holocron
///
/// Steps are counted per parameter: Burn steps only the parameters that have a gradient, so
/// a parameter that misses some steps syncs after its own `sync_period` steps, where
/// holocron (and the Burn 0.21 crate) syncs every parameter at the same global step. When
/// every parameter gets a gradient at every step, the two are the same.
#[derive(Clone, Debug)]
pub struct Lookahead<O> {
    pub(super) inner: O,
    pub(super) sync_rate: f64,
    pub(super) sync_period: usize,
}

impl<O: Optimizer> Lookahead<O> {
    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }
}

impl<O: Optimizer> Optimizer for Lookahead<O> {
    type State<const D: usize> = SlowState<O::State<D>, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (inner, steps, slow) = match state {
            Some(state) => (state.inner, state.steps, state.slow),
            None => (None, 0, tensor.clone()),
        };
        super::check_slow_shape("Lookahead", &slow, &tensor);
        let (fast, inner) = self.inner.step(lr, tensor, grad, inner);
        let steps = steps + 1;
        let (fast, slow) = if steps.is_multiple_of(self.sync_period) {
            let slow = super::pull(slow, fast, self.sync_rate);
            (slow.clone(), slow)
        } else {
            (fast, slow)
        };
        let state = SlowState {
            inner,
            steps,
            slow,
            window: Vec::new(),
        };
        (fast, Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.into_device(device, O::to_device)
    }
}
