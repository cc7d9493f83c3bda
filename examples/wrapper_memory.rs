//! Measures what Lookahead and Scout cost in memory on top of their inner optimizer.
//!
//! ```text
//! cargo run --release --example wrapper_memory
//! ```
//!
//! Each configuration runs in its own process (this program re-runs itself), trains a
//! 4M-parameter f32 model with plain SGD inside the wrapper for 3 full windows, and reports
//! the peak resident memory (`VmHWM` from `/proc/self/status`, Linux only) above the
//! process's peak before the model was built, in units of one copy of the parameters
//! (16 MiB).

use std::process::Command;

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, Param};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use holocron_optim::{LookaheadConfig, ScoutConfig};

type B = Autodiff<NdArray<f32>>;

const SIDE: usize = 2048; // two SIDE x SIDE/2 matrices: 4,194,304 parameters
const PERIOD: usize = 6;

#[derive(Module, Debug)]
struct Model<B: Backend> {
    a: Param<Tensor<B, 2>>,
    b: Param<Tensor<B, 2>>,
}

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn train<O: Optimizer<Model<B>, B>>(mut optim: O) {
    let device = Default::default();
    let init = |seed| {
        B::seed(&device, seed);
        Tensor::<B, 2>::random([SIDE, SIDE / 2], Distribution::Normal(0.0, 1.0), &device)
    };
    let mut model = Model {
        a: Param::from_tensor(init(1)),
        b: Param::from_tensor(init(2)),
    };
    for _ in 0..3 * PERIOD {
        let loss = model
            .a
            .val()
            .square()
            .sum()
            .add(model.b.val().square().sum());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
    }
    drop(model);
}

fn child(kind: &str) {
    let before = peak_kib();
    let sgd = SgdConfig::new().init::<B, Model<B>>();
    match kind {
        "sgd" => train(sgd),
        "lookahead" => train(LookaheadConfig::new().with_sync_period(PERIOD).init(sgd)),
        "scout" => train(ScoutConfig::new().with_sync_period(PERIOD).init(sgd)),
        other => panic!("unknown kind {other}"),
    }
    println!("{}", peak_kib().saturating_sub(before));
}

fn main() {
    if let Some(kind) = std::env::args().nth(1) {
        return child(&kind);
    }
    let copy_kib = (SIDE * SIDE * 4 / 1024) as f64;
    let exe = std::env::current_exe().unwrap();
    let measure = |kind: &str| -> f64 {
        let out = Command::new(&exe).arg(kind).output().expect("child runs");
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim().parse::<f64>().expect("child prints its peak") / copy_kib
    };
    let sgd = measure("sgd");
    println!("4,194,304 f32 parameters (one copy = 16 MiB), sync_period = {PERIOD}\n");
    println!("| optimizer | peak memory above start, in parameter copies | above SGD alone |");
    println!("|---|---|---|");
    println!("| SGD | {sgd:.1} | - |");
    for kind in ["lookahead", "scout"] {
        let m = measure(kind);
        println!("| {kind}(SGD) | {m:.1} | {:.1} |", m - sgd);
    }
}
