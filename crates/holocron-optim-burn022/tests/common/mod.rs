//! What the tests share: the device of the backend the cargo features choose, a module of
//! explicit parameters of ranks 1 to 4, gradients for it, every optimizer's configuration
//! behind one enum, and the optimizer state read back from Burn's record.

// Each test crate uses its own subset.
#![allow(dead_code)]

use std::collections::BTreeMap;

use burn::module::{Module, Param, ParamId};
use burn::optim::{GradientsParams, ModuleOptimizer, Optimizer, SgdConfig};
use burn::tensor::{DType, Device, Tensor, TensorData};
use holocron_optim_burn022::*;

/// The backend the features choose, for reports: `cuda`, else `wgpu`, else `flex`, else
/// `ndarray`.
pub const BACKEND: &str = if cfg!(feature = "cuda") {
    "cuda"
} else if cfg!(feature = "wgpu") {
    "wgpu"
} else if cfg!(feature = "flex") {
    "flex"
} else {
    "ndarray"
};

/// Whether the backend's steps run on the CPU loops (Flex and ndarray).
pub const HAS_CPU_LOOPS: bool = matches!(BACKEND.as_bytes(), b"flex" | b"ndarray");

/// The fast path of the backend's device for tensors of `dtype`, and the execution that
/// takes it: the CPU loops on Flex and ndarray (`f32` and `f64`) and the kernels (`f32`) on
/// WGPU with `Execution::Auto`, on CUDA only with `Execution::Fused` (Auto keeps the
/// composed operations there until a CUDA run of these tests, see `docs/burn-0.22.md`).
pub fn fast_path(dtype: DType) -> Option<(Execution, StepPath)> {
    if HAS_CPU_LOOPS {
        Some((Execution::Auto, StepPath::CpuLoops))
    } else if dtype != DType::F32 {
        None
    } else if BACKEND == "wgpu" {
        Some((Execution::Auto, StepPath::Kernels))
    } else {
        Some((Execution::Fused, StepPath::Kernels))
    }
}

/// The device of the backend the features choose (without autodiff): the first CUDA GPU
/// with `cuda`, else WGPU's default adapter with `wgpu` (Mesa's lavapipe on a machine
/// without a GPU), else Flex's CPU device with `flex`, else ndarray's. Named explicitly
/// rather than through `Device::default()`, whose choice depends on every backend feature
/// the build unifies.
// Burn 0.22 deprecates its ndarray backend (for Flex); the `ndarray` feature still picks it.
#[allow(deprecated)]
pub fn device() -> Device {
    #[cfg(feature = "cuda")]
    return Device::cuda(0);
    #[cfg(all(feature = "wgpu", not(feature = "cuda")))]
    return Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    #[cfg(all(feature = "flex", not(any(feature = "wgpu", feature = "cuda"))))]
    return Device::flex();
    #[cfg(not(any(feature = "wgpu", feature = "cuda", feature = "flex")))]
    Device::ndarray()
}

/// The float dtypes the device computes in, of `f32` and `f64`.
pub fn dtypes() -> Vec<DType> {
    let device = device();
    [DType::F32, DType::F64]
        .into_iter()
        .filter(|dtype| device.supports_dtype(*dtype))
        .collect()
}

/// A tensor of the given shape, values (rounded to `dtype`), dtype and device.
pub fn tensor<const D: usize>(
    shape: &[usize],
    values: &[f64],
    dtype: DType,
    device: &Device,
) -> Tensor<D> {
    let data = TensorData::new(values.to_vec(), shape.to_vec()).convert_dtype(dtype);
    Tensor::from_data(data, (device, dtype))
}

/// A tensor's values, row-major, as f64.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
    tensor.try_into_vec_as::<f64>().expect("readable tensor")
}

/// Which rank and slot a parameter occupies in a [`ParamSet`].
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub rank: usize,
    pub index: usize,
}

/// A module holding explicit parameter tensors of ranks 1 to 4.
#[derive(Module, Debug)]
pub struct ParamSet {
    pub rank1: Vec<Param<Tensor<1>>>,
    pub rank2: Vec<Param<Tensor<2>>>,
    pub rank3: Vec<Param<Tensor<3>>>,
    pub rank4: Vec<Param<Tensor<4>>>,
}

/// A parameter's shape and row-major values.
pub type Spec = (Vec<usize>, Vec<f64>);

fn push<const D: usize>(
    list: &mut Vec<Param<Tensor<D>>>,
    shape: &[usize],
    values: &[f64],
    dtype: DType,
    device: &Device,
) -> usize {
    let value = tensor::<D>(shape, values, dtype, device).require_grad();
    list.push(Param::from_tensor(value));
    list.len() - 1
}

impl ParamSet {
    /// Builds the set from `(shape, values)` pairs, in order, in `dtype` on `device` (with
    /// autodiff); returns each one's slot.
    pub fn new(specs: &[Spec], dtype: DType, device: &Device) -> (Self, Vec<Slot>) {
        let device = device.clone().autodiff();
        let mut set = ParamSet {
            rank1: vec![],
            rank2: vec![],
            rank3: vec![],
            rank4: vec![],
        };
        let mut slots = vec![];
        for (shape, values) in specs {
            let rank = shape.len();
            let index = match rank {
                1 => push(&mut set.rank1, shape, values, dtype, &device),
                2 => push(&mut set.rank2, shape, values, dtype, &device),
                3 => push(&mut set.rank3, shape, values, dtype, &device),
                4 => push(&mut set.rank4, shape, values, dtype, &device),
                _ => panic!("rank {rank} is not supported by the test parameter set"),
            };
            slots.push(Slot { rank, index });
        }
        (set, slots)
    }

    /// The id of a parameter.
    pub fn id(&self, slot: Slot) -> ParamId {
        match slot.rank {
            1 => self.rank1[slot.index].id,
            2 => self.rank2[slot.index].id,
            3 => self.rank3[slot.index].id,
            _ => self.rank4[slot.index].id,
        }
    }

    /// The values of a parameter, row-major, as f64.
    pub fn values(&self, slot: Slot) -> Vec<f64> {
        match slot.rank {
            1 => values(self.rank1[slot.index].val()),
            2 => values(self.rank2[slot.index].val()),
            3 => values(self.rank3[slot.index].val()),
            _ => values(self.rank4[slot.index].val()),
        }
    }

    /// The dtype of a parameter.
    pub fn dtype(&self, slot: Slot) -> DType {
        match slot.rank {
            1 => self.rank1[slot.index].val().dtype(),
            2 => self.rank2[slot.index].val().dtype(),
            3 => self.rank3[slot.index].val().dtype(),
            _ => self.rank4[slot.index].val().dtype(),
        }
    }
}

/// Gradients for the given slots (`None`: that parameter gets no gradient this step), in
/// `dtype` on `device` (without autodiff, as `GradientsParams` holds them).
pub fn gradients(
    set: &ParamSet,
    slots: &[Slot],
    shapes: &[Vec<usize>],
    grads: &[Option<Vec<f64>>],
    dtype: DType,
    device: &Device,
) -> GradientsParams {
    let mut params = GradientsParams::new();
    for ((slot, shape), grad) in slots.iter().zip(shapes).zip(grads) {
        let Some(values) = grad else { continue };
        let id = set.id(*slot);
        match slot.rank {
            1 => params.register(id, tensor::<1>(shape, values, dtype, device)),
            2 => params.register(id, tensor::<2>(shape, values, dtype, device)),
            3 => params.register(id, tensor::<3>(shape, values, dtype, device)),
            _ => params.register(id, tensor::<4>(shape, values, dtype, device)),
        }
    }
    params
}

/// A deterministic, sign-changing sequence of `n` values for gradients and parameters.
pub fn wave(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|k| ((k as f64 + 1.0) * 1.618 + seed * 2.5).sin() * (1.0 + (k % 3) as f64))
        .collect()
}

/// Parameters of ranks 1 to 4 with non-zero values: their specs and shapes.
pub fn mixed_specs() -> (Vec<Spec>, Vec<Vec<usize>>) {
    let shapes: Vec<Vec<usize>> = vec![vec![5], vec![4, 3], vec![2, 2, 3], vec![2, 3, 2, 2]];
    let specs = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), wave(s.iter().product(), i as f64)))
        .collect();
    (specs, shapes)
}

/// Any optimizer configuration of this crate.
#[derive(Clone, Debug)]
pub enum AnyConfig {
    Lars(LarsConfig),
    Lamb(LambConfig),
    RaLars(RaLarsConfig),
    TAdam(TAdamConfig),
    AdaBelief(AdaBeliefConfig),
    AdamP(AdamPConfig),
    Adan(AdanConfig),
    AdEMAMix(AdEMAMixConfig),
    /// Burn's SGD (the inner optimizer of some wrapper cases).
    Sgd(SgdConfig),
    /// Lookahead over one of the others.
    Lookahead(Box<AnyConfig>, LookaheadConfig),
    /// Scout over one of the others.
    Scout(Box<AnyConfig>, ScoutConfig),
}

/// A wrapper's configuration, for [`AnyConfig::wrapped`].
pub trait Wrap {
    /// `inner` wrapped, in Burn's `ModuleOptimizer`.
    fn wrap<O: Optimizer>(&self, inner: O) -> ModuleOptimizer;
}

impl Wrap for LookaheadConfig {
    fn wrap<O: Optimizer>(&self, inner: O) -> ModuleOptimizer {
        self.init(inner)
    }
}

impl Wrap for ScoutConfig {
    fn wrap<O: Optimizer>(&self, inner: O) -> ModuleOptimizer {
        self.init(inner)
    }
}

impl AnyConfig {
    /// This configuration with `execution` (for a wrapper, its inner optimizer's; Burn's
    /// SGD has one path).
    pub fn with_execution(self, execution: Execution) -> Self {
        match self {
            AnyConfig::Lars(c) => AnyConfig::Lars(c.with_execution(execution)),
            AnyConfig::Lamb(c) => AnyConfig::Lamb(c.with_execution(execution)),
            AnyConfig::RaLars(c) => AnyConfig::RaLars(c.with_execution(execution)),
            AnyConfig::TAdam(c) => AnyConfig::TAdam(c.with_execution(execution)),
            AnyConfig::AdaBelief(c) => AnyConfig::AdaBelief(c.with_execution(execution)),
            AnyConfig::AdamP(c) => AnyConfig::AdamP(c.with_execution(execution)),
            AnyConfig::Adan(c) => AnyConfig::Adan(c.with_execution(execution)),
            AnyConfig::AdEMAMix(c) => AnyConfig::AdEMAMix(c.with_execution(execution)),
            AnyConfig::Sgd(c) => AnyConfig::Sgd(c),
            AnyConfig::Lookahead(inner, c) => {
                AnyConfig::Lookahead(Box::new(inner.with_execution(execution)), c)
            }
            AnyConfig::Scout(inner, c) => {
                AnyConfig::Scout(Box::new(inner.with_execution(execution)), c)
            }
        }
    }

    /// Whether the optimizer (or a wrapper's inner one) is Burn's SGD, which has no CPU
    /// loops of this crate.
    pub fn is_sgd(&self) -> bool {
        match self {
            AnyConfig::Sgd(_) => true,
            AnyConfig::Lookahead(inner, _) | AnyConfig::Scout(inner, _) => inner.is_sgd(),
            _ => false,
        }
    }

    /// The optimizer for a module (Burn's `ModuleOptimizer`).
    pub fn init(&self) -> ModuleOptimizer {
        match self {
            AnyConfig::Lars(c) => c.init(),
            AnyConfig::Lamb(c) => c.init(),
            AnyConfig::RaLars(c) => c.init(),
            AnyConfig::TAdam(c) => c.init(),
            AnyConfig::AdaBelief(c) => c.init(),
            AnyConfig::AdamP(c) => c.init(),
            AnyConfig::Adan(c) => c.init(),
            AnyConfig::AdEMAMix(c) => c.init(),
            AnyConfig::Sgd(c) => c.init(),
            AnyConfig::Lookahead(inner, c) => inner.wrapped(c),
            AnyConfig::Scout(inner, c) => inner.wrapped(c),
        }
    }

    /// The bare optimizer of this configuration wrapped by `wrapper`.
    ///
    /// # Panics
    ///
    /// For a wrapper inside a wrapper (no test uses one).
    pub fn wrapped(&self, wrapper: &impl Wrap) -> ModuleOptimizer {
        match self {
            AnyConfig::Lars(c) => wrapper.wrap(c.build()),
            AnyConfig::Lamb(c) => wrapper.wrap(c.build()),
            AnyConfig::RaLars(c) => wrapper.wrap(c.build()),
            AnyConfig::TAdam(c) => wrapper.wrap(c.build()),
            AnyConfig::AdaBelief(c) => wrapper.wrap(c.build()),
            AnyConfig::AdamP(c) => wrapper.wrap(c.build()),
            AnyConfig::Adan(c) => wrapper.wrap(c.build()),
            AnyConfig::AdEMAMix(c) => wrapper.wrap(c.build()),
            AnyConfig::Sgd(c) => wrapper.wrap(c.build()),
            AnyConfig::Lookahead(..) | AnyConfig::Scout(..) => {
                panic!("{}: a wrapper inside a wrapper", self.name())
            }
        }
    }

    /// The optimizer's name (`Lookahead(Lamb)` for a wrapper).
    pub fn name(&self) -> String {
        match self {
            AnyConfig::Lars(_) => "Lars".into(),
            AnyConfig::Lamb(_) => "Lamb".into(),
            AnyConfig::RaLars(_) => "RaLars".into(),
            AnyConfig::TAdam(_) => "TAdam".into(),
            AnyConfig::AdaBelief(_) => "AdaBelief".into(),
            AnyConfig::AdamP(_) => "AdamP".into(),
            AnyConfig::Adan(_) => "Adan".into(),
            AnyConfig::AdEMAMix(_) => "AdEMAMix".into(),
            AnyConfig::Sgd(_) => "Sgd".into(),
            AnyConfig::Lookahead(inner, _) => format!("Lookahead({})", inner.name()),
            AnyConfig::Scout(inner, _) => format!("Scout({})", inner.name()),
        }
    }
}

/// One parameter's recorded state: its scalars (the step count `time`) and tensors, by
/// name, with the tensors' dtypes and shapes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RecordedState {
    pub scalars: BTreeMap<String, f64>,
    pub tensors: BTreeMap<String, (DType, Vec<usize>, Vec<f64>)>,
}

/// The optimizer's state of every parameter that has one, by parameter id, as its record
/// holds it: `to_record`, serialized to burnpack bytes and read back with `burn_pack`'s
/// reader (the only public view of a record's contents). Burn's own `{id}.__rank` scalar is
/// left out.
pub fn recorded_states(optim: &ModuleOptimizer) -> BTreeMap<u64, RecordedState> {
    let bytes = optim
        .to_record()
        .into_bytes()
        .expect("a serializable record");
    let reader = burn_pack::Reader::from_bytes(bytes).expect("a readable record");
    let mut states: BTreeMap<u64, RecordedState> = BTreeMap::new();
    for (key, scalar) in reader.scalars() {
        let (id, leaf) = key.split_once('.').expect("a scalar named {id}.{leaf}");
        let id: u64 = id.parse().expect("a parameter id");
        let state = states.entry(id).or_default();
        if leaf == "__rank" {
            continue;
        }
        let value = f64::try_from(*scalar)
            .or_else(|_| u64::try_from(*scalar).map(|v| v as f64))
            .expect("a numeric scalar");
        state.scalars.insert(leaf.to_string(), value);
    }
    for tensor in reader.into_tensors().expect("readable tensors") {
        let (name, dtype, shape, param_id, bytes) = tensor.into_parts().expect("tensor parts");
        let id = param_id.expect("a state tensor carries its parameter id");
        let leaf = name
            .strip_prefix(&format!("{id}."))
            .expect("a tensor named {id}.{leaf}")
            .to_string();
        let data = TensorData::from_bytes(bytes, shape.clone(), dtype);
        let values = data
            .convert::<f64>()
            .try_into_vec::<f64>()
            .expect("float values");
        states
            .entry(id)
            .or_default()
            .tensors
            .insert(leaf, (dtype, shape.to_vec(), values));
    }
    states
}
