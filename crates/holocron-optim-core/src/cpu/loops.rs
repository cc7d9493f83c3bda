//! The CPU loops of the rules: each rule's phases (`crate::rule`) run over the buffers of
//! one parameter tensor, chunk by chunk in parallel ([`Lanes::pass`]).

use super::isa::{self, ChunkLoop};
use super::{Kernel, Lanes, Terms, sum_each};
use crate::{Real, Rule};

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
pub struct RuleStep<R: Rule> {
    /// The coefficients of this step.
    pub coefficients: R::Coefficients<f64>,
    /// The rule's flag (AMSGrad, or LARS's momentum).
    pub flag: bool,
}

impl<R: Rule> Kernel for RuleStep<R> {
    fn flag(&self) -> bool {
        self.flag
    }

    fn stashes(&self) -> bool {
        R::STASHES
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
        // Where the gradient may be written over, a rule that stashes leaves in it what the
        // update pass reads.
        assert!(
            lanes.writable_grad.is_none() || R::STASHES,
            "a writable gradient for a rule that stashes nothing"
        );
        let read_param = R::sums_read_param(&self.coefficients);
        let totals = if R::SUMMED {
            lanes.pass(
                |Lanes {
                     param,
                     grad,
                     writable_grad,
                     state,
                     ..
                 }| {
                    let n = param.len();
                    let rows = rows(param, state, count);
                    // A rule that stashes reads the parameter in this pass (LAMB's norm), so
                    // the stashing loop has no instance without it.
                    match (writable_grad, read_param) {
                        (Some(grad), _) => isa::run(Sums::<R, E, FLAG, true, &mut [E]> {
                            c,
                            grad: &mut grad[..n],
                            rows,
                        }),
                        (None, true) => isa::run(Sums::<R, E, FLAG, true, &[E]> {
                            c,
                            grad: &grad[..n],
                            rows,
                        }),
                        (None, false) => isa::run(Sums::<R, E, FLAG, false, &[E]> {
                            c,
                            grad: &grad[..n],
                            rows,
                        }),
                    }
                },
            )
        } else {
            [0.0; 4]
        };
        let carried = carried_lane.as_ref().map_or(0.0, |lane| lane[0].wide());
        let scalars = R::scalars(self.coefficients, totals, carried);
        if let Some(lane) = carried_lane {
            lane[0] = E::of(R::next_carried(scalars));
        }
        let s = R::cast_scalars::<E>(scalars);
        if !R::UPDATE_READS_GRAD {
            lanes.grad = &[];
            lanes.gather = None;
        }
        lanes.pass(
            |Lanes {
                 param,
                 grad,
                 writable_grad,
                 state,
                 ..
             }| {
                let rows = rows(param, state, count);
                match writable_grad {
                    Some(stashed) => isa::run(Update::<R, E, FLAG, true> {
                        c,
                        s,
                        grad: stashed,
                        rows,
                    }),
                    None => isa::run(Update::<R, E, FLAG, false> { c, s, grad, rows }),
                }
                []
            },
        );
    }
}

/// A summed rule's first pass over one chunk: the chunk's sums; where the gradient `G` is
/// `&mut [E]`, each element's stashed value is written over it; without `PARAM` the
/// parameter's lane is not read ([`Rule::sums_read_param`]).
struct Sums<'a, R: Rule, E: Real, const FLAG: bool, const PARAM: bool, G> {
    c: R::Coefficients<E>,
    grad: G,
    rows: [&'a mut [E]; MAX_LANES],
}

impl<R: Rule, E: Real, const FLAG: bool, const PARAM: bool, G> ChunkLoop
    for Sums<'_, R, E, FLAG, PARAM, G>
where
    Self: Terms<E, 4>,
{
    type Output = [f64; 4];

    #[inline(always)]
    fn run(mut self) -> [f64; 4] {
        sum_each(self.rows[0].len(), &mut self)
    }
}

impl<R: Rule, E: Real, const FLAG: bool, const PARAM: bool> Terms<E, 4>
    for Sums<'_, R, E, FLAG, PARAM, &[E]>
{
    const USED: usize = R::SUMS;

    #[inline(always)]
    fn at(&mut self, i: usize) -> [E; 4] {
        // A constant of this instance, so that the lane tests fold away.
        let count = R::lanes(FLAG);
        R::sums(self.c, self.grad[i], &mut self.rows, i, count, FLAG, PARAM)
    }
}

impl<R: Rule, E: Real, const FLAG: bool, const PARAM: bool> Terms<E, 4>
    for Sums<'_, R, E, FLAG, PARAM, &mut [E]>
{
    const USED: usize = R::SUMS;

    #[inline(always)]
    fn at(&mut self, i: usize) -> [E; 4] {
        let count = R::lanes(FLAG);
        R::sums_stashing(
            self.c,
            &mut self.grad[i],
            &mut self.rows,
            i,
            count,
            FLAG,
            PARAM,
        )
    }
}

/// A rule's update pass over one chunk; with `STASHED`, `grad` holds what the summing pass
/// stashed there.
struct Update<'a, R: Rule, E: Real, const FLAG: bool, const STASHED: bool> {
    c: R::Coefficients<E>,
    s: R::Scalars<E>,
    /// The gradient (empty where the rule's update does not read it), or the stashed values.
    grad: &'a [E],
    rows: [&'a mut [E]; MAX_LANES],
}

impl<R: Rule, E: Real, const FLAG: bool, const STASHED: bool> ChunkLoop
    for Update<'_, R, E, FLAG, STASHED>
{
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Update {
            c,
            s,
            grad,
            mut rows,
        } = self;
        let count = R::lanes(FLAG);
        let n = rows[0].len();
        if STASHED {
            for (i, &stashed) in grad[..n].iter().enumerate() {
                R::update_stashed(c, s, stashed, &mut rows, i, count, FLAG);
            }
        } else if R::UPDATE_READS_GRAD {
            for (i, &g) in grad[..n].iter().enumerate() {
                R::update(c, s, g, &mut rows, i, count, FLAG);
            }
        } else {
            for i in 0..n {
                R::update(c, s, E::of(0.0), &mut rows, i, count, FLAG);
            }
        }
    }
}
