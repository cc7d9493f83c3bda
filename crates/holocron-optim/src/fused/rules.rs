//! The blocks of [`crate::blocks`] in element-wise form, for the fused kernels. Each rule
//! rounds its coefficients to the element type once and applies the operations of its
//! tensor form in the same order, except that a division by a per-step constant is a
//! multiplication by its reciprocal (division and square root are what bound a fused
//! step's speed once it no longer waits on memory). The two paths agree to rounding.

use super::Real;
use crate::blocks::{AdamMoments, HeavyBall, L2Decay, ProximalDecay, SecondMoment};

/// [`crate::blocks::ema`]: `avg <- beta avg + (1 - beta) x`.
#[derive(Clone, Copy)]
pub(crate) struct Ema<E> {
    beta: E,
    fresh: E,
}

impl<E: Real> Ema<E> {
    pub fn new(beta: f64) -> Self {
        Self {
            beta: E::of(beta),
            fresh: E::of(1.0 - beta),
        }
    }

    #[inline(always)]
    pub fn apply(self, average: E, x: E) -> E {
        average * self.beta + x * self.fresh
    }
}

/// [`SecondMoment`]: the average of a squared quantity, plus a constant shift. The
/// AMSGrad maximum is kept by [`SecondLanes`] (its lane starts at zero, below every
/// average).
#[derive(Clone, Copy)]
pub(crate) struct SecondMomentRule<E> {
    ema: Ema<E>,
    shift: E,
}

impl<E: Real> SecondMomentRule<E> {
    pub fn new(block: &SecondMoment, shift: f64) -> Self {
        Self {
            ema: Ema::new(block.beta),
            // Adding a zero shift changes nothing, and a branch-free loop vectorizes.
            shift: E::of(shift),
        }
    }

    /// Folds `x` into the average and returns the new average.
    #[inline(always)]
    pub fn update(self, average: &mut E, x: E) -> E {
        let value = self.ema.apply(*average, x) + self.shift;
        *average = value;
        value
    }
}

/// The Adam denominator `sqrt(v) / sqrt(bias_correction) + epsilon`.
#[derive(Clone, Copy)]
pub(crate) struct Denominator<E> {
    inverse_sqrt_correction: E,
    epsilon: E,
}

impl<E: Real> Denominator<E> {
    pub fn new(bias_correction: f64, epsilon: f64) -> Self {
        Self {
            inverse_sqrt_correction: E::of(1.0 / bias_correction.sqrt()),
            epsilon: E::of(epsilon),
        }
    }

    #[inline(always)]
    pub fn apply(self, v: E) -> E {
        v.sqrt() * self.inverse_sqrt_correction + self.epsilon
    }
}

/// [`AdamMoments`] at step `time`: both averages, the corrected first moment and the
/// Adam direction.
#[derive(Clone, Copy)]
pub(crate) struct AdamRule<E> {
    first: Ema<E>,
    second: SecondMomentRule<E>,
    inverse_correction_1: E,
    denominator: Denominator<E>,
}

impl<E: Real> AdamRule<E> {
    /// `shift` is added to the stored second moment each step (AdaBelief; 0 otherwise).
    pub fn new(moments: &AdamMoments, time: usize, epsilon: f64, shift: f64) -> Self {
        let (bc1, bc2) = moments.corrections(time);
        Self {
            first: Ema::new(moments.beta_1),
            second: SecondMomentRule::new(&moments.second, shift),
            inverse_correction_1: E::of(1.0 / bc1),
            denominator: Denominator::new(bc2, epsilon),
        }
    }

    /// `m / (1 - beta_1^t)`.
    #[inline(always)]
    pub fn first(self, m: E) -> E {
        m * self.inverse_correction_1
    }

    /// `m_hat / (sqrt(v_hat) + epsilon)`, `v` being the AMSGrad maximum where kept.
    #[inline(always)]
    pub fn direction(self, m: E, v: E) -> E {
        self.first(m) / self.denominator.apply(v)
    }

    /// The denominator alone.
    #[inline(always)]
    pub fn denominator(self, v: E) -> E {
        self.denominator.apply(v)
    }
}

/// The lanes of [`crate::blocks::SecondMomentState`] within one chunk: `[v]`, or
/// `[v, v_max]` when `AMSGRAD`. The flag is a constant so that each loop is compiled
/// without a per-element branch, which would keep it from vectorizing.
pub(crate) struct SecondLanes<'s, E, const AMSGRAD: bool> {
    v: &'s mut [E],
    max: &'s mut [E],
}

impl<'s, E: Real, const AMSGRAD: bool> SecondLanes<'s, E, AMSGRAD> {
    /// The lanes, cut to the chunk's `n` elements (which lets the loops drop bounds checks).
    pub fn new(lanes: &'s mut [&mut [E]], n: usize) -> Self {
        let expected = if AMSGRAD { 2 } else { 1 };
        assert_eq!(lanes.len(), expected, "second-moment lanes");
        let (v, max) = lanes.split_first_mut().expect("second-moment lane");
        Self {
            v: &mut v[..n],
            max: match max.first_mut() {
                Some(max) => &mut max[..n],
                None => &mut [],
            },
        }
    }

    /// Folds `x` into the average at `i`; returns the value the denominator uses.
    #[inline(always)]
    pub fn update(&mut self, rule: SecondMomentRule<E>, i: usize, x: E) -> E {
        let v = rule.update(&mut self.v[i], x);
        if AMSGRAD {
            let max = self.max[i].max(v);
            self.max[i] = max;
            max
        } else {
            v
        }
    }

    /// The value the denominator uses, as stored at `i`.
    #[inline(always)]
    pub fn get(&self, i: usize) -> E {
        if AMSGRAD { self.max[i] } else { self.v[i] }
    }
}

/// The lanes of [`crate::blocks::AdamMomentsState`] within one chunk: `[m, v]`, or
/// `[m, v, v_max]` when `AMSGRAD`.
pub(crate) struct MomentLanes<'s, E, const AMSGRAD: bool> {
    m: &'s mut [E],
    second: SecondLanes<'s, E, AMSGRAD>,
}

impl<'s, E: Real, const AMSGRAD: bool> MomentLanes<'s, E, AMSGRAD> {
    /// The lanes, cut to the chunk's `n` elements.
    pub fn new(lanes: &'s mut [&mut [E]], n: usize) -> Self {
        let (m, second) = lanes
            .split_first_mut()
            .expect("Adam moments take two or three lanes");
        Self {
            m: &mut m[..n],
            second: SecondLanes::new(second, n),
        }
    }

    /// Folds `g` into both moments at `i`; returns `m` and the `v` the denominator uses.
    #[inline(always)]
    pub fn update(&mut self, rule: AdamRule<E>, i: usize, g: E) -> (E, E) {
        let m = rule.first.apply(self.m[i], g);
        self.m[i] = m;
        (m, self.second.update(rule.second, i, g * g))
    }

    /// AdaBelief's update: the second moment averages `(g - m)^2` against the new `m`.
    #[inline(always)]
    pub fn update_belief(&mut self, rule: AdamRule<E>, i: usize, g: E) -> (E, E) {
        let m = rule.first.apply(self.m[i], g);
        self.m[i] = m;
        let residual = g - m;
        (m, self.second.update(rule.second, i, residual * residual))
    }

    /// `m` and the `v` the denominator uses, as stored at `i`.
    #[inline(always)]
    pub fn get(&self, i: usize) -> (E, E) {
        (self.m[i], self.second.get(i))
    }
}

/// [`L2Decay`]: `x + lambda p`. With `lambda = 0` this is `x` for every finite `p`, so the
/// loop needs no branch (a branch would keep it from vectorizing).
#[derive(Clone, Copy)]
pub(crate) struct L2Rule<E>(E);

impl<E: Real> L2Rule<E> {
    pub fn new(block: &L2Decay) -> Self {
        Self(E::of(block.weight_decay))
    }

    #[inline(always)]
    pub fn apply(self, x: E, param: E) -> E {
        x + param * self.0
    }
}

/// [`ProximalDecay`]: `p / (1 + lr lambda)`; a division by exactly 1 without decay.
#[derive(Clone, Copy)]
pub(crate) struct ProximalRule<E>(E);

impl<E: Real> ProximalRule<E> {
    pub fn new(block: &ProximalDecay, lr: f64) -> Self {
        Self(E::of(1.0 + lr * block.weight_decay))
    }

    #[inline(always)]
    pub fn apply(self, param: E) -> E {
        param / self.0
    }
}

/// [`HeavyBall`]: the first step stores the direction, later ones
/// `buf <- momentum buf + (1 - dampening) d`; returns `buf`, or `d + momentum buf`.
///
/// Written without branches: on the first step the (zero) buffer is kept with weight 0
/// and the direction with weight 1, and the returned step is `a d + b buf` with `(a, b)`
/// `(0, 1)`, or `(1, momentum)` with Nesterov.
#[derive(Clone, Copy)]
pub(crate) struct HeavyBallRule<E> {
    keep: E,
    fresh: E,
    step_direction: E,
    step_buffer: E,
}

impl<E: Real> HeavyBallRule<E> {
    pub fn new(block: &HeavyBall, first: bool) -> Self {
        let [keep, fresh, step_direction, step_buffer] = Self::weights(block, first);
        Self {
            keep: E::of(keep),
            fresh: E::of(fresh),
            step_direction: E::of(step_direction),
            step_buffer: E::of(step_buffer),
        }
    }

    /// `[keep, fresh, step_direction, step_buffer]` as described above.
    pub fn weights(block: &HeavyBall, first: bool) -> [f64; 4] {
        let (keep, fresh) = if first {
            (0.0, 1.0)
        } else {
            (block.momentum, 1.0 - block.dampening)
        };
        let (step_direction, step_buffer) = if block.nesterov {
            (1.0, block.momentum)
        } else {
            (0.0, 1.0)
        };
        [keep, fresh, step_direction, step_buffer]
    }

    #[inline(always)]
    pub fn apply(self, buffer: &mut E, direction: E) -> E {
        let b = *buffer * self.keep + direction * self.fresh;
        *buffer = b;
        direction * self.step_direction + b * self.step_buffer
    }
}
