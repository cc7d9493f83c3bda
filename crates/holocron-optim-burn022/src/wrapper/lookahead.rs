use burn::tensor::Tensor;

use super::{Rate, SyncRule, Wrapper};

/// Lookahead, from ["Lookahead Optimizer: k steps forward, 1 step back"](https://arxiv.org/abs/1907.08610),
/// as a per-parameter Burn 0.22 [`Optimizer`](burn::optim::Optimizer) over any other (the
/// fast one): every `sync_period` inner steps of a parameter, its weights are pulled back
/// towards a slow copy.
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
/// The state of a parameter ([`SlowState`](crate::SlowState)) holds the inner optimizer's
/// state, the slow weights (one extra copy of the parameter) and the step count, so
/// Lookahead goes into Burn's `ModuleOptimizer`, its parameter groups and a `Learner`, and
/// its record resumes a run exactly. Build it with [`LookaheadConfig`](crate::LookaheadConfig).
///
/// # Differences from holocron
///
/// Steps are counted per parameter: Burn steps only the parameters that have a gradient, so
/// a parameter that misses some steps syncs after its own `sync_period` steps, where
/// holocron (and the Burn 0.21 crate) syncs every parameter at the same global step. When
/// every parameter gets a gradient at every step, the two are the same.
pub type Lookahead<O> = Wrapper<O, LookaheadSync>;

/// Lookahead's sync: the configured rate, always.
#[derive(Clone, Copy, Debug)]
pub struct LookaheadSync;

impl SyncRule for LookaheadSync {
    const NAME: &'static str = "Lookahead";
    const KEEPS_WINDOW: bool = false;

    fn rate<const D: usize>(sync_rate: f64, _slow: &Tensor<D>, _window: &[Tensor<D>]) -> Rate<D> {
        Rate::Fixed(sync_rate)
    }
}
