//! Golden parity on Burn 0.22: every reference trajectory of the repository's `tests/golden`
//! (or of the directory `HOLOCRON_GOLDEN_DIR` names) replayed step by step through this
//! crate's optimizers, each inside Burn's `ModuleOptimizer` stepping a module of explicit
//! parameters, on the backend the cargo features choose (`tests/common`): f32 files in f32,
//! f64 files in f64 (each tensor created with that dtype; a backend without f64 reports them
//! as skipped). Each case runs twice, on the tensor operations and on the backend's fast
//! path (the CPU loops on Flex and ndarray, the kernels on WGPU and CUDA for f32), and every
//! step must have taken the path its run names.
//!
//! The loading, the golden directory and its `CASES` list, and the comparison are the root
//! suite's (`tests/golden_data`, shared with the Burn 0.21 replay): a listed file that is
//! missing, unreadable, malformed or shorter than its `num_steps` fails the test, and so
//! does a file that `CASES` does not list. After every step, every parameter value and every
//! value of the optimizer's state (where the file has `state`; read back from Burn's
//! optimizer record) must satisfy `|ours - golden| <= tol * max(|golden|, 1e-2)`,
//! `tol = 1e-9` for f64 and `2e-4` for f32; a step count must be equal; every state tensor
//! must be in the case's dtype, of the parameter's shape (TAdam's weight sum `[1; D]`).
//!
//! The Lookahead cases run through this crate's `Lookahead` around its LAMB or Burn's SGD;
//! their state is the inner optimizer's (under `inner.` in our record) and the slow weights.
//! A parameter without gradient never steps in Burn, so it has no state here: its golden
//! slow weights must then be its values, which it still has.
//!
//! The Scout cases (`scout_*`) are skipped, each reported and counted: holocron syncs every
//! parameter with one rate, the mean of the tensors' similarities, where this crate's
//! per-parameter `Scout` gives each parameter the rate of its own (docs/burn-0.22.md); its
//! equations are checked in `tests/scout.rs`. Every other file must run.

mod common;
#[path = "../../../tests/golden_data/mod.rs"]
#[macro_use]
mod golden_data;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::tensor::DType;
use common::*;
use golden_data::*;
use holocron_optim_burn022::*;
use holocron_optim_core::rules::moments::rectification;

/// Translates holocron keyword arguments into this crate's configuration; `None` for a case
/// this crate does not replay (Scout's, whose rate is per parameter here).
fn config(case: &Case) -> Option<AnyConfig> {
    let inner = optimizer(case);
    let Some(wrapper) = &case.wrapper else {
        return Some(inner);
    };
    match wrapper.kind.as_str() {
        "Lookahead" => {
            let mut c = LookaheadConfig::new();
            if let Some(rate) = wrapper.sync_rate {
                c.sync_rate = rate;
            }
            if let Some(period) = wrapper.sync_period {
                c.sync_period = period;
            }
            Some(AnyConfig::Lookahead(Box::new(inner), c))
        }
        "Scout" => None,
        other => panic!("{}: unknown wrapper {other}", case.name),
    }
}

/// The (inner) optimizer of a case, from holocron keyword arguments.
fn optimizer(case: &Case) -> AnyConfig {
    holocron_config!(case, AnyConfig).unwrap_or_else(|| {
        assert!(case.config.is_empty(), "{}: SGD with options", case.name);
        AnyConfig::Sgd(burn::optim::SgdConfig::new())
    })
}

/// A RaLars case that says when it reaches RAdam's rectified branch: the core's
/// rectification (`rho_t > 4`) must switch on exactly at that step, within the run.
fn check_rectified(case: &Case, any: &AnyConfig) -> Result<(), String> {
    let Some(first) = case.rectified_from_step else {
        return Ok(());
    };
    let AnyConfig::RaLars(c) = any else {
        return Err("`rectified_from_step` on a case that is not RaLars".into());
    };
    if first == 0 || first > case.steps.len() {
        return Err(format!(
            "rectified from step {first}, outside the case's {} steps",
            case.steps.len()
        ));
    }
    for t in 1..=first {
        let rectified = rectification(c.beta_2, t).is_some();
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

/// The golden files' name of a state tensor of this crate (LARS's buffer is
/// `momentum.buffer` there, after the 0.21 crate's nested record).
fn golden_name(name: &str) -> &str {
    match name {
        "momentum_buffer" => "momentum.buffer",
        other => other,
    }
}

/// The name in a golden state of a leaf of our record: a wrapper's inner state is under
/// `inner.`; `None` for the wrapper's own bookkeeping (its step count, Scout's window), which
/// the golden files do not hold.
fn golden_leaf(name: &str) -> Option<&str> {
    match name.strip_prefix("inner.") {
        Some(inner) => Some(golden_name(inner)),
        None if name == "steps" || name.starts_with("window.") => None,
        None => Some(golden_name(name)),
    }
}

/// One parameter's recorded state as the golden files name its values, after checking each
/// tensor's dtype and shape.
fn named(
    state: &RecordedState,
    dtype: DType,
    shape: &[usize],
    label: &dyn Fn() -> String,
) -> Result<NamedValues, String> {
    let mut out = NamedValues::new();
    for (name, value) in &state.scalars {
        if let Some(name) = golden_leaf(name) {
            out.insert(name.to_string(), vec![*value]);
        }
    }
    for (name, (got_dtype, got_shape, values)) in &state.tensors {
        let Some(name) = golden_leaf(name) else {
            continue;
        };
        if *got_dtype != dtype {
            return Err(format!(
                "{} {name}: dtype {got_dtype:?}, the parameter's is {dtype:?}",
                label()
            ));
        }
        let one = vec![1; shape.len()];
        if got_shape != shape && !(name == "weight_sum" && *got_shape == one) {
            return Err(format!(
                "{} {name}: shape {got_shape:?} for a parameter of shape {shape:?}",
                label()
            ));
        }
        out.insert(name.to_string(), values.clone());
    }
    Ok(out)
}

/// Replays a case in `dtype` and returns its largest errors, or the first structural
/// mismatch.
fn replay(case: &Case, any: &AnyConfig, dtype: DType) -> Result<Worst, String> {
    let device = device();
    let numels: Vec<usize> = case.shapes.iter().map(|s| s.iter().product()).collect();
    let specs: Vec<Spec> = case
        .shapes
        .iter()
        .zip(&case.init)
        .zip(&numels)
        .map(|((shape, init), &n)| (shape.clone(), init.values(n)))
        .collect();
    let (mut set, slots) = ParamSet::new(&specs, dtype, &device);
    let mut optim = any.init();
    let mut worst = Worst::default();
    for (i, step) in case.steps.iter().enumerate() {
        let grads: Vec<Option<Vec<f64>>> = step
            .grads
            .iter()
            .zip(&numels)
            .map(|(g, &n)| g.as_ref().map(|g| g.values(n)))
            .collect();
        let grads = gradients(&set, &slots, &case.shapes, &grads, dtype, &device);
        set = optim.step(case.lr, set, grads);
        for (j, (slot, want)) in slots.iter().zip(&step.params).enumerate() {
            let label = || format!("step {} parameter {j}", i + 1);
            if set.dtype(*slot) != dtype {
                return Err(format!("{}: dtype {:?}", label(), set.dtype(*slot)));
            }
            compare(&mut worst, Kind::Params, &label, &set.values(*slot), want)?;
        }
        if let Some(states) = &step.state {
            let recorded = recorded_states(&optim);
            for (j, (slot, want)) in slots.iter().zip(states).enumerate() {
                let label = || format!("step {} state of parameter {j}", i + 1);
                let mut got = recorded
                    .get(&set.id(*slot).val())
                    .map(|state| named(state, dtype, &case.shapes[j], &label))
                    .transpose()?;
                if got.is_none() && case.wrapper.is_some() {
                    // Never stepped: its slow weights are its values.
                    let values = set.values(*slot);
                    got = Some(NamedValues::from([("slow".to_string(), values)]));
                }
                compare_state(&mut worst, &label, got, want)?;
            }
        }
    }
    Ok(worst)
}

/// The paths a case in `dtype` replays on, each with the path its steps must take: Burn's
/// composed operations, and the backend's fast path (the CPU loops on Flex and ndarray, the
/// kernels on WGPU and CUDA, which take `f32` only).
fn paths(dtype: DType) -> Vec<(Execution, StepPath)> {
    let mut paths = vec![(Execution::Composed, StepPath::Composed)];
    paths.extend(fast_path(dtype));
    paths
}

#[test]
fn golden_trajectories() {
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden");
    let (dir, overridden) = golden_dir(default);
    let mut failures = vec![];
    let files = golden_files(&dir, overridden, &mut failures);
    let dtypes = dtypes();

    let (mut passed, mut ran, mut skipped_scout, mut skipped_f64) = (0, 0, 0, 0);
    let mut families: BTreeMap<(String, &str), Worst> = BTreeMap::new();
    let mut ran_cases: BTreeSet<(String, &str)> = BTreeSet::new();
    println!("backend: {BACKEND}");
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
        let (dtype, name) = if case.is_f64 {
            (DType::F64, "f64")
        } else {
            (DType::F32, "f32")
        };
        let label = format!("{} ({name})", case.name);
        let Some(any) = config(&case) else {
            println!("SKIP {label:50} Scout: holocron's rate is one for all parameters");
            skipped_scout += 1;
            continue;
        };
        let checks = check_rectified(&case, &any).and(check_eps_sensitivity(&case));
        if let Err(e) = checks {
            println!("FAIL {file}: {e}");
            failures.push(format!("{file}: {e}"));
        }
        if !dtypes.contains(&dtype) {
            println!("SKIP {label:50} the {BACKEND} device has no {name}");
            skipped_f64 += 1;
            continue;
        }
        let tol = if case.is_f64 { TOL_F64 } else { TOL_F32 };
        ran += 1;
        ran_cases.insert((case.name.clone(), name));
        for (execution, path) in paths(dtype) {
            if any.is_sgd() && path != StepPath::Composed {
                // Burn's SGD (inside a Lookahead case) has no loops of ours: replayed once.
                continue;
            }
            let label = format!("{} ({name}, {path:?})", case.name);
            let any = any.clone().with_execution(execution);
            let before = step_paths();
            let replayed = replay(&case, &any, dtype);
            let took = step_paths().since(before);
            let worst = match replayed.and_then(|worst| {
                // Burn's SGD (a Lookahead case's inner optimizer) is not ours to count.
                let all = took.cpu_loops + took.composed + took.kernels;
                let wrong_path = took.on(path) == 0 || all != took.on(path);
                if !any.is_sgd() && wrong_path {
                    Err(format!("steps ran on {took:?}, not all on {path:?}"))
                } else {
                    Ok(worst)
                }
            }) {
                Ok(worst) => worst,
                Err(e) => {
                    println!("FAIL {label:50} {e}");
                    failures.push(format!("{label}: {e}"));
                    continue;
                }
            };
            let worst_of_family = families.entry((family(&case.name), name)).or_default();
            let ok = worst.report(&label, 50, tol, worst_of_family);
            if ok {
                passed += 1;
            } else {
                failures.push(format!("{label}: over tolerance at {}", worst.at));
            }
        }
    }
    println!("worst relative errors per family:");
    for ((family, dtype), w) in &families {
        println!(
            "  {family:20} {dtype}  params {:.2e}  state {:.2e}  sums {:.2e}  ({})",
            w.params, w.state, w.sums, w.at
        );
    }
    println!(
        "golden: {} files, {ran} replayed (f32 each on {:?}, f64 on {:?}), {passed} replays within \
         tolerance, {} failures, {skipped_scout} Scout files skipped, {skipped_f64} f64 files skipped",
        files.len(),
        paths(DType::F32),
        paths(DType::F64),
        failures.len()
    );
    // Every case of the list but Scout's ran, in f32 and (where the device has it) in f64.
    for (path, listed_name) in &files {
        let Some(name) = listed_name else { continue };
        if name.starts_with("scout_") {
            continue;
        }
        let file = path.file_name().unwrap().to_string_lossy();
        let dtype = if file.ends_with(".f64.json") {
            "f64"
        } else {
            "f32"
        };
        if dtype == "f64" && !dtypes.contains(&DType::F64) {
            continue;
        }
        assert!(
            ran_cases.contains(&(name.clone(), dtype)),
            "{file}: the case did not run"
        );
    }
    assert!(ran > 0, "no golden case replayed");
    if HAS_CPU_LOOPS {
        assert_eq!(skipped_f64, 0, "{BACKEND} has f64: every f64 file must run");
    }
    assert!(failures.is_empty(), "golden failures: {failures:#?}");
}
