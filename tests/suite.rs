//! The table-driven suite run against every optimizer and each of its flags: convergence
//! on a quadratic and on Rosenbrock, finiteness with zero gradients and zero parameters, and
//! a record round-trip through a Burn recorder. Invalid hyperparameters have their own table.

mod common;

use burn::module::{Module, Param};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::{GradientsParams, Optimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use common::{AnyConfig, ParamSet, WithOptimizer, gradients};
use holocron_optim::checkpoint::CheckedRecord;
use holocron_optim::*;
use rstest::rstest;

type B = holocron_optim_suite::backend::Autodiff;

/// One optimizer with one set of flags, and the peak learning rates used on the two test
/// problems (the rate decays to 0 over the run with `PolynomialLrScheduler`, power 1).
struct Variant {
    config: AnyConfig,
    quadratic_lr: f64,
    rosenbrock_lr: f64,
}

/// holocron's AdamP drops the radial part of the update whenever `cos(p, g) < delta /
/// sqrt(n)` (a signed cosine), so it cannot grow a tensor's norm against its gradient; its
/// problems are translated so that the optimum sits at the origin.
fn centred(config: &AnyConfig) -> bool {
    matches!(config, AnyConfig::AdamP(_))
}

fn variant(name: &str) -> Variant {
    use AnyConfig::*;
    let (config, quadratic_lr, rosenbrock_lr) = match name {
        "lars" => (Lars(LarsConfig::new()), 0.05, 0.02),
        "lars_momentum_dampening" => (
            Lars(LarsConfig::new().with_momentum(0.9).with_dampening(0.1)),
            0.01,
            0.002,
        ),
        "lars_nesterov_wd" => (
            Lars(
                LarsConfig::new()
                    .with_momentum(0.9)
                    .with_nesterov(true)
                    .with_weight_decay(1e-4),
            ),
            0.01,
            0.002,
        ),
        "lars_clip" => (
            Lars(LarsConfig::new().with_scale_clip((0.5, 2.0))),
            0.05,
            0.02,
        ),
        "lamb" => (Lamb(LambConfig::new()), 0.05, 0.02),
        "lamb_no_bias_correction" => (
            Lamb(LambConfig::new().with_bias_correction(false)),
            0.05,
            0.02,
        ),
        "lamb_wd_clip" => (
            Lamb(
                LambConfig::new()
                    .with_weight_decay(1e-4)
                    .with_scale_clip((0.5, 2.0)),
            ),
            0.05,
            0.02,
        ),
        "ralars" => (RaLars(RaLarsConfig::new()), 0.05, 0.02),
        "ralars_force_adaptive" => (
            RaLars(RaLarsConfig::new().with_force_adaptive_momentum(true)),
            0.05,
            0.02,
        ),
        "ralars_wd_clip" => (
            RaLars(
                RaLarsConfig::new()
                    .with_weight_decay(1e-4)
                    .with_scale_clip((0.5, 2.0)),
            ),
            0.05,
            0.02,
        ),
        "tadam" => (TAdam(TAdamConfig::new()), 0.1, 0.1),
        "tadam_amsgrad" => (TAdam(TAdamConfig::new().with_amsgrad(true)), 0.1, 0.1),
        "tadam_dof_wd" => (
            TAdam(
                TAdamConfig::new()
                    .with_dof(Some(2.0))
                    .with_weight_decay(1e-4),
            ),
            0.1,
            0.1,
        ),
        "adabelief" => (AdaBelief(AdaBeliefConfig::new()), 0.1, 0.05),
        "adabelief_amsgrad_wd" => (
            AdaBelief(
                AdaBeliefConfig::new()
                    .with_amsgrad(true)
                    .with_weight_decay(1e-4),
            ),
            0.1,
            0.05,
        ),
        "adamp" => (AdamP(AdamPConfig::new()), 0.1, 0.05),
        "adamp_amsgrad" => (AdamP(AdamPConfig::new().with_amsgrad(true)), 0.1, 0.05),
        "adamp_delta_wd" => (
            AdamP(AdamPConfig::new().with_delta(0.5).with_weight_decay(1e-4)),
            0.1,
            0.05,
        ),
        "adan" => (Adan(AdanConfig::new()), 0.1, 0.05),
        "adan_amsgrad" => (Adan(AdanConfig::new().with_amsgrad(true)), 0.1, 0.05),
        "adan_wd" => (Adan(AdanConfig::new().with_weight_decay(1e-3)), 0.1, 0.05),
        "ademamix" => (
            AdEMAMix(AdEMAMixConfig::new().with_beta_3(0.99)),
            0.05,
            0.01,
        ),
        // Both warm-ups over 1,000 steps (the length of the quadratic run), towards a
        // slow average a run this short can use.
        "ademamix_warmup" => (
            AdEMAMix(
                AdEMAMixConfig::new()
                    .with_beta_3(0.999)
                    .with_alpha_warmup(Some(1000))
                    .with_beta_3_warmup(Some(1000)),
            ),
            0.05,
            0.02,
        ),
        "ademamix_alpha_wd" => (
            AdEMAMix(
                AdEMAMixConfig::new()
                    .with_beta_3(0.99)
                    .with_alpha(2.0)
                    .with_weight_decay(1e-4),
            ),
            0.05,
            0.01,
        ),
        other => panic!("unknown variant {other}"),
    };
    Variant {
        config,
        quadratic_lr,
        rosenbrock_lr,
    }
}

#[derive(Module, Debug)]
struct Point<B: Backend> {
    x: Param<Tensor<B, 1>>,
}

impl<B: Backend> Point<B> {
    fn new(values: &[f32], device: &B::Device) -> Self {
        Point {
            x: Param::from_tensor(common::tensor(&[values.len()], &to_f64(values), device)),
        }
    }

    fn values(&self) -> Vec<f32> {
        self.x.val().into_data().convert::<f32>().to_vec().unwrap()
    }
}

fn to_f64(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| v as f64).collect()
}

/// `sum_i c_i (x_i - t_i)^2` with curvatures from 0.5 to 5.
fn quadratic<B: Backend>(x: Tensor<B, 1>) -> Tensor<B, 1> {
    let device = x.device();
    let curvature = common::tensor::<B, 1>(&[6], &[0.5, 1.0, 2.0, 3.0, 4.0, 5.0], &device);
    let target = common::tensor::<B, 1>(&[6], &to_f64(&QUADRATIC_TARGET), &device);
    x.sub(target).square().mul(curvature).sum()
}

/// `(1 - x)^2 + 100 (y - x^2)^2`, minimum 0 at (1, 1).
fn rosenbrock<B: Backend>(p: Tensor<B, 1>) -> Tensor<B, 1> {
    let x = p.clone().slice(0..1);
    let y = p.slice(1..2);
    let a = x.clone().neg().add_scalar(1.0).square();
    let b = y.sub(x.square()).square().mul_scalar(100.0);
    a.add(b)
}

struct Minimise {
    start: Vec<f32>,
    /// The problem is `loss(x + shift)`; the reported point is `x + shift`.
    shift: Vec<f32>,
    loss: fn(Tensor<B, 1>) -> Tensor<B, 1>,
    lr: f64,
    steps: usize,
}

impl WithOptimizer<B, Point<B>> for Minimise {
    /// (initial loss, final loss, final point)
    type Output = (f32, f32, Vec<f32>);

    fn run<O: CheckedRecord<Point<B>, B>>(self, mut optim: O) -> Self::Output {
        let device = Default::default();
        let shift = common::tensor::<B, 1>(&[self.shift.len()], &to_f64(&self.shift), &device);
        let start: Vec<f32> = self
            .start
            .iter()
            .zip(&self.shift)
            .map(|(a, b)| a - b)
            .collect();
        let mut point = Point::<B>::new(&start, &device);
        let objective = |point: &Point<B>| (self.loss)(point.x.val().add(shift.clone()));
        let value = |point: &Point<B>| -> f32 { objective(point).into_scalar() };
        let initial = value(&point);
        let mut schedule = PolynomialLrSchedulerConfig::new(self.lr, self.steps)
            .with_power(1.0)
            .init()
            .unwrap();
        for _ in 0..self.steps {
            let loss = objective(&point);
            let grads = GradientsParams::from_grads(loss.backward(), &point);
            point = optim.step(schedule.step(), point, grads);
        }
        let last = point
            .values()
            .iter()
            .zip(&self.shift)
            .map(|(a, b)| a + b)
            .collect();
        (initial, value(&point), last)
    }
}

const QUADRATIC_TARGET: [f32; 6] = [0.5, -1.0, 1.5, 2.0, -0.5, 1.0];
const QUADRATIC_START: [f32; 6] = [2.0, 1.0, -1.0, 0.5, 1.5, -2.0];
const ROSENBROCK_START: [f32; 2] = [-1.2, 1.0];

#[derive(Debug, Clone, Copy)]
enum Check {
    Quadratic,
    Rosenbrock,
    ZeroGradients,
    RecordRoundTrip,
}

#[rstest]
fn every_optimizer(
    #[values(
        "lars",
        "lars_momentum_dampening",
        "lars_nesterov_wd",
        "lars_clip",
        "lamb",
        "lamb_no_bias_correction",
        "lamb_wd_clip",
        "ralars",
        "ralars_force_adaptive",
        "ralars_wd_clip",
        "tadam",
        "tadam_amsgrad",
        "tadam_dof_wd",
        "adabelief",
        "adabelief_amsgrad_wd",
        "adamp",
        "adamp_amsgrad",
        "adamp_delta_wd",
        "adan",
        "adan_amsgrad",
        "adan_wd",
        "ademamix",
        "ademamix_alpha_wd",
        "ademamix_warmup"
    )]
    name: &str,
    #[values(
        Check::Quadratic,
        Check::Rosenbrock,
        Check::ZeroGradients,
        Check::RecordRoundTrip
    )]
    check: Check,
) {
    let variant = variant(name);
    let shift = |target: &[f32]| -> Vec<f32> {
        if centred(&variant.config) {
            target.to_vec()
        } else {
            vec![0.0; target.len()]
        }
    };
    match check {
        Check::Quadratic => {
            let job = Minimise {
                start: QUADRATIC_START.to_vec(),
                shift: shift(&QUADRATIC_TARGET),
                loss: quadratic,
                lr: variant.quadratic_lr,
                steps: 1000,
            };
            let (initial, last, point) = variant.config.with(job);
            println!("{name}: quadratic {initial} -> {last} at {point:?}");
            assert!(last < 1e-3, "{name}: quadratic loss {initial} -> {last}");
        }
        Check::Rosenbrock => {
            let job = Minimise {
                start: ROSENBROCK_START.to_vec(),
                shift: shift(&[1.0, 1.0]),
                loss: rosenbrock,
                lr: variant.rosenbrock_lr,
                steps: 3000,
            };
            let (initial, last, point) = variant.config.with(job);
            println!("{name}: rosenbrock {initial} -> {last} at {point:?}");
            // Below 1e-2 the point is within 0.1 of (1, 1) in x.
            assert!(
                last < 1e-2,
                "{name}: rosenbrock loss {initial} -> {last} at {point:?}"
            );
        }
        Check::ZeroGradients => variant.config.with(ZeroGradients { name }),
        Check::RecordRoundTrip => variant.config.with(RoundTrip { name }),
    }
}

/// Zero gradients on zero and non-zero parameters, then a gradient on the all-zero tensor:
/// everything stays finite, and a zero tensor with a zero gradient does not move.
struct ZeroGradients<'a> {
    name: &'a str,
}

impl WithOptimizer<B, ParamSet<B>> for ZeroGradients<'_> {
    type Output = ();

    fn run<O: CheckedRecord<ParamSet<B>, B>>(self, mut optim: O) {
        let device = Default::default();
        let shapes = vec![vec![4], vec![2, 3]];
        let specs = vec![
            (shapes[0].clone(), vec![0.0; 4]),
            (shapes[1].clone(), common::wave(6, 1.0)),
        ];
        let (mut set, slots) = ParamSet::<B>::new(&specs, &device);
        let zero = || Some(vec![0.0; 4]);
        let zero_6 = || Some(vec![0.0; 6]);
        let schedule = [
            vec![zero(), zero_6()],
            vec![zero(), zero_6()],
            vec![Some(common::wave(4, 2.0)), zero_6()],
            vec![zero(), Some(common::wave(6, 3.0))],
            vec![zero(), zero_6()],
        ];
        for (step, grads) in schedule.iter().enumerate() {
            let grads = gradients(&set, &slots, &shapes, grads, &device);
            set = optim.step(0.01, set, grads);
            for slot in &slots {
                let values = set.values(*slot);
                assert!(
                    values.iter().all(|v| v.is_finite()),
                    "{}: step {step}: {values:?}",
                    self.name
                );
            }
            if step < 2 {
                assert_eq!(
                    set.values(slots[0]),
                    vec![0.0; 4],
                    "{}: zero tensor moved",
                    self.name
                );
            }
        }
    }
}

/// The record survives Burn's binary recorder: a reloaded optimizer continues bit for bit
/// like the one that never stopped.
struct RoundTrip<'a> {
    name: &'a str,
}

impl WithOptimizer<B, ParamSet<B>> for RoundTrip<'_> {
    type Output = ();

    fn run<O: CheckedRecord<ParamSet<B>, B>>(self, mut optim: O) {
        let device = Default::default();
        let fresh = optim.clone();
        let (mut set, slots, shapes) = common::mixed_params::<B>(&device);
        let step = |optim: &mut O, set: ParamSet<B>, k: usize| {
            let grads = gradients(
                &set,
                &slots,
                &shapes,
                &common::mixed_grads(&shapes, k),
                &device,
            );
            optim.step(0.01, set, grads)
        };
        for k in 0..3 {
            set = step(&mut optim, set, k);
        }
        let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
        let bytes = recorder.record(optim.to_record(), ()).unwrap();
        let record = recorder.load(bytes, &device).unwrap();
        let mut resumed = fresh.load_record(record);
        let mut other = set.clone();
        for k in 3..6 {
            set = step(&mut optim, set, k);
            other = step(&mut resumed, other, k);
        }
        for slot in &slots {
            assert_eq!(
                set.values(*slot),
                other.values(*slot),
                "{}: resumed run differs",
                self.name
            );
        }
    }
}

#[rstest]
#[case::lars_momentum(AnyConfig::Lars(LarsConfig::new().with_momentum(-0.1)), "LarsConfig.momentum = -0.1: expected a finite value >= 0")]
#[case::lars_dampening(AnyConfig::Lars(LarsConfig::new().with_dampening(1.5)), "LarsConfig.dampening = 1.5: expected a value in [0, 1]")]
#[case::lars_weight_decay(AnyConfig::Lars(LarsConfig::new().with_weight_decay(f64::NAN)), "LarsConfig.weight_decay = NaN: expected a finite value >= 0")]
#[case::lars_nesterov_no_momentum(AnyConfig::Lars(LarsConfig::new().with_nesterov(true)), "LarsConfig.nesterov = (0.0, 0.0): expected momentum > 0 and dampening = 0 when nesterov is true (value shown: (momentum, dampening))")]
#[case::lars_nesterov_dampening(AnyConfig::Lars(LarsConfig::new().with_nesterov(true).with_momentum(0.9).with_dampening(0.1)), "LarsConfig.nesterov = (0.9, 0.1): expected momentum > 0 and dampening = 0 when nesterov is true (value shown: (momentum, dampening))")]
#[case::lars_scale_clip(AnyConfig::Lars(LarsConfig::new().with_scale_clip((2.0, 1.0))), "LarsConfig.scale_clip = (2.0, 1.0): expected (lo, hi) with 0 <= lo <= hi < inf")]
#[case::lamb_beta_1(AnyConfig::Lamb(LambConfig::new().with_beta_1(1.0)), "LambConfig.beta_1 = 1.0: expected a value in [0, 1)")]
#[case::lamb_beta_2(AnyConfig::Lamb(LambConfig::new().with_beta_2(-0.1)), "LambConfig.beta_2 = -0.1: expected a value in [0, 1)")]
#[case::lamb_epsilon(AnyConfig::Lamb(LambConfig::new().with_epsilon(-1e-8)), "LambConfig.epsilon = -1e-8: expected a finite value > 0")]
#[case::lamb_weight_decay(AnyConfig::Lamb(LambConfig::new().with_weight_decay(-0.1)), "LambConfig.weight_decay = -0.1: expected a finite value >= 0")]
#[case::lamb_scale_clip(AnyConfig::Lamb(LambConfig::new().with_scale_clip((-1.0, 1.0))), "LambConfig.scale_clip = (-1.0, 1.0): expected (lo, hi) with 0 <= lo <= hi < inf")]
#[case::ralars_beta_1(AnyConfig::RaLars(RaLarsConfig::new().with_beta_1(1.0)), "RaLarsConfig.beta_1 = 1.0: expected a value in [0, 1)")]
#[case::ralars_beta_2(AnyConfig::RaLars(RaLarsConfig::new().with_beta_2(1.5)), "RaLarsConfig.beta_2 = 1.5: expected a value in [0, 1)")]
#[case::ralars_epsilon(AnyConfig::RaLars(RaLarsConfig::new().with_epsilon(0.0)), "RaLarsConfig.epsilon = 0.0: expected a finite value > 0")]
#[case::ralars_weight_decay(AnyConfig::RaLars(RaLarsConfig::new().with_weight_decay(-1.0)), "RaLarsConfig.weight_decay = -1.0: expected a finite value >= 0")]
#[case::ralars_scale_clip(AnyConfig::RaLars(RaLarsConfig::new().with_scale_clip((0.0, f64::INFINITY))), "RaLarsConfig.scale_clip = (0.0, inf): expected (lo, hi) with 0 <= lo <= hi < inf")]
#[case::tadam_beta_1(AnyConfig::TAdam(TAdamConfig::new().with_beta_1(0.0)), "TAdamConfig.beta_1 = 0.0: expected a value in [0.5, 1)")]
#[case::tadam_beta_1_negative_weights(AnyConfig::TAdam(TAdamConfig::new().with_beta_1(0.1)), "TAdamConfig.beta_1 = 0.1: expected a value in [0.5, 1)")]
#[case::tadam_beta_2(AnyConfig::TAdam(TAdamConfig::new().with_beta_2(1.0)), "TAdamConfig.beta_2 = 1.0: expected a value in [0, 1)")]
#[case::tadam_epsilon(AnyConfig::TAdam(TAdamConfig::new().with_epsilon(0.0)), "TAdamConfig.epsilon = 0.0: expected a finite value > 0")]
#[case::tadam_weight_decay(AnyConfig::TAdam(TAdamConfig::new().with_weight_decay(-1.0)), "TAdamConfig.weight_decay = -1.0: expected a finite value >= 0")]
#[case::tadam_dof(AnyConfig::TAdam(TAdamConfig::new().with_dof(Some(0.0))), "TAdamConfig.dof = Some(0.0): expected None or a value in (0, 1e30]")]
#[case::tadam_dof_overflowing(AnyConfig::TAdam(TAdamConfig::new().with_dof(Some(1e300))), "TAdamConfig.dof = Some(1e300): expected None or a value in (0, 1e30]")]
#[case::adabelief_beta_1(AnyConfig::AdaBelief(AdaBeliefConfig::new().with_beta_1(-0.5)), "AdaBeliefConfig.beta_1 = -0.5: expected a value in [0, 1)")]
#[case::adabelief_beta_2(AnyConfig::AdaBelief(AdaBeliefConfig::new().with_beta_2(1.0)), "AdaBeliefConfig.beta_2 = 1.0: expected a value in [0, 1)")]
#[case::adabelief_epsilon(AnyConfig::AdaBelief(AdaBeliefConfig::new().with_epsilon(0.0)), "AdaBeliefConfig.epsilon = 0.0: expected a finite value > 0")]
#[case::adabelief_weight_decay(AnyConfig::AdaBelief(AdaBeliefConfig::new().with_weight_decay(-1.0)), "AdaBeliefConfig.weight_decay = -1.0: expected a finite value >= 0")]
#[case::adamp_beta_1(AnyConfig::AdamP(AdamPConfig::new().with_beta_1(1.0)), "AdamPConfig.beta_1 = 1.0: expected a value in [0, 1)")]
#[case::adamp_beta_2(AnyConfig::AdamP(AdamPConfig::new().with_beta_2(1.0)), "AdamPConfig.beta_2 = 1.0: expected a value in [0, 1)")]
#[case::adamp_epsilon(AnyConfig::AdamP(AdamPConfig::new().with_epsilon(0.0)), "AdamPConfig.epsilon = 0.0: expected a finite value > 0")]
#[case::adamp_weight_decay(AnyConfig::AdamP(AdamPConfig::new().with_weight_decay(-1.0)), "AdamPConfig.weight_decay = -1.0: expected a finite value >= 0")]
#[case::adamp_delta(AnyConfig::AdamP(AdamPConfig::new().with_delta(0.0)), "AdamPConfig.delta = 0.0: expected a finite value > 0")]
#[case::adan_beta_1(AnyConfig::Adan(AdanConfig::new().with_beta_1(1.0)), "AdanConfig.beta_1 = 1.0: expected a value in [0, 1)")]
#[case::adan_beta_2(AnyConfig::Adan(AdanConfig::new().with_beta_2(1.0)), "AdanConfig.beta_2 = 1.0: expected a value in [0, 1)")]
#[case::adan_beta_3(AnyConfig::Adan(AdanConfig::new().with_beta_3(1.0)), "AdanConfig.beta_3 = 1.0: expected a value in [0, 1)")]
#[case::adan_epsilon(AnyConfig::Adan(AdanConfig::new().with_epsilon(0.0)), "AdanConfig.epsilon = 0.0: expected a finite value > 0")]
#[case::adan_weight_decay(AnyConfig::Adan(AdanConfig::new().with_weight_decay(-1.0)), "AdanConfig.weight_decay = -1.0: expected a finite value >= 0")]
#[case::ademamix_beta_1(AnyConfig::AdEMAMix(AdEMAMixConfig::new().with_beta_1(1.0)), "AdEMAMixConfig.beta_1 = 1.0: expected a value in [0, 1)")]
#[case::ademamix_beta_2(AnyConfig::AdEMAMix(AdEMAMixConfig::new().with_beta_2(1.0)), "AdEMAMixConfig.beta_2 = 1.0: expected a value in [0, 1)")]
#[case::ademamix_beta_3(AnyConfig::AdEMAMix(AdEMAMixConfig::new().with_beta_3(1.0)), "AdEMAMixConfig.beta_3 = 1.0: expected a value in [0, 1)")]
#[case::ademamix_alpha(AnyConfig::AdEMAMix(AdEMAMixConfig::new().with_alpha(-1.0)), "AdEMAMixConfig.alpha = -1.0: expected a finite value >= 0")]
#[case::ademamix_epsilon(AnyConfig::AdEMAMix(AdEMAMixConfig::new().with_epsilon(0.0)), "AdEMAMixConfig.epsilon = 0.0: expected a finite value > 0")]
#[case::ademamix_weight_decay(AnyConfig::AdEMAMix(AdEMAMixConfig::new().with_weight_decay(-1.0)), "AdEMAMixConfig.weight_decay = -1.0: expected a finite value >= 0")]
#[case::ademamix_alpha_warmup(AnyConfig::AdEMAMix(AdEMAMixConfig::new().with_alpha_warmup(Some(0))), "AdEMAMixConfig.alpha_warmup = Some(0): expected None or a number of steps >= 1")]
#[case::ademamix_beta_3_warmup(AnyConfig::AdEMAMix(AdEMAMixConfig::new().with_beta_3_warmup(Some(0))), "AdEMAMixConfig.beta_3_warmup = Some(0): expected None or a number of steps >= 1")]
#[case::ademamix_beta_3_warmup_from_zero(AnyConfig::AdEMAMix(AdEMAMixConfig::new().with_beta_1(0.0).with_beta_3_warmup(Some(10))), "AdEMAMixConfig.beta_3_warmup = (0.0, 0.9999): expected beta_1 > 0 and beta_3 > 0 when beta_3 warms up (value shown: (beta_1, beta_3))")]
#[case::lars_clipping_negative(AnyConfig::Lars(LarsConfig::new().with_grad_clipping(Some(GradientClippingConfig::Norm(-1.0)))), "LarsConfig.grad_clipping = Some(Norm(-1.0)): expected None, or Value(threshold) or Norm(threshold) with a finite threshold > 0")]
#[case::adan_clipping_nan(AnyConfig::Adan(AdanConfig::new().with_grad_clipping(Some(GradientClippingConfig::Value(f32::NAN)))), "AdanConfig.grad_clipping = Some(Value(NaN)): expected None, or Value(threshold) or Norm(threshold) with a finite threshold > 0")]
#[case::lamb_clipping_zero(AnyConfig::Lamb(LambConfig::new().with_grad_clipping(Some(GradientClippingConfig::Norm(0.0)))), "LambConfig.grad_clipping = Some(Norm(0.0)): expected None, or Value(threshold) or Norm(threshold) with a finite threshold > 0")]
fn invalid_hyperparameters_are_refused(#[case] config: AnyConfig, #[case] message: &str) {
    assert_eq!(config.validate().unwrap_err(), message);
    assert_eq!(
        config.try_init_error::<B, Point<B>>().as_deref(),
        Some(message)
    );
    // `init` refuses with the same message, before any step.
    let payload =
        std::panic::catch_unwind(|| config.with::<B, Point<B>, _>(NeverStep)).unwrap_err();
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap();
    assert_eq!(text, message);
}

struct NeverStep;

impl WithOptimizer<B, Point<B>> for NeverStep {
    type Output = ();
    fn run<O: CheckedRecord<Point<B>, B>>(self, _optim: O) {
        unreachable!("an invalid configuration was initialized")
    }
}

/// A learning rate that would write NaN or climb the loss stops the step, naming the
/// optimizer and the value (`SimpleOptimizer::step` cannot return an error).
#[rstest]
fn invalid_learning_rates_stop_the_step(
    #[values(
        ("Lars", AnyConfig::Lars(LarsConfig::new())),
        ("Lamb", AnyConfig::Lamb(LambConfig::new())),
        ("RaLars", AnyConfig::RaLars(RaLarsConfig::new())),
        ("TAdam", AnyConfig::TAdam(TAdamConfig::new())),
        ("AdaBelief", AnyConfig::AdaBelief(AdaBeliefConfig::new())),
        ("AdamP", AnyConfig::AdamP(AdamPConfig::new())),
        ("Adan", AnyConfig::Adan(AdanConfig::new())),
        ("AdEMAMix", AnyConfig::AdEMAMix(AdEMAMixConfig::new()))
    )]
    optimizer: (&str, AnyConfig),
    #[values(f64::NAN, f64::INFINITY, -1e-3)] lr: f64,
) {
    let (name, config) = optimizer;
    let payload =
        std::panic::catch_unwind(|| config.with::<B, Point<B>, _>(StepOnce { lr })).unwrap_err();
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap();
    assert_eq!(
        text,
        format!("{name}: learning rate {lr:?}: expected a finite value >= 0")
    );
    // The same optimizer takes a valid step, so the refusal above is the learning rate's.
    let stepped = config.with::<B, Point<B>, _>(StepOnce { lr: 1e-3 });
    assert!(stepped.iter().all(|v| v.is_finite()));
}

/// One step of the quadratic problem from its start.
struct StepOnce {
    lr: f64,
}

impl WithOptimizer<B, Point<B>> for StepOnce {
    type Output = Vec<f32>;
    fn run<O: CheckedRecord<Point<B>, B>>(self, mut optim: O) -> Vec<f32> {
        let device = Default::default();
        let point = Point::<B>::new(&QUADRATIC_START, &device);
        let loss = quadratic(point.x.val());
        let grads = GradientsParams::from_grads(loss.backward(), &point);
        optim.step(self.lr, point, grads).values()
    }
}

/// Without AMSGrad, this crate's Adan is the official Adan, and so is Burn's: the two agree
/// step for step (Burn keeps its hyperparameters in f32, hence the f32 tolerance).
#[rstest]
#[case::default(AdanConfig::new(), burn::optim::AdanConfig::new())]
#[case::weight_decay(
    AdanConfig::new().with_weight_decay(0.02),
    burn::optim::AdanConfig::new().with_weight_decay(0.02)
)]
#[case::betas(
    AdanConfig::new().with_beta_1(0.9).with_beta_2(0.85).with_beta_3(0.95).with_epsilon(1e-6),
    burn::optim::AdanConfig::new().with_beta_1(0.9).with_beta_2(0.85).with_beta_3(0.95).with_epsilon(1e-6)
)]
fn adan_matches_burn(#[case] ours: AdanConfig, #[case] burns: burn::optim::AdanConfig) {
    let device = Default::default();
    let (set, slots, shapes) = common::mixed_params::<B>(&device);
    let mut ours_optim = ours.init::<B, ParamSet<B>>();
    let mut burn_optim = burns.init::<B, ParamSet<B>>();
    let (mut a, mut b) = (set.clone(), set);
    for k in 0..30 {
        let grads = common::mixed_grads(&shapes, k);
        a = ours_optim.step(
            0.01,
            a.clone(),
            gradients(&a, &slots, &shapes, &grads, &device),
        );
        b = burn_optim.step(
            0.01,
            b.clone(),
            gradients(&b, &slots, &shapes, &grads, &device),
        );
        for slot in &slots {
            for (x, y) in a.values(*slot).iter().zip(b.values(*slot)) {
                assert!(
                    (x - y).abs() <= 2e-5 * y.abs().max(1e-2),
                    "step {k}: {x} vs {y}"
                );
            }
        }
    }
}

#[test]
fn adaptor_skips_parameters_without_gradient() {
    // A parameter that never receives a gradient neither moves nor gets optimizer state.
    let device = Default::default();
    let (set, slots, shapes) = common::mixed_params::<B>(&device);
    let before = set.values(slots[1]);
    let mut optim = AdanConfig::new().init::<B, ParamSet<B>>();
    let mut set = set;
    for k in 0..3 {
        let mut grads = common::mixed_grads(&shapes, k);
        grads[1] = None;
        set = optim.step(
            0.01,
            set.clone(),
            gradients(&set, &slots, &shapes, &grads, &device),
        );
    }
    assert_eq!(set.values(slots[1]), before);
    let record = optim.to_record();
    assert!(!record.contains_key(&set.id(slots[1])));
    assert!(record.contains_key(&set.id(slots[0])));
}

/// Six steps of `optim` on a tensor of rank `D` from fixed values and gradients; its values.
fn six_steps<O: burn::optim::SimpleOptimizer<Inner>, const D: usize>(
    optim: &O,
    shape: [usize; D],
) -> Vec<f32> {
    let device = Default::default();
    let n: usize = shape.iter().product();
    let wave = |seed: f32| {
        let values: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + seed).sin()).collect();
        Tensor::<Inner, 1>::from_floats(values.as_slice(), &device).reshape(shape)
    };
    let (mut param, mut state) = (wave(0.0), None);
    for k in 1..=6 {
        (param, state) = optim.step(0.01, param, wave(k as f32), state);
    }
    param.into_data().convert::<f32>().to_vec().unwrap()
}

type Inner = holocron_optim_suite::backend::Backend;

/// RaLars shares LAMB's step, whose masks the golden cases `lamb_vectors_*` check against
/// optax's semantics. Here: the masks change a rank-1 tensor's steps, leave a matrix's
/// bit-identical, and the fused path computes the masked step as the composed one does.
#[test]
fn ralars_masks_touch_only_vectors_on_every_path() {
    let config = || RaLarsConfig::new().with_weight_decay(0.1);
    let masked = |execution| {
        config()
            .with_exclude_vectors_from_weight_decay(true)
            .with_exclude_vectors_from_trust_ratio(true)
            .with_execution(execution)
            .build()
    };
    let plain = config().build();
    let fused = masked(Execution::Auto);
    assert_eq!(six_steps(&fused, [4, 5]), six_steps(&plain, [4, 5]));
    let before = step_paths();
    let vector = six_steps(&fused, [20]);
    let paths = step_paths().since(before);
    assert_eq!(
        paths.cpu_loops + paths.kernels,
        6,
        "the fused path did not run: {paths:?}"
    );
    assert_ne!(vector, six_steps(&plain, [20]), "the masks changed nothing");
    let before = step_paths();
    let composed = six_steps(&masked(Execution::Composed), [20]);
    assert_eq!(step_paths().since(before).composed, 6);
    for (a, b) in vector.iter().zip(&composed) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
    }
}
