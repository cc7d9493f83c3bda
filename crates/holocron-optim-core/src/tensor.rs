//! The rules on device tensors: each phase of a rule evaluated once on whole tensors
//! instead of once per element, with every operation a tensor operation of the backend
//! (no value read back to the host).
//!
//! A rule body is written for a `Copy` value ([`Arith`]) and uses its values more than
//! once; a tensor is not `Copy`. So the body runs on [`Lazy`] handles: indices into a
//! per-thread arena of values (a tensor, a scalar, a mask) that each operation appends to.
//! A scalar coefficient stays a scalar (`tensor * scalar` is the backend's `mul_scalar`)
//! until it meets a tensor. The arena lives for one [`step`].

use core::any::Any;
use core::cell::RefCell;
use core::marker::PhantomData;
use core::ops::{Add, Div, Mul, Neg, Sub};

use crate::{Arith, Rule};

/// The operations of a backend's float tensor that the rules use, on tensors of one
/// dimension (a parameter flattened); a one-element tensor broadcasts against any other.
/// Each Burn crate implements it for its tensor type.
pub trait DeviceTensor: Clone + Send + Sync + 'static {
    /// The tensor a comparison gives.
    type Mask: Clone + Send + Sync + 'static;
    /// `self + other`.
    fn add(self, other: Self) -> Self;
    /// `self - other`.
    fn sub(self, other: Self) -> Self;
    /// `self * other`.
    fn mul(self, other: Self) -> Self;
    /// `self / other`.
    fn div(self, other: Self) -> Self;
    /// `self + s`.
    fn add_scalar(self, s: f64) -> Self;
    /// `self - s`.
    fn sub_scalar(self, s: f64) -> Self;
    /// `self * s`.
    fn mul_scalar(self, s: f64) -> Self;
    /// `self / s`.
    fn div_scalar(self, s: f64) -> Self;
    /// `s - t`.
    fn scalar_sub(s: f64, t: Self) -> Self;
    /// `s / t`, as a division (not `s * (1 / t)`, which rounds twice).
    fn scalar_div(s: f64, t: Self) -> Self;
    /// `-self`.
    fn neg(self) -> Self;
    /// The square root.
    fn sqrt(self) -> Self;
    /// The absolute value.
    fn abs(self) -> Self;
    /// The element-wise maximum.
    fn max_pair(self, other: Self) -> Self;
    /// The element-wise minimum.
    fn min_pair(self, other: Self) -> Self;
    /// `max(self, s)` element-wise.
    fn max_scalar(self, s: f64) -> Self;
    /// `min(self, s)` element-wise.
    fn min_scalar(self, s: f64) -> Self;
    /// The sum of all elements, as a one-element tensor.
    fn sum(self) -> Self;
    /// `self < other`.
    fn lower(self, other: Self) -> Self::Mask;
    /// `self < s`.
    fn lower_scalar(self, s: f64) -> Self::Mask;
    /// `self > s`.
    fn greater_scalar(self, s: f64) -> Self::Mask;
    /// `self == other`.
    fn equal(self, other: Self) -> Self::Mask;
    /// `self == s`.
    fn equal_scalar(self, s: f64) -> Self::Mask;
    /// `a || b`.
    fn or(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    /// `then` where `mask` holds, else `otherwise`.
    fn select(mask: Self::Mask, then: Self, otherwise: Self) -> Self;
    /// A tensor of the mask's shape holding `value` (in the element type of the tensors
    /// the mask was compared from).
    fn fill(mask: &Self::Mask, value: f64) -> Self;
    /// A tensor of this one's shape, element type and device, holding `value`.
    fn full_like(&self, value: f64) -> Self;
    /// A one-element tensor of this one's element type and device holding `value`.
    fn scalar_like(&self, value: f64) -> Self;
}

/// One value of the arena.
enum Value<T: DeviceTensor> {
    Scalar(f64),
    Tensor(T),
    Flag(bool),
    Mask(T::Mask),
}

impl<T: DeviceTensor> Clone for Value<T> {
    fn clone(&self) -> Self {
        match self {
            Value::Scalar(s) => Value::Scalar(*s),
            Value::Tensor(t) => Value::Tensor(t.clone()),
            Value::Flag(b) => Value::Flag(*b),
            Value::Mask(m) => Value::Mask(m.clone()),
        }
    }
}

thread_local! {
    static ARENA: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// A value of a rule body on device tensors: an index into this thread's arena.
pub struct Lazy<T> {
    index: usize,
    tensor: PhantomData<fn() -> T>,
}

impl<T> Clone for Lazy<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Lazy<T> {}

impl<T: DeviceTensor> Lazy<T> {
    fn push(value: Value<T>) -> Self {
        let index = ARENA.with(|arena| {
            let mut arena = arena.borrow_mut();
            arena.push(Box::new(value));
            arena.len() - 1
        });
        Self {
            index,
            tensor: PhantomData,
        }
    }

    fn get(self) -> Value<T> {
        ARENA.with(|arena| {
            arena.borrow()[self.index]
                .downcast_ref::<Value<T>>()
                .expect("a handle of this arena's tensor type")
                .clone()
        })
    }

    /// A tensor into the arena.
    pub fn tensor(t: T) -> Self {
        Self::push(Value::Tensor(t))
    }

    /// The value as a tensor shaped like `like` where it is a scalar.
    pub fn into_tensor(self, like: &T) -> T {
        match self.get() {
            Value::Tensor(t) => t,
            Value::Scalar(s) => like.full_like(s),
            Value::Flag(_) | Value::Mask(_) => panic!("a comparison is not a value"),
        }
    }

    /// The sum of all elements (a one-element tensor); a scalar `s` of a tensor of `numel`
    /// elements sums to `numel s`.
    pub fn sum(self, numel: usize) -> Self {
        match self.get() {
            Value::Tensor(t) => Self::tensor(t.sum()),
            Value::Scalar(s) => Self::push(Value::Scalar(s * numel as f64)),
            Value::Flag(_) | Value::Mask(_) => panic!("a comparison is not a value"),
        }
    }

    fn number(self) -> Number<T> {
        match self.get() {
            Value::Scalar(s) => Number::Scalar(s),
            Value::Tensor(t) => Number::Tensor(t),
            Value::Flag(_) | Value::Mask(_) => panic!("a comparison is not a value"),
        }
    }

    fn binary(
        self,
        other: Self,
        scalars: fn(f64, f64) -> f64,
        tensors: fn(T, T) -> T,
        tensor_scalar: fn(T, f64) -> T,
        scalar_tensor: fn(f64, T) -> T,
    ) -> Self {
        Self::push(match (self.number(), other.number()) {
            (Number::Scalar(a), Number::Scalar(b)) => Value::Scalar(scalars(a, b)),
            (Number::Tensor(a), Number::Tensor(b)) => Value::Tensor(tensors(a, b)),
            (Number::Tensor(a), Number::Scalar(b)) => Value::Tensor(tensor_scalar(a, b)),
            (Number::Scalar(a), Number::Tensor(b)) => Value::Tensor(scalar_tensor(a, b)),
        })
    }

    fn compare(
        self,
        other: Self,
        scalars: fn(f64, f64) -> bool,
        tensors: fn(T, T) -> T::Mask,
        tensor_scalar: fn(T, f64) -> T::Mask,
        scalar_tensor: fn(f64, T) -> T::Mask,
    ) -> Self {
        Self::push(match (self.number(), other.number()) {
            (Number::Scalar(a), Number::Scalar(b)) => Value::Flag(scalars(a, b)),
            (Number::Tensor(a), Number::Tensor(b)) => Value::Mask(tensors(a, b)),
            (Number::Tensor(a), Number::Scalar(b)) => Value::Mask(tensor_scalar(a, b)),
            (Number::Scalar(a), Number::Tensor(b)) => Value::Mask(scalar_tensor(a, b)),
        })
    }

    fn unary(self, scalar: fn(f64) -> f64, tensor: fn(T) -> T) -> Self {
        Self::push(match self.number() {
            Number::Scalar(s) => Value::Scalar(scalar(s)),
            Number::Tensor(t) => Value::Tensor(tensor(t)),
        })
    }
}

enum Number<T> {
    Scalar(f64),
    Tensor(T),
}

impl<T: DeviceTensor> Add for Lazy<T> {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        self.binary(
            other,
            |a, b| a + b,
            T::add,
            T::add_scalar,
            |a, b| b.add_scalar(a),
        )
    }
}

impl<T: DeviceTensor> Sub for Lazy<T> {
    type Output = Self;
    fn sub(self, other: Self) -> Self {
        self.binary(other, |a, b| a - b, T::sub, T::sub_scalar, T::scalar_sub)
    }
}

impl<T: DeviceTensor> Mul for Lazy<T> {
    type Output = Self;
    fn mul(self, other: Self) -> Self {
        self.binary(
            other,
            |a, b| a * b,
            T::mul,
            T::mul_scalar,
            |a, b| b.mul_scalar(a),
        )
    }
}

impl<T: DeviceTensor> Div for Lazy<T> {
    type Output = Self;
    fn div(self, other: Self) -> Self {
        self.binary(other, |a, b| a / b, T::div, T::div_scalar, T::scalar_div)
    }
}

impl<T: DeviceTensor> Neg for Lazy<T> {
    type Output = Self;
    fn neg(self) -> Self {
        self.unary(|s| -s, T::neg)
    }
}

impl<T: DeviceTensor> Arith for Lazy<T> {
    type Bool = Self;

    fn new(x: f32) -> Self {
        Self::push(Value::Scalar(f64::from(x)))
    }

    fn of(x: f64) -> Self {
        Self::push(Value::Scalar(x))
    }

    fn sqrt(self) -> Self {
        self.unary(f64::sqrt, T::sqrt)
    }

    fn abs(self) -> Self {
        self.unary(f64::abs, T::abs)
    }

    fn max(self, other: Self) -> Self {
        self.binary(other, f64::max, T::max_pair, T::max_scalar, |a, b| {
            b.max_scalar(a)
        })
    }

    fn min(self, other: Self) -> Self {
        self.binary(other, f64::min, T::min_pair, T::min_scalar, |a, b| {
            b.min_scalar(a)
        })
    }

    fn less(self, other: Self) -> Self {
        self.compare(
            other,
            |a, b| a < b,
            T::lower,
            T::lower_scalar,
            |a, b| b.greater_scalar(a),
        )
    }

    fn equals(self, other: Self) -> Self {
        self.compare(
            other,
            |a, b| a == b,
            T::equal,
            T::equal_scalar,
            |a, b| b.equal_scalar(a),
        )
    }

    fn either(a: Self, b: Self) -> Self {
        Self::push(match (a.get(), b.get()) {
            (Value::Flag(a), Value::Flag(b)) => Value::Flag(a || b),
            (Value::Mask(a), Value::Mask(b)) => Value::Mask(T::or(a, b)),
            // `true || m` is true everywhere; `false || m` is `m`.
            (Value::Flag(true), _) | (_, Value::Flag(true)) => Value::Flag(true),
            (Value::Flag(false), m) | (m, Value::Flag(false)) => m,
            _ => panic!("either() takes comparisons"),
        })
    }

    fn select(condition: Self, then: Self, otherwise: Self) -> Self {
        match condition.get() {
            Value::Flag(true) => then,
            Value::Flag(false) => otherwise,
            Value::Mask(mask) => {
                let tensor = |x: Self| match x.number() {
                    Number::Tensor(t) => t,
                    Number::Scalar(s) => T::fill(&mask, s),
                };
                let (then, otherwise) = (tensor(then), tensor(otherwise));
                Self::tensor(T::select(mask, then, otherwise))
            }
            _ => panic!("select() takes a comparison"),
        }
    }
}

/// Empties this thread's arena of the values a step added, however the step ends.
struct Scope(usize);

impl Scope {
    fn open() -> Self {
        Self(ARENA.with(|arena| arena.borrow().len()))
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        ARENA.with(|arena| {
            if let Ok(mut arena) = arena.try_borrow_mut() {
                arena.truncate(self.0);
            }
        });
    }
}

/// One step of rule `R` on device tensors: `param` and `grad` of `n` elements, `state` the
/// rule's state lanes (the lanes after the parameter, as many as [`Rule::lanes`] with the
/// flag, then the carried one-element lane where the rule [`Rule::CARRIES`] one), with the
/// coefficients of this step. Returns the new parameter and the new state lanes.
pub fn step<R: Rule, T: DeviceTensor>(
    coefficients: R::Coefficients<f64>,
    flag: bool,
    param: T,
    grad: T,
    state: Vec<T>,
    numel: usize,
) -> (T, Vec<T>) {
    let _scope = Scope::open();
    let count = R::lanes(flag);
    let expected = count - 1 + usize::from(R::CARRIES);
    assert_eq!(state.len(), expected, "the rule's state lanes");
    let like = param.clone();
    let mut state = state.into_iter();
    let c = R::cast::<Lazy<T>>(coefficients);
    let g = Lazy::tensor(grad);
    let mut cells = vec![Lazy::tensor(param)];
    cells.extend(state.by_ref().take(count - 1).map(Lazy::tensor));
    // The lanes a flag leaves out are zero, as in the CPU loops.
    cells.resize(R::LANES + R::OPTIONAL_LANES, Lazy::of(0.0));
    let carried = state.next().map_or_else(|| Lazy::of(0.0), Lazy::tensor);
    let next_carried = if R::SUMMED {
        let terms = R::sums_of(c, g, &mut cells, flag);
        let totals = terms.map(|term| term.sum(numel));
        let scalars = R::scalars(c, totals, carried);
        R::update_of(c, scalars, g, &mut cells, flag);
        R::next_carried(scalars)
    } else {
        let scalars = R::scalars(c, [Lazy::of(0.0); 4], carried);
        R::update_of(c, scalars, g, &mut cells, flag);
        Lazy::of(0.0)
    };
    let mut cells = cells.into_iter().take(count).map(|x| x.into_tensor(&like));
    let param = cells.next().expect("the parameter lane");
    let mut lanes: Vec<T> = cells.collect();
    if R::CARRIES {
        lanes.push(next_carried.into_tensor(&like.scalar_like(0.0)));
    }
    (param, lanes)
}
