//! The fused GPU kernel against the CPU reference, on lavapipe in CI.
//!
//! Tolerances: losses within 1e-4 relative at every logged epoch, final
//! parameters within 1e-3 of each tensor's largest magnitude. The GPU sums
//! rows in a different order (per lane, then across lanes) and in f32, so
//! the two drift apart by round-off that training then amplifies.

mod common;

use common::{assert_parameters_close, assert_series_close, gpu, load_table};
use shadertrain::cpu::CpuBackend;
use shadertrain::gpu::fused::{self, FusedBackend, FusedOptions};
use shadertrain::loss::Loss;
use shadertrain::model::{Activation, Architecture, init};
use shadertrain::optim::{Optimizer, OptimizerKind};
use shadertrain::prepare::Table;
use shadertrain::schedule::Batching;
use shadertrain::train::{self, TrainOutcome, TrainSpec, TrainingData};

const LOSS_TOLERANCE: f64 = 1e-4;
const PARAMETER_TOLERANCE: f32 = 1e-3;

fn textbook_spec(activation: Activation, lr: f32, epochs: u64) -> TrainSpec {
    TrainSpec {
        architecture: Architecture::new(2, &[5], 1, &[activation]).unwrap(),
        loss: Loss::Mse,
        optimizer: Optimizer::with_defaults(OptimizerKind::Adam, lr),
        epochs,
        log_every: 25,
        batching: Batching::Full,
        early_stop: None,
    }
}

fn diabetes() -> Table {
    load_table("data/diabetes.csv", &["bmi", "s6"], &["target"])
}

fn run_both(
    spec: &TrainSpec,
    train_table: &Table,
    validation: Option<&Table>,
    options: FusedOptions,
) -> (TrainOutcome, TrainOutcome) {
    let data = TrainingData {
        train: train_table.samples(),
        validation: validation.map(Table::samples),
        target_scale: None,
    };
    let initial = init::torch_linear_init(&spec.architecture, 4603).to_flat();

    let mut cpu = CpuBackend::new(spec, data, initial.clone());
    let expected = train::run(&mut cpu, spec, data, &Default::default(), |_| {}).unwrap();

    let context = gpu();
    let plan = fused::plan(context, spec, data, options).expect("problem fits the fused kernel");
    let mut backend = FusedBackend::new(context, spec, data, &initial, plan).unwrap();
    let actual = train::run(&mut backend, spec, data, &Default::default(), |_| {}).unwrap();
    (actual, expected)
}

fn assert_runs_match(what: &str, spec: &TrainSpec, actual: &TrainOutcome, expected: &TrainOutcome) {
    let losses = |outcome: &TrainOutcome| outcome.logs.iter().map(|e| e.train.loss).collect::<Vec<_>>();
    let epochs = |outcome: &TrainOutcome| outcome.logs.iter().map(|e| e.epoch).collect::<Vec<_>>();
    assert_eq!(epochs(actual), epochs(expected), "{what}: logged epochs");
    assert_series_close(
        &format!("{what}: loss"),
        &losses(actual),
        &losses(expected),
        LOSS_TOLERANCE,
    );
    assert_series_close(
        &format!("{what}: final loss"),
        &[actual.final_train.loss],
        &[expected.final_train.loss],
        LOSS_TOLERANCE,
    );
    assert_parameters_close(
        &format!("{what}: parameters"),
        &spec.architecture,
        &actual.parameters,
        &expected.parameters,
        PARAMETER_TOLERANCE,
    );
    assert_eq!(actual.epochs_done, expected.epochs_done, "{what}: epochs done");
    assert_eq!(actual.halt, expected.halt, "{what}: halt");
}

#[test]
fn textbook_relu_matches_cpu() {
    let spec = textbook_spec(Activation::Relu, 1.0, 300);
    let table = diabetes();
    let (actual, expected) = run_both(&spec, &table, None, FusedOptions::default());
    assert_runs_match("relu", &spec, &actual, &expected);
}

#[test]
fn every_activation_matches_cpu() {
    let table = diabetes();
    let activations = [
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::LeakyRelu { negative_slope: 0.05 },
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Identity,
    ];
    for activation in activations {
        let spec = textbook_spec(activation, 0.05, 300);
        let (actual, expected) = run_both(&spec, &table, None, FusedOptions::default());
        assert_runs_match(&activation.to_string(), &spec, &actual, &expected);
    }
}

/// Every code form and reduction of the fused kernel gives the same run.
#[test]
fn kernel_variants_match_cpu() {
    let table = diabetes();
    let spec = textbook_spec(Activation::Tanh, 0.05, 200);
    let variants = [
        ("straight-line, subgroup", FusedOptions::default()),
        (
            "loops, subgroup",
            FusedOptions {
                unrolled: Some(false),
                ..FusedOptions::default()
            },
        ),
        (
            "straight-line, workgroup memory, 32 lanes",
            FusedOptions {
                lanes: Some(32),
                subgroups: Some(false),
                unrolled: Some(true),
            },
        ),
        (
            "loops, workgroup memory, 16 lanes",
            FusedOptions {
                lanes: Some(16),
                subgroups: Some(false),
                unrolled: Some(false),
            },
        ),
    ];
    for (name, options) in variants {
        let (actual, expected) = run_both(&spec, &table, None, options);
        assert_runs_match(name, &spec, &actual, &expected);
    }
}
