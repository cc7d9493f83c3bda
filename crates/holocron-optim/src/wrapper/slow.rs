//! The slow weights shared by both wrappers: captured before a parameter's first inner step,
//! pulled towards the fast weights at each sync, then copied into them.

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use hashbrown::{HashMap, HashSet};

use crate::Execution;
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

/// Brings `weights` in line with `module`: adds every parameter it does not hold yet and
/// drops those the module no longer has (a layer removed during training), whose slow
/// weights would otherwise be kept, synced and counted forever.
pub(crate) fn capture_new<B: AutodiffBackend, M: AutodiffModule<B>>(
    weights: &mut FlatParams<B::InnerBackend>,
    module: &M,
) {
    struct Capture<'a, B: AutodiffBackend> {
        weights: &'a mut FlatParams<B::InnerBackend>,
        live: HashSet<ParamId>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Capture<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.live.insert(param.id);
            if !self.weights.contains_key(&param.id) {
                self.weights.insert(param.id, flat(param));
            }
        }
    }
    let mut capture = Capture::<B> {
        weights,
        live: HashSet::new(),
    };
    module.visit(&mut capture);
    let Capture { weights, live } = capture;
    weights.retain(|id, _| live.contains(id));
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
/// `fast <- slow`. Parameters without a gradient take part like the others. With the fused
/// path allowed by `execution`, a rate known on the host and a backend with a fused path, each parameter takes one
/// in-place pass, and fast and slow weights keep buffers of their own.
pub(crate) fn sync<B: AutodiffBackend, M: AutodiffModule<B>>(
    slow: &mut FlatParams<B::InnerBackend>,
    module: M,
    rate: &SyncRate<B::InnerBackend>,
    execution: Execution,
) -> M {
    struct Sync<'a, B: AutodiffBackend> {
        slow: &'a mut FlatParams<B::InnerBackend>,
        rate: &'a SyncRate<B::InnerBackend>,
        execution: Execution,
    }
    impl<B: AutodiffBackend> ModuleMapper<B> for Sync<'_, B> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            let Some(slow) = self.slow.remove(&id) else {
                return Param::from_mapped_value(id, tensor, mapper);
            };
            let require_grad = tensor.is_require_grad();
            let (fast, slow) = pull(tensor.inner(), slow, self.rate, self.execution);
            self.slow.insert(id, slow);
            let mut fast = Tensor::from_inner(fast);
            if require_grad {
                fast = fast.require_grad();
            }
            Param::from_mapped_value(id, fast, mapper)
        }
    }
    module.map(&mut Sync::<B> {
        slow,
        rate,
        execution,
    })
}

/// One parameter's sync: the fast weights and the slow ones after it.
fn pull<B: Backend, const D: usize>(
    fast: Tensor<B, D>,
    slow: Tensor<B, 1>,
    rate: &SyncRate<B>,
    execution: Execution,
) -> (Tensor<B, D>, Tensor<B, 1>) {
    // Nothing to pull in a parameter without elements; Burn's CubeCL backends also refuse
    // to broadcast a computed rate onto one.
    if slow.shape().num_elements() == 0 {
        return (fast, slow);
    }
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    let (fast, slow) = match execution.kernels::<B>() {
        true => {
            let rate = match rate {
                SyncRate::Fixed(rate) => Ok(*rate),
                SyncRate::Computed(rate) => Err(rate),
            };
            match fused::cube::pull(fast, slow, rate) {
                Ok(pulled) => return pulled,
                Err(refused) => refused,
            }
        }
        false => (fast, slow),
    };
    let fusable = fused::supports::<B>(fast.dtype()) && slow.dtype() == fast.dtype();
    if let (true, true, SyncRate::Fixed(rate)) = (execution.loops(), fusable, rate) {
        let (fast, mut lanes) = fused::run(&Pull { rate: *rate }, fast, None, vec![slow]);
        return (fast, lanes.pop().expect("the slow weights"));
    }
    let shape = fast.shape();
    let numel = shape.num_elements();
    let pulled = match rate {
        SyncRate::Fixed(rate) if *rate == 0.0 => slow,
        SyncRate::Fixed(rate) => {
            let delta = fast.reshape([numel]).sub(slow.clone()).mul_scalar(*rate);
            slow.add(delta)
        }
        SyncRate::Computed(rate) => {
            let delta = fast.reshape([numel]).sub(slow.clone()).mul(rate.clone());
            slow.add(delta)
        }
    };
    (pulled.clone().reshape(shape), pulled)
}

/// The sync as a fused kernel: lanes `fast` (the parameter) and `[slow]`.
struct Pull {
    rate: f64,
}

impl Kernel for Pull {
    fn run<E: Real, const FLAG: bool>(&self, mut lanes: Lanes<'_, E>) {
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

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use burn::backend::Wgpu;
    use burn::tensor::{Tensor, TensorData};

    use super::{SyncRate, pull};
    use crate::Execution;
    use crate::fused::cube::launches;

    fn values(t: Tensor<Wgpu, 1>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    /// A sync with a rate known on the host and one with a rate on the device (Scout's)
    /// each run one kernel, and give `slow + rate (fast - slow)` to both weights.
    #[test]
    fn a_sync_runs_on_a_kernel_on_wgpu() {
        let device = Default::default();
        let tensor = |v: Vec<f32>| {
            let n = v.len();
            Tensor::<Wgpu, 1>::from_data(TensorData::new(v, [n]), &device)
        };
        let before = launches();
        let (fast, slow) = pull(
            tensor(vec![1.0, 2.0, 3.0]).reshape([1, 3]),
            tensor(vec![0.0, 0.0, 1.0]),
            &SyncRate::Fixed(0.5),
            Execution::Fused,
        );
        assert_eq!(values(fast.reshape([3])), [0.5, 1.0, 2.0]);
        assert_eq!(values(slow), [0.5, 1.0, 2.0]);
        let rate = SyncRate::Computed(tensor(vec![0.25]));
        let (fast, slow) = pull(
            tensor(vec![4.0, 0.0, 8.0]),
            tensor(vec![0.0, 4.0, 0.0]),
            &rate,
            Execution::Fused,
        );
        assert_eq!(values(fast), [1.0, 3.0, 2.0]);
        assert_eq!(values(slow), [1.0, 3.0, 2.0]);
        assert_eq!(launches() - before, 2);
        let _ = pull(
            tensor(vec![4.0, 0.0, 8.0]),
            tensor(vec![0.0, 4.0, 0.0]),
            &rate,
            Execution::Composed,
        );
        assert_eq!(launches() - before, 2, "Execution::Composed ran a kernel");
    }
}
