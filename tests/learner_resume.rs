//! Checkpoint and resume in a real Burn `Learner`: trains the `learner_resume` example's MLP
//! with Burn's supervised `Learner` and file checkpointer, once for `N` epochs without a
//! break and once stopped after epoch `k < N` then resumed, with a fresh model, optimizer and
//! schedule, from the checkpoint of epoch `k`, and checks that both end with bit-identical
//! weights, for a plain optimizer (`Adan`) and a wrapped one (`Lookahead(Lamb)`).
//!
//! ```text
//! cargo test --test learner_resume
//! ```
//!
//! The artifacts go to `$CARGO_TARGET_TMPDIR/learner_resume/<optimizer>/{full,resumed}`.

// `tests/multi_device.rs` uses the other optimizers and strategies.
#[allow(dead_code)]
#[path = "../examples/learner_resume/train.rs"]
mod train;

use std::path::{Path, PathBuf};

use train::{OptimizerKind, RunOutcome};

/// Total epochs `N`; 4 optimizer steps per epoch.
const EPOCHS: usize = 4;
/// The stop `k`: after 8 steps, in the middle of Lookahead's 6-step sync period, so the
/// wrapper's step counter and slow weights must come back from the checkpoint too.
const STOP_AFTER: usize = 2;

fn artifact_dir(optimizer: OptimizerKind, run: &str) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    train::fresh_dir(&base, "learner_resume", optimizer, run)
}

fn train(
    optimizer: OptimizerKind,
    artifact_dir: &Path,
    stop: Option<usize>,
    resume: Option<usize>,
) -> RunOutcome {
    let single = train::Strategy::Single { replicas: 1 };
    train::run_quietly(optimizer, single, EPOCHS, artifact_dir, stop, resume)
}

/// The weights as bits, so that `-0.0 != 0.0` and every NaN payload counts.
fn bits(outcome: &RunOutcome) -> Vec<(String, Vec<u32>)> {
    outcome
        .weights
        .iter()
        .map(|(name, values)| (name.clone(), values.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn check_resume_is_exact(optimizer: OptimizerKind) {
    let full_dir = artifact_dir(optimizer, "full");
    let full = train(optimizer, &full_dir, None, None);
    assert_eq!(full.last_epoch, EPOCHS);

    let resumed_dir = artifact_dir(optimizer, "resumed");
    let stopped = train(optimizer, &resumed_dir, Some(STOP_AFTER), None);
    assert_eq!(stopped.last_epoch, STOP_AFTER);
    // The stop leaves the checkpoints of epochs 1..=k and nothing later.
    let checkpoint = resumed_dir.join("checkpoint");
    for name in ["model", "optim", "scheduler"] {
        assert!(
            checkpoint
                .join(format!("{name}-{STOP_AFTER}.mpk"))
                .is_file()
        );
        assert!(
            !checkpoint
                .join(format!("{name}-{}.mpk", STOP_AFTER + 1))
                .exists()
        );
    }
    // The run really stopped part-way: its weights are not the final ones.
    assert_ne!(bits(&stopped), bits(&full), "{optimizer:?}: stopped run");

    let resumed = train(optimizer, &resumed_dir, None, Some(STOP_AFTER));
    assert_eq!(resumed.last_epoch, EPOCHS);

    // Exact equality holds: the resumed run repeats the same float operations on the same
    // values, as the checkpoint stores the weights, optimizer state and scheduler step in
    // full `f32`/integer precision and the data loader does not shuffle.
    assert_eq!(
        bits(&resumed),
        bits(&full),
        "{optimizer:?}: resumed weights differ from the uninterrupted run's"
    );
    // Both runs wrote the same weights file.
    assert_eq!(
        std::fs::read_to_string(&resumed.weights_file).unwrap(),
        std::fs::read_to_string(&full.weights_file).unwrap()
    );
}

#[test]
fn resume_is_exact_with_a_plain_optimizer() {
    check_resume_is_exact(OptimizerKind::Adan);
}

#[test]
fn resume_is_exact_with_a_wrapped_optimizer() {
    check_resume_is_exact(OptimizerKind::LookaheadLamb);
}
