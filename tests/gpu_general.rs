//! The general GPU kernels against the CPU reference, on lavapipe in CI.
//!
//! Tolerances (tests/common/compare.rs): losses within 1e-4 relative at
//! every logged epoch, final parameters within 1e-3 of each tensor's largest
//! magnitude. The GPU sums rows in another order and in f32.

mod common;

use common::compare::{assert_runs_match, assert_runs_match_within, run_both};
use common::{gpu, load_table};
use shadertrain::gpu::general::{self, GeneralBackend, GeneralOptions};
use shadertrain::loss::Loss;
use shadertrain::model::{Activation, Architecture};
use shadertrain::optim::{Optimizer, OptimizerKind};
use shadertrain::prepare;
use shadertrain::schedule::Batching;
use shadertrain::train::{Backend, Halt, TrainSpec, TrainingData};

const ALL_FEATURES: [&str; 10] = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"];

fn spec(sizes: &[usize], activations: &[Activation], loss: Loss, optimizer: Optimizer, epochs: u64) -> TrainSpec {
    TrainSpec {
        architecture: Architecture::new(
            sizes[0],
            &sizes[1..sizes.len() - 1],
            *sizes.last().unwrap(),
            activations,
        )
        .unwrap(),
        loss,
        optimizer,
        epochs,
        log_every: 20,
        batching: Batching::Full,
        early_stop: None,
    }
}

fn general(
    spec: &TrainSpec,
    options: GeneralOptions,
) -> impl for<'a> FnOnce(TrainingData<'a>, &[f32]) -> Box<dyn Backend + 'a> + use<'_> {
    move |data, initial| {
        let context = gpu();
        let plan = general::plan(context, spec, data, options).expect("problem fits the general path");
        Box::new(GeneralBackend::new(context, spec, data, initial, plan).unwrap())
    }
}

fn adam(lr: f32) -> Optimizer {
    Optimizer::with_defaults(OptimizerKind::Adam, lr)
}

#[test]
fn textbook_relu_both_sharing_modes() {
    let table = load_table("data/diabetes.csv", &["bmi", "s6"], &["target"]);
    let spec = spec(&[2, 5, 1], &[Activation::Relu], Loss::Mse, adam(1.0), 200);
    for shuffle in [true, false] {
        let options = GeneralOptions {
            shuffle: Some(shuffle),
            ..GeneralOptions::default()
        };
        let (actual, expected) = run_both(&spec, &table, None, general(&spec, options));
        assert_runs_match(&format!("textbook, shuffle {shuffle}"), &spec, &actual, &expected);
    }
}

#[test]
fn every_activation_matches_cpu() {
    let table = load_table("data/diabetes.csv", &ALL_FEATURES, &["target"]);
    let activations = [
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::LeakyRelu { negative_slope: -0.05 },
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Identity,
    ];
    for activation in activations {
        let spec = spec(&[10, 20, 1], &[activation], Loss::Mse, adam(0.05), 100);
        let (actual, expected) = run_both(&spec, &table, None, general(&spec, GeneralOptions::default()));
        assert_runs_match(&activation.to_string(), &spec, &actual, &expected);
    }
}

/// Two hidden layers wide enough for one lane per output in the weight
/// gradient, several pieces of rows, and validation data.
#[test]
fn deep_model_in_pieces_with_validation() {
    let table = load_table("data/diabetes.csv", &ALL_FEATURES, &["target"]);
    let (train, validation) = prepare::split_validation(&table, 0.2, 7).unwrap();
    let spec = spec(
        &[10, 40, 24, 1],
        &[Activation::Tanh, Activation::Relu],
        Loss::Mse,
        adam(0.01),
        60,
    );
    for shuffle in [true, false] {
        let options = GeneralOptions {
            shuffle: Some(shuffle),
            block_rows: Some(128),
            max_grid_x: None,
        };
        let (actual, expected) = run_both(&spec, &train, Some(&validation), general(&spec, options));
        assert_runs_match(&format!("deep model, shuffle {shuffle}"), &spec, &actual, &expected);
    }
}

#[test]
fn multi_output_losses_and_sgd() {
    let table = load_table("data/diabetes.csv", &["bmi", "bp", "s5"], &["target", "s6"]);
    let sgd = Optimizer::Sgd {
        lr: 1e-4,
        momentum: 0.9,
        dampening: 0.0,
        nesterov: true,
        weight_decay: 1e-3,
    };
    // The L1 gradient jumps by 2/(N O) whenever a residual changes sign, so
    // round-off moves mae runs apart faster. Here the CPU, fused and general
    // parameters differ by up to 5e-3 of the tensor scale, while the losses
    // still agree within 1e-4.
    let cases = [
        ("mse, adam", Loss::Mse, adam(0.05), 1e-3),
        (
            "mae, adamw",
            Loss::Mae,
            Optimizer::with_defaults(OptimizerKind::AdamW, 0.01),
            2e-2,
        ),
        ("huber, sgd", Loss::Huber { delta: 5.0 }, sgd, 1e-3),
    ];
    for (name, loss, optimizer, parameter_tolerance) in cases {
        let spec = spec(&[3, 6, 2], &[Activation::Relu], loss, optimizer, 100);
        let (actual, expected) = run_both(&spec, &table, None, general(&spec, GeneralOptions::default()));
        assert_runs_match_within(name, &spec, &actual, &expected, parameter_tolerance);
    }
}

#[test]
fn mini_batches_gather_rows() {
    let table = load_table("data/diabetes.csv", &["bmi", "s6"], &["target"]);
    let mut spec = spec(&[2, 16, 1], &[Activation::Relu], Loss::Mse, adam(0.1), 10);
    spec.batching = Batching::Shuffled { size: 64, seed: 3 };
    spec.log_every = 2;
    let (actual, expected) = run_both(&spec, &table, None, general(&spec, GeneralOptions::default()));
    assert_runs_match("mini-batches", &spec, &actual, &expected);
}

#[test]
fn early_stop_keeps_best_parameters() {
    let table = load_table("data/diabetes.csv", &ALL_FEATURES, &["target"]);
    let (train, validation) = prepare::split_validation(&table, 0.3, 11).unwrap();
    // A large learning rate overfits the small training part quickly.
    let mut spec = spec(&[10, 32, 1], &[Activation::Relu], Loss::Mse, adam(0.5), 2000);
    spec.early_stop = Some(100);
    spec.log_every = 10;
    let (actual, expected) = run_both(
        &spec,
        &train,
        Some(&validation),
        general(&spec, GeneralOptions::default()),
    );
    assert!(
        matches!(expected.halt, Some(Halt::EarlyStopped { .. })),
        "the CPU run should stop early, got {:?}",
        expected.halt
    );
    assert_runs_match("early stop", &spec, &actual, &expected);
}

/// Dispatches that need more workgroups than one grid dimension allows use
/// 2D grids; a tiny limit per dimension makes every dispatch take that path.
#[test]
fn two_dimensional_grids() {
    let table = load_table("data/diabetes.csv", &["bmi", "bp", "s5"], &["target", "s6"]);
    let spec = spec(&[3, 24, 2], &[Activation::Tanh], Loss::Mse, adam(0.05), 40);
    let options = GeneralOptions {
        max_grid_x: Some(2),
        ..GeneralOptions::default()
    };
    let (actual, expected) = run_both(&spec, &table, None, general(&spec, options));
    assert_runs_match("grid rows of 2 workgroups", &spec, &actual, &expected);
}
