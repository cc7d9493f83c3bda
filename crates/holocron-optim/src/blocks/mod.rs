//! Small numerical building blocks that the optimizers compose.
//!
//! Each block does one thing (a moment estimate, a weight-decay rule, a trust ratio, ...)
//! and, where it keeps state, owns a small [`Record`](burn::record::Record) for it. Every
//! tensor operation stays on the device: data-dependent decisions (a zero norm, a
//! cosine below a threshold) are taken with masks, never by reading a value back.

mod decay;
mod mask;
mod moments;
mod momentum;
mod projection;
mod rectify;
mod trust_ratio;

pub use decay::{L2Decay, ProximalDecay};
pub use mask::VectorMask;
pub use moments::{
    AdamMoments, AdamMomentsState, SecondMoment, SecondMomentState, bias_correction, ema,
};
pub use momentum::{HeavyBall, HeavyBallState};
pub use projection::ScaleInvariantProjection;
pub use rectify::Rectification;
pub use trust_ratio::TrustRatio;

use burn::tensor::{Tensor, backend::Backend};

/// The L2 norm of the whole tensor, as a one-element tensor on the tensor's device.
pub fn l2_norm<B: Backend, const D: usize>(tensor: &Tensor<B, D>) -> Tensor<B, 1> {
    tensor.clone().square().sum().sqrt()
}

/// The sum of the element-wise product of two tensors, as a one-element tensor.
pub fn dot<B: Backend, const D: usize>(a: &Tensor<B, D>, b: &Tensor<B, D>) -> Tensor<B, 1> {
    a.clone().mul(b.clone()).sum()
}

/// A one-element tensor reshaped to rank `D` (all dimensions 1), so that it broadcasts
/// against a parameter of that rank.
pub fn broadcast<B: Backend, const D: usize>(scalar: Tensor<B, 1>) -> Tensor<B, D> {
    scalar.unsqueeze::<D>()
}
