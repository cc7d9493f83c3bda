//! Training logic of the `learner_resume` example: a small regression MLP trained by Burn's
//! `burn-train` supervised `Learner` with this crate's optimizers, with Burn's file
//! checkpointer, a stop after a chosen epoch and a resume from that epoch's checkpoint.
//!
//! The example's `main.rs` drives it from the command line, and `tests/learner_resume.rs`
//! includes this file (`#[path = "../examples/learner_resume/train.rs"] mod train;`) to check
//! that stopping and resuming gives the same final weights, bit for bit, as one
//! uninterrupted run. Run them with
//!
//! ```text
//! cargo run --release --example learner_resume -- --help
//! cargo test --test learner_resume
//! ```
//!
//! Everything is deterministic: the data is a fixed grid, the initial weights come from a
//! `sin` formula, the data loaders do not shuffle and load in the calling thread, and the
//! backend is the one picked by cargo feature (`holocron_optim_suite::backend`, ndarray on
//! the CPU by default).
//!
//! What one run does, in Burn 0.21's API:
//!
//! - `Learner::new(model, optimizer, lr_scheduler)` holds the training state;
//! - `SupervisedTraining::new(artifact_dir, train_loader, valid_loader)` configures the run:
//!   `.num_epochs(n)`, `.with_file_checkpointer(NamedMpkFileRecorder::<FullPrecisionSettings>)`
//!   (files `checkpoint/{model,optim,scheduler}-<epoch>.mpk`, written after each epoch's
//!   validation), `.with_checkpointing_strategy(KeepLastNCheckpoints::new(usize::MAX))` (keep
//!   them all, so that any epoch can be resumed from), `.early_stopping(StopAfterEpoch)` for a
//!   stop, `.checkpoint(k)` for a resume, then `.launch(learner)`.
//!
//! `RunConfig::strategy` picks Burn's execution strategy: one device, or
//! `ExecutionStrategy::MultiDevice` over `n` devices with the optimizer on the first
//! (`MultiDeviceOptim::OptimMainDevice`) or each parameter's step and state on the device
//! that owns it (`OptimSharded`). Burn splits the training set into `n` contiguous parts,
//! one per device, each device takes a batch of `BATCH_SIZE` of its part per step, and the
//! devices' gradients are added. The loss is therefore a sum over the batch's samples (a
//! mean would scale the gradient with the number of devices): the step of `n` devices then
//! sees the gradient of the global batch made of their `n` batches, which
//! `Strategy::Single { replicas: n }` feeds to one device, to compare.
//!
//! A resume loads the model, optimizer and scheduler records of epoch `k` into the fresh
//! learner and continues with epoch `k + 1`. One quirk of Burn 0.21: the metric store counts
//! epochs from 1 in every process, so a resumed run writes the metric logs of its first
//! epoch (`k + 1`) to `train/epoch-1/` and `valid/epoch-1/`, replacing those of epoch 1; the
//! later epochs land in their own folders. The training itself is not affected.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::{Module, Param};
use burn::optim::Optimizer;
use burn::record::{FileRecorder, FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Tensor, TensorData};
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::store::EventStoreClient;
use burn::train::metric::{LossMetric, MetricDefinition};
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};
use burn::train::{
    EarlyStoppingStrategy, ExecutionStrategy, InferenceStep, Learner, LearningComponentsMarker,
    MultiDeviceOptim, RegressionOutput, SupervisedTraining, TrainOutput, TrainStep,
};
use holocron_optim::{
    AdEMAMixConfig, AdaBeliefConfig, AdamPConfig, AdanConfig, LambConfig, LarsConfig,
    LookaheadConfig, PolynomialLrScheduler, PolynomialLrSchedulerConfig, RaLarsConfig, ScoutConfig,
    TAdamConfig,
};

/// The training backend: the one picked by cargo feature, in `f32`, with autodiff.
pub type TrainBackend = holocron_optim_suite::backend::Autodiff;
type InnerBackend = holocron_optim_suite::backend::Backend;

/// Width of the hidden layer.
const HIDDEN: usize = 16;
/// Samples per batch and device; the 64 training samples make 4 optimizer steps per epoch
/// on one device, 2 on two.
pub const BATCH_SIZE: usize = 16;
/// The training grid is `TRAIN_GRID x TRAIN_GRID` points of `[-1, 1]^2`.
const TRAIN_GRID: usize = 8;
/// The validation grid is `VALID_GRID x VALID_GRID` points, between the training ones.
const VALID_GRID: usize = 4;

/// Which of this crate's optimizers trains the model, each with its default configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// `LarsConfig::new().init()`.
    Lars,
    /// `LambConfig::new().init()`.
    Lamb,
    /// `RaLarsConfig::new().init()`.
    RaLars,
    /// `TAdamConfig::new().init()`.
    TAdam,
    /// `AdaBeliefConfig::new().init()`.
    AdaBelief,
    /// `AdamPConfig::new().init()`.
    AdamP,
    /// `AdanConfig::new().init()`.
    Adan,
    /// `AdEMAMixConfig::new().init()`.
    AdEMAMix,
    /// A wrapped optimizer: `LookaheadConfig::new().init(LambConfig::new().init())`.
    LookaheadLamb,
    /// `ScoutConfig::new().init(AdaBeliefConfig::new().init())`.
    ScoutAdaBelief,
}

impl OptimizerKind {
    /// Every kind, in the order above.
    pub const ALL: [OptimizerKind; 10] = [
        Self::Lars,
        Self::Lamb,
        Self::RaLars,
        Self::TAdam,
        Self::AdaBelief,
        Self::AdamP,
        Self::Adan,
        Self::AdEMAMix,
        Self::LookaheadLamb,
        Self::ScoutAdaBelief,
    ];

    /// The name on the example's command line, e.g. `lookahead-lamb`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lars => "lars",
            Self::Lamb => "lamb",
            Self::RaLars => "ralars",
            Self::TAdam => "tadam",
            Self::AdaBelief => "adabelief",
            Self::AdamP => "adamp",
            Self::Adan => "adan",
            Self::AdEMAMix => "ademamix",
            Self::LookaheadLamb => "lookahead-lamb",
            Self::ScoutAdaBelief => "scout-adabelief",
        }
    }
}

/// Where the training runs: Burn's `ExecutionStrategy`, with the devices of
/// `holocron_optim_suite::backend::devices`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// One device, each step on the global batch of `replicas` devices' batches
    /// (`replicas * BATCH_SIZE` samples, in the order `replicas` devices would see them).
    Single {
        /// How many devices' batches make one step's batch (1: a plain single-device run).
        replicas: usize,
    },
    /// `ExecutionStrategy::MultiDevice` over `devices` devices.
    MultiDevice {
        /// How many devices.
        devices: usize,
        /// Whether each parameter is stepped on the device that owns it
        /// (`OptimSharded`) rather than all on the first (`OptimMainDevice`).
        sharded: bool,
    },
}

impl Strategy {
    /// How many devices' batches each step takes.
    pub fn replicas(self) -> usize {
        match self {
            Strategy::Single { replicas } => replicas,
            Strategy::MultiDevice { devices, .. } => devices,
        }
    }
}

/// What one invocation does.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Where the checkpoints (`checkpoint/`), the metric logs and the final weights go.
    pub artifact_dir: PathBuf,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Where the training runs.
    pub strategy: Strategy,
    /// The total number of epochs `N` of the training.
    pub num_epochs: usize,
    /// Stop after this epoch (its checkpoint is written first), as a crash or a stop would.
    pub stop_after: Option<usize>,
    /// Resume from the checkpoint of this epoch, in `artifact_dir`.
    pub resume_from: Option<usize>,
    /// Print one line of losses per epoch.
    pub verbose: bool,
}

/// The result of one invocation.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The last epoch trained (`N`, or the epoch of the stop).
    pub last_epoch: usize,
    /// The model's parameters at the end, by name, flattened in row-major order.
    pub weights: Vec<(String, Vec<f32>)>,
    /// The text file the weights were written to (`weights-epoch-<last_epoch>.txt`).
    pub weights_file: PathBuf,
}

/// A 2 -> `HIDDEN` (tanh) -> 1 perceptron.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    w1: Param<Tensor<B, 2>>,
    b1: Param<Tensor<B, 1>>,
    w2: Param<Tensor<B, 2>>,
    b2: Param<Tensor<B, 1>>,
}

/// Deterministic values in `[-scale, scale]`.
fn wave(n: usize, seed: f32, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|k| ((k as f32 + 1.0) * 1.618 + seed * 2.5).sin() * scale)
        .collect()
}

/// An `f32` tensor, whatever the device's default float type.
fn tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), (device, DType::F32))
}

impl<B: Backend> Mlp<B> {
    /// The initial model, built from explicit tensors so that every run starts from the
    /// same weights.
    pub fn new(device: &B::Device) -> Self {
        Mlp {
            w1: Param::from_tensor(tensor(wave(2 * HIDDEN, 1.0, 1.0), [2, HIDDEN], device)),
            b1: Param::from_tensor(tensor(wave(HIDDEN, 2.0, 0.5), [HIDDEN], device)),
            w2: Param::from_tensor(tensor(wave(HIDDEN, 3.0, 0.3), [HIDDEN, 1], device)),
            b2: Param::from_tensor(tensor(vec![0.1], [1], device)),
        }
    }

    fn forward(&self, inputs: Tensor<B, 2>) -> Tensor<B, 2> {
        let hidden = inputs
            .matmul(self.w1.val())
            .add(self.b1.val().unsqueeze())
            .tanh();
        hidden.matmul(self.w2.val()).add(self.b2.val().unsqueeze())
    }

    /// The prediction and the sum of squared errors of a batch (a sum so that the devices'
    /// gradients add up to the global batch's; see the module's docs).
    fn forward_regression(&self, batch: SampleBatch<B>) -> RegressionOutput<B> {
        let output = self.forward(batch.inputs);
        let loss = output.clone().sub(batch.targets.clone()).square().sum();
        RegressionOutput::new(loss, output, batch.targets)
    }

    /// The parameters, by name, flattened in row-major order.
    pub fn weights(&self) -> Vec<(String, Vec<f32>)> {
        let flat = |data: TensorData| data.to_vec::<f32>().expect("f32 parameters");
        vec![
            ("w1".into(), flat(self.w1.val().into_data())),
            ("b1".into(), flat(self.b1.val().into_data())),
            ("w2".into(), flat(self.w2.val().into_data())),
            ("b2".into(), flat(self.b2.val().into_data())),
        ]
    }
}

impl<B: AutodiffBackend> TrainStep for Mlp<B> {
    type Input = SampleBatch<B>;
    type Output = RegressionOutput<B>;

    fn step(&self, batch: SampleBatch<B>) -> TrainOutput<RegressionOutput<B>> {
        let output = self.forward_regression(batch);
        TrainOutput::new(self, output.loss.backward(), output)
    }
}

impl<B: Backend> InferenceStep for Mlp<B> {
    type Input = SampleBatch<B>;
    type Output = RegressionOutput<B>;

    fn step(&self, batch: SampleBatch<B>) -> RegressionOutput<B> {
        self.forward_regression(batch)
    }
}

/// One sample of `y = sin(2 x1) + 0.5 x2^2`.
#[derive(Clone, Debug)]
pub struct Sample {
    x: [f32; 2],
    y: f32,
}

/// `grid x grid` samples in `[-1, 1]^2`, `offset` grid steps away from the corners.
fn samples(grid: usize, offset: f32) -> Vec<Sample> {
    let step = 2.0 / grid as f32;
    let coordinate = |i: usize| -1.0 + (i as f32 + offset) * step;
    (0..grid * grid)
        .map(|k| {
            let (x1, x2) = (coordinate(k / grid), coordinate(k % grid));
            Sample {
                x: [x1, x2],
                y: (2.0 * x1).sin() + 0.5 * x2 * x2,
            }
        })
        .collect()
}

/// `samples` reordered so that each batch of `replicas * BATCH_SIZE` holds, in device
/// order, the batches that `replicas` devices take at the same step: Burn gives device `d`
/// the `d`-th contiguous part of the training set.
fn interleaved(samples: Vec<Sample>, replicas: usize) -> Vec<Sample> {
    let part = samples.len() / replicas;
    let steps = part / BATCH_SIZE;
    (0..steps)
        .flat_map(|step| {
            (0..replicas).flat_map(move |device| {
                let start = device * part + step * BATCH_SIZE;
                start..start + BATCH_SIZE
            })
        })
        .map(|i| samples[i].clone())
        .collect()
}

/// A batch of samples as tensors.
#[derive(Clone, Debug)]
pub struct SampleBatch<B: Backend> {
    inputs: Tensor<B, 2>,
    targets: Tensor<B, 2>,
}

/// Stacks samples into a [`SampleBatch`].
#[derive(Clone, Debug)]
struct SampleBatcher;

impl<B: Backend> Batcher<B, Sample, SampleBatch<B>> for SampleBatcher {
    fn batch(&self, items: Vec<Sample>, device: &B::Device) -> SampleBatch<B> {
        let n = items.len();
        let inputs = items.iter().flat_map(|s| s.x).collect();
        let targets = items.iter().map(|s| s.y).collect();
        SampleBatch {
            inputs: tensor(inputs, [n, 2], device),
            targets: tensor(targets, [n, 1], device),
        }
    }
}

/// Stops the training after a given epoch. Burn calls it after the epoch's checkpoint is
/// written, so the run ends exactly as if the process had been killed right then.
#[derive(Clone)]
struct StopAfterEpoch(usize);

impl EarlyStoppingStrategy for StopAfterEpoch {
    fn should_stop(&mut self, epoch: usize, _store: &EventStoreClient) -> bool {
        epoch >= self.0
    }
}

/// A renderer that prints one line per epoch (the mean training and validation losses)
/// instead of Burn's CLI renderer, which prints every batch.
struct EpochRenderer {
    verbose: bool,
    num_epochs: usize,
    train: (f64, usize),
    valid: (f64, usize),
}

impl EpochRenderer {
    fn accumulate(sum: &mut (f64, usize), state: MetricState) {
        if let MetricState::Numeric(_, value) = state {
            sum.0 += value.current();
            sum.1 += 1;
        }
    }
}

impl MetricsRendererTraining for EpochRenderer {
    fn update_train(&mut self, state: MetricState) {
        Self::accumulate(&mut self.train, state);
    }

    fn update_valid(&mut self, state: MetricState) {
        Self::accumulate(&mut self.valid, state);
    }

    fn render_train(&mut self, _item: TrainingProgress, _progress: Vec<ProgressType>) {}

    fn render_valid(&mut self, item: TrainingProgress, _progress: Vec<ProgressType>) {
        let Some(progress) = item.progress else {
            return;
        };
        if progress.items_processed < progress.items_total {
            return;
        }
        // The last validation batch of an epoch.
        if self.verbose {
            let mean = |(sum, count): (f64, usize)| sum / count.max(1) as f64;
            println!(
                "epoch {:>3}/{}: train loss {:.6}, valid loss {:.6}",
                item.global_progress.items_processed,
                self.num_epochs,
                mean(self.train),
                mean(self.valid),
            );
        }
        self.train = (0.0, 0);
        self.valid = (0.0, 0);
    }
}

impl MetricsRendererEvaluation for EpochRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}

    fn render_test(&mut self, _item: EvaluationProgress, _progress: Vec<ProgressType>) {}
}

impl MetricsRenderer for EpochRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, _definition: MetricDefinition) {}
}

/// The checkpoint format: MessagePack with `f32` floats, so that the weights and the
/// optimizer's state are stored exactly (the default `CompactRecorder` stores `f16`).
type Recorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// Trains as `config` says and writes the final weights to
/// `<artifact_dir>/weights-epoch-<last epoch>.txt`.
pub fn run(config: &RunConfig) -> Result<RunOutcome, String> {
    if config.num_epochs == 0 {
        return Err("the number of epochs must be at least 1".into());
    }
    if let Some(stop) = config.stop_after
        && !(1..=config.num_epochs).contains(&stop)
    {
        return Err(format!(
            "cannot stop after epoch {stop} of {}",
            config.num_epochs
        ));
    }
    if let Some(epoch) = config.resume_from {
        if !(1..config.num_epochs).contains(&epoch) {
            return Err(format!(
                "cannot resume from epoch {epoch} of {}",
                config.num_epochs
            ));
        }
        for name in ["model", "optim", "scheduler"] {
            let file = config
                .artifact_dir
                .join("checkpoint")
                .join(format!("{name}-{epoch}"))
                .with_extension(<Recorder as FileRecorder<TrainBackend>>::file_extension());
            if !file.is_file() {
                return Err(format!(
                    "no checkpoint of epoch {epoch}: {} is missing",
                    file.display()
                ));
            }
        }
    }
    std::fs::create_dir_all(&config.artifact_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.artifact_dir.display()))?;

    let replicas = config.strategy.replicas();
    if replicas == 0 || !(TRAIN_GRID * TRAIN_GRID).is_multiple_of(replicas * BATCH_SIZE) {
        return Err(format!(
            "{replicas} devices do not split {} samples into batches of {BATCH_SIZE}",
            TRAIN_GRID * TRAIN_GRID
        ));
    }
    let total_steps = config.num_epochs * (TRAIN_GRID * TRAIN_GRID) / (replicas * BATCH_SIZE);
    let (lr, steps) = (0.02, total_steps);
    let model = match config.optimizer {
        OptimizerKind::Lars => fit(config, LarsConfig::new().init(), lr, steps),
        OptimizerKind::Lamb => fit(config, LambConfig::new().init(), lr, steps),
        OptimizerKind::RaLars => fit(config, RaLarsConfig::new().init(), lr, steps),
        // TAdam weighs a gradient by how close it is to the first moment, measured by the
        // second; both start at 0, so its first steps barely move the first moment and the
        // weights: a larger rate lets this short run train.
        OptimizerKind::TAdam => fit(config, TAdamConfig::new().init(), 10.0 * lr, steps),
        OptimizerKind::AdaBelief => fit(config, AdaBeliefConfig::new().init(), lr, steps),
        OptimizerKind::AdamP => fit(config, AdamPConfig::new().init(), lr, steps),
        OptimizerKind::Adan => fit(config, AdanConfig::new().init(), lr, steps),
        OptimizerKind::AdEMAMix => fit(config, AdEMAMixConfig::new().init(), lr, steps),
        OptimizerKind::LookaheadLamb => fit(
            config,
            LookaheadConfig::new().init(LambConfig::new().init()),
            0.05,
            steps,
        ),
        OptimizerKind::ScoutAdaBelief => fit(
            config,
            ScoutConfig::new().init(AdaBeliefConfig::new().init()),
            lr,
            steps,
        ),
    };

    let last_epoch = config.stop_after.unwrap_or(config.num_epochs);
    let weights = model.weights();
    let weights_file = config
        .artifact_dir
        .join(format!("weights-epoch-{last_epoch}.txt"));
    std::fs::write(&weights_file, weights_text(&weights))
        .map_err(|e| format!("cannot write {}: {e}", weights_file.display()))?;

    Ok(RunOutcome {
        last_epoch,
        weights,
        weights_file,
    })
}

/// `base/<test>/<optimizer>/<run>`, emptied: a stale checkpoint of an earlier run must not
/// be resumed from. For the tests that run this training.
#[allow(dead_code)] // the example's command line does not use it
pub fn fresh_dir(base: &Path, test: &str, optimizer: OptimizerKind, run: &str) -> PathBuf {
    let dir = base.join(test).join(optimizer.name()).join(run);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    dir
}

/// A run without output of `num_epochs` epochs in `artifact_dir`, with an optional stop
/// and resume; panics with the run's error. For the tests that run this training.
#[allow(dead_code)] // the example's command line does not use it
pub fn run_quietly(
    optimizer: OptimizerKind,
    strategy: Strategy,
    num_epochs: usize,
    artifact_dir: &Path,
    stop_after: Option<usize>,
    resume_from: Option<usize>,
) -> RunOutcome {
    let config = RunConfig {
        artifact_dir: artifact_dir.to_path_buf(),
        optimizer,
        strategy,
        num_epochs,
        stop_after,
        resume_from,
        verbose: false,
    };
    run(&config).unwrap_or_else(|e| panic!("{optimizer:?} {strategy:?}: {e}"))
}

/// One line per value: name, index, the `f32`'s bits in hex and its decimal value, so that
/// two files compare with `diff`.
fn weights_text(weights: &[(String, Vec<f32>)]) -> String {
    let mut text = String::new();
    for (name, values) in weights {
        for (i, value) in values.iter().enumerate() {
            writeln!(text, "{name}[{i}] {:08x} {value:e}", value.to_bits()).unwrap();
        }
    }
    text
}

/// Runs Burn's supervised `Learner` with the given optimizer and returns the trained model.
#[allow(clippy::clone_on_copy)] // not every backend's device is `Copy`
fn fit<O>(config: &RunConfig, optimizer: O, lr: f64, total_steps: usize) -> Mlp<InnerBackend>
where
    O: Optimizer<Mlp<TrainBackend>, TrainBackend> + 'static,
{
    let replicas = config.strategy.replicas();
    let devices = holocron_optim_suite::backend::devices(replicas);
    let device = devices[0].clone();
    let (execution, batch_size, train_samples) = match config.strategy {
        Strategy::Single { replicas } => (
            ExecutionStrategy::SingleDevice(device.clone()),
            replicas * BATCH_SIZE,
            interleaved(samples(TRAIN_GRID, 0.0), replicas),
        ),
        Strategy::MultiDevice { sharded, .. } => (
            ExecutionStrategy::MultiDevice(
                devices,
                match sharded {
                    true => MultiDeviceOptim::OptimSharded,
                    false => MultiDeviceOptim::OptimMainDevice,
                },
            ),
            BATCH_SIZE,
            samples(TRAIN_GRID, 0.0),
        ),
    };

    // No shuffling: Burn's shuffling RNG lives in the data loader and is not part of the
    // checkpoint, so a resumed run would see other batches than an uninterrupted one.
    // No worker threads either: the batches are loaded, in order, in the training thread.
    let train_loader = DataLoaderBuilder::<TrainBackend, _, _>::new(SampleBatcher)
        .batch_size(batch_size)
        .build(InMemDataset::new(train_samples));
    let valid_loader = DataLoaderBuilder::<InnerBackend, _, _>::new(SampleBatcher)
        .batch_size(BATCH_SIZE)
        .build(InMemDataset::new(samples(VALID_GRID, 0.5)));

    // A fresh model, optimizer and schedule; a resume overwrites all three from the
    // checkpoint.
    let lr_scheduler = PolynomialLrSchedulerConfig::new(lr, total_steps)
        .init()
        .expect("valid schedule");
    let learner = Learner::new(Mlp::<TrainBackend>::new(&device), optimizer, lr_scheduler);

    let mut training = SupervisedTraining::<
        LearningComponentsMarker<TrainBackend, PolynomialLrScheduler, Mlp<TrainBackend>, O>,
    >::new(&config.artifact_dir, train_loader, valid_loader)
    .metric_train_numeric(LossMetric::new())
    .metric_valid_numeric(LossMetric::new())
    .with_file_checkpointer(Recorder::new())
    .with_checkpointing_strategy(KeepLastNCheckpoints::new(usize::MAX))
    .num_epochs(config.num_epochs)
    .with_training_strategy(execution.into())
    .renderer(EpochRenderer {
        verbose: config.verbose,
        num_epochs: config.num_epochs,
        train: (0.0, 0),
        valid: (0.0, 0),
    })
    // Burn would install a global `tracing` subscriber writing `experiment.log`; it can be
    // installed only once per process, and the test runs several trainings in one.
    .with_application_logger(None);
    if let Some(epoch) = config.stop_after {
        training = training.early_stopping(StopAfterEpoch(epoch));
    }
    if let Some(epoch) = config.resume_from {
        training = training.checkpoint(epoch);
    }
    training.launch(learner).model
}
