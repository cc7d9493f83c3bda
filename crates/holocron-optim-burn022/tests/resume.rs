//! Resuming from Burn's optimizer record: for every optimizer and both wrappers (mid-period
//! at the interruption), in every dtype the device
//! has, a run saved after 3 steps and loaded into a fresh optimizer (through
//! `to_record`/`load_record`, through burnpack bytes, and through a burnpack file) continues
//! 3 more steps bit for bit as the uninterrupted run, parameters and state alike; and a
//! state that a configuration cannot use is refused at the step with a message.

mod common;

use std::collections::BTreeMap;

use burn::optim::ModuleOptimizer;
use burn::tensor::DType;
use common::*;
use holocron_optim_burn022::*;
use rstest::rstest;

/// How the optimizer state crosses the interruption.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// `to_record` then `load_record`.
    Record,
    /// `into_bytes` then `from_bytes` (burnpack in memory).
    Bytes,
    /// `save` then `load` (a burnpack file).
    File,
}

/// The gradients of step `step` (0-based): a wave per parameter, scaled by 1, 0.1 and 0.01
/// in turn; the first parameter has none at step 1 (its state lags the others').
fn step_grads(step: usize, shapes: &[Vec<usize>]) -> Vec<Option<Vec<f64>>> {
    let scale = [1.0, 0.1, 0.01][step % 3];
    shapes
        .iter()
        .enumerate()
        .map(|(j, shape)| {
            (j != 0 || step != 1).then(|| {
                wave(shape.iter().product(), 10.0 + step as f64 + 0.3 * j as f64)
                    .into_iter()
                    .map(|g| g * scale)
                    .collect()
            })
        })
        .collect()
}

/// A run's parameters after its steps and its recorded states, in slot order.
type Outcome = (Vec<Vec<f64>>, Vec<Option<RecordedState>>);

fn outcome(set: &ParamSet, slots: &[Slot], optim: &ModuleOptimizer) -> Outcome {
    let states = recorded_states(optim);
    (
        slots.iter().map(|slot| set.values(*slot)).collect(),
        slots
            .iter()
            .map(|slot| states.get(&set.id(*slot).val()).cloned())
            .collect(),
    )
}

/// Steps `optim` over `steps` (0-based step numbers).
fn run(
    optim: &mut ModuleOptimizer,
    mut set: ParamSet,
    slots: &[Slot],
    shapes: &[Vec<usize>],
    steps: std::ops::Range<usize>,
    dtype: DType,
) -> ParamSet {
    let device = device();
    for step in steps {
        let grads = gradients(
            &set,
            slots,
            shapes,
            &step_grads(step, shapes),
            dtype,
            &device,
        );
        set = optim.step(1e-2, set, grads);
    }
    set
}

/// The optimizer `optim`'s state handed to a fresh optimizer of `config`, `via` a record,
/// bytes or a file.
fn handed_over(config: &AnyConfig, optim: &ModuleOptimizer, via: Via) -> ModuleOptimizer {
    match via {
        Via::Record => config.init().load_record(optim.to_record()),
        Via::Bytes => {
            let bytes = optim.into_bytes().expect("serializable");
            config.init().from_bytes(bytes).expect("loadable bytes")
        }
        Via::File => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let path = dir.path().join("optimizer.bpk");
            optim.save(&path).expect("saved");
            // The file is removed before the loaded optimizer steps: its state must not be
            // read from the file later (Burn reads burnpack files lazily).
            config.init().load(&path).expect("loaded")
        }
    }
}

#[rstest]
#[case::lars(AnyConfig::Lars(LarsConfig::new()))]
#[case::lars_momentum(AnyConfig::Lars(
    LarsConfig::new().with_momentum(0.9).with_weight_decay(1e-2).with_nesterov(true)
))]
#[case::lamb(AnyConfig::Lamb(LambConfig::new().with_weight_decay(1e-2)))]
#[case::ralars(AnyConfig::RaLars(RaLarsConfig::new().with_beta_2(0.9)))]
#[case::tadam(AnyConfig::TAdam(TAdamConfig::new().with_amsgrad(true)))]
#[case::adabelief(AnyConfig::AdaBelief(
    AdaBeliefConfig::new().with_amsgrad(true).with_weight_decay(1e-2)
))]
#[case::adamp(AnyConfig::AdamP(AdamPConfig::new().with_amsgrad(true)))]
#[case::adan(AnyConfig::Adan(AdanConfig::new().with_amsgrad(true).with_weight_decay(2e-2)))]
#[case::ademamix(AnyConfig::AdEMAMix(
    AdEMAMixConfig::new().with_alpha_warmup(Some(5)).with_beta_3_warmup(Some(5))
))]
#[case::lookahead_lamb(AnyConfig::Lookahead(
    Box::new(AnyConfig::Lamb(LambConfig::new())),
    LookaheadConfig::new().with_sync_period(2).with_sync_rate(0.8)
))]
#[case::lookahead_lars(AnyConfig::Lookahead(
    Box::new(AnyConfig::Lars(LarsConfig::new())),
    LookaheadConfig::new().with_sync_period(4)
))]
#[case::scout_adabelief(AnyConfig::Scout(
    Box::new(AnyConfig::AdaBelief(AdaBeliefConfig::new())),
    ScoutConfig::new().with_sync_period(4).with_sync_rate(0.3)
))]
#[case::scout_lars_momentum(AnyConfig::Scout(
    Box::new(AnyConfig::Lars(LarsConfig::new().with_momentum(0.9))),
    ScoutConfig::new().with_sync_period(2)
))]
fn resumed_run_is_bit_identical(
    #[case] config: AnyConfig,
    #[values(Via::Record, Via::Bytes, Via::File)] via: Via,
) {
    let (specs, shapes) = mixed_specs();
    for dtype in dtypes() {
        let label = format!("{} {dtype:?} via {via:?}", config.name());

        let (set, slots) = ParamSet::new(&specs, dtype, &device());
        let mut uninterrupted = config.init();
        let set = run(&mut uninterrupted, set, &slots, &shapes, 0..6, dtype);
        let want = outcome(&set, &slots, &uninterrupted);

        let (set, slots) = ParamSet::new(&specs, dtype, &device());
        let mut first = config.init();
        let set = run(&mut first, set, &slots, &shapes, 0..3, dtype);
        let before = outcome(&set, &slots, &first);
        let mut resumed = handed_over(&config, &first, via);
        assert!(
            outcome(&set, &slots, &resumed) == before,
            "{label}: the loaded state differs from the saved one"
        );
        let set_after = run(&mut resumed, set.clone(), &slots, &shapes, 3..6, dtype);
        let got = outcome(&set_after, &slots, &resumed);
        assert!(got == want, "{label}: the resumed run differs");

        // Every state is in the parameters' dtype, and the state matters: restarting the
        // same parameters without it gives another run (LARS without momentum keeps none).
        for state in got.1.iter().flatten() {
            assert!(
                state.tensors.values().all(|(d, _, _)| *d == dtype),
                "{label}"
            );
        }
        let keeps_state = got.1.iter().flatten().any(|s| !s.tensors.is_empty());
        let mut restarted = config.init();
        let set_restarted = run(&mut restarted, set, &slots, &shapes, 3..6, dtype);
        let restarted = outcome(&set_restarted, &slots, &restarted).0;
        assert_eq!(restarted != want.0, keeps_state, "{label}: restarted run");
    }
}

/// A state loaded from a file is the file's content at the time of loading: overwriting the
/// file afterwards (the next checkpoint) changes nothing in the loaded optimizer.
#[test]
fn a_loaded_state_does_not_follow_its_file() {
    let config = AnyConfig::Adan(AdanConfig::new().with_amsgrad(true));
    let (specs, shapes) = mixed_specs();
    for dtype in dtypes() {
        let (set, slots) = ParamSet::new(&specs, dtype, &device());
        let mut uninterrupted = config.init();
        let set = run(&mut uninterrupted, set, &slots, &shapes, 0..6, dtype);
        let want = outcome(&set, &slots, &uninterrupted);

        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("checkpoint.bpk");
        let (set, slots) = ParamSet::new(&specs, dtype, &device());
        let mut first = config.init();
        let set = run(&mut first, set, &slots, &shapes, 0..3, dtype);
        first.save(&path).expect("saved");
        // The same parameters' state two steps later: the next checkpoint's content.
        run(&mut first, set.clone(), &slots, &shapes, 3..5, dtype);
        let next = first.into_bytes().expect("serializable").to_vec();
        let mut resumed = config.init().load(&path).expect("loaded");
        // Overwritten in place, with no device work in between.
        std::fs::write(&path, &next).expect("overwritten");
        let set = run(&mut resumed, set, &slots, &shapes, 3..6, dtype);
        let got = outcome(&set, &slots, &resumed);
        assert!(got == want, "{dtype:?}: the resumed run differs");
    }
}

/// Which parameters a record holds state for, and under which leaves.
fn leaves(optim: &ModuleOptimizer) -> BTreeMap<u64, Vec<String>> {
    recorded_states(optim)
        .into_iter()
        .map(|(id, s)| {
            let mut names: Vec<_> = s.scalars.keys().chain(s.tensors.keys()).cloned().collect();
            names.sort();
            (id, names)
        })
        .collect()
}

/// A record names each state leaf `{param id}.{name}`: the step count `time` where the
/// optimizer counts steps, and the lanes its configuration keeps.
#[test]
fn record_leaves_are_the_kept_state() {
    let (specs, shapes) = mixed_specs();
    let dtype = DType::F32;
    let cases: [(AnyConfig, &[&str]); 4] = [
        (AnyConfig::Lars(LarsConfig::new()), &[]),
        (
            AnyConfig::Lars(LarsConfig::new().with_momentum(0.5)),
            &["momentum_buffer"],
        ),
        (
            AnyConfig::TAdam(TAdamConfig::new()),
            &["moment_1", "moment_2", "time", "weight_sum"],
        ),
        (
            AnyConfig::Adan(AdanConfig::new().with_amsgrad(true)),
            &[
                "max_moment_2",
                "moment_1",
                "moment_2",
                "moment_diff",
                "previous_grad",
                "time",
            ],
        ),
    ];
    for (config, want) in cases {
        let (set, slots) = ParamSet::new(&specs, dtype, &device());
        let mut optim = config.init();
        let set = run(&mut optim, set, &slots, &shapes, 0..1, dtype);
        let leaves = leaves(&optim);
        // The first parameter had a gradient at step 0: every one has a state.
        assert_eq!(leaves.len(), slots.len(), "{}", config.name());
        for slot in &slots {
            assert_eq!(leaves[&set.id(*slot).val()], want, "{}", config.name());
        }
    }
}

/// A state recorded with AMSGrad, loaded into a configuration without it, is refused at the
/// step, naming the optimizer and both sets of lanes.
#[test]
#[should_panic(expected = "AdaBelief: the state of a parameter of shape")]
fn a_state_of_another_configuration_is_refused() {
    let (specs, shapes) = mixed_specs();
    let dtype = DType::F32;
    let (set, slots) = ParamSet::new(&specs, dtype, &device());
    let with = AnyConfig::AdaBelief(AdaBeliefConfig::new().with_amsgrad(true));
    let without = AnyConfig::AdaBelief(AdaBeliefConfig::new());
    let mut optim = with.init();
    let set = run(&mut optim, set, &slots, &shapes, 0..2, dtype);
    let mut optim = without.init().load_record(optim.to_record());
    run(&mut optim, set, &slots, &shapes, 2..3, dtype);
}

/// A record of a model whose parameters changed shape is refused at the step.
#[test]
#[should_panic(expected = "(a state of another configuration or another model?)")]
fn a_state_of_another_shape_is_refused() {
    let dtype = DType::F32;
    let device = device();
    let config = AnyConfig::Lamb(LambConfig::new());
    let (set, slots) = ParamSet::new(&[(vec![4], wave(4, 0.0))], dtype, &device);
    let mut optim = config.init();
    let set = run(&mut optim, set, &slots, &[vec![4]], 0..1, dtype);
    let record = optim.to_record();
    // The same parameter id, now of 6 elements.
    let mut other = ParamSet::new(&[(vec![6], wave(6, 0.0))], dtype, &device).0;
    other.rank1[0] = burn::module::Param::initialized(set.id(slots[0]), other.rank1[0].val());
    let mut optim = config.init().load_record(record);
    // (Step 1 gives the first parameter no gradient.)
    run(&mut optim, other, &slots, &[vec![6]], 2..3, dtype);
}

/// A Scout record whose window does not fit the configuration (saved with another
/// `sync_period`) is refused at the step, naming the wrapper.
#[test]
#[should_panic(expected = "Scout: a state of slow weights of shape")]
fn a_wrapper_state_of_another_period_is_refused() {
    let (specs, shapes) = mixed_specs();
    let dtype = DType::F32;
    let (set, slots) = ParamSet::new(&specs, dtype, &device());
    let inner = || Box::new(AnyConfig::Lamb(LambConfig::new()));
    let saved = AnyConfig::Scout(inner(), ScoutConfig::new().with_sync_period(4));
    let loaded = AnyConfig::Scout(inner(), ScoutConfig::new().with_sync_period(2));
    let mut optim = saved.init();
    let set = run(&mut optim, set, &slots, &shapes, 0..3, dtype);
    let mut optim = loaded.init().load_record(optim.to_record());
    run(&mut optim, set, &slots, &shapes, 3..4, dtype);
}
