//! The path of one optimizer step: the CPU loops, the kernels, or (handed back) Burn's
//! composed operations, chosen from the configuration's [`Execution`] and the tensors.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::rule::FusedRule;
use holocron_optim_core::cpu::RuleStep;
use holocron_optim_core::execution::{Execution, StepPath, count};

/// The tensors of a step that no fused path took, for the composed operations: the
/// parameter, the gradient and the state as it was.
pub(crate) type Declined<B, const D: usize, S> = (Tensor<B, D>, Tensor<B, D>, Option<S>);

/// A stepped parameter and its new state.
pub(crate) type Stepped<B, const D: usize, S> = (Tensor<B, D>, Option<S>);

/// The path `execution` allows for these tensors (before looking at the state).
fn choose<B: Backend, const D: usize>(
    execution: Execution,
    param: &Tensor<B, D>,
    grad: &Tensor<B, D>,
) -> StepPath {
    if execution == Execution::Composed {
        return StepPath::Composed;
    }
    if super::supported(param, grad) {
        return StepPath::CpuLoops;
    }
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if super::cube::supported(param, grad)
        && (execution == Execution::Fused || super::cube::validated::<B>())
    {
        return StepPath::Kernels;
    }
    StepPath::Composed
}

/// One step of rule `R` on the fused path that `execution` and the tensors allow, or the
/// tensors back.
///
/// `pack` turns the state (none before the first step) into the rule's state lanes and the
/// step count so far; `coefficients` gets the step count including this step; `unpack`
/// rebuilds the state from the lanes and a step count.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rule_step<R: FusedRule, B: Backend, const D: usize, S>(
    execution: Execution,
    flag: bool,
    coefficients: impl FnOnce(usize) -> R::Coefficients<f64>,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    state: Option<S>,
    pack: impl FnOnce(Option<S>, &Tensor<B, D>) -> (usize, Vec<Tensor<B, D>>),
    unpack: impl FnOnce(usize, Vec<Tensor<B, D>>) -> Option<S>,
) -> Result<Stepped<B, D, S>, Declined<B, D, S>> {
    let path = choose(execution, &param, &grad);
    if path == StepPath::Composed {
        count(StepPath::Composed);
        return Err((param, grad, state));
    }
    let (time, lanes) = pack(state, &grad);
    let kernel = RuleStep::<R> {
        coefficients: coefficients(time + 1),
        flag,
    };
    let stepped = if path == StepPath::CpuLoops {
        Ok(super::run(&kernel, (param, Some(grad), lanes)))
    } else {
        kernels(&kernel, param, grad, lanes)
    };
    match stepped {
        Ok((param, lanes)) => {
            count(path);
            Ok((param, unpack(time + 1, lanes)))
        }
        Err((param, grad, lanes)) => {
            count(StepPath::Composed);
            let state = if time > 0 { unpack(time, lanes) } else { None };
            Err((param, grad, state))
        }
    }
}

/// The parameter and lanes after a kernel ran, or the tensors back when it could not
/// (a state in another dtype).
pub(crate) type Launched<B, const D: usize> =
    Result<(Tensor<B, D>, Vec<Tensor<B, D>>), (Tensor<B, D>, Tensor<B, D>, Vec<Tensor<B, D>>)>;

#[cfg(any(feature = "wgpu", feature = "cuda"))]
use super::cube::step as kernels;

/// Without a GPU feature no step reaches the kernels (`choose` never picks them).
#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
fn kernels<R: FusedRule, B: Backend, const D: usize>(
    _: &RuleStep<R>,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    lanes: Vec<Tensor<B, D>>,
) -> Launched<B, D> {
    Err((param, grad, lanes))
}
