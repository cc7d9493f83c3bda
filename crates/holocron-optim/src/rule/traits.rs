//! What the CPU loops and the kernels need of a rule, implemented for each rule by
//! [`element_rule!`] or [`two_pass_rule!`] from its [`dual!`](super::dual) phases.

use super::Real;

/// A rule as the CPU loops and the kernels run it: its lanes (the parameter first, then
/// the state tensors of the parameter's size, in the order of its cells struct; the last
/// [`Self::OPTIONAL_LANES`] exist only when the rule's flag is set, e.g. AMSGrad's
/// maximum), its coefficients, and its passes over the elements.
///
/// A rule that scales its step by whole-tensor sums (LARS, LAMB and RaLars, TAdam, AdamP)
/// is [`Self::SUMMED`]: a summing pass (which may also advance the state), the scalars from
/// the totals, once per tensor, then the update pass. An element-wise rule (AdaBelief,
/// AdEMAMix, Adan) has the update pass only, and no scalars. A rule that
/// [`Self::CARRIES`] a scalar of state across steps (TAdam's weight sum) has it as one more
/// lane, of one element, after the others.
pub(crate) trait Rule: Send + Sync + 'static {
    /// Lanes, the parameter included, with the flag unset.
    const LANES: usize;
    /// Lanes added by the flag.
    const OPTIONAL_LANES: usize;
    /// The number of coefficients (the length of their array form).
    #[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
    const COEFFICIENTS: usize;
    /// Whether the update pass needs whole-tensor sums (a summing pass runs first).
    const SUMMED: bool;
    /// Whether the rule keeps a one-element lane after the others.
    const CARRIES: bool;
    /// The coefficients of one step, in an element type.
    type Coefficients<F: Real>: Copy + Send + Sync;
    /// What the update pass needs of the totals.
    type Scalars<F: Real>: Copy + Send + Sync;

    /// The number of lanes with the flag `flag`.
    fn lanes(flag: bool) -> usize {
        Self::LANES + if flag { Self::OPTIONAL_LANES } else { 0 }
    }
    /// The coefficients rounded to `E`.
    fn cast<E: Real>(c: Self::Coefficients<f64>) -> Self::Coefficients<E>;
    /// The coefficients in their array form, as a kernel reads them.
    #[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
    fn to_vec(c: Self::Coefficients<f64>) -> Vec<f64>;
    /// The summing pass at element `i`: advances the cells where the rule does, and
    /// returns the element's terms of the (up to four) sums.
    fn sums<E: Real>(
        c: Self::Coefficients<E>,
        g: E,
        lanes: &mut [&mut [E]],
        i: usize,
        count: usize,
        flag: bool,
    ) -> [E; 4];
    /// The scalars from the totals and the carried scalar (0 when the rule carries none).
    fn scalars(c: Self::Coefficients<f64>, totals: [f64; 4], carried: f64) -> Self::Scalars<f64>;
    /// The carried scalar's next value.
    fn next_carried(s: Self::Scalars<f64>) -> f64;
    /// The scalars rounded to `E`.
    fn cast_scalars<E: Real>(s: Self::Scalars<f64>) -> Self::Scalars<E>;
    /// The update pass at element `i`.
    fn update<E: Real>(
        c: Self::Coefficients<E>,
        s: Self::Scalars<E>,
        g: E,
        lanes: &mut [&mut [E]],
        i: usize,
        count: usize,
        flag: bool,
    );
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod cube_traits {
    use cubecl::prelude::*;

    use crate::rule::cube::Sums;

    /// The kernel side of a [`Rule`](super::Rule).
    #[cube]
    pub(crate) trait CubeRule: 'static + Send + Sync {
        /// The summing pass at element `i`.
        fn sums<F: Float>(
            c: &Array<F>,
            g: &Array<F>,
            lanes: &mut Sequence<Array<F>>,
            i: usize,
            #[comptime] count: usize,
            #[comptime] flag: bool,
        ) -> Sums<F>;

        /// The update pass at element `i`, the scalars computed by the unit itself from
        /// the totals; unit 0 writes the carried scalar's next value to `next_carried`.
        #[allow(clippy::too_many_arguments)]
        fn update<F: Float>(
            c: &Array<F>,
            totals: &Array<F>,
            carried: &Array<F>,
            next_carried: &mut Array<F>,
            g: &Array<F>,
            lanes: &mut Sequence<Array<F>>,
            i: usize,
            #[comptime] count: usize,
            #[comptime] flag: bool,
        );
    }
}
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub(crate) use cube_traits::CubeRule;

/// The items of `impl Rule` that every rule has: lanes, coefficients `$c` (a struct of the
/// `dual!` modules in scope) and their casts; `summed` and `carries` as the rule declares.
macro_rules! rule_items {
    ($c:ident, $lanes:expr, $optional:expr, summed: $summed:expr, carries: $carries:expr) => {
        const LANES: usize = $lanes;
        const OPTIONAL_LANES: usize = $optional;
        const COEFFICIENTS: usize = cpu::$c::<f64>::FIELDS;
        const SUMMED: bool = $summed;
        const CARRIES: bool = $carries;
        type Coefficients<F: $crate::rule::Real> = cpu::$c<F>;

        fn cast<E: $crate::rule::Real>(c: cpu::$c<f64>) -> cpu::$c<E> {
            c.cast()
        }

        fn to_vec(c: cpu::$c<f64>) -> Vec<f64> {
            c.to_vec()
        }
    };
}
pub(crate) use rule_items;

/// Implements [`Rule`] (and, with a GPU feature, `CubeRule`) for an element-wise `$rule`
/// from the phase `update(c, g, x) flags(flag) -> x` of the `dual!` modules `cpu` and
/// `cube` in scope: no summing pass, no scalars.
macro_rules! element_rule {
    ($rule:ident {
        coefficients: $c:ident,
        cells: $x:ident,
        update: $update:ident,
        lanes: $lanes:expr,
        optional_lanes: $optional:expr $(,)?
    }) => {
        impl $crate::rule::Rule for $rule {
            $crate::rule::traits::rule_items!($c, $lanes, $optional, summed: false, carries: false);
            type Scalars<F: $crate::rule::Real> = ();

            fn sums<E: $crate::rule::Real>(
                _: cpu::$c<E>,
                _: E,
                _: &mut [&mut [E]],
                _: usize,
                _: usize,
                _: bool,
            ) -> [E; 4] {
                unreachable!("an element-wise rule has no summing pass")
            }

            fn scalars(_: cpu::$c<f64>, _: [f64; 4], _: f64) {}

            fn next_carried(_: ()) -> f64 {
                0.0
            }

            fn cast_scalars<E: $crate::rule::Real>(_: ()) {}

            #[inline(always)]
            fn update<E: $crate::rule::Real>(
                c: cpu::$c<E>,
                _: (),
                g: E,
                lanes: &mut [&mut [E]],
                i: usize,
                count: usize,
                flag: bool,
            ) {
                cpu::$update::<E>(c, g, cpu::$x::load(lanes, i, count), flag)
                    .store(lanes, i, count);
            }
        }

        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        const _: () = {
            use cubecl::prelude::*;
            use $crate::rule::cube::Sums;

            #[cube]
            impl $crate::rule::CubeRule for $rule {
                #[allow(unused_variables)]
                fn sums<F: Float>(
                    c: &Array<F>,
                    g: &Array<F>,
                    lanes: &mut Sequence<Array<F>>,
                    i: usize,
                    #[comptime] count: usize,
                    #[comptime] flag: bool,
                ) -> Sums<F> {
                    // Never launched (the rule is not summed); zeros keep the kernel valid.
                    let zero = F::new(0.0);
                    Sums::<F> { s0: zero, s1: zero, s2: zero, s3: zero }
                }

                #[allow(clippy::too_many_arguments, unused_variables)]
                fn update<F: Float>(
                    c: &Array<F>,
                    totals: &Array<F>,
                    carried: &Array<F>,
                    next_carried: &mut Array<F>,
                    g: &Array<F>,
                    lanes: &mut Sequence<Array<F>>,
                    i: usize,
                    #[comptime] count: usize,
                    #[comptime] flag: bool,
                ) {
                    let cells = cube::$x::<F>::load_lanes(lanes, i, count);
                    let next = cube::$update::<F>(cube::$c::<F>::load(c), g[i], cells, flag);
                    next.store_lanes(lanes, i, count);
                }
            }
        };
    };
}
pub(crate) use element_rule;

/// Implements [`Rule`] (and, with a GPU feature, `CubeRule`) for a summed `$rule` from
/// the phases of the `dual!` modules `cpu` and `cube` in scope: `advance(c, g, x)
/// flags(flag) -> x` (optional), `terms(c, g, x) flags(flag) -> t`, `scalars(c, t,
/// carried) -> s` and `update(c, s, g, x) flags(flag) -> x`; `carries` names the field of
/// `s` with the carried scalar's next value; `update_stores` is the number of lanes the
/// update pass writes back (all by default; 1 when it changes only the parameter).
macro_rules! two_pass_rule {
    ($rule:ident {
        coefficients: $c:ident,
        cells: $x:ident,
        terms: $t:ident,
        scalars: $s:ident,
        $(advance: $advance:ident,)?
        terms_of: $terms:ident,
        scalars_of: $scalars:ident,
        update: $update:ident,
        lanes: $lanes:expr,
        optional_lanes: $optional:expr
        $(, carries: $carried:ident)?
        $(, update_stores: $stores:expr)? $(,)?
    }) => {
        impl $crate::rule::Rule for $rule {
            $crate::rule::traits::rule_items!(
                $c, $lanes, $optional,
                summed: true,
                carries: <[&str]>::len(&[$(stringify!($carried))?]) == 1
            );
            type Scalars<F: $crate::rule::Real> = cpu::$s<F>;

            #[inline(always)]
            fn sums<E: $crate::rule::Real>(
                c: cpu::$c<E>,
                g: E,
                lanes: &mut [&mut [E]],
                i: usize,
                count: usize,
                flag: bool,
            ) -> [E; 4] {
                let cells = cpu::$x::load(lanes, i, count);
                $(
                    let cells = cpu::$advance::<E>(c, g, cells, flag);
                    cells.store(lanes, i, count);
                )?
                let mut terms = [E::new(0.0); 4];
                cpu::$terms::<E>(c, g, cells, flag).write(&mut terms);
                terms
            }

            fn scalars(c: cpu::$c<f64>, totals: [f64; 4], carried: f64) -> cpu::$s<f64> {
                cpu::$scalars::<f64>(c, cpu::$t::read(&totals), carried)
            }

            fn next_carried(_s: cpu::$s<f64>) -> f64 {
                0.0 $(+ _s.$carried)?
            }

            fn cast_scalars<E: $crate::rule::Real>(s: cpu::$s<f64>) -> cpu::$s<E> {
                s.cast()
            }

            #[inline(always)]
            fn update<E: $crate::rule::Real>(
                c: cpu::$c<E>,
                s: cpu::$s<E>,
                g: E,
                lanes: &mut [&mut [E]],
                i: usize,
                count: usize,
                flag: bool,
            ) {
                let cells = cpu::$x::load(lanes, i, count);
                let stores = count $(.min($stores))?;
                cpu::$update::<E>(c, s, g, cells, flag).store(lanes, i, stores);
            }
        }

        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        const _: () = {
            use cubecl::prelude::*;
            use $crate::rule::cube::Sums;

            #[cube]
            impl $crate::rule::CubeRule for $rule {
                fn sums<F: Float>(
                    c: &Array<F>,
                    g: &Array<F>,
                    lanes: &mut Sequence<Array<F>>,
                    i: usize,
                    #[comptime] count: usize,
                    #[comptime] flag: bool,
                ) -> Sums<F> {
                    let coefficients = cube::$c::<F>::load(c);
                    let cells = cube::$x::<F>::load_lanes(lanes, i, count);
                    $(
                        let cells = cube::$advance::<F>(coefficients, g[i], cells, flag);
                        cells.store_lanes(lanes, i, count);
                    )?
                    let terms = cube::$terms::<F>(coefficients, g[i], cells, flag);
                    Sums::<F> {
                        s0: terms.get(0usize),
                        s1: terms.get(1usize),
                        s2: terms.get(2usize),
                        s3: terms.get(3usize),
                    }
                }

                #[allow(clippy::too_many_arguments, unused_variables)]
                fn update<F: Float>(
                    c: &Array<F>,
                    totals: &Array<F>,
                    carried: &Array<F>,
                    next_carried: &mut Array<F>,
                    g: &Array<F>,
                    lanes: &mut Sequence<Array<F>>,
                    i: usize,
                    #[comptime] count: usize,
                    #[comptime] flag: bool,
                ) {
                    let coefficients = cube::$c::<F>::load(c);
                    let scalars =
                        cube::$scalars::<F>(coefficients, cube::$t::<F>::load(totals), carried[0]);
                    let cells = cube::$x::<F>::load_lanes(lanes, i, count);
                    let next = cube::$update::<F>(coefficients, scalars, g[i], cells, flag);
                    next.store_lanes(lanes, i, comptime!(count $(.min($stores))?));
                    $(
                        if i == 0 {
                            next_carried[0] = scalars.$carried;
                        }
                    )?
                }
            }
        };
    };
}
pub(crate) use two_pass_rule;

/// A [`Rule`] with its kernels where the GPU features are on.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub(crate) trait FusedRule: Rule + CubeRule {}
#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl<R: Rule + CubeRule> FusedRule for R {}
/// A [`Rule`] with its kernels where the GPU features are on.
#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
pub(crate) trait FusedRule: Rule {}
#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
impl<R: Rule> FusedRule for R {}
