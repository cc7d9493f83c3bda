//! Checkpoint and resume through Burn's file recorders: a run saved at step k, reloaded into
//! a freshly built model and optimizer and continued, ends bit-identical to the run that
//! never stopped; bad files and changed models are refused with a message, and the files
//! are left as they were.

mod common;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::Optimizer;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::{AdaptorRecord, AdaptorRecordV1};
use burn::record::{
    BinFileRecorder, BinGzFileRecorder, FileRecorder, FullPrecisionSettings, HalfPrecisionSettings,
    NamedMpkFileRecorder, NamedMpkGzFileRecorder, PrettyJsonFileRecorder,
};
use common::{
    AnyConfig, ParamSet, Slot, WithOptimizer, Wrap, gradients, mixed_grads, mixed_params,
};
use holocron_optim::checkpoint::{self, CheckedRecord, CheckpointErrorKind, StateLayout};
use holocron_optim::*;
use rstest::rstest;

type B = holocron_optim_suite::backend::Autodiff;

const SAVE_AT: usize = 5;
const TOTAL: usize = 11;

/// A fresh, empty directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("checkpoint")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One training step of the mixed parameter set; parameter 2 never gets a gradient.
fn step<O: Optimizer<ParamSet<B>, B>>(
    optim: &mut O,
    set: ParamSet<B>,
    slots: &[Slot],
    shapes: &[Vec<usize>],
    k: usize,
) -> ParamSet<B> {
    let device = Default::default();
    let mut grads = mixed_grads(shapes, k);
    grads[2] = None;
    let grads = gradients(&set, slots, shapes, &grads, &device);
    optim.step(0.01, set, grads)
}

fn values(set: &ParamSet<B>, slots: &[Slot]) -> Vec<Vec<f64>> {
    slots.iter().map(|s| set.values(*s)).collect()
}

/// Runs `TOTAL` steps uninterrupted and, from a save at `SAVE_AT`, resumed in a freshly
/// built model and optimizer; returns both final parameter sets.
struct Resume<R> {
    recorder: R,
    dir: PathBuf,
}

impl<R: FileRecorder<B>> WithOptimizer<B, ParamSet<B>> for Resume<R> {
    type Output = (Vec<Vec<f64>>, Vec<Vec<f64>>);

    fn run<O: CheckedRecord<ParamSet<B>, B>>(self, optim: O) -> Self::Output {
        let Resume { recorder, dir } = self;
        let device = Default::default();
        // A clone taken before any step is what building the optimizer anew gives.
        let fresh = optim.clone();
        let mut optim = optim;
        let (mut set, slots, shapes) = mixed_params::<B>(&device);
        for k in 0..SAVE_AT {
            set = step(&mut optim, set, &slots, &shapes, k);
        }
        recorder
            .record(set.clone().into_record(), dir.join("model"))
            .unwrap();
        checkpoint::save(&optim, &recorder, dir.join("optim")).unwrap();
        for k in SAVE_AT..TOTAL {
            set = step(&mut optim, set, &slots, &shapes, k);
        }

        // A restarted process: a new model (new parameter ids until its record is loaded).
        let (model, _, _) = mixed_params::<B>(&device);
        let mut model = model.load_record(recorder.load(dir.join("model"), &device).unwrap());
        let mut optim = checkpoint::load(fresh, &model, &recorder, dir.join("optim"), &device)
            .unwrap_or_else(|e| panic!("{e}"));
        for k in SAVE_AT..TOTAL {
            model = step(&mut optim, model, &slots, &shapes, k);
        }
        (values(&set, &slots), values(&model, &slots))
    }
}

#[derive(Debug, Clone, Copy)]
enum Rec {
    NamedMpk,
    NamedMpkGz,
    Bin,
    BinGz,
    PrettyJson,
}

#[rstest]
fn resumed_run_is_bit_identical(
    #[values(
        "lars",
        "lars_momentum",
        "lars_nesterov",
        "lamb",
        "ralars",
        "tadam",
        "tadam_amsgrad",
        "adabelief_amsgrad",
        "adamp_amsgrad",
        "adan",
        "adan_amsgrad",
        "ademamix",
        "lookahead_lamb",
        "scout_adabelief"
    )]
    name: &str,
    #[values(Rec::NamedMpk, Rec::NamedMpkGz, Rec::Bin, Rec::BinGz, Rec::PrettyJson)] rec: Rec,
) {
    let (config, wrapper) = common::flagged_case(name);
    let dir = scratch(&format!("{name}-{rec:?}"));
    let (uninterrupted, resumed) = match rec {
        Rec::NamedMpk => config.with(Wrap {
            wrapper,
            job: Resume {
                recorder: NamedMpkFileRecorder::<FullPrecisionSettings>::new(),
                dir,
            },
        }),
        Rec::Bin => config.with(Wrap {
            wrapper,
            job: Resume {
                recorder: BinFileRecorder::<FullPrecisionSettings>::new(),
                dir,
            },
        }),
        Rec::NamedMpkGz => config.with(Wrap {
            wrapper,
            job: Resume {
                recorder: NamedMpkGzFileRecorder::<FullPrecisionSettings>::new(),
                dir,
            },
        }),
        Rec::BinGz => config.with(Wrap {
            wrapper,
            job: Resume {
                recorder: BinGzFileRecorder::<FullPrecisionSettings>::new(),
                dir,
            },
        }),
        Rec::PrettyJson => config.with(Wrap {
            wrapper,
            job: Resume {
                recorder: PrettyJsonFileRecorder::<FullPrecisionSettings>::new(),
                dir,
            },
        }),
    };
    assert_eq!(uninterrupted, resumed, "{name} with {rec:?}");
}

#[test]
fn half_precision_resume_stays_close() {
    // HalfPrecisionSettings stores every float as f16 (11 significant bits): the resumed run
    // is no longer bit-identical, but stays within f16 rounding of the uninterrupted one.
    let dir = scratch("half");
    let (uninterrupted, resumed) = AnyConfig::Lamb(LambConfig::new()).with(Resume {
        recorder: NamedMpkFileRecorder::<HalfPrecisionSettings>::new(),
        dir,
    });
    assert_ne!(
        uninterrupted, resumed,
        "half precision was expected to round"
    );
    for (a, b) in uninterrupted.iter().flatten().zip(resumed.iter().flatten()) {
        assert!((a - b).abs() <= 2e-3 * a.abs().max(1e-2), "{a} vs {b}");
    }
}

#[test]
fn resuming_without_the_optimizer_state_differs() {
    // The control for the matrix above: a fresh optimizer on the restored model does not
    // reproduce the uninterrupted run, so equality there means the state was restored.
    let device = Default::default();
    let (mut set, slots, shapes) = mixed_params::<B>(&device);
    let mut optim = AdanConfig::new().init::<B, ParamSet<B>>();
    for k in 0..SAVE_AT {
        set = step(&mut optim, set, &slots, &shapes, k);
    }
    let mut restarted = set.clone();
    let mut fresh = AdanConfig::new().init::<B, ParamSet<B>>();
    for k in SAVE_AT..TOTAL {
        set = step(&mut optim, set, &slots, &shapes, k);
        restarted = step(&mut fresh, restarted, &slots, &shapes, k);
    }
    assert_ne!(values(&set, &slots), values(&restarted, &slots));
}

/// Trains a few steps and saves an optimizer checkpoint next to nothing else; returns the
/// model (whose parameter ids the record refers to) and the checkpoint's base path.
fn saved<O: CheckedRecord<ParamSet<B>, B>>(
    mut optim: O,
    recorder: &NamedMpkFileRecorder<FullPrecisionSettings>,
    dir: &Path,
) -> (ParamSet<B>, Vec<Slot>, PathBuf) {
    let device = Default::default();
    let (mut set, slots, shapes) = mixed_params::<B>(&device);
    for k in 0..3 {
        set = step(&mut optim, set, &slots, &shapes, k);
    }
    let path = dir.join("optim");
    checkpoint::save(&optim, recorder, path.clone()).unwrap();
    (set, slots, path)
}

fn file(path: &Path) -> PathBuf {
    path.with_extension("mpk")
}

/// Loads `path` into `optim` for `model` and returns the error, checking the file on disk
/// is unchanged by the attempt.
fn refused<O: CheckedRecord<ParamSet<B>, B>>(
    optim: O,
    model: &ParamSet<B>,
    path: &Path,
) -> checkpoint::CheckpointError {
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    let before = std::fs::read(file(path)).ok();
    let result = checkpoint::load(
        optim,
        model,
        &recorder,
        path.to_path_buf(),
        &Default::default(),
    );
    assert_eq!(
        std::fs::read(file(path)).ok(),
        before,
        "the file was modified"
    );
    match result {
        Ok(_) => panic!("a bad checkpoint was accepted"),
        Err(err) => err,
    }
}

fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::new()
}

#[test]
fn truncated_file_is_refused() {
    let dir = scratch("truncated");
    let (model, _, path) = saved(LambConfig::new().init(), &recorder(), &dir);
    let bytes = std::fs::read(file(&path)).unwrap();
    std::fs::write(file(&path), &bytes[..bytes.len() / 2]).unwrap();
    let err = refused(LambConfig::new().init(), &model, &path);
    assert_eq!(err.kind, CheckpointErrorKind::Unreadable);
    assert!(
        err.message.contains("optim.mpk") && err.message.contains("truncated or corrupt"),
        "{err}"
    );
}

#[test]
fn corrupt_file_is_refused() {
    let dir = scratch("corrupt");
    let (model, _, path) = saved(LambConfig::new().init(), &recorder(), &dir);
    let mut bytes = std::fs::read(file(&path)).unwrap();
    // Overwrite the start (format metadata and the optimizer's name) with garbage.
    for b in bytes.iter_mut().take(64) {
        *b = 0xC1; // a byte MessagePack never uses
    }
    std::fs::write(file(&path), &bytes).unwrap();
    let err = refused(LambConfig::new().init(), &model, &path);
    assert_eq!(err.kind, CheckpointErrorKind::Unreadable);
    assert!(
        err.message.contains("cannot read optimizer checkpoint"),
        "{err}"
    );
}

/// The path passed is the path written: two checkpoints whose names differ after a dot are
/// two files, and each loads its own state.
#[test]
fn dotted_paths_are_kept_apart() {
    let dir = scratch("dotted");
    let device = Default::default();
    let (mut set, slots, shapes) = mixed_params::<B>(&device);
    let mut optim = AdaBeliefConfig::new().init();
    set = step(&mut optim, set, &slots, &shapes, 0);
    checkpoint::save(&optim, &recorder(), dir.join("optim.step-1")).unwrap();
    set = step(&mut optim, set, &slots, &shapes, 1);
    checkpoint::save(&optim, &recorder(), dir.join("optim.step-2")).unwrap();
    assert!(dir.join("optim.step-1.mpk").is_file() && dir.join("optim.step-2.mpk").is_file());
    assert!(!dir.join("optim.mpk").exists());
    // A path that names the extension already is written as it is.
    checkpoint::save(&optim, &recorder(), dir.join("named.mpk")).unwrap();
    assert!(dir.join("named.mpk").is_file() && !dir.join("named.mpk.mpk").exists());

    let first = checkpoint::load(
        AdaBeliefConfig::new().init(),
        &set,
        &recorder(),
        dir.join("optim.step-1"),
        &device,
    )
    .unwrap();
    let times: Vec<usize> = first
        .to_record()
        .into_values()
        .filter_map(|state| match state {
            AdaptorRecord::V1(AdaptorRecordV1::Rank1(state)) => Some(state.time),
            _ => None,
        })
        .collect();
    assert!(
        !times.is_empty() && times.iter().all(|&t| t == 1),
        "{times:?}"
    );
}

/// A recorder that fails as a full disk does: part of the file is written, then an error.
#[derive(Debug, Default, Clone)]
struct DiskFull;

impl<Bk: burn::tensor::backend::Backend> burn::record::Recorder<Bk> for DiskFull {
    type Settings = FullPrecisionSettings;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: serde::Serialize>(
        &self,
        item: I,
        file: PathBuf,
    ) -> Result<(), burn::record::RecorderError> {
        let written =
            <NamedMpkFileRecorder<FullPrecisionSettings> as burn::record::Recorder<Bk>>::save_item(
                &recorder(),
                item,
                file.clone(),
            );
        written?;
        // Where Burn's recorder wrote: the path with its last extension replaced.
        let file = file.with_extension("mpk");
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        Err(burn::record::RecorderError::Unknown(
            "no space left on device".into(),
        ))
    }

    fn load_item<I: serde::de::DeserializeOwned>(
        &self,
        file: &mut PathBuf,
    ) -> Result<I, burn::record::RecorderError> {
        <NamedMpkFileRecorder<FullPrecisionSettings> as burn::record::Recorder<Bk>>::load_item(
            &recorder(),
            file,
        )
    }
}

impl<Bk: burn::tensor::backend::Backend> FileRecorder<Bk> for DiskFull {
    fn file_extension() -> &'static str {
        "mpk"
    }
}

/// A save that cannot complete returns an error and leaves the checkpoint it would have
/// replaced as it was, with no partial file beside it.
#[test]
fn failed_save_keeps_the_previous_checkpoint() {
    let dir = scratch("failed_save");
    let (model, _, path) = saved(LambConfig::new().init(), &recorder(), &dir);
    let before = std::fs::read(file(&path)).unwrap();
    let mut other = LambConfig::new().with_weight_decay(0.5).init();
    let device = Default::default();
    let (set, slots, shapes) = mixed_params::<B>(&device);
    let _ = step(&mut other, set, &slots, &shapes, 0);
    let err = checkpoint::save(&other, &DiskFull, path.clone()).unwrap_err();
    assert_eq!(err.kind, CheckpointErrorKind::Write);
    assert!(
        err.message.contains("optim.mpk") && err.message.contains("no space left"),
        "{err}"
    );
    assert_eq!(std::fs::read(file(&path)).unwrap(), before);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        vec!["optim.mpk".to_string()],
        "a partial file was left"
    );
    // And the checkpoint still loads.
    checkpoint::load(LambConfig::new().init(), &model, &recorder(), path, &device).unwrap();
}

/// Only regular files are read: a FIFO at the path would block the read forever.
#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = scratch("fifo");
    let device = Default::default();
    let (model, _, _) = mixed_params::<B>(&device);
    let fifo = dir.join("optim.mpk");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
    let err = checkpoint::load(
        LambConfig::new().init(),
        &model,
        &recorder(),
        dir.join("optim"),
        &device,
    )
    .map(|_| ())
    .unwrap_err();
    assert_eq!(err.kind, CheckpointErrorKind::Unreadable);
    assert!(err.message.contains("not a regular file"), "{err}");
}

/// Mutated copies of a real checkpoint: a seeded generator (the same copies every run) of
/// single-bit flips across the whole file, overwritten runs of bytes, truncations and
/// appended bytes. Each copy differs from the original.
fn mutations(original: &[u8]) -> Vec<Vec<u8>> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |bound: usize| {
        // xorshift64*: small, seeded, good enough to spread positions over the file.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound as u64) as usize
    };
    let n = original.len();
    let mut copies = vec![];
    // Every bit of the header, then bits spread over the payload.
    for bit in 0..(40 * 8).min(n * 8) {
        let mut copy = original.to_vec();
        copy[bit / 8] ^= 1 << (bit % 8);
        copies.push(copy);
    }
    for _ in 0..400 {
        let bit = next(n * 8);
        let mut copy = original.to_vec();
        copy[bit / 8] ^= 1 << (bit % 8);
        copies.push(copy);
    }
    for _ in 0..100 {
        let (start, len) = (next(n), 1 + next(16));
        let mut copy = original.to_vec();
        for b in copy.iter_mut().skip(start).take(len) {
            *b = b.wrapping_add(1 + next(255) as u8);
        }
        copies.push(copy);
    }
    for len in (0..n).step_by((n / 97).max(1)).chain([n - 1]) {
        copies.push(original[..len].to_vec());
    }
    for extra in [1, 7, 4096] {
        let mut copy = original.to_vec();
        copy.extend((0..extra).map(|i| i as u8));
        copies.push(copy);
    }
    copies
}

/// Loads every mutated copy of a saved checkpoint and counts the outcomes: each must be a
/// refusal with an error (an accepted copy would have to continue the run exactly as the
/// original does, and none differs so little that it could).
fn mutated_copies_are_refused<R: FileRecorder<B>>(recorder: R, name: &str) -> usize {
    let dir = scratch(name);
    let device = Default::default();
    let (mut set, slots, shapes) = mixed_params::<B>(&device);
    let mut optim = ScoutConfig::new()
        .with_sync_period(4)
        .init(AdaBeliefConfig::new().with_amsgrad(true).init());
    for k in 0..6 {
        set = step(&mut optim, set, &slots, &shapes, k);
    }
    let path = dir.join("optim");
    checkpoint::save(&optim, &recorder, path.clone()).unwrap();
    let file = checkpoint::file_of::<B, R>(&path);
    let original = std::fs::read(&file).unwrap();
    let fresh = || {
        ScoutConfig::new()
            .with_sync_period(4)
            .init(AdaBeliefConfig::new().with_amsgrad(true).init())
    };
    let copies = mutations(&original);
    for (k, copy) in copies.iter().enumerate() {
        assert_ne!(copy, &original);
        std::fs::write(&file, copy).unwrap();
        let loaded = checkpoint::load(fresh(), &set, &recorder, path.clone(), &device);
        let err = match loaded {
            Ok(_) => panic!("{name}: mutated copy {k} was accepted"),
            Err(err) => err,
        };
        assert_eq!(
            err.kind,
            CheckpointErrorKind::Unreadable,
            "{name} copy {k}: {err}"
        );
    }
    // The original still loads: the refusals were the mutations'.
    std::fs::write(&file, &original).unwrap();
    checkpoint::load(fresh(), &set, &recorder, path, &device).unwrap();
    copies.len()
}

/// Integrity: every mutated copy of a real checkpoint is refused before decoding, with each
/// of the recorders (the length and CRC-32 in the file's header).
#[test]
fn mutated_checkpoints_are_refused() {
    let tried =
        mutated_copies_are_refused(
            NamedMpkFileRecorder::<FullPrecisionSettings>::new(),
            "fuzz-mpk",
        ) + mutated_copies_are_refused(BinFileRecorder::<FullPrecisionSettings>::new(), "fuzz-bin")
            + mutated_copies_are_refused(
                PrettyJsonFileRecorder::<FullPrecisionSettings>::new(),
                "fuzz-json",
            );
    assert!(tried > 3 * 800, "{tried} copies");
}

#[test]
fn missing_file_is_refused() {
    let dir = scratch("missing");
    let device = Default::default();
    let (model, _, _) = mixed_params::<B>(&device);
    let err = refused(LambConfig::new().init(), &model, &dir.join("nothing-here"));
    assert_eq!(err.kind, CheckpointErrorKind::Unreadable);
    assert!(err.message.contains("nothing-here.mpk"), "{err}");
}

#[rstest]
#[case::another_optimizer("Adan", "Lamb")]
#[case::same_layout_another_rule("AdamP", "Lamb")]
#[case::wrapped_into_bare("Lookahead(Lamb)", "Lamb")]
#[case::bare_into_wrapped("Lamb", "Scout(Lamb)")]
#[case::another_wrapper("Lookahead(Lamb)", "Scout(Lamb)")]
fn record_of_another_optimizer_is_refused(#[case] saved_by: &str, #[case] loaded_by: &str) {
    let dir = scratch(&format!("other-{saved_by}-{loaded_by}"));
    let recorder = recorder();
    let (model, _, path) = match saved_by {
        "Adan" => saved(AdanConfig::new().init(), &recorder, &dir),
        "AdamP" => saved(AdamPConfig::new().init(), &recorder, &dir),
        "Lamb" => saved(LambConfig::new().init(), &recorder, &dir),
        _ => saved(
            LookaheadConfig::new().init(LambConfig::new().init()),
            &recorder,
            &dir,
        ),
    };
    let err = match loaded_by {
        "Lamb" => refused(LambConfig::new().init(), &model, &path),
        _ => refused(
            ScoutConfig::new().init(LambConfig::new().init()),
            &model,
            &path,
        ),
    };
    assert_eq!(err.kind, CheckpointErrorKind::WrongOptimizer, "{err}");
    assert!(
        err.message
            .contains(&format!("was saved by {saved_by}, not by {loaded_by}")),
        "{err}"
    );
}

/// The saved model with parameter 1 (shape [4, 3]) replaced by `spec`, keeping every id.
fn changed_model(model: &ParamSet<B>, slots: &[Slot], spec: (Vec<usize>, Vec<f64>)) -> ParamSet<B> {
    let ids: Vec<_> = slots.iter().map(|s| model.id(*s)).collect();
    let mut specs = specs_of(model, slots);
    specs[1] = spec;
    ParamSet::with_ids(&ids, &specs, &Default::default()).0
}

/// The shape and values of each parameter in `slots`.
fn specs_of(model: &ParamSet<B>, slots: &[Slot]) -> Vec<(Vec<usize>, Vec<f64>)> {
    slots
        .iter()
        .map(|s| {
            let shape = match s.rank {
                1 => model.rank1[s.index].val().shape().to_vec(),
                2 => model.rank2[s.index].val().shape().to_vec(),
                3 => model.rank3[s.index].val().shape().to_vec(),
                _ => model.rank4[s.index].val().shape().to_vec(),
            };
            (shape, model.values(*s))
        })
        .collect()
}

#[test]
fn record_for_a_reshaped_parameter_is_refused() {
    let dir = scratch("shape");
    let (model, slots, path) = saved(AdamPConfig::new().init(), &recorder(), &dir);
    let model = changed_model(&model, &slots, (vec![3, 4], vec![0.5; 12]));
    let err = refused(AdamPConfig::new().init(), &model, &path);
    assert_eq!(err.kind, CheckpointErrorKind::ModelMismatch);
    assert!(
        err.message.contains(
            "parameter `rank2.0` has shape [3, 4], its saved state `moment_1` has shape [4, 3]"
        ),
        "{err}"
    );
}

type Inner = holocron_optim_suite::backend::Backend;

/// Trains `optim` three steps and saves its record with every rank-1 state edited by
/// `edit`: a crafted file, which decodes and whose contents alone are wrong.
fn crafted<O: StateLayout<Inner>>(
    mut optim: OptimizerAdaptor<O, ParamSet<B>, B>,
    dir: &Path,
    edit: impl Fn(O::State<1>) -> O::State<1>,
) -> (ParamSet<B>, PathBuf) {
    let device = Default::default();
    let (mut set, slots, shapes) = mixed_params::<B>(&device);
    for k in 0..3 {
        set = step(&mut optim, set, &slots, &shapes, k);
    }
    let mut edited = 0;
    let record = optim
        .to_record()
        .into_iter()
        .map(|(id, state)| match state {
            AdaptorRecord::V1(AdaptorRecordV1::Rank1(state)) => {
                edited += 1;
                (id, AdaptorRecord::V1(AdaptorRecordV1::Rank1(edit(state))))
            }
            other => (id, other),
        })
        .collect();
    assert!(edited > 0, "the set has rank-1 parameters with state");
    let optim = optim.load_record(record);
    let path = dir.join("optim");
    checkpoint::save(&optim, &recorder(), path.clone()).unwrap();
    (set, path)
}

/// Loads a [`crafted`] record of `optim()` into a fresh `optim()` and checks it is refused
/// as not fitting the model, with a message containing each of `expected`.
fn crafted_is_refused<O: StateLayout<Inner>>(
    name: &str,
    optim: impl Fn() -> OptimizerAdaptor<O, ParamSet<B>, B>,
    edit: impl Fn(O::State<1>) -> O::State<1>,
    expected: &[&str],
) {
    let (model, path) = crafted(optim(), &scratch(name), edit);
    let err = refused(optim(), &model, &path);
    assert_eq!(err.kind, CheckpointErrorKind::ModelMismatch);
    assert!(expected.iter().all(|e| err.message.contains(e)), "{err}");
}

/// A step count that would overflow the next step (or make `beta^t` wrap) is refused.
#[test]
fn step_count_out_of_range_is_refused() {
    crafted_is_refused(
        "step_count",
        || AdaBeliefConfig::new().init(),
        |mut state| {
            state.time = usize::MAX;
            state
        },
        &["counts 18446744073709551615 steps, more than the 4294967295"],
    );
}

/// TAdam's weight sum is one element whatever the parameter; another shape would make the
/// next step fail inside a reshape.
#[test]
fn tadam_weight_sum_of_another_shape_is_refused() {
    crafted_is_refused(
        "weight_sum",
        || TAdamConfig::new().init(),
        |mut state| {
            state.weight_sum = state.weight_sum.repeat_dim(0, 5);
            state
        },
        &["`weight_sum`", "has shape [5], not [1]"],
    );
}

#[test]
fn record_of_another_rank_is_refused() {
    let dir = scratch("rank");
    let (model, slots, path) = saved(
        LarsConfig::new().with_momentum(0.9).init(),
        &recorder(),
        &dir,
    );
    let model = changed_model(&model, &slots, (vec![12], vec![0.5; 12]));
    let err = refused(LarsConfig::new().with_momentum(0.9).init(), &model, &path);
    assert_eq!(err.kind, CheckpointErrorKind::ModelMismatch);
    // The rank-1 replacement is the second rank-1 parameter of the set.
    assert!(
        err.message
            .contains("parameter `rank1.1` has rank 1 (shape [12]), its saved state has rank 2"),
        "{err}"
    );
}

#[test]
fn wrapper_weights_of_another_size_are_refused() {
    // Lookahead's slow weights are flattened: only the element count can disagree.
    let dir = scratch("slow-size");
    let optim = || LookaheadConfig::new().init(sgd());
    let (model, slots, path) = saved(optim(), &recorder(), &dir);
    let model = changed_model(&model, &slots, (vec![4, 4], vec![0.5; 16]));
    let err = refused(optim(), &model, &path);
    assert_eq!(err.kind, CheckpointErrorKind::ModelMismatch);
    assert!(
        err.message.contains(
            "parameter `rank2.0` has 16 elements (shape [4, 4]), its saved slow weights have 12"
        ),
        "{err}"
    );
}

fn sgd() -> burn::optim::adaptor::OptimizerAdaptor<
    burn::optim::Sgd<holocron_optim_suite::backend::Backend>,
    ParamSet<B>,
    B,
> {
    burn::optim::SgdConfig::new().init()
}

#[test]
fn record_for_a_model_without_its_ids_is_refused() {
    // Loading the optimizer into a model built anew, without loading the model's record,
    // would silently restart every parameter's state: the ids do not match.
    let dir = scratch("ids");
    let (_, _, path) = saved(AdanConfig::new().init(), &recorder(), &dir);
    let (model, _, _) = mixed_params::<B>(&Default::default());
    let err = refused(AdanConfig::new().init(), &model, &path);
    assert_eq!(err.kind, CheckpointErrorKind::ModelMismatch);
    assert!(
        err.message
            .contains("the model's own record was not loaded first"),
        "{err}"
    );
}

/// `model` without the parameter in `slots[1]`: the same ids and values for the others, as
/// a model looks after a layer was removed during training.
fn without_second(model: &ParamSet<B>, slots: &[Slot]) -> (ParamSet<B>, Vec<Slot>) {
    let kept: Vec<Slot> = slots
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != 1)
        .map(|(_, s)| *s)
        .collect();
    let ids: Vec<_> = kept.iter().map(|s| model.id(*s)).collect();
    ParamSet::with_ids(&ids, &specs_of(model, &kept), &Default::default())
}

fn without_second_shape(shapes: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut kept = shapes.to_vec();
    kept.remove(1);
    kept
}

/// The state of a parameter that left the model (a layer removed since the save) is
/// dropped on load, by the optimizer and by the wrapper; the others load as saved and the
/// run goes on.
#[test]
fn state_of_a_removed_parameter_is_dropped() {
    let dir = scratch("removed");
    let scout = || {
        ScoutConfig::new()
            .with_sync_period(4)
            .init(AdaBeliefConfig::new().init())
    };
    let device = Default::default();
    let (mut set, slots, shapes) = mixed_params::<B>(&device);
    let mut optim = scout();
    for k in 0..6 {
        set = step(&mut optim, set, &slots, &shapes, k);
    }
    let removed = set.id(slots[1]);
    let path = dir.join("optim");
    checkpoint::save(&optim, &recorder(), path.clone()).unwrap();
    let saved = optim.to_record();
    assert!(saved.slow_weights.contains_key(&removed) && saved.inner.contains_key(&removed));

    let (smaller, kept) = without_second(&set, &slots);
    let loaded = checkpoint::load(scout(), &smaller, &recorder(), path, &device).unwrap();
    let record = loaded.to_record();
    assert!(
        !record.inner.contains_key(&removed),
        "the inner state was kept"
    );
    assert!(
        !record.slow_weights.contains_key(&removed),
        "the slow weights were kept"
    );
    assert!(!record.window.contains_key(&removed), "the window was kept");
    for slot in &kept {
        // (The parameter that never had a gradient has slow weights and no inner state.)
        let id = smaller.id(*slot);
        assert_eq!(
            record.inner.contains_key(&id),
            saved.inner.contains_key(&id)
        );
        assert!(record.slow_weights.contains_key(&id));
    }
    // Training goes on with the smaller model; the wrapper keeps no stale entry either.
    let kept_shapes = without_second_shape(&shapes);
    let mut loaded = loaded;
    let mut smaller = smaller;
    for k in 6..10 {
        let grads = mixed_grads(&kept_shapes, k);
        let grads = gradients(&smaller, &kept, &kept_shapes, &grads, &device);
        smaller = loaded.step(0.01, smaller, grads);
    }
    assert!(
        kept.iter()
            .all(|s| smaller.values(*s).iter().all(|v| v.is_finite()))
    );
}

/// During training, too, a wrapper drops the slow weights and window of a parameter the
/// model no longer has (Scout would otherwise count it in its coherence forever).
#[test]
fn wrappers_drop_a_removed_parameter() {
    let device = Default::default();
    let (mut set, slots, shapes) = mixed_params::<B>(&device);
    let mut optim = ScoutConfig::new()
        .with_sync_period(4)
        .init(AdaBeliefConfig::new().init());
    for k in 0..3 {
        set = step(&mut optim, set, &slots, &shapes, k);
    }
    let removed = set.id(slots[1]);
    assert!(optim.to_record().window.contains_key(&removed));
    let (mut smaller, kept) = without_second(&set, &slots);
    let kept_shapes = without_second_shape(&shapes);
    let grads = gradients(
        &smaller,
        &kept,
        &kept_shapes,
        &mixed_grads(&kept_shapes, 3),
        &device,
    );
    smaller = optim.step(0.01, smaller, grads);
    let record = optim.to_record();
    assert!(!record.slow_weights.contains_key(&removed) && !record.window.contains_key(&removed));
    assert!(
        kept.iter()
            .all(|s| smaller.values(*s).iter().all(|v| v.is_finite()))
    );
}

#[test]
fn a_new_parameter_starts_with_fresh_state() {
    // A parameter the record knows nothing about (a layer added since the save) loads fine
    // and behaves as on its first step; the saved parameters continue with their state.
    let dir = scratch("new-param");
    let (model, slots, path) = saved(AdanConfig::new().init(), &recorder(), &dir);
    let device = Default::default();
    let mut grown = model.clone();
    grown
        .rank1
        .push(burn::module::Param::from_tensor(common::tensor(
            &[3],
            &[1.0, 2.0, 3.0],
            &device,
        )));
    let optim = checkpoint::load(AdanConfig::new().init(), &grown, &recorder(), path, &device)
        .unwrap_or_else(|e| panic!("{e}"));
    let new = Slot {
        rank: 1,
        index: grown.rank1.len() - 1,
    };
    let mut all = slots.clone();
    all.push(new);
    let shapes: Vec<Vec<usize>> = vec![
        vec![5],
        vec![4, 3],
        vec![2, 2, 3],
        vec![2, 3, 2, 2],
        vec![3],
    ];
    let mut grads = mixed_grads(&shapes[..4], 7);
    grads.push(Some(vec![0.1, -0.2, 0.3]));
    let mut optim = optim;
    let grads = gradients(&grown, &all, &shapes, &grads, &device);
    let stepped = optim.step(0.01, grown, grads);
    // Adan's first step moves each element by lr * g / (|g| + eps), i.e. by lr * sign(g).
    let got = stepped.values(new);
    for (x, want) in got.iter().zip([1.0 - 0.01, 2.0 + 0.01, 3.0 - 0.01]) {
        assert!((x - want).abs() < 1e-6, "{got:?}");
    }
}

/// What a crafted file holds in place of the record it is given, and the Burn recorder
/// that reads it.
trait Craft: Default + Clone + std::fmt::Debug + Send + Sync + 'static {
    type Loader: FileRecorder<B>;
    /// The file's bytes, from the item a recorder would write.
    fn craft<I: serde::Serialize>(item: I) -> Vec<u8>;
}

/// A recorder that writes [`Craft::craft`]'s bytes and loads with Burn's own recorder, so
/// that [`checkpoint::save`] wraps the crafted bytes in a container with a right checksum
/// and [`checkpoint::load`] gets past it: what is tested is the decoded contents.
#[derive(Debug, Default, Clone)]
struct Crafting<C>(C);

impl<C: Craft> burn::record::Recorder<B> for Crafting<C> {
    type Settings = <C::Loader as burn::record::Recorder<B>>::Settings;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: serde::Serialize>(
        &self,
        item: I,
        file: PathBuf,
    ) -> Result<(), burn::record::RecorderError> {
        // As Burn's file recorders do: the path's last extension replaced with theirs.
        let file = file.with_extension(<C::Loader as FileRecorder<B>>::file_extension());
        std::fs::write(file, C::craft(item)).unwrap();
        Ok(())
    }

    fn load_item<I: serde::de::DeserializeOwned>(
        &self,
        file: &mut PathBuf,
    ) -> Result<I, burn::record::RecorderError> {
        C::Loader::default().load_item(file)
    }
}

impl<C: Craft> FileRecorder<B> for Crafting<C> {
    fn file_extension() -> &'static str {
        <C::Loader as FileRecorder<B>>::file_extension()
    }
}

/// Saves a trained LAMB's state through [`Crafting`] and loads it back with Burn's
/// recorder; returns the load's error, checking the file was left as it was.
fn crafted_file_error<C: Craft>(name: &str) -> checkpoint::CheckpointError {
    let dir = scratch(name);
    let device = Default::default();
    let (mut set, slots, shapes) = mixed_params::<B>(&device);
    let mut optim = LambConfig::new().init();
    for k in 0..3 {
        set = step(&mut optim, set, &slots, &shapes, k);
    }
    let path = dir.join("optim");
    checkpoint::save(&optim, &Crafting(C::default()), path.clone()).unwrap();
    let file = checkpoint::file_of::<B, C::Loader>(&path);
    let before = std::fs::read(&file).unwrap();
    let loader = C::Loader::default();
    let loaded = checkpoint::load(LambConfig::new().init(), &set, &loader, path, &device);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the file was modified"
    );
    match loaded {
        Ok(_) => panic!("{name}: a crafted checkpoint was accepted"),
        Err(err) => err,
    }
}

/// The first tensor's bytes in a JSON record, found by Burn's field names.
fn first_tensor_bytes(value: &mut serde_json::Value) -> Option<&mut Vec<serde_json::Value>> {
    use serde_json::Value;
    let is_tensor = |v: &Value| v.get("shape").is_some() && v.get("dtype").is_some();
    if is_tensor(value) {
        return value.get_mut("bytes").and_then(Value::as_array_mut);
    }
    match value {
        Value::Object(map) => map.values_mut().find_map(first_tensor_bytes),
        Value::Array(items) => items.iter_mut().find_map(first_tensor_bytes),
        _ => None,
    }
}

/// Drops the last element (4 bytes) of the first tensor.
#[derive(Debug, Default, Clone)]
struct ShortBytes;

impl Craft for ShortBytes {
    type Loader = PrettyJsonFileRecorder<FullPrecisionSettings>;
    fn craft<I: serde::Serialize>(item: I) -> Vec<u8> {
        let mut record = serde_json::to_value(&item).unwrap();
        let bytes = first_tensor_bytes(&mut record).expect("the record holds a tensor");
        let kept = bytes.len() - 4;
        bytes.truncate(kept);
        serde_json::to_vec_pretty(&record).unwrap()
    }
}

/// A tensor whose bytes are fewer than its shape declares (the checksum is right: the
/// file was crafted) is refused before a tensor is built from it; Burn's ndarray backend
/// would build it unchecked and the next step would write past its buffer.
#[test]
fn tensor_bytes_shorter_than_their_shape_are_refused() {
    let err = crafted_file_error::<ShortBytes>("short-bytes");
    assert_eq!(err.kind, CheckpointErrorKind::Unreadable);
    assert!(
        err.message
            .contains("optim.json is inconsistent: a saved tensor of shape")
            && err.message.contains("element type F32 holds"),
        "{err}"
    );
}

/// The nine bytes that Burn's Bin recorder reads as a byte buffer of 2^60 bytes (the
/// process aborted on the allocation before checkpoints had a header), written as the
/// checkpoint file itself: refused by the header check, before any decoder sees them.
#[test]
fn nine_bytes_declaring_a_huge_buffer_are_refused() {
    let dir = scratch("nine-bytes");
    let device = Default::default();
    let (model, _, _) = mixed_params::<B>(&device);
    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    let path = dir.join("optim");
    let file = checkpoint::file_of::<B, BinFileRecorder<FullPrecisionSettings>>(&path);
    let nine = [0xFD, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
    std::fs::write(&file, nine).unwrap();
    let err = checkpoint::load(LambConfig::new().init(), &model, &recorder, path, &device)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind, CheckpointErrorKind::Unreadable);
    assert!(err.message.contains("optim.bin"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), nine, "the file was modified");
}

/// Nine bytes that Burn's Bin recorder reads as a byte buffer of 2^60 bytes.
#[derive(Debug, Default, Clone)]
struct HugeLength;

impl Craft for HugeLength {
    type Loader = BinFileRecorder<FullPrecisionSettings>;
    fn craft<I: serde::Serialize>(_: I) -> Vec<u8> {
        vec![0xFD, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]
    }
}

/// The same nine bytes inside a container with a right checksum: Burn's decoder would
/// allocate 2^60 bytes and abort the process; the crate's Bin reader checks the length
/// against the bytes left and refuses the file.
#[test]
fn a_crafted_bin_payload_declaring_a_huge_length_is_refused() {
    let err = crafted_file_error::<HugeLength>("nine-bytes-crafted");
    assert_eq!(err.kind, CheckpointErrorKind::Unreadable);
    assert!(
        err.message.contains("optim.bin") && err.message.contains("left"),
        "{err}"
    );
}

/// A Bin checkpoint of another optimizer is refused by name: the name is read from the
/// start of the record by the same bounded reader.
#[test]
fn a_bin_record_of_another_optimizer_is_refused_by_name() {
    let dir = scratch("bin-other");
    let device = Default::default();
    let (mut set, slots, shapes) = mixed_params::<B>(&device);
    let mut optim = AdanConfig::new().init();
    for k in 0..3 {
        set = step(&mut optim, set, &slots, &shapes, k);
    }
    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    checkpoint::save(&optim, &recorder, dir.join("optim")).unwrap();
    let loaded = checkpoint::load(
        LambConfig::new().init(),
        &set,
        &recorder,
        dir.join("optim"),
        &device,
    );
    let err = loaded.map(|_| ()).unwrap_err();
    assert_eq!(err.kind, CheckpointErrorKind::WrongOptimizer, "{err}");
    assert!(
        err.message.contains("was saved by Adan, not by Lamb"),
        "{err}"
    );
}

/// Which mutation [`MutatedBin`] applies (a test sets it before each save).
static MUTATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The record's bincode bytes after the mutation numbered [`MUTATION`].
#[derive(Debug, Default, Clone)]
struct MutatedBin;

impl Craft for MutatedBin {
    type Loader = BinFileRecorder<FullPrecisionSettings>;
    fn craft<I: serde::Serialize>(item: I) -> Vec<u8> {
        let encoder = burn::record::BinBytesRecorder::<FullPrecisionSettings>::default();
        let mut bytes = burn::record::Recorder::<B>::save_item(&encoder, item, ()).unwrap();
        let mut state = MUTATION.load(std::sync::atomic::Ordering::Relaxed) * 2 + 1;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        let n = bytes.len();
        let (kind, at, bit, marker) = (next(3), next(n), next(8), next(6));
        match kind {
            0 => bytes[at] ^= 1 << bit,
            1 => bytes[at] = [0xFB, 0xFC, 0xFD, 0xFE, 0xFF, 0x00][marker],
            _ => bytes.truncate(at),
        }
        bytes
    }
}

/// The crate's Bin reader against crafted files: 600 seeded mutations of a real record's
/// bincode bytes (bit flips, length markers written anywhere, truncations), each in a
/// container with a right checksum. Every load returns (a refusal, or a record whose
/// contents alone were changed): no panic escapes (Burn's record building panics on an
/// invalid parameter id; `load` turns that into a refusal), no abort.
#[test]
fn crafted_bin_payloads_load_or_are_refused_without_panicking() {
    let dir = scratch("mutated-bin");
    let device = Default::default();
    let (mut set, slots, shapes) = mixed_params::<B>(&device);
    let optim = || {
        ScoutConfig::new()
            .with_sync_period(3)
            .init(TAdamConfig::new().init())
    };
    let mut trained = optim();
    for k in 0..4 {
        set = step(&mut trained, set, &slots, &shapes, k);
    }
    let (mut refused, mut loaded) = (0, 0);
    for k in 0..600 {
        MUTATION.store(k, std::sync::atomic::Ordering::Relaxed);
        checkpoint::save(&trained, &Crafting(MutatedBin), dir.join("optim")).unwrap();
        let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
        match checkpoint::load(optim(), &set, &recorder, dir.join("optim"), &device) {
            Ok(_) => loaded += 1,
            Err(_) => refused += 1,
        }
    }
    println!("crafted Bin payloads: {refused} refused, {loaded} loaded");
    // Both outcomes occur: the mutations reach the reader's checks and pass them too (a
    // flipped bit in a tensor's bytes is a different, well-formed record).
    assert!(
        refused > 100 && loaded > 100,
        "{refused} refused, {loaded} loaded"
    );
}
