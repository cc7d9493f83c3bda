//! The fast paths on Burn 0.22, the CPU loops (Flex and ndarray, each compiled in) and the
//! kernels (WGPU): which steps take them (every optimizer through `ModuleOptimizer` on an
//! autodiff model, and none with `Execution::Composed`), that they write a parameter's own
//! buffer in place (CPU) and copy a shared one first, that a gradient in another layout
//! steps as its row-major copy, that the bits do not depend on the thread count or on the
//! instruction set, and that they agree with the composed operations after a real backward
//! pass. Their numbers against the Python reference are the golden suite's
//! (`tests/golden.rs`, both paths).

mod common;

use burn::module::{Module, Param};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};
use common::*;
use holocron_optim_burn022::*;

/// The CPU devices of this build whose tensors the loops take, by name.
// Burn 0.22 deprecates its ndarray backend (for Flex); the `ndarray` feature still picks it.
#[allow(deprecated)]
fn cpu_devices() -> Vec<(&'static str, Device)> {
    [
        #[cfg(feature = "ndarray")]
        ("ndarray", Device::ndarray()),
        #[cfg(feature = "flex")]
        ("flex", Device::flex()),
    ]
    .into_iter()
    .collect()
}

/// Every device of this build with a fast path, by name, with that path: the CPU devices
/// (the loops) and WGPU's default adapter (the kernels).
fn fast_devices() -> Vec<(&'static str, Device, StepPath)> {
    let cpu = cpu_devices()
        .into_iter()
        .map(|(name, device)| (name, device, StepPath::CpuLoops));
    #[cfg(feature = "wgpu")]
    let cpu = cpu.chain([(
        "wgpu",
        Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        StepPath::Kernels,
    )]);
    cpu.collect()
}

/// Every optimizer, each also with its optional lanes (momentum, AMSGrad).
fn every_optimizer() -> Vec<AnyConfig> {
    vec![
        AnyConfig::Lars(LarsConfig::new()),
        AnyConfig::Lars(LarsConfig::new().with_momentum(0.9)),
        AnyConfig::Lamb(LambConfig::new().with_weight_decay(1e-2)),
        AnyConfig::RaLars(RaLarsConfig::new()),
        AnyConfig::TAdam(TAdamConfig::new()),
        AnyConfig::TAdam(TAdamConfig::new().with_amsgrad(true)),
        AnyConfig::AdaBelief(AdaBeliefConfig::new()),
        AnyConfig::AdaBelief(AdaBeliefConfig::new().with_amsgrad(true)),
        AnyConfig::AdamP(AdamPConfig::new().with_amsgrad(true)),
        AnyConfig::Adan(AdanConfig::new()),
        AnyConfig::Adan(AdanConfig::new().with_amsgrad(true)),
        AnyConfig::AdEMAMix(AdEMAMixConfig::new().with_alpha_warmup(Some(5))),
    ]
}

/// The steps two `ModuleOptimizer` steps of `any` on a model of four parameters (ranks 1 to
/// 4, with autodiff) took, by path.
fn paths_of(any: &AnyConfig, device: &Device) -> StepPaths {
    let (specs, shapes) = mixed_specs();
    let (mut set, slots) = ParamSet::new(&specs, DType::F32, device);
    let mut optim = any.init();
    let before = step_paths();
    for step in 0..2 {
        let grads: Vec<Option<Vec<f64>>> = shapes
            .iter()
            .map(|s| Some(wave(s.iter().product(), step as f64)))
            .collect();
        let grads = gradients(&set, &slots, &shapes, &grads, DType::F32, device);
        set = optim.step(1e-2, set, grads);
    }
    step_paths().since(before)
}

#[test]
fn every_optimizer_takes_the_fast_path_through_module_optimizer() {
    let devices = fast_devices();
    assert!(
        !devices.is_empty(),
        "no backend with a fast path in this build"
    );
    for (backend, device, path) in devices {
        for any in every_optimizer() {
            let name = any.name();
            let auto = paths_of(&any, &device);
            assert_eq!(
                (auto.on(path), auto.composed),
                (8, 0),
                "{name} on {backend}: {auto:?}"
            );
            let composed = paths_of(&any.clone().with_execution(Execution::Composed), &device);
            assert_eq!(
                (composed.composed, composed.cpu_loops + composed.kernels),
                (8, 0),
                "{name} on {backend} with Execution::Composed: {composed:?}"
            );
        }
    }
}

/// Where a tensor's elements live.
// Burn 0.22 deprecates its ndarray backend (for Flex); the `ndarray` feature still picks it.
#[allow(deprecated)]
fn address(backend: &str, t: &Tensor<2>) -> usize {
    match backend {
        #[cfg(feature = "ndarray")]
        "ndarray" => {
            use burn::backend::ndarray::{NdArray, NdArrayTensor};
            match t.clone().try_into_primitive::<NdArray>().unwrap() {
                NdArrayTensor::F32(storage) => storage.into_shared().as_ptr() as usize,
                other => panic!("an f32 tensor, got {other:?}"),
            }
        }
        #[cfg(feature = "flex")]
        "flex" => {
            use burn::backend::flex::Flex;
            let primitive = t.clone().try_into_primitive::<Flex>().unwrap();
            primitive.bytes().as_ptr() as usize
        }
        other => panic!("no CPU backend {other}"),
    }
}

fn filled(value: f64, device: &Device) -> Tensor<2> {
    Tensor::full([64, 48], value, (device, DType::F32))
}

#[test]
fn unique_buffers_are_updated_in_place() {
    for (backend, device) in cpu_devices() {
        let optim = AdanConfig::new().build();
        let param = filled(0.5, &device);
        let at = address(backend, &param);
        let (param, state) = optim.step(1e-2, param, filled(0.1, &device), None);
        assert_eq!(
            address(backend, &param),
            at,
            "{backend}: the first step moved the parameter"
        );
        let state = state.expect("Adan keeps state");
        let moment_at = address(backend, state.get("moment_1").unwrap());
        let (param, state) = optim.step(1e-2, param, filled(-0.2, &device), Some(state));
        assert_eq!(
            address(backend, &param),
            at,
            "{backend}: a later step moved the parameter"
        );
        let moment = state.unwrap().get("moment_1").unwrap().clone();
        assert_eq!(
            address(backend, &moment),
            moment_at,
            "{backend}: the state moved"
        );
    }
}

#[test]
fn shared_buffers_are_copied_before_writing() {
    for (backend, device, path) in fast_devices() {
        let optim = LambConfig::new().build();
        let param = filled(0.5, &device);
        let kept = param.clone();
        let before = step_paths();
        let (param, _) = optim.step(1e-2, param, filled(0.1, &device), None);
        assert_eq!(
            step_paths().since(before).on(path),
            1,
            "{backend}: the fast path ran"
        );
        if path == StepPath::CpuLoops {
            assert_ne!(address(backend, &param), address(backend, &kept));
        }
        assert!(
            values(kept).iter().all(|&x| x == 0.5),
            "{backend}: the kept clone changed"
        );
        assert!(
            values(param).iter().all(|&x| x < 0.5),
            "{backend}: the parameter did not move"
        );
    }
}

/// An empty parameter (no elements, so no grid for the kernels) still steps: on the
/// tensor operations where the kernels would run, and keeps its shape.
#[test]
fn an_empty_parameter_steps() {
    for (backend, device, path) in fast_devices() {
        let optim = LambConfig::new().build();
        let empty = || Tensor::<2>::zeros([0, 48], (&device, DType::F32));
        let before = step_paths();
        let (param, state) = optim.step(1e-2, empty(), empty(), None);
        let (param, _) = optim.step(1e-2, param, empty(), state);
        let took = step_paths().since(before);
        if path == StepPath::Kernels {
            assert_eq!(took.composed, 2, "{backend}: {took:?}");
        }
        assert_eq!(param.dims(), [0, 48], "{backend}");
    }
}

/// The bits of a tensor's values, widened to f64.
fn bits<const D: usize>(t: Tensor<D>) -> Vec<u64> {
    values(t).iter().map(|v| v.to_bits()).collect()
}

/// A gradient laid out as a convolution weight's from Burn's backward (its first two axes
/// swapped) steps the parameter exactly as the same values in row-major order, step after
/// step, on a tensor of several chunks of the loops (on WGPU, of several cubes).
#[test]
fn a_permuted_gradient_steps_as_a_row_major_one() {
    for (backend, device, path) in fast_devices() {
        let optim = LambConfig::new().with_weight_decay(1e-2).build();
        let shape = [64, 96, 3, 3];
        let start: Vec<f32> = (0..64 * 96 * 9).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |permuted: bool| {
            let mut param = Tensor::<4>::from_data(TensorData::new(start.clone(), shape), &device);
            let mut state = None;
            for k in 0..3 {
                device.seed(k);
                let normal = Distribution::Normal(0.0, 1.0);
                let grad = Tensor::<4>::random([96, 64, 3, 3], normal, &device).swap_dims(0, 1);
                let grad = if permuted {
                    grad
                } else {
                    Tensor::from_data(grad.into_data(), &device)
                };
                (param, state) = optim.step(1e-2, param, grad, state);
            }
            bits(param)
        };
        let before = step_paths();
        let (permuted, row_major) = (run(true), run(false));
        assert_eq!(
            step_paths().since(before).on(path),
            6,
            "{backend}: the fast path ran"
        );
        let start_bits: Vec<u64> = start.iter().map(|&v| f64::from(v).to_bits()).collect();
        assert_ne!(permuted, start_bits, "{backend}: the parameter moved");
        assert!(
            permuted == row_major,
            "{backend}: a permuted gradient stepped differently"
        );
    }
}

/// Three steps of `optim` on a tensor of several chunks of the loops (uneven values, so
/// that every chunk's sum differs) on a pool of `threads` threads: the bits of the
/// parameter and of every state tensor.
fn stepped_bits<R: OptimizerRule>(
    optim: &RuleOptimizer<R>,
    device: &Device,
    threads: usize,
) -> Vec<Vec<u64>> {
    let n = 5 * holocron_optim_core::cpu::CHUNK + 123;
    let wave = |seed: f32| {
        let values: Vec<f32> = (0..n)
            .map(|i| ((i as f32 * 0.618 + seed).sin() * 1e3).fract() * 0.1 + seed * 1e-3)
            .collect();
        Tensor::<1>::from_data(TensorData::new(values, [n]), device)
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let before = step_paths();
        let (mut param, mut state) = (wave(1.0), None);
        for k in 0..3 {
            (param, state) = optim.step(1e-2, param, wave(k as f32 + 2.0), state);
        }
        assert_eq!(step_paths().since(before).cpu_loops, 3, "the loops ran");
        let mut all = vec![bits(param)];
        let state = state.expect("a state");
        all.extend(state.tensors().iter().map(|t| bits(t.clone())));
        all
    })
}

/// Whole-tensor sums are added in chunk order, so a step, and a run resumed under another
/// thread count, gives the same bits under 1, 2 and 3 threads.
#[test]
fn steps_are_bit_identical_under_any_thread_count() {
    for (backend, device) in cpu_devices() {
        let check = |name: &str, one: &dyn Fn(usize) -> Vec<Vec<u64>>| {
            let reference = one(1);
            for threads in [2, 3] {
                assert!(
                    one(threads) == reference,
                    "{name} on {backend}: {threads} threads differ from one"
                );
            }
        };
        let lars = LarsConfig::new().with_momentum(0.9).build();
        check("Lars", &|t| stepped_bits(&lars, &device, t));
        let lamb = LambConfig::new().build();
        check("Lamb", &|t| stepped_bits(&lamb, &device, t));
        let tadam = TAdamConfig::new().build();
        check("TAdam", &|t| stepped_bits(&tadam, &device, t));
        let adamp = AdamPConfig::new().build();
        check("AdamP", &|t| stepped_bits(&adamp, &device, t));
    }
}

/// A layer's weight and bias, trained by a real forward and backward pass.
#[derive(Module, Debug)]
struct Layer {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

/// Five training steps of `any` on [`Layer`] (the parameters' values after them, and the
/// steps by path): the gradients are those of Burn's backward, in whatever layout it gives.
fn trained(any: &AnyConfig, device: &Device) -> (Vec<f64>, StepPaths) {
    let autodiff = device.clone().autodiff();
    let weight: Vec<f32> = (0..24 * 16)
        .map(|i| (i as f32 * 0.13).cos() * 0.3)
        .collect();
    let mut layer = Layer {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(weight, [24, 16]),
            &autodiff,
        )),
        bias: Param::from_tensor(Tensor::zeros([16], &autodiff)),
    };
    let inputs: Vec<f32> = (0..8 * 24).map(|i| (i as f32 * 0.71).sin()).collect();
    let x = Tensor::<2>::from_data(TensorData::new(inputs, [8, 24]), &autodiff);
    let mut optim = any.init();
    let before = step_paths();
    for _ in 0..5 {
        let y = x.clone().matmul(layer.weight.val()) + layer.bias.val().unsqueeze();
        let loss = y.tanh().sub_scalar(0.25).square().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        layer = optim.step(1e-2, layer, grads);
    }
    let took = step_paths().since(before);
    let mut params = values(layer.weight.val());
    params.extend(values(layer.bias.val()));
    (params, took)
}

/// After a real backward pass (a matrix product's weight gradient, a broadcast bias's), the
/// fast paths and the composed operations train the same parameters, to f32 rounding.
#[test]
fn the_fast_paths_and_the_composed_operations_train_alike() {
    for (backend, device, path) in fast_devices() {
        for any in every_optimizer() {
            let name = any.name();
            let (fast, on_fast) = trained(&any, &device);
            let (composed, on_composed) =
                trained(&any.clone().with_execution(Execution::Composed), &device);
            assert_eq!(
                (on_fast.on(path), on_fast.composed),
                (10, 0),
                "{name} on {backend}"
            );
            assert_eq!(
                (
                    on_composed.composed,
                    on_composed.cpu_loops + on_composed.kernels
                ),
                (10, 0),
                "{name} on {backend}"
            );
            for (i, (a, b)) in fast.iter().zip(&composed).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1e-2),
                    "{name} on {backend}: parameter value {i}: {path:?} {a}, composed {b}"
                );
            }
        }
    }
}
