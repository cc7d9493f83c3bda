use burn::tensor::{Tensor, backend::Backend};

/// Coupled (L2) weight decay: adds `weight_decay * p` to a gradient or an update.
#[derive(Clone, Copy, Debug)]
pub struct L2Decay {
    /// The decay coefficient `lambda`.
    pub weight_decay: f64,
}

impl L2Decay {
    /// Decay with coefficient `weight_decay`.
    pub const fn new(weight_decay: f64) -> Self {
        Self { weight_decay }
    }

    /// Returns `x + weight_decay * param` (`x` itself when the coefficient is 0).
    pub fn apply<B: Backend, const D: usize>(
        &self,
        x: Tensor<B, D>,
        param: &Tensor<B, D>,
    ) -> Tensor<B, D> {
        if self.weight_decay == 0.0 {
            x
        } else {
            x.add(param.clone().mul_scalar(self.weight_decay))
        }
    }
}

/// Proximal weight decay, applied after the step: `p <- p / (1 + lr * weight_decay)`.
#[derive(Clone, Copy, Debug)]
pub struct ProximalDecay {
    /// The decay coefficient `lambda`.
    pub weight_decay: f64,
}

impl ProximalDecay {
    /// Decay with coefficient `weight_decay`.
    pub const fn new(weight_decay: f64) -> Self {
        Self { weight_decay }
    }

    /// Returns `param / (1 + lr * weight_decay)` (`param` itself when the coefficient is 0).
    pub fn apply<B: Backend, const D: usize>(&self, param: Tensor<B, D>, lr: f64) -> Tensor<B, D> {
        if self.weight_decay == 0.0 {
            param
        } else {
            param.div_scalar(1.0 + lr * self.weight_decay)
        }
    }
}
