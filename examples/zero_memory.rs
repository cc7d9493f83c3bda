//! Optimizer state per worker with `ZeroRedundancy` (ZeRO stage 1) against a replicated
//! optimizer, on the parameter shapes of a BERT-base encoder (192 tensors, 85M parameters):
//! `N` workers in threads, each with its own copy of the model and its own gradients,
//! registered with Burn's collective operations, take two AdaBelief steps; each reports the
//! elements of optimizer state it holds (its record) and how long its steps took.
//!
//! ```text
//! cargo run --release --example zero_memory            # 1, 2 and 4 workers
//! cargo run --release --example zero_memory -- 3       # 3 workers
//! ```
//!
//! One worker is the replicated case (the whole state on every worker). Every worker holds
//! its own parameters and gradients in any case (4 + 4 bytes per parameter in `f32`).

use std::time::Instant;

use burn::module::{Module, Param};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use holocron_optim::collective::{self, CollectiveConfig, PeerId};
use holocron_optim::{AdaBeliefConfig, ZeroRedundancyConfig};
use holocron_optim_suite::backend;
use holocron_optim_suite::shapes::Shapes;

type B = backend::Autodiff;
type Inner = backend::Backend;

/// AdaBelief keeps two tensors per parameter (`m`, `s`).
const STATE_TENSORS: usize = 2;

#[derive(Module, Debug)]
struct Params<B: Backend> {
    matrices: Vec<Param<Tensor<B, 2>>>,
    vectors: Vec<Param<Tensor<B, 1>>>,
}

/// One worker's figures: state elements and seconds per step.
#[allow(clippy::clone_on_copy)] // not every backend's device is `Copy`
fn worker(rank: usize, workers: usize) -> (usize, f64) {
    let device: burn::tensor::Device<Inner> = Default::default();
    let config = CollectiveConfig::default().with_num_devices(workers);
    collective::register::<Inner>(PeerId::from(rank), device.clone(), config).unwrap();
    let shapes = Shapes::of("bert");
    let full = |shape: Vec<usize>, value: f64| {
        Tensor::<Inner, 1>::full(
            [shape.iter().product::<usize>()],
            value,
            (&device, DType::F32),
        )
    };
    let mut model = Params::<B> {
        matrices: shapes
            .matrices
            .iter()
            .map(|&[a, b]| {
                let tensor = full(vec![a, b], 0.02).reshape([a, b]);
                Param::from_tensor(Tensor::from_inner(tensor))
            })
            .collect(),
        vectors: shapes
            .vectors
            .iter()
            .map(|&n| Param::from_tensor(Tensor::from_inner(full(vec![n], 0.01))))
            .collect(),
    };
    let mut optim = ZeroRedundancyConfig::new(workers).init(rank, AdaBeliefConfig::new().init());
    let mut seconds = 0.0;
    for step in 0..2 {
        // Each worker's own gradients.
        let value = 1e-3 * (1.0 + rank as f64 + step as f64);
        let mut grads = GradientsParams::new();
        for (param, &[a, b]) in model.matrices.iter().zip(&shapes.matrices) {
            grads.register(param.id, full(vec![a, b], value).reshape([a, b]));
        }
        for (param, &n) in model.vectors.iter().zip(&shapes.vectors) {
            grads.register(param.id, full(vec![n], value));
        }
        let start = Instant::now();
        model = optim.step(1e-3, model, grads);
        seconds += start.elapsed().as_secs_f64();
    }
    let owned = optim.to_record();
    let matrices = model
        .matrices
        .iter()
        .filter(|p| owned.contains_key(&p.id))
        .map(|p| p.val().shape().num_elements());
    let vectors = model
        .vectors
        .iter()
        .filter(|p| owned.contains_key(&p.id))
        .map(|p| p.val().shape().num_elements());
    let state = STATE_TENSORS * matrices.chain(vectors).sum::<usize>();
    collective::finish_collective::<Inner>(PeerId::from(rank)).unwrap();
    (state, seconds / 2.0)
}

fn main() {
    let counts: Vec<usize> = match std::env::args().nth(1) {
        Some(n) => vec![n.parse().expect("a number of workers")],
        None => vec![1, 2, 4],
    };
    let params = Shapes::of("bert").numel();
    println!(
        "BERT-base encoder shapes, {params} parameters, AdaBelief ({STATE_TENSORS} state tensors \
         per parameter), f32, backend {}",
        backend::NAME
    );
    println!(
        "workers | state per worker, MB (largest) | vs replicated | step, s (mean over workers)"
    );
    for workers in counts {
        collective::reset_collective::<Inner>();
        let threads: Vec<_> = (0..workers)
            .map(|rank| std::thread::spawn(move || worker(rank, workers)))
            .collect();
        let figures: Vec<(usize, f64)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let largest = figures.iter().map(|(state, _)| *state).max().unwrap();
        let replicated = STATE_TENSORS * params;
        let mb = |elements: usize| elements as f64 * 4.0 / 1e6;
        let each: Vec<String> = figures
            .iter()
            .map(|(s, _)| format!("{:.0}", mb(*s)))
            .collect();
        let step = figures.iter().map(|(_, s)| s).sum::<f64>() / workers as f64;
        println!(
            "{workers:>7} | {} ({:.0}) | {:.2}x less | {step:.3}",
            each.join(", "),
            mb(largest),
            replicated as f64 / largest as f64
        );
    }
}
