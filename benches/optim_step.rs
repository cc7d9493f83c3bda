//! Time and memory of one optimizer step, for every optimizer and wrapper of this crate and
//! for Burn's Adam, AdamW and Adan, on the same parameters and gradients.
//!
//! ```text
//! cargo bench --bench optim_step                      # 4M and 32M parameters, every optimizer
//! cargo bench --bench optim_step -- --sizes 4 --only lamb,adam
//! cargo bench --bench optim_step --features wgpu      # on the backend picked by feature
//! ```
//!
//! The model is two square f32 matrices and two vectors (4M or 32M parameters in all),
//! stepped through Burn's `OptimizerAdaptor` (or the wrapper) with fixed gradients. Each
//! optimizer runs in its own process (this program re-runs itself) so that its peak memory
//! is its own: 6 warm-up steps, then the mean of 12 timed steps (two sync periods of the
//! wrappers' default 6, so their syncs count), each ending with a read of one parameter
//! value so that asynchronous backends have finished. `BENCH_STEPS=1` prints every step's
//! time (a wrapper's sync steps stand out). Figures are ns per
//! parameter per step and the process's peak resident memory (Linux `VmHWM`) in bytes per
//! parameter, which includes the parameters (4) and gradients (4) themselves.
//! Absolute figures drift on shared machines: compare ratios within one run.

use std::process::Command;
use std::time::Instant;

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use holocron_optim::*;
use holocron_optim_suite::backend;

type B = backend::Autodiff;
type Inner = backend::Backend;

const NAMES: [&str; 15] = [
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

/// One whole sync period of the wrappers, so that the timed steps see their steady state.
const WARM_UP: usize = 6;
const TIMED: usize = 12;

#[derive(Module, Debug)]
struct Params<B: Backend> {
    a: Param<Tensor<B, 2>>,
    b: Param<Tensor<B, 2>>,
    c: Param<Tensor<B, 1>>,
    d: Param<Tensor<B, 1>>,
}

/// The side `n` of the two matrices so that `2 n^2 + 2 n` is about `millions` * 2^20.
fn side(millions: usize) -> usize {
    (((millions << 20) as f64 / 2.0).sqrt()) as usize
}

fn peak_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

/// Steps `optim` and prints `ns_per_param peak_bytes_per_param` on one line.
fn measure<O: Optimizer<Params<B>, B>>(mut optim: O, n: usize) {
    let device = Default::default();
    let full = |shape: Vec<usize>, value: f64| {
        Tensor::<Inner, 2>::full([shape[0], shape[1]], value, (&device, DType::F32))
    };
    let params = Params::<B> {
        a: Param::from_tensor(Tensor::from_inner(full(vec![n, n], 0.5))),
        b: Param::from_tensor(Tensor::from_inner(full(vec![n, n], -0.25))),
        c: Param::from_tensor(Tensor::from_inner(full(vec![1, n], 0.1).reshape([n]))),
        d: Param::from_tensor(Tensor::from_inner(full(vec![1, n], 0.2).reshape([n]))),
    };
    let numel = 2 * n * n + 2 * n;
    let grads: [Tensor<Inner, 2>; 2] = [full(vec![n, n], 1e-3), full(vec![n, n], -2e-3)];
    let vector_grads: [Tensor<Inner, 1>; 2] = [
        full(vec![1, n], 3e-3).reshape([n]),
        full(vec![1, n], -1e-3).reshape([n]),
    ];
    let mut model = params;
    let mut times = vec![];
    for step in 0..WARM_UP + TIMED {
        let mut g = GradientsParams::new();
        g.register(model.a.id, grads[0].clone());
        g.register(model.b.id, grads[1].clone());
        g.register(model.c.id, vector_grads[0].clone());
        g.register(model.d.id, vector_grads[1].clone());
        let start = Instant::now();
        model = optim.step(1e-3, model, g);
        // Wait for the device: read one value back.
        let _: f32 = model.c.val().slice(0..1).into_scalar();
        if std::env::var_os("BENCH_STEPS").is_some() {
            let ns = start.elapsed().as_secs_f64() * 1e9 / numel as f64;
            eprintln!("step {step}: {ns:.3} ns/param");
        }
        if step >= WARM_UP {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "{:.3} {:.1}",
        mean * 1e9 / numel as f64,
        peak_bytes() as f64 / numel as f64
    );
}

fn child(name: &str, millions: usize) {
    let n = side(millions);
    match name {
        "burn-adam" => measure(AdamConfig::new().init::<B, Params<B>>(), n),
        "burn-adamw" => measure(AdamWConfig::new().init::<B, Params<B>>(), n),
        "burn-adan" => measure(burn::optim::AdanConfig::new().init::<B, Params<B>>(), n),
        "lars" => measure(
            LarsConfig::new().with_momentum(0.9).init::<B, Params<B>>(),
            n,
        ),
        "lamb" => measure(LambConfig::new().init::<B, Params<B>>(), n),
        "ralars" => measure(RaLarsConfig::new().init::<B, Params<B>>(), n),
        "tadam" => measure(TAdamConfig::new().init::<B, Params<B>>(), n),
        "adabelief" => measure(AdaBeliefConfig::new().init::<B, Params<B>>(), n),
        "adamp" => measure(AdamPConfig::new().init::<B, Params<B>>(), n),
        "adan" => measure(AdanConfig::new().init::<B, Params<B>>(), n),
        "ademamix" => measure(AdEMAMixConfig::new().init::<B, Params<B>>(), n),
        "lookahead-adam" => measure(
            LookaheadConfig::new().init(AdamConfig::new().init::<B, Params<B>>()),
            n,
        ),
        "scout-adam" => measure(
            ScoutConfig::new().init(AdamConfig::new().init::<B, Params<B>>()),
            n,
        ),
        "lookahead-adabelief" => measure(
            LookaheadConfig::new().init(AdaBeliefConfig::new().init::<B, Params<B>>()),
            n,
        ),
        "scout-adabelief" => measure(
            ScoutConfig::new().init(AdaBeliefConfig::new().init::<B, Params<B>>()),
            n,
        ),
        other => panic!("unknown optimizer {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(name) = value("--child") {
        let millions = value("--millions")
            .and_then(|m| m.parse().ok())
            .unwrap_or(4);
        return child(&name, millions);
    }
    let sizes: Vec<usize> = value("--sizes")
        .map(|s| s.split(',').filter_map(|m| m.parse().ok()).collect())
        .unwrap_or_else(|| vec![4, 32]);
    let only: Option<Vec<String>> =
        value("--only").map(|s| s.split(',').map(str::to_string).collect());
    let names: Vec<&str> = NAMES
        .iter()
        .copied()
        .filter(|n| only.as_ref().is_none_or(|o| o.iter().any(|x| x == n)))
        .collect();
    let exe = std::env::current_exe().expect("own path");
    let run = |name: &str, millions: usize| -> (f64, f64) {
        let out = Command::new(&exe)
            .args(["--child", name, "--millions", &millions.to_string()])
            .output()
            .expect("child runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text
            .split_whitespace()
            .map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
        (it.next().unwrap_or(f64::NAN), it.next().unwrap_or(f64::NAN))
    };
    println!(
        "backend {}, f32, {} threads available",
        backend::NAME,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let header: Vec<String> = sizes
        .iter()
        .map(|m| format!("{m}M ns/param | {m}M vs burn Adam | {m}M peak B/param"))
        .collect();
    println!("\n| optimizer | {} |", header.join(" | "));
    println!("|---|{}", "---|---|---|".repeat(sizes.len()));
    let mut results = vec![];
    for name in &names {
        let row: Vec<(f64, f64)> = sizes.iter().map(|&m| run(name, m)).collect();
        results.push((name.to_string(), row));
    }
    let adam: Vec<f64> = sizes
        .iter()
        .enumerate()
        .map(|(i, _)| {
            results
                .iter()
                .find(|(n, _)| n == "burn-adam")
                .map(|(_, r)| r[i].0)
                .unwrap_or(f64::NAN)
        })
        .collect();
    for (name, row) in &results {
        let cells: Vec<String> = row
            .iter()
            .zip(&adam)
            .map(|(&(ns, bytes), &base)| format!("{ns:.2} | {:.2}x | {bytes:.0}", ns / base))
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}
