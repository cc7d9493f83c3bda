//! The device-tensor instance of every rule (`OptimizerRule::step_tensors`, each phase on
//! whole tensors through `tensor::Lazy`) against the CPU instance of the same rule run
//! element by element (`Rule::sums` / `Rule::update` over lanes, as the CPU loops of the
//! Burn crates run it), on a reference tensor type that computes on the host in `f64`.
//!
//! Both instances come from one source, so they must agree to rounding; what this checks is
//! the device-tensor machinery: scalars meeting tensors, sums, masks, the carried scalar,
//! the lane order of the state and the flag's optional lanes.

use holocron_optim_core::rules::{adabelief, adamp, adan, ademamix, lamb, lars, tadam};
use holocron_optim_core::tensor::DeviceTensor;
use holocron_optim_core::{OptimizerRule, Rule};

/// A tensor of one dimension on the host; a one-element tensor broadcasts.
#[derive(Clone, Debug, PartialEq)]
struct Host(Vec<f64>);

fn zip<T: Clone, U>(a: &[T], b: &[T], f: impl Fn(T, T) -> U) -> Vec<U> {
    let n = a.len().max(b.len());
    let at = |v: &[T], i: usize| {
        if v.len() == 1 {
            v[0].clone()
        } else {
            v[i].clone()
        }
    };
    (0..n).map(|i| f(at(a, i), at(b, i))).collect()
}

impl Host {
    fn map(self, f: impl Fn(f64) -> f64) -> Self {
        Host(self.0.into_iter().map(f).collect())
    }
}

impl DeviceTensor for Host {
    type Mask = Vec<bool>;
    fn add(self, o: Self) -> Self {
        Host(zip(&self.0, &o.0, |a, b| a + b))
    }
    fn sub(self, o: Self) -> Self {
        Host(zip(&self.0, &o.0, |a, b| a - b))
    }
    fn mul(self, o: Self) -> Self {
        Host(zip(&self.0, &o.0, |a, b| a * b))
    }
    fn div(self, o: Self) -> Self {
        Host(zip(&self.0, &o.0, |a, b| a / b))
    }
    fn add_scalar(self, s: f64) -> Self {
        self.map(|a| a + s)
    }
    fn sub_scalar(self, s: f64) -> Self {
        self.map(|a| a - s)
    }
    fn mul_scalar(self, s: f64) -> Self {
        self.map(|a| a * s)
    }
    fn div_scalar(self, s: f64) -> Self {
        self.map(|a| a / s)
    }
    fn scalar_sub(s: f64, t: Self) -> Self {
        t.map(|a| s - a)
    }
    fn scalar_div(s: f64, t: Self) -> Self {
        t.map(|a| s / a)
    }
    fn neg(self) -> Self {
        self.map(|a| -a)
    }
    fn sqrt(self) -> Self {
        self.map(f64::sqrt)
    }
    fn abs(self) -> Self {
        self.map(f64::abs)
    }
    fn max_pair(self, o: Self) -> Self {
        Host(zip(&self.0, &o.0, |a, b| if b > a { b } else { a }))
    }
    fn min_pair(self, o: Self) -> Self {
        Host(zip(&self.0, &o.0, |a, b| if b < a { b } else { a }))
    }
    fn max_scalar(self, s: f64) -> Self {
        self.map(|a| if s > a { s } else { a })
    }
    fn min_scalar(self, s: f64) -> Self {
        self.map(|a| if s < a { s } else { a })
    }
    fn sum(self) -> Self {
        Host(vec![self.0.iter().sum()])
    }
    fn lower(self, o: Self) -> Vec<bool> {
        zip(&self.0, &o.0, |a, b| a < b)
    }
    fn lower_scalar(self, s: f64) -> Vec<bool> {
        self.0.iter().map(|&a| a < s).collect()
    }
    fn greater_scalar(self, s: f64) -> Vec<bool> {
        self.0.iter().map(|&a| a > s).collect()
    }
    fn equal(self, o: Self) -> Vec<bool> {
        zip(&self.0, &o.0, |a, b| a == b)
    }
    fn equal_scalar(self, s: f64) -> Vec<bool> {
        self.0.iter().map(|&a| a == s).collect()
    }
    fn or(a: Vec<bool>, b: Vec<bool>) -> Vec<bool> {
        zip(&a, &b, |a, b| a || b)
    }
    fn select(mask: Vec<bool>, then: Self, otherwise: Self) -> Self {
        let pairs = zip(&then.0, &otherwise.0, |a, b| (a, b));
        let n = pairs.len().max(mask.len());
        let at = |i: usize| if mask.len() == 1 { mask[0] } else { mask[i] };
        let pair = |i: usize| if pairs.len() == 1 { pairs[0] } else { pairs[i] };
        Host(
            (0..n)
                .map(|i| if at(i) { pair(i).0 } else { pair(i).1 })
                .collect(),
        )
    }
    fn fill(mask: &Vec<bool>, value: f64) -> Self {
        Host(vec![value; mask.len()])
    }
    fn full_like(&self, value: f64) -> Self {
        Host(vec![value; self.0.len()])
    }
    fn scalar_like(&self, value: f64) -> Self {
        Host(vec![value])
    }
}

/// One step of rule `R` element by element, as the CPU loops run it: `lanes` the
/// parameter then the state lanes (the carried one-element lane last where `R` carries
/// one). Where `R` says its update pass does not read the gradient, that pass gets NaN
/// for it (the CPU loops pass zero), so that a rule which does read it fails the
/// comparison. Where `R` says its summing pass does not read the parameter, that pass
/// runs without it (the parameter's cell zero), as the CPU loops run it, so that a rule
/// which does need it there fails the comparison.
fn elementwise<R: Rule>(c: R::Coefficients<f64>, flag: bool, grad: &[f64], lanes: &mut [Vec<f64>]) {
    let read_param = R::sums_read_param(&c);
    let count = R::lanes(flag);
    let carried = if R::CARRIES { lanes[count][0] } else { 0.0 };
    let mut rows: Vec<&mut [f64]> = lanes[..count].iter_mut().map(|l| &mut l[..]).collect();
    let c = R::cast::<f64>(c);
    let scalars = if R::SUMMED {
        let mut totals = [0.0; 4];
        for (i, &g) in grad.iter().enumerate() {
            let terms = R::sums(c, g, &mut rows, i, count, flag, read_param);
            for (total, term) in totals.iter_mut().zip(terms) {
                *total += term;
            }
        }
        Some(R::scalars(c, totals, carried))
    } else {
        None
    };
    let s = scalars.unwrap_or_else(|| R::scalars(c, [0.0; 4], 0.0));
    for (i, &g) in grad.iter().enumerate() {
        let g = if R::UPDATE_READS_GRAD { g } else { f64::NAN };
        R::update(c, R::cast_scalars::<f64>(s), g, &mut rows, i, count, flag);
    }
    if R::CARRIES {
        lanes[count][0] = R::next_carried(s);
    }
}

fn wave(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 * 0.618 + seed).sin() * 1e3).fract() * 0.1 + seed * 1e-3)
        .collect()
}

/// Runs `steps` steps both ways and returns the largest relative difference of the
/// parameter and state.
fn compare<O: OptimizerRule, R: Rule>(
    rule: &O,
    flag: bool,
    coefficients: impl Fn(usize, bool) -> R::Coefficients<f64>,
    shape: &[usize],
    initial_carried: f64,
) -> f64 {
    let n: usize = shape.iter().product();
    let lr = 1e-2;
    let mut param = Host(wave(n, 1.0));
    let mut state: Option<Vec<Host>> = None;
    let mut lanes: Option<Vec<Vec<f64>>> = None;
    let mut worst: f64 = 0.0;
    for t in 0..4 {
        let grad = wave(n, t as f64 + 2.0);
        let first = state.is_none();
        let (p, s) = rule.step_tensors(lr, t, shape, param.clone(), Host(grad.clone()), state);
        let mut reference = lanes.unwrap_or_else(|| {
            let mut l = vec![param.0.clone()];
            for shape in rule.state_shapes(shape) {
                l.push(vec![0.0; shape.iter().product()]);
            }
            if R::CARRIES {
                l.last_mut().unwrap()[0] = initial_carried;
            }
            l
        });
        reference[0] = param.0.clone();
        elementwise::<R>(coefficients(t + 1, first), flag, &grad, &mut reference);
        assert_eq!(
            s.len() + 1,
            reference.len(),
            "{}: number of state lanes",
            O::NAME
        );
        for (got, want) in std::iter::once(&p).chain(&s).zip(&reference) {
            assert_eq!(got.0.len(), want.len(), "{}: lane length", O::NAME);
            for (a, b) in got.0.iter().zip(want) {
                let difference = (a - b).abs() / b.abs().max(1e-2);
                // `max` would pass over a NaN.
                worst = if difference.is_nan() {
                    f64::INFINITY
                } else {
                    worst.max(difference)
                };
            }
        }
        param = p;
        state = Some(s);
        lanes = Some(reference);
    }
    worst
}

const TOLERANCE: f64 = 1e-12;

#[test]
fn every_rule_on_tensors_matches_the_rule_element_by_element() {
    let shape = [5, 7];
    let mut checked = vec![];
    let mut check = |name: &str, worst: f64| {
        eprintln!("{name}: largest relative difference {worst:e}");
        assert!(worst <= TOLERANCE, "{name}: relative difference {worst:e}");
        checked.push(name.to_string());
    };
    for amsgrad in [false, true] {
        let r = adabelief::AdaBelief {
            amsgrad,
            weight_decay: 0.1,
            ..Default::default()
        };
        check(
            "AdaBelief",
            compare::<_, adabelief::AdaBeliefRule>(
                &r,
                amsgrad,
                |t, _| r.coefficients(1e-2, t),
                &shape,
                0.0,
            ),
        );
        let r = adamp::AdamP {
            amsgrad,
            weight_decay: 0.1,
            delta: 2.0,
            ..Default::default()
        };
        check(
            "AdamP",
            compare::<_, adamp::AdamPRule>(
                &r,
                amsgrad,
                |t, _| r.coefficients(1e-2, t, 35),
                &shape,
                0.0,
            ),
        );
        let r = adan::Adan {
            amsgrad,
            weight_decay: 0.1,
            ..Default::default()
        };
        check(
            "Adan",
            compare::<_, adan::AdanRule>(&r, amsgrad, |t, _| r.coefficients(1e-2, t), &shape, 0.0),
        );
        for weight_decay in [0.1, 0.0] {
            let r = tadam::TAdam {
                amsgrad,
                weight_decay,
                ..Default::default()
            };
            // Without decay the summing pass leaves the parameter out: that case runs here.
            assert_eq!(
                tadam::TAdamRule::sums_read_param(&r.coefficients(1e-2, 1, 35.0)),
                weight_decay != 0.0,
                "TAdam's summing pass reads the parameter only for its decay"
            );
            check(
                "TAdam",
                compare::<_, tadam::TAdamRule>(
                    &r,
                    amsgrad,
                    |t, _| r.coefficients(1e-2, t, 35.0),
                    &shape,
                    r.initial_weight_sum(),
                ),
            );
        }
    }
    let r = ademamix::AdEMAMix {
        alpha_warmup: Some(3),
        beta_3_warmup: Some(3),
        ..Default::default()
    };
    check(
        "AdEMAMix",
        compare::<_, ademamix::AdEMAMixRule>(
            &r,
            false,
            |t, _| r.coefficients(1e-2, t),
            &shape,
            0.0,
        ),
    );
    for (momentum, nesterov) in [(0.0, false), (0.9, false), (0.9, true)] {
        let r = lars::Lars {
            momentum,
            nesterov,
            weight_decay: 0.1,
            ..Default::default()
        };
        let flag = r.has_momentum();
        check(
            "Lars",
            compare::<_, lars::LarsRule>(
                &r,
                flag,
                |_, first| r.coefficients(1e-2, first, 2),
                &shape,
                0.0,
            ),
        );
    }
    let r = lamb::Lamb {
        weight_decay: 0.1,
        ..Default::default()
    };
    check(
        "Lamb",
        compare::<_, lamb::TrustRule>(
            &r,
            false,
            |t, _| r.trust().coefficients(1e-2, t, r.direction_at(t), 2),
            &shape,
            0.0,
        ),
    );
    let r = lamb::RaLars {
        weight_decay: 0.1,
        beta_2: 0.9,
        ..Default::default()
    };
    check(
        "RaLars",
        compare::<_, lamb::TrustRule>(
            &r,
            false,
            |t, _| r.trust().coefficients(1e-2, t, r.direction_at(t), 2),
            &shape,
            0.0,
        ),
    );
    assert_eq!(checked.len(), 16, "every configuration ran: {checked:?}");
}

#[test]
fn a_zero_norm_takes_a_trust_ratio_of_one_on_tensors() {
    // A zero parameter: LARS's ratio is 1 (a mask on the device, not a branch), so the
    // first step is the plain gradient step.
    let r = lars::Lars::default();
    let grad = Host(vec![0.5, -1.0, 2.0]);
    let (p, _) = r.step_tensors(0.1, 0, &[3], Host(vec![0.0; 3]), grad, None);
    assert_eq!(p, Host(vec![-0.05, 0.1, -0.2]));
}
