//! The tensors the rules of `holocron-optim-core` step: a parameter, its gradient and its
//! state, flattened to one dimension ([`FlatTensor`], a Burn 0.22 `Tensor<1>`), with the
//! masks of its comparisons ([`FlatMask`]).
//!
//! Every operation is a tensor operation on the tensor's device, in the tensor's dtype: no
//! value is read back to the host. Operands of lengths `n` and `1` broadcast (the
//! one-element tensor is expanded to `n`).

use burn::tensor::{Bool, DType, Tensor};
use holocron_optim_core::tensor::DeviceTensor;

/// A flattened float tensor of rank 1 (a parameter, a gradient or a state lane of `n`
/// elements, or a one-element scalar such as a norm), on which the core rules compute.
#[derive(Clone, Debug)]
pub struct FlatTensor(pub Tensor<1>);

/// The boolean result of a comparison of [`FlatTensor`]s, with the float dtype of the
/// tensors it came from (so that [`DeviceTensor::fill`] creates a float tensor of that
/// dtype, e.g. `f64` on a device whose default is `f32`).
#[derive(Clone, Debug)]
pub struct FlatMask {
    /// The mask, one element per element compared.
    pub mask: Tensor<1, Bool>,
    /// The dtype of the float tensors compared.
    pub dtype: DType,
}

impl FlatTensor {
    /// Wraps a rank-1 tensor.
    pub fn new(tensor: Tensor<1>) -> Self {
        Self(tensor)
    }

    /// The wrapped tensor.
    pub fn into_inner(self) -> Tensor<1> {
        self.0
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.0.dims()[0]
    }

    /// Whether the tensor has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn mask(&self, mask: Tensor<1, Bool>) -> FlatMask {
        FlatMask {
            mask,
            dtype: self.0.dtype(),
        }
    }
}

/// The length to which tensors of lengths `a` and `b` broadcast.
///
/// # Panics
///
/// When neither is 1 and they differ (shapes that do not broadcast).
fn broadcast_len(a: usize, b: usize) -> usize {
    match (a, b) {
        _ if a == b => a,
        (1, _) => b,
        (_, 1) => a,
        _ => panic!("tensors of shapes [{a}] and [{b}] do not broadcast"),
    }
}

/// `tensor` expanded to `n` elements (a view of its one element), or `tensor` itself when it
/// has `n` already; with `n = 0` (an empty parameter), none of it, as Burn does not expand
/// to a length of zero.
fn expand<K>(tensor: Tensor<1, K>, n: usize) -> Tensor<1, K>
where
    K: burn::tensor::kind::Basic,
{
    if tensor.dims()[0] == n {
        tensor
    } else if n == 0 {
        tensor.slice(0..0)
    } else {
        tensor.expand([n])
    }
}

/// The two operands broadcast to a common length.
fn broadcast_pair<K>(a: Tensor<1, K>, b: Tensor<1, K>) -> (Tensor<1, K>, Tensor<1, K>)
where
    K: burn::tensor::kind::Basic,
{
    let n = broadcast_len(a.dims()[0], b.dims()[0]);
    (expand(a, n), expand(b, n))
}

/// Applies a binary operation to operands broadcast to a common length.
fn binary(a: FlatTensor, b: FlatTensor, op: fn(Tensor<1>, Tensor<1>) -> Tensor<1>) -> FlatTensor {
    let (a, b) = broadcast_pair(a.0, b.0);
    FlatTensor(op(a, b))
}

impl DeviceTensor for FlatTensor {
    type Mask = FlatMask;

    fn add(self, other: Self) -> Self {
        binary(self, other, Tensor::add)
    }

    fn sub(self, other: Self) -> Self {
        binary(self, other, Tensor::sub)
    }

    fn mul(self, other: Self) -> Self {
        binary(self, other, Tensor::mul)
    }

    fn div(self, other: Self) -> Self {
        binary(self, other, Tensor::div)
    }

    fn add_scalar(self, s: f64) -> Self {
        Self(self.0.add_scalar(s))
    }

    fn sub_scalar(self, s: f64) -> Self {
        Self(self.0.sub_scalar(s))
    }

    fn mul_scalar(self, s: f64) -> Self {
        Self(self.0.mul_scalar(s))
    }

    fn div_scalar(self, s: f64) -> Self {
        Self(self.0.div_scalar(s))
    }

    fn scalar_sub(s: f64, t: Self) -> Self {
        Self(t.0.full_like(s).sub(t.0))
    }

    fn scalar_div(s: f64, t: Self) -> Self {
        Self(t.0.full_like(s).div(t.0))
    }

    fn neg(self) -> Self {
        Self(self.0.neg())
    }

    fn sqrt(self) -> Self {
        Self(self.0.sqrt())
    }

    fn abs(self) -> Self {
        Self(self.0.abs())
    }

    fn max_pair(self, other: Self) -> Self {
        binary(self, other, Tensor::max_pair)
    }

    fn min_pair(self, other: Self) -> Self {
        binary(self, other, Tensor::min_pair)
    }

    fn max_scalar(self, s: f64) -> Self {
        Self(self.0.clamp_min(s))
    }

    fn min_scalar(self, s: f64) -> Self {
        Self(self.0.clamp_max(s))
    }

    fn sum(self) -> Self {
        Self(self.0.sum())
    }

    fn lower(self, other: Self) -> FlatMask {
        let dtype = self.0.dtype();
        let (a, b) = broadcast_pair(self.0, other.0);
        FlatMask {
            mask: a.lower(b),
            dtype,
        }
    }

    fn lower_scalar(self, s: f64) -> FlatMask {
        let mask = self.0.clone().lower_scalar(s);
        self.mask(mask)
    }

    fn greater_scalar(self, s: f64) -> FlatMask {
        let mask = self.0.clone().greater_scalar(s);
        self.mask(mask)
    }

    fn equal(self, other: Self) -> FlatMask {
        let dtype = self.0.dtype();
        let (a, b) = broadcast_pair(self.0, other.0);
        FlatMask {
            mask: a.equal(b),
            dtype,
        }
    }

    fn equal_scalar(self, s: f64) -> FlatMask {
        let mask = self.0.clone().equal_scalar(s);
        self.mask(mask)
    }

    fn or(a: FlatMask, b: FlatMask) -> FlatMask {
        let dtype = a.dtype;
        let (a, b) = broadcast_pair(a.mask, b.mask);
        FlatMask {
            mask: a.bool_or(b),
            dtype,
        }
    }

    fn select(mask: FlatMask, then: Self, otherwise: Self) -> Self {
        let n = broadcast_len(
            mask.mask.dims()[0],
            broadcast_len(then.len(), otherwise.len()),
        );
        let otherwise = expand(otherwise.0, n);
        Self(otherwise.mask_where(expand(mask.mask, n), expand(then.0, n)))
    }

    fn fill(mask: &FlatMask, value: f64) -> Self {
        let device = mask.mask.device();
        Self(Tensor::full(mask.mask.dims(), value, (&device, mask.dtype)))
    }

    fn full_like(&self, value: f64) -> Self {
        Self(self.0.full_like(value))
    }

    fn scalar_like(&self, value: f64) -> Self {
        let device = self.0.device();
        Self(Tensor::full([1], value, (&device, self.0.dtype())))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    /// The device of the backend the features choose (as `tests/common` does).
    #[allow(deprecated)] // Burn 0.22 deprecates its ndarray backend (for Flex).
    fn device() -> Device {
        #[cfg(feature = "cuda")]
        return Device::cuda(0);
        #[cfg(all(feature = "wgpu", not(feature = "cuda")))]
        return Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
        #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
        Device::ndarray()
    }

    fn dtypes() -> Vec<DType> {
        let device = device();
        [DType::F32, DType::F64]
            .into_iter()
            .filter(|dtype| device.supports_dtype(*dtype))
            .collect()
    }

    fn flat(values: &[f64], dtype: DType) -> FlatTensor {
        let data = TensorData::new(values.to_vec(), [values.len()]).convert_dtype(dtype);
        FlatTensor(Tensor::from_data(data, (&device(), dtype)))
    }

    fn read(t: FlatTensor) -> Vec<f64> {
        t.0.try_into_vec_as::<f64>().unwrap()
    }

    fn read_mask(m: FlatMask) -> Vec<bool> {
        m.mask.try_into_vec_as::<bool>().unwrap()
    }

    /// `values` rounded to `dtype`, as the device holds them.
    fn rounded(values: &[f64], dtype: DType) -> Vec<f64> {
        match dtype {
            DType::F32 => values.iter().map(|v| *v as f32 as f64).collect(),
            _ => values.to_vec(),
        }
    }

    const A: [f64; 4] = [1.5, -2.0, 0.25, 3.0];
    const S: [f64; 1] = [0.5];

    /// Burn 0.22's own binary operations broadcast a one-element operand: `[n] op [1]` and
    /// `[1] op [n]` give `[n]` (what the rules rely on; [`FlatTensor`] also expands it
    /// explicitly).
    #[test]
    fn burn_broadcasts_one_element_operands() {
        for dtype in dtypes() {
            let (a, s) = (flat(&A, dtype).0, flat(&S, dtype).0);
            let sum = a.clone().add(s.clone());
            assert_eq!(sum.dims(), [4]);
            assert_eq!(read(FlatTensor(sum)), rounded(&A.map(|x| x + 0.5), dtype));
            let quotient = s.clone().div(a.clone());
            assert_eq!(quotient.dims(), [4]);
            let want: Vec<f64> = match dtype {
                DType::F32 => A.iter().map(|x| (0.5f32 / *x as f32) as f64).collect(),
                _ => A.iter().map(|x| 0.5 / x).collect(),
            };
            assert_eq!(read(FlatTensor(quotient)), want);
            let lower = a.lower(s);
            assert_eq!(lower.dims(), [4]);
        }
    }

    #[test]
    fn binary_operations_broadcast_both_ways() {
        type Op = (
            fn(FlatTensor, FlatTensor) -> FlatTensor,
            fn(f64, f64) -> f64,
        );
        let ops: [Op; 6] = [
            (DeviceTensor::add, |a, b| a + b),
            (DeviceTensor::sub, |a, b| a - b),
            (DeviceTensor::mul, |a, b| a * b),
            (DeviceTensor::div, |a, b| a / b),
            (DeviceTensor::max_pair, f64::max),
            (DeviceTensor::min_pair, f64::min),
        ];
        for dtype in dtypes() {
            // Exactly representable operands and results in f32 (division aside).
            let a = flat(&A, dtype);
            let s = flat(&S, dtype);
            for (k, (op, host)) in ops.iter().enumerate() {
                let full = read(op(a.clone(), a.clone()));
                let right = read(op(a.clone(), s.clone()));
                let left = read(op(s.clone(), a.clone()));
                let want_full: Vec<f64> = A.iter().map(|x| host(*x, *x)).collect();
                let want_right: Vec<f64> = A.iter().map(|x| host(*x, 0.5)).collect();
                let want_left: Vec<f64> = A.iter().map(|x| host(0.5, *x)).collect();
                assert_eq!(full, rounded(&want_full, dtype), "op {k} {dtype:?}");
                assert_eq!(right, rounded(&want_right, dtype), "op {k} {dtype:?}");
                assert_eq!(left, rounded(&want_left, dtype), "op {k} {dtype:?}");
            }
        }
    }

    #[test]
    fn scalar_operations() {
        for dtype in dtypes() {
            let a = flat(&A, dtype);
            let check = |t: FlatTensor, f: fn(f64) -> f64| {
                let want: Vec<f64> = A.iter().map(|x| f(*x)).collect();
                assert_eq!(read(t), rounded(&want, dtype), "{dtype:?}");
            };
            check(a.clone().add_scalar(0.5), |x| x + 0.5);
            check(a.clone().sub_scalar(0.5), |x| x - 0.5);
            check(a.clone().mul_scalar(0.5), |x| x * 0.5);
            check(a.clone().div_scalar(0.5), |x| x / 0.5);
            check(FlatTensor::scalar_sub(0.5, a.clone()), |x| 0.5 - x);
            check(a.clone().neg(), |x| -x);
            check(a.clone().abs(), f64::abs);
            check(a.clone().max_scalar(0.5), |x| x.max(0.5));
            check(a.clone().min_scalar(0.5), |x| x.min(0.5));
            check(a.clone().abs().sqrt(), |x| x.abs().sqrt());
        }
    }

    /// `s / t` is one division, rounded once, not `s * (1 / t)`: checked on values where
    /// the two differ in f32.
    #[test]
    fn scalar_div_rounds_once() {
        let t: Vec<f64> = (1..200).map(|k| 1.0 + k as f64 * 0.37).collect();
        let once: Vec<f64> = t.iter().map(|x| (3.0f32 / *x as f32) as f64).collect();
        let twice: Vec<f64> = t
            .iter()
            .map(|x| (3.0f32 * (1.0f32 / *x as f32)) as f64)
            .collect();
        assert_ne!(once, twice, "the values do not tell the two apart");
        let got = read(FlatTensor::scalar_div(3.0, flat(&t, DType::F32)));
        assert_eq!(got, once);
        if dtypes().contains(&DType::F64) {
            let got = read(FlatTensor::scalar_div(3.0, flat(&t, DType::F64)));
            let want: Vec<f64> = t.iter().map(|x| 3.0 / x).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn comparisons_masks_and_select() {
        for dtype in dtypes() {
            let a = flat(&A, dtype);
            let s = flat(&S, dtype);
            let b = flat(&[1.5, 0.0, 0.5, -3.0], dtype);
            assert_eq!(
                read_mask(a.clone().lower(b.clone())),
                [false, true, true, false]
            );
            assert_eq!(
                read_mask(a.clone().lower(s.clone())),
                [false, true, true, false]
            );
            assert_eq!(
                read_mask(s.clone().lower(a.clone())),
                [true, false, false, true]
            );
            assert_eq!(
                read_mask(a.clone().lower_scalar(0.5)),
                [false, true, true, false]
            );
            assert_eq!(
                read_mask(a.clone().greater_scalar(0.25)),
                [true, false, false, true]
            );
            assert_eq!(
                read_mask(a.clone().equal(b.clone())),
                [true, false, false, false]
            );
            assert_eq!(
                read_mask(a.clone().equal_scalar(-2.0)),
                [false, true, false, false]
            );
            let either = FlatTensor::or(a.clone().equal_scalar(-2.0), a.clone().equal(b.clone()));
            assert_eq!(either.dtype, dtype);
            assert_eq!(read_mask(either.clone()), [true, true, false, false]);
            // A one-element mask (a comparison of norms) against whole tensors, and a whole
            // mask against one-element values.
            let one = s.clone().greater_scalar(0.0);
            assert_eq!(
                read(FlatTensor::select(one, a.clone(), b.clone())),
                rounded(&A, dtype)
            );
            let picked = FlatTensor::select(either.clone(), s.clone(), a.clone());
            assert_eq!(read(picked), rounded(&[0.5, 0.5, 0.25, 3.0], dtype));
            let picked = FlatTensor::select(either.clone(), a.clone(), s.clone());
            assert_eq!(read(picked), rounded(&[1.5, -2.0, 0.5, 0.5], dtype));
            let filled = FlatTensor::fill(&either, 0.1);
            assert_eq!(filled.0.dtype(), dtype);
            assert_eq!(read(filled), rounded(&[0.1; 4], dtype));
        }
    }

    #[test]
    fn sums_and_constants_keep_dtype_and_device() {
        for dtype in dtypes() {
            let a = flat(&A, dtype);
            let sum = a.clone().sum();
            assert_eq!(sum.0.dims(), [1]);
            assert_eq!(sum.0.dtype(), dtype);
            assert_eq!(read(sum), [2.75]);
            let full = a.full_like(0.1);
            assert_eq!((full.0.dims(), full.0.dtype()), ([4], dtype));
            assert_eq!(read(full), rounded(&[0.1; 4], dtype));
            let scalar = a.scalar_like(0.1);
            assert_eq!((scalar.0.dims(), scalar.0.dtype()), ([1], dtype));
            assert_eq!(scalar.0.device(), device());
            assert_eq!(read(scalar), rounded(&[0.1], dtype));
        }
    }
}
