//! Resuming a Burn 0.22 `Learner` run that trains with Lookahead over LAMB from its
//! checkpoint.
//!
//! A two-layer MLP is fitted to a synthetic regression target,
//! `y = sin(πx₀)·cos(πx₁) + x₀x₁/2`, sampled on a fixed lattice of inputs. The model starts
//! from explicit weights, the data loaders don't shuffle, and the learning rate follows a linear
//! schedule across the whole run, so its scheduler has state too. The optimizer is
//! `LookaheadConfig::new().with_sync_period(3).init(LambConfig::new().with_weight_decay(0.01).build())`
//! from `holocron_optim_burn022`: Lookahead around LAMB, a Burn `ModuleOptimizer`, in Burn's
//! `Learner`. With 4 steps per epoch and a sync every 3 steps, the checkpoint after epoch 2
//! (8 steps) falls between two syncs, so the slow weights and LAMB's moments both have to come
//! back from it. `SupervisedTraining` writes a model, optimizer and scheduler checkpoint
//! (burnpack files) after each epoch:
//!
//! 1. one run trains 4 epochs without a break;
//! 2. a second run trains 2 epochs and stops, as if it had been interrupted. Then a new
//!    `Learner`, built from scratch, resumes from the epoch-2 checkpoint
//!    (`SupervisedTraining::checkpoint(2)`: model, the optimizer's state and the scheduler) and trains
//!    epochs 3 and 4.
//!
//! The resumed run's final parameters must equal the uninterrupted run's bit for bit, and the
//! loss must have gone down. Otherwise the program panics.
//!
//! Run it with
//!
//! ```text
//! cargo run -p holocron-optim-burn022 --example learner_resume
//! ```
//!
//! `cargo test -p holocron-optim-burn022 --example learner_resume` runs the same check as a
//! test. Nothing is downloaded, and nothing is drawn in the terminal: the renderer below prints
//! nothing, so the program runs in CI without a terminal.

use std::path::Path;
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::nn::loss::{MseLoss, Reduction};
use burn::optim::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::tensor::{Device, Tensor, TensorData};
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::logger::{EvaluationProgressLogger, InMemoryMetricLogger, TrainingProgressLogger};
use burn::train::metric::MetricDefinition;
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn::train::{
    InferenceStep, Learner, RegressionOutput, SupervisedTraining, TrainOutput, TrainStep,
};
use holocron_optim_burn022::{LambConfig, LookaheadConfig};

/// Inputs per side of the lattice: `SIDE * SIDE` training samples in `[-1, 1]²`.
const SIDE: usize = 8;
/// Samples per batch: 4 optimizer steps per epoch.
const BATCH_SIZE: usize = 16;
/// The length of the whole run.
const EPOCHS: usize = 4;
/// Where the interrupted run stops.
const INTERRUPTED_AT: usize = 2;
/// The width of the hidden layer.
const HIDDEN: usize = 16;

/// The function the model learns.
fn target(x: [f32; 2]) -> f32 {
    use std::f32::consts::PI;
    (PI * x[0]).sin() * (PI * x[1]).cos() + 0.5 * x[0] * x[1]
}

/// The samples: the lattice of `side * side` points of `[-1, 1]²` shifted by `offset`
/// (a fraction of the lattice step), with their targets.
fn samples(side: usize, offset: f32) -> Vec<Sample> {
    let coordinate = |i: usize| -1.0 + 2.0 * (i as f32 + offset) / side as f32;
    (0..side * side)
        .map(|k| {
            let x = [coordinate(k / side), coordinate(k % side)];
            Sample { x, y: target(x) }
        })
        .collect()
}

#[derive(Clone, Debug)]
struct Sample {
    x: [f32; 2],
    y: f32,
}

#[derive(Clone, Debug)]
struct Batch {
    inputs: Tensor<2>,
    targets: Tensor<2>,
}

struct SampleBatcher;

impl Batcher<Sample, Batch> for SampleBatcher {
    fn batch(&self, items: Vec<Sample>, device: &Device) -> Batch {
        let n = items.len();
        let inputs: Vec<f32> = items.iter().flat_map(|s| s.x).collect();
        let targets: Vec<f32> = items.iter().map(|s| s.y).collect();
        Batch {
            inputs: Tensor::from_data(TensorData::new(inputs, [n, 2]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, 1]), device),
        }
    }
}

/// A loader over `samples`, in their order. No shuffling: a loader built with `.shuffle(seed)`
/// draws a new order each epoch from a generator that Burn's checkpoint doesn't hold, so a
/// resumed run would see epoch 1's order again at epoch 3.
fn loader(samples: Vec<Sample>) -> Arc<dyn DataLoader<Batch>> {
    DataLoaderBuilder::new(SampleBatcher)
        .batch_size(BATCH_SIZE)
        .build(InMemDataset::new(samples))
}

#[derive(Module, Debug)]
struct Mlp {
    hidden: Linear,
    output: Linear,
}

/// An explicit, deterministic `Linear` layer: its weights and bias are fixed waves scaled by
/// `1/√d_input`. (`LinearConfig::init` draws random weights, lazily, so two models built with
/// it differ.)
fn linear(d_input: usize, d_output: usize, phase: f32, device: &Device) -> Linear {
    let scale = (1.0 / d_input as f32).sqrt();
    let wave = |n: usize, step: f32| -> Vec<f32> {
        (0..n)
            .map(|i| scale * (phase + step * i as f32).sin())
            .collect()
    };
    let weight = TensorData::new(wave(d_input * d_output, 1.7), [d_input, d_output]);
    let bias = TensorData::new(wave(d_output, 2.3), [d_output]);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(weight, device)),
        bias: Some(Param::from_tensor(Tensor::from_data(bias, device))),
    }
}

impl Mlp {
    fn new(device: &Device) -> Self {
        Self {
            hidden: linear(2, HIDDEN, 0.3, device),
            output: linear(HIDDEN, 1, 1.1, device),
        }
    }

    fn forward(&self, inputs: Tensor<2>) -> Tensor<2> {
        self.output.forward(self.hidden.forward(inputs).tanh())
    }

    fn regression(&self, batch: Batch) -> RegressionOutput {
        let output = self.forward(batch.inputs);
        let loss = MseLoss::new().forward(output.clone(), batch.targets.clone(), Reduction::Mean);
        RegressionOutput::new(loss, output, batch.targets)
    }

    /// The mean squared error over `samples`.
    fn loss(&self, samples: &[Sample]) -> f32 {
        let device = self.hidden.weight.val().device();
        let batch = SampleBatcher.batch(samples.to_vec(), &device);
        let loss = self.regression(batch).loss;
        loss.into_scalar::<f32>()
    }

    /// Every parameter's value, as bits, in a fixed order.
    fn parameter_bits(&self) -> Vec<u32> {
        let mut tensors: Vec<Tensor<1>> = Vec::new();
        for layer in [&self.hidden, &self.output] {
            tensors.push(layer.weight.val().flatten(0, 1));
            tensors.extend(layer.bias.as_ref().map(Param::val));
        }
        tensors
            .into_iter()
            .flat_map(|t| t.try_into_vec_as::<f32>().expect("readable parameters"))
            .map(f32::to_bits)
            .collect()
    }
}

impl TrainStep for Mlp {
    type Input = Batch;
    type Output = RegressionOutput;

    fn step(&self, batch: Batch) -> TrainOutput<RegressionOutput> {
        let item = self.regression(batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl InferenceStep for Mlp {
    type Input = Batch;
    type Output = RegressionOutput;

    fn step(&self, batch: Batch) -> RegressionOutput {
        self.regression(batch)
    }
}

/// A fresh learner: the model from its explicit weights, a fresh Lookahead over LAMB, and a
/// learning rate that falls linearly from 2e-2 to 2e-3 over the whole run (every step of
/// every epoch).
fn learner(device: &Device) -> Learner<Mlp> {
    let steps = EPOCHS * (SIDE * SIDE).div_ceil(BATCH_SIZE);
    let scheduler = LinearLrSchedulerConfig::new(2e-2, 2e-3, steps)
        .init()
        .expect("a valid schedule");
    let optim = LookaheadConfig::new()
        .with_sync_period(3)
        .init(LambConfig::new().with_weight_decay(0.01).build());
    Learner::new(Mlp::new(device), optim, scheduler)
}

/// A renderer that shows nothing: no terminal dashboard, no progress lines.
struct Silent;

impl MetricsRendererTraining for Silent {
    fn update_train(&mut self, _state: MetricState) {}
    fn update_valid(&mut self, _state: MetricState) {}
}

impl MetricsRendererEvaluation for Silent {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl TrainingProgressLogger for Silent {
    fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}
    fn update_epoch(&mut self, _epoch: usize) {}
    fn start_split(&mut self, _split: &str, _total_items: usize) {}
    fn update_split(&mut self, _items_processed: usize) {}
    fn end_split(&mut self) {}
    fn end(&mut self) {}
    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for Silent {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, _name: &str, _total_items: usize) {}
    fn update_test_progress(&mut self, _items_processed: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for Silent {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _definition: MetricDefinition) {}
}

/// Trains `learner` in `dir` up to epoch `epochs`, from the checkpoint of epoch `resume_from`
/// if given, checkpointing every epoch; returns the trained model.
fn train(dir: &Path, learner: Learner<Mlp>, epochs: usize, resume_from: Option<usize>) -> Mlp {
    let mut training = SupervisedTraining::new(
        dir,
        loader(samples(SIDE, 0.5)),
        loader(samples(SIDE / 2, 0.25)),
    )
    .num_epochs(epochs)
    // Model, optimizer and scheduler to `dir/checkpoint/{model,optim,scheduler}-<epoch>.bpk`.
    .with_default_checkpointers()
    .with_checkpointing_strategy(KeepLastNCheckpoints::new(EPOCHS))
    .with_metric_logger(InMemoryMetricLogger::new())
    .renderer(Box::new(Silent))
    // No `experiment.log` and no global logger installed by each launch.
    .with_application_logger(None);
    if let Some(epoch) = resume_from {
        training = training.checkpoint(epoch);
    }
    let result = training.launch(learner);
    assert!(
        result.error.is_none(),
        "training failed: {:?}",
        result.error
    );
    assert!(result.interrupted.is_none(), "training stopped early");
    result.model
}

/// What [`run`] measured: the mean squared error on the training samples.
#[derive(Debug)]
struct Outcome {
    /// Before training.
    initial_loss: f32,
    /// After the uninterrupted run.
    uninterrupted_loss: f32,
    /// After the interrupted and resumed run.
    resumed_loss: f32,
}

/// Trains the uninterrupted run in `dir/uninterrupted` and the interrupted one in
/// `dir/resumed`, and checks that they end with the same parameters, bit for bit, and a lower
/// loss than they started with. Panics otherwise.
fn run(dir: &Path) -> Outcome {
    // The model is built on an autodiff device: the Learner forks it to the autodiff device,
    // but a parameter created on a plain device isn't tracked by that fork (only by
    // `Module::train`), and its first `backward` panics.
    let device = Device::default().autodiff();
    let data = samples(SIDE, 0.5);
    let initial = Mlp::new(&device);
    let initial_loss = initial.loss(&data);

    // 1. Four epochs in one go.
    let uninterrupted = train(&dir.join("uninterrupted"), learner(&device), EPOCHS, None);

    // 2. Two epochs, then a new learner that resumes from the epoch-2 checkpoint.
    let resumed_dir = dir.join("resumed");
    let stopped = train(&resumed_dir, learner(&device), INTERRUPTED_AT, None);
    for part in ["model", "optim", "scheduler"] {
        let path = resumed_dir
            .join("checkpoint")
            .join(format!("{part}-{INTERRUPTED_AT}.bpk"));
        assert!(path.is_file(), "no checkpoint {}", path.display());
    }
    let resumed = train(&resumed_dir, learner(&device), EPOCHS, Some(INTERRUPTED_AT));

    let outcome = Outcome {
        initial_loss,
        uninterrupted_loss: uninterrupted.loss(&data),
        resumed_loss: resumed.loss(&data),
    };
    println!("loss before training:            {}", outcome.initial_loss);
    println!(
        "loss after epoch {INTERRUPTED_AT} (interrupted): {}",
        stopped.loss(&data)
    );
    println!(
        "loss, uninterrupted run:         {}",
        outcome.uninterrupted_loss
    );
    println!("loss, resumed run:               {}", outcome.resumed_loss);

    // The runs did train: the interruption point is neither the start nor the end.
    assert_ne!(stopped.parameter_bits(), initial.parameter_bits());
    assert_ne!(stopped.parameter_bits(), uninterrupted.parameter_bits());
    assert!(
        outcome.uninterrupted_loss < outcome.initial_loss,
        "the loss did not go down: {} -> {}",
        outcome.initial_loss,
        outcome.uninterrupted_loss
    );
    let expected = uninterrupted.parameter_bits();
    let actual = resumed.parameter_bits();
    let differing = expected.iter().zip(&actual).filter(|(a, b)| a != b).count();
    assert!(
        expected == actual,
        "the resumed run's parameters differ from the uninterrupted run's \
         ({differing} of {} differ)",
        expected.len()
    );
    println!("resumed run matches the uninterrupted run bit for bit");
    outcome
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let start = std::time::Instant::now();
    run(dir.path());
    println!("done in {:.1?}", start.elapsed());
}

#[cfg(test)]
mod tests {
    #[test]
    fn resumed_run_matches_uninterrupted() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let outcome = super::run(dir.path());
        assert_eq!(
            outcome.uninterrupted_loss.to_bits(),
            outcome.resumed_loss.to_bits()
        );
    }
}
