//! The state an optimizer keeps for one parameter: its step count and its state tensors, in
//! the order and under the names its rule gives them, and their flattening into Burn 0.22's
//! optimizer record ([`RecordState`]).

use core::fmt;
use core::marker::PhantomData;

use burn::optim::{RecordState, StateSink, StateSource};
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use burn_pack::Scalar;
use holocron_optim_core::OptimizerRule;

/// The leaf under which the step count is recorded (`{prefix}.time`), for the rules that
/// count their steps ([`OptimizerRule::COUNTS_STEPS`]).
pub const TIME_LEAF: &str = "time";

/// The state of a [`RuleOptimizer`](crate::RuleOptimizer) for one parameter of rank `D`.
///
/// It holds the number of steps taken and the state tensors (the lanes) the rule keeps,
/// named by [`OptimizerRule::STATE_NAMES`] (e.g. `moment_1`, `moment_2`, `max_moment_2`),
/// each with the shape [`OptimizerRule::state_shapes`] gives: a lane of the parameter's shape
/// has it, a lane of one element (TAdam's weight sum) has shape `[1; D]`.
///
/// In Burn's optimizer record a parameter's state is the scalar `{prefix}.time` (for a rule
/// that counts its steps) and one tensor `{prefix}.{name}` per lane, in its dtype. For a rule
/// that does not count its steps (LARS) [`time`](Self::time) is 1 once the parameter has
/// stepped, and a loaded state has time 1.
pub struct RuleState<R: OptimizerRule, const D: usize> {
    time: usize,
    names: Vec<&'static str>,
    tensors: Vec<Tensor<D>>,
    rule: PhantomData<fn() -> R>,
}

impl<R: OptimizerRule, const D: usize> RuleState<R, D> {
    /// A state after `time` steps with the lanes `tensors`, named `names`.
    ///
    /// # Panics
    ///
    /// When `names` and `tensors` differ in length, or when a name is not one of
    /// [`OptimizerRule::STATE_NAMES`] or not in their order.
    pub fn new(time: usize, names: Vec<&'static str>, tensors: Vec<Tensor<D>>) -> Self {
        assert_eq!(
            names.len(),
            tensors.len(),
            "{}: {} state names for {} state tensors",
            R::NAME,
            names.len(),
            tensors.len()
        );
        let mut known = R::STATE_NAMES.iter();
        for name in &names {
            assert!(
                known.any(|known| known == name),
                "{}: `{name}` is not one of its state names {:?} (in their order)",
                R::NAME,
                R::STATE_NAMES
            );
        }
        Self {
            time,
            names,
            tensors,
            rule: PhantomData,
        }
    }

    /// The number of steps taken (1 once stepped for a rule that does not count its steps).
    pub fn time(&self) -> usize {
        self.time
    }

    /// The names of the lanes held, in the rule's order.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// The lanes, in the order of [`Self::names`].
    pub fn tensors(&self) -> &[Tensor<D>] {
        &self.tensors
    }

    /// The lane named `name`, if held.
    pub fn get(&self, name: &str) -> Option<&Tensor<D>> {
        self.names
            .iter()
            .position(|n| *n == name)
            .map(|i| &self.tensors[i])
    }

    /// The step count, the names and the lanes.
    pub fn into_parts(self) -> (usize, Vec<&'static str>, Vec<Tensor<D>>) {
        (self.time, self.names, self.tensors)
    }

    /// The state with every lane moved to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        Self {
            tensors: self
                .tensors
                .into_iter()
                .map(|tensor| tensor.to_device(device))
                .collect(),
            ..self
        }
    }
}

impl<R: OptimizerRule, const D: usize> Clone for RuleState<R, D> {
    fn clone(&self) -> Self {
        Self {
            time: self.time,
            names: self.names.clone(),
            tensors: self.tensors.clone(),
            rule: PhantomData,
        }
    }
}

impl<R: OptimizerRule, const D: usize> fmt::Debug for RuleState<R, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shapes: Vec<_> = self
            .names
            .iter()
            .zip(&self.tensors)
            .map(|(name, tensor)| (*name, tensor.dims()))
            .collect();
        f.debug_struct("RuleState")
            .field("rule", &R::NAME)
            .field("time", &self.time)
            .field("lanes", &shapes)
            .finish()
    }
}

impl<R: OptimizerRule, const D: usize> RecordState for RuleState<R, D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if R::COUNTS_STEPS {
            out.push_scalar(prefix, TIME_LEAF, Scalar::from(self.time));
        }
        for (name, tensor) in self.names.iter().zip(&self.tensors) {
            out.push_tensor(prefix, name, tensor.clone().into_data());
        }
    }

    /// Rebuilds the state from the lanes of [`OptimizerRule::STATE_NAMES`] present under
    /// `prefix`, in that order, each in its recorded dtype and copied into memory (a loaded
    /// record's tensors may be windows into its file).
    ///
    /// `None` (the parameter starts afresh, as Burn does with any state it cannot rebuild)
    /// when the step count of a rule that counts its steps is missing or not a count, or when
    /// a lane is not a float tensor of rank `D`.
    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let time = if R::COUNTS_STEPS {
            usize::try_from(src.take_scalar(prefix, TIME_LEAF)?).ok()?
        } else {
            1
        };
        let mut names = Vec::new();
        let mut tensors = Vec::new();
        for &name in R::STATE_NAMES {
            let Some(data) = src.take_tensor(prefix, name) else {
                continue;
            };
            tensors.push(loaded_tensor(data, device)?);
            names.push(name);
        }
        Some(Self::new(time, names, tensors))
    }
}

/// A float tensor of rank `D` from a record's data, in its recorded dtype, with its bytes
/// copied into memory: Burn's `ModuleOptimizer::load` reads a burnpack file lazily (its
/// tensors are windows into the file), and a backend that uploads lazily (WGPU) would otherwise
/// read the state from the file at the first step, failing if the file is gone by then and
/// taking other values if it was overwritten (say by the next checkpoint).
///
/// `None` for data of another rank or of a dtype that is not a float.
pub(crate) fn loaded_tensor<const D: usize>(
    data: TensorData,
    device: &Device,
) -> Option<Tensor<D>> {
    let dtype = data.dtype();
    if data.rank() != D || !dtype.is_float() {
        return None;
    }
    let owned = Bytes::from_bytes_vec(data.as_bytes().to_vec());
    let data = TensorData::from_bytes(owned, data.shape().clone(), dtype);
    Some(Tensor::from_data(data, (device, dtype)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use burn::tensor::{DType, TensorData};
    use holocron_optim_core::rules::{
        adabelief::AdaBelief, adamp::AdamP, adan::Adan, ademamix::AdEMAMix, lamb::Lamb,
        lamb::RaLars, lars::Lars, tadam::TAdam,
    };

    use super::*;

    #[allow(deprecated)] // Burn 0.22 deprecates its ndarray backend (for Flex).
    fn device() -> Device {
        Device::ndarray()
    }

    fn tensor<const D: usize>(values: &[f64], shape: [usize; D], dtype: DType) -> Tensor<D> {
        let data = TensorData::new(values.to_vec(), shape).convert_dtype(dtype);
        Tensor::from_data(data, (&device(), dtype))
    }

    /// Flattens `state` under `prefix` and rebuilds it, from the sink's tensors and scalars
    /// minus `drop` (leaf names).
    fn round_trip<R: OptimizerRule, const D: usize>(
        state: &RuleState<R, D>,
        drop: &[&str],
    ) -> Option<RuleState<R, D>> {
        let mut sink = StateSink::default();
        state.state_flatten("7", &mut sink);
        let kept = |name: &String| !drop.iter().any(|d| *name == format!("7.{d}"));
        let scalars: BTreeMap<_, _> = sink.scalars.into_iter().filter(|(n, _)| kept(n)).collect();
        let mut source = StateSource::new(scalars);
        for (name, data) in sink.tensors.into_iter().filter(|(n, _)| kept(n)) {
            source.insert_tensor(name, data);
        }
        RuleState::state_unflatten("7", &mut source, &device())
    }

    fn values<const D: usize>(t: &Tensor<D>) -> Vec<f64> {
        t.clone().try_into_vec_as::<f64>().unwrap()
    }

    /// No rule names a state tensor like the step count or Burn's reserved `__rank` scalar,
    /// and each name is unique: every leaf of a record is one thing.
    #[test]
    fn state_names_do_not_collide() {
        fn check<R: OptimizerRule>() {
            let names = R::STATE_NAMES;
            for (i, name) in names.iter().enumerate() {
                assert!(*name != TIME_LEAF && !name.starts_with("__"), "{}", R::NAME);
                assert!(!names[..i].contains(name), "{}: {name} twice", R::NAME);
            }
        }
        check::<Lars>();
        check::<Lamb>();
        check::<RaLars>();
        check::<TAdam>();
        check::<AdaBelief>();
        check::<AdamP>();
        check::<Adan>();
        check::<AdEMAMix>();
    }

    /// A state comes back with its step count, its lanes (of the configuration kept: AMSGrad's
    /// among them), their values, shapes and dtype (f64 stays f64).
    #[test]
    fn round_trip_keeps_lanes_values_and_dtype() {
        for dtype in [DType::F32, DType::F64] {
            let names = vec!["moment_1", "moment_2", "max_moment_2"];
            let lanes = vec![
                tensor(&[0.1, 0.2, 0.3, 0.4], [2, 2], dtype),
                tensor(&[1.0, 2.0, 3.0, 4.0], [2, 2], dtype),
                tensor(&[1.5, 2.5, 3.5, 4.5], [2, 2], dtype),
            ];
            let state = RuleState::<AdaBelief, 2>::new(5, names.clone(), lanes.clone());
            let back = round_trip(&state, &[]).expect("a complete state");
            assert_eq!(back.time(), 5);
            assert_eq!(back.names(), names.as_slice());
            for (got, want) in back.tensors().iter().zip(&lanes) {
                assert_eq!(got.dims(), want.dims());
                assert_eq!(got.dtype(), dtype);
                assert_eq!(values(got), values(want));
            }
            // Without AMSGrad's lane, the state has the two others.
            let back = round_trip(&state, &["max_moment_2"]).unwrap();
            assert_eq!(back.names(), ["moment_1", "moment_2"]);
        }
    }

    /// A one-element lane keeps its `[1; D]` shape; a rule that counts no steps records no
    /// step count and comes back with time 1.
    #[test]
    fn one_element_lanes_and_uncounted_steps() {
        let state = RuleState::<TAdam, 3>::new(
            2,
            vec!["moment_1", "moment_2", "weight_sum"],
            vec![
                tensor(&[1.0, 2.0], [1, 2, 1], DType::F32),
                tensor(&[3.0, 4.0], [1, 2, 1], DType::F32),
                tensor(&[9.0], [1, 1, 1], DType::F32),
            ],
        );
        let back = round_trip(&state, &[]).unwrap();
        assert_eq!(back.get("weight_sum").unwrap().dims(), [1, 1, 1]);
        assert_eq!(values(back.get("weight_sum").unwrap()), [9.0]);

        let lars = RuleState::<Lars, 1>::new(1, vec![], vec![]);
        let mut sink = StateSink::default();
        lars.state_flatten("7", &mut sink);
        assert!(sink.scalars.is_empty() && sink.tensors.is_empty());
        let back = round_trip(&lars, &[]).expect("LARS without momentum keeps nothing");
        assert_eq!((back.time(), back.names().len()), (1, 0));
    }

    /// A state that cannot be rebuilt is `None` (Burn then starts the parameter afresh): its
    /// step count is missing, or a lane has another rank.
    #[test]
    fn incomplete_or_foreign_states_are_none() {
        let state = RuleState::<Lamb, 1>::new(
            3,
            vec!["moment_1", "moment_2"],
            vec![
                tensor(&[1.0, 2.0], [2], DType::F32),
                tensor(&[3.0, 4.0], [2], DType::F32),
            ],
        );
        assert!(round_trip(&state, &[TIME_LEAF]).is_none());
        let mut sink = StateSink::default();
        state.state_flatten("7", &mut sink);
        let mut source = StateSource::new(sink.scalars.into_iter().collect());
        for (name, data) in sink.tensors {
            source.insert_tensor(name, data);
        }
        assert!(RuleState::<Lamb, 2>::state_unflatten("7", &mut source, &device()).is_none());
    }

    #[test]
    #[should_panic(expected = "`moment_9` is not one of its state names")]
    fn unknown_names_are_refused() {
        let lane = tensor(&[1.0], [1], DType::F32);
        RuleState::<Lamb, 1>::new(1, vec!["moment_9"], vec![lane]);
    }

    #[test]
    fn to_device_keeps_everything() {
        let state = RuleState::<Lamb, 1>::new(
            3,
            vec!["moment_1", "moment_2"],
            vec![
                tensor(&[1.0, 2.0], [2], DType::F64),
                tensor(&[3.0, 4.0], [2], DType::F64),
            ],
        );
        let moved = state.clone().to_device(&device());
        assert_eq!(moved.time(), 3);
        assert_eq!(moved.names(), state.names());
        assert_eq!(values(&moved.tensors()[1]), [3.0, 4.0]);
        assert_eq!(moved.tensors()[1].dtype(), DType::F64);
        assert!(format!("{moved:?}").contains("Lamb"));
    }
}
