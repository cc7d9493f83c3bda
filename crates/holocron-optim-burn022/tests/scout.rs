//! Scout's per-parameter sync against its equations (the doc of `holocron_optim_burn022::Scout`
//! and docs/burn-0.22.md): Scout around Burn's SGD (`w <- w - lr g`), on parameters of ranks
//! 1 to 4 plus one whose gradient is zero (its steps are exactly 0, so each element's
//! similarity is 0/0, counted as 0), replayed on the host in f64:
//!
//! ```text
//! at a sync, per parameter, u_1..u_k its k = sync_period steps since the last sync:
//! sim  = mean over elements of  std(u, unbiased) / max |u - mean(u)|   (0/0 counts as 0)
//! rate = max(1 - sim, sync_rate)            (rate = 1 when k = 1: no unbiased std)
//! slow <- slow + rate (fast - slow);   fast <- slow
//! ```
//!
//! Every parameter value after every step must match the replay: relative error at most
//! 1e-12 in f64 and 2e-4 in f32 (the replay is f64 throughout; the golden tests' f32 tolerance). The replay's rates at the
//! first sync must differ between parameters by more than 1e-3, so that the run does check
//! per-parameter rates (holocron would use their mean for all).

mod common;

use burn::optim::SgdConfig;
use burn::tensor::DType;
use common::*;
use holocron_optim_burn022::*;
use rstest::rstest;

const LR: f64 = 0.1;

/// The gradient of parameter `j` at step `step`: a wave whose phase moves with the step,
/// ten times larger every `spike` steps (every `spike + 1` for odd `j`, shifted by `j`), so
/// that the parameters' steps are more or less coherent and their rates above the floor
/// differ; the last parameter's is zero.
fn grad(j: usize, step: usize, n: usize, last: usize, spike: usize) -> Vec<f64> {
    if j == last {
        return vec![0.0; n];
    }
    let scale = if (step + j).is_multiple_of(spike + j % 2) {
        10.0
    } else {
        1.0
    };
    wave(n, 3.0 + 0.01 * step as f64 + j as f64)
        .into_iter()
        .map(|g| g * scale)
        .collect()
}

/// One parameter's Scout on the host: its value, slow weights and window.
struct Reference {
    fast: Vec<f64>,
    slow: Vec<f64>,
    window: Vec<Vec<f64>>,
}

impl Reference {
    /// One step; the rate when it syncs.
    fn step(&mut self, grad: &[f64], sync_rate: f64, sync_period: usize) -> Option<f64> {
        for (w, g) in self.fast.iter_mut().zip(grad) {
            *w -= LR * g;
        }
        self.window.push(self.fast.clone());
        if self.window.len() < sync_period {
            return None;
        }
        let k = self.window.len();
        let n = self.fast.len();
        let rate = if k < 2 {
            1.0f64.max(sync_rate)
        } else {
            let mut total = 0.0;
            for e in 0..n {
                let rows: Vec<f64> = std::iter::once(self.slow[e])
                    .chain(self.window.iter().map(|row| row[e]))
                    .collect();
                let u: Vec<f64> = rows.windows(2).map(|w| w[1] - w[0]).collect();
                let mean = u.iter().sum::<f64>() / k as f64;
                let max = u.iter().map(|x| (x - mean).abs()).fold(0.0, f64::max);
                let var = u.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1) as f64;
                if max != 0.0 {
                    total += var.sqrt() / max;
                }
            }
            (1.0 - total / n as f64).max(sync_rate)
        };
        for (s, f) in self.slow.iter_mut().zip(&self.fast) {
            *s += rate * (f - *s);
        }
        self.fast = self.slow.clone();
        self.window.clear();
        Some(rate)
    }
}

fn relative(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-2)
}

#[rstest]
#[case::period_6_no_floor(6, 0.0, 6)]
#[case::period_3(3, 0.05, 3)]
#[case::period_4_high_floor(4, 0.9, 2)]
#[case::period_1(1, 0.3, 2)]
fn scout_follows_its_equations(
    #[case] sync_period: usize,
    #[case] sync_rate: f64,
    #[case] spike: usize,
) {
    let (mut specs, mut shapes) = mixed_specs();
    specs.push((vec![6], wave(6, 9.0)));
    shapes.push(vec![6]);
    let last = shapes.len() - 1;
    let steps = 4 * sync_period + 2;
    let config = ScoutConfig::new()
        .with_sync_period(sync_period)
        .with_sync_rate(sync_rate);
    for dtype in dtypes() {
        let tol = if dtype == DType::F64 { 1e-12 } else { 2e-4 };
        let device = device();
        let (mut set, slots) = ParamSet::new(&specs, dtype, &device);
        let mut reference: Vec<Reference> = slots
            .iter()
            .map(|slot| Reference {
                fast: set.values(*slot),
                slow: set.values(*slot),
                window: vec![],
            })
            .collect();
        let mut optim = config.init(SgdConfig::new().build());
        let mut syncs = 0;
        let mut first_rates = vec![];
        for step in 0..steps {
            let grads: Vec<Option<Vec<f64>>> = shapes
                .iter()
                .enumerate()
                .map(|(j, s)| Some(grad(j, step, s.iter().product(), last, spike)))
                .collect();
            let params = gradients(&set, &slots, &shapes, &grads, dtype, &device);
            set = optim.step(LR, set, params);
            let rates: Vec<f64> = reference
                .iter_mut()
                .zip(&grads)
                .filter_map(|(reference, grad)| {
                    reference.step(grad.as_ref().unwrap(), sync_rate, sync_period)
                })
                .collect();
            if !rates.is_empty() {
                syncs += 1;
                if first_rates.is_empty() {
                    first_rates = rates;
                }
            }
            for (j, (slot, reference)) in slots.iter().zip(&reference).enumerate() {
                for (e, (got, want)) in set.values(*slot).iter().zip(&reference.fast).enumerate() {
                    assert!(
                        relative(*got, *want) <= tol,
                        "{dtype:?} step {} parameter {j}[{e}]: {got} against {want}",
                        step + 1
                    );
                }
            }
        }
        assert!(syncs >= 4, "the run synced {syncs} times");
        let spread = first_rates.iter().fold(f64::MIN, |a, b| a.max(*b))
            - first_rates.iter().fold(f64::MAX, |a, b| a.min(*b));
        // With a period of 1 every rate is 1; with a floor of 0.9, the floor.
        if sync_period > 1 && sync_rate < 0.5 {
            let above_floor = first_rates[..last]
                .iter()
                .filter(|r| **r > sync_rate + 1e-3 && **r < 1.0)
                .count();
            assert!(
                spread > 1e-3 && above_floor >= 2,
                "first rates {first_rates:?}"
            );
        }
    }
}
