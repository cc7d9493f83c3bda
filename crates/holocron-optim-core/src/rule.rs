//! What the CPU loops, the kernels and the device-tensor step need of a rule, implemented
//! for each rule by [`element_rule!`](crate::element_rule!) or
//! [`two_pass_rule!`](crate::two_pass_rule!) from its [`dual!`](crate::dual!) phases.

use crate::{Arith, Real};

/// A rule as the CPU loops, the kernels and [`crate::tensor::step`] run it: its lanes (the
/// parameter first, then the state tensors of the parameter's size, in the order of its
/// cells struct; the last [`Self::OPTIONAL_LANES`] exist only when the rule's flag is set,
/// e.g. AMSGrad's maximum), its coefficients, and its passes over the elements.
///
/// A rule that scales its step by whole-tensor sums (LARS, LAMB and RaLars, TAdam, AdamP)
/// is [`Self::SUMMED`]: a summing pass (which may also advance the state), the scalars from
/// the totals, once per tensor, then the update pass. An element-wise rule (AdaBelief,
/// AdEMAMix, Adan) has the update pass only, and no scalars. A rule that
/// [`Self::CARRIES`] a scalar of state across steps (TAdam's weight sum) has it as one more
/// lane, of one element, after the others.
///
/// The methods on `lanes` (slices, one element `i` at a time) are the CPU loops'; those on
/// `cells` (one value per field, any [`Arith`]) are the device tensors'.
pub trait Rule: Send + Sync + 'static {
    /// Lanes, the parameter included, with the flag unset.
    const LANES: usize;
    /// Lanes added by the flag.
    const OPTIONAL_LANES: usize;
    /// The number of coefficients (the length of their array form).
    const COEFFICIENTS: usize;
    /// Whether the update pass needs whole-tensor sums (a summing pass runs first).
    const SUMMED: bool;
    /// How many of the four sums the summing pass fills (0 for an element-wise rule): the
    /// CPU loops add up only these.
    const SUMS: usize;
    /// Whether the update pass reads the gradient: a rule whose summing pass already folded
    /// it into the moments does not, and the CPU loops then pass zero for it rather than
    /// read it again (for a gradient in another layout, a second strided read).
    const UPDATE_READS_GRAD: bool;
    /// Whether the rule keeps a one-element lane after the others.
    const CARRIES: bool;
    /// Whether the update pass takes, in place of the gradient, a value per element that
    /// the summing pass has already computed (LAMB's direction `u`): a summing pass that
    /// may write over the gradient leaves it there ([`Self::sums_stashing`]) and the update
    /// pass reads it back ([`Self::update_stashed`]), instead of computing it again with its
    /// square root and division; elsewhere [`Self::update`] computes it itself.
    const STASHES: bool;
    /// The coefficients of one step, in an element type.
    type Coefficients<F: Arith>: Copy + Send + Sync;
    /// What the update pass needs of the totals.
    type Scalars<F: Arith>: Copy + Send + Sync;

    /// The number of lanes with the flag `flag`.
    fn lanes(flag: bool) -> usize {
        Self::LANES + if flag { Self::OPTIONAL_LANES } else { 0 }
    }
    /// The coefficients rounded to `E`.
    fn cast<E: Arith>(c: Self::Coefficients<f64>) -> Self::Coefficients<E>;
    /// The coefficients in their array form, as a kernel reads them.
    fn to_vec(c: Self::Coefficients<f64>) -> Vec<f64>;
    /// Whether the summing pass with coefficients `c` reads the parameter: a rule whose
    /// terms use it only for L2 decay (TAdam's distance) says no when the decay is 0, and
    /// the CPU loops then leave its lane out of that pass (`param` false below): TAdam's
    /// summing pass then reads 12 bytes per `f32` parameter instead of 16.
    fn sums_read_param(c: &Self::Coefficients<f64>) -> bool {
        let _ = c;
        true
    }
    /// The summing pass at element `i`: advances the cells where the rule does, and
    /// returns the element's terms of the (up to four) sums. Without `param` the
    /// parameter's cell is zero and its lane is neither read nor written (only where
    /// [`Self::sums_read_param`] says so).
    fn sums<E: Real>(
        c: Self::Coefficients<E>,
        g: E,
        lanes: &mut [&mut [E]],
        i: usize,
        count: usize,
        flag: bool,
        param: bool,
    ) -> [E; 4];
    /// [`Self::sums`] that also writes the stashed value over the gradient `g` (a rule that
    /// [`Self::STASHES`]).
    #[allow(clippy::too_many_arguments)]
    fn sums_stashing<E: Real>(
        c: Self::Coefficients<E>,
        g: &mut E,
        lanes: &mut [&mut [E]],
        i: usize,
        count: usize,
        flag: bool,
        param: bool,
    ) -> [E; 4];
    /// The summing pass on all cells at once (the rule's cells struct in its array form,
    /// absent lanes zero): advances them where the rule does, and returns the terms.
    fn sums_of<A: Arith>(c: Self::Coefficients<A>, g: A, cells: &mut [A], flag: bool) -> [A; 4];
    /// The scalars from the totals and the carried scalar (0 when the rule carries none).
    fn scalars<A: Arith>(c: Self::Coefficients<A>, totals: [A; 4], carried: A) -> Self::Scalars<A>;
    /// The carried scalar's next value (0 when the rule carries none).
    fn next_carried<A: Arith>(s: Self::Scalars<A>) -> A;
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
    /// The update pass at element `i` from the value [`Self::sums_stashing`] left (a rule
    /// that [`Self::STASHES`]); for a summed rule that stashes nothing, [`Self::update`].
    fn update_stashed<E: Real>(
        c: Self::Coefficients<E>,
        s: Self::Scalars<E>,
        stashed: E,
        lanes: &mut [&mut [E]],
        i: usize,
        count: usize,
        flag: bool,
    );
    /// The update pass on all cells at once.
    fn update_of<A: Arith>(
        c: Self::Coefficients<A>,
        s: Self::Scalars<A>,
        g: A,
        cells: &mut [A],
        flag: bool,
    );
}

/// The items of `impl Rule` that every rule has: lanes, coefficients `$c` (a struct of the
/// `dual!` module) and their casts; `sums` (how many of the four sums the rule fills),
/// `carries` and `stashes` as the rule declares.
#[doc(hidden)]
#[macro_export]
macro_rules! rule_items {
    (
        $c:ident, $lanes:expr, $optional:expr,
        sums: $sums:expr, carries: $carries:expr, update_reads_grad: $reads:expr,
        stashes: $stashes:expr
    ) => {
        const LANES: usize = $lanes;
        const OPTIONAL_LANES: usize = $optional;
        const COEFFICIENTS: usize = $c::<f64>::FIELDS;
        const SUMMED: bool = $sums > 0;
        const SUMS: usize = $sums;
        const UPDATE_READS_GRAD: bool = $reads;
        const CARRIES: bool = $carries;
        const STASHES: bool = $stashes;
        type Coefficients<F: $crate::Arith> = $c<F>;

        fn cast<E: $crate::Arith>(c: $c<f64>) -> $c<E> {
            c.cast()
        }

        fn to_vec(c: $c<f64>) -> Vec<f64> {
            c.to_vec()
        }
    };
}

/// The kernels' side of [`Rule`], written once here and expanded by
/// [`kernels!`](crate::kernels!) in the crate that launches them (its CubeCL version).
#[doc(hidden)]
#[macro_export]
macro_rules! cube_rule_trait {
    () => {
        /// The kernel side of a rule.
        #[cube]
        pub trait CubeRule: 'static + Send + Sync {
            /// The summing pass at element `i`.
            fn sums<F: Float>(
                c: &Lane<F>,
                g: &Lane<F>,
                lanes: &mut Sequence<Lane<F>>,
                i: usize,
                #[comptime] count: usize,
                #[comptime] flag: bool,
            ) -> Sums<F>;

            /// The update pass at element `i`, the scalars computed by the unit itself from
            /// the totals; unit 0 writes the carried scalar's next value to `next_carried`.
            #[allow(clippy::too_many_arguments)]
            fn update<F: Float>(
                c: &Lane<F>,
                totals: &Lane<F>,
                carried: &Lane<F>,
                next_carried: &mut Lane<F>,
                g: &Lane<F>,
                lanes: &mut Sequence<Lane<F>>,
                i: usize,
                #[comptime] count: usize,
                #[comptime] flag: bool,
            );
        }
    };
}

/// Implements [`Rule`] (`cpu` mode, here) or the kernels' `CubeRule` (`cube` mode, in the
/// crate that expands [`kernels!`](crate::kernels!)) for an element-wise `$rule` from the
/// phase `update(c, g, x) flags(flag) -> x` of the `dual!` module it sits in: no summing
/// pass, no scalars.
#[doc(hidden)]
#[macro_export]
macro_rules! element_rule {
    (cpu; $rule:ty {
        coefficients: $c:ident,
        cells: $x:ident,
        update: $update:ident,
        lanes: $lanes:expr,
        optional_lanes: $optional:expr $(,)?
    }) => {
        impl $crate::Rule for $rule {
            $crate::rule_items!(
                $c, $lanes, $optional,
                sums: 0, carries: false, update_reads_grad: true, stashes: false
            );
            type Scalars<F: $crate::Arith> = ();

            fn sums_stashing<E: $crate::Real>(
                _: $c<E>,
                _: &mut E,
                _: &mut [&mut [E]],
                _: usize,
                _: usize,
                _: bool,
                _: bool,
            ) -> [E; 4] {
                unreachable!("an element-wise rule has no summing pass")
            }

            fn update_stashed<E: $crate::Real>(
                _: $c<E>,
                _: (),
                _: E,
                _: &mut [&mut [E]],
                _: usize,
                _: usize,
                _: bool,
            ) {
                unreachable!("an element-wise rule stashes nothing")
            }

            fn sums<E: $crate::Real>(
                _: $c<E>,
                _: E,
                _: &mut [&mut [E]],
                _: usize,
                _: usize,
                _: bool,
                _: bool,
            ) -> [E; 4] {
                unreachable!("an element-wise rule has no summing pass")
            }

            fn sums_of<A: $crate::Arith>(_: $c<A>, _: A, _: &mut [A], _: bool) -> [A; 4] {
                unreachable!("an element-wise rule has no summing pass")
            }

            fn scalars<A: $crate::Arith>(_: $c<A>, _: [A; 4], _: A) {}

            fn next_carried<A: $crate::Arith>(_: ()) -> A {
                A::new(0.0)
            }

            fn cast_scalars<E: $crate::Real>(_: ()) {}

            #[inline(always)]
            fn update<E: $crate::Real>(
                c: $c<E>,
                _: (),
                g: E,
                lanes: &mut [&mut [E]],
                i: usize,
                count: usize,
                flag: bool,
            ) {
                $update::<E>(c, g, $x::load(lanes, i, count), flag).store(lanes, i, count);
            }

            fn update_of<A: $crate::Arith>(c: $c<A>, _: (), g: A, cells: &mut [A], flag: bool) {
                $update::<A>(c, g, $x::read(cells), flag).write(cells);
            }
        }
    };

    (cube; $rule:ty {
        coefficients: $c:ident,
        cells: $x:ident,
        update: $update:ident,
        lanes: $lanes:expr,
        optional_lanes: $optional:expr $(,)?
    }) => {
        #[cube]
        impl super::CubeRule for $rule {
            #[allow(unused_variables)]
            fn sums<F: Float>(
                c: &Lane<F>,
                g: &Lane<F>,
                lanes: &mut Sequence<Lane<F>>,
                i: usize,
                #[comptime] count: usize,
                #[comptime] flag: bool,
            ) -> super::sums::Sums<F> {
                // Never launched (the rule is not summed); zeros keep the kernel valid.
                let zero = F::new(0.0);
                super::sums::Sums::<F> { s0: zero, s1: zero, s2: zero, s3: zero }
            }

            #[allow(clippy::too_many_arguments, unused_variables)]
            fn update<F: Float>(
                c: &Lane<F>,
                totals: &Lane<F>,
                carried: &Lane<F>,
                next_carried: &mut Lane<F>,
                g: &Lane<F>,
                lanes: &mut Sequence<Lane<F>>,
                i: usize,
                #[comptime] count: usize,
                #[comptime] flag: bool,
            ) {
                let cells = $x::<F>::load_lanes(lanes, i, count);
                // `self::`: see `kernels!` (CubeCL 0.11 takes a call's context from its first token).
                let next = self::$update::<F>($c::<F>::load(c), g[i], cells, flag);
                next.store_lanes(lanes, i, count);
            }
        }
    };
}

/// Implements [`Rule`] (`cpu` mode) or the kernels' `CubeRule` (`cube` mode) for a summed
/// `$rule` from the phases of the `dual!` module it sits in: `advance(c, g, x) flags(flag)
/// -> x` (optional), `terms(c, g, x) flags(flag) -> t`, `scalars(c, t, carried) -> s` and
/// `update(c, s, g, x) flags(flag) -> x`; `carries` names the field of `s` with the carried
/// scalar's next value; `update_stores` is the number of lanes the update pass writes back
/// (all by default; 1 when it changes only the parameter); `update_reads_grad: false` says
/// that `update` ignores its `g` (the kernels read it all the same); `stash` names a phase
/// `stash(c, x) flags(flag) -> F` of the cells after `advance`, whose value `update` takes
/// in place of `g`: the CPU loops keep it from the summing pass where they may write over
/// the gradient ([`Rule::STASHES`]), every other path computes it in the update pass;
/// `sums_read_param_for` names the coefficient of the L2 decay through which alone `advance`
/// and `terms` read the parameter: where it is 0, the CPU loops' summing pass leaves the
/// parameter's lane out ([`Rule::sums_read_param`]).
#[doc(hidden)]
#[macro_export]
macro_rules! two_pass_rule {
    (cpu; $rule:ty {
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
        $(, update_stores: $stores:expr)?
        $(, update_reads_grad: $reads:expr)?
        $(, stash: $stash:ident)?
        $(, sums_read_param_for: $decay:ident)? $(,)?
    }) => {
        impl $crate::Rule for $rule {
            $crate::rule_items!(
                $c, $lanes, $optional,
                sums: $t::<f64>::FIELDS,
                carries: <[&str]>::len(&[$(stringify!($carried))?]) == 1,
                update_reads_grad: true $(&& $reads)?,
                stashes: <[&str]>::len(&[$(stringify!($stash))?]) == 1
            );
            type Scalars<F: $crate::Arith> = $s<F>;

            $(
                fn sums_read_param(c: &$c<f64>) -> bool {
                    c.$decay != 0.0
                }
            )?

            #[inline(always)]
            fn sums<E: $crate::Real>(
                c: $c<E>,
                g: E,
                lanes: &mut [&mut [E]],
                i: usize,
                count: usize,
                flag: bool,
                param: bool,
            ) -> [E; 4] {
                // The value a rule stashes is part of its terms (computed once), dropped here.
                let mut g = g;
                Self::sums_stashing(c, &mut g, lanes, i, count, flag, param)
            }

            #[inline(always)]
            fn sums_stashing<E: $crate::Real>(
                c: $c<E>,
                g: &mut E,
                lanes: &mut [&mut [E]],
                i: usize,
                count: usize,
                flag: bool,
                param: bool,
            ) -> [E; 4] {
                let grad = *g;
                let first = usize::from(!param);
                let cells = $x::load_from(lanes, i, first, count);
                $(
                    let cells = $advance::<E>(c, grad, cells, flag);
                    cells.store_from(lanes, i, first, count);
                )?
                $(*g = $stash::<E>(c, cells, flag);)?
                let mut terms = [E::new(0.0); 4];
                $terms::<E>(c, grad, cells, flag).write(&mut terms);
                terms
            }

            fn sums_of<A: $crate::Arith>(c: $c<A>, g: A, cells: &mut [A], flag: bool) -> [A; 4] {
                let x = $x::read(cells);
                $(
                    let x = $advance::<A>(c, g, x, flag);
                    x.write(cells);
                )?
                let mut terms = [A::new(0.0); 4];
                $terms::<A>(c, g, x, flag).write(&mut terms);
                terms
            }

            fn scalars<A: $crate::Arith>(c: $c<A>, totals: [A; 4], carried: A) -> $s<A> {
                $scalars::<A>(c, $t::read(&totals), carried)
            }

            #[allow(unreachable_code)]
            fn next_carried<A: $crate::Arith>(_s: $s<A>) -> A {
                $(return _s.$carried;)?
                A::new(0.0)
            }

            fn cast_scalars<E: $crate::Real>(s: $s<f64>) -> $s<E> {
                s.cast()
            }

            #[inline(always)]
            #[allow(unused_variables)]
            fn update<E: $crate::Real>(
                c: $c<E>,
                s: $s<E>,
                g: E,
                lanes: &mut [&mut [E]],
                i: usize,
                count: usize,
                flag: bool,
            ) {
                $(let g = $stash::<E>(c, $x::load(lanes, i, count), flag);)?
                Self::update_stashed(c, s, g, lanes, i, count, flag)
            }

            #[inline(always)]
            fn update_stashed<E: $crate::Real>(
                c: $c<E>,
                s: $s<E>,
                stashed: E,
                lanes: &mut [&mut [E]],
                i: usize,
                count: usize,
                flag: bool,
            ) {
                let cells = $x::load(lanes, i, count);
                let stores = count $(.min($stores))?;
                $update::<E>(c, s, stashed, cells, flag).store(lanes, i, stores);
            }

            #[allow(unused_variables)]
            fn update_of<A: $crate::Arith>(c: $c<A>, s: $s<A>, g: A, cells: &mut [A], flag: bool) {
                let x = $x::read(cells);
                $(let g = $stash::<A>(c, x, flag);)?
                $update::<A>(c, s, g, x, flag).write(cells);
            }
        }
    };

    (cube; $rule:ty {
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
        $(, update_stores: $stores:expr)?
        $(, update_reads_grad: $reads:expr)?
        $(, stash: $stash:ident)?
        $(, sums_read_param_for: $decay:ident)? $(,)?
    }) => {
        #[cube]
        impl super::CubeRule for $rule {
            fn sums<F: Float>(
                c: &Lane<F>,
                g: &Lane<F>,
                lanes: &mut Sequence<Lane<F>>,
                i: usize,
                #[comptime] count: usize,
                #[comptime] flag: bool,
            ) -> super::sums::Sums<F> {
                let coefficients = $c::<F>::load(c);
                let cells = $x::<F>::load_lanes(lanes, i, count);
                $(
                    let cells = self::$advance::<F>(coefficients, g[i], cells, flag);
                    cells.store_lanes(lanes, i, count);
                )?
                let terms = self::$terms::<F>(coefficients, g[i], cells, flag);
                super::sums::Sums::<F> {
                    s0: terms.get(0usize),
                    s1: terms.get(1usize),
                    s2: terms.get(2usize),
                    s3: terms.get(3usize),
                }
            }

            #[allow(clippy::too_many_arguments, unused_variables)]
            fn update<F: Float>(
                c: &Lane<F>,
                totals: &Lane<F>,
                carried: &Lane<F>,
                next_carried: &mut Lane<F>,
                g: &Lane<F>,
                lanes: &mut Sequence<Lane<F>>,
                i: usize,
                #[comptime] count: usize,
                #[comptime] flag: bool,
            ) {
                let coefficients = $c::<F>::load(c);
                let scalars = self::$scalars::<F>(coefficients, $t::<F>::load(totals), carried[0]);
                let cells = $x::<F>::load_lanes(lanes, i, count);
                let input = g[i];
                $(let input = self::$stash::<F>(coefficients, cells, flag);)?
                let next = self::$update::<F>(coefficients, scalars, input, cells, flag);
                next.store_lanes(lanes, i, comptime!(count $(.min($stores))?));
                $(
                    if i == 0 {
                        next_carried[0] = scalars.$carried;
                    }
                )?
            }
        }
    };
}
