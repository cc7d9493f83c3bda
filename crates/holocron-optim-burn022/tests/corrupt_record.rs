//! A damaged optimizer file is refused: `ModuleOptimizer::load` (and `from_bytes`) of a
//! burnpack record that is truncated anywhere, or whose header or metadata is overwritten,
//! returns an error, and leaves the file as it was. (A flipped bit inside a tensor's data
//! cannot be told apart from other values: burnpack keeps no checksum.)

mod common;

use burn::optim::ModuleOptimizer;
use burn::tensor::{Bytes, DType};
use common::*;
use holocron_optim_burn022::*;

/// A record of an optimizer with state (AdaBelief with AMSGrad, after two steps), as bytes.
fn record_bytes() -> (AnyConfig, Vec<u8>) {
    let config = AnyConfig::AdaBelief(AdaBeliefConfig::new().with_amsgrad(true));
    let (specs, shapes) = mixed_specs();
    let device = device();
    let (mut set, slots) = ParamSet::new(&specs, DType::F32, &device);
    let mut optim = config.init();
    for step in 0..2 {
        let grads: Vec<_> = shapes
            .iter()
            .map(|s| Some(wave(s.iter().product(), step as f64)))
            .collect();
        let grads = gradients(&set, &slots, &shapes, &grads, DType::F32, &device);
        set = optim.step(1e-2, set, grads);
    }
    assert_eq!(recorded_states(&optim).len(), slots.len());
    let bytes = optim.into_bytes().expect("serializable").to_vec();
    (config, bytes)
}

/// The damaged versions of `bytes`, each with what was done to it.
fn damaged(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let n = bytes.len();
    let mut out = vec![];
    for len in [0, 3, 9, 10, 64, n / 4, n / 2, n - 256, n - 5, n - 1] {
        out.push((
            format!("truncated to {len} of {n} bytes"),
            bytes[..len].to_vec(),
        ));
    }
    let overwrite = |at: std::ops::Range<usize>, with: u8, what: &str| {
        let mut b = bytes.to_vec();
        b[at.clone()].iter_mut().for_each(|x| *x = with);
        (
            format!("{what} (bytes {at:?}) overwritten with {with:#x}"),
            b,
        )
    };
    out.push(overwrite(0..4, 0x00, "magic number"));
    out.push(overwrite(4..6, 0xff, "format version"));
    out.push(overwrite(6..10, 0xff, "metadata size"));
    out.push(overwrite(10..40, 0xff, "metadata"));
    out.push((
        "garbage".into(),
        (0..n).map(|i| (i * 31 % 251) as u8).collect(),
    ));
    out
}

#[test]
fn damaged_files_are_refused_and_left_unchanged() {
    let (config, bytes) = record_bytes();
    let dir = tempfile::tempdir().expect("a temporary directory");

    // The intact file loads.
    let path = dir.path().join("intact.bpk");
    std::fs::write(&path, &bytes).unwrap();
    let loaded: ModuleOptimizer = config.init().load(&path).expect("the intact record loads");
    assert_eq!(recorded_states(&loaded).len(), 4);

    let damaged = damaged(&bytes);
    for (k, (what, content)) in damaged.iter().enumerate() {
        let path = dir.path().join(format!("damaged-{k}.bpk"));
        std::fs::write(&path, content).unwrap();
        let result = config.init().load(&path);
        assert!(result.is_err(), "{what}: ModuleOptimizer::load accepted it");
        let after = std::fs::read(&path).unwrap();
        assert!(&after == content, "{what}: load changed the file");

        let result = config
            .init()
            .from_bytes(Bytes::from_bytes_vec(content.clone()));
        assert!(
            result.is_err(),
            "{what}: ModuleOptimizer::from_bytes accepted it"
        );
    }
}

/// A missing file is an error too.
#[test]
fn a_missing_file_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = AnyConfig::Lamb(LambConfig::new());
    assert!(config.init().load(dir.path().join("absent.bpk")).is_err());
}
