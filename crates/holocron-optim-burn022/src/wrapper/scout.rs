use burn::tensor::Tensor;

use super::{Rate, SyncRule, Wrapper};

/// Scout: Lookahead whose sync rate follows how coherent the fast steps were (holocron's
/// wrapper, after ["Lookahead Optimizer"](https://arxiv.org/abs/1907.08610)), as a
/// per-parameter Burn 0.22 [`Optimizer`](burn::optim::Optimizer) over any other.
///
/// The window holds the parameter after each inner step since the last sync. At a sync,
/// every `sync_period` inner steps of a parameter, with `u` the `sync_period` successive
/// differences of the slow weights and the window (one row per step):
///
/// ```text
/// sim  = mean over elements of  std(u, unbiased) / max |u - mean(u)|   (0/0 counts as 0)
/// rate = max(1 - sim, sync_rate)
/// slow <- slow + rate (fast - slow);   fast <- slow
/// ```
///
/// Every operation is a tensor operation on the parameter's device: the rate is a
/// one-element tensor, never read back to the host. The state of a parameter
/// ([`SlowState`](crate::SlowState)) holds the inner optimizer's state, the slow weights, the
/// window and the step count: up to `sync_period + 1` copies of the parameter (7 with the
/// default period of 6) besides the inner state. Build it with
/// [`ScoutConfig`](crate::ScoutConfig).
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
pub type Scout<O> = Wrapper<O, ScoutSync>;

/// Scout's sync: the rate from the coherence of the window's steps, at least the
/// configured one.
#[derive(Clone, Copy, Debug)]
pub struct ScoutSync;

impl SyncRule for ScoutSync {
    const NAME: &'static str = "Scout";
    const KEEPS_WINDOW: bool = true;

    fn rate<const D: usize>(sync_rate: f64, slow: &Tensor<D>, window: &[Tensor<D>]) -> Rate<D> {
        match similarity(slow, window) {
            Some(similarity) => Rate::Computed(Box::new(
                similarity
                    .neg()
                    .add_scalar(1.0)
                    .clamp_min(sync_rate)
                    .reshape([1; D]),
            )),
            None => Rate::Fixed(1.0f64.max(sync_rate)),
        }
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
