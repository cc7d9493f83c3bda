//! The scalar vocabulary a rule body is written in, and its two CPU element types.

use core::ops::{Add, Div, Mul, Neg, Sub};

/// What a rule body computes with: one element of a tensor on the CPU (`f32`, `f64`), or
/// a whole tensor on a device ([`crate::tensor::Lazy`]). A body may use the arithmetic
/// operators and these functions; comparisons give a [`Self::Bool`] that only
/// [`Self::select`] and [`Self::either`] consume, so that a tensor's comparison stays a mask
/// on its device.
pub trait Arith:
    Copy
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// The result of a comparison (`bool`, or a mask).
    type Bool: Copy;
    /// A literal, as CubeCL's `Float::new` (so that a rule body reads the same in both).
    fn new(x: f32) -> Self;
    /// `x` rounded to this type.
    fn of(x: f64) -> Self;
    /// The square root.
    fn sqrt(self) -> Self;
    /// The absolute value.
    fn abs(self) -> Self;
    /// The larger of the two (`other` when it is larger, else `self`), as Burn's `max_pair`.
    fn max(self, other: Self) -> Self;
    /// The smaller of the two (`other` when it is smaller, else `self`).
    fn min(self, other: Self) -> Self;
    /// `self < other`.
    fn less(self, other: Self) -> Self::Bool;
    /// `self == other`.
    fn equals(self, other: Self) -> Self::Bool;
    /// `a || b`.
    fn either(a: Self::Bool, b: Self::Bool) -> Self::Bool;
    /// `then` where `condition` holds, else `otherwise`.
    fn select(condition: Self::Bool, then: Self, otherwise: Self) -> Self;
}

/// A float element type the CPU loops compute in (`f32` or `f64`). Hyperparameters arrive
/// as `f64` and are rounded to the element type once per step, as Burn's `mul_scalar` and
/// friends do.
pub trait Real: Arith<Bool = bool> + PartialOrd + 'static {
    /// The value as `f64`, for the reductions, which accumulate in double precision.
    fn wide(self) -> f64;
    /// Runs `f` on this thread's reusable buffer of this type (a chunk of a gradient read
    /// in another order; a fresh one where `f` runs inside another call on this thread).
    fn with_buffer<T>(f: impl FnOnce(&mut Vec<Self>) -> T) -> T;
}

macro_rules! real {
    ($ty:ty) => {
        impl Arith for $ty {
            type Bool = bool;
            #[inline(always)]
            fn new(x: f32) -> Self {
                x as $ty
            }
            #[inline(always)]
            fn of(x: f64) -> Self {
                x as $ty
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$ty>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$ty>::abs(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                if other > self { other } else { self }
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                if other < self { other } else { self }
            }
            #[inline(always)]
            fn less(self, other: Self) -> bool {
                self < other
            }
            #[inline(always)]
            fn equals(self, other: Self) -> bool {
                self == other
            }
            #[inline(always)]
            fn either(a: bool, b: bool) -> bool {
                a || b
            }
            #[inline(always)]
            fn select(condition: bool, then: Self, otherwise: Self) -> Self {
                if condition { then } else { otherwise }
            }
        }

        impl Real for $ty {
            #[inline(always)]
            fn wide(self) -> f64 {
                self as f64
            }
            fn with_buffer<T>(f: impl FnOnce(&mut Vec<Self>) -> T) -> T {
                thread_local! {
                    static BUFFER: core::cell::RefCell<Vec<$ty>> =
                        const { core::cell::RefCell::new(Vec::new()) };
                }
                BUFFER.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buffer) => f(&mut buffer),
                    Err(_) => f(&mut Vec::new()),
                })
            }
        }
    };
}
real!(f32);
real!(f64);

/// The functions a rule body calls besides arithmetic, in their [`Arith`] form (the CubeCL
/// form is cubecl's prelude and the kernels' own `prelude`, see [`crate::kernels!`]).
pub mod prelude {
    pub use super::Arith;

    /// The larger of the two.
    #[inline(always)]
    pub fn max<F: Arith>(a: F, b: F) -> F {
        a.max(b)
    }

    /// The smaller of the two.
    #[inline(always)]
    pub fn min<F: Arith>(a: F, b: F) -> F {
        a.min(b)
    }

    /// `then` when `condition` holds, else `otherwise`.
    #[inline(always)]
    pub fn select<F: Arith>(condition: F::Bool, then: F, otherwise: F) -> F {
        F::select(condition, then, otherwise)
    }

    /// `a < b`.
    #[inline(always)]
    pub fn less<F: Arith>(a: F, b: F) -> F::Bool {
        a.less(b)
    }

    /// `a == b`.
    #[inline(always)]
    pub fn equals<F: Arith>(a: F, b: F) -> F::Bool {
        a.equals(b)
    }

    /// `a || b`.
    #[inline(always)]
    pub fn either<F: Arith>(a: F::Bool, b: F::Bool) -> F::Bool {
        F::either(a, b)
    }
}
