use core::ops::{Add, Div, Mul, Neg, Sub};

/// A float element type the fused loops compute in (`f32` or `f64`), with the few
/// operations the rules need. Hyperparameters arrive as `f64` and are rounded to the
/// element type once per step, as Burn's `mul_scalar` and friends do.
pub(crate) trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    /// `x` rounded to this type.
    fn of(x: f64) -> Self;
    /// A literal, as CubeCL's `Float::new` (so that a rule body reads the same in both).
    fn new(x: f32) -> Self;
    /// The value as `f64`, for the reductions, which accumulate in double precision.
    fn wide(self) -> f64;
    /// The square root.
    fn sqrt(self) -> Self;
    /// The larger of the two, as Burn's `max_pair`.
    fn max(self, other: Self) -> Self;
    /// The absolute value.
    fn abs(self) -> Self;
    /// Runs `f` on this thread's reusable buffer of this type (a chunk of a gradient read
    /// in another order; a fresh one where `f` runs inside another call on this thread).
    fn with_buffer<T>(f: impl FnOnce(&mut Vec<Self>) -> T) -> T;
}

macro_rules! real {
    ($ty:ty) => {
        impl Real for $ty {
            #[inline(always)]
            fn of(x: f64) -> Self {
                x as $ty
            }
            #[inline(always)]
            fn new(x: f32) -> Self {
                x as $ty
            }
            #[inline(always)]
            fn wide(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$ty>::sqrt(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                if other > self { other } else { self }
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$ty>::abs(self)
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
