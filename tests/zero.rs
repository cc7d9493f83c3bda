//! `ZeroRedundancy` (ZeRO stage 1, docs/multi-device.md): workers in threads, each with its
//! own gradients, registered with Burn's collective operations, against one replicated
//! optimizer stepping on the summed gradients; each worker's state is its shard.
//!
//! ```text
//! cargo test --test zero -- --nocapture
//! ```
#![cfg(feature = "collective")]

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;

use burn::module::ParamId;
use burn::optim::Optimizer;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use common::{ParamSet, Slot, gradients, summed};
use holocron_optim::collective::{self, CollectiveConfig, PeerId};
use holocron_optim::*;
use rstest::rstest;

type B = holocron_optim_suite::backend::Autodiff;
type Inner = holocron_optim_suite::backend::Backend;

/// Burn's collective server is one per process and backend: one group of workers at a time.
static COLLECTIVE: Mutex<()> = Mutex::new(());

const STEPS: usize = 7;
/// Where a reloaded run saves and reloads each worker's optimizer: mid-way through
/// Lookahead's 3-step sync period.
const RELOAD_AFTER: usize = 4;

/// Eight tensors of ranks 1 to 4 and of 3 to 600 elements: the shards differ in size.
fn specs() -> Vec<(Vec<usize>, Vec<f64>)> {
    let shapes: Vec<Vec<usize>> = vec![
        vec![600],
        vec![3],
        vec![20, 12],
        vec![4, 5, 6],
        vec![2, 3, 4, 5],
        vec![64],
        vec![9, 9],
        vec![7],
    ];
    shapes
        .into_iter()
        .enumerate()
        .map(|(i, shape)| {
            let values = common::wave(shape.iter().product(), i as f64);
            (shape, values)
        })
        .collect()
}

/// Worker `rank`'s gradients at `step`: its own, different from the other workers'.
fn worker_grads(rank: usize, step: usize, shapes: &[Vec<usize>]) -> Vec<Option<Vec<f64>>> {
    common::mixed_grads(shapes, 100 * step + 10 * rank)
}

/// Which optimizer the workers wrap.
#[derive(Clone, Copy, Debug)]
enum Kind {
    AdaBelief,
    Lamb,
    LookaheadAdan,
}

/// What one worker ends with.
struct Outcome {
    values: Vec<Vec<f64>>,
    /// The positions (in `specs`) of the parameters it owns: every worker builds its own
    /// model, whose parameter ids differ from the others'.
    owned: BTreeSet<usize>,
    /// Elements of optimizer state (moments, slow weights) the worker holds.
    state: usize,
}

/// An optimizer after `STEPS` steps, with the parameters it trained.
struct Trained<O> {
    optim: O,
    set: ParamSet<B>,
    slots: Vec<Slot>,
    /// Each parameter's id and number of elements.
    sizes: Vec<(ParamId, usize)>,
}

impl<O> Trained<O> {
    fn values(&self) -> Vec<Vec<f64>> {
        self.slots.iter().map(|s| self.set.values(*s)).collect()
    }

    /// The elements of state held for the parameters `ids`, `per` tensors each.
    fn state(&self, ids: impl Iterator<Item = ParamId>, per: usize) -> usize {
        let ids: Vec<ParamId> = ids.collect();
        self.sizes
            .iter()
            .filter(|(id, _)| ids.contains(id))
            .map(|(_, numel)| numel * per)
            .sum()
    }
}

/// Steps `optim` through `STEPS` steps of worker `rank`'s gradients (reduced inside
/// `ZeroRedundancy`), or of every worker's summed when `rank` is `None` (the replicated
/// reference). With `reload`, after `RELOAD_AFTER` steps the optimizer is saved to bytes
/// and loaded into a fresh one, which goes on.
fn run<O: Optimizer<ParamSet<B>, B>>(
    mut optim: O,
    rank: Option<usize>,
    workers: usize,
    reload: bool,
) -> Trained<O> {
    let device = Default::default();
    let specs = specs();
    let shapes: Vec<Vec<usize>> = specs.iter().map(|(s, _)| s.clone()).collect();
    let (mut set, slots) = ParamSet::<B>::new(&specs, &device);
    let sizes = slots
        .iter()
        .zip(&shapes)
        .map(|(slot, shape)| (set.id(*slot), shape.iter().product()))
        .collect();
    let fresh = optim.clone();
    for step in 0..STEPS {
        if reload && step == RELOAD_AFTER {
            let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
            let bytes = recorder.record(optim.to_record(), ()).unwrap();
            optim = fresh
                .clone()
                .load_record(recorder.load(bytes, &device).unwrap());
        }
        let grads = match rank {
            Some(rank) => worker_grads(rank, step, &shapes),
            None => (1..workers).fold(worker_grads(0, step, &shapes), |sum, r| {
                summed(&sum, &worker_grads(r, step, &shapes))
            }),
        };
        let grads = gradients(&set, &slots, &shapes, &grads, &device);
        set = optim.step(0.01, set, grads);
    }
    Trained {
        optim,
        set,
        slots,
        sizes,
    }
}

fn lamb() -> LambConfig {
    LambConfig::new().with_weight_decay(0.01)
}

fn lookahead() -> LookaheadConfig {
    LookaheadConfig::new().with_sync_period(3)
}

/// What a worker reports, from its trained `ZeroRedundancy` and its state elements.
fn outcome<O>(trained: &Trained<ZeroRedundancy<O, ParamSet<B>, B>>, state: usize) -> Outcome
where
    O: Optimizer<ParamSet<B>, B> + ShardState,
{
    Outcome {
        values: trained.values(),
        owned: trained
            .sizes
            .iter()
            .enumerate()
            .filter(|(_, (id, _))| trained.optim.owned().contains(id))
            .map(|(slot, _)| slot)
            .collect(),
        state,
    }
}

/// One worker: registers, trains, reports.
fn worker(kind: Kind, rank: usize, workers: usize, reload: bool) -> Outcome {
    let config = CollectiveConfig::default().with_num_devices(workers);
    collective::register::<Inner>(PeerId::from(rank), Default::default(), config).unwrap();
    let zero = ZeroRedundancyConfig::new(workers);
    let outcome = match kind {
        Kind::AdaBelief => {
            let t = run(
                zero.init(rank, AdaBeliefConfig::new().init()),
                Some(rank),
                workers,
                reload,
            );
            outcome(&t, t.state(t.optim.to_record().keys().copied(), 2))
        }
        Kind::Lamb => {
            let t = run(zero.init(rank, lamb().init()), Some(rank), workers, reload);
            outcome(&t, t.state(t.optim.to_record().keys().copied(), 2))
        }
        Kind::LookaheadAdan => {
            let inner = lookahead().init(AdanConfig::new().init());
            let t = run(zero.init(rank, inner), Some(rank), workers, reload);
            let record = t.optim.to_record();
            // Adan's four tensors per parameter, and Lookahead's slow weights.
            let state = t.state(record.inner.keys().copied(), 4)
                + t.state(record.slow_weights.keys().copied(), 1);
            outcome(&t, state)
        }
    };
    collective::finish_collective::<Inner>(PeerId::from(rank)).unwrap();
    outcome
}

/// The replicated run: one optimizer, every worker's gradients summed; its values and
/// state elements.
fn replicated(kind: Kind, workers: usize) -> (Vec<Vec<f64>>, usize) {
    match kind {
        Kind::AdaBelief => {
            let t = run(AdaBeliefConfig::new().init(), None, workers, false);
            (t.values(), t.state(t.optim.to_record().keys().copied(), 2))
        }
        Kind::Lamb => {
            let t = run(lamb().init(), None, workers, false);
            (t.values(), t.state(t.optim.to_record().keys().copied(), 2))
        }
        Kind::LookaheadAdan => {
            let t = run(
                lookahead().init(AdanConfig::new().init()),
                None,
                workers,
                false,
            );
            let record = t.optim.to_record();
            let state = t.state(record.inner.keys().copied(), 4)
                + t.state(record.slow_weights.keys().copied(), 1);
            (t.values(), state)
        }
    }
}

/// `workers` workers in threads, one collective group.
fn workers_run(kind: Kind, workers: usize, reload: bool) -> Vec<Outcome> {
    let _alone = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    collective::reset_collective::<Inner>();
    let threads: Vec<_> = (0..workers)
        .map(|rank| std::thread::spawn(move || worker(kind, rank, workers, reload)))
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[rstest]
#[cfg_attr(
    all(feature = "wgpu", not(feature = "cuda")),
    ignore = "worker threads on one WGPU device race on Burn 0.21; see docs/multi-device.md"
)]
fn sharded_state_trains_as_the_replicated_optimizer(
    #[values(Kind::AdaBelief, Kind::Lamb, Kind::LookaheadAdan)] kind: Kind,
    #[values(2, 3)] workers: usize,
) {
    let outcomes = workers_run(kind, workers, false);
    let (reference, full_state) = replicated(kind, workers);

    // Every worker ends with the same parameters, those of the replicated optimizer.
    for (rank, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.values, outcomes[0].values, "worker {rank}");
    }
    let mut largest = 0.0f64;
    for (x, y) in outcomes[0]
        .values
        .iter()
        .flatten()
        .zip(reference.iter().flatten())
    {
        largest = largest.max((x - y).abs());
        assert!((x - y).abs() <= 1e-5 * y.abs().max(1e-2), "{x} vs {y}");
    }
    // The steps moved the parameters (or the comparison would say nothing).
    let initial: Vec<f64> = specs().into_iter().flat_map(|(_, v)| v).collect();
    let moved = initial
        .iter()
        .zip(reference.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(moved > 1e-3, "moved {moved}");

    // The shards: disjoint, together every parameter, each worker's state only its own.
    let mut all = BTreeSet::new();
    for outcome in &outcomes {
        assert!(!outcome.owned.is_empty());
        assert!(outcome.owned.is_disjoint(&all));
        all.extend(outcome.owned.iter().copied());
    }
    assert_eq!(all.len(), specs().len());
    let states: Vec<usize> = outcomes.iter().map(|o| o.state).collect();
    assert_eq!(states.iter().sum::<usize>(), full_state);
    let total: usize = specs()
        .iter()
        .map(|(s, _)| s.iter().product::<usize>())
        .sum();
    let largest_tensor = specs()
        .iter()
        .map(|(s, _)| s.iter().product::<usize>())
        .max()
        .unwrap();
    let per_param = full_state / total;
    for state in &states {
        // Balanced to within one tensor (the greedy assignment's bound).
        assert!(
            *state <= full_state / workers + per_param * largest_tensor,
            "{states:?} of {full_state}"
        );
    }
    println!(
        "{kind:?}, {workers} workers: state elements per worker {states:?}, replicated \
         {full_state} each ({:.2}x less on the largest shard); max |sharded - replicated| = {largest:e}",
        full_state as f64 / *states.iter().max().unwrap() as f64
    );
}

#[test]
fn a_rank_outside_the_workers_is_refused() {
    let inner = || AdaBeliefConfig::new().init::<B, ParamSet<B>>();
    let err = ZeroRedundancyConfig::new(2).try_init(2, inner()).err();
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("ZeroRedundancyConfig.rank = 2: expected an integer < workers")
    );
    let err = ZeroRedundancyConfig::new(0).try_init(0, inner()).err();
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("ZeroRedundancyConfig.workers = 0: expected an integer >= 1")
    );
}

/// Each worker saves its shard's record in the middle of a sync period and a fresh
/// `ZeroRedundancy` loads it: the run goes on exactly as the uninterrupted one.
#[rstest]
#[cfg_attr(
    all(feature = "wgpu", not(feature = "cuda")),
    ignore = "worker threads on one WGPU device race on Burn 0.21; see docs/multi-device.md"
)]
fn a_worker_resumes_from_its_shard(#[values(Kind::Lamb, Kind::LookaheadAdan)] kind: Kind) {
    let uninterrupted = workers_run(kind, 2, false);
    let reloaded = workers_run(kind, 2, true);
    for (a, b) in uninterrupted.iter().zip(&reloaded) {
        assert_eq!(a.owned, b.owned);
        assert_eq!(a.state, b.state);
        let bits =
            |o: &Outcome| -> Vec<u64> { o.values.iter().flatten().map(|v| v.to_bits()).collect() };
        assert_eq!(bits(a), bits(b), "{kind:?}");
    }
}
