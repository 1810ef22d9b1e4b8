//! `--seed` initialization against the parameters real PyTorch drew
//! (tests/golden/init.json, made by tests/golden/make_init.py): bit for bit.

mod common;

use serde::Deserialize;
use shadertrain::model::{Activation, Architecture, Layer, init};

#[derive(Deserialize)]
struct InitFile {
    cases: Vec<InitCase>,
}

#[derive(Deserialize)]
struct InitCase {
    seed: u64,
    sizes: Vec<usize>,
    layers: Vec<Layer>,
}

#[test]
fn init_matches_pytorch_bit_for_bit() {
    let path = common::repo_path("tests/golden/init.json");
    let file: InitFile = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(file.cases.len() >= 5, "init.json should hold several seeds and shapes");

    for case in &file.cases {
        let hidden = &case.sizes[1..case.sizes.len() - 1];
        let architecture =
            Architecture::new(case.sizes[0], hidden, *case.sizes.last().unwrap(), &[Activation::Relu]).unwrap();
        let drawn = init::torch_linear_init(&architecture, case.seed);
        for (l, (actual, expected)) in drawn.layers.iter().zip(&case.layers).enumerate() {
            let actual_values = actual.weight.iter().flatten().chain(&actual.bias);
            let expected_values = expected.weight.iter().flatten().chain(&expected.bias);
            for (i, (a, e)) in actual_values.zip(expected_values).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    e.to_bits(),
                    "seed {} sizes {:?}: layer {l} value {i} is {a:e}, PyTorch drew {e:e}",
                    case.seed,
                    case.sizes
                );
            }
        }
    }
}

#[test]
fn seed_keeps_low_32_bits() {
    // torch.manual_seed(2**32 + 5) draws what torch.manual_seed(5) draws.
    let architecture = Architecture::new(4, &[3], 1, &[Activation::Relu]).unwrap();
    let high = init::torch_linear_init(&architecture, (1 << 32) + 5);
    let low = init::torch_linear_init(&architecture, 5);
    assert_eq!(high, low);
}
