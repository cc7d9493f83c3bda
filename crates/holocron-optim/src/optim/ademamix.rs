use burn::optim::LearningRate;
use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

use super::{optimizer_config, simple_optimizer};
use crate::Execution;
use crate::blocks::with_moment_coefficients;
use crate::blocks::{AdamMoments, AdamMomentsState, L2Decay, ema};
use crate::checkpoint::tensor_shape;
use crate::fused;
use crate::rule::{dual, element_rule};

optimizer_config! {
    /// Configuration of [`AdEMAMix`].
    ///
    /// | holocron keyword | field | default |
    /// |---|---|---|
    /// | `betas` | `beta_1`, `beta_2`, `beta_3` | 0.9, 0.999, 0.9999 |
    /// | `alpha` | `alpha` | 5.0 |
    /// | `eps` | `epsilon` | 1e-8 |
    /// | `weight_decay` | `weight_decay` | 0 |
    /// | (none; the paper's `T_alpha`, `T_beta3`) | `alpha_warmup`, `beta_3_warmup` | `None` |
    ///
    /// # Example
    ///
    /// ```
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::{Linear, LinearConfig};
    /// use holocron_optim::AdEMAMixConfig;
    ///
    /// type B = Autodiff<NdArray>;
    /// let optim = AdEMAMixConfig::new().with_alpha(2.0).init::<B, Linear<B>>();
    /// # let _ = optim;
    /// // The paper's recipe: both warm-ups over the whole run (here 10 000 steps).
    /// let optim = AdEMAMixConfig::new()
    ///     .with_alpha_warmup(Some(10_000))
    ///     .with_beta_3_warmup(Some(10_000))
    ///     .init::<B, Linear<B>>();
    /// # let _ = optim;
    /// ```
    pub struct AdEMAMixConfig for AdEMAMix {
        /// Coefficient of the fast gradient average.
        beta_1: f64 = 0.9 => beta,
        /// Coefficient of the second moment.
        beta_2: f64 = 0.999 => beta,
        /// Coefficient of the slow gradient average.
        beta_3: f64 = 0.9999 => beta,
        /// Weight of the slow average in the update.
        alpha: f64 = 5.0 => non_negative,
        /// Added to the denominator.
        epsilon: f64 = 1e-8 => positive,
        /// L2 weight decay `lambda`, added to the gradient.
        weight_decay: f64 = 0.0 => non_negative,
        /// Steps `T_alpha` over which the slow average's weight ramps up linearly from 0 to
        /// `alpha`; `None` (holocron's behaviour) uses `alpha` from the first step.
        alpha_warmup: Option<usize> = "None" => warmup,
        /// Steps `T_beta3` over which the slow average's coefficient rises from `beta_1` to
        /// `beta_3` along the paper's schedule (its half-life grows linearly); `None`
        /// (holocron's behaviour) uses `beta_3` from the first step.
        beta_3_warmup: Option<usize> = "None" => warmup,
    }
    also: |check, config| {
        // The schedule interpolates the logarithms of beta_1 and beta_3: both must be > 0.
        let positive = config.beta_1 > 0.0 && config.beta_3 > 0.0;
        let betas = (config.beta_1, config.beta_3);
        let expected = "beta_1 > 0 and beta_3 > 0 when beta_3 warms up (value shown: (beta_1, beta_3))";
        check.require("beta_3_warmup", betas, config.beta_3_warmup.is_none() || positive, expected)
    }
}

/// AdEMAMix, from ["The AdEMAMix Optimizer: Better, Faster, Older"](https://arxiv.org/abs/2409.03137).
///
/// For each parameter tensor, with `t >= 1`:
///
/// ```text
/// g   <- g + lambda p
/// m1  <- beta_1 m1 + (1 - beta_1) g
/// nu  <- beta_2 nu + (1 - beta_2) g^2
/// m2  <- beta_3 m2 + (1 - beta_3) g          (never bias-corrected)
/// p   <- p - lr (m1 / (1 - beta_1^t) + alpha m2) / (sqrt(nu) / sqrt(1 - beta_2^t) + eps)
/// ```
///
/// With warm-ups (the paper's Algorithm 1; both off by default, as in holocron), step `t`
/// uses `alpha(t)` and `beta_3(t)` in place of `alpha` and `beta_3`:
///
/// ```text
/// alpha(t)  = alpha * min(t / T_alpha, 1)
/// beta_3(t) = min(exp(ln(beta_1) ln(beta_3) / ((1 - t/T_beta3) ln(beta_3) + (t/T_beta3) ln(beta_1))), beta_3)
///                                                                  (beta_3 once t >= T_beta3)
/// ```
///
/// `beta_3(t)` moves the slow average's half-life `ln(0.5) / ln(beta)` linearly from
/// `beta_1`'s to `beta_3`'s. (The authors' PyTorch code adds `1e-8` to `beta` inside those
/// logarithms; the formula here is the paper's.)
///
/// This is holocron 0.3.0 exactly; its documentation's `(g_t - m_t)^2 + eps` second moment
/// is a typo for the `g^2` of its code.
#[derive(Clone, Debug)]
pub struct AdEMAMix {
    moments: AdamMoments,
    beta_3: f64,
    alpha: f64,
    alpha_warmup: Option<usize>,
    beta_3_warmup: Option<usize>,
    epsilon: f64,
    decay: L2Decay,
    execution: Execution,
}

/// State of [`AdEMAMix`].
#[derive(Record, Clone, Debug)]
pub struct AdEMAMixState<B: Backend, const D: usize> {
    /// Step count, fast average `m1` and second moment `nu`.
    pub moments: AdamMomentsState<B, D>,
    /// The slow gradient average `m2`.
    pub slow_moment: Tensor<B, D>,
}

impl AdEMAMixConfig {
    fn build_unchecked(&self) -> AdEMAMix {
        AdEMAMix {
            execution: self.execution,
            moments: AdamMoments::new(self.beta_1, self.beta_2, false, true),
            beta_3: self.beta_3,
            alpha: self.alpha,
            alpha_warmup: self.alpha_warmup,
            beta_3_warmup: self.beta_3_warmup,
            epsilon: self.epsilon,
            decay: L2Decay::new(self.weight_decay),
        }
    }
}

simple_optimizer! { AdEMAMix, AdEMAMixState,
    step: |optim, lr, tensor, grad, state| {
        let stepped = fused::rule_step::<AdEMAMixRule, B, D, _>(
            optim.execution,
            false,
            |time| optim.coefficients(lr, time),
            tensor,
            grad,
            state,
            Self::lanes,
            |time, lanes| Some(Self::state(time, lanes)),
        );
        let (tensor, grad, state) = match stepped {
            Ok(stepped) => return stepped,
            Err(declined) => declined,
        };
        let grad = optim.decay.apply(grad, &tensor);
        let (moments, slow_moment) = match state {
            Some(s) => (Some(s.moments), Some(s.slow_moment)),
            None => (None, None),
        };
        let time = moments.as_ref().map_or(0, |m| m.time) + 1;
        let slow_moment = ema(slow_moment, grad.clone(), optim.beta_3_at(time));
        let moments = optim.moments.update(grad, moments);
        let numerator = optim
            .moments
            .first(&moments)
            .add(slow_moment.clone().mul_scalar(optim.alpha_at(time)));
        let update = numerator.div(optim.moments.denominator(&moments, optim.epsilon));
        let state = AdEMAMixState {
            moments,
            slow_moment,
        };
        (tensor.sub(update.mul_scalar(lr)), Some(state))
    },
    to_device: |state, device| {
        AdEMAMixState {
            moments: state.moments.to_device(device),
            slow_moment: state.slow_moment.to_device(device),
        }
    },
    shapes: |state| {
        {
            let mut shapes = state.moments.shapes();
            shapes.push(("slow_moment", tensor_shape(&state.slow_moment)));
            shapes
        }
    },
    step_count: |state| Some(state.moments.time),
}

impl AdEMAMix {
    /// The coefficients of step `time` (this step included).
    fn coefficients(&self, lr: LearningRate, time: usize) -> cpu::Coefficients<f64> {
        with_moment_coefficients!(
            self.moments,
            time,
            cpu::Coefficients {
                weight_decay: self.decay.weight_decay,
                beta_3: self.beta_3_at(time),
                fresh_3: 1.0 - self.beta_3_at(time),
                alpha: self.alpha_at(time),
                epsilon: self.epsilon,
                lr,
            }
        )
    }

    /// The slow average's weight at step `time` (the first is 1).
    fn alpha_at(&self, time: usize) -> f64 {
        match self.alpha_warmup {
            Some(warmup) if time < warmup => self.alpha * time as f64 / warmup as f64,
            _ => self.alpha,
        }
    }

    /// The slow average's coefficient at step `time` (the first is 1).
    fn beta_3_at(&self, time: usize) -> f64 {
        match self.beta_3_warmup {
            Some(warmup) if time < warmup => {
                let a = time as f64 / warmup as f64;
                let (ln_1, ln_3) = (self.moments.beta_1.ln(), self.beta_3.ln());
                (ln_1 * ln_3 / ((1.0 - a) * ln_3 + a * ln_1))
                    .exp()
                    .min(self.beta_3)
            }
            _ => self.beta_3,
        }
    }

    /// The fused lanes `[m2, m1, nu]` and the step count; zeros and 0 before the first step.
    fn lanes<B: Backend, const D: usize>(
        state: Option<AdEMAMixState<B, D>>,
        grad: &Tensor<B, D>,
    ) -> (usize, Vec<Tensor<B, D>>) {
        let (moments, slow_moment) = match state {
            Some(s) => (Some(s.moments), s.slow_moment),
            None => (None, grad.zeros_like()),
        };
        let (time, moment_lanes) = AdamMomentsState::into_lanes(moments, grad, false);
        let mut lanes = vec![slow_moment];
        lanes.extend(moment_lanes);
        (time, lanes)
    }

    /// Back from [`Self::lanes`], with step count `time`.
    fn state<B: Backend, const D: usize>(
        time: usize,
        lanes: Vec<Tensor<B, D>>,
    ) -> AdEMAMixState<B, D> {
        let mut lanes = lanes.into_iter();
        let slow_moment = lanes.next().expect("slow-moment lane");
        AdEMAMixState {
            moments: AdamMomentsState::from_lanes(time, &mut lanes, false),
            slow_moment,
        }
    }
}

/// AdEMAMix's rule, one pass: the equations of [`AdEMAMix`], element by element.
struct AdEMAMixRule;

element_rule! {
    AdEMAMixRule {
        coefficients: Coefficients, cells: Cells, update: update, lanes: 4, optional_lanes: 0,
    }
}

dual! {
    use crate::rule::blocks;
    /// The scalars of one step.
    struct Coefficients {
        weight_decay, beta_1, fresh_1, beta_2, fresh_2, beta_3, fresh_3, inverse_correction_1,
        alpha, inverse_sqrt_correction_2, epsilon, lr,
    }
    /// One element: the parameter, the slow average `m2`, `m1` and `nu`.
    struct Cells { p, slow, m, v }
    ;
    #[cube]
    fn update(c: Coefficients<F>, g: F, x: Cells<F>) flags(_no_flag) -> Cells<F> {
        let g = l2::<F>(g, x.p, c.weight_decay);
        let slow = ema::<F>(x.slow, g, c.beta_3, c.fresh_3);
        let m = ema::<F>(x.m, g, c.beta_1, c.fresh_1);
        let v = ema::<F>(x.v, g * g, c.beta_2, c.fresh_2);
        let numerator = m * c.inverse_correction_1 + slow * c.alpha;
        let denominator = denominator::<F>(v, c.inverse_sqrt_correction_2, c.epsilon);
        let p = x.p - numerator / denominator * c.lr;
        Cells::<F> { p, slow, m, v }
    }
}
