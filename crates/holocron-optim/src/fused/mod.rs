//! Fused optimizer steps: one in-place pass over a parameter, its gradient and its state
//! (two where the rule needs a whole-tensor sum), instead of one pass and one fresh buffer
//! per tensor operation.
//!
//! Each optimizer's rule is written once, in `holocron-optim-core` (shared with the crate
//! for Burn 0.22), and so are its CPU loops (`holocron_optim_core::cpu`, `f32` and `f64`,
//! multi-threaded with rayon); this module runs them where the backend lets us reach its
//! buffers: the loops on Burn's ndarray backend ([`ndarray`]) and the CubeCL kernels on WGPU
//! and CUDA
//! (`f32`, [`cube`]). [`rule_step`] picks the path a step takes from the configuration's
//! [`Execution`] and the tensors, and hands the tensors back for Burn's composed
//! operations otherwise. Every path computes the same update: the golden tests run each
//! one against the Python reference.

#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub(crate) mod cube;
#[cfg(feature = "ndarray")]
mod ndarray;
mod step;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

pub(crate) use crate::rule::Real;
pub(crate) use holocron_optim_core::cpu::{Kernel, Lanes, Reduction};
pub(crate) use step::rule_step;

/// Whether the backend has a fused path for tensors of `dtype`.
#[cfg_attr(not(feature = "ndarray"), allow(clippy::extra_unused_type_parameters))]
pub(crate) fn supports<B: Backend>(dtype: DType) -> bool {
    #[cfg(feature = "ndarray")]
    if ndarray::is_ndarray::<B>() {
        return matches!(dtype, DType::F32 | DType::F64);
    }
    let _ = dtype;
    false
}

/// Whether [`run`] can take these tensors: a backend with a fused path, and a parameter
/// and gradient of the same `f32` or `f64` dtype.
pub(crate) fn supported<B: Backend, const D: usize>(
    param: &Tensor<B, D>,
    grad: &Tensor<B, D>,
) -> bool {
    supports::<B>(param.dtype()) && grad.dtype() == param.dtype()
}

/// The sums of `reduction` over `rows`, which [`supports`] must accept (all of one dtype
/// and size).
pub(crate) fn reduce<B: Backend, R: Reduction<K>, const K: usize>(
    reduction: &R,
    rows: &[Tensor<B, 1>],
) -> [f64; K] {
    #[cfg(feature = "ndarray")]
    if ndarray::is_ndarray::<B>() {
        return ndarray::reduce(reduction, rows);
    }
    let _ = (reduction, rows);
    unreachable!("fused::reduce called without a fused path (check `supports` first)")
}

/// The tensors a [`Kernel`] runs on: the parameter, its gradient (none for a wrapper's
/// sync, whose kernel sees an empty gradient lane) and the state, which may have another
/// rank than the parameter (a wrapper keeps flat copies).
pub(crate) type KernelInput<B, const D: usize, const S: usize> =
    (Tensor<B, D>, Option<Tensor<B, D>>, Vec<Tensor<B, S>>);

/// Runs `kernel` on the tensors and returns the parameter and the state, in the order given.
/// Lanes are flat, and no tensor is reshaped (Burn's ndarray reshape copies).
///
/// # Panics
///
/// Unless [`supported`] said yes for the parameter and the gradient, or if a state tensor
/// does not have the parameter's number of elements.
pub(crate) fn run<B: Backend, const D: usize, const S: usize, K: Kernel>(
    kernel: &K,
    (param, grad, state): KernelInput<B, D, S>,
) -> (Tensor<B, D>, Vec<Tensor<B, S>>) {
    #[cfg(feature = "ndarray")]
    if ndarray::is_ndarray::<B>() {
        return ndarray::run(kernel, param, grad, state);
    }
    let _ = (kernel, param, grad, state);
    unreachable!("fused::run called without a fused path (check `supported` first)")
}

/// Which path two steps (without, then with state) of `optim` took on backend `B`, for
/// tensors of `n` elements of the backend's default float type.
#[cfg(test)]
pub(crate) fn paths_of<B: Backend, O: burn::optim::SimpleOptimizer<B>>(
    optim: O,
    n: usize,
) -> crate::StepPaths {
    let device = Default::default();
    let full = |v: f64| Tensor::<B, 1>::full([n], v, &device);
    let before = crate::step_paths();
    let (param, state) = optim.step(1e-2, full(1.0), full(0.5), None);
    let _ = optim.step(1e-2, param, full(-0.5), state);
    crate::step_paths().since(before)
}

/// [`paths_of`] every optimizer, each also with its optional lanes (momentum, AMSGrad).
#[cfg(test)]
pub(crate) fn paths_of_every_optimizer<B: Backend>(
    execution: crate::Execution,
    n: usize,
) -> Vec<crate::StepPaths> {
    use crate::*;
    macro_rules! each {
        ($($config:expr),* $(,)?) => {
            vec![$(paths_of::<B, _>($config.with_execution(execution).build(), n)),*]
        };
    }
    each![
        LarsConfig::new(),
        LarsConfig::new().with_momentum(0.9),
        LambConfig::new(),
        RaLarsConfig::new(),
        TAdamConfig::new(),
        TAdamConfig::new().with_amsgrad(true),
        AdaBeliefConfig::new(),
        AdaBeliefConfig::new().with_amsgrad(true),
        AdamPConfig::new().with_amsgrad(true),
        AdEMAMixConfig::new(),
        AdanConfig::new(),
        AdanConfig::new().with_amsgrad(true),
    ]
}

/// What [`paths_of_every_optimizer`] gives when every step took `path`.
#[cfg(test)]
pub(crate) fn every_step_on(path: crate::StepPath) -> Vec<crate::StepPaths> {
    let mut two = crate::StepPaths::default();
    match path {
        crate::StepPath::Composed => two.composed = 2,
        crate::StepPath::CpuLoops => two.cpu_loops = 2,
        crate::StepPath::Kernels => two.kernels = 2,
    }
    vec![two; 12]
}

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use burn::backend::NdArray;

    use super::{every_step_on, paths_of_every_optimizer};
    use crate::*;

    fn paths(execution: Execution) -> Vec<StepPaths> {
        paths_of_every_optimizer::<NdArray<f64>>(execution, 9)
    }

    #[test]
    fn every_optimizer_takes_the_cpu_loops_on_ndarray() {
        assert_eq!(paths(Execution::Auto), every_step_on(StepPath::CpuLoops));
        assert_eq!(paths(Execution::Fused), every_step_on(StepPath::CpuLoops));
    }

    /// Three steps of `optim` on a tensor of several chunks (uneven values, so that every
    /// chunk's sum differs), run on a pool of `threads` threads; the bits of the parameter
    /// and of every state tensor after them.
    fn stepped_bits<O: burn::optim::SimpleOptimizer<NdArray>>(
        optim: &O,
        threads: usize,
    ) -> Vec<Vec<u64>> {
        use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
        use burn::tensor::{Tensor, TensorData};
        let n = 5 * holocron_optim_core::cpu::CHUNK + 123;
        let device = Default::default();
        let wave = |seed: f32| {
            let values: Vec<f32> = (0..n)
                .map(|i| ((i as f32 * 0.618 + seed).sin() * 1e3).fract() * 0.1 + seed * 1e-3)
                .collect();
            Tensor::<NdArray, 1>::from_data(TensorData::new(values, [n]), &device)
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
            assert_eq!(step_paths().since(before).cpu_loops, 3, "the CPU loops ran");
            // Widened first: the element type follows the device's default float type,
            // which the f64 tests of this crate may have set.
            let bits = |t: Tensor<NdArray, 1>| -> Vec<u64> {
                let values = t.into_data().convert::<f64>().to_vec::<f64>().unwrap();
                values.iter().map(|v| v.to_bits()).collect()
            };
            // The state's bits: its record in full precision.
            let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
            // (LARS without momentum keeps none.)
            let bytes = state.map_or(vec![], |state| {
                Recorder::<NdArray>::record(&recorder, state, ()).unwrap()
            });
            vec![bits(param), bytes.iter().map(|&b| u64::from(b)).collect()]
        })
    }

    /// Whole-tensor sums are added in chunk order, so a step, and a run resumed under
    /// another thread count, gives the same bits under 1, 2 and 3 threads.
    #[test]
    fn steps_are_bit_identical_under_any_thread_count() {
        fn check<O: burn::optim::SimpleOptimizer<NdArray>>(name: &str, optim: O) {
            let one = stepped_bits(&optim, 1);
            for threads in [2, 3] {
                assert!(
                    stepped_bits(&optim, threads) == one,
                    "{name}: {threads} threads differ from one"
                );
            }
        }
        check("Lars", LarsConfig::new().with_momentum(0.9).build());
        check("Lamb", LambConfig::new().build());
        check("TAdam", TAdamConfig::new().build());
        check("AdamP", AdamPConfig::new().build());
    }

    /// Every instruction set the CPU has, forced in turn, gives the bits of the baseline
    /// loops for every rule (each with its optional lanes), so the golden tests, run on
    /// the widest, hold for all of them.
    #[test]
    fn steps_are_bit_identical_on_every_instruction_set() {
        use holocron_optim_core::cpu::isa::{CHUNKS_RUN, force};
        use std::sync::atomic::Ordering;
        fn on<O: burn::optim::SimpleOptimizer<NdArray>>(
            optim: &O,
            v: Vectorization,
        ) -> Vec<Vec<u64>> {
            force(v);
            let before = CHUNKS_RUN[v as usize].load(Ordering::Relaxed);
            let bits = stepped_bits(optim, 2);
            assert!(
                CHUNKS_RUN[v as usize].load(Ordering::Relaxed) > before,
                "the {v:?} loops ran"
            );
            bits
        }
        fn check<O: burn::optim::SimpleOptimizer<NdArray>>(name: &str, optim: O) {
            let baseline = on(&optim, Vectorization::Baseline);
            for v in Vectorization::available() {
                assert!(
                    on(&optim, v) == baseline,
                    "{name}: {v:?} differs from the baseline"
                );
            }
        }
        check("Lars", LarsConfig::new().build());
        check(
            "Lars momentum",
            LarsConfig::new().with_momentum(0.9).build(),
        );
        check("Lamb", LambConfig::new().with_weight_decay(1e-2).build());
        check("RaLars", RaLarsConfig::new().build());
        check("TAdam", TAdamConfig::new().with_amsgrad(true).build());
        check(
            "AdaBelief",
            AdaBeliefConfig::new().with_amsgrad(true).build(),
        );
        check("AdamP", AdamPConfig::new().with_amsgrad(true).build());
        check("Adan", AdanConfig::new().with_amsgrad(true).build());
        check(
            "AdEMAMix",
            AdEMAMixConfig::new().with_alpha_warmup(Some(5)).build(),
        );
        force(Vectorization::widest());
        eprintln!("instruction sets checked: {:?}", Vectorization::available());
    }

    #[test]
    fn composed_takes_the_composed_path() {
        assert_eq!(
            paths(Execution::Composed),
            every_step_on(StepPath::Composed)
        );
    }
}
