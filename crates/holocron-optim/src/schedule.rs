//! Learning-rate schedules that Burn 0.21 lacks.

use burn::config::Config;
use burn::optim::LearningRate;
use burn::optim::lr_scheduler::LrScheduler;
use burn::tensor::backend::Backend;

use crate::error::{Checker, ConfigError};

/// Configuration of [`PolynomialLrScheduler`].
///
/// With `power = 2` and `final_lr = 0` this is LARS's global schedule
/// `lr_t = lr (1 - t/T)^2`.
///
/// # Example
///
/// ```
/// use burn::optim::lr_scheduler::LrScheduler;
/// use holocron_optim::PolynomialLrSchedulerConfig;
///
/// let mut schedule = PolynomialLrSchedulerConfig::new(0.1, 4).init().unwrap();
/// let lrs: Vec<f64> = (0..6).map(|_| schedule.step()).collect();
/// assert_eq!(lrs, [0.1, 0.1 * 0.5625, 0.1 * 0.25, 0.1 * 0.0625, 0.0, 0.0]);
/// ```
#[derive(Config, Debug)]
pub struct PolynomialLrSchedulerConfig {
    /// The learning rate of the first step (`>= 0`).
    pub initial_lr: LearningRate,
    /// The number of steps `T` over which the rate decays (`>= 1`).
    pub total_steps: usize,
    /// The exponent of the decay (`> 0`).
    #[config(default = 2.0)]
    pub power: f64,
    /// The learning rate reached at step `T` and kept afterwards (`>= 0`).
    #[config(default = 0.0)]
    pub final_lr: LearningRate,
}

impl PolynomialLrSchedulerConfig {
    /// Checks every field against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = Checker::new("PolynomialLrSchedulerConfig");
        check.non_negative("initial_lr", self.initial_lr)?;
        check.non_negative("final_lr", self.final_lr)?;
        check.positive("power", self.power)?;
        check.period("total_steps", self.total_steps)?;
        Ok(())
    }

    /// Builds the scheduler, or returns the first field outside its range.
    pub fn init(&self) -> Result<PolynomialLrScheduler, ConfigError> {
        self.validate()?;
        Ok(PolynomialLrScheduler {
            initial_lr: self.initial_lr,
            final_lr: self.final_lr,
            power: self.power,
            total_steps: self.total_steps,
            step: 0,
        })
    }
}

/// Polynomial decay: the `t`-th call to [`step`](LrScheduler::step) (counting from 0) returns
///
/// ```text
/// lr_t = final_lr + (initial_lr - final_lr) (1 - t / T)^power     for t <= T
/// lr_t = final_lr                                                 for t > T
/// ```
#[derive(Clone, Debug)]
pub struct PolynomialLrScheduler {
    initial_lr: LearningRate,
    final_lr: LearningRate,
    power: f64,
    total_steps: usize,
    step: usize,
}

impl LrScheduler for PolynomialLrScheduler {
    /// The number of steps already taken.
    type Record<B: Backend> = usize;

    fn step(&mut self) -> LearningRate {
        let progress = (self.step.min(self.total_steps) as f64) / self.total_steps as f64;
        self.step = self.step.saturating_add(1);
        self.final_lr + (self.initial_lr - self.final_lr) * (1.0 - progress).powf(self.power)
    }

    fn to_record<B: Backend>(&self) -> Self::Record<B> {
        self.step
    }

    fn load_record<B: Backend>(mut self, record: Self::Record<B>) -> Self {
        self.step = record;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    /// The expected values are the formula in the type's documentation, evaluated here.
    #[test]
    fn follows_the_formula_and_resumes() {
        let config = PolynomialLrSchedulerConfig::new(0.5, 10)
            .with_power(1.5)
            .with_final_lr(0.01);
        let mut schedule = config.init().unwrap();
        for t in 0..15usize {
            let expected = 0.01 + 0.49 * (1.0 - t.min(10) as f64 / 10.0).powf(1.5);
            assert!((schedule.step() - expected).abs() < 1e-15, "step {t}");
        }
        let mut a = config.init().unwrap();
        (0..4).for_each(|_| {
            a.step();
        });
        let record = a.to_record::<NdArray>();
        let mut b = config.init().unwrap().load_record::<NdArray>(record);
        for _ in 0..8 {
            assert_eq!(a.step(), b.step());
        }
    }

    #[test]
    fn refuses_bad_fields() {
        let err = PolynomialLrSchedulerConfig::new(0.1, 0).init().unwrap_err();
        assert_eq!(err.field, "total_steps");
        let err = PolynomialLrSchedulerConfig::new(-0.1, 5)
            .init()
            .unwrap_err();
        assert_eq!(err.field, "initial_lr");
        let err = PolynomialLrSchedulerConfig::new(0.1, 5)
            .with_power(0.0)
            .init()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "PolynomialLrSchedulerConfig.power = 0.0: expected a finite value > 0"
        );
    }
}
