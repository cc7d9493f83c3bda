//! Golden parity: every reference trajectory in the golden directory, replayed step by step
//! through this crate's optimizers and wrappers (via Burn's `OptimizerAdaptor`) on the
//! backend chosen by cargo feature (`holocron_optim_suite::backend`): f32 files on its f32
//! variant (`NdArray<f32>` by default), f64 files on its f64 variant where it has one
//! (`NdArray<f64>`, CUDA) and reported as skipped where it has none (WGPU).
//!
//! The directory is `tests/golden`, whose `CASES` file lists every case and its two files:
//! a listed file that is missing, unreadable, malformed or shorter than its `num_steps`
//! fails the test, and so does a file that `CASES` does not list. `HOLOCRON_GOLDEN_DIR`
//! names another directory instead; there every `*.json` runs (and `CASES` is checked too
//! if that directory has one). The files come from `tools/golden/generate.py` (holocron.optim
//! 0.3.0 on PyTorch, plus reference classes for this crate's deliberate departures, see
//! `docs/numerics.md`); `tests/golden/README.md` describes their format.
//!
//! Every case runs twice: with `fused = true` (the default: the fused step where the
//! backend has one for that optimizer) and with `fused = false` (the composed tensor
//! operations).
//!
//! After every step, every parameter value and every value of the optimizer's state (where
//! the file has `state`: moments, step count, slow weights, ...) must satisfy
//! `|ours - golden| <= tol * max(|golden|, 1e-2)`, `tol = 1e-9` for f64 and `2e-4` for f32;
//! a step count must be equal. Large cases store a sample of each tensor (every
//! `sample_every`-th value and the last) and, after the final step, sums over all values,
//! checked against the bound that the per-value tolerance implies.
//!
//! The Burn-free part (loading, the golden directory, the comparison) is
//! `tests/golden_data`, shared with the replay of `crates/holocron-optim-burn022`.

mod common;
#[macro_use]
mod golden_data;

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use common::{
    AnyConfig, ParamSet, ReadStates, WithReadableOptimizer, Wrap, WrapperConfig, gradients,
};
use golden_data::*;
use holocron_optim::blocks::Rectification;
use holocron_optim::checkpoint::CheckedRecord;
use holocron_optim::*;
use holocron_optim_suite::backend;

/// The wrapper of a case, from holocron's keyword arguments.
fn wrapper(case: &Case) -> Option<WrapperConfig> {
    let spec = case.wrapper.as_ref()?;
    let (rate, period) = (spec.sync_rate, spec.sync_period);
    Some(match spec.kind.as_str() {
        "Lookahead" => {
            let mut c = LookaheadConfig::new();
            c.sync_rate = rate.unwrap_or(c.sync_rate);
            c.sync_period = period.unwrap_or(c.sync_period);
            WrapperConfig::Lookahead(c)
        }
        "Scout" => {
            let mut c = ScoutConfig::new();
            c.sync_rate = rate.unwrap_or(c.sync_rate);
            c.sync_period = period.unwrap_or(c.sync_period);
            WrapperConfig::Scout(c)
        }
        other => panic!("unknown wrapper {other}"),
    })
}

/// Translates holocron keyword arguments into this crate's configuration.
fn config(case: &Case) -> AnyConfig {
    holocron_config!(case, AnyConfig).unwrap_or(AnyConfig::Sgd)
}

// ---------------------------------------------------------------------------------------
// Checks of the files' own claims
// ---------------------------------------------------------------------------------------

/// A RaLars case that says when it reaches RAdam's rectified branch: the configuration's
/// rectification (`rho_t > 4`) must switch on exactly at that step, within the run.
fn check_rectified(case: &Case, any: &AnyConfig) -> Result<(), String> {
    let Some(first) = case.rectified_from_step else {
        return Ok(());
    };
    let AnyConfig::RaLars(c) = any else {
        return Err("`rectified_from_step` on a case that is not RaLars".into());
    };
    let rectification = Rectification { beta_2: c.beta_2 };
    if first == 0 || first > case.steps.len() {
        return Err(format!(
            "rectified from step {first}, outside the case's {} steps",
            case.steps.len()
        ));
    }
    for t in 1..=first {
        let rectified = rectification.factor(t).is_some();
        if rectified != (t == first) {
            return Err(format!(
                "beta_2 = {}: step {t} is {} (the file says the branch starts at step {first})",
                c.beta_2,
                if rectified {
                    "rectified"
                } else {
                    "not rectified"
                }
            ));
        }
    }
    Ok(())
}

/// Replays a case and returns its largest errors, or the first structural mismatch.
struct Replay<'a>(&'a Case);

impl<B: AutodiffBackend> WithReadableOptimizer<B, ParamSet<B>> for Replay<'_> {
    type Output = Result<Worst, String>;

    fn run<O>(self, mut optim: O) -> Result<Worst, String>
    where
        O: CheckedRecord<ParamSet<B>, B> + ReadStates<ParamSet<B>, B>,
    {
        let case = self.0;
        let device = Default::default();
        let numels: Vec<usize> = case.shapes.iter().map(|s| s.iter().product()).collect();
        let specs: Vec<_> = case
            .shapes
            .iter()
            .zip(&case.init)
            .zip(&numels)
            .map(|((shape, init), &n)| (shape.clone(), init.values(n)))
            .collect();
        let (mut set, slots) = ParamSet::<B>::new(&specs, &device);
        let mut worst = Worst::default();
        for (i, step) in case.steps.iter().enumerate() {
            let grads: Vec<Option<Vec<f64>>> = step
                .grads
                .iter()
                .zip(&numels)
                .map(|(g, &n)| g.as_ref().map(|g| g.values(n)))
                .collect();
            let grads = gradients(&set, &slots, &case.shapes, &grads, &device);
            set = optim.step(case.lr, set, grads);
            for (j, (slot, want)) in slots.iter().zip(&step.params).enumerate() {
                let label = || format!("step {} parameter {j}", i + 1);
                compare(&mut worst, Kind::Params, &label, &set.values(*slot), want)?;
            }
            if let Some(states) = &step.state {
                let record = optim.to_record();
                for (j, (slot, want)) in slots.iter().zip(states).enumerate() {
                    let got = O::param_state(&record, set.id(*slot), slot.rank);
                    let label = || format!("step {} state of parameter {j}", i + 1);
                    compare_state(&mut worst, &label, got, want)?;
                }
            }
        }
        Ok(worst)
    }
}

/// Replays an f64 case on the chosen backend's f64 variant; `None` where it has none.
#[cfg(any(feature = "cuda", not(feature = "wgpu")))]
fn replay_f64<J>(any: &AnyConfig, job: J) -> Option<Result<Worst, String>>
where
    J: WithReadableOptimizer<
            Autodiff<backend::Backend64>,
            ParamSet<Autodiff<backend::Backend64>>,
            Output = Result<Worst, String>,
        >,
{
    Some(any.with_readable::<Autodiff<backend::Backend64>, _, _>(job))
}

#[cfg(not(any(feature = "cuda", not(feature = "wgpu"))))]
fn replay_f64<J>(_: &AnyConfig, _: J) -> Option<Result<Worst, String>> {
    None
}

/// Whether the chosen backend has a fused path in f64: the CPU loops (ndarray) do; the
/// kernels (WGPU, CUDA) take `f32` only, so an f64 step there is composed.
const FUSED_F64: bool = !cfg!(any(feature = "wgpu", feature = "cuda"));

/// That a replay ran on the path it is labelled with: with `fused`, every step of this
/// crate's optimizers on the CPU loops or the kernels (in f64 only where the backend has
/// a fused f64 path, [`FUSED_F64`]), else every one on the composed path. Burn's SGD (the
/// inner optimizer of some wrapper cases) counts on neither.
fn check_path(fused: bool, is_f64: bool, paths: StepPaths) -> Result<(), String> {
    let expect_fused = fused && (FUSED_F64 || !is_f64);
    let fast = paths.cpu_loops + paths.kernels;
    let wrong = if expect_fused { paths.composed } else { fast };
    if wrong > 0 {
        let label = if expect_fused { "fused" } else { "composed" };
        return Err(format!(
            "the replay expected on the {label} path ran steps on another: {paths:?}"
        ));
    }
    Ok(())
}

#[test]
fn golden_trajectories() {
    let (dir, overridden) = golden_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden"));
    let mut failures = vec![];
    let files = golden_files(&dir, overridden, &mut failures);

    let (mut passed, mut skipped) = (0, 0);
    let mut families: BTreeMap<(String, &str), Worst> = BTreeMap::new();
    println!("backend: {}", backend::NAME);
    println!("golden directory: {}", dir.display());
    for (path, listed_name) in &files {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let case = match load(path, listed_name.is_some()) {
            Ok(case) => case,
            Err(e) => {
                println!("FAIL {file}: {e}");
                failures.push(format!("{file}: {e}"));
                continue;
            }
        };
        if let Some(name) = listed_name.as_ref().filter(|n| **n != case.name) {
            failures.push(format!(
                "{file}: holds case {}, CASES says {name}",
                case.name
            ));
        }
        let dtype = if case.is_f64 { "f64" } else { "f32" };
        let checks = check_rectified(&case, &config(&case)).and(check_eps_sensitivity(&case));
        if let Err(e) = checks {
            println!("FAIL {file}: {e}");
            failures.push(format!("{file}: {e}"));
        }
        for fused in [true, false] {
            let step = if fused { ", fused" } else { ", composed" };
            let label = format!("{} ({dtype}{step})", case.name);
            let any = config(&case).with_fused(fused);
            let job = || Wrap {
                wrapper: wrapper(&case).map(|w| w.with_fused(fused)),
                job: Replay(&case),
            };
            let before = step_paths();
            let (result, tol) = if case.is_f64 {
                match replay_f64(&any, job()) {
                    Some(result) => (result, TOL_F64),
                    None => {
                        println!("SKIP {label:60} the {} backend has no f64", backend::NAME);
                        skipped += 1;
                        continue;
                    }
                }
            } else {
                let result = any.with_readable::<Autodiff<backend::Backend>, _, _>(job());
                (result, TOL_F32)
            };
            let worst = match result.and_then(|worst| {
                check_path(fused, case.is_f64, step_paths().since(before))?;
                Ok(worst)
            }) {
                Ok(worst) => worst,
                Err(e) => {
                    println!("FAIL {label:60} {e}");
                    failures.push(format!("{label}: {e}"));
                    continue;
                }
            };
            let worst_of_family = families.entry((family(&case.name), dtype)).or_default();
            let ok = worst.report(&label, 60, tol, worst_of_family);
            if ok {
                passed += 1;
            } else {
                failures.push(format!("{label}: over tolerance at {}", worst.at));
            }
        }
    }
    println!("worst relative errors per family (both paths):");
    for ((family, dtype), w) in &families {
        println!(
            "  {family:20} {dtype}  params {:.2e}  state {:.2e}  sums {:.2e}  ({})",
            w.params, w.state, w.sums, w.at
        );
    }
    println!(
        "golden: {passed} runs within tolerance, {} failures, {skipped} skipped",
        failures.len()
    );
    assert!(failures.is_empty(), "golden failures: {failures:#?}");
}
