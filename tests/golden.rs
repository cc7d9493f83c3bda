//! Golden parity: every reference trajectory in the golden directory, replayed step by step
//! through this crate's optimizers and wrappers (via Burn's `OptimizerAdaptor`) on the
//! backend chosen by cargo feature (`holocron_optim_suite::backend`): f32 files on its f32
//! variant (`NdArray<f32>` by default), f64 files on its f64 variant where it has one
//! (`NdArray<f64>`, CUDA) and reported as skipped where it has none (WGPU).
//!
//! The directory is `tests/golden` unless `HOLOCRON_GOLDEN_DIR` names another. Each file was
//! produced by the Python reference (holocron.optim 0.3.0 on PyTorch, plus the reference
//! classes of NUMERICS.md's departures); see `tests/golden/README.md`.
//!
//! Every case runs twice: with `fused = true` (the default: the fused step where the
//! backend has one for that optimizer) and with `fused = false` (the composed tensor
//! operations).
//!
//! Tolerance: `|ours - golden| <= tol * max(|golden|, 1e-2)` for every value of every
//! parameter after every step, `tol = 1e-9` for f64 and `2e-4` for f32.

mod common;

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use common::{AnyConfig, ParamSet, WithOptimizer, Wrap, WrapperConfig, gradients};
use holocron_optim::checkpoint::CheckedRecord;
use holocron_optim::*;
use holocron_optim_suite::backend;
use serde_json::Value;

const TOL_F64: f64 = 1e-9;
const TOL_F32: f64 = 2e-4;

struct Case {
    name: String,
    optimizer: String,
    config: serde_json::Map<String, Value>,
    lr: f64,
    wrapper: Option<WrapperConfig>,
    shapes: Vec<Vec<usize>>,
    init: Vec<Vec<f64>>,
    grads: Vec<Vec<Option<Vec<f64>>>>,
    expected: Vec<Vec<Vec<f64>>>,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn load(path: &Path) -> (Case, bool) {
    let text = std::fs::read_to_string(path).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let params = json["params"].as_array().unwrap();
    let steps = json["steps"].as_array().unwrap();
    let case = Case {
        name: json["name"].as_str().unwrap().to_string(),
        optimizer: json["optimizer"].as_str().unwrap().to_string(),
        config: json["config"].as_object().unwrap().clone(),
        lr: json["lr"].as_f64().unwrap(),
        wrapper: wrapper(&json),
        shapes: params
            .iter()
            .map(|p| {
                p["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap() as usize)
                    .collect()
            })
            .collect(),
        init: params.iter().map(|p| floats(&p["init"])).collect(),
        grads: steps
            .iter()
            .map(|s| {
                s["grads"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|g| (!g.is_null()).then(|| floats(g)))
                    .collect()
            })
            .collect(),
        expected: steps
            .iter()
            .map(|s| s["params"].as_array().unwrap().iter().map(floats).collect())
            .collect(),
    };
    let is_f64 = json["dtype"].as_str() == Some("float64");
    (case, is_f64)
}

/// The wrapper of a case, from holocron's keyword arguments.
fn wrapper(json: &Value) -> Option<WrapperConfig> {
    let kind = json["wrapper"].as_str()?;
    let cfg = &json["wrapper_config"];
    let rate = cfg.get("sync_rate").map(|v| v.as_f64().unwrap());
    let period = cfg.get("sync_period").map(|v| v.as_u64().unwrap() as usize);
    Some(match kind {
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
    let get = |key: &str| case.config.get(key);
    let f = |key: &str| get(key).map(|v| v.as_f64().unwrap());
    let b = |key: &str| get(key).map(|v| v.as_bool().unwrap());
    let betas = get("betas").map(floats);
    let beta = |i: usize| betas.as_ref().map(|b| b[i]);
    let clip = get("scale_clip").map(|v| {
        let v = floats(v);
        (v[0], v[1])
    });
    for key in case.config.keys() {
        let known = [
            "betas",
            "eps",
            "weight_decay",
            "momentum",
            "dampening",
            "nesterov",
            "scale_clip",
            "bias_correction",
            "force_adaptive_momentum",
            "amsgrad",
            "dof",
            "delta",
            "alpha",
        ];
        assert!(
            known.contains(&key.as_str()),
            "{}: unknown keyword {key}",
            case.name
        );
    }
    macro_rules! set {
        ($c:ident, $field:ident, $value:expr) => {
            if let Some(v) = $value {
                $c.$field = v;
            }
        };
    }
    match case.optimizer.as_str() {
        "LARS" => {
            let mut c = LarsConfig::new();
            set!(c, momentum, f("momentum"));
            set!(c, dampening, f("dampening"));
            set!(c, weight_decay, f("weight_decay"));
            set!(c, nesterov, b("nesterov"));
            set!(c, scale_clip, clip);
            AnyConfig::Lars(c)
        }
        "LAMB" => {
            let mut c = LambConfig::new();
            set!(c, beta_1, beta(0));
            set!(c, beta_2, beta(1));
            set!(c, epsilon, f("eps"));
            set!(c, weight_decay, f("weight_decay"));
            set!(c, scale_clip, clip);
            set!(c, bias_correction, b("bias_correction"));
            AnyConfig::Lamb(c)
        }
        "RaLars" => {
            let mut c = RaLarsConfig::new();
            set!(c, beta_1, beta(0));
            set!(c, beta_2, beta(1));
            set!(c, epsilon, f("eps"));
            set!(c, weight_decay, f("weight_decay"));
            set!(c, force_adaptive_momentum, b("force_adaptive_momentum"));
            set!(c, scale_clip, clip);
            AnyConfig::RaLars(c)
        }
        "TAdam" => {
            let mut c = TAdamConfig::new();
            set!(c, beta_1, beta(0));
            set!(c, beta_2, beta(1));
            set!(c, epsilon, f("eps"));
            set!(c, weight_decay, f("weight_decay"));
            set!(c, amsgrad, b("amsgrad"));
            c.dof = f("dof");
            AnyConfig::TAdam(c)
        }
        "AdaBelief" => {
            let mut c = AdaBeliefConfig::new();
            set!(c, beta_1, beta(0));
            set!(c, beta_2, beta(1));
            set!(c, epsilon, f("eps"));
            set!(c, weight_decay, f("weight_decay"));
            set!(c, amsgrad, b("amsgrad"));
            AnyConfig::AdaBelief(c)
        }
        "AdamP" => {
            let mut c = AdamPConfig::new();
            set!(c, beta_1, beta(0));
            set!(c, beta_2, beta(1));
            set!(c, epsilon, f("eps"));
            set!(c, weight_decay, f("weight_decay"));
            set!(c, amsgrad, b("amsgrad"));
            set!(c, delta, f("delta"));
            AnyConfig::AdamP(c)
        }
        "Adan" => {
            let mut c = AdanConfig::new();
            set!(c, beta_1, beta(0));
            set!(c, beta_2, beta(1));
            set!(c, beta_3, beta(2));
            set!(c, epsilon, f("eps"));
            set!(c, weight_decay, f("weight_decay"));
            set!(c, amsgrad, b("amsgrad"));
            AnyConfig::Adan(c)
        }
        "AdEMAMix" => {
            let mut c = AdEMAMixConfig::new();
            set!(c, beta_1, beta(0));
            set!(c, beta_2, beta(1));
            set!(c, beta_3, beta(2));
            set!(c, alpha, f("alpha"));
            set!(c, epsilon, f("eps"));
            set!(c, weight_decay, f("weight_decay"));
            AnyConfig::AdEMAMix(c)
        }
        "SGD" => AnyConfig::Sgd,
        other => panic!("{}: unknown optimizer {other}", case.name),
    }
}

/// Replays a case and returns the largest relative error over all steps and values.
struct Replay<'a>(&'a Case);

impl<B: AutodiffBackend> WithOptimizer<B, ParamSet<B>> for Replay<'_> {
    type Output = f64;

    fn run<O: CheckedRecord<ParamSet<B>, B>>(self, mut optim: O) -> f64 {
        let case = self.0;
        let device = Default::default();
        let specs: Vec<_> = case
            .shapes
            .iter()
            .cloned()
            .zip(case.init.iter().cloned())
            .collect();
        let (mut set, slots) = ParamSet::<B>::new(&specs, &device);
        let mut worst = 0.0f64;
        for (step, (grads, expected)) in case.grads.iter().zip(&case.expected).enumerate() {
            let grads = gradients(&set, &slots, &case.shapes, grads, &device);
            set = optim.step(case.lr, set, grads);
            for (j, (slot, want)) in slots.iter().zip(expected).enumerate() {
                let got = set.values(*slot);
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(want) {
                    let err = (g - w).abs() / w.abs().max(1e-2);
                    assert!(
                        err.is_finite(),
                        "{}: step {} parameter {j}: {g} vs {w}",
                        case.name,
                        step + 1
                    );
                    worst = worst.max(err);
                }
            }
        }
        worst
    }
}

/// Replays an f64 case on the chosen backend's f64 variant; `None` where it has none.
#[cfg(any(feature = "cuda", not(feature = "wgpu")))]
fn replay_f64<J>(any: &AnyConfig, job: J) -> Option<f64>
where
    J: WithOptimizer<
            Autodiff<backend::Backend64>,
            ParamSet<Autodiff<backend::Backend64>>,
            Output = f64,
        >,
{
    Some(any.with::<Autodiff<backend::Backend64>, _, _>(job))
}

#[cfg(not(any(feature = "cuda", not(feature = "wgpu"))))]
fn replay_f64<J>(_: &AnyConfig, _: J) -> Option<f64> {
    None
}

fn golden_dir() -> PathBuf {
    std::env::var_os("HOLOCRON_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden"))
}

#[test]
fn golden_trajectories() {
    let dir = golden_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read golden directory {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden files in {}", dir.display());

    let mut failures = vec![];
    let (mut passed, mut skipped) = (0, 0);
    println!("backend: {}", backend::NAME);
    println!("golden directory: {}", dir.display());
    for path in &files {
        let (case, is_f64) = load(path);
        for fused in [true, false] {
            let step = if fused { ", fused" } else { ", composed" };
            let label = format!(
                "{} ({}{step})",
                case.name,
                if is_f64 { "f64" } else { "f32" }
            );
            let any = config(&case).with_fused(fused);
            let job = || Wrap {
                wrapper: case.wrapper.clone().map(|w| w.with_fused(fused)),
                job: Replay(&case),
            };
            let (worst, tol) = if is_f64 {
                match replay_f64(&any, job()) {
                    Some(worst) => (worst, TOL_F64),
                    None => {
                        println!("SKIP {label:56} the {} backend has no f64", backend::NAME);
                        skipped += 1;
                        continue;
                    }
                }
            } else {
                (any.with::<Autodiff<backend::Backend>, _, _>(job()), TOL_F32)
            };
            let verdict = if worst <= tol { "ok  " } else { "FAIL" };
            println!("{verdict} {label:56} max rel error {worst:.3e} (tolerance {tol:.0e})");
            if worst <= tol {
                passed += 1;
            } else {
                failures.push(label);
            }
        }
    }
    println!(
        "golden: {passed} cases within tolerance, {} over, {skipped} skipped",
        failures.len()
    );
    assert!(failures.is_empty(), "over tolerance: {failures:?}");
}
