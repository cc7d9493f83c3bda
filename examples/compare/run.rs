//! The work of the `compare` example, in a form its smoke test can include
//! (`#[path = "../examples/compare/run.rs"] mod run;`): train one small network on the
//! handwritten-digits data once per optimizer, then plot the validation loss and each
//! optimizer's path on the Rosenbrock function.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{AutodiffModule, Module, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, ElementConversion, Int, Tensor, TensorData};
use holocron_optim::*;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;

/// The backend picked by cargo feature (ndarray by default, `--features wgpu` or `cuda`).
pub type B = holocron_optim_suite::backend::Autodiff;
type Inner = holocron_optim_suite::backend::Backend;

/// Every optimizer the example knows, in the order of the table.
pub const ALL: [&str; 12] = [
    "lars",
    "lamb",
    "ralars",
    "tadam",
    "adabelief",
    "adamp",
    "adan",
    "ademamix",
    "lookahead",
    "scout",
    "adam",
    "adamw",
];

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Names from [`ALL`].
    pub optimizers: Vec<String>,
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Overrides every optimizer's default peak learning rate.
    pub lr: Option<f64>,
    /// Steps on the Rosenbrock function for the path picture.
    pub rosenbrock_steps: usize,
    /// Where the pictures go.
    pub out_dir: PathBuf,
    /// Seed of the train/validation split and of the initial weights.
    pub seed: u64,
    /// Show progress bars.
    pub progress: bool,
}

/// One optimizer's results.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub lr: f64,
    pub train_loss: f32,
    /// Validation loss before training, then after each epoch.
    pub val_losses: Vec<f32>,
    pub val_accuracy: f32,
    pub ms_per_step: f64,
    /// Points visited on the Rosenbrock function, from the common start, at the peak rate
    /// `rosenbrock_lr` that the search picked.
    pub rosenbrock_path: Vec<(f32, f32)>,
    pub rosenbrock_lr: f64,
}

/// The results and the pictures written.
#[derive(Debug)]
pub struct Report {
    pub rows: Vec<Row>,
    pub train_size: usize,
    pub val_size: usize,
    pub loss_plot: PathBuf,
    pub rosenbrock_plot: PathBuf,
}

/// A small deterministic generator (xorshift64*), so that every run and every optimizer
/// sees the same split and the same initial weights without another dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-12), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// The digits data: 64 pixels in 0..16 scaled to 0..1, and the digit.
pub struct Digits {
    pub pixels: Vec<[f32; 64]>,
    pub labels: Vec<i64>,
}

pub fn load_digits() -> Result<Digits, String> {
    let gz: &[u8] = include_bytes!("../../data/digits/digits.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read data/digits/digits.csv.gz: {e}"))?;
    let mut digits = Digits {
        pixels: vec![],
        labels: vec![],
    };
    for (n, line) in text.lines().enumerate() {
        let values: Vec<f32> = line
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("digits.csv line {}: {e}", n + 1))?;
        if values.len() != 65 {
            return Err(format!(
                "digits.csv line {}: {} values, expected 65",
                n + 1,
                values.len()
            ));
        }
        let mut pixels = [0.0; 64];
        for (p, v) in pixels.iter_mut().zip(&values) {
            *p = v / 16.0;
        }
        digits.pixels.push(pixels);
        digits.labels.push(values[64] as i64);
    }
    Ok(digits)
}

/// A split of the data as tensors.
struct Split {
    x: Tensor<B, 2>,
    y: Tensor<B, 1, Int>,
    len: usize,
}

fn split(digits: &Digits, seed: u64, device: &burn::tensor::Device<B>) -> (Split, Split) {
    let mut order: Vec<usize> = (0..digits.labels.len()).collect();
    let mut rng = Rng(seed.wrapping_mul(2654435761).max(1));
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let val_len = order.len() / 5;
    let make = |idx: &[usize]| {
        let x: Vec<f32> = idx.iter().flat_map(|&i| digits.pixels[i]).collect();
        let y: Vec<i64> = idx.iter().map(|&i| digits.labels[i]).collect();
        Split {
            x: Tensor::from_data(TensorData::new(x, [idx.len(), 64]), (device, DType::F32)),
            y: Tensor::from_data(TensorData::new(y, [idx.len()]), device),
            len: idx.len(),
        }
    };
    (make(&order[val_len..]), make(&order[..val_len]))
}

/// 64 -> 64 (ReLU) -> 10.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    w1: Param<Tensor<B, 2>>,
    b1: Param<Tensor<B, 1>>,
    w2: Param<Tensor<B, 2>>,
    b2: Param<Tensor<B, 1>>,
}

const HIDDEN: usize = 64;

impl<B: Backend> Mlp<B> {
    /// He-initialised weights from the seed; the same for every optimizer.
    fn new(seed: u64, device: &B::Device) -> Self {
        let mut rng = Rng(seed.wrapping_add(0x9E37_79B9_7F4A_7C15));
        let mut weights = |rows: usize, cols: usize| {
            let scale = (2.0 / rows as f64).sqrt();
            let values: Vec<f32> = (0..rows * cols)
                .map(|_| (rng.normal() * scale) as f32)
                .collect();
            Param::from_tensor(Tensor::from_data(
                TensorData::new(values, [rows, cols]),
                (device, DType::F32),
            ))
        };
        let (w1, w2) = (weights(64, HIDDEN), weights(HIDDEN, 10));
        let zeros = |n: usize| Param::from_tensor(Tensor::zeros([n], (device, DType::F32)));
        Mlp {
            w1,
            b1: zeros(HIDDEN),
            w2,
            b2: zeros(10),
        }
    }

    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let h = relu(x.matmul(self.w1.val()).add(self.b1.val().unsqueeze()));
        h.matmul(self.w2.val()).add(self.b2.val().unsqueeze())
    }
}

/// Loss and accuracy on a whole split, without gradients.
fn evaluate(model: &Mlp<Inner>, data: &Split) -> (f32, f32) {
    let x = data.x.clone().inner();
    let y = data.y.clone().inner();
    let logits = model.forward(x);
    let loss = CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits.clone(), y.clone());
    let correct = logits.argmax(1).squeeze_dim::<1>(1).equal(y).int().sum();
    let loss: f32 = loss.into_scalar();
    let correct: i64 = correct.into_scalar().elem();
    (loss, correct as f32 / data.len as f32)
}

/// The default peak learning rates on the digits task and on Rosenbrock. Trust-ratio
/// optimizers (LARS, LAMB, RaLars) take a step of length `lr * ‖p‖`, hence their own scale.
fn default_lrs(name: &str) -> (f64, f64) {
    match name {
        "lars" | "lars_masked" => (0.005, 0.002),
        "lamb" | "lamb_masked" | "ralars" | "lookahead" => (0.01, 0.02),
        "ademamix" => (0.001, 0.01),
        _ => (0.003, 0.05),
    }
}

/// Builds the named optimizer for module `M`, for a run of `$steps` steps, and hands it
/// to `f`.
macro_rules! with_optimizer {
    ($name:expr, $m:ty, $steps:expr, |$optim:ident| $body:expr) => {
        match $name {
            "lars" => {
                let $optim = LarsConfig::new().with_momentum(0.9).init::<B, $m>();
                $body
            }
            "lamb" => {
                let $optim = LambConfig::new().with_weight_decay(1e-4).init::<B, $m>();
                $body
            }
            // Not in `ALL`: the SimCLR/BERT convention, by name (`--optimizers lamb_masked`).
            "lamb_masked" => {
                let $optim = LambConfig::new()
                    .with_weight_decay(1e-4)
                    .with_exclude_vectors_from_weight_decay(true)
                    .with_exclude_vectors_from_trust_ratio(true)
                    .init::<B, $m>();
                $body
            }
            "lars_masked" => {
                let $optim = LarsConfig::new()
                    .with_momentum(0.9)
                    .with_exclude_vectors_from_weight_decay(true)
                    .with_exclude_vectors_from_trust_ratio(true)
                    .init::<B, $m>();
                $body
            }
            "ralars" => {
                let $optim = RaLarsConfig::new().init::<B, $m>();
                $body
            }
            "tadam" => {
                let $optim = TAdamConfig::new().init::<B, $m>();
                $body
            }
            "adabelief" => {
                let $optim = AdaBeliefConfig::new().init::<B, $m>();
                $body
            }
            "adamp" => {
                let $optim = AdamPConfig::new().init::<B, $m>();
                $body
            }
            "adan" => {
                let $optim = AdanConfig::new().init::<B, $m>();
                $body
            }
            "ademamix" => {
                // The paper's defaults (beta_3 = 0.9999), with both warm-ups over the run.
                let $optim = AdEMAMixConfig::new()
                    .with_alpha_warmup(Some($steps))
                    .with_beta_3_warmup(Some($steps))
                    .init::<B, $m>();
                $body
            }
            "lookahead" => {
                let $optim = LookaheadConfig::new()
                    .init(LambConfig::new().with_weight_decay(1e-4).init::<B, $m>());
                $body
            }
            "scout" => {
                let $optim = ScoutConfig::new().init(AdaBeliefConfig::new().init::<B, $m>());
                $body
            }
            "adam" => {
                let $optim = AdamConfig::new().init::<B, $m>();
                $body
            }
            "adamw" => {
                let $optim = AdamWConfig::new().with_weight_decay(1e-4).init::<B, $m>();
                $body
            }
            other => {
                return Err(format!(
                    "unknown optimizer `{other}`; known: {}",
                    ALL.join(", ")
                ))
            }
        }
    };
}

/// One label per optimizer in tables and legends.
pub fn label(name: &str) -> &'static str {
    match name {
        "lars" => "LARS (momentum 0.9)",
        "lamb" => "LAMB",
        "ralars" => "RaLars",
        "tadam" => "TAdam",
        "adabelief" => "AdaBelief",
        "adamp" => "AdamP",
        "adan" => "Adan",
        "ademamix" => "AdEMAMix (warm-ups)",
        "lamb_masked" => "LAMB (vectors masked)",
        "lars_masked" => "LARS (vectors masked)",
        "lookahead" => "Lookahead(LAMB)",
        "scout" => "Scout(AdaBelief)",
        "adam" => "burn Adam",
        "adamw" => "burn AdamW",
        _ => "?",
    }
}

struct Trained {
    train_loss: f32,
    val_losses: Vec<f32>,
    val_accuracy: f32,
    ms_per_step: f64,
}

fn train<O: Optimizer<Mlp<B>, B>>(
    mut optim: O,
    lr: f64,
    train: &Split,
    val: &Split,
    options: &Options,
    bar: &ProgressBar,
) -> Trained {
    let device = train.x.device();
    let mut model = Mlp::<B>::new(options.seed, &device);
    let batches = train.len.div_ceil(options.batch_size);
    let mut schedule = PolynomialLrSchedulerConfig::new(lr, options.epochs * batches)
        .with_power(1.0)
        .init()
        .expect("a valid schedule");
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut val_losses = vec![evaluate(&model.valid(), val).0];
    let mut elapsed = 0.0;
    let mut train_loss = 0.0;
    for _ in 0..options.epochs {
        let mut total = Tensor::<Inner, 1>::zeros([1], (&device, DType::F32));
        let start = Instant::now();
        for b in 0..batches {
            let range = b * options.batch_size..((b + 1) * options.batch_size).min(train.len);
            let x = train.x.clone().slice(range.clone());
            let y = train.y.clone().slice(range);
            let loss = loss_fn.forward(model.forward(x), y);
            total = total.add(loss.clone().inner());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(schedule.step(), model, grads);
            bar.inc(1);
        }
        // Reading the loss back waits for the device: the timing covers the epoch's work.
        train_loss = total.into_scalar() / batches as f32;
        elapsed += start.elapsed().as_secs_f64();
        val_losses.push(evaluate(&model.valid(), val).0);
    }
    let (_, val_accuracy) = evaluate(&model.valid(), val);
    Trained {
        train_loss,
        val_losses,
        val_accuracy,
        ms_per_step: elapsed * 1e3 / (options.epochs * batches) as f64,
    }
}

/// The Rosenbrock function `(1 - x)^2 + 100 (y - x^2)^2`, minimum 0 at (1, 1).
fn rosenbrock(x: f64, y: f64) -> f64 {
    (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
}

#[derive(Module, Debug)]
struct Point<B: Backend> {
    xy: Param<Tensor<B, 1>>,
}

const ROSENBROCK_START: [f32; 2] = [-1.5, 2.0];

/// The rates each optimizer tries on Rosenbrock: its default times these.
const ROSENBROCK_LR_FACTORS: [f64; 5] = [0.1, 0.3, 1.0, 3.0, 10.0];

/// The function's value where a path ends (infinite when it diverged).
fn end_value(path: &[(f32, f32)]) -> f64 {
    let (x, y) = path.last().copied().unwrap_or((f32::NAN, f32::NAN));
    let value = rosenbrock(f64::from(x), f64::from(y));
    if value.is_finite() {
        value
    } else {
        f64::INFINITY
    }
}

fn rosenbrock_path<O: Optimizer<Point<B>, B>>(
    mut optim: O,
    lr: f64,
    steps: usize,
) -> Vec<(f32, f32)> {
    let device = Default::default();
    let mut point = Point::<B> {
        xy: Param::from_tensor(Tensor::from_data(
            TensorData::new(ROSENBROCK_START.to_vec(), [2]),
            (&device, DType::F32),
        )),
    };
    let mut schedule = PolynomialLrSchedulerConfig::new(lr, steps)
        .with_power(1.0)
        .init()
        .expect("a valid schedule");
    let mut path = vec![(ROSENBROCK_START[0], ROSENBROCK_START[1])];
    for _ in 0..steps {
        let p = point.xy.val();
        let x = p.clone().slice(0..1);
        let y = p.slice(1..2);
        let loss = x
            .clone()
            .neg()
            .add_scalar(1.0)
            .square()
            .add(y.sub(x.square()).square().mul_scalar(100.0));
        let grads = GradientsParams::from_grads(loss.backward(), &point);
        point = optim.step(schedule.step(), point, grads);
        let xy: Vec<f32> = point
            .xy
            .val()
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap_or_default();
        path.push((xy[0], xy[1]));
    }
    path
}

/// Trains every requested optimizer and draws the two pictures.
pub fn run(options: &Options) -> Result<Report, String> {
    let digits = load_digits()?;
    let device = Default::default();
    let (train_set, val_set) = split(&digits, options.seed, &device);
    std::fs::create_dir_all(&options.out_dir)
        .map_err(|e| format!("cannot create {}: {e}", options.out_dir.display()))?;
    let steps = options.epochs * train_set.len.div_ceil(options.batch_size);

    let mut rows = vec![];
    for name in &options.optimizers {
        let name = name.as_str();
        let (task_lr, rosenbrock_lr) = default_lrs(name);
        let lr = options.lr.unwrap_or(task_lr);
        let bar = if options.progress {
            ProgressBar::new(steps as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} steps {elapsed}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label(name));
        let trained = with_optimizer!(name, Mlp<B>, steps, |optim| train(
            optim, lr, &train_set, &val_set, options, &bar
        ));
        bar.finish();
        // A small search: each optimizer draws its path at the rate (out of five around its
        // default) that ends lowest on the function.
        let mut best: Option<(f64, Vec<(f32, f32)>)> = None;
        for factor in ROSENBROCK_LR_FACTORS {
            let lr = rosenbrock_lr * factor;
            let path = with_optimizer!(name, Point<B>, options.rosenbrock_steps, |optim| {
                rosenbrock_path(optim, lr, options.rosenbrock_steps)
            });
            if best
                .as_ref()
                .is_none_or(|(_, b)| end_value(&path) < end_value(b))
            {
                best = Some((lr, path));
            }
        }
        let (rosenbrock_lr, path) = best.expect("at least one rate");
        rows.push(Row {
            name: name.to_string(),
            lr,
            train_loss: trained.train_loss,
            val_losses: trained.val_losses,
            val_accuracy: trained.val_accuracy,
            ms_per_step: trained.ms_per_step,
            rosenbrock_path: path,
            rosenbrock_lr,
        });
    }

    register_font()?;
    let loss_plot = options.out_dir.join("validation_loss.png");
    plot_losses(&rows, &loss_plot)
        .map_err(|e| format!("cannot draw {}: {e}", loss_plot.display()))?;
    let rosenbrock_plot = options.out_dir.join("rosenbrock_paths.png");
    plot_paths(&rows, &rosenbrock_plot)
        .map_err(|e| format!("cannot draw {}: {e}", rosenbrock_plot.display()))?;
    Ok(Report {
        rows,
        train_size: train_set.len,
        val_size: val_set.len,
        loss_plot,
        rosenbrock_plot,
    })
}

/// Plotters draws text with a font it is given; the DejaVu crate embeds one.
fn register_font() -> Result<(), String> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
    });
    ok.then_some(())
        .ok_or_else(|| "cannot load the embedded font".to_string())
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Twelve colours far apart (Okabe-Ito's eight, then four more), one per optimizer.
const COLOURS: [RGBColor; 12] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 200, 40),
    RGBColor(120, 60, 160),
    RGBColor(140, 90, 40),
    RGBColor(120, 120, 120),
    RGBColor(200, 30, 60),
];

fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

/// Validation loss per epoch, log scale; optimizer `i` has colour `i` and, past the first
/// six, a dashed line, so that no two lines look alike.
fn plot_losses(rows: &[Row], path: &Path) -> DrawResult {
    let root = BitMapBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let epochs = rows.iter().map(|r| r.val_losses.len()).max().unwrap_or(1) - 1;
    let finite = || {
        rows.iter()
            .flat_map(|r| r.val_losses.iter().copied())
            .filter(|v| v.is_finite())
    };
    let top = finite().fold(0.1f32, f32::max) * 1.2;
    let bottom = finite().fold(top, f32::min).max(1e-4) / 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Validation loss on handwritten digits (64-64-10 MLP)",
            ("sans-serif", 24),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f32..epochs.max(1) as f32, (bottom..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("cross-entropy (log scale)")
        .light_line_style(WHITE)
        .y_labels(12)
        .y_label_formatter(&|v| format!("{v:.2}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, row) in rows.iter().enumerate() {
        let style = colour(i).stroke_width(2);
        let points: Vec<(f32, f32)> = row
            .val_losses
            .iter()
            .enumerate()
            .map(|(e, v)| (e as f32, v.clamp(bottom, top)))
            .collect();
        let dashed = i >= 6;
        let drawn = if dashed {
            chart.draw_series(DashedLineSeries::new(points, 8, 5, style))?
        } else {
            chart.draw_series(LineSeries::new(points, style))?
        };
        drawn.label(label(&row.name)).legend(move |(x, y)| {
            if dashed {
                PathElement::new([(x, y), (x + 7, y)], style)
            } else {
                PathElement::new([(x, y), (x + 18, y)], style)
            }
        });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Contour levels of the Rosenbrock panels: `log(1 + f)` at these values.
const CONTOURS: [f64; 8] = [0.25, 0.75, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5];

/// One small Rosenbrock panel per optimizer: contour lines, the start (triangle), the
/// minimum (star) and the end point (disc) of its path at the rate its search picked.
fn plot_paths(rows: &[Row], path: &Path) -> DrawResult {
    let columns = 4;
    let grid_rows = rows.len().div_ceil(columns).max(1);
    let root = BitMapBackend::new(path, (300 * columns as u32, 40 + 270 * grid_rows as u32))
        .into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "Paths on the Rosenbrock function from (-1.5, 2), each at its best of five rates",
        ("sans-serif", 22),
    )?;
    let panels = root.split_evenly((grid_rows, columns));
    let (xs, ys) = (-2.0f32..2.0f32, -1.0f32..3.0f32);
    let contours = contour_segments(xs.clone(), ys.clone());
    for (i, (row, panel)) in rows.iter().zip(&panels).enumerate() {
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!(
                    "{} (lr {})",
                    label(&row.name),
                    (row.rosenbrock_lr * 1e4).round() / 1e4
                ),
                ("sans-serif", 15),
            )
            .margin(6)
            .x_label_area_size(18)
            .y_label_area_size(24)
            .build_cartesian_2d(xs.clone(), ys.clone())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(5)
            .y_labels(5)
            .label_style(("sans-serif", 10))
            .draw()?;
        chart.draw_series(
            contours
                .iter()
                .map(|&(a, b)| PathElement::new([a, b], RGBColor(170, 170, 170))),
        )?;
        let points: Vec<(f32, f32)> = row
            .rosenbrock_path
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| (x.clamp(xs.start, xs.end), y.clamp(ys.start, ys.end)))
            .collect();
        let style = colour(i).stroke_width(2);
        chart.draw_series(LineSeries::new(points.iter().copied(), style))?;
        let start = (ROSENBROCK_START[0], ROSENBROCK_START[1]);
        chart.draw_series(std::iter::once(TriangleMarker::new(
            start,
            7,
            BLACK.filled(),
        )))?;
        chart.draw_series(std::iter::once(Cross::new(
            (1.0, 1.0),
            6,
            BLACK.stroke_width(2),
        )))?;
        if let Some(&end) = points.last() {
            chart.draw_series(std::iter::once(Circle::new(end, 5, colour(i).filled())))?;
        }
    }
    root.present()?;
    Ok(())
}

/// The contour lines of `log(1 + f)` at [`CONTOURS`] over the rectangle, as segments
/// (marching squares on a 120 x 120 grid).
fn contour_segments(
    xs: std::ops::Range<f32>,
    ys: std::ops::Range<f32>,
) -> Vec<((f32, f32), (f32, f32))> {
    let cells = 120;
    let (dx, dy) = (
        (xs.end - xs.start) / cells as f32,
        (ys.end - ys.start) / cells as f32,
    );
    let at = |i: usize, j: usize| {
        let (x, y) = (xs.start + i as f32 * dx, ys.start + j as f32 * dy);
        ((x, y), (1.0 + rosenbrock(f64::from(x), f64::from(y))).ln())
    };
    let mut segments = vec![];
    for i in 0..cells {
        for j in 0..cells {
            // The cell's corners in order around it, and where each level crosses its edges.
            let corners = [at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1)];
            for level in CONTOURS {
                let crossings: Vec<(f32, f32)> = (0..4)
                    .filter_map(|k| {
                        let ((xa, ya), va) = corners[k];
                        let ((xb, yb), vb) = corners[(k + 1) % 4];
                        ((va < level) != (vb < level)).then(|| {
                            let t = ((level - va) / (vb - va)) as f32;
                            (xa + t * (xb - xa), ya + t * (yb - ya))
                        })
                    })
                    .collect();
                for pair in crossings.chunks_exact(2) {
                    segments.push((pair[0], pair[1]));
                }
            }
        }
    }
    segments
}

/// The results as a Markdown table, with a line saying what was run.
pub fn table(report: &Report, options: &Options) -> String {
    let mut out = format!(
        "{} epochs of {} training images (batch {}), {} validation images, backend {}; \
         the learning rate decays linearly from its peak to 0.\n\n",
        options.epochs,
        report.train_size,
        options.batch_size,
        report.val_size,
        holocron_optim_suite::backend::NAME
    );
    out.push_str("| optimizer | peak lr | train loss | val loss | val accuracy | ms/step |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for row in &report.rows {
        out.push_str(&format!(
            "| {} | {} | {:.4} | {:.4} | {:.1}% | {:.3} |\n",
            label(&row.name),
            row.lr,
            row.train_loss,
            row.val_losses.last().copied().unwrap_or(f32::NAN),
            100.0 * row.val_accuracy,
            row.ms_per_step
        ));
    }
    out
}
