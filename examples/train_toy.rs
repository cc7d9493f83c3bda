//! Trains the same small network on the same synthetic regression task with each of this
//! crate's optimizers (and Burn's Adam as a baseline), then prints a table.
//!
//! ```text
//! cargo run --release --example train_toy
//! ```
//!
//! The task is `y = sin(2 x1) + 0.5 x2^2` on a 16 x 16 grid of `(x1, x2)` in `[-1, 1]^2`; the
//! network is 2 -> 32 (tanh) -> 1 with deterministic initial weights, so every run starts
//! from the same point. Each optimizer runs 400 full-batch steps with its learning rate
//! decaying linearly to 0.

use std::time::Instant;

use burn::module::{AutodiffModule, Module, Param};
use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use holocron_optim::*;

/// The backend picked by cargo feature (ndarray by default, `--features wgpu` or `cuda`).
type B = holocron_optim_suite::backend::Autodiff;

const STEPS: usize = 400;
const HIDDEN: usize = 32;

#[derive(Module, Debug)]
struct Mlp<B: Backend> {
    w1: Param<Tensor<B, 2>>,
    b1: Param<Tensor<B, 1>>,
    w2: Param<Tensor<B, 2>>,
    b2: Param<Tensor<B, 1>>,
}

/// Deterministic values in about `[-scale, scale]`.
fn wave(n: usize, seed: f32, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|k| ((k as f32 + 1.0) * 1.618 + seed * 2.5).sin() * scale)
        .collect()
}

fn tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

impl<B: Backend> Mlp<B> {
    fn new(device: &B::Device) -> Self {
        Mlp {
            w1: Param::from_tensor(tensor(wave(2 * HIDDEN, 1.0, 1.0), [2, HIDDEN], device)),
            b1: Param::from_tensor(tensor(wave(HIDDEN, 2.0, 0.5), [HIDDEN], device)),
            w2: Param::from_tensor(tensor(wave(HIDDEN, 3.0, 0.3), [HIDDEN, 1], device)),
            b2: Param::from_tensor(tensor(vec![0.0], [1], device)),
        }
    }

    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let h = x
            .matmul(self.w1.val())
            .add(self.b1.val().unsqueeze())
            .tanh();
        h.matmul(self.w2.val()).add(self.b2.val().unsqueeze())
    }
}

fn dataset<B: Backend>(device: &B::Device) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let n = 16;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let x1 = -1.0 + 2.0 * i as f32 / (n - 1) as f32;
            let x2 = -1.0 + 2.0 * j as f32 / (n - 1) as f32;
            x.extend([x1, x2]);
            y.push((2.0 * x1).sin() + 0.5 * x2 * x2);
        }
    }
    (tensor(x, [n * n, 2], device), tensor(y, [n * n, 1], device))
}

fn mse<B: Backend>(model: &Mlp<B>, x: &Tensor<B, 2>, y: &Tensor<B, 2>) -> Tensor<B, 1> {
    model.forward(x.clone()).sub(y.clone()).square().mean()
}

struct Run {
    initial: f32,
    last: f32,
    ms_per_step: f64,
}

fn train<O: Optimizer<Mlp<B>, B>>(mut optim: O, lr: f64) -> Run {
    let device = Default::default();
    let (x, y) = dataset::<B>(&device);
    let mut model = Mlp::<B>::new(&device);
    let loss_of = |m: &Mlp<B>| -> f32 {
        mse(&m.valid(), &x.clone().inner(), &y.clone().inner()).into_scalar()
    };
    let initial = loss_of(&model);
    let mut schedule = PolynomialLrSchedulerConfig::new(lr, STEPS)
        .with_power(1.0)
        .init()
        .expect("valid schedule");
    let start = Instant::now();
    for _ in 0..STEPS {
        let loss = mse(&model, &x, &y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(schedule.step(), model, grads);
    }
    let ms_per_step = start.elapsed().as_secs_f64() * 1e3 / STEPS as f64;
    Run {
        initial,
        last: loss_of(&model),
        ms_per_step,
    }
}

fn main() {
    let runs: Vec<(&str, f64, Run)> = vec![
        (
            "LARS (momentum 0.9)",
            0.02,
            train(LarsConfig::new().with_momentum(0.9).init(), 0.02),
        ),
        ("LAMB", 0.02, train(LambConfig::new().init(), 0.02)),
        ("RaLars", 0.02, train(RaLarsConfig::new().init(), 0.02)),
        ("TAdam", 0.02, train(TAdamConfig::new().init(), 0.02)),
        (
            "AdaBelief",
            0.02,
            train(AdaBeliefConfig::new().init(), 0.02),
        ),
        ("AdamP", 0.02, train(AdamPConfig::new().init(), 0.02)),
        ("Adan", 0.02, train(AdanConfig::new().init(), 0.02)),
        (
            "AdEMAMix (beta_3 0.99)",
            0.01,
            train(AdEMAMixConfig::new().with_beta_3(0.99).init(), 0.01),
        ),
        (
            "burn Adam (baseline)",
            0.02,
            train(AdamConfig::new().init(), 0.02),
        ),
    ];
    println!(
        "{STEPS} full-batch steps on {}, learning rate decaying linearly to 0\n",
        holocron_optim_suite::backend::NAME
    );
    println!("| optimizer | peak lr | initial MSE | final MSE | ms/step |");
    println!("|---|---|---|---|---|");
    for (name, lr, run) in &runs {
        println!(
            "| {name} | {lr} | {:.4} | {:.6} | {:.3} |",
            run.initial, run.last, run.ms_per_step
        );
    }
    let worst = runs
        .iter()
        .map(|(_, _, r)| r.last / r.initial)
        .fold(0.0f32, f32::max);
    assert!(worst.is_finite(), "a run diverged");
}
