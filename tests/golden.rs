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

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use common::{
    AnyConfig, NamedValues, ParamSet, ReadStates, WithReadableOptimizer, Wrap, WrapperConfig,
    gradients,
};
use holocron_optim::blocks::Rectification;
use holocron_optim::checkpoint::CheckedRecord;
use holocron_optim::*;
use holocron_optim_suite::backend;
use serde_json::Value;

const TOL_F64: f64 = 1e-9;
const TOL_F32: f64 = 2e-4;
/// Values smaller than this are compared in absolute terms.
const FLOOR: f64 = 1e-2;

/// The lattice formula of the large cases' inputs, in f64 (then rounded to the case dtype
/// when the tensor is built): `(((a i + b s + c) mod 1000) / 500 - 1) * scale`.
fn lattice(i: u64, s: u64, a: u64, b: u64, c: u64, scale: f64) -> f64 {
    (((a * i + b * s + c) % 1000) as f64 / 500.0 - 1.0) * scale
}

/// An input tensor (initial value or gradient): its values, or a lattice.
#[derive(Debug)]
enum Input {
    Values(Vec<f64>),
    Lattice {
        a: u64,
        b: u64,
        c: u64,
        s: u64,
        scale: f64,
    },
}

impl Input {
    fn values(&self, numel: usize) -> Vec<f64> {
        match self {
            Input::Values(v) => v.clone(),
            &Input::Lattice { a, b, c, s, scale } => (0..numel as u64)
                .map(|i| lattice(i, s, a, b, c, scale))
                .collect(),
        }
    }
}

/// Sums over all values of a tensor, in f64.
#[derive(Debug)]
struct Sums {
    sum: f64,
    sum_sq: f64,
    abs_sum: f64,
}

/// The expected values of a tensor after a step.
#[derive(Debug)]
enum Expected {
    /// Every value, row-major.
    Full(Vec<f64>),
    /// Values at indices 0, every, 2 every, ..., the last value, and (after the final step)
    /// sums over all values.
    Sampled {
        every: usize,
        values: Vec<f64>,
        last: f64,
        sums: Option<Sums>,
    },
}

/// One expected state entry: a step count, or a tensor.
#[derive(Debug)]
enum StateValue {
    Time(u64),
    Tensor(Expected),
}

/// Expected state of one parameter (`None`: the optimizer holds none for it).
type StateEntry = Option<BTreeMap<String, StateValue>>;

struct Step {
    grads: Vec<Option<Input>>,
    params: Vec<Expected>,
    state: Option<Vec<StateEntry>>,
}

struct Case {
    name: String,
    optimizer: String,
    config: serde_json::Map<String, Value>,
    lr: f64,
    wrapper: Option<WrapperConfig>,
    is_f64: bool,
    shapes: Vec<Vec<usize>>,
    init: Vec<Input>,
    steps: Vec<Step>,
    rectified_from_step: Option<usize>,
    eps_sensitivity: Option<f64>,
}

// ---------------------------------------------------------------------------------------
// Loading, with every length checked
// ---------------------------------------------------------------------------------------

type Loaded<T> = Result<T, String>;

fn get<'a>(v: &'a Value, key: &str) -> Loaded<&'a Value> {
    v.get(key).ok_or_else(|| format!("no `{key}`"))
}

fn number(v: &Value, what: &str) -> Loaded<f64> {
    v.as_f64()
        .ok_or_else(|| format!("{what}: not a number: {v}"))
}

fn integer(v: &Value, what: &str) -> Loaded<u64> {
    v.as_u64()
        .ok_or_else(|| format!("{what}: not a non-negative integer: {v}"))
}

fn floats(v: &Value, what: &str) -> Loaded<Vec<f64>> {
    v.as_array()
        .ok_or_else(|| format!("{what}: not an array"))?
        .iter()
        .map(|x| number(x, what))
        .collect()
}

fn array<'a>(v: &'a Value, what: &str) -> Loaded<&'a Vec<Value>> {
    v.as_array().ok_or_else(|| format!("{what}: not an array"))
}

fn input(v: &Value, numel: usize, what: &str) -> Loaded<Input> {
    if let Some(l) = v.get("lattice") {
        let int = |k: &str| integer(get(l, k)?, &format!("{what}: lattice {k}"));
        return Ok(Input::Lattice {
            a: int("a")?,
            b: int("b")?,
            c: int("c")?,
            s: int("s")?,
            scale: number(get(l, "scale")?, what)?,
        });
    }
    let values = floats(v, what)?;
    if values.len() != numel {
        return Err(format!(
            "{what}: {} values for {numel} elements",
            values.len()
        ));
    }
    Ok(Input::Values(values))
}

fn expected(v: &Value, numel: usize, what: &str) -> Loaded<Expected> {
    if v.is_array() {
        let values = floats(v, what)?;
        if values.len() != numel {
            return Err(format!(
                "{what}: {} values for {numel} elements",
                values.len()
            ));
        }
        return Ok(Expected::Full(values));
    }
    let every = integer(get(v, "sample_every")?, what)? as usize;
    let values = floats(get(v, "values")?, what)?;
    let want = if every == 0 { 0 } else { numel.div_ceil(every) };
    if every == 0 || values.len() != want {
        return Err(format!(
            "{what}: {} samples every {every} of {numel} elements, expected {want}",
            values.len()
        ));
    }
    let sums = match v.get("sum") {
        None => None,
        Some(sum) => Some(Sums {
            sum: number(sum, what)?,
            sum_sq: number(get(v, "sum_sq")?, what)?,
            abs_sum: number(get(v, "abs_sum")?, what)?,
        }),
    };
    Ok(Expected::Sampled {
        every,
        values,
        last: number(get(v, "last")?, what)?,
        sums,
    })
}

/// A state tensor has the parameter's size, except TAdam's one-value weight sum.
fn state_numel(name: &str, numel: usize) -> usize {
    if name == "weight_sum" { 1 } else { numel }
}

fn state_entry(v: &Value, numel: usize, what: &str) -> Loaded<StateEntry> {
    if v.is_null() {
        return Ok(None);
    }
    let object = v
        .as_object()
        .ok_or_else(|| format!("{what}: neither null nor an object"))?;
    let mut entry = BTreeMap::new();
    for (name, value) in object {
        let what = format!("{what} `{name}`");
        let value = if name == "time" {
            StateValue::Time(integer(value, &what)?)
        } else {
            StateValue::Tensor(expected(value, state_numel(name, numel), &what)?)
        };
        entry.insert(name.clone(), value);
    }
    Ok(Some(entry))
}

fn load(path: &Path, need_step_count: bool) -> Loaded<Case> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("unreadable: {e}"))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let params = array(get(&json, "params")?, "params")?;
    let mut shapes = vec![];
    let mut init = vec![];
    for (j, p) in params.iter().enumerate() {
        let shape: Vec<usize> = array(get(p, "shape")?, "shape")?
            .iter()
            .map(|d| integer(d, "shape").map(|d| d as usize))
            .collect::<Loaded<_>>()?;
        let numel = shape.iter().product();
        init.push(input(
            get(p, "init")?,
            numel,
            &format!("parameter {j} init"),
        )?);
        shapes.push(shape);
    }
    let numels: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
    let count = |list: &[Value], what: &str| {
        if list.len() == numels.len() {
            Ok(())
        } else {
            Err(format!(
                "{what}: {} entries for {} parameters",
                list.len(),
                numels.len()
            ))
        }
    };
    let raw_steps = array(get(&json, "steps")?, "steps")?;
    match json.get("num_steps") {
        Some(n) => {
            let n = integer(n, "num_steps")? as usize;
            if raw_steps.len() != n {
                return Err(format!("{} steps, `num_steps` says {n}", raw_steps.len()));
            }
        }
        None if need_step_count => return Err("no `num_steps`".into()),
        None => {}
    }
    if raw_steps.is_empty() {
        return Err("no steps".into());
    }
    let mut steps = vec![];
    for (i, s) in raw_steps.iter().enumerate() {
        let at = |what: &str, j: usize| format!("step {} {what} {j}", i + 1);
        let grads = array(get(s, "grads")?, "grads")?;
        count(grads, &format!("step {} grads", i + 1))?;
        let expected_params = array(get(s, "params")?, "params")?;
        count(expected_params, &format!("step {} params", i + 1))?;
        let state = match s.get("state") {
            None => None,
            Some(st) => {
                let st = array(st, "state")?;
                count(st, &format!("step {} state", i + 1))?;
                Some(
                    st.iter()
                        .enumerate()
                        .map(|(j, e)| state_entry(e, numels[j], &at("state of parameter", j)))
                        .collect::<Loaded<_>>()?,
                )
            }
        };
        steps.push(Step {
            grads: grads
                .iter()
                .enumerate()
                .map(|(j, g)| {
                    (!g.is_null())
                        .then(|| input(g, numels[j], &at("gradient", j)))
                        .transpose()
                })
                .collect::<Loaded<_>>()?,
            params: expected_params
                .iter()
                .enumerate()
                .map(|(j, p)| expected(p, numels[j], &at("parameter", j)))
                .collect::<Loaded<_>>()?,
            state,
        });
    }
    let text = |key: &str| {
        get(&json, key)?
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("`{key}` is not a string"))
    };
    Ok(Case {
        name: text("name")?,
        optimizer: text("optimizer")?,
        config: get(&json, "config")?
            .as_object()
            .ok_or("`config` is not an object")?
            .clone(),
        lr: number(get(&json, "lr")?, "lr")?,
        wrapper: wrapper(&json),
        is_f64: text("dtype")? == "float64",
        shapes,
        init,
        steps,
        rectified_from_step: json
            .get("rectified_from_step")
            .map(|v| integer(v, "rectified_from_step").map(|n| n as usize))
            .transpose()?,
        eps_sensitivity: json
            .get("eps_sensitivity")
            .map(|v| number(get(v, "max_rel_diff")?, "eps_sensitivity"))
            .transpose()?,
    })
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
    let betas = get("betas").map(|v| floats(v, "betas").unwrap());
    let beta = |i: usize| betas.as_ref().map(|b| b[i]);
    let clip = get("scale_clip").map(|v| {
        let v = floats(v, "scale_clip").unwrap();
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
            "alpha_warmup",
            "beta_3_warmup",
            "exclude_vectors_from_weight_decay",
            "exclude_vectors_from_trust_ratio",
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
            set!(
                c,
                exclude_vectors_from_weight_decay,
                b("exclude_vectors_from_weight_decay")
            );
            set!(
                c,
                exclude_vectors_from_trust_ratio,
                b("exclude_vectors_from_trust_ratio")
            );
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
            set!(
                c,
                exclude_vectors_from_weight_decay,
                b("exclude_vectors_from_weight_decay")
            );
            set!(
                c,
                exclude_vectors_from_trust_ratio,
                b("exclude_vectors_from_trust_ratio")
            );
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
            let steps = |key: &str| get(key).map(|v| Some(v.as_u64().unwrap() as usize));
            set!(c, alpha_warmup, steps("alpha_warmup"));
            set!(c, beta_3_warmup, steps("beta_3_warmup"));
            AnyConfig::AdEMAMix(c)
        }
        "SGD" => AnyConfig::Sgd,
        other => panic!("{}: unknown optimizer {other}", case.name),
    }
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

/// An epsilon-sensitive case records how far its trajectory moves without eps: far more
/// than the f32 tolerance, or the case could not catch a misplaced eps.
fn check_eps_sensitivity(case: &Case) -> Result<(), String> {
    match case.eps_sensitivity {
        Some(d) if d.is_nan() || d <= 100.0 * TOL_F32 => Err(format!(
            "eps moves the case by only {d:e}, not more than {:e}",
            100.0 * TOL_F32
        )),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------------------

/// The largest errors of a replay, by kind, and where the largest of all is.
#[derive(Default, Clone)]
struct Worst {
    params: f64,
    state: f64,
    sums: f64,
    at: String,
}

impl Worst {
    fn max(&self) -> f64 {
        self.params.max(self.state).max(self.sums)
    }

    fn merge(&mut self, other: &Worst) {
        if other.max() > self.max() {
            self.at = other.at.clone();
        }
        self.params = self.params.max(other.params);
        self.state = self.state.max(other.state);
        self.sums = self.sums.max(other.sums);
    }

    fn record(&mut self, kind: Kind, err: f64, at: impl FnOnce() -> String) {
        if err > self.max() {
            self.at = at();
        }
        let slot = match kind {
            Kind::Params => &mut self.params,
            Kind::State => &mut self.state,
            Kind::Sums => &mut self.sums,
        };
        *slot = slot.max(err);
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Params,
    State,
    Sums,
}

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(FLOOR)
}

/// Compares a tensor's values with their expectation; `Err` on a non-finite value or a
/// size mismatch.
fn compare(
    worst: &mut Worst,
    kind: Kind,
    label: &dyn Fn() -> String,
    got: &[f64],
    want: &Expected,
) -> Result<(), String> {
    let mut one = |k: usize, g: f64, w: f64| {
        let err = rel(g, w);
        if !err.is_finite() {
            return Err(format!("{}[{k}]: {g} vs {w}", label()));
        }
        worst.record(kind, err, || format!("{}[{k}]", label()));
        Ok(())
    };
    match want {
        Expected::Full(values) => {
            if got.len() != values.len() {
                return Err(format!(
                    "{}: {} values, expected {}",
                    label(),
                    got.len(),
                    values.len()
                ));
            }
            for (k, (&g, &w)) in got.iter().zip(values).enumerate() {
                one(k, g, w)?;
            }
        }
        Expected::Sampled {
            every,
            values,
            last,
            sums,
        } => {
            let n = got.len();
            if n == 0 || n.div_ceil(*every) != values.len() {
                return Err(format!(
                    "{}: {n} values for {} samples every {every}",
                    label(),
                    values.len()
                ));
            }
            for (s, &w) in values.iter().enumerate() {
                one(s * every, got[s * every], w)?;
            }
            one(n - 1, got[n - 1], *last)?;
            if let Some(sums) = sums {
                // Bounds implied by |ours - golden| <= tol max(|golden|, FLOOR) per value:
                // |sum diff| <= tol (abs_sum + FLOOR n), |sum_sq diff| <= tol 2 (sum_sq + FLOOR abs_sum)
                // (to first order); the errors reported are the left sides over these
                // bounds without tol.
                let sum: f64 = got.iter().sum();
                let sum_sq: f64 = got.iter().map(|x| x * x).sum();
                let e_sum = (sum - sums.sum).abs() / (sums.abs_sum + FLOOR * n as f64);
                let e_sq = (sum_sq - sums.sum_sq).abs()
                    / (2.0 * (sums.sum_sq + FLOOR * sums.abs_sum)).max(f64::MIN_POSITIVE);
                for (what, e) in [("sum", e_sum), ("sum of squares", e_sq)] {
                    if !e.is_finite() {
                        return Err(format!("{}: {what} not finite", label()));
                    }
                    worst.record(Kind::Sums, e, || format!("{} {what}", label()));
                }
            }
        }
    }
    Ok(())
}

/// Compares one parameter's optimizer state after a step with the golden entry.
fn compare_state(
    worst: &mut Worst,
    label: &dyn Fn() -> String,
    got: Option<NamedValues>,
    want: &StateEntry,
) -> Result<(), String> {
    let Some(want) = want else {
        return match got {
            None => Ok(()),
            Some(got) => Err(format!(
                "{}: the golden optimizer holds no state, ours holds {:?}",
                label(),
                got.keys().collect::<Vec<_>>()
            )),
        };
    };
    // `{}`: the optimizer holds nothing for this parameter (LARS without momentum keeps no
    // state at all, Burn's SGD an empty one).
    let got = got.unwrap_or_default();
    let names = |keys: Vec<&String>| keys.into_iter().cloned().collect::<BTreeSet<_>>();
    if names(got.keys().collect()) != names(want.keys().collect()) {
        return Err(format!(
            "{}: state {:?}, golden {:?}",
            label(),
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        ));
    }
    for (name, value) in want {
        let values = &got[name];
        match value {
            StateValue::Time(t) => {
                if values.as_slice() != [*t as f64] {
                    return Err(format!("{} time: {values:?}, golden {t}", label()));
                }
            }
            StateValue::Tensor(expected) => compare(
                worst,
                Kind::State,
                &|| format!("{} {name}", label()),
                values,
                expected,
            )?,
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

// ---------------------------------------------------------------------------------------
// The golden directory
// ---------------------------------------------------------------------------------------

/// The golden directory, and whether `HOLOCRON_GOLDEN_DIR` chose it.
fn golden_dir() -> (PathBuf, bool) {
    match std::env::var_os("HOLOCRON_GOLDEN_DIR") {
        Some(dir) => (PathBuf::from(dir), true),
        None => (
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden"),
            false,
        ),
    }
}

/// The files to replay, with the case name `CASES` gives each (if any); problems with the
/// list go to `failures`.
fn golden_files(
    dir: &Path,
    overridden: bool,
    failures: &mut Vec<String>,
) -> Vec<(PathBuf, Option<String>)> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read golden directory {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    found.sort();
    let list = dir.join("CASES");
    if !list.exists() {
        assert!(
            overridden,
            "{} is missing: it lists every golden case",
            list.display()
        );
        assert!(!found.is_empty(), "no golden files in {}", dir.display());
        return found.into_iter().map(|p| (p, None)).collect();
    }
    let text = std::fs::read_to_string(&list)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", list.display()));
    let mut files = vec![];
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let name = words.next().unwrap().to_string();
        let listed: Vec<&str> = words.collect();
        for suffix in ["f32", "f64"] {
            let file = format!("{name}.{suffix}.json");
            if !listed.contains(&file.as_str()) {
                failures.push(format!("CASES: {name} does not list {file}"));
            }
        }
        for file in listed {
            let path = dir.join(file);
            if !path.exists() {
                failures.push(format!("{file}: listed in CASES, missing"));
            }
            files.push((path, Some(name.clone())));
        }
    }
    assert!(!files.is_empty(), "{} lists no case", list.display());
    for path in found {
        if !files.iter().any(|(p, _)| p == &path) {
            if overridden {
                files.push((path, None));
            } else {
                failures.push(format!("{}: not listed in CASES", path.display()));
            }
        }
    }
    files.retain(|(p, _)| p.exists());
    files
}

/// A family of cases for the summary: the optimizer or wrapper, and which kind of case.
fn family(name: &str) -> String {
    let head = name.split('_').next().unwrap_or(name);
    if name.ends_with("_large") {
        format!("{head} (large)")
    } else if name.ends_with("_eps_sensitive") {
        format!("{head} (eps)")
    } else {
        head.to_string()
    }
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
    let (dir, overridden) = golden_dir();
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
                wrapper: case.wrapper.clone().map(|w| w.with_fused(fused)),
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
            let ok = worst.max() <= tol;
            println!(
                "{} {label:60} params {:.2e}  state {:.2e}  sums {:.2e}  (tolerance {tol:.0e}; largest at {})",
                if ok { "ok  " } else { "FAIL" },
                worst.params,
                worst.state,
                worst.sums,
                worst.at
            );
            let located = Worst {
                at: format!("{label}: {}", worst.at),
                ..worst.clone()
            };
            families
                .entry((family(&case.name), dtype))
                .or_default()
                .merge(&located);
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
