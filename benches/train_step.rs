//! The optimizer step of a real training loop, for every optimizer and wrapper of this crate
//! and for Burn's Adam, AdamW and Adan: forward, backward, `GradientsParams::from_grads`,
//! then `optim.step` through Burn's `OptimizerAdaptor` (or the wrapper), of which only the
//! step is timed.
//!
//! ```text
//! cargo bench --bench train_step                          # both models, every optimizer
//! cargo bench --bench train_step -- --models resnet --only lamb,burn-adam
//! BENCH_CONTIGUOUS_GRADIENTS=1 cargo bench --bench train_step -- --models resnet
//! BENCH_COLD_CACHE=1 cargo bench --bench train_step -- --models resnet
//! ```
//!
//! Two models users train:
//! - `bert`: a BERT-base encoder, Burn's `TransformerEncoder` with `d_model` 768, `d_ff`
//!   3072, 12 heads and 12 layers: 192 parameter tensors (per layer four `768 x 768` and
//!   two `768 x 3072` Linear weights with their biases, two LayerNorms), 85,054,464
//!   parameters, the shapes `../shared/bench/torch_step.py bert` times PyTorch on. Input:
//!   one sequence of 8 tokens, mean squared error to a random target.
//! - `resnet`: a ResNet-18 for 32 x 32 images (3 x 3 stem, four stages of two basic blocks,
//!   64 to 512 channels, 1 x 1 projections, batch norm after every convolution, a
//!   512 x 10 head): 62 tensors, 11,173,962 parameters, of which 9,600 are in 40 batch-norm
//!   vectors, so many small tensors. Input: one random 16 x 16 image, mean squared error
//!   to a random target.
//!
//! The gradients are the backward pass's own (fresh buffers each step, as in training), and
//! the model's parameters come out of the forward pass, so this is what `Learner` steps.
//! Each optimizer runs in its own process (this program re-runs itself): 6 warm-up steps,
//! then the mean of 12 timed steps (two sync periods of the wrappers' default 6), each
//! step followed by a read of one parameter value so that asynchronous backends have
//! finished. Figures are ns per parameter per step; compare ratios within one run.
//!
//! With `BENCH_CONTIGUOUS_GRADIENTS` set, each gradient is copied into row-major order
//! before the (timed) step: a diagnosis of what Burn's swapped convolution-weight gradients
//! cost the step, not a figure of training.
//!
//! With `BENCH_COLD_CACHE` set, a 1 GiB buffer is written twice before each timed step, so
//! that the step finds little of its parameters, gradients or state in the last-level cache
//! (`tools/bench/torch_train_step.py` does the same for PyTorch). ResNet-18's step touches
//! about 180 MB, less than some server CPUs' L3: how much of it is still cached after the
//! forward and backward passes depends on how much memory those passes touch, a property
//! of the backend's convolutions, not of the optimizer. Cold, both sides read mostly from
//! memory (a diagnosis, not a figure of training).
//!
//! The adaptor drops each gradient inside the step, where PyTorch frees its gradients in
//! `zero_grad`, outside its timed step. So on ndarray this program's allocator puts aside
//! the gradients' buffers that the step frees and frees them after the timer stops, timed
//! apart ("freeing the gradients"). Until 2026-12-06 the program kept a handle to each
//! gradient instead, which left every gradient shared with it: the step then could not
//! write over a gradient it was done with, as it does in a training loop.

mod common;

use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use common::{Args, child_numbers, measure_with, print_setting};
use holocron_optim::step_paths;
use holocron_optim_suite::backend;

type B = backend::Autodiff;
type Inner = backend::Backend;
type Device = burn::tensor::Device<B>;

const WARM_UP: usize = 6;
const TIMED: usize = 12;

/// A model of the benchmark: its forward pass to a scalar loss on a fixed batch.
trait Workload: AutodiffModule<B> + Sized {
    fn new(device: &Device) -> Self;
    fn loss(&self, device: &Device) -> Tensor<B, 1>;
}

#[derive(Module, Debug)]
struct Bert<B: Backend> {
    encoder: TransformerEncoder<B>,
}

impl Workload for Bert<B> {
    fn new(device: &Device) -> Self {
        let config = TransformerEncoderConfig::new(768, 3072, 12, 12).with_dropout(0.0);
        Bert {
            encoder: config.init(device),
        }
    }

    fn loss(&self, device: &Device) -> Tensor<B, 1> {
        let normal = Distribution::Normal(0.0, 1.0);
        let input = Tensor::<B, 3>::random([1, 8, 768], normal, device);
        let target = Tensor::<B, 3>::random([1, 8, 768], normal, device);
        let output = self.encoder.forward(TransformerEncoderInput::new(input));
        (output - target).powi_scalar(2).mean()
    }
}

/// Convolution, batch norm.
#[derive(Module, Debug)]
struct ConvNorm<B: Backend> {
    conv: Conv2d<B>,
    norm: BatchNorm<B>,
}

impl<B: Backend> ConvNorm<B> {
    fn new(from: usize, to: usize, kernel: usize, stride: usize, device: &B::Device) -> Self {
        ConvNorm {
            conv: Conv2dConfig::new([from, to], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(
                    kernel / 2,
                    kernel / 2,
                    kernel / 2,
                    kernel / 2,
                ))
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(to).init(device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.norm.forward(self.conv.forward(x))
    }
}

/// ResNet's basic block: two 3 x 3 convolutions, the input added back (through a 1 x 1
/// projection where the shape changes).
#[derive(Module, Debug)]
struct Block<B: Backend> {
    first: ConvNorm<B>,
    second: ConvNorm<B>,
    projection: Option<ConvNorm<B>>,
    relu: Relu,
}

impl<B: Backend> Block<B> {
    fn new(from: usize, to: usize, stride: usize, device: &B::Device) -> Self {
        Block {
            first: ConvNorm::new(from, to, 3, stride, device),
            second: ConvNorm::new(to, to, 3, 1, device),
            projection: (from != to || stride != 1)
                .then(|| ConvNorm::new(from, to, 1, stride, device)),
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let skip = match &self.projection {
            Some(projection) => projection.forward(x.clone()),
            None => x.clone(),
        };
        let y = self.relu.forward(self.first.forward(x));
        self.relu.forward(self.second.forward(y) + skip)
    }
}

#[derive(Module, Debug)]
struct ResNet<B: Backend> {
    stem: ConvNorm<B>,
    blocks: Vec<Block<B>>,
    pool: AdaptiveAvgPool2d,
    head: Linear<B>,
    relu: Relu,
}

impl Workload for ResNet<B> {
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

    fn loss(&self, device: &Device) -> Tensor<B, 1> {
        let normal = Distribution::Normal(0.0, 1.0);
        let images = Tensor::<B, 4>::random([1, 3, 16, 16], normal, device);
        let target = Tensor::<B, 2>::random([1, 10], normal, device);
        let mut x = self.relu.forward(self.stem.forward(images));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let features: Tensor<B, 2> = self.pool.forward(x).flatten(1, 3);
        (self.head.forward(features) - target).powi_scalar(2).mean()
    }
}

/// Trains `model` with `optim` and prints the mean step time in ns per parameter, and the
/// number of parameters and of parameter tensors.
fn measure<M: Workload, O: Optimizer<M, B>>(mut optim: O) {
    let device = Default::default();
    B::seed(&device, 0);
    let mut model = M::new(&device);
    let numel = model.num_params();
    eprintln!("{} parameters in {} tensors", numel, tensor_count(&model));
    let (mut steps, mut frees) = (vec![], vec![]);
    let contiguous = std::env::var_os("BENCH_CONTIGUOUS_GRADIENTS").is_some();
    let mut eviction = std::env::var_os("BENCH_COLD_CACHE").map(|_| vec![0f32; EVICTION_FLOATS]);
    for step in 0..WARM_UP + TIMED {
        let loss = model.loss(&device);
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        if contiguous {
            make_contiguous(&model, &mut grads);
        }
        // The gradients' buffers are freed after the step, timed apart: PyTorch frees its
        // gradients in `zero_grad`, outside its timed step, while Burn's adaptor drops each
        // one inside the step. A gradient whose buffer this cannot find (on another
        // backend) is kept alive by a handle instead.
        let kept = deferred_frees::watch_gradients(&model, &grads);
        if let Some(buffer) = eviction.as_mut() {
            evict_caches(buffer);
        }
        let paths = step_paths();
        deferred_frees::arm();
        let start = Instant::now();
        model = optim.step(1e-4, model, grads);
        wait_for(&model);
        let stepped = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let deferred = deferred_frees::disarm_and_free();
        let handles = kept.len();
        drop(kept);
        let freed = start.elapsed().as_secs_f64();
        if std::env::var_os("BENCH_STEPS").is_some() {
            let ns = |s: f64| s * 1e9 / numel as f64;
            eprintln!(
                "step {step}: {:.3} ns/param, freeing the gradients {:.3} ({deferred} buffers \
                 put aside in the step, {} kept by a handle), {:?}",
                ns(stepped),
                ns(freed),
                handles,
                step_paths().since(paths)
            );
        }
        if step >= WARM_UP {
            steps.push(stepped);
            frees.push(freed);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64 * 1e9 / numel as f64;
    println!("{:.3} {:.3} {numel}", mean(&steps), mean(&frees));
}

/// Every gradient in `grads` copied into a fresh buffer in row-major order, untimed: Burn's
/// ndarray backward gives each convolution weight's gradient as a view with its first two
/// axes swapped, and this shows what a step costs without that layout (a diagnosis, not
/// what training runs).
fn make_contiguous<M: Module<B>>(model: &M, grads: &mut GradientsParams) {
    struct RowMajor<'a>(&'a mut GradientsParams);
    impl burn::module::ModuleVisitor<B> for RowMajor<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            if let Some(grad) = self.0.remove::<Inner, D>(param.id) {
                let device = grad.device();
                let copy = Tensor::<Inner, D>::from_data(grad.into_data(), &device);
                self.0.register::<Inner, D>(param.id, copy);
            }
        }
    }
    model.visit(&mut RowMajor(grads));
}

/// The length of `BENCH_COLD_CACHE`'s buffer: 1 GiB of `f32`, over three times the largest
/// L3 of the machines the figures come from (300 MiB).
const EVICTION_FLOATS: usize = 1 << 28;

/// Writes all of `buffer` twice: a last-level cache that keeps lines read more than once
/// survives a single streaming pass in part.
fn evict_caches(buffer: &mut [f32]) {
    for _ in 0..2 {
        buffer.iter_mut().for_each(|x| *x += 1.0);
        std::hint::black_box(&mut *buffer);
    }
}

/// This program's allocator: the system's, except that between [`deferred_frees::arm`] and
/// [`deferred_frees::disarm_and_free`] a watched buffer (a gradient of the step) is put
/// aside when freed, and freed at the end.
#[global_allocator]
static ALLOCATOR: deferred_frees::DeferredFrees = deferred_frees::DeferredFrees;

mod deferred_frees {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::any::Any;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use burn::module::{Module, ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::Tensor;

    use super::{B, Inner};

    /// Watched buffers and put-aside frees at most: more than BERT's 192 gradients.
    const SLOTS: usize = 1024;

    static ARMED: AtomicBool = AtomicBool::new(false);
    static WATCHED: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
    static WATCHED_LEN: AtomicUsize = AtomicUsize::new(0);
    /// Each put-aside buffer: address, size and alignment.
    static DEFERRED: [[AtomicUsize; 3]; SLOTS] =
        [const { [const { AtomicUsize::new(0) }; 3] }; SLOTS];
    static DEFERRED_LEN: AtomicUsize = AtomicUsize::new(0);

    pub struct DeferredFrees;

    fn watched(ptr: *mut u8) -> bool {
        let len = WATCHED_LEN.load(Ordering::Acquire).min(SLOTS);
        WATCHED[..len]
            .iter()
            .any(|w| w.load(Ordering::Relaxed) == ptr as usize)
    }

    // SAFETY: every call goes to the system allocator with the caller's arguments; a buffer
    // put aside is handed to it later, with its layout, exactly once.
    unsafe impl GlobalAlloc for DeferredFrees {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            if ARMED.load(Ordering::Acquire) && watched(ptr) {
                let k = DEFERRED_LEN.fetch_add(1, Ordering::AcqRel);
                if k < SLOTS {
                    let slot = &DEFERRED[k];
                    slot[0].store(ptr as usize, Ordering::Relaxed);
                    slot[1].store(layout.size(), Ordering::Relaxed);
                    slot[2].store(layout.align(), Ordering::Release);
                    return;
                }
            }
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// From now on, a watched buffer that is freed is put aside.
    pub fn arm() {
        DEFERRED_LEN.store(0, Ordering::Release);
        ARMED.store(true, Ordering::Release);
    }

    /// Stops putting buffers aside, frees those put aside, forgets the watched ones, and
    /// returns how many were put aside.
    pub fn disarm_and_free() -> usize {
        ARMED.store(false, Ordering::Release);
        let count = DEFERRED_LEN.swap(0, Ordering::AcqRel).min(SLOTS);
        for slot in &DEFERRED[..count] {
            let align = slot[2].load(Ordering::Acquire);
            let ptr = slot[0].load(Ordering::Relaxed) as *mut u8;
            let size = slot[1].load(Ordering::Relaxed);
            let layout =
                Layout::from_size_align(size, align).expect("the layout it was freed with");
            // SAFETY: `dealloc` put this buffer aside with this layout and did not free it.
            unsafe { System.dealloc(ptr, layout) };
        }
        WATCHED_LEN.store(0, Ordering::Release);
        count
    }

    /// Watches the buffer of every gradient in `grads` on ndarray (the address of its first
    /// element, where the buffer of a gradient that owns one starts), and returns a handle
    /// to each gradient it cannot watch, to be dropped after the step.
    pub fn watch_gradients<M: Module<B>>(model: &M, grads: &GradientsParams) -> Vec<Box<dyn Any>> {
        struct Watch<'a>(&'a GradientsParams, Vec<Box<dyn Any>>);
        impl ModuleVisitor<B> for Watch<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let Some(grad) = self.0.get::<Inner, D>(param.id) else {
                    return;
                };
                let k = WATCHED_LEN.load(Ordering::Acquire);
                match buffer_address(grad.clone()) {
                    Some(address) if k < SLOTS => {
                        WATCHED[k].store(address, Ordering::Relaxed);
                        WATCHED_LEN.store(k + 1, Ordering::Release);
                    }
                    _ => self.1.push(Box::new(grad)),
                }
            }
        }
        let mut watch = Watch(grads, vec![]);
        model.visit(&mut watch);
        watch.1
    }

    /// The address of the first element of `grad`'s buffer on ndarray.
    #[cfg(feature = "ndarray")]
    fn buffer_address<const D: usize>(grad: Tensor<Inner, D>) -> Option<usize> {
        use burn::backend::ndarray::NdArrayTensor;

        let mut slot = Some(grad.into_primitive().tensor());
        (&mut slot as &mut dyn Any)
            .downcast_mut::<Option<NdArrayTensor>>()
            .and_then(Option::take)
            .and_then(|t| match t {
                NdArrayTensor::F32(s) => Some(s.view().as_ptr() as usize),
                NdArrayTensor::F64(s) => Some(s.view().as_ptr() as usize),
                _ => None,
            })
    }

    #[cfg(not(feature = "ndarray"))]
    fn buffer_address<const D: usize>(_: Tensor<Inner, D>) -> Option<usize> {
        None
    }
}

fn tensor_count<M: Module<B>>(model: &M) -> usize {
    struct Count(usize);
    impl burn::module::ModuleVisitor<B> for Count {
        fn visit_float<const D: usize>(&mut self, _: &burn::module::Param<Tensor<B, D>>) {
            self.0 += 1;
        }
    }
    let mut count = Count(0);
    model.visit(&mut count);
    count.0
}

/// Reads one parameter value back, so that an asynchronous backend has finished the step.
fn wait_for<M: Module<B>>(model: &M) {
    struct First(bool);
    impl burn::module::ModuleVisitor<B> for First {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            if !self.0 {
                let _ = param.val().flatten::<1>(0, D - 1).slice(0..1).into_data();
                self.0 = true;
            }
        }
    }
    model.visit(&mut First(false));
}

fn child(name: &str, model: &str) {
    match model {
        "bert" => measure_with!(name, B, Bert<B>, measure()),
        "resnet" => measure_with!(name, B, ResNet<B>, measure()),
        other => panic!("unknown model {other}: bert | resnet"),
    }
}

fn main() {
    let args = Args::of_process();
    if let Some(name) = args.value("--child") {
        let model = args.value("--model").expect("--model");
        return child(&name, &model);
    }
    let models = args.list("--models", &["bert", "resnet"]);
    let names = args.optimizers();
    let run = |name: &str, model: &str| -> (f64, f64, f64) {
        let numbers = child_numbers(&["--child", name, "--model", model], 3);
        (numbers[0], numbers[1], numbers[2])
    };
    print_setting(backend::NAME);
    let mut results = vec![];
    let mut sizes = vec![f64::NAN; models.len()];
    for name in &names {
        let row: Vec<(f64, f64)> = models
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (ns, free, numel) = run(name, m);
                if numel.is_finite() {
                    sizes[i] = numel;
                }
                (ns, free)
            })
            .collect();
        results.push((name.to_string(), row));
    }
    let header: Vec<String> = models
        .iter()
        .zip(&sizes)
        .map(|(m, n)| {
            format!(
                "{m} ({:.1}M) step ns/param | {m} vs burn Adam | {m} freeing the gradients",
                n / 1e6
            )
        })
        .collect();
    println!("\n| optimizer | {} |", header.join(" | "));
    println!("|---|{}", "---|---|---|".repeat(models.len()));
    let adam: Vec<f64> = (0..models.len())
        .map(|i| {
            results
                .iter()
                .find(|(n, _)| n == "burn-adam")
                .map_or(f64::NAN, |(_, r)| r[i].0)
        })
        .collect();
    for (name, row) in &results {
        let cells: Vec<String> = row
            .iter()
            .zip(&adam)
            .map(|(&(ns, free), &base)| format!("{ns:.2} | {:.2}x | {free:.2}", ns / base))
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}
