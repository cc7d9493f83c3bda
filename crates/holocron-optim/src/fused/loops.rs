//! The CPU loops of the rules: each rule's phases (`crate::rule`) run over the buffers of
//! one parameter tensor, chunk by chunk in parallel ([`Lanes::pass`]).

use super::{Kernel, Lanes, Real, sum_each};
use crate::rule::Rule;

/// The most lanes a rule has (Adan with AMSGrad: the parameter and five state lanes).
const MAX_LANES: usize = 6;

/// The lanes of one chunk as the rules index them: the parameter first, then the state
/// lanes, each cut to the chunk's `n` elements, in a fixed-size array on the stack (the
/// unused entries empty). Kept on the stack and cut to one length, the lanes let the
/// compiler drop the bounds checks and vectorize the loop after inlining the rule; behind
/// a heap `Vec` it reloads every lane's address at each element.
fn rows<'a, E>(
    param: &'a mut [E],
    state: Vec<&'a mut [E]>,
    expected: usize,
) -> [&'a mut [E]; MAX_LANES] {
    assert!(
        state.len() + 1 == expected && expected <= MAX_LANES,
        "the rule takes {expected} lanes, the parameter included"
    );
    let n = param.len();
    let mut rows: [&'a mut [E]; MAX_LANES] = Default::default();
    for (row, lane) in rows[1..].iter_mut().zip(state) {
        *row = &mut lane[..n];
    }
    rows[0] = param;
    rows
}

/// One step of a [`Rule`] with its coefficients for this step: for a summed rule the
/// summing pass and the scalars in `f64` (the sums are accumulated in `f64`), then the
/// update pass.
pub(crate) struct RuleStep<R: Rule> {
    pub coefficients: R::Coefficients<f64>,
    pub flag: bool,
}

impl<R: Rule> Kernel for RuleStep<R> {
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
        let totals = if R::SUMMED {
            lanes.pass(|Lanes { param, grad, state }| {
                let n = param.len();
                let grad = &grad[..n];
                // A constant of this instance (not captured), so that the lane tests fold away.
                let count = R::lanes(FLAG);
                let mut rows = rows(param, state, count);
                sum_each(n, |i| R::sums(c, grad[i], &mut rows, i, count, FLAG))
            })
        } else {
            [0.0; 4]
        };
        let carried = carried_lane.as_ref().map_or(0.0, |lane| lane[0].wide());
        let scalars = R::scalars(self.coefficients, totals, carried);
        if let Some(lane) = carried_lane {
            lane[0] = E::of(R::next_carried(scalars));
        }
        let s = R::cast_scalars::<E>(scalars);
        lanes.pass(|Lanes { param, grad, state }| {
            let n = param.len();
            let grad = &grad[..n];
            let count = R::lanes(FLAG);
            let mut rows = rows(param, state, count);
            for (i, &g) in grad.iter().enumerate() {
                R::update(c, s, g, &mut rows, i, count, FLAG);
            }
            []
        });
    }
}
