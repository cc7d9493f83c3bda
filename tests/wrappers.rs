//! Lookahead and Scout beyond the golden set: a hand-derived trajectory, degenerate
//! settings, `step_multi`, and a record saved in the middle of a window.

mod common;

use burn::optim::{GradientsParams, MultiGradientsParams, Optimizer, SgdConfig};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::DeviceOps;
use common::{ParamSet, WithOptimizer, Wrap, WrapperConfig, gradients, mixed_grads, mixed_params};
use holocron_optim::checkpoint::CheckedRecord;
use holocron_optim::*;
use rstest::rstest;

type B = holocron_optim_suite::backend::Autodiff;

/// Minimises `x^2 / 2` (gradient `x`) from `x = 1` with plain SGD inside the wrapper.
fn scalar_run<O: Optimizer<ParamSet<B>, B>>(mut optim: O, lr: f64, steps: usize) -> Vec<f64> {
    let device = Default::default();
    let shapes = vec![vec![1]];
    let (mut set, slots) = ParamSet::<B>::new(&[(vec![1], vec![1.0])], &device);
    let mut trajectory = vec![];
    for _ in 0..steps {
        let x = set.values(slots[0]);
        let grads = gradients(&set, &slots, &shapes, &[Some(x)], &device);
        set = optim.step(lr, set, grads);
        trajectory.push(set.values(slots[0])[0]);
    }
    trajectory
}

#[test]
fn lookahead_follows_the_hand_derived_scalar_trajectory() {
    // SGD with lr 0.5 on x^2/2 halves x at every fast step. With sync_period 2 and
    // sync_rate 0.5 each window maps the slow weight s to s + 0.5 (s/4 - s) = 0.625 s:
    //   step 1: 0.5        step 2: 0.25 -> sync -> 0.625
    //   step 3: 0.3125     step 4: 0.15625 -> sync -> 0.390625
    //   step 5: 0.1953125  step 6: 0.09765625 -> sync -> 0.244140625
    let optim = LookaheadConfig::new()
        .with_sync_rate(0.5)
        .with_sync_period(2)
        .init(SgdConfig::new().init::<B, ParamSet<B>>());
    let expected = [0.5, 0.625, 0.3125, 0.390625, 0.1953125, 0.244140625];
    assert_eq!(scalar_run(optim, 0.5, 6), expected);
}

#[test]
fn lookahead_with_rate_zero_resets_to_the_slow_weights() {
    // sync_rate 0: the slow weight never moves, so every sync returns to x = 1.
    let optim = LookaheadConfig::new()
        .with_sync_rate(0.0)
        .with_sync_period(3)
        .init(SgdConfig::new().init::<B, ParamSet<B>>());
    assert_eq!(scalar_run(optim, 0.5, 6), [0.5, 0.25, 1.0, 0.5, 0.25, 1.0]);
}

/// Steps a mixed parameter set (ranks 1 to 4) with `optim` and returns every value.
struct Trajectory {
    steps: usize,
}

impl WithOptimizer<B, ParamSet<B>> for Trajectory {
    type Output = Vec<Vec<f64>>;

    fn run<O: CheckedRecord<ParamSet<B>, B>>(self, mut optim: O) -> Vec<Vec<f64>> {
        let device = Default::default();
        let (mut set, slots, shapes) = mixed_params::<B>(&device);
        let mut out = vec![];
        for k in 0..self.steps {
            let grads = gradients(&set, &slots, &shapes, &mixed_grads(&shapes, k), &device);
            set = optim.step(0.01, set, grads);
            out.push(slots.iter().flat_map(|s| set.values(*s)).collect());
        }
        out
    }
}

fn assert_close(a: &[Vec<f64>], b: &[Vec<f64>], tol: f64) {
    for (step, (x, y)) in a.iter().zip(b).enumerate() {
        for (u, v) in x.iter().zip(y) {
            assert!(
                (u - v).abs() <= tol * v.abs().max(1e-2),
                "step {step}: {u} vs {v}"
            );
        }
    }
}

#[rstest]
#[case::lookahead(WrapperConfig::Lookahead(LookaheadConfig::new().with_sync_rate(1.0).with_sync_period(1)))]
#[case::scout_period_1(WrapperConfig::Scout(ScoutConfig::new().with_sync_rate(0.3).with_sync_period(1)))]
fn a_sync_every_step_at_rate_one_is_the_bare_optimizer(#[case] wrapper: WrapperConfig) {
    // Lookahead with rate 1, and Scout with sync_period 1 (coherence 0, so rate 1), copy the
    // fast weights into the slow ones at every step: `slow + 1 (fast - slow)` is `fast` up to
    // one rounding.
    let config = common::AnyConfig::Lamb(LambConfig::new().with_weight_decay(1e-2));
    let bare = config.with(Trajectory { steps: 12 });
    let wrapped = config.with(Wrap {
        wrapper: Some(wrapper),
        job: Trajectory { steps: 12 },
    });
    assert_close(&wrapped, &bare, 1e-6);
}

#[test]
fn scout_keeps_learning_with_a_parameter_that_never_moves() {
    // holocron's Scout turns the frozen tensor's 0/0 into NaN and stops learning. Here it
    // counts as similarity 0: the run stays finite, the frozen tensor is untouched, and the
    // loss `‖x‖^2 / 2` of the trained tensor keeps falling.
    let device = Default::default();
    let shapes = vec![vec![4], vec![3]];
    let specs = vec![
        (shapes[0].clone(), vec![1.0, -2.0, 0.5, 3.0]),
        (shapes[1].clone(), vec![0.7, 0.1, -0.4]),
    ];
    let (mut set, slots) = ParamSet::<B>::new(&specs, &device);
    let mut optim = ScoutConfig::new()
        .with_sync_rate(0.2)
        .with_sync_period(4)
        .init(SgdConfig::new().init::<B, ParamSet<B>>());
    let loss = |set: &ParamSet<B>| {
        set.values(slots[0])
            .iter()
            .map(|v| v * v / 2.0)
            .sum::<f64>()
    };
    let initial = loss(&set);
    for _ in 0..40 {
        let x = set.values(slots[0]);
        let grads = gradients(&set, &slots, &shapes, &[Some(x), None], &device);
        set = optim.step(0.1, set, grads);
        assert!(set.values(slots[0]).iter().all(|v| v.is_finite()));
    }
    assert_eq!(
        set.values(slots[1]),
        specs[1]
            .1
            .iter()
            .map(|&v| v as f32 as f64)
            .collect::<Vec<_>>()
    );
    assert!(loss(&set) < 0.05 * initial, "{} -> {}", initial, loss(&set));
}

/// `step_multi` over gradients split in two equals `step` over their sum.
struct Multi {
    multi: bool,
}

impl WithOptimizer<B, ParamSet<B>> for Multi {
    type Output = Vec<Vec<f64>>;

    fn run<O: CheckedRecord<ParamSet<B>, B>>(self, mut optim: O) -> Vec<Vec<f64>> {
        let device = Default::default();
        let (mut set, slots, shapes) = mixed_params::<B>(&device);
        let mut out = vec![];
        for k in 0..9 {
            let half = |seed: usize| -> Vec<Option<Vec<f64>>> { mixed_grads(&shapes, seed) };
            let (a, b) = (half(2 * k), half(2 * k + 1));
            set = if self.multi {
                let grads = MultiGradientsParams {
                    grads: vec![
                        (gradients(&set, &slots, &shapes, &a, &device), device.id()),
                        (gradients(&set, &slots, &shapes, &b, &device), device.id()),
                    ],
                };
                optim.step_multi(0.01, set, grads)
            } else {
                let sum = common::summed(&a, &b);
                let grads: GradientsParams = gradients(&set, &slots, &shapes, &sum, &device);
                optim.step(0.01, set, grads)
            };
            out.push(slots.iter().flat_map(|s| set.values(*s)).collect());
        }
        out
    }
}

/// Scout over `specs`, eight steps of AdaBelief inside it (two syncs), the values of the
/// first `keep` parameters after them.
fn scout_run(specs: &[(Vec<usize>, Vec<f64>)], keep: usize, execution: Execution) -> Vec<Vec<f64>> {
    let device = Default::default();
    let shapes: Vec<Vec<usize>> = specs.iter().map(|(shape, _)| shape.clone()).collect();
    let (mut set, slots) = ParamSet::<B>::new(specs, &device);
    let inner = AdaBeliefConfig::new().with_execution(execution).init();
    let mut optim = ScoutConfig::new()
        .with_sync_period(4)
        .with_execution(execution)
        .init(inner);
    for k in 0..8 {
        let grads: Vec<Option<Vec<f64>>> = shapes
            .iter()
            .enumerate()
            .map(|(j, shape)| Some(common::wave(shape.iter().product(), (k * 7 + j) as f64)))
            .collect();
        let grads = gradients(&set, &slots, &shapes, &grads, &device);
        set = optim.step(1e-2, set, grads);
    }
    slots[..keep].iter().map(|s| set.values(*s)).collect()
}

/// A parameter without elements has no steps to agree on: Scout leaves it out of its
/// coherence on every path, and the other parameters end exactly as in a model without it
/// (its similarity, a sum over no elements divided by none, used to make every parameter
/// NaN at the first sync).
#[rstest]
fn scout_leaves_empty_parameters_out_of_its_coherence(
    #[values(Execution::Composed, Execution::Fused)] execution: Execution,
) {
    let specs = vec![
        (vec![6], common::wave(6, 1.0)),
        (vec![3, 4], common::wave(12, 2.0)),
    ];
    let mut with_empty = specs.clone();
    with_empty.push((vec![0], vec![]));
    let without = scout_run(&specs, 2, execution);
    let with = scout_run(&with_empty, 2, execution);
    assert!(with.iter().flatten().all(|v| v.is_finite()), "{with:?}");
    assert_eq!(with, without);
}

#[rstest]
#[case::lookahead(WrapperConfig::Lookahead(LookaheadConfig::new().with_sync_period(4)))]
#[case::scout(WrapperConfig::Scout(ScoutConfig::new().with_sync_period(4)))]
fn step_multi_equals_step_with_summed_gradients(#[case] wrapper: WrapperConfig) {
    let config = common::AnyConfig::AdaBelief(AdaBeliefConfig::new());
    let run = |multi| {
        config.with(Wrap {
            wrapper: Some(wrapper.clone()),
            job: Multi { multi },
        })
    };
    // The split gradients are summed in f32 by Burn; the reference sum is exact, then rounded.
    assert_close(&run(true), &run(false), 1e-5);
}

/// Saves the wrapper after `save_after` steps (not a sync step), reloads the record into a
/// freshly built wrapper, and checks the continued run against the uninterrupted one.
struct MidWindow {
    save_after: usize,
    total: usize,
}

impl WithOptimizer<B, ParamSet<B>> for MidWindow {
    type Output = ();

    fn run<O: CheckedRecord<ParamSet<B>, B>>(self, mut optim: O) {
        let device = Default::default();
        let fresh = optim.clone();
        let (mut set, slots, shapes) = mixed_params::<B>(&device);
        let step = |optim: &mut O, set: ParamSet<B>, k: usize| {
            let mut grads = mixed_grads(&shapes, k);
            grads[2] = None; // one tensor without gradient takes part in the syncs
            let grads = gradients(&set, &slots, &shapes, &grads, &device);
            optim.step(0.01, set, grads)
        };
        for k in 0..self.save_after {
            set = step(&mut optim, set, k);
        }
        let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
        let bytes = recorder.record(optim.to_record(), ()).unwrap();
        let mut resumed = fresh.load_record(recorder.load(bytes, &device).unwrap());
        let mut other = set.clone();
        for k in self.save_after..self.total {
            set = step(&mut optim, set, k);
            other = step(&mut resumed, other, k);
        }
        for slot in &slots {
            assert_eq!(set.values(*slot), other.values(*slot));
        }
    }
}

#[rstest]
#[case::lookahead(WrapperConfig::Lookahead(LookaheadConfig::new().with_sync_period(4)))]
#[case::scout(WrapperConfig::Scout(ScoutConfig::new().with_sync_period(4)))]
fn record_saved_mid_window_resumes_exactly(#[case] wrapper: WrapperConfig) {
    let config = common::AnyConfig::Lamb(LambConfig::new());
    config.with(Wrap {
        wrapper: Some(wrapper),
        job: MidWindow {
            save_after: 6,
            total: 13,
        },
    });
}

#[rstest]
#[case::lookahead_rate(WrapperConfig::Lookahead(LookaheadConfig::new().with_sync_rate(1.5)), "LookaheadConfig.sync_rate = 1.5: expected a value in [0, 1]")]
#[case::lookahead_period(WrapperConfig::Lookahead(LookaheadConfig::new().with_sync_period(0)), "LookaheadConfig.sync_period = 0: expected an integer >= 1")]
#[case::scout_rate(WrapperConfig::Scout(ScoutConfig::new().with_sync_rate(-0.1)), "ScoutConfig.sync_rate = -0.1: expected a value in [0, 1]")]
#[case::scout_period(WrapperConfig::Scout(ScoutConfig::new().with_sync_period(0)), "ScoutConfig.sync_period = 0: expected an integer >= 1")]
fn invalid_wrapper_configs_are_refused(#[case] wrapper: WrapperConfig, #[case] message: &str) {
    let inner = || SgdConfig::new().init::<B, ParamSet<B>>();
    let err = match &wrapper {
        WrapperConfig::Lookahead(c) => c.try_init(inner()).err().map(|e| e.to_string()),
        WrapperConfig::Scout(c) => c.try_init(inner()).err().map(|e| e.to_string()),
    };
    assert_eq!(err.as_deref(), Some(message));
    let payload = std::panic::catch_unwind(|| match &wrapper {
        WrapperConfig::Lookahead(c) => drop(c.init(inner())),
        WrapperConfig::Scout(c) => drop(c.init(inner())),
    })
    .unwrap_err();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some(message)
    );
}

#[test]
fn wrappers_nest_and_wrap_burn_optimizers() {
    // Lookahead over Scout over Burn's own AdamW: still an `Optimizer`, and it learns.
    let inner = burn::optim::AdamWConfig::new().init::<B, ParamSet<B>>();
    let optim = LookaheadConfig::new().init(ScoutConfig::new().init(inner));
    let trajectory = scalar_run(optim, 0.05, 60);
    assert!(trajectory.last().unwrap().abs() < 0.5, "{trajectory:?}");
}
