use burn::tensor::{Tensor, backend::Backend};

use super::{broadcast, l2_norm};

/// The layer-wise trust ratio of LARS and LAMB: `clamp(‖p‖, lo, hi) / denominator`, and 1
/// where the clamped norm or the denominator is 0.
#[derive(Clone, Debug)]
pub struct TrustRatio {
    /// Lower bound of the clamped parameter norm.
    pub lo: f64,
    /// Upper bound of the clamped parameter norm.
    pub hi: f64,
}

impl TrustRatio {
    /// The ratio with the parameter norm clamped to `(lo, hi)`.
    pub const fn new((lo, hi): (f64, f64)) -> Self {
        Self { lo, hi }
    }

    /// The ratio `clamp(param_norm, lo, hi) / denominator` as a one-element tensor, 1 when
    /// either side is 0. Decided with masks, so nothing is read back from the device.
    pub fn ratio<B: Backend>(
        &self,
        param_norm: Tensor<B, 1>,
        denominator: Tensor<B, 1>,
    ) -> Tensor<B, 1> {
        let numerator = param_norm.clamp(self.lo, self.hi);
        let undefined = numerator
            .clone()
            .equal_elem(0.0)
            .bool_or(denominator.clone().equal_elem(0.0));
        let safe_denominator = denominator.mask_fill(undefined.clone(), 1.0);
        numerator.div(safe_denominator).mask_fill(undefined, 1.0)
    }

    /// LAMB's scaling: `update * ratio(‖param‖, ‖update‖)`.
    pub fn scale<B: Backend, const D: usize>(
        &self,
        param: &Tensor<B, D>,
        update: Tensor<B, D>,
    ) -> Tensor<B, D> {
        let ratio = self.ratio(l2_norm(param), l2_norm(&update));
        update.mul(broadcast(ratio))
    }
}
