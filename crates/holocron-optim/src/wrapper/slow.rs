//! The slow weights shared by both wrappers: captured before a parameter's first inner step,
//! pulled towards the fast weights at each sync, then copied into them.

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use hashbrown::HashMap;

use crate::fused::{self, Kernel, Lanes, Real};

/// One flattened tensor per parameter, keyed by parameter id, on the inner backend.
pub(crate) type FlatParams<B> = HashMap<ParamId, Tensor<B, 1>>;

/// The flattened, gradient-free value of a parameter.
pub(crate) fn flat<B: AutodiffBackend, const D: usize>(
    param: &Param<Tensor<B, D>>,
) -> Tensor<B::InnerBackend, 1> {
    let value = param.val().inner();
    let numel = value.shape().num_elements();
    value.reshape([numel])
}

/// Adds every parameter of `module` that `weights` does not hold yet.
pub(crate) fn capture_new<B: AutodiffBackend, M: AutodiffModule<B>>(
    weights: &mut FlatParams<B::InnerBackend>,
    module: &M,
) {
    struct Capture<'a, B: AutodiffBackend>(&'a mut FlatParams<B::InnerBackend>);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Capture<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if !self.0.contains_key(&param.id) {
                self.0.insert(param.id, flat(param));
            }
        }
    }
    module.visit(&mut Capture::<B>(weights));
}

/// The current value of every parameter of `module`.
pub(crate) fn snapshot<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
) -> FlatParams<B::InnerBackend> {
    let mut weights = HashMap::new();
    capture_new::<B, M>(&mut weights, module);
    weights
}

/// How far the slow weights move towards the fast ones at a sync.
pub(crate) enum SyncRate<B: Backend> {
    /// A rate known on the host; 0 leaves the slow weights untouched.
    Fixed(f64),
    /// A rate computed on the device (a one-element tensor).
    Computed(Tensor<B, 1>),
}

/// `slow <- slow + rate (fast - slow)` for every parameter held in `slow`, then
/// `fast <- slow`. Parameters without a gradient take part like the others. With `fused`,
/// a rate known on the host and a backend with a fused path, each parameter takes one
/// in-place pass, and fast and slow weights keep buffers of their own.
pub(crate) fn sync<B: AutodiffBackend, M: AutodiffModule<B>>(
    slow: &mut FlatParams<B::InnerBackend>,
    module: M,
    rate: &SyncRate<B::InnerBackend>,
    fused: bool,
) -> M {
    struct Sync<'a, B: AutodiffBackend> {
        slow: &'a mut FlatParams<B::InnerBackend>,
        rate: &'a SyncRate<B::InnerBackend>,
        fused: bool,
    }
    impl<B: AutodiffBackend> ModuleMapper<B> for Sync<'_, B> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            let Some(slow) = self.slow.get_mut(&id) else {
                return Param::from_mapped_value(id, tensor, mapper);
            };
            let require_grad = tensor.is_require_grad();
            let fast = tensor.inner();
            let shape = fast.shape();
            let numel = shape.num_elements();
            let fusable =
                fused::supports::<B::InnerBackend>(fast.dtype()) && slow.dtype() == fast.dtype();
            if let (true, true, SyncRate::Fixed(rate)) = (self.fused, fusable, self.rate) {
                let taken = core::mem::replace(slow, Tensor::empty([0], &fast.device()));
                let (fast, mut lanes) = fused::run(&Pull { rate: *rate }, fast, None, vec![taken]);
                *slow = lanes.pop().expect("the slow weights");
                let mut fast = Tensor::from_inner(fast);
                if require_grad {
                    fast = fast.require_grad();
                }
                return Param::from_mapped_value(id, fast, mapper);
            }
            let pulled = match self.rate {
                SyncRate::Fixed(rate) if *rate == 0.0 => slow.clone(),
                SyncRate::Fixed(rate) => {
                    let delta = fast.reshape([numel]).sub(slow.clone()).mul_scalar(*rate);
                    slow.clone().add(delta)
                }
                SyncRate::Computed(rate) => {
                    let delta = fast.reshape([numel]).sub(slow.clone()).mul(rate.clone());
                    slow.clone().add(delta)
                }
            };
            *slow = pulled.clone();
            let mut fast = Tensor::from_inner(pulled.reshape(shape));
            if require_grad {
                fast = fast.require_grad();
            }
            Param::from_mapped_value(id, fast, mapper)
        }
    }
    module.map(&mut Sync::<B> { slow, rate, fused })
}

/// The sync as a fused kernel: lanes `fast` (the parameter) and `[slow]`.
struct Pull {
    rate: f64,
}

impl Kernel for Pull {
    fn run<E: Real, const AMSGRAD: bool>(&self, mut lanes: Lanes<'_, E>) {
        let rate = E::of(self.rate);
        lanes.pass(
            |Lanes {
                 param, mut state, ..
             }| {
                let slow = &mut state[0][..param.len()];
                for (fast, slow) in param.iter_mut().zip(slow.iter_mut()) {
                    let pulled = *slow + (*fast - *slow) * rate;
                    *slow = pulled;
                    *fast = pulled;
                }
                []
            },
        );
    }
}

/// The record form of flattened weights (autodiff backend, as Burn records expect).
pub(crate) fn to_record<B: AutodiffBackend>(
    weights: &FlatParams<B::InnerBackend>,
) -> FlatParams<B> {
    weights
        .iter()
        .map(|(id, t)| (*id, Tensor::from_inner(t.clone())))
        .collect()
}

/// Back from [`to_record`].
pub(crate) fn from_record<B: AutodiffBackend>(
    record: FlatParams<B>,
) -> FlatParams<B::InnerBackend> {
    record.into_iter().map(|(id, t)| (id, t.inner())).collect()
}
