//! The CPU loops of the rules: each rule's phases (`crate::rule`) run over the buffers of
//! one parameter tensor, chunk by chunk in parallel ([`Lanes::pass`]).

use super::{Kernel, Lanes, Real, sum_each};
use crate::rule::{ElementRule, TwoPassRule};

/// The lanes of one chunk as the rules index them: the parameter first, then the state
/// lanes, each cut to the chunk's `n` elements.
fn rows<'a, E>(param: &'a mut [E], state: Vec<&'a mut [E]>, expected: usize) -> Vec<&'a mut [E]> {
    assert_eq!(
        state.len() + 1,
        expected,
        "the rule takes {expected} lanes, the parameter included"
    );
    let mut rows = Vec::with_capacity(expected);
    rows.push(param);
    rows.extend(state);
    rows
}

/// One step of an [`ElementRule`] with its coefficients for this step.
pub(crate) struct Elementwise<R: ElementRule> {
    pub coefficients: R::Coefficients<f64>,
    pub flag: bool,
}

impl<R: ElementRule> Kernel for Elementwise<R> {
    fn flag(&self) -> bool {
        self.flag
    }

    fn run<E: Real, const FLAG: bool>(&self, mut lanes: Lanes<'_, E>) {
        let c = R::cast::<E>(self.coefficients);
        let count = R::lanes(FLAG);
        lanes.pass(|Lanes { param, grad, state }| {
            let n = param.len();
            let grad = &grad[..n];
            let mut rows = rows(param, state, count);
            for (i, &g) in grad.iter().enumerate() {
                R::update(c, g, &mut rows, i, count, FLAG);
            }
            []
        });
    }
}

/// One step of a [`TwoPassRule`] with its coefficients for this step: the summing pass,
/// the scalars in `f64` (the sums are accumulated in `f64`), then the update pass.
pub(crate) struct TwoPass<R: TwoPassRule> {
    pub coefficients: R::Coefficients<f64>,
    pub flag: bool,
}

impl<R: TwoPassRule> Kernel for TwoPass<R> {
    fn flag(&self) -> bool {
        self.flag
    }

    fn run<E: Real, const FLAG: bool>(&self, mut lanes: Lanes<'_, E>) {
        let carried_lane = if R::CARRIES {
            let lane = lanes.state.pop().expect("the carried scalar's lane");
            assert_eq!(lane.len(), 1, "the carried scalar's lane holds one element");
            Some(lane)
        } else {
            None
        };
        let c = R::cast::<E>(self.coefficients);
        let count = R::lanes(FLAG);
        let totals = lanes.pass(|Lanes { param, grad, state }| {
            let n = param.len();
            let grad = &grad[..n];
            let mut rows = rows(param, state, count);
            sum_each(n, |i| R::sums(c, grad[i], &mut rows, i, count, FLAG))
        });
        let carried = carried_lane.as_ref().map_or(0.0, |lane| lane[0].wide());
        let scalars = R::scalars(self.coefficients, totals, carried);
        if let Some(lane) = carried_lane {
            lane[0] = E::of(R::next_carried(scalars));
        }
        let s = R::cast_scalars::<E>(scalars);
        lanes.pass(|Lanes { param, grad, state }| {
            let n = param.len();
            let grad = &grad[..n];
            let mut rows = rows(param, state, count);
            for (i, &g) in grad.iter().enumerate() {
                R::update(c, s, g, &mut rows, i, count, FLAG);
            }
            []
        });
    }
}
