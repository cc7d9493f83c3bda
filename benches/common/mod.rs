//! What the step benchmarks share: the optimizers they time, by name, their command line
//! and the child process each optimizer runs in (so that its memory and its allocator's
//! state are its own).

use std::process::Command;

/// Every optimizer and wrapper a benchmark times, by the name `--only` takes.
pub const NAMES: [&str; 15] = [
    "burn-adam",
    "burn-adamw",
    "burn-adan",
    "lars",
    "lamb",
    "ralars",
    "tadam",
    "adabelief",
    "adamp",
    "adan",
    "ademamix",
    "lookahead-adam",
    "scout-adam",
    "lookahead-adabelief",
    "scout-adabelief",
];

/// Runs `$measure(optimizer, $args...)` with the optimizer named `$name`, built for module
/// `$model` on backend `$backend` with its defaults (LARS with momentum 0.9; the wrappers
/// over Burn's Adam or this crate's AdaBelief).
macro_rules! measure_with {
    ($name:expr, $backend:ty, $model:ty, $measure:ident ( $($arg:expr),* )) => {{
        use burn::optim::{AdamConfig, AdamWConfig, AdanConfig as BurnAdanConfig};
        use holocron_optim::*;
        type Bk = $backend;
        type M = $model;
        match $name {
            "burn-adam" => $measure(AdamConfig::new().init::<Bk, M>() $(, $arg)*),
            "burn-adamw" => $measure(AdamWConfig::new().init::<Bk, M>() $(, $arg)*),
            "burn-adan" => $measure(BurnAdanConfig::new().init::<Bk, M>() $(, $arg)*),
            "lars" => $measure(LarsConfig::new().with_momentum(0.9).init::<Bk, M>() $(, $arg)*),
            "lamb" => $measure(LambConfig::new().init::<Bk, M>() $(, $arg)*),
            "ralars" => $measure(RaLarsConfig::new().init::<Bk, M>() $(, $arg)*),
            "tadam" => $measure(TAdamConfig::new().init::<Bk, M>() $(, $arg)*),
            "adabelief" => $measure(AdaBeliefConfig::new().init::<Bk, M>() $(, $arg)*),
            "adamp" => $measure(AdamPConfig::new().init::<Bk, M>() $(, $arg)*),
            "adan" => $measure(AdanConfig::new().init::<Bk, M>() $(, $arg)*),
            "ademamix" => $measure(AdEMAMixConfig::new().init::<Bk, M>() $(, $arg)*),
            "lookahead-adam" => $measure(
                LookaheadConfig::new().init(AdamConfig::new().init::<Bk, M>()) $(, $arg)*
            ),
            "scout-adam" => $measure(
                ScoutConfig::new().init(AdamConfig::new().init::<Bk, M>()) $(, $arg)*
            ),
            "lookahead-adabelief" => $measure(
                LookaheadConfig::new().init(AdaBeliefConfig::new().init::<Bk, M>()) $(, $arg)*
            ),
            "scout-adabelief" => $measure(
                ScoutConfig::new().init(AdaBeliefConfig::new().init::<Bk, M>()) $(, $arg)*
            ),
            other => panic!("unknown optimizer {other}"),
        }
    }};
}
pub(crate) use measure_with;

/// The command line: `--flag value` pairs.
pub struct Args(Vec<String>);

impl Args {
    pub fn of_process() -> Args {
        Args(std::env::args().collect())
    }

    /// The value after `flag`, if given.
    pub fn value(&self, flag: &str) -> Option<String> {
        self.0
            .iter()
            .position(|a| a == flag)
            .and_then(|i| self.0.get(i + 1))
            .cloned()
    }

    /// The comma-separated values after `flag`, or `default`.
    pub fn list(&self, flag: &str, default: &[&str]) -> Vec<String> {
        self.value(flag)
            .map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
    }

    /// The optimizers `--only` selects (all by default), in [`NAMES`]' order.
    pub fn optimizers(&self) -> Vec<&'static str> {
        let only = self.list("--only", &NAMES);
        NAMES
            .iter()
            .copied()
            .filter(|n| only.iter().any(|x| x == n))
            .collect()
    }
}

/// Runs this program again with `args` and returns the numbers it prints (NaN for a
/// missing one, its error output shown when it fails).
pub fn child_numbers(args: &[&str], count: usize) -> Vec<f64> {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe).args(args).output().expect("child runs");
    if !out.status.success() {
        eprintln!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut numbers = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
    (0..count)
        .map(|_| numbers.next().unwrap_or(f64::NAN))
        .collect()
}

/// The first line of a table: the backend, the threads, the CPU loops' instruction set.
pub fn print_setting(backend: &str) {
    println!(
        "backend {backend}, f32, {} threads available, CPU loops: {:?}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        holocron_optim::vectorization()
    );
}
