//! The per-parameter state of the wrappers: the inner optimizer's state, the slow weights,
//! Scout's window and the step count, and their flattening into Burn 0.22's optimizer record.

use core::fmt;

use burn::optim::{RecordState, StateSink, StateSource, join_index, join_path};
use burn::tensor::{Device, Tensor};
use burn_pack::Scalar;

use crate::state::loaded_tensor;

/// The state of [`Lookahead`](crate::Lookahead) or [`Scout`](crate::Scout) for one parameter
/// of rank `D`, around the state `S` of the wrapped optimizer.
///
/// In Burn's optimizer record it is, under the parameter's prefix: `steps` (a scalar), `slow`
/// (a tensor of the parameter's shape and dtype), `window.len` and `window.0`, `window.1`, ...
/// (Scout only: the fast weights after each step since the last sync), and the inner state
/// under `inner.` (absent when the inner optimizer keeps none).
#[derive(Clone)]
pub struct SlowState<S, const D: usize> {
    /// The wrapped optimizer's state for this parameter.
    pub inner: Option<S>,
    /// Inner steps taken by this parameter.
    pub steps: usize,
    /// The slow weights: the parameter at the last sync (before its first step at first).
    pub slow: Tensor<D>,
    /// Scout's window: the parameter after each inner step since the last sync, oldest
    /// first (always empty for Lookahead).
    pub window: Vec<Tensor<D>>,
}

impl<S, const D: usize> SlowState<S, D> {
    /// The state with its tensors moved to `device`, the inner state by `inner_to_device`.
    pub(crate) fn into_device(
        self,
        device: &Device,
        inner_to_device: impl FnOnce(S, &Device) -> S,
    ) -> Self {
        Self {
            inner: self.inner.map(|inner| inner_to_device(inner, device)),
            steps: self.steps,
            slow: self.slow.to_device(device),
            window: self
                .window
                .into_iter()
                .map(|row| row.to_device(device))
                .collect(),
        }
    }
}

impl<S: fmt::Debug, const D: usize> fmt::Debug for SlowState<S, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlowState")
            .field("inner", &self.inner)
            .field("steps", &self.steps)
            .field("slow", &self.slow.dims())
            .field("window", &self.window.len())
            .finish()
    }
}

const STEPS: &str = "steps";
const SLOW: &str = "slow";
const WINDOW: &str = "window";
const WINDOW_LEN: &str = "window.len";
const INNER: &str = "inner";

impl<S: RecordState, const D: usize> RecordState for SlowState<S, D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_scalar(prefix, STEPS, Scalar::from(self.steps));
        out.push_tensor(prefix, SLOW, self.slow.clone().into_data());
        out.push_scalar(prefix, WINDOW_LEN, Scalar::from(self.window.len()));
        for (index, row) in self.window.iter().enumerate() {
            out.push_tensor(prefix, &join_index(WINDOW, index), row.clone().into_data());
        }
        if let Some(inner) = &self.inner {
            inner.state_flatten(&join_path(prefix, INNER), out);
        }
    }

    /// Rebuilds the state, each tensor in its recorded dtype and copied into memory (a
    /// loaded record's tensors may be windows into its file).
    ///
    /// `None` (the parameter starts afresh, as Burn does with any state it cannot rebuild)
    /// when a leaf is missing or is not a float tensor of rank `D`, or when an inner state is
    /// recorded and cannot be rebuilt: the slow weights never go on without the inner state
    /// they were recorded with.
    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let steps = usize::try_from(src.take_scalar(prefix, STEPS)?).ok()?;
        let slow = loaded_tensor(src.take_tensor(prefix, SLOW)?, device)?;
        let len = usize::try_from(src.take_scalar(prefix, WINDOW_LEN)?).ok()?;
        let window = (0..len)
            .map(|index| {
                loaded_tensor(src.take_tensor(prefix, &join_index(WINDOW, index))?, device)
            })
            .collect::<Option<Vec<_>>>()?;
        let inner_prefix = join_path(prefix, INNER);
        let inner = if src.has_under(&inner_prefix) {
            Some(S::state_unflatten(&inner_prefix, src, device)?)
        } else {
            None
        };
        Some(Self {
            inner,
            steps,
            slow,
            window,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use burn::tensor::{DType, TensorData};
    use holocron_optim_core::rules::lamb::Lamb;

    use super::*;
    use crate::RuleState;

    #[allow(deprecated)] // Burn 0.22 deprecates its ndarray backend (for Flex).
    fn device() -> Device {
        Device::ndarray()
    }

    fn tensor(values: &[f64], dtype: DType) -> Tensor<1> {
        let data = TensorData::new(values.to_vec(), [values.len()]).convert_dtype(dtype);
        Tensor::from_data(data, (&device(), dtype))
    }

    fn values(t: &Tensor<1>) -> Vec<f64> {
        t.clone().try_into_vec_as::<f64>().unwrap()
    }

    type State = SlowState<RuleState<Lamb, 1>, 1>;

    /// Flattens `state` under `prefix` and rebuilds it, without the leaves in `drop`.
    fn round_trip(state: &State, drop: &[&str]) -> Option<State> {
        let mut sink = StateSink::default();
        state.state_flatten("3", &mut sink);
        let kept = |name: &String| !drop.iter().any(|d| *name == format!("3.{d}"));
        let scalars: BTreeMap<_, _> = sink.scalars.into_iter().filter(|(n, _)| kept(n)).collect();
        let mut source = StateSource::new(scalars);
        for (name, data) in sink.tensors.into_iter().filter(|(n, _)| kept(n)) {
            source.insert_tensor(name, data);
        }
        State::state_unflatten("3", &mut source, &device())
    }

    fn state(dtype: DType) -> State {
        // Values exact in f32, so that both dtypes compare exactly.
        let inner = RuleState::new(
            4,
            vec!["moment_1", "moment_2"],
            vec![tensor(&[0.125, 0.25], dtype), tensor(&[0.375, 0.5], dtype)],
        );
        SlowState {
            inner: Some(inner),
            steps: 4,
            slow: tensor(&[1.0, 2.0], dtype),
            window: vec![tensor(&[1.5, 2.5], dtype), tensor(&[1.25, 2.25], dtype)],
        }
    }

    /// Everything comes back: the step count, the slow weights, the window in order and the
    /// inner state, each tensor in its dtype.
    #[test]
    fn round_trip_keeps_everything() {
        for dtype in [DType::F32, DType::F64] {
            let back = round_trip(&state(dtype), &[]).expect("a complete state");
            assert_eq!(back.steps, 4);
            assert_eq!(values(&back.slow), [1.0, 2.0]);
            let rows: Vec<_> = back.window.iter().map(values).collect();
            assert_eq!(rows, [vec![1.5, 2.5], vec![1.25, 2.25]]);
            assert!(back.window.iter().all(|row| row.dtype() == dtype));
            let inner = back.inner.expect("the inner state");
            assert_eq!(inner.time(), 4);
            assert_eq!(values(&inner.tensors()[1]), [0.375, 0.5]);
            assert_eq!(inner.tensors()[1].dtype(), dtype);
        }
    }

    /// Without an inner state nothing is recorded under `inner.` and none comes back; an
    /// inner state that cannot be rebuilt, a missing window row or missing slow weights make
    /// the whole state `None` (the parameter starts afresh rather than mixing states).
    #[test]
    fn absent_and_broken_parts() {
        let mut without = state(DType::F32);
        without.inner = None;
        assert!(round_trip(&without, &[]).unwrap().inner.is_none());
        for drop in ["inner.time", "window.1", "slow", "steps"] {
            assert!(round_trip(&state(DType::F32), &[drop]).is_none(), "{drop}");
        }
    }
}
