use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use super::SlowState;

/// Scout: Lookahead whose sync rate follows how coherent the fast steps were (holocron's
/// wrapper, after ["Lookahead Optimizer"](https://arxiv.org/abs/1907.08610)), as a
/// per-parameter Burn 0.22 [`Optimizer`] over any other.
///
/// The window holds the slow weights and the parameter after each inner step since the last
/// sync. At a sync, every `sync_period` inner steps of a parameter, with `u` the
/// `sync_period` successive differences of its window (one row per step):
///
/// ```text
/// sim  = mean over elements of  std(u, unbiased) / max |u - mean(u)|   (0/0 counts as 0)
/// rate = max(1 - sim, sync_rate)
/// slow <- slow + rate (fast - slow);   fast <- slow
/// ```
///
/// Every operation is a tensor operation on the parameter's device: the rate is a
/// one-element tensor, never read back to the host. The state of a parameter
/// ([`SlowState`]) holds the inner optimizer's state, the slow weights, the window and the
/// step count: `sync_period + 1` copies of the parameter (6 more with the default period of
/// 6) besides the inner state. Build it with [`ScoutConfig`](crate::ScoutConfig).
///
/// # Differences from holocron
///
/// - **The rate is per parameter.** holocron (and the Burn 0.21 crate's `Scout`) averages the
///   similarity over every parameter tensor of the model and syncs them all with one rate.
///   Burn 0.22's optimizers see one parameter at a time (that is what lets Scout go into
///   `ModuleOptimizer`, its parameter groups and a `Learner`), so here each parameter's rate
///   comes from its own similarity. With a single parameter tensor the two are the same;
///   with several, a tensor whose steps were coherent moves its slow weights further than
///   one whose steps were not, as LARS and LAMB scale each layer by its own statistics.
/// - Steps are counted per parameter, as in [`Lookahead`](crate::Lookahead).
/// - holocron gives NaN for an element whose steps never deviate from their mean (0/0) and
///   for `sync_period = 1`; here a 0/0 element counts as 0, and with `sync_period = 1` the
///   similarity is 0 (so the rate is 1 and the slow weights follow the fast ones), as in the
///   Burn 0.21 crate.
#[derive(Clone, Debug)]
pub struct Scout<O> {
    pub(super) inner: O,
    pub(super) sync_rate: f64,
    pub(super) sync_period: usize,
}

impl<O: Optimizer> Scout<O> {
    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }
}

impl<O: Optimizer> Optimizer for Scout<O> {
    type State<const D: usize> = SlowState<O::State<D>, D>;

    /// One inner step of `tensor`, then its sync when the period is complete.
    ///
    /// # Panics
    ///
    /// When `state` (e.g. loaded from a record) does not fit the parameter: slow weights of
    /// another shape, or a window of another length than the steps since the last sync.
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
        super::check_slow_shape("Scout", &slow, &tensor);
        assert!(
            window.len() == steps % self.sync_period
                && window.iter().all(|row| row.dims() == tensor.dims()),
            "Scout: a window of {} rows after {steps} steps with sync_period {} \
             (a state of another configuration or another model?)",
            window.len(),
            self.sync_period,
        );
        let (fast, inner) = self.inner.step(lr, tensor, grad, inner);
        let steps = steps + 1;
        window.push(fast);
        if !steps.is_multiple_of(self.sync_period) {
            let fast = window.last().expect("the row just pushed").clone();
            let state = SlowState {
                inner,
                steps,
                slow,
                window,
            };
            return (fast, Some(state));
        }
        let numel = slow.shape().num_elements();
        let fast = window.last().expect("the row just pushed").clone();
        let slow = if numel == 0 {
            // Nothing to pull in a parameter without elements.
            fast
        } else {
            let rate = match similarity(&slow, &window) {
                Some(similarity) => similarity
                    .neg()
                    .add_scalar(1.0)
                    .clamp_min(self.sync_rate)
                    .reshape([1; D]),
                None => Tensor::ones([1; D], (&slow.device(), slow.dtype())),
            };
            drop(window);
            slow.clone().add(fast.sub(slow).mul(rate))
        };
        let state = SlowState {
            inner,
            steps,
            slow: slow.clone(),
            window: Vec::new(),
        };
        (slow, Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.into_device(device, O::to_device)
    }
}

/// The mean over elements of `std(u, unbiased) / max |u - mean(u)|` (0 where the maximum is
/// 0), `u` the steps of the element through `slow` and then `window`: a one-element tensor.
/// `None` with fewer than two steps (no unbiased std; the similarity is then 0).
fn similarity<const D: usize>(slow: &Tensor<D>, window: &[Tensor<D>]) -> Option<Tensor<1>> {
    let steps = window.len();
    if steps < 2 {
        return None;
    }
    let numel = slow.shape().num_elements() as f64;
    let diffs: Vec<Tensor<D>> = core::iter::once(slow)
        .chain(window)
        .zip(window)
        .map(|(from, to)| to.clone().sub(from.clone()))
        .collect();
    let sum = |tensors: Vec<Tensor<D>>| tensors.into_iter().reduce(Tensor::add);
    let mean = sum(diffs.clone())?.div_scalar(steps as f64);
    let deviations: Vec<Tensor<D>> = diffs.into_iter().map(|u| u.sub(mean.clone())).collect();
    let max = deviations
        .iter()
        .map(|d| d.clone().abs())
        .reduce(Tensor::max_pair)?;
    let squares = sum(deviations.into_iter().map(|d| d.clone().mul(d)).collect())?;
    let std = squares.div_scalar((steps - 1) as f64).sqrt();
    let undefined = max.clone().equal_elem(0.0);
    let ratio = std.div(max).mask_fill(undefined, 0.0);
    Some(ratio.sum().div_scalar(numel))
}
