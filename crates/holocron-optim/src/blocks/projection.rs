use burn::tensor::{Tensor, backend::Backend};

use super::{broadcast, dot, l2_norm};

/// AdamP's projection: when the parameter and its gradient are nearly orthogonal
/// (`cos(p, g) < delta / sqrt(numel)`, one signed cosine over the whole tensor), the
/// update loses its radial component: `n = p / (‖p‖ + eps)`, `u <- u - (n·u) n`.
#[derive(Clone, Debug)]
pub struct ScaleInvariantProjection {
    /// The cosine threshold, divided by `sqrt(numel)` for each tensor.
    pub delta: f64,
    /// Added to `‖p‖` when normalising the parameter.
    pub epsilon: f64,
}

// Norms below this count as this value in the cosine, as in PyTorch's `cosine_similarity`;
// with a zero norm the cosine is then 0.
use holocron_optim_core::rules::adamp::COSINE_NORM_FLOOR;

impl ScaleInvariantProjection {
    /// Projects `update` as described above; the test is a mask, not a host-side branch.
    pub fn apply<B: Backend, const D: usize>(
        &self,
        param: &Tensor<B, D>,
        grad: &Tensor<B, D>,
        update: Tensor<B, D>,
    ) -> Tensor<B, D> {
        let numel = param.shape().num_elements() as f64;
        let param_norm = l2_norm(param);
        let cosine = dot(param, grad).div(
            param_norm
                .clone()
                .clamp_min(COSINE_NORM_FLOOR)
                .mul(l2_norm(grad).clamp_min(COSINE_NORM_FLOOR)),
        );
        let keep = cosine.lower_elem(self.delta / numel.sqrt()).bool_not();
        let direction = param
            .clone()
            .div(broadcast(param_norm.add_scalar(self.epsilon)));
        // A mask rather than `bool.float()`, which would take the device's default dtype.
        let radial = dot(&direction, &update).mask_fill(keep, 0.0);
        update.sub(direction.mul(broadcast(radial)))
    }
}
