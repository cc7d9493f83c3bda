use burn::record::Record;
use burn::tensor::{Tensor, backend::Backend};

/// Heavy-ball momentum exactly as PyTorch's SGD: the first step stores `buf = d`, later
/// steps `buf <- momentum buf + (1 - dampening) d`; the step direction is `buf`, or
/// `d + momentum buf` with Nesterov.
#[derive(Clone, Debug)]
pub struct HeavyBall {
    /// The momentum factor; 0 keeps no state.
    pub momentum: f64,
    /// The dampening of new directions (not applied on the first step).
    pub dampening: f64,
    /// Whether to use Nesterov momentum.
    pub nesterov: bool,
}

/// State of [`HeavyBall`].
#[derive(Record, Clone, Debug)]
pub struct HeavyBallState<B: Backend, const D: usize> {
    /// The momentum buffer.
    pub buffer: Tensor<B, D>,
}

impl HeavyBall {
    /// Returns the step direction for `direction` and the new state (none without momentum).
    pub fn apply<B: Backend, const D: usize>(
        &self,
        direction: Tensor<B, D>,
        state: Option<HeavyBallState<B, D>>,
    ) -> (Tensor<B, D>, Option<HeavyBallState<B, D>>) {
        if self.momentum == 0.0 {
            return (direction, None);
        }
        let buffer = match state {
            Some(s) => s
                .buffer
                .mul_scalar(self.momentum)
                .add(direction.clone().mul_scalar(1.0 - self.dampening)),
            None => direction.clone(),
        };
        let step = if self.nesterov {
            direction.add(buffer.clone().mul_scalar(self.momentum))
        } else {
            buffer.clone()
        };
        (step, Some(HeavyBallState { buffer }))
    }
}

impl<B: Backend, const D: usize> HeavyBallState<B, D> {
    /// Moves the state to `device`.
    pub fn to_device(self, device: &B::Device) -> Self {
        Self {
            buffer: self.buffer.to_device(device),
        }
    }
}
