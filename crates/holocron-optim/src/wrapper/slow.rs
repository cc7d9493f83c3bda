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
/// weights would otherwise be kept, synced and counted forever. With `only`, the
/// parameters outside it are left out (a worker's shard under
/// [`ZeroRedundancy`](crate::ZeroRedundancy)).
pub(crate) fn capture_new<B: AutodiffBackend, M: AutodiffModule<B>>(
    weights: &mut FlatParams<B::InnerBackend>,
    module: &M,
    only: Option<&HashSet<ParamId>>,
) {
    struct Capture<'a, B: AutodiffBackend> {
        weights: &'a mut FlatParams<B::InnerBackend>,
        live: HashSet<ParamId>,
        only: Option<&'a HashSet<ParamId>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Capture<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if self.only.is_some_and(|only| !only.contains(&param.id)) {
                return;
            }
            self.live.insert(param.id);
            if !self.weights.contains_key(&param.id) {
                self.weights.insert(param.id, flat(param));
            }
        }
    }
    let mut capture = Capture::<B> {
        weights,
        live: HashSet::new(),
        only,
    };
    module.visit(&mut capture);
    let Capture { weights, live, .. } = capture;
    weights.retain(|id, _| live.contains(id));
}

/// The current value of every parameter of `module`.
pub(crate) fn snapshot<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
) -> FlatParams<B::InnerBackend> {
    let mut weights = HashMap::new();
    capture_new::<B, M>(&mut weights, module, None);
    weights
}

/// Calls `place(id, device)` with the device of every parameter of `module`.
///
/// Under Burn's `MultiDeviceOptim::OptimSharded` the inner step moves each parameter to the
/// device that owns it; the wrappers call this after the inner step to move what they keep
/// of a parameter (slow weights, Scout's window) to that device too, so that the sync reads
/// tensors of one device and the state is spread as the parameters are.
pub(crate) fn on_devices<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    place: impl FnMut(ParamId, &B::Device),
) {
    struct Devices<F>(F);
    impl<B: AutodiffBackend, F: FnMut(ParamId, &B::Device)> ModuleVisitor<B> for Devices<F> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            (self.0)(param.id, &param.val().device());
        }
    }
    module.visit(&mut Devices(place));
}

/// `tensor`, moved to `device` unless it is there already.
pub(crate) fn moved<B: Backend, const D: usize>(
    tensor: Tensor<B, D>,
    device: &B::Device,
) -> Tensor<B, D> {
    match tensor.device() == *device {
        true => tensor,
        false => tensor.to_device(device),
    }
}

/// Moves `tensor` to `device` unless it is there already.
pub(crate) fn follow<B: Backend, const D: usize>(tensor: &mut Tensor<B, D>, device: &B::Device) {
    *tensor = moved(tensor.clone(), device);
}

/// Moves each parameter's slow weights to the parameter's device.
pub(crate) fn follow_devices<B: AutodiffBackend, M: AutodiffModule<B>>(
    weights: &mut FlatParams<B::InnerBackend>,
    module: &M,
) {
    on_devices::<B, M>(module, |id, device| {
        if let Some(slow) = weights.get_mut(&id) {
            follow(slow, device);
        }
    });
}

/// What both wrappers hold besides their own state: the inner (fast) optimizer, when and
/// how they sync, the inner steps taken so far, and the slow weights.
#[derive(Clone)]
pub(crate) struct Core<O, B: Backend> {
    pub inner: O,
    pub sync_rate: f64,
    pub sync_period: usize,
    pub execution: Execution,
    pub steps: usize,
    pub slow: FlatParams<B>,
    /// The parameters whose slow weights this wrapper keeps; all when `None`.
    pub only: Option<HashSet<ParamId>>,
}

impl<O, B: Backend> Core<O, B> {
    pub fn new(inner: O, sync_rate: f64, sync_period: usize, execution: Execution) -> Self {
        Self {
            inner,
            sync_rate,
            sync_period,
            execution,
            steps: 0,
            slow: HashMap::new(),
            only: None,
        }
    }

    /// Counts an inner step; whether a sync is due after it.
    pub fn count_step(&mut self) -> bool {
        self.steps += 1;
        self.steps.is_multiple_of(self.sync_period)
    }
}

/// A wrapper's `Optimizer` impl: `step` and `step_multi` run the wrapper's
/// `before_inner_step`, the inner optimizer's step, then its `after_inner_step`; the record
/// holds the inner record, the slow weights and the step count, plus the wrapper's own
/// fields, written from `$this` by `to_record` and read back from `$record` by
/// `load_record` into the wrapper `$loaded` (already holding the core's part).
macro_rules! wrapper_optimizer {
    (
        $wrapper:ident, $record_type:ident,
        to_record: |$this:ident| { $($field:ident: $value:expr),* $(,)? },
        load_record: |$loaded:ident, $record:ident| $load:expr $(,)?
    ) => {
        impl<O, M, B> Optimizer<M, B> for $wrapper<O, M, B>
        where
            O: Optimizer<M, B>,
            M: AutodiffModule<B>,
            B: AutodiffBackend,
        {
            type Record = $record_type<B, O::Record>;

            fn step(&mut self, lr: LearningRate, module: M, grads: GradientsParams) -> M {
                self.before_inner_step(&module);
                let module = self.core.inner.step(lr, module, grads);
                self.after_inner_step(module)
            }

            fn step_multi(&mut self, lr: LearningRate, module: M, grads: MultiGradientsParams) -> M {
                self.before_inner_step(&module);
                let module = self.core.inner.step_multi(lr, module, grads);
                self.after_inner_step(module)
            }

            fn to_record(&self) -> Self::Record {
                let $this = self;
                $record_type {
                    inner: $this.core.inner.to_record(),
                    slow_weights: slow::to_record::<B>(&$this.core.slow),
                    steps: $this.core.steps,
                    $($field: $value,)*
                }
            }

            fn load_record(self, $record: Self::Record) -> Self {
                let core = Core {
                    inner: self.core.inner.load_record($record.inner),
                    slow: slow::from_record::<B>($record.slow_weights),
                    steps: $record.steps,
                    ..self.core
                };
                let $loaded = Self { core, ..self };
                $load
            }
        }
    };
}
pub(crate) use wrapper_optimizer;

/// `param` with its value replaced by `update(id, value)` on the inner backend; it keeps its
/// id, whether it requires a gradient and (feature `distributed`) whether it is marked for
/// Burn's data-parallel gradient sync, as Burn's `OptimizerAdaptor` keeps them: a sync that
/// dropped the mark would leave the parameter's later gradients unsynced, each worker
/// training its own copy.
pub(crate) fn map_value<B: AutodiffBackend, const D: usize>(
    param: Param<Tensor<B, D>>,
    update: impl FnOnce(ParamId, Tensor<B::InnerBackend, D>) -> Tensor<B::InnerBackend, D>,
) -> Param<Tensor<B, D>> {
    let (id, tensor, mapper) = param.consume();
    let require_grad = tensor.is_require_grad();
    #[cfg(feature = "distributed")]
    let distributed = tensor.is_distributed();
    let mut value = Tensor::from_inner(update(id, tensor.inner()));
    if require_grad {
        value = value.require_grad();
    }
    #[cfg(feature = "distributed")]
    if distributed {
        use burn::tensor::backend::distributed::DistributedParamId;
        value = value.set_distributed(DistributedParamId::from(id.val()));
    }
    Param::from_mapped_value(id, value, mapper)
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
            map_value(param, |id, fast| match self.slow.remove(&id) {
                Some(slow) => {
                    let (fast, slow) = pull(fast, slow, self.rate, self.execution);
                    self.slow.insert(id, slow);
                    fast
                }
                None => fast,
            })
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
    // The slow weights and Scout's rate (computed on one device) meet the parameter on its
    // device, which Burn's sharded multi-device step may have changed.
    let device = fast.device();
    let slow = moved(slow, &device);
    let rate_here;
    let rate = match rate {
        SyncRate::Computed(rate) if rate.device() != device => {
            rate_here = SyncRate::Computed(rate.clone().to_device(&device));
            &rate_here
        }
        _ => rate,
    };
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    let (fast, slow) = match crate::fused::cube::allowed::<B>(execution) {
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
        let (fast, mut lanes) = fused::run(&Pull { rate: *rate }, (fast, None, vec![slow]));
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

/// Burn's `distributed` feature makes every autodiff backend a `DistributedBackend`, which
/// only the CubeCL backends are: the test runs on WGPU.
#[cfg(all(test, feature = "distributed", feature = "wgpu"))]
mod distributed_tests {
    use burn::backend::{Autodiff, Wgpu};
    use burn::module::{Module, Param};
    use burn::optim::{GradientsParams, Optimizer};
    use burn::tensor::backend::distributed::DistributedParamId;
    use burn::tensor::{Tensor, TensorData};

    use crate::{AdaBeliefConfig, LookaheadConfig, ScoutConfig};

    type B = Autodiff<Wgpu>;

    #[derive(Module, Debug)]
    struct Model<B: burn::tensor::backend::Backend> {
        marked: Param<Tensor<B, 2>>,
        plain: Param<Tensor<B, 1>>,
    }

    fn model() -> Model<B> {
        let device = Default::default();
        let values = TensorData::new(vec![0.5f32, -1.0, 2.0, 0.25], [2, 2]);
        let marked = Param::from_tensor(Tensor::from_data(values, &device));
        let id = marked.id;
        let marked = marked.map(|t| t.set_distributed(DistributedParamId::from(id.val())));
        let plain = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![1.0f32, -2.0], [2]),
            &device,
        ));
        Model { marked, plain }
    }

    /// The gradients of a data-parallel step, made by hand: a backward over marked
    /// parameters would ask for Burn's collective server.
    fn grads(model: &Model<B>) -> GradientsParams {
        let device = Default::default();
        let mut grads = GradientsParams::new();
        grads.register(
            model.marked.id,
            Tensor::<Wgpu, 2>::from_data(
                TensorData::new(vec![0.1f32, 0.2, -0.3, 0.4], [2, 2]),
                &device,
            ),
        );
        grads.register(
            model.plain.id,
            Tensor::<Wgpu, 1>::from_data(TensorData::new(vec![0.5f32, -0.5], [2]), &device),
        );
        grads
    }

    fn keeps_the_mark(mut optim: impl Optimizer<Model<B>, B>, name: &str) {
        let mut model = model();
        assert!(model.marked.val().is_distributed());
        for step in 1..=4 {
            let grads = grads(&model);
            model = optim.step(1e-2, model, grads);
            assert!(
                model.marked.val().is_distributed(),
                "{name}: the mark is gone after step {step}"
            );
            assert!(!model.plain.val().is_distributed(), "{name}: step {step}");
        }
    }

    /// Burn's adaptor keeps the mark through a step; the wrappers keep it through a sync
    /// (every second step here) too.
    #[test]
    fn the_data_parallel_mark_outlives_a_sync() {
        let inner = || AdaBeliefConfig::new().init();
        keeps_the_mark(
            LookaheadConfig::new().with_sync_period(2).init(inner()),
            "Lookahead",
        );
        keeps_the_mark(
            ScoutConfig::new().with_sync_period(2).init(inner()),
            "Scout",
        );
    }
}
