//! The [`dual!`](crate::dual!) macro: a rule's structs and phases written once, for the CPU
//! (and device tensors) and for CubeCL kernels.

/// The index of `name` in `names`: the position of a struct's field in its array form,
/// shared by the host (which writes the array) and the kernels (which read it). Every
/// caller evaluates it in a `const` context (a per-element search would dominate a step).
#[doc(hidden)]
pub const fn position(names: &[&str], name: &str) -> usize {
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
#[doc(hidden)]
#[macro_export]
macro_rules! field_index {
    ({ $($name:ident),+ $(,)? }, $field:ident) => {
        $crate::dual::position(&[$(stringify!($name)),+], stringify!($field))
    };
}

/// Writes structs of scalars and functions on them once, for two instances: `cpu` (plain
/// Rust, generic over [`Arith`](crate::Arith): the CPU loops' elements and the device
/// tensors of [`crate::tensor`]; expanded here, in this crate) and `cube` (CubeCL, generic
/// over `Float`; expanded by [`crate::kernels!`] in the crate that launches the kernels,
/// with the CubeCL version of its Burn).
///
/// ```text
/// dual! { cpu;                         // or cube
///     use blocks;                       // sibling modules whose phases the bodies call
///     struct Cells { p, m }             // fields of type F
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
///
/// A body may use the arithmetic operators, `F::new(literal)`, `F::sqrt`, `F::abs`, `max`,
/// `min`, `select(condition, then, else)`, the comparisons `less::<F>(a, b)` and
/// `equals::<F>(a, b)` joined with `either::<F>`, `if flag { .. }` on a flag, struct
/// literals `Name::<F> { .. }` and the phases of the modules it `use`s.
#[doc(hidden)]
#[macro_export]
macro_rules! dual {
    (
        $mode:ident;
        $(use $import:ident;)*
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
        $crate::dual!(@$mode
            [$($import)*]
            [$( [$(#[doc = $sdoc])*] $sname $fields )*]
            [$( [$hash $cubeattr] [$(#[doc = $fdoc])*] $name ($($arg: $ty),*) [$($($flag),*)?] -> $ret { $($body)* } )*]
        );
    };

    (@cpu [$($import:ident)*] [$( [$($sdoc:tt)*] $sname:ident $fields:tt )*]
        [$( [$hash:tt $cubeattr:tt] [$($fdoc:tt)*] $name:ident ($($arg:ident : $ty:ty),*) [$($flag:ident),*] -> $ret:ty { $($body:tt)* } )*]
    ) => {
        #[allow(unused_imports)]
        use $crate::arith::prelude::*;
        $(#[allow(unused_imports)] use super::$import::*;)*
        $( $crate::dual!(@cpu_struct [$($sdoc)*] $sname $fields $fields); )*
        $(
            $($fdoc)*
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            pub fn $name<F: $crate::Arith>($($arg: $ty,)* $($flag: bool),*) -> $ret { $($body)* }
        )*
    };

    (@cube [$($import:ident)*] [$( [$($sdoc:tt)*] $sname:ident $fields:tt )*]
        [$( [$hash:tt $cubeattr:tt] [$($fdoc:tt)*] $name:ident ($($arg:ident : $ty:ty),*) [$($flag:ident),*] -> $ret:ty { $($body:tt)* } )*]
    ) => {
        #[allow(unused_imports)]
        use cubecl::prelude::*;
        #[allow(unused_imports)]
        use super::prelude::*;
        $(#[allow(unused_imports)] use super::$import::*;)*
        $( $crate::dual!(@cube_struct [$($sdoc)*] $sname $fields $fields); )*
        $(
            $($fdoc)*
            $hash $cubeattr
            #[allow(clippy::too_many_arguments)]
            pub fn $name<F: Float>($($arg: $ty,)* $(#[comptime] $flag: bool),*) -> $ret { $($body)* }
        )*
    };

    (@cpu_struct [$($doc:tt)*] $sname:ident { $($field:ident),+ $(,)? } $all:tt) => {
        $($doc)*
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct $sname<F> {
            $(#[allow(missing_docs)] pub $field: F,)+
        }

        impl<F> $sname<F> {
            /// The number of fields (the length of the array form).
            pub const FIELDS: usize = [$(stringify!($field)),+].len();
            /// The fields' names, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($field)),+];
        }

        impl<F: $crate::Arith> $sname<F> {

            /// From the array form (fields in declaration order).
            #[inline(always)]
            pub fn read(values: &[F]) -> Self {
                Self { $($field: values[const { $crate::field_index!($all, $field) }],)+ }
            }

            /// Into the array form.
            #[inline(always)]
            pub fn write(self, values: &mut [F]) {
                $(values[const { $crate::field_index!($all, $field) }] = self.$field;)+
            }

            /// Element `i` of the first `count` lanes, one lane per field in declaration
            /// order; the fields past `count` are zero.
            #[inline(always)]
            pub fn load(lanes: &[&mut [F]], i: usize, count: usize) -> Self {
                Self::load_from(lanes, i, 0, count)
            }

            /// [`Self::load`] of lanes `first..count` only: the fields before `first` are
            /// zero and their lanes are not read (`first` 1 leaves out the parameter).
            #[inline(always)]
            pub fn load_from(lanes: &[&mut [F]], i: usize, first: usize, count: usize) -> Self {
                Self {
                    $($field: {
                        const K: usize = $crate::field_index!($all, $field);
                        if first <= K && K < count { lanes[K][i] } else { F::new(0.0) }
                    },)+
                }
            }

            /// Back into element `i` of the first `count` lanes.
            #[inline(always)]
            pub fn store(self, lanes: &mut [&mut [F]], i: usize, count: usize) {
                self.store_from(lanes, i, 0, count)
            }

            /// [`Self::store`] into lanes `first..count` only.
            #[inline(always)]
            pub fn store_from(self, lanes: &mut [&mut [F]], i: usize, first: usize, count: usize) {
                $({
                    const K: usize = $crate::field_index!($all, $field);
                    if first <= K && K < count {
                        lanes[K][i] = self.$field;
                    }
                })+
            }

        }

        impl<F: $crate::Real> $sname<F> {
            /// Every field rounded to another element type.
            #[inline(always)]
            pub fn cast<G: $crate::Arith>(self) -> $sname<G> {
                $sname { $($field: G::of(self.$field.wide()),)+ }
            }

            /// The array form in `f64` (what the kernels receive, rounded to their type).
            pub fn to_vec(self) -> Vec<f64> {
                vec![$(self.$field.wide()),+]
            }
        }
    };

    (@cube_struct [$($doc:tt)*] $sname:ident { $($field:ident),+ $(,)? } $all:tt) => {
        cube_struct! {
            $($doc)*
            pub struct $sname<F: Float> {
                $(#[allow(missing_docs)] pub $field: F,)+
            }
        }

        #[cube]
        impl<F: Float> $sname<F> {
            /// From the array form (fields in declaration order).
            pub fn load(values: &Lane<F>) -> Self {
                $sname::<F> {
                    $($field: values[comptime!($crate::field_index!($all, $field))],)+
                }
            }

            /// Element `i` of the first `count` lanes; the fields past `count` are zero.
            pub fn load_lanes(lanes: &mut Sequence<Lane<F>>, i: usize, #[comptime] count: usize) -> Self {
                $sname::<F> {
                    $($field: {
                        let k = comptime!($crate::field_index!($all, $field));
                        let mut value = F::new(0.0);
                        if comptime!(k < count) {
                            value = lanes.index(k)[i];
                        }
                        value
                    },)+
                }
            }

            /// Back into element `i` of the first `count` lanes.
            pub fn store_lanes(self, lanes: &mut Sequence<Lane<F>>, i: usize, #[comptime] count: usize) {
                $({
                    let k = comptime!($crate::field_index!($all, $field));
                    if comptime!(k < count) {
                        let lane = lanes.index_mut(k);
                        lane[i] = self.$field;
                    }
                })+
            }

            /// The field at position `k` of the array form.
            pub fn get(self, #[comptime] k: usize) -> F {
                let mut value = F::new(0.0);
                $(if comptime!(k == $crate::field_index!($all, $field)) {
                    value = self.$field;
                })+
                value
            }
        }
    };
}
