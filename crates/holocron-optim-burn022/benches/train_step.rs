//! The optimizer step of a real Burn 0.22 training loop: forward, backward,
//! `GradientsParams::from_grads`, then `ModuleOptimizer::step`, of which only the step is
//! timed; for this crate's optimizers on the CPU loops and on the tensor operations
//! (`Execution::Composed`), and for Burn 0.22's AdamW.
//!
//! ```text
//! cargo bench -p holocron-optim-burn022 --features flex --bench train_step            # Flex
//! cargo bench -p holocron-optim-burn022 --bench train_step -- ndarray                 # ndarray
//! cargo bench -p holocron-optim-burn022 --features flex --bench train_step -- flex resnet
//! ```
//!
//! The models are those of the Burn 0.21 crate's `benches/train_step.rs` (the root package),
//! written for Burn 0.22:
//! - `bert`: a BERT-base encoder (`TransformerEncoder`, `d_model` 768, `d_ff` 3072, 12 heads,
//!   12 layers): 192 parameter tensors, 85,054,464 parameters; one sequence of 8 tokens,
//!   mean squared error to a random target.
//! - `resnet`: a ResNet-18 for small images (3 x 3 stem, four stages of two basic blocks,
//!   64 to 512 channels, 1 x 1 projections, batch norm after every convolution, a 512 x 10
//!   head): 62 tensors, 11,173,962 parameters, 40 of them small batch-norm vectors; two
//!   16 x 16 images.
//!
//! The step includes freeing the gradients' buffers, which `ModuleOptimizer` drops as it
//! goes. Each optimizer trains a fresh model (seeded) for 4 warm-up steps, then the mean of
//! 8 timed steps is printed in ns per parameter per step; compare ratios within one run.

use std::time::Instant;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor};
use holocron_optim_burn022::*;

const WARM_UP: usize = 4;
const TIMED: usize = 8;

/// A model of the benchmark: its forward pass to a scalar loss on a fixed batch.
trait Workload: Module + Sized {
    fn new(device: &Device) -> Self;
    fn loss(&self, device: &Device) -> Tensor<1>;
}

#[derive(Module, Debug)]
struct Bert {
    encoder: TransformerEncoder,
}

impl Workload for Bert {
    fn new(device: &Device) -> Self {
        let config = TransformerEncoderConfig::new(768, 3072, 12, 12).with_dropout(0.0);
        Bert {
            encoder: config.init(device),
        }
    }

    fn loss(&self, device: &Device) -> Tensor<1> {
        let normal = Distribution::Normal(0.0, 1.0);
        let input = Tensor::<3>::random([1, 8, 768], normal, device);
        let target = Tensor::<3>::random([1, 8, 768], normal, device);
        let output = self.encoder.forward(TransformerEncoderInput::new(input));
        (output - target).powi_scalar(2).mean()
    }
}

/// Convolution, batch norm.
#[derive(Module, Debug)]
struct ConvNorm {
    conv: Conv2d,
    norm: BatchNorm,
}

impl ConvNorm {
    fn new(from: usize, to: usize, kernel: usize, stride: usize, device: &Device) -> Self {
        let pad = kernel / 2;
        ConvNorm {
            conv: Conv2dConfig::new([from, to], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(to).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.norm.forward(self.conv.forward(x))
    }
}

/// ResNet's basic block: two 3 x 3 convolutions, the input added back (through a 1 x 1
/// projection where the shape changes).
#[derive(Module, Debug)]
struct Block {
    first: ConvNorm,
    second: ConvNorm,
    projection: Option<ConvNorm>,
    relu: Relu,
}

impl Block {
    fn new(from: usize, to: usize, stride: usize, device: &Device) -> Self {
        Block {
            first: ConvNorm::new(from, to, 3, stride, device),
            second: ConvNorm::new(to, to, 3, 1, device),
            projection: (from != to || stride != 1)
                .then(|| ConvNorm::new(from, to, 1, stride, device)),
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let skip = match &self.projection {
            Some(projection) => projection.forward(x.clone()),
            None => x.clone(),
        };
        let y = self.relu.forward(self.first.forward(x));
        self.relu.forward(self.second.forward(y) + skip)
    }
}

#[derive(Module, Debug)]
struct ResNet {
    stem: ConvNorm,
    blocks: Vec<Block>,
    pool: AdaptiveAvgPool2d,
    head: Linear,
    relu: Relu,
}

impl Workload for ResNet {
    fn new(device: &Device) -> Self {
        let mut blocks = vec![];
        let mut from = 64;
        for (stage, to) in [64, 128, 256, 512].into_iter().enumerate() {
            let stride = if stage == 0 { 1 } else { 2 };
            blocks.push(Block::new(from, to, stride, device));
            blocks.push(Block::new(to, to, 1, device));
            from = to;
        }
        ResNet {
            stem: ConvNorm::new(3, 64, 3, 1, device),
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(512, 10).init(device),
            relu: Relu::new(),
        }
    }

    fn loss(&self, device: &Device) -> Tensor<1> {
        let normal = Distribution::Normal(0.0, 1.0);
        let images = Tensor::<4>::random([2, 3, 16, 16], normal, device);
        let target = Tensor::<2>::random([2, 10], normal, device);
        let mut x = self.relu.forward(self.stem.forward(images));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let features: Tensor<2> = self.pool.forward(x).flatten(1, 3);
        (self.head.forward(features) - target).powi_scalar(2).mean()
    }
}

/// Trains a fresh `M` with `optim`; the mean step time in ns per parameter, and the steps
/// the CPU loops took.
fn measure<M: Workload>(mut optim: ModuleOptimizer, device: &Device) -> (f64, usize) {
    device.seed(0);
    let mut model = M::new(device);
    let numel = model.num_params();
    let mut total = 0.0;
    let before = step_paths();
    for step in 0..WARM_UP + TIMED {
        let loss = model.loss(device);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let start = Instant::now();
        model = optim.step(1e-4, model, grads);
        // Every CPU backend runs the step synchronously; the sync keeps that true.
        device.sync().expect("a working device");
        if step >= WARM_UP {
            total += start.elapsed().as_secs_f64();
        }
    }
    let loops = step_paths().since(before).cpu_loops;
    (total / TIMED as f64 * 1e9 / numel as f64, loops)
}

/// Every optimizer measured, by name.
fn optimizers() -> Vec<(String, Box<dyn Fn() -> ModuleOptimizer>)> {
    fn ours<C: Clone + 'static>(
        name: &str,
        config: C,
        with: fn(C, Execution) -> ModuleOptimizer,
    ) -> Vec<(String, Box<dyn Fn() -> ModuleOptimizer>)> {
        let composed = config.clone();
        vec![
            (
                format!("{name} (loops)"),
                Box::new(move || with(config.clone(), Execution::Auto)),
            ),
            (
                format!("{name} (composed)"),
                Box::new(move || with(composed.clone(), Execution::Composed)),
            ),
        ]
    }
    let mut all = vec![];
    all.extend(ours("AdaBelief", AdaBeliefConfig::new(), |c, e| {
        c.with_execution(e).init()
    }));
    all.extend(ours(
        "LARS momentum",
        LarsConfig::new().with_momentum(0.9),
        |c, e| c.with_execution(e).init(),
    ));
    all.extend(ours(
        "LAMB",
        LambConfig::new().with_weight_decay(1e-2),
        |c, e| c.with_execution(e).init(),
    ));
    all.extend(ours("Adan", AdanConfig::new(), |c, e| {
        c.with_execution(e).init()
    }));
    all.extend(ours("AdEMAMix", AdEMAMixConfig::new(), |c, e| {
        c.with_execution(e).init()
    }));
    all.push((
        "burn AdamW".to_string(),
        Box::new(|| AdamWConfig::new().with_weight_decay(1e-2).init()),
    ));
    all
}

// Burn 0.22 deprecates its ndarray backend (for Flex); this bench can still time it.
#[allow(deprecated)]
fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let backend = if args.iter().any(|a| a == "ndarray") {
        "ndarray"
    } else {
        "flex"
    };
    let device = match backend {
        #[cfg(feature = "flex")]
        "flex" => Device::flex(),
        #[cfg(feature = "ndarray")]
        "ndarray" => Device::ndarray(),
        other => panic!("the {other} backend is not compiled in (see the features)"),
    }
    .autodiff();
    let models: Vec<&str> = ["bert", "resnet"]
        .into_iter()
        .filter(|m| {
            !args.iter().any(|a| a == "bert" || a == "resnet") || args.iter().any(|a| a == m)
        })
        .collect();
    println!(
        "backend {backend}, instruction set {:?}, {} threads",
        vectorization(),
        rayon::current_num_threads()
    );
    for model in models {
        println!("{model}: ns per parameter per step (CPU loop steps in brackets)");
        for (name, optim) in optimizers() {
            let (ns, loops) = match model {
                "bert" => measure::<Bert>(optim(), &device),
                _ => measure::<ResNet>(optim(), &device),
            };
            println!("  {name:24} {ns:7.3}  [{loops}]");
        }
    }
}
