//! Checkpoint and resume a real Burn `Learner` (`burn-train`) trained with this crate's
//! optimizers: a 2 -> 16 (tanh) -> 1 regression MLP on a fixed synthetic grid, with the
//! plain `Adan` or the wrapped `Lookahead(Lamb)`, Burn's file checkpointer writing the
//! model, optimizer and scheduler after every epoch, a stop after any epoch and a resume
//! from its checkpoint in a fresh process. The training is deterministic, so the resumed
//! run ends with exactly the weights of an uninterrupted one.
//!
//! A full run of 6 epochs, then the same training stopped after epoch 2 and resumed from
//! its checkpoint in a second process, and a comparison of the final weights:
//!
//! ```text
//! cargo run --release --example learner_resume -- --optim adan --epochs 6 --dir /tmp/lr-full
//! cargo run --release --example learner_resume -- --optim adan --epochs 6 --dir /tmp/lr-stop --stop-after 2
//! cargo run --release --example learner_resume -- --optim adan --epochs 6 --dir /tmp/lr-stop --resume 2
//! diff /tmp/lr-full/weights-epoch-6.txt /tmp/lr-stop/weights-epoch-6.txt && echo identical
//! ```
//!
//! `--optim` picks any of the eight optimizers, `lookahead-lamb`
//! (`LookaheadConfig::new().init(LambConfig::new().init())`) or `scout-adabelief`.
//!
//! `--devices N` trains under Burn's `ExecutionStrategy::MultiDevice` on `N` devices (the
//! optimizer on the first; with `--sharded` each parameter is stepped, and its state kept,
//! on the device that owns it), each device taking 16 samples a step; `--replicas N` trains
//! on one device with the same global batches, to compare:
//!
//! ```text
//! cargo run --release --example learner_resume -- --optim lamb --dir /tmp/lr-one --replicas 2
//! cargo run --release --example learner_resume -- --optim lamb --dir /tmp/lr-two --devices 2 --sharded
//! ```
//!
//! The two agree to rounding (`tests/multi_device.rs` checks it for every optimizer); a
//! checkpoint written under one strategy resumes under another. See `docs/multi-device.md`.
//! Each run writes `checkpoint/{model,optim,scheduler}-<epoch>.mpk`, Burn's metric logs
//! (`train/`, `valid/`) and `weights-epoch-<last epoch>.txt` (one value a line, with its
//! bits in hex) under `--dir`; a resume reads the checkpoint from the same `--dir`. Start
//! a full or stopped run in a fresh directory, and compare runs of the same build (a debug
//! and a release build may round differently). The training logic is in `train.rs`, which
//! `tests/learner_resume.rs` also uses.

mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use train::{OptimizerKind, RunConfig, Strategy};

const USAGE: &str = "\
usage: learner_resume [--optim NAME] [--epochs N] [--dir DIR]
                      [--stop-after K | --resume K] [--devices N [--sharded] | --replicas N]
                      [--quiet]

  --optim       the optimizer (default adan): lars, lamb, ralars, tadam, adabelief, adamp,
                adan, ademamix, lookahead-lamb, scout-adabelief
  --devices     train on N devices with Burn's MultiDevice strategy (ndarray: N workers on
                the CPU; wgpu: at most 2)
  --sharded     with --devices: each parameter stepped on the device that owns it
  --replicas    one device, each step on the batches of N devices (compare with --devices)
  --epochs      the total number of epochs N (default 6)
  --dir         the artifact directory (default target/learner_resume/<optim>)
  --stop-after  stop after epoch K, once its checkpoint is written
  --resume      resume from the checkpoint of epoch K in --dir, up to epoch N
  --quiet       no per-epoch losses";

fn parse_args(args: &[String]) -> Result<RunConfig, String> {
    let mut optimizer = OptimizerKind::Adan;
    let mut num_epochs = 6;
    let mut artifact_dir = None;
    let mut stop_after = None;
    let mut resume_from = None;
    let mut verbose = true;
    let mut devices = None;
    let mut sharded = false;
    let mut replicas = 1;

    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: &String| {
            text.parse::<usize>()
                .map_err(|_| format!("{flag}: `{text}` is not a number"))
        };
        match flag.as_str() {
            "--optim" => {
                let name = value()?;
                optimizer = OptimizerKind::ALL
                    .into_iter()
                    .find(|kind| kind.name() == name)
                    .ok_or_else(|| format!("unknown optimizer `{name}`"))?;
            }
            "--devices" => devices = Some(number(value()?)?),
            "--sharded" => sharded = true,
            "--replicas" => replicas = number(value()?)?,
            "--epochs" => num_epochs = number(value()?)?,
            "--dir" => artifact_dir = Some(PathBuf::from(value()?)),
            "--stop-after" => stop_after = Some(number(value()?)?),
            "--resume" => resume_from = Some(number(value()?)?),
            "--quiet" => verbose = false,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if stop_after.is_some() && resume_from.is_some() {
        return Err("--stop-after and --resume exclude each other".into());
    }
    let strategy = match devices {
        Some(_) if replicas != 1 => {
            return Err("--devices and --replicas exclude each other".into());
        }
        Some(devices) => Strategy::MultiDevice { devices, sharded },
        None if sharded => return Err("--sharded needs --devices".into()),
        None => Strategy::Single { replicas },
    };
    let artifact_dir = artifact_dir
        .unwrap_or_else(|| PathBuf::from("target/learner_resume").join(optimizer.name()));

    Ok(RunConfig {
        artifact_dir,
        optimizer,
        strategy,
        num_epochs,
        stop_after,
        resume_from,
        verbose,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let config = match parse_args(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };

    println!(
        "{:?}, {:?}, {} epochs, artifacts in {}{}",
        config.optimizer,
        config.strategy,
        config.num_epochs,
        config.artifact_dir.display(),
        match (config.stop_after, config.resume_from) {
            (Some(k), _) => format!(", stopping after epoch {k}"),
            (_, Some(k)) => format!(", resuming from the checkpoint of epoch {k}"),
            _ => String::new(),
        }
    );
    let outcome = match train::run(&config) {
        Ok(outcome) => outcome,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };

    for (name, values) in &outcome.weights {
        let shown: Vec<String> = values.iter().take(4).map(|v| format!("{v:.6}")).collect();
        let more = if values.len() > 4 { ", ..." } else { "" };
        println!(
            "{name} ({} values): [{}{more}]",
            values.len(),
            shown.join(", ")
        );
    }
    // FNV-1a over the bits of every weight: equal checksums mean bit-identical weights.
    let checksum = outcome
        .weights
        .iter()
        .flat_map(|(_, values)| values)
        .flat_map(|v| v.to_bits().to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    println!(
        "weights after epoch {} (checksum {checksum:016x}) written to {}",
        outcome.last_epoch,
        outcome.weights_file.display()
    );
    if outcome.last_epoch < config.num_epochs {
        println!(
            "stopped; resume with: --epochs {} --dir {} --resume {}",
            config.num_epochs,
            config.artifact_dir.display(),
            outcome.last_epoch
        );
    }
    ExitCode::SUCCESS
}
