use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

/// Exponential moving average `avg <- beta avg + (1 - beta) x`, where a missing average
/// counts as zero (the first step gives `(1 - beta) x`).
pub fn ema<B: Backend, const D: usize>(
    average: Option<Tensor<B, D>>,
    x: Tensor<B, D>,
    beta: f64,
) -> Tensor<B, D> {
    let fresh = x.mul_scalar(1.0 - beta);
    match average {
        Some(average) => average.mul_scalar(beta).add(fresh),
        None => fresh,
    }
}

pub use holocron_optim_core::rules::moments::bias_correction;

/// A second-moment average (`v <- beta v + (1 - beta) x`, `x` a squared quantity) with the
/// optional AMSGrad running maximum.
#[derive(Clone, Debug)]
pub struct SecondMoment {
    /// The averaging coefficient.
    pub beta: f64,
    /// Whether the denominator uses the running maximum of the average (AMSGrad).
    pub amsgrad: bool,
}

/// State of a [`SecondMoment`].
#[derive(Record, Clone, Debug)]
pub struct SecondMomentState<B: Backend, const D: usize> {
    /// The exponential average.
    pub average: Tensor<B, D>,
    /// The running maximum of the average, kept only with AMSGrad.
    pub max_average: Option<Tensor<B, D>>,
}

impl SecondMoment {
    /// Folds `x` into the average, then adds `shift` to the stored average (AdaBelief keeps
    /// its epsilon inside the state; every other optimizer passes 0), then updates the
    /// AMSGrad maximum.
    pub fn update<B: Backend, const D: usize>(
        &self,
        state: Option<SecondMomentState<B, D>>,
        x: Tensor<B, D>,
        shift: f64,
    ) -> SecondMomentState<B, D> {
        let (previous, previous_max) = match state {
            Some(s) => (Some(s.average), s.max_average),
            None => (None, None),
        };
        let mut average = ema(previous, x, self.beta);
        if shift != 0.0 {
            average = average.add_scalar(shift);
        }
        // The maximum starts from zero, and every average here is >= 0, so the first
        // maximum is the average itself.
        let max_average = self.amsgrad.then(|| match previous_max {
            Some(max) => max.max_pair(average.clone()),
            None => average.clone(),
        });
        SecondMomentState {
            average,
            max_average,
        }
    }
}

impl<B: Backend, const D: usize> SecondMomentState<B, D> {
    /// Name and shape of each tensor, for checking a loaded record against a model.
    pub fn shapes(
        &self,
        name: &'static str,
        max_name: &'static str,
    ) -> Vec<(&'static str, Vec<usize>)> {
        let mut shapes = vec![(name, self.average.shape().to_vec())];
        if let Some(max) = &self.max_average {
            shapes.push((max_name, max.shape().to_vec()));
        }
        shapes
    }

    /// The Adam denominator `sqrt(v) / sqrt(bias_correction) + epsilon`, `v` being the
    /// AMSGrad maximum when it is kept.
    pub fn denominator(&self, bias_correction: f64, epsilon: f64) -> Tensor<B, D> {
        self.max_average
            .as_ref()
            .unwrap_or(&self.average)
            .clone()
            .sqrt()
            .div_scalar(bias_correction.sqrt())
            .add_scalar(epsilon)
    }

    /// The fused path's lanes: `[v]`, or `[v, v_max]` with AMSGrad; zeros (shaped like
    /// `like`) for what the state does not hold yet. A zero maximum gives the same first
    /// maximum as the tensor form, the average itself, since averages are `>= 0`.
    pub(crate) fn into_lanes(
        state: Option<Self>,
        like: &Tensor<B, D>,
        amsgrad: bool,
    ) -> Vec<Tensor<B, D>> {
        let (average, max) = match state {
            Some(s) => (s.average, s.max_average),
            None => (like.zeros_like(), None),
        };
        let mut lanes = vec![average];
        if amsgrad {
            lanes.push(max.unwrap_or_else(|| like.zeros_like()));
        }
        lanes
    }

    /// Back from [`Self::into_lanes`].
    pub(crate) fn from_lanes(
        lanes: &mut impl Iterator<Item = Tensor<B, D>>,
        amsgrad: bool,
    ) -> Self {
        Self {
            average: lanes.next().expect("second-moment lane"),
            max_average: amsgrad.then(|| lanes.next().expect("AMSGrad lane")),
        }
    }

    /// Moves the state to `device`.
    pub fn to_device(self, device: &B::Device) -> Self {
        Self {
            average: self.average.to_device(device),
            max_average: self.max_average.map(|t| t.to_device(device)),
        }
    }
}

/// Adam's pair of moments: `m` the average of `g` (coefficient `beta_1`) and `v` the
/// average of `g^2` ([`SecondMoment`] with `beta_2`, optionally AMSGrad), with or without
/// bias correction.
#[derive(Clone, Debug)]
pub struct AdamMoments {
    /// The coefficient of the first moment.
    pub beta_1: f64,
    /// The second moment.
    pub second: SecondMoment,
    /// Whether `m` and `v` are divided by `1 - beta^t` before use.
    pub bias_correction: bool,
}

/// State of [`AdamMoments`].
#[derive(Record, Clone, Debug)]
pub struct AdamMomentsState<B: Backend, const D: usize> {
    /// The number of steps taken.
    pub time: usize,
    /// The first moment `m`.
    pub moment_1: Tensor<B, D>,
    /// The second moment `v`.
    pub moment_2: SecondMomentState<B, D>,
}

impl AdamMoments {
    /// The moments with these coefficients.
    pub fn new(beta_1: f64, beta_2: f64, amsgrad: bool, bias_correction: bool) -> Self {
        Self {
            beta_1,
            second: SecondMoment {
                beta: beta_2,
                amsgrad,
            },
            bias_correction,
        }
    }

    /// Folds the gradient into both moments and advances the step count.
    pub fn update<B: Backend, const D: usize>(
        &self,
        grad: Tensor<B, D>,
        state: Option<AdamMomentsState<B, D>>,
    ) -> AdamMomentsState<B, D> {
        let (time, moment_1, moment_2) = split(state);
        AdamMomentsState {
            time: time + 1,
            moment_2: self.second.update(moment_2, grad.clone().square(), 0.0),
            moment_1: ema(moment_1, grad, self.beta_1),
        }
    }

    /// AdaBelief's variant of [`Self::update`]: the second moment averages the squared
    /// residual `(g - m)^2` against the new first moment, and `shift` is added to the stored
    /// second moment every step.
    pub fn update_belief<B: Backend, const D: usize>(
        &self,
        grad: Tensor<B, D>,
        state: Option<AdamMomentsState<B, D>>,
        shift: f64,
    ) -> AdamMomentsState<B, D> {
        let (time, moment_1, moment_2) = split(state);
        let moment_1 = ema(moment_1, grad.clone(), self.beta_1);
        let residual = grad.sub(moment_1.clone()).square();
        AdamMomentsState {
            time: time + 1,
            moment_2: self.second.update(moment_2, residual, shift),
            moment_1,
        }
    }

    /// The bias corrections `(1 - beta_1^t, 1 - beta_2^t)` at step `time`, or `(1, 1)`
    /// without bias correction.
    pub(crate) fn corrections(&self, time: usize) -> (f64, f64) {
        if self.bias_correction {
            (
                bias_correction(self.beta_1, time),
                bias_correction(self.second.beta, time),
            )
        } else {
            (1.0, 1.0)
        }
    }

    /// The corrected first moment `m / (1 - beta_1^t)`.
    pub fn first<B: Backend, const D: usize>(
        &self,
        state: &AdamMomentsState<B, D>,
    ) -> Tensor<B, D> {
        let (bc1, _) = self.corrections(state.time);
        state.moment_1.clone().div_scalar(bc1)
    }

    /// The corrected denominator `sqrt(v / (1 - beta_2^t)) + epsilon`.
    pub fn denominator<B: Backend, const D: usize>(
        &self,
        state: &AdamMomentsState<B, D>,
        epsilon: f64,
    ) -> Tensor<B, D> {
        let (_, bc2) = self.corrections(state.time);
        state.moment_2.denominator(bc2, epsilon)
    }

    /// Adam's update direction `m_hat / (sqrt(v_hat) + epsilon)`.
    pub fn direction<B: Backend, const D: usize>(
        &self,
        state: &AdamMomentsState<B, D>,
        epsilon: f64,
    ) -> Tensor<B, D> {
        self.first(state).div(self.denominator(state, epsilon))
    }
}

type SplitState<B, const D: usize> = (usize, Option<Tensor<B, D>>, Option<SecondMomentState<B, D>>);

fn split<B: Backend, const D: usize>(state: Option<AdamMomentsState<B, D>>) -> SplitState<B, D> {
    match state {
        Some(s) => (s.time, Some(s.moment_1), Some(s.moment_2)),
        None => (0, None, None),
    }
}

impl<B: Backend, const D: usize> AdamMomentsState<B, D> {
    /// Name and shape of each tensor, for checking a loaded record against a model.
    pub fn shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        let mut shapes = vec![("moment_1", self.moment_1.shape().to_vec())];
        shapes.extend(self.moment_2.shapes("moment_2", "max_moment_2"));
        shapes
    }

    /// The fused path's lanes `[m, v]` (`[m, v, v_max]` with AMSGrad) and the step count,
    /// zeros and 0 before the first step.
    pub(crate) fn into_lanes(
        state: Option<Self>,
        like: &Tensor<B, D>,
        amsgrad: bool,
    ) -> (usize, Vec<Tensor<B, D>>) {
        let (time, moment_1, moment_2) = match state {
            Some(s) => (s.time, s.moment_1, Some(s.moment_2)),
            None => (0, like.zeros_like(), None),
        };
        let mut lanes = vec![moment_1];
        lanes.extend(SecondMomentState::into_lanes(moment_2, like, amsgrad));
        (time, lanes)
    }

    /// [`Self::into_lanes`] and [`Self::from_lanes`] as the fused step takes them.
    #[allow(clippy::type_complexity)]
    pub(crate) fn packing(
        amsgrad: bool,
    ) -> (
        impl FnOnce(Option<Self>, &Tensor<B, D>) -> (usize, Vec<Tensor<B, D>>),
        impl FnOnce(usize, Vec<Tensor<B, D>>) -> Option<Self>,
    ) {
        (
            move |state, like| Self::into_lanes(state, like, amsgrad),
            move |time, lanes| Some(Self::from_lanes(time, &mut lanes.into_iter(), amsgrad)),
        )
    }

    /// Back from [`Self::into_lanes`], with the new step count.
    pub(crate) fn from_lanes(
        time: usize,
        lanes: &mut impl Iterator<Item = Tensor<B, D>>,
        amsgrad: bool,
    ) -> Self {
        Self {
            time,
            moment_1: lanes.next().expect("first-moment lane"),
            moment_2: SecondMomentState::from_lanes(lanes, amsgrad),
        }
    }

    /// Moves the state to `device`.
    pub fn to_device(self, device: &B::Device) -> Self {
        Self {
            time: self.time,
            moment_1: self.moment_1.to_device(device),
            moment_2: self.moment_2.to_device(device),
        }
    }
}
