//! Parameter groups through Burn 0.22's `ModuleOptimizer::with_group`: LAMB with weight
//! decay on the weights, and a second group without weight decay for the biases and the
//! normalisation scales (BERT's recipe), as the crate's documentation shows it.
//!
//! Every gradient is zero, so only the weight decay moves a parameter. With `g = 0` LAMB's
//! moments stay 0 and its update is `u = lambda p`; the trust ratio `||p|| / ||u||` is
//! `1 / lambda`, so a decayed parameter becomes `p - lr p` (LAMB's equations in the
//! crate's docs and `docs/numerics.md`). Without decay `u = 0`, the ratio is 1 (zero
//! denominator) and the parameter stays as it was.
//!
//! A wrapper takes part the same way: Lookahead with `sync_period = 1` and `sync_rate = r`
//! around the decaying LAMB syncs after the step, so a decayed weight becomes
//! `p + r ((p - lr p) - p) = p - r lr p` (Lookahead's equations in its docs).

use burn::module::{Module, Param, ParamGroup};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use holocron_optim_burn022::{LambConfig, LookaheadConfig};

#[derive(Module, Debug)]
struct Layer {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
    norm_scale: Param<Tensor<1>>,
}

fn values<const D: usize>(param: &Param<Tensor<D>>) -> Vec<f32> {
    param.val().try_into_vec_as().unwrap()
}

fn param<const D: usize>(data: TensorData, device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(data, device))
}

#[test]
fn biases_and_norm_scales_take_no_weight_decay_in_their_group() {
    step_with_groups(None);
}

#[test]
fn a_wrapper_takes_part_in_parameter_groups() {
    step_with_groups(Some(0.5));
}

fn step_with_groups(lookahead_rate: Option<f64>) {
    let device = Device::default().autodiff();
    let layer = Layer {
        weight: param(TensorData::from([[1.0f32, -2.0], [0.5, 3.0]]), &device),
        bias: param(TensorData::from([0.25f32, -0.75]), &device),
        norm_scale: param(TensorData::from([1.0f32, 2.0]), &device),
    };
    let before = [
        values(&layer.weight),
        values(&layer.bias),
        values(&layer.norm_scale),
    ];

    let no_decay = ParamGroup::from_any_predicates(vec!["bias", "norm"]);
    let decaying = LambConfig::new().with_weight_decay(0.1);
    let optim = match lookahead_rate {
        None => decaying.init(),
        Some(rate) => LookaheadConfig::new()
            .with_sync_period(1)
            .with_sync_rate(rate)
            .init(decaying.build()),
    };
    let mut optim = optim.with_group(no_decay, LambConfig::new().build(), None);
    let zero = |t: Tensor<1>| t.sum().mul_scalar(0.0);
    let loss = zero(layer.weight.val().flatten(0, 1))
        + zero(layer.bias.val())
        + zero(layer.norm_scale.val());
    let grads = GradientsParams::from_grads(loss.backward(), &layer);
    let lr = 0.1;
    let layer = optim.step(lr, layer, grads);

    let moved = (lr * lookahead_rate.unwrap_or(1.0)) as f32;
    let decayed: Vec<f32> = before[0].iter().map(|p| p - moved * p).collect();
    for (got, want) in values(&layer.weight).iter().zip(&decayed) {
        assert!((got - want).abs() <= 1e-6, "weight {got}, expected {want}");
    }
    assert_eq!(
        values(&layer.bias),
        before[1],
        "the bias is in the group without decay"
    );
    assert_eq!(
        values(&layer.norm_scale),
        before[2],
        "the norm scale is in the group without decay"
    );
}
