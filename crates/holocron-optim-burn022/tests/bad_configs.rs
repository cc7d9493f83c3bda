//! Hyperparameters out of range: every configuration refuses each one with a
//! `ConfigError` naming the configuration and the field, in `validate`, `try_build` and
//! `try_init`, and `build` and `init` panic with its message; the allowed range the error
//! states is the one the field's doc states (`ALLOWED`). The defaults are the core rules'
//! and valid; a step with a learning rate out of range panics with a message.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::grad_clipping::GradientClippingConfig::{Norm, Value};
use burn::optim::Optimizer;
use burn::tensor::Tensor;
use holocron_optim_burn022::*;
use holocron_optim_core::rules;

/// The message of the panic of `f`.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a message")
}

/// Checks that `$config` (of type `$ty`) is refused for `$field` everywhere, with the range
/// the field's doc states; with `tied: "rule"`, for a rule that ties fields together, with
/// that rule.
macro_rules! refused {
    ($ty:ident, $config:expr, $field:literal) => {{
        let config: $ty = $config;
        let err = refused!(@checked $ty, config, $field);
        if let Some((_, allowed)) = $ty::ALLOWED.iter().find(|(f, _)| *f == $field) {
            assert_eq!(err.expected, *allowed, "{err}");
        }
    }};
    ($ty:ident, $config:expr, $field:literal, tied: $rule:expr) => {{
        let config: $ty = $config;
        let err = refused!(@checked $ty, config, $field);
        assert!(err.expected.starts_with($rule), "{err}");
    }};
    (@checked $ty:ident, $config:ident, $field:literal) => {{
        let config = $config;
        let err = config
            .validate()
            .expect_err(&format!("{config:?}: {} accepted", $field));
        assert_eq!((err.config, err.field), (stringify!($ty), $field), "{err}");
        let shown = format!("{}.{} = {}: expected ", stringify!($ty), $field, err.value);
        assert!(err.to_string().starts_with(&shown), "{err}");
        assert_eq!(config.try_build().err(), Some(err.clone()));
        assert_eq!(config.try_init().err(), Some(err.clone()));
        assert_eq!(panic_message(|| {
            let _ = config.build();
        }), err.to_string());
        assert_eq!(panic_message(|| {
            let _ = config.init();
        }), err.to_string());
        err
    }};
}

/// The clipping thresholds every configuration refuses.
macro_rules! refuses_clipping {
    ($ty:ident) => {
        for clipping in [Norm(-1.0), Value(f32::NAN), Norm(f32::INFINITY), Value(0.0)] {
            refused!(
                $ty,
                $ty::new().with_grad_clipping(Some(clipping)),
                "grad_clipping"
            );
        }
    };
}

/// The values of an exponential-average coefficient outside `[0, 1)`.
const BAD_BETAS: [f64; 4] = [1.0, -0.1, f64::NAN, f64::INFINITY];
/// The values outside `(0, inf)`.
const BAD_POSITIVE: [f64; 4] = [0.0, -1e-8, f64::INFINITY, f64::NAN];
/// The values outside `[0, inf)`.
const BAD_NON_NEGATIVE: [f64; 3] = [-1e-2, f64::INFINITY, f64::NAN];
/// Clip ranges outside `0 <= lo <= hi < inf`.
const BAD_CLIPS: [(f64, f64); 4] = [
    (2.0, 1.0),
    (-1.0, 1.0),
    (0.0, f64::INFINITY),
    (f64::NAN, 1.0),
];

#[test]
fn lars() {
    for v in BAD_NON_NEGATIVE {
        refused!(LarsConfig, LarsConfig::new().with_momentum(v), "momentum");
        refused!(
            LarsConfig,
            LarsConfig::new().with_weight_decay(v),
            "weight_decay"
        );
    }
    for v in [1.5, -0.1, f64::NAN] {
        refused!(LarsConfig, LarsConfig::new().with_dampening(v), "dampening");
    }
    for v in BAD_CLIPS {
        refused!(
            LarsConfig,
            LarsConfig::new().with_scale_clip(v),
            "scale_clip"
        );
    }
    // Nesterov needs momentum and no dampening.
    let tied = "momentum > 0 and dampening = 0 when nesterov is true";
    refused!(
        LarsConfig,
        LarsConfig::new().with_nesterov(true),
        "nesterov",
        tied: tied
    );
    refused!(
        LarsConfig,
        LarsConfig::new()
            .with_nesterov(true)
            .with_momentum(0.9)
            .with_dampening(0.1),
        "nesterov",
        tied: tied
    );
    refuses_clipping!(LarsConfig);
}

#[test]
fn lamb() {
    for v in BAD_BETAS {
        refused!(LambConfig, LambConfig::new().with_beta_1(v), "beta_1");
        refused!(LambConfig, LambConfig::new().with_beta_2(v), "beta_2");
    }
    for v in BAD_POSITIVE {
        refused!(LambConfig, LambConfig::new().with_epsilon(v), "epsilon");
    }
    for v in BAD_NON_NEGATIVE {
        refused!(
            LambConfig,
            LambConfig::new().with_weight_decay(v),
            "weight_decay"
        );
    }
    for v in BAD_CLIPS {
        refused!(
            LambConfig,
            LambConfig::new().with_scale_clip(v),
            "scale_clip"
        );
    }
    refuses_clipping!(LambConfig);
}

#[test]
fn ralars() {
    for v in BAD_BETAS {
        refused!(RaLarsConfig, RaLarsConfig::new().with_beta_1(v), "beta_1");
        refused!(RaLarsConfig, RaLarsConfig::new().with_beta_2(v), "beta_2");
    }
    for v in BAD_POSITIVE {
        refused!(RaLarsConfig, RaLarsConfig::new().with_epsilon(v), "epsilon");
    }
    for v in BAD_NON_NEGATIVE {
        refused!(
            RaLarsConfig,
            RaLarsConfig::new().with_weight_decay(v),
            "weight_decay"
        );
    }
    for v in BAD_CLIPS {
        refused!(
            RaLarsConfig,
            RaLarsConfig::new().with_scale_clip(v),
            "scale_clip"
        );
    }
    refuses_clipping!(RaLarsConfig);
}

#[test]
fn tadam() {
    // W's decay (2 beta_1 - 1) / beta_1 turns negative below 0.5.
    for v in [0.4, 1.0, f64::NAN] {
        refused!(TAdamConfig, TAdamConfig::new().with_beta_1(v), "beta_1");
    }
    for v in BAD_BETAS {
        refused!(TAdamConfig, TAdamConfig::new().with_beta_2(v), "beta_2");
    }
    for v in BAD_POSITIVE {
        refused!(TAdamConfig, TAdamConfig::new().with_epsilon(v), "epsilon");
    }
    for v in BAD_NON_NEGATIVE {
        refused!(
            TAdamConfig,
            TAdamConfig::new().with_weight_decay(v),
            "weight_decay"
        );
    }
    for v in [0.0, -1.0, 1e31, f64::NAN, f64::INFINITY] {
        refused!(TAdamConfig, TAdamConfig::new().with_dof(Some(v)), "dof");
    }
    refuses_clipping!(TAdamConfig);
}

#[test]
fn adabelief() {
    for v in BAD_BETAS {
        refused!(
            AdaBeliefConfig,
            AdaBeliefConfig::new().with_beta_1(v),
            "beta_1"
        );
        refused!(
            AdaBeliefConfig,
            AdaBeliefConfig::new().with_beta_2(v),
            "beta_2"
        );
    }
    for v in BAD_POSITIVE {
        refused!(
            AdaBeliefConfig,
            AdaBeliefConfig::new().with_epsilon(v),
            "epsilon"
        );
    }
    for v in BAD_NON_NEGATIVE {
        refused!(
            AdaBeliefConfig,
            AdaBeliefConfig::new().with_weight_decay(v),
            "weight_decay"
        );
    }
    refuses_clipping!(AdaBeliefConfig);
}

#[test]
fn adamp() {
    for v in BAD_BETAS {
        refused!(AdamPConfig, AdamPConfig::new().with_beta_1(v), "beta_1");
        refused!(AdamPConfig, AdamPConfig::new().with_beta_2(v), "beta_2");
    }
    for v in BAD_POSITIVE {
        refused!(AdamPConfig, AdamPConfig::new().with_epsilon(v), "epsilon");
        refused!(AdamPConfig, AdamPConfig::new().with_delta(v), "delta");
    }
    for v in BAD_NON_NEGATIVE {
        refused!(
            AdamPConfig,
            AdamPConfig::new().with_weight_decay(v),
            "weight_decay"
        );
    }
    refuses_clipping!(AdamPConfig);
}

#[test]
fn adan() {
    for v in BAD_BETAS {
        refused!(AdanConfig, AdanConfig::new().with_beta_1(v), "beta_1");
        refused!(AdanConfig, AdanConfig::new().with_beta_2(v), "beta_2");
        refused!(AdanConfig, AdanConfig::new().with_beta_3(v), "beta_3");
    }
    for v in BAD_POSITIVE {
        refused!(AdanConfig, AdanConfig::new().with_epsilon(v), "epsilon");
    }
    for v in BAD_NON_NEGATIVE {
        refused!(
            AdanConfig,
            AdanConfig::new().with_weight_decay(v),
            "weight_decay"
        );
    }
    refuses_clipping!(AdanConfig);
}

#[test]
fn ademamix() {
    for v in BAD_BETAS {
        refused!(
            AdEMAMixConfig,
            AdEMAMixConfig::new().with_beta_1(v),
            "beta_1"
        );
        refused!(
            AdEMAMixConfig,
            AdEMAMixConfig::new().with_beta_2(v),
            "beta_2"
        );
        refused!(
            AdEMAMixConfig,
            AdEMAMixConfig::new().with_beta_3(v),
            "beta_3"
        );
    }
    for v in BAD_NON_NEGATIVE {
        refused!(AdEMAMixConfig, AdEMAMixConfig::new().with_alpha(v), "alpha");
        refused!(
            AdEMAMixConfig,
            AdEMAMixConfig::new().with_weight_decay(v),
            "weight_decay"
        );
    }
    for v in BAD_POSITIVE {
        refused!(
            AdEMAMixConfig,
            AdEMAMixConfig::new().with_epsilon(v),
            "epsilon"
        );
    }
    // A warm-up of 0 steps would divide by 0.
    refused!(
        AdEMAMixConfig,
        AdEMAMixConfig::new().with_alpha_warmup(Some(0)),
        "alpha_warmup"
    );
    refused!(
        AdEMAMixConfig,
        AdEMAMixConfig::new().with_beta_3_warmup(Some(0)),
        "beta_3_warmup"
    );
    // The beta_3 schedule interpolates ln(beta_1) and ln(beta_3).
    for (beta_1, beta_3) in [(0.0, 0.9999), (0.9, 0.0)] {
        refused!(
            AdEMAMixConfig,
            AdEMAMixConfig::new()
                .with_beta_1(beta_1)
                .with_beta_3(beta_3)
                .with_beta_3_warmup(Some(100)),
            "beta_3_warmup",
            tied: "beta_1 > 0 and beta_3 > 0 when beta_3 warms up"
        );
    }
    refuses_clipping!(AdEMAMixConfig);
}

/// The configurations' defaults are the core rules' (the field lists are one), and valid,
/// with a clipping threshold too.
#[test]
fn defaults_are_the_core_rules_and_valid() {
    macro_rules! default_is {
        ($ty:ident, $rule:ty) => {
            assert_eq!($ty::new().rule(), <$rule>::default());
            assert_eq!($ty::new().validate(), Ok(()));
            let clipped = $ty::new().with_grad_clipping(Some(Norm(1.0)));
            assert_eq!(clipped.validate(), Ok(()));
            assert!(clipped.try_init().is_ok());
            assert_eq!(
                RuleOptimizer::new($ty::new().rule()).unwrap().rule(),
                &<$rule>::default()
            );
        };
    }
    default_is!(LarsConfig, rules::lars::Lars);
    default_is!(LambConfig, rules::lamb::Lamb);
    default_is!(RaLarsConfig, rules::lamb::RaLars);
    default_is!(TAdamConfig, rules::tadam::TAdam);
    default_is!(AdaBeliefConfig, rules::adabelief::AdaBelief);
    default_is!(AdamPConfig, rules::adamp::AdamP);
    default_is!(AdanConfig, rules::adan::Adan);
    default_is!(AdEMAMixConfig, rules::ademamix::AdEMAMix);
}

/// `RuleOptimizer::new` checks a rule, naming it in the error.
#[test]
fn a_bare_rule_is_checked() {
    let rule = rules::adabelief::AdaBelief {
        beta_1: 1.0,
        ..Default::default()
    };
    let err = RuleOptimizer::new(rule).unwrap_err();
    assert_eq!((err.config, err.field), ("AdaBelief", "beta_1"));
}

/// A step with a learning rate that is NaN, infinite or negative panics, naming the
/// optimizer and the rate.
#[test]
fn learning_rates_out_of_range_panic() {
    let device = common::device();
    let optim = AdaBeliefConfig::new().build();
    for (lr, shown) in [(f64::NAN, "NaN"), (-1e-3, "-0.001"), (f64::INFINITY, "inf")] {
        let param = Tensor::<1>::from_floats([1.0, 2.0], &device);
        let grad = Tensor::<1>::from_floats([0.5, -0.5], &device);
        let message = panic_message(|| {
            let _ = optim.step(lr, param, grad, None);
        });
        assert_eq!(
            message,
            format!("AdaBelief: learning rate {shown}: expected a finite value >= 0")
        );
    }
}

/// The wrappers refuse a sync rate outside `[0, 1]`, a sync period of 0 and a bad clipping
/// threshold, in `validate`, `try_build` and `try_init`; `build` and `init` panic with the
/// message.
#[test]
fn wrappers() {
    macro_rules! wrapper_refused {
        ($ty:ident, $config:expr, $field:literal, $expected:literal) => {{
            let config: $ty = $config;
            let err = config
                .validate()
                .expect_err(&format!("{config:?} accepted"));
            assert_eq!((err.config, err.field), (stringify!($ty), $field), "{err}");
            assert_eq!(err.expected, $expected, "{err}");
            let inner = || LambConfig::new().build();
            assert_eq!(config.try_build(inner()).err(), Some(err.clone()));
            assert_eq!(config.try_init(inner()).err(), Some(err.clone()));
            assert_eq!(
                panic_message(|| {
                    let _ = config.build(inner());
                }),
                err.to_string()
            );
            assert_eq!(
                panic_message(|| {
                    let _ = config.init(inner());
                }),
                err.to_string()
            );
        }};
    }
    macro_rules! refuses {
        ($ty:ident) => {
            for v in [1.5, -0.1, f64::NAN, f64::INFINITY] {
                wrapper_refused!(
                    $ty,
                    $ty::new().with_sync_rate(v),
                    "sync_rate",
                    "a value in [0, 1]"
                );
            }
            wrapper_refused!(
                $ty,
                $ty::new().with_sync_period(0),
                "sync_period",
                "an integer >= 1"
            );
            wrapper_refused!(
                $ty,
                $ty::new().with_grad_clipping(Some(Norm(0.0))),
                "grad_clipping",
                "None, or Value(threshold) or Norm(threshold) with a finite threshold > 0"
            );
            $ty::new().validate().expect("the defaults are valid");
            for rate in [0.0, 1.0] {
                $ty::new()
                    .with_sync_rate(rate)
                    .validate()
                    .expect("the range's ends");
            }
        };
    }
    refuses!(LookaheadConfig);
    refuses!(ScoutConfig);
}
