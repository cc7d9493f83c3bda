use super::L2Decay;

/// Which tensors skip weight decay and the trust ratio of LARS, LAMB and RaLars: none by
/// default (holocron decays and scales every tensor); with a flag set, the rank-1 tensors
/// (biases, normalisation scales), as SimCLR, BYOL and BERT train with these optimizers
/// (optax's `weight_decay_mask` and `trust_ratio_mask`, timm's and pytorch-optimizer's
/// parameter groups). A step knows its tensor's rank, so no parameter group is needed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VectorMask {
    /// Rank-1 tensors take no weight decay.
    pub weight_decay: bool,
    /// Rank-1 tensors take the plain step, unscaled by the trust ratio.
    pub trust_ratio: bool,
}

impl VectorMask {
    /// The weight decay a tensor of rank `rank` takes.
    pub fn decay(&self, rank: usize, decay: L2Decay) -> L2Decay {
        if rank == 1 && self.weight_decay {
            L2Decay::new(0.0)
        } else {
            decay
        }
    }

    /// Whether the trust ratio scales a tensor of rank `rank`.
    pub fn trusts(&self, rank: usize) -> bool {
        !(rank == 1 && self.trust_ratio)
    }
}
