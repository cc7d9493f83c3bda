//! Coefficients several rules share: Adam's moments with their bias corrections, RAdam's
//! rectification, heavy-ball momentum, the vector mask of the layer-wise rules.

/// The bias correction `1 - beta^t` of an average that started at zero, after `t` steps.
/// Past `2^31 - 1` steps `beta^t` is taken at `2^31 - 1`, where it is 0 for any `beta` of
/// an average (an exponent cast with wrap-around would make it infinite).
pub fn bias_correction(beta: f64, time: usize) -> f64 {
    let time = i32::try_from(time).unwrap_or(i32::MAX);
    1.0 - beta.powi(time)
}

/// The six coefficients of Adam's moments at step `t`: `beta_1`, `fresh_1 = 1 - beta_1`,
/// the same for `beta_2`, `inverse_correction_1 = 1 / (1 - beta_1^t)` and
/// `inverse_sqrt_correction_2 = 1 / sqrt(1 - beta_2^t)` (both 1 without bias correction).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MomentCoefficients {
    /// Coefficient of the first moment.
    pub beta_1: f64,
    /// `1 - beta_1`.
    pub fresh_1: f64,
    /// Coefficient of the second moment.
    pub beta_2: f64,
    /// `1 - beta_2`.
    pub fresh_2: f64,
    /// `1 / (1 - beta_1^t)`, or 1.
    pub inverse_correction_1: f64,
    /// `1 / sqrt(1 - beta_2^t)`, or 1.
    pub inverse_sqrt_correction_2: f64,
}

impl MomentCoefficients {
    /// The coefficients at step `time` (this step included).
    pub fn new(beta_1: f64, beta_2: f64, bias_correction: bool, time: usize) -> Self {
        let (correction_1, correction_2) = if bias_correction {
            (
                self::bias_correction(beta_1, time),
                self::bias_correction(beta_2, time),
            )
        } else {
            (1.0, 1.0)
        };
        Self {
            beta_1,
            fresh_1: 1.0 - beta_1,
            beta_2,
            fresh_2: 1.0 - beta_2,
            inverse_correction_1: 1.0 / correction_1,
            inverse_sqrt_correction_2: 1.0 / correction_2.sqrt(),
        }
    }
}

/// RAdam's rectification of the adaptive step: the factor `r_t` at step `time` where the
/// variance of the adaptive learning rate is tractable (`rho_t > 4`), else `None`
/// (the step uses the momentum alone).
pub fn rectification(beta_2: f64, time: usize) -> Option<f64> {
    let rho_inf = 2.0 / (1.0 - beta_2) - 1.0;
    let bc2 = bias_correction(beta_2, time);
    let rho_t = rho_inf - 2.0 * time as f64 * (1.0 - bc2) / bc2;
    (rho_t > 4.0).then(|| {
        ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
            .sqrt()
    })
}

/// Heavy-ball momentum as weights: `buffer <- keep buffer + fresh direction` (the first
/// step starts the buffer at the direction: `keep` 0, `fresh` 1), then `step <-
/// step_direction direction + step_buffer buffer` (Nesterov: 1 and `momentum`; else 0
/// and 1).
pub fn heavy_ball(momentum: f64, dampening: f64, nesterov: bool, first: bool) -> [f64; 4] {
    let (keep, fresh) = if first {
        (0.0, 1.0)
    } else {
        (momentum, 1.0 - dampening)
    };
    let (step_direction, step_buffer) = if nesterov {
        (1.0, momentum)
    } else {
        (0.0, 1.0)
    };
    [keep, fresh, step_direction, step_buffer]
}

/// Which vectors (tensors of rank 1: biases, norm scales) the layer-wise rules leave out of
/// weight decay and of the trust ratio.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VectorMask {
    /// Vectors get no weight decay.
    pub weight_decay: bool,
    /// Vectors get no trust ratio (a ratio of 1).
    pub trust_ratio: bool,
}

impl VectorMask {
    /// The weight decay a tensor of rank `rank` gets.
    pub fn decay(&self, rank: usize, weight_decay: f64) -> f64 {
        if rank == 1 && self.weight_decay {
            0.0
        } else {
            weight_decay
        }
    }

    /// Whether a tensor of rank `rank` gets the trust ratio.
    pub fn trusts(&self, rank: usize) -> bool {
        !(rank == 1 && self.trust_ratio)
    }
}
