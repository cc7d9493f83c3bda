//! Time and memory of one optimizer step, for every optimizer and wrapper of this crate and
//! for Burn's Adam, AdamW and Adan, on the same parameters and gradients.
//!
//! ```text
//! cargo bench --bench optim_step                      # 4M and 32M parameters, every optimizer
//! cargo bench --bench optim_step -- --sizes bert      # BERT-base encoder shapes
//! cargo bench --bench optim_step -- --sizes 4 --only lamb,adam
//! cargo bench --bench optim_step --features wgpu      # on the backend picked by feature
//! ```
//!
//! Two workloads: `bert`, the parameter shapes of a BERT-base encoder (12 blocks of four
//! `768 x 768` and two `768 x 3072` Linear weights with their biases and two LayerNorms:
//! 192 tensors, 85M parameters, the shapes of `../shared/bench/torch_step.py bert`, which
//! times PyTorch's fused AdamW on them), and `N` (a number), a synthetic model of two square
//! matrices and two vectors with about N million parameters. Either is stepped through Burn's
//! `OptimizerAdaptor` (or the wrapper) with fixed gradients, as `torch_step.py` does. Each
//! optimizer runs in its own process (this program re-runs itself) so that its peak memory
//! is its own: 6 warm-up steps, then the mean of 12 timed steps (two sync periods of the
//! wrappers' default 6, so their syncs count), each ending with a read of one parameter
//! value so that asynchronous backends have finished. `BENCH_STEPS=1` prints every step's
//! time (a wrapper's sync steps stand out). Figures are ns per
//! parameter per step and the process's peak resident memory (Linux `VmHWM`) in bytes per
//! parameter, which includes the parameters (4) and gradients (4) themselves.
//! Absolute figures drift on shared machines: compare ratios within one run.

mod common;

use std::time::Instant;

use burn::module::{Module, Param};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use common::{Args, child_numbers, measure_with, print_setting};
use holocron_optim_suite::backend;
use holocron_optim_suite::shapes::Shapes;

type B = backend::Autodiff;
type Inner = backend::Backend;

/// One whole sync period of the wrappers, so that the timed steps see their steady state.
const WARM_UP: usize = 6;
const TIMED: usize = 12;

#[derive(Module, Debug)]
struct Params<B: Backend> {
    matrices: Vec<Param<Tensor<B, 2>>>,
    vectors: Vec<Param<Tensor<B, 1>>>,
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
fn measure<O: Optimizer<Params<B>, B>>(mut optim: O, shapes: &Shapes) {
    let device = Default::default();
    let matrix = |[a, b]: [usize; 2], value: f64| {
        Tensor::<Inner, 2>::full([a, b], value, (&device, DType::F32))
    };
    let vector = |n: usize, value: f64| Tensor::<Inner, 1>::full([n], value, (&device, DType::F32));
    let mut model = Params::<B> {
        matrices: shapes
            .matrices
            .iter()
            .map(|&s| Param::from_tensor(Tensor::from_inner(matrix(s, 0.02))))
            .collect(),
        vectors: shapes
            .vectors
            .iter()
            .map(|&n| Param::from_tensor(Tensor::from_inner(vector(n, 0.1))))
            .collect(),
    };
    let numel = shapes.numel();
    let matrix_grads: Vec<_> = shapes.matrices.iter().map(|&s| matrix(s, 1e-3)).collect();
    let vector_grads: Vec<_> = shapes.vectors.iter().map(|&n| vector(n, -2e-3)).collect();
    let mut times = vec![];
    for step in 0..WARM_UP + TIMED {
        let mut g = GradientsParams::new();
        for (param, grad) in model.matrices.iter().zip(&matrix_grads) {
            g.register(param.id, grad.clone());
        }
        for (param, grad) in model.vectors.iter().zip(&vector_grads) {
            g.register(param.id, grad.clone());
        }
        let start = Instant::now();
        model = optim.step(1e-3, model, g);
        // Wait for the device: read one value back.
        let _: f32 = model.vectors[0].val().slice(0..1).into_scalar();
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

fn child(name: &str, workload: &str) {
    let shapes = &Shapes::of(workload);
    measure_with!(name, B, Params<B>, measure(shapes))
}

fn main() {
    let args = Args::of_process();
    if let Some(name) = args.value("--child") {
        let workload = args.value("--workload").unwrap_or_else(|| "4".to_string());
        return child(&name, &workload);
    }
    let sizes = args.list("--sizes", &["4", "32"]);
    let names = args.optimizers();
    let run = |name: &str, workload: &str| -> (f64, f64) {
        let numbers = child_numbers(&["--child", name, "--workload", workload], 2);
        (numbers[0], numbers[1])
    };
    print_setting(backend::NAME);
    let header: Vec<String> = sizes
        .iter()
        .map(|w| {
            let w = if w == "bert" {
                "BERT".to_string()
            } else {
                format!("{w}M")
            };
            format!("{w} ns/param | {w} vs burn Adam | {w} peak B/param")
        })
        .collect();
    println!("\n| optimizer | {} |", header.join(" | "));
    println!("|---|{}", "---|---|---|".repeat(sizes.len()));
    let mut results = vec![];
    for name in &names {
        let row: Vec<(f64, f64)> = sizes.iter().map(|w| run(name, w)).collect();
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
