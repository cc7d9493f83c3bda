//! The Burn-free half of the golden replay: loading the reference trajectories of
//! `tests/golden` (every length checked), the lattice inputs, the golden directory and its
//! `CASES` list, and the comparison of a replay's values with the expectations. Included by
//! the root suite's `tests/golden.rs` (Burn 0.21) and by
//! `crates/holocron-optim-burn022/tests/golden.rs` (Burn 0.22), which each translate a case
//! into their own optimizer and replay it; `tests/golden/README.md` describes the format.

// Each including test crate uses its own subset.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One parameter's optimizer state as named values (a step count as one value).
pub type NamedValues = BTreeMap<String, Vec<f64>>;

/// Every holocron keyword argument a case's `config` may hold.
pub const KNOWN_KEYWORDS: [&str; 17] = [
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

/// A case's wrapper, as the file gives it: its kind (`"Lookahead"`, `"Scout"`) and its
/// holocron keyword arguments.
#[derive(Debug, Clone)]
pub struct WrapperSpec {
    pub kind: String,
    pub sync_rate: Option<f64>,
    pub sync_period: Option<usize>,
}

/// The wrapper of a case, from holocron's keyword arguments.
fn wrapper(json: &Value) -> Option<WrapperSpec> {
    let kind = json["wrapper"].as_str()?;
    let cfg = &json["wrapper_config"];
    let rate = cfg.get("sync_rate").map(|v| v.as_f64().unwrap());
    let period = cfg.get("sync_period").map(|v| v.as_u64().unwrap() as usize);
    Some(WrapperSpec {
        kind: kind.to_string(),
        sync_rate: rate,
        sync_period: period,
    })
}

pub const TOL_F64: f64 = 1e-9;
pub const TOL_F32: f64 = 2e-4;
/// Values smaller than this are compared in absolute terms.
pub const FLOOR: f64 = 1e-2;

/// The lattice formula of the large cases' inputs, in f64 (then rounded to the case dtype
/// when the tensor is built): `(((a i + b s + c) mod 1000) / 500 - 1) * scale`.
pub fn lattice(i: u64, s: u64, a: u64, b: u64, c: u64, scale: f64) -> f64 {
    (((a * i + b * s + c) % 1000) as f64 / 500.0 - 1.0) * scale
}

/// An input tensor (initial value or gradient): its values, or a lattice.
#[derive(Debug)]
pub enum Input {
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
    pub fn values(&self, numel: usize) -> Vec<f64> {
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
pub struct Sums {
    pub sum: f64,
    pub sum_sq: f64,
    pub abs_sum: f64,
}

/// The expected values of a tensor after a step.
#[derive(Debug)]
pub enum Expected {
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
pub enum StateValue {
    Time(u64),
    Tensor(Expected),
}

/// Expected state of one parameter (`None`: the optimizer holds none for it).
pub type StateEntry = Option<BTreeMap<String, StateValue>>;

pub struct Step {
    pub grads: Vec<Option<Input>>,
    pub params: Vec<Expected>,
    pub state: Option<Vec<StateEntry>>,
}

pub struct Case {
    pub name: String,
    pub optimizer: String,
    pub config: serde_json::Map<String, Value>,
    pub lr: f64,
    pub wrapper: Option<WrapperSpec>,
    pub is_f64: bool,
    pub shapes: Vec<Vec<usize>>,
    pub init: Vec<Input>,
    pub steps: Vec<Step>,
    pub rectified_from_step: Option<usize>,
    pub eps_sensitivity: Option<f64>,
}

// ---------------------------------------------------------------------------------------
// Loading, with every length checked
// ---------------------------------------------------------------------------------------

pub type Loaded<T> = Result<T, String>;

pub fn get<'a>(v: &'a Value, key: &str) -> Loaded<&'a Value> {
    v.get(key).ok_or_else(|| format!("no `{key}`"))
}

pub fn number(v: &Value, what: &str) -> Loaded<f64> {
    v.as_f64()
        .ok_or_else(|| format!("{what}: not a number: {v}"))
}

pub fn integer(v: &Value, what: &str) -> Loaded<u64> {
    v.as_u64()
        .ok_or_else(|| format!("{what}: not a non-negative integer: {v}"))
}

pub fn floats(v: &Value, what: &str) -> Loaded<Vec<f64>> {
    v.as_array()
        .ok_or_else(|| format!("{what}: not an array"))?
        .iter()
        .map(|x| number(x, what))
        .collect()
}

pub fn array<'a>(v: &'a Value, what: &str) -> Loaded<&'a Vec<Value>> {
    v.as_array().ok_or_else(|| format!("{what}: not an array"))
}

pub fn input(v: &Value, numel: usize, what: &str) -> Loaded<Input> {
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

pub fn expected(v: &Value, numel: usize, what: &str) -> Loaded<Expected> {
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
pub fn state_numel(name: &str, numel: usize) -> usize {
    if name == "weight_sum" { 1 } else { numel }
}

pub fn state_entry(v: &Value, numel: usize, what: &str) -> Loaded<StateEntry> {
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

pub fn load(path: &Path, need_step_count: bool) -> Loaded<Case> {
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

pub fn check_eps_sensitivity(case: &Case) -> Result<(), String> {
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
pub struct Worst {
    pub params: f64,
    pub state: f64,
    pub sums: f64,
    pub at: String,
}

impl Worst {
    pub fn max(&self) -> f64 {
        self.params.max(self.state).max(self.sums)
    }

    pub fn merge(&mut self, other: &Worst) {
        if other.max() > self.max() {
            self.at = other.at.clone();
        }
        self.params = self.params.max(other.params);
        self.state = self.state.max(other.state);
        self.sums = self.sums.max(other.sums);
    }

    /// Prints the largest errors of the replay `label` against `tol` (the label padded to
    /// `width`), merges them into its `family`'s, located by the label, and whether they are
    /// within tolerance.
    pub fn report(&self, label: &str, width: usize, tol: f64, family: &mut Worst) -> bool {
        let ok = self.max() <= tol;
        println!(
            "{} {label:width$} params {:.2e}  state {:.2e}  sums {:.2e}  (tolerance {tol:.0e}; largest at {})",
            if ok { "ok  " } else { "FAIL" },
            self.params,
            self.state,
            self.sums,
            self.at
        );
        family.merge(&Worst {
            at: format!("{label}: {}", self.at),
            ..self.clone()
        });
        ok
    }

    pub fn record(&mut self, kind: Kind, err: f64, at: impl FnOnce() -> String) {
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
pub enum Kind {
    Params,
    State,
    Sums,
}

pub fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(FLOOR)
}

/// Compares a tensor's values with their expectation; `Err` on a non-finite value or a
/// size mismatch.
pub fn compare(
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
pub fn compare_state(
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

// ---------------------------------------------------------------------------------------
// The golden directory
// ---------------------------------------------------------------------------------------

/// The golden directory, and whether `HOLOCRON_GOLDEN_DIR` chose it (else `default`, the
/// repository's `tests/golden` as seen from the including test crate).
pub fn golden_dir(default: PathBuf) -> (PathBuf, bool) {
    match std::env::var_os("HOLOCRON_GOLDEN_DIR") {
        Some(dir) => (PathBuf::from(dir), true),
        None => (default, false),
    }
}

/// The files to replay, with the case name `CASES` gives each (if any); problems with the
/// list go to `failures`.
pub fn golden_files(
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
pub fn family(name: &str) -> String {
    let head = name.split('_').next().unwrap_or(name);
    if name.ends_with("_large") {
        format!("{head} (large)")
    } else if name.ends_with("_eps_sensitive") {
        format!("{head} (eps)")
    } else {
        head.to_string()
    }
}

/// `$c.$field = v` when `$value` is `Some(v)`: a keyword the case sets.
macro_rules! set_some {
    ($c:ident, $field:ident, $value:expr) => {
        if let Some(v) = $value {
            $c.$field = v;
        }
    };
}

/// The fields every Adam-like configuration has, from `betas`, `eps` and `weight_decay`.
macro_rules! set_adam {
    ($c:ident, $beta:ident, $f:ident) => {
        set_some!($c, beta_1, $beta(0));
        set_some!($c, beta_2, $beta(1));
        set_some!($c, epsilon, $f("eps"));
        set_some!($c, weight_decay, $f("weight_decay"));
    };
}

/// The exclusions of vectors (biases, norm scales) of LARS, LAMB and RaLars.
macro_rules! set_exclusions {
    ($c:ident, $b:ident) => {
        set_some!(
            $c,
            exclude_vectors_from_weight_decay,
            $b("exclude_vectors_from_weight_decay")
        );
        set_some!(
            $c,
            exclude_vectors_from_trust_ratio,
            $b("exclude_vectors_from_trust_ratio")
        );
    };
}

/// The configuration of a case's optimizer from its holocron keyword arguments, as
/// `Some($any::<Optimizer>(config))` with `$any` the including crate's enum of
/// configurations (`None` for `"SGD"`, which each crate builds its own way). The field
/// names are the same in both Burn crates (their configurations are written from the same
/// lists of `holocron-optim-core`), and so is the type of each configuration, which the
/// including test brings into scope (`use holocron_optim::*` or
/// `use holocron_optim_burn022::*`).
///
/// # Panics
///
/// For a keyword outside [`KNOWN_KEYWORDS`] or an unknown optimizer.
macro_rules! holocron_config {
    ($case:expr, $any:ident) => {{
        let case: &Case = $case;
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
            assert!(
                KNOWN_KEYWORDS.contains(&key.as_str()),
                "{}: unknown keyword {key}",
                case.name
            );
        }
        match case.optimizer.as_str() {
            "LARS" => {
                let mut c = LarsConfig::new();
                set_some!(c, momentum, f("momentum"));
                set_some!(c, dampening, f("dampening"));
                set_some!(c, weight_decay, f("weight_decay"));
                set_some!(c, nesterov, b("nesterov"));
                set_some!(c, scale_clip, clip);
                set_exclusions!(c, b);
                Some($any::Lars(c))
            }
            "LAMB" => {
                let mut c = LambConfig::new();
                set_adam!(c, beta, f);
                set_some!(c, scale_clip, clip);
                set_some!(c, bias_correction, b("bias_correction"));
                set_exclusions!(c, b);
                Some($any::Lamb(c))
            }
            "RaLars" => {
                let mut c = RaLarsConfig::new();
                set_adam!(c, beta, f);
                set_some!(c, force_adaptive_momentum, b("force_adaptive_momentum"));
                set_some!(c, scale_clip, clip);
                set_exclusions!(c, b);
                Some($any::RaLars(c))
            }
            "TAdam" => {
                let mut c = TAdamConfig::new();
                set_adam!(c, beta, f);
                set_some!(c, amsgrad, b("amsgrad"));
                c.dof = f("dof");
                Some($any::TAdam(c))
            }
            "AdaBelief" => {
                let mut c = AdaBeliefConfig::new();
                set_adam!(c, beta, f);
                set_some!(c, amsgrad, b("amsgrad"));
                Some($any::AdaBelief(c))
            }
            "AdamP" => {
                let mut c = AdamPConfig::new();
                set_adam!(c, beta, f);
                set_some!(c, amsgrad, b("amsgrad"));
                set_some!(c, delta, f("delta"));
                Some($any::AdamP(c))
            }
            "Adan" => {
                let mut c = AdanConfig::new();
                set_adam!(c, beta, f);
                set_some!(c, beta_3, beta(2));
                set_some!(c, amsgrad, b("amsgrad"));
                Some($any::Adan(c))
            }
            "AdEMAMix" => {
                let mut c = AdEMAMixConfig::new();
                set_adam!(c, beta, f);
                set_some!(c, beta_3, beta(2));
                set_some!(c, alpha, f("alpha"));
                let steps = |key: &str| get(key).map(|v| Some(v.as_u64().unwrap() as usize));
                set_some!(c, alpha_warmup, steps("alpha_warmup"));
                set_some!(c, beta_3_warmup, steps("beta_3_warmup"));
                Some($any::AdEMAMix(c))
            }
            "SGD" => None,
            other => panic!("{}: unknown optimizer {other}", case.name),
        }
    }};
}
