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

/// Norms below this count as this value in the cosine, as in PyTorch's `cosine_similarity`;
/// with a zero norm the cosine is then 0.
const COSINE_NORM_FLOOR: f64 = 1e-8;

impl ScaleInvariantProjection {
    /// The fused path's form: from the sums `p·p`, `g·g`, `p·g` and `p·u` over a tensor of
    /// `numel` elements, returns `‖p‖ + eps` and the radial component `n·u` (0 when the
    /// update is kept), so that the projected update is `u - (p / (‖p‖ + eps)) n·u`.
    #[cfg_attr(not(feature = "ndarray"), allow(dead_code))]
    pub(crate) fn radial_of(&self, numel: usize, pp: f64, gg: f64, pg: f64, pu: f64) -> (f64, f64) {
        let param_norm = pp.sqrt();
        let cosine = pg / (param_norm.max(COSINE_NORM_FLOOR) * gg.sqrt().max(COSINE_NORM_FLOOR));
        let shifted_norm = param_norm + self.epsilon;
        let project = cosine < self.delta / (numel as f64).sqrt();
        (shifted_norm, if project { pu / shifted_norm } else { 0.0 })
    }

    /// The GPU kernel's constants for a tensor of `numel` elements: the cosine's norm
    /// floor, the threshold `delta / sqrt(numel)` and `eps`.
    #[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
    pub(crate) fn constants(&self, numel: usize) -> [f64; 3] {
        [
            COSINE_NORM_FLOOR,
            self.delta / (numel as f64).sqrt(),
            self.epsilon,
        ]
    }

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
