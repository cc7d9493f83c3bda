//! The fused step against the composed one: every optimizer, with every flag that changes
//! its arithmetic or its state, and both wrappers (their sync is fused too), step the same
//! parameters with the same pseudo-random gradients twice, once with `fused = true` (the
//! default) and once with `fused = false`, and the two trajectories must agree to
//! rounding, in f32 and in f64.
//!
//! The parameter set is chosen to reach every branch of the fused paths: a zero tensor (the
//! trust ratio's and the projection's zero-norm cases), ranks 1 to 4, a gradient that is a
//! transposed view (not row-major in memory), a tensor of 66 000 elements (more than one
//! parallel chunk on ndarray) and one of 266 240 (more than one element per unit in the GPU
//! kernels' summing pass, whose grid stops at 1024 cubes of 256 units).
//!
//! The test runs on the backend the cargo features choose: ndarray in f32 and f64, or the
//! GPU backend (WGPU, CUDA) in f32, where the fused path is the CubeCL kernels.

mod common;

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
use burn::backend::{Autodiff, NdArray};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Element, Tensor, TensorData};
use common::{AnyConfig, ParamSet, Slot, WithOptimizer, Wrap, WrapperConfig};
use holocron_optim::checkpoint::CheckedRecord;
use holocron_optim::*;
use rstest::rstest;

const STEPS: usize = 6;
const LR: f64 = 1e-2;

fn shapes() -> Vec<Vec<usize>> {
    vec![
        vec![7],
        vec![5],
        vec![40, 30],
        vec![2, 3, 4, 5],
        vec![300, 220],
        vec![520, 512],
    ]
}

/// `n` values in `[-scale, scale)` from a SplitMix64 stream: reproducible and unstructured.
fn uniform(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn tensor<B: Backend, const D: usize>(shape: &[usize], values: &[f64]) -> Tensor<B, D> {
    let data = TensorData::new(values.to_vec(), shape.to_vec()).convert::<B::FloatElem>();
    Tensor::from_data(
        data,
        (&Default::default(), <B::FloatElem as Element>::dtype()),
    )
}

/// The gradients of one step; the rank-2 ones are built transposed and transposed back,
/// so that they reach the optimizer as strided views.
fn gradients<B: AutodiffBackend>(
    set: &ParamSet<B>,
    slots: &[Slot],
    step: usize,
) -> GradientsParams {
    let mut grads = GradientsParams::new();
    for (k, (slot, shape)) in slots.iter().zip(shapes()).enumerate() {
        let n = shape.iter().product();
        let values = uniform(n, 1000 * step as u64 + k as u64, 1.0);
        let id = set.id(*slot);
        match slot.rank {
            1 => grads.register(id, tensor::<B::InnerBackend, 1>(&shape, &values)),
            2 => {
                let (rows, cols) = (shape[0], shape[1]);
                let transposed: Vec<f64> = (0..cols)
                    .flat_map(|c| (0..rows).map(move |r| (r, c)))
                    .map(|(r, c)| values[r * cols + c])
                    .collect();
                let grad = tensor::<B::InnerBackend, 2>(&[cols, rows], &transposed).transpose();
                grads.register(id, grad)
            }
            3 => grads.register(id, tensor::<B::InnerBackend, 3>(&shape, &values)),
            _ => grads.register(id, tensor::<B::InnerBackend, 4>(&shape, &values)),
        }
    }
    grads
}

/// Steps the parameter set and returns every parameter's values after every step.
struct Trajectory;

impl<B: AutodiffBackend> WithOptimizer<B, ParamSet<B>> for Trajectory {
    type Output = Vec<Vec<Vec<f64>>>;

    fn run<O: CheckedRecord<ParamSet<B>, B>>(self, mut optim: O) -> Self::Output {
        let specs: Vec<_> = shapes()
            .into_iter()
            .enumerate()
            .map(|(k, shape)| {
                let n = shape.iter().product();
                // The first tensor is all zeros: its norm is 0.
                let scale = if k == 0 { 0.0 } else { 1.0 };
                (shape, uniform(n, 7 + k as u64, scale))
            })
            .collect();
        let (mut set, slots) = ParamSet::<B>::new(&specs, &Default::default());
        let mut trajectory = vec![];
        for step in 0..STEPS {
            let grads = gradients(&set, &slots, step);
            set = optim.step(LR, set, grads);
            trajectory.push(slots.iter().map(|s| set.values(*s)).collect());
        }
        trajectory
    }
}

/// The configuration of a case, and its wrapper (period 4, so that six steps hold a sync
/// and end in the middle of a window).
fn case(name: &str) -> (AnyConfig, Option<WrapperConfig>) {
    let lookahead = || WrapperConfig::Lookahead(LookaheadConfig::new().with_sync_period(4));
    let scout = || WrapperConfig::Scout(ScoutConfig::new().with_sync_period(4));
    match name {
        "lookahead_lamb" => (config("lamb"), Some(lookahead())),
        "lookahead_sgd" => (AnyConfig::Sgd, Some(lookahead())),
        "scout_adabelief" => (config("adabelief"), Some(scout())),
        // A zero floor: the rate is 1 - coherence, so the coherence itself is compared.
        "scout_sgd_unclamped" => (
            AnyConfig::Sgd,
            Some(WrapperConfig::Scout(
                ScoutConfig::new().with_sync_period(4).with_sync_rate(0.0),
            )),
        ),
        name => (config(name), None),
    }
}

fn config(name: &str) -> AnyConfig {
    use AnyConfig::*;
    match name {
        "lars" => Lars(LarsConfig::new()),
        "lars_momentum_dampening_wd" => Lars(
            LarsConfig::new()
                .with_momentum(0.9)
                .with_dampening(0.1)
                .with_weight_decay(0.05),
        ),
        "lars_nesterov_clip" => Lars(
            LarsConfig::new()
                .with_momentum(0.9)
                .with_nesterov(true)
                .with_scale_clip((0.5, 2.0)),
        ),
        "lamb" => Lamb(LambConfig::new()),
        "lamb_wd_clip_no_bias_correction" => Lamb(
            LambConfig::new()
                .with_weight_decay(0.05)
                .with_scale_clip((0.5, 2.0))
                .with_bias_correction(false),
        ),
        "ralars" => RaLars(RaLarsConfig::new()),
        // beta_2 = 0.5 makes the variance tractable from step 2, so the rectified branch runs.
        "ralars_rectified_wd_clip" => RaLars(
            RaLarsConfig::new()
                .with_beta_2(0.5)
                .with_weight_decay(0.05)
                .with_scale_clip((0.5, 2.0)),
        ),
        "ralars_force_adaptive" => RaLars(RaLarsConfig::new().with_force_adaptive_momentum(true)),
        "tadam" => TAdam(TAdamConfig::new()),
        "tadam_amsgrad_dof_wd" => TAdam(
            TAdamConfig::new()
                .with_amsgrad(true)
                .with_dof(Some(2.0))
                .with_weight_decay(0.05),
        ),
        "adabelief" => AdaBelief(AdaBeliefConfig::new()),
        "adabelief_amsgrad_wd" => AdaBelief(
            AdaBeliefConfig::new()
                .with_amsgrad(true)
                .with_weight_decay(0.05),
        ),
        "adamp" => AdamP(AdamPConfig::new()),
        // A large delta projects every tensor.
        "adamp_amsgrad_delta_wd" => AdamP(
            AdamPConfig::new()
                .with_amsgrad(true)
                .with_delta(10.0)
                .with_weight_decay(0.05),
        ),
        "adan" => Adan(AdanConfig::new()),
        "adan_amsgrad_wd" => Adan(AdanConfig::new().with_amsgrad(true).with_weight_decay(0.05)),
        "ademamix" => AdEMAMix(AdEMAMixConfig::new()),
        "ademamix_alpha_wd" => AdEMAMix(
            AdEMAMixConfig::new()
                .with_alpha(8.0)
                .with_beta_3(0.5)
                .with_weight_decay(0.05),
        ),
        other => panic!("unknown case {other}"),
    }
}

/// The largest difference between two trajectories, relative to the value (to 0.01 for
/// values below it, as in the golden test).
fn difference(a: &[Vec<Vec<f64>>], b: &[Vec<Vec<f64>>]) -> f64 {
    let mut worst = 0.0f64;
    for (step_a, step_b) in a.iter().zip(b) {
        for (pa, pb) in step_a.iter().zip(step_b) {
            assert_eq!(pa.len(), pb.len());
            for (x, y) in pa.iter().zip(pb) {
                let d = (x - y).abs() / y.abs().max(1e-2);
                assert!(d.is_finite(), "non-finite value: {x} vs {y}");
                worst = worst.max(d);
            }
        }
    }
    worst
}

fn compare<B: AutodiffBackend>(name: &str, tol: f64) {
    let run = |fused: bool| {
        let (config, wrapper) = case(name);
        let job = Wrap {
            wrapper: wrapper.map(|w| w.with_fused(fused)),
            job: Trajectory,
        };
        let before = step_paths();
        let trajectory = config.with_fused(fused).with::<B, ParamSet<B>, _>(job);
        (trajectory, step_paths().since(before))
    };
    let ((fused, fused_paths), (composed, composed_paths)) = (run(true), run(false));
    // Each comparison is only worth something if the two runs took the paths it names.
    let optimizer_steps = fused_paths.composed + fused_paths.cpu_loops + fused_paths.kernels;
    if matches!(case(name).0, AnyConfig::Sgd) {
        assert_eq!(
            optimizer_steps, 0,
            "{name}: Burn's SGD steps are not this crate's"
        );
    } else {
        assert!(optimizer_steps > 0, "{name}: no step of this crate ran");
        assert_eq!(
            fused_paths.cpu_loops + fused_paths.kernels,
            optimizer_steps,
            "{name}: the fused run took the composed path ({fused_paths:?})"
        );
        assert_eq!(
            composed_paths.composed, optimizer_steps,
            "{name}: the composed run took a fused path ({composed_paths:?})"
        );
    }
    let worst = difference(&fused, &composed);
    let moved = difference(&fused[STEPS - 1..], &fused[..1]);
    println!("{name}: fused vs composed {worst:.2e}");
    assert!(
        worst <= tol,
        "{name}: fused and composed steps differ by {worst:.2e} (tolerance {tol:.0e})"
    );
    // A trajectory that never left its first step would compare equal for any rule.
    assert!(moved > 0.0, "{name}: the parameters did not move");
}

#[rstest]
fn fused_matches_composed(
    #[values(
        "lars",
        "lars_momentum_dampening_wd",
        "lars_nesterov_clip",
        "lamb",
        "lamb_wd_clip_no_bias_correction",
        "ralars",
        "ralars_rectified_wd_clip",
        "ralars_force_adaptive",
        "tadam",
        "tadam_amsgrad_dof_wd",
        "adabelief",
        "adabelief_amsgrad_wd",
        "adamp",
        "adamp_amsgrad_delta_wd",
        "adan",
        "adan_amsgrad_wd",
        "ademamix",
        "ademamix_alpha_wd",
        "lookahead_lamb",
        "lookahead_sgd",
        "scout_adabelief",
        "scout_sgd_unclamped"
    )]
    name: &str,
) {
    // f32 on ndarray: the fused path sums norms in f64, the composed one in f32.
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    {
        compare::<Autodiff<NdArray<f32>>>(name, 2e-5);
        compare::<Autodiff<NdArray<f64>>>(name, 1e-11);
    }
    // On the GPU both paths sum in f32, in different orders.
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    compare::<holocron_optim_suite::backend::Autodiff>(name, 2e-5);
}

/// A parameter still referenced elsewhere (a snapshot, a clone kept by the caller) is
/// copied before the fused step writes, never changed under the other owner's feet.
#[rstest]
fn shared_parameter_is_not_overwritten(
    #[values("lamb", "adan", "lars_momentum_dampening_wd")] name: &str,
) {
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    type B = Autodiff<NdArray<f32>>;
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    type B = holocron_optim_suite::backend::Autodiff;
    struct KeepClone;
    impl WithOptimizer<B, ParamSet<B>> for KeepClone {
        type Output = ();
        fn run<O: CheckedRecord<ParamSet<B>, B>>(self, mut optim: O) {
            let specs: Vec<_> = shapes()
                .into_iter()
                .enumerate()
                .map(|(k, shape)| {
                    let n = shape.iter().product();
                    (shape, uniform(n, 70 + k as u64, 1.0))
                })
                .collect();
            let (mut set, slots) = ParamSet::<B>::new(&specs, &Default::default());
            for step in 0..3 {
                let kept: Vec<Vec<f64>> = slots.iter().map(|s| set.values(*s)).collect();
                let clones = set.clone();
                let grads = gradients(&set, &slots, step);
                set = optim.step(LR, set, grads);
                for (slot, before) in slots.iter().zip(&kept) {
                    assert_eq!(&clones.values(*slot), before, "a kept clone changed");
                    assert_ne!(&set.values(*slot), before, "the parameter did not move");
                }
            }
        }
    }
    config(name).with::<B, ParamSet<B>, _>(KeepClone);
}
