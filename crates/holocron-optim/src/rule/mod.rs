//! The numerics core: each optimizer's update rule, written once and instantiated twice,
//! as a plain Rust function generic over [`Real`] (`f32`, `f64`; the multi-threaded CPU
//! loops of `crate::fused`) and as a CubeCL `#[cube]` function generic over `Float` (the
//! GPU kernels of `crate::fused::cube`). Nothing here depends on Burn.
//!
//! A rule is a handful of *phases*, each a function of scalars:
//!
//! - element-wise rules ([`element_rule!`]: AdaBelief, AdEMAMix, Adan) have one, `update`,
//!   from the step's coefficients, one gradient element and the element's *cells* (the
//!   parameter and its state) to the new cells;
//! - the rules that scale a step by whole-tensor sums ([`two_pass_rule!`]: LARS, LAMB and
//!   RaLars, TAdam, AdamP) have four: `advance` (state updates the sums need), `terms` (one
//!   element's share of the sums), `scalars` (from the totals, once per tensor: a trust
//!   ratio, a Student-t weight, a projection test) and `update`.
//!
//! Both kinds are one trait, [`Rule`], which the CPU loops and the kernels run: an
//! element-wise rule is a rule without a summing pass ([`Rule::SUMMED`] false).
//!
//! The [`dual!`] macro writes both instances of each phase from one body, and of each
//! struct of scalars (coefficients, cells, sums, scalars) a typed Rust struct and a CubeCL
//! struct with their loaders, so no coefficient crosses a file boundary as an untyped array:
//! the host builds the `f64` coefficient struct, and the kernel reads it back field by
//! field in the order the same macro wrote it.
//!
//! A body may use the arithmetic operators, comparisons, `F::new(literal)`, `F::sqrt`,
//! `F::abs`, `max`, `min`, `select(condition, then, else)`, `if flag { .. }` on a flag,
//! struct literals `Name::<F> { .. }` and the phases of the modules it `use`s.

pub(crate) mod blocks;
mod real;
pub(crate) mod traits;

pub(crate) use real::Real;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub(crate) use traits::CubeRule;
pub(crate) use traits::{FusedRule, Rule, element_rule, two_pass_rule};

/// The functions a rule body calls besides arithmetic, in their CPU form (the CubeCL form
/// is cubecl's prelude).
pub(crate) mod cpu_prelude {
    pub(crate) use super::Real;

    /// The larger of the two (`b` when it is larger, else `a`).
    #[inline(always)]
    pub(crate) fn max<F: Real>(a: F, b: F) -> F {
        if b > a { b } else { a }
    }

    /// The smaller of the two (`b` when it is smaller, else `a`).
    #[inline(always)]
    pub(crate) fn min<F: Real>(a: F, b: F) -> F {
        if b < a { b } else { a }
    }

    /// `then` when `condition` holds, else `otherwise`.
    #[inline(always)]
    pub(crate) fn select<F>(condition: bool, then: F, otherwise: F) -> F {
        if condition { then } else { otherwise }
    }
}

/// The index of `name` in `names`: the position of a struct's field in its array form,
/// shared by the host (which writes the array) and the kernels (which read it). Every
/// caller evaluates it in a `const` context (a per-element search would dominate a step).
pub(crate) const fn position(names: &[&str], name: &str) -> usize {
    let mut k = 0;
    while k < names.len() {
        if same(names[k].as_bytes(), name.as_bytes()) {
            return k;
        }
        k += 1;
    }
    panic!("no field of that name")
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut k = 0;
    while k < a.len() {
        if a[k] != b[k] {
            return false;
        }
        k += 1;
    }
    true
}

/// The position of a field in a field list written `{ a, b, c }`.
macro_rules! field_index {
    ({ $($name:ident),+ $(,)? }, $field:ident) => {
        $crate::rule::position(&[$(stringify!($name)),+], stringify!($field))
    };
}
pub(crate) use field_index;

/// Writes structs of scalars and functions on them once, as two modules: `cpu` (plain
/// Rust, generic over [`Real`]) and `cube` (CubeCL, generic over `Float`; only with the
/// `wgpu` or `cuda` feature).
///
/// ```text
/// dual! {
///     use crate::rule::blocks;            // phases of other dual modules, by module
///     struct Cells { p, m }               // fields of type F
///     ;
///     #[cube]
///     fn update(c: Coefficients<F>, g: F, x: Cells<F>) flags(amsgrad) -> Cells<F> { .. }
/// }
/// ```
///
/// Each function is preceded by `#[cube]` (written by the caller so that the CubeCL
/// expansion sees the body's own hygiene), takes its arguments by value and returns one
/// value; `flags(..)` are booleans, compile-time constants of a kernel. Each struct gets,
/// on the CPU side, `read`/`write` (its array form), `load`/`store` (one element of a set of
/// lanes, the first `count` fields), `cast` and `to_vec`; on the CubeCL side `load` (from an
/// array), `load_lanes`/`store_lanes` and `get` (one field by position).
macro_rules! dual {
    (
        $(use $($import:ident)::+;)*
        $(
            $(#[doc = $sdoc:literal])*
            struct $sname:ident $fields:tt
        )*
        ;
        $(
            $hash:tt $cubeattr:tt
            $(#[doc = $fdoc:literal])*
            fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(flags ( $($flag:ident),* ))? -> $ret:ty { $($body:tt)* }
        )*
    ) => {
        /// The CPU instances (plain Rust, generic over the element type).
        #[allow(dead_code, unused_imports, clippy::too_many_arguments)]
        pub(crate) mod cpu {
            use $crate::rule::cpu_prelude::*;
            $(use $($import)::+::cpu::*;)*
            $( $crate::rule::dual!(@cpu_struct [$(#[doc = $sdoc])*] $sname $fields $fields); )*
            $(
                $(#[doc = $fdoc])*
                #[inline(always)]
                pub(crate) fn $name<F: Real>($($arg: $ty,)* $($($flag: bool),*)?) -> $ret { $($body)* }
            )*
        }

        /// The CubeCL instances (generic over the kernel's float type).
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        #[allow(dead_code, unused_imports, clippy::too_many_arguments)]
        pub(crate) mod cube {
            use cubecl::prelude::*;
            $(use $($import)::+::cube::*;)*
            $( $crate::rule::dual!(@cube_struct [$(#[doc = $sdoc])*] $sname $fields $fields); )*
            $(
                $(#[doc = $fdoc])*
                $hash $cubeattr
                pub(crate) fn $name<F: Float>($($arg: $ty,)* $($(#[comptime] $flag: bool),*)?) -> $ret { $($body)* }
            )*
        }
    };

    (@cpu_struct [$($doc:tt)*] $sname:ident { $($field:ident),+ $(,)? } $all:tt) => {
        $($doc)*
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub(crate) struct $sname<F> {
            $(#[allow(missing_docs)] pub $field: F,)+
        }

        impl<F: Real> $sname<F> {
            /// The number of fields (the length of the array form).
            pub const FIELDS: usize = [$(stringify!($field)),+].len();

            /// From the array form (fields in declaration order).
            #[inline(always)]
            pub fn read(values: &[F]) -> Self {
                Self { $($field: values[const { $crate::rule::field_index!($all, $field) }],)+ }
            }

            /// Into the array form.
            #[inline(always)]
            pub fn write(self, values: &mut [F]) {
                $(values[const { $crate::rule::field_index!($all, $field) }] = self.$field;)+
            }

            /// Element `i` of the first `count` lanes, one lane per field in declaration
            /// order; the fields past `count` are zero.
            #[inline(always)]
            pub fn load(lanes: &[&mut [F]], i: usize, count: usize) -> Self {
                Self {
                    $($field: {
                        const K: usize = $crate::rule::field_index!($all, $field);
                        if K < count { lanes[K][i] } else { F::new(0.0) }
                    },)+
                }
            }

            /// Back into element `i` of the first `count` lanes.
            #[inline(always)]
            pub fn store(self, lanes: &mut [&mut [F]], i: usize, count: usize) {
                $({
                    const K: usize = $crate::rule::field_index!($all, $field);
                    if K < count {
                        lanes[K][i] = self.$field;
                    }
                })+
            }

            /// Every field rounded to another element type.
            #[inline(always)]
            pub fn cast<G: Real>(self) -> $sname<G> {
                $sname { $($field: G::of(self.$field.wide()),)+ }
            }

            /// The array form in `f64` (what the kernels receive, rounded to their type).
            pub fn to_vec(self) -> Vec<f64> {
                vec![$(self.$field.wide()),+]
            }
        }
    };

    (@cube_struct [$($doc:tt)*] $sname:ident { $($field:ident),+ $(,)? } $all:tt) => {
        $($doc)*
        #[derive(CubeType, Clone, Copy)]
        pub(crate) struct $sname<F: Float> {
            $(#[allow(missing_docs)] pub $field: F,)+
        }

        #[cube]
        impl<F: Float> $sname<F> {
            /// From the array form (fields in declaration order).
            pub fn load(values: &Array<F>) -> Self {
                $sname::<F> {
                    $($field: values[comptime!($crate::rule::field_index!($all, $field))],)+
                }
            }

            /// Element `i` of the first `count` lanes; the fields past `count` are zero.
            pub fn load_lanes(lanes: &Sequence<Array<F>>, i: usize, #[comptime] count: usize) -> Self {
                $sname::<F> {
                    $($field: {
                        let k = comptime!($crate::rule::field_index!($all, $field));
                        let mut value = F::new(0.0);
                        if comptime!(k < count) {
                            value = lanes.index(k)[i];
                        }
                        value
                    },)+
                }
            }

            /// Back into element `i` of the first `count` lanes.
            pub fn store_lanes(self, lanes: &mut Sequence<Array<F>>, i: usize, #[comptime] count: usize) {
                $({
                    let k = comptime!($crate::rule::field_index!($all, $field));
                    if comptime!(k < count) {
                        let lane = lanes.index_mut(k);
                        lane[i] = self.$field;
                    }
                })+
            }

            /// The field at position `k` of the array form.
            pub fn get(self, #[comptime] k: usize) -> F {
                let mut value = F::new(0.0);
                $(if comptime!(k == $crate::rule::field_index!($all, $field)) {
                    value = self.$field;
                })+
                value
            }
        }
    };
}
pub(crate) use dual;

dual! {
    /// Up to four whole-tensor sums, as a summing pass stores them.
    struct Sums { s0, s1, s2, s3 }
    ;
}
