//! The fused GPU kernel against the CPU reference, on lavapipe in CI.
//!
//! Tolerances (tests/common/compare.rs): losses within 1e-4 relative at
//! every logged epoch, final parameters within 1e-3 of each tensor's largest
//! magnitude. The GPU sums rows in another order (per lane, then across
//! lanes) and in f32, so the runs drift apart by round-off that training
//! amplifies.

mod common;

use common::compare::{assert_runs_match, run_both};
use common::{gpu, load_table};
use shadertrain::gpu::fused::{self, FusedBackend, FusedOptions};
use shadertrain::loss::Loss;
use shadertrain::model::{Activation, Architecture};
use shadertrain::optim::{Optimizer, OptimizerKind};
use shadertrain::prepare;
use shadertrain::schedule::Batching;
use shadertrain::train::{Backend, Halt, TrainSpec, TrainingData};

const ALL_FEATURES: [&str; 10] = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"];

fn spec(sizes: &[usize], activations: &[Activation], lr: f32, epochs: u64) -> TrainSpec {
    TrainSpec {
        architecture: Architecture::new(
            sizes[0],
            &sizes[1..sizes.len() - 1],
            *sizes.last().unwrap(),
            activations,
        )
        .unwrap(),
        loss: Loss::Mse,
        optimizer: Optimizer::with_defaults(OptimizerKind::Adam, lr),
        epochs,
        log_every: 25,
        batching: Batching::Full,
        early_stop: None,
    }
}

fn fused_backend<'s>(
    spec: &'s TrainSpec,
    options: FusedOptions,
) -> impl for<'a> FnOnce(TrainingData<'a>, &[f32]) -> Box<dyn Backend + 'a> + use<'s> {
    move |data, initial| {
        let context = gpu();
        let plan = fused::plan(context, spec, data, options).expect("problem fits the fused kernel");
        Box::new(FusedBackend::new(context, spec, data, initial, plan).unwrap())
    }
}

#[test]
fn textbook_relu_matches_cpu() {
    let table = load_table("data/diabetes.csv", &["bmi", "s6"], &["target"]);
    let spec = spec(&[2, 5, 1], &[Activation::Relu], 1.0, 300);
    let (actual, expected) = run_both(&spec, &table, None, fused_backend(&spec, FusedOptions::default()));
    assert_runs_match("relu", &spec, &actual, &expected);
}

#[test]
fn every_activation_matches_cpu() {
    let table = load_table("data/diabetes.csv", &["bmi", "s6"], &["target"]);
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
        let spec = spec(&[2, 5, 1], &[activation], 0.05, 300);
        let (actual, expected) = run_both(&spec, &table, None, fused_backend(&spec, FusedOptions::default()));
        assert_runs_match(&activation.to_string(), &spec, &actual, &expected);
    }
}

/// Every code form and reduction of the fused kernel gives the same run.
#[test]
fn kernel_variants_match_cpu() {
    let table = load_table("data/diabetes.csv", &["bmi", "s6"], &["target"]);
    let spec = spec(&[2, 5, 1], &[Activation::Tanh], 0.05, 200);
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
        let (actual, expected) = run_both(&spec, &table, None, fused_backend(&spec, options));
        assert_runs_match(name, &spec, &actual, &expected);
    }
}

#[test]
fn deep_model_with_validation() {
    let table = load_table("data/diabetes.csv", &ALL_FEATURES, &["target"]);
    let (train, validation) = prepare::split_validation(&table, 0.2, 7).unwrap();
    let spec = spec(&[10, 16, 8, 1], &[Activation::Tanh, Activation::Gelu], 0.01, 150);
    let (actual, expected) = run_both(
        &spec,
        &train,
        Some(&validation),
        fused_backend(&spec, FusedOptions::default()),
    );
    assert_runs_match("deep model", &spec, &actual, &expected);
}

#[test]
fn multi_output_huber_sgd() {
    let table = load_table("data/diabetes.csv", &["bmi", "bp", "s5"], &["target", "s6"]);
    let mut spec = spec(&[3, 6, 2], &[Activation::Relu], 0.0, 200);
    spec.loss = Loss::Huber { delta: 5.0 };
    spec.optimizer = Optimizer::Sgd {
        lr: 1e-4,
        momentum: 0.9,
        dampening: 0.1,
        nesterov: false,
        weight_decay: 1e-3,
    };
    let (actual, expected) = run_both(&spec, &table, None, fused_backend(&spec, FusedOptions::default()));
    assert_runs_match("multi-output", &spec, &actual, &expected);
}

#[test]
fn mini_batches_follow_the_order() {
    let table = load_table("data/diabetes.csv", &["bmi", "s6"], &["target"]);
    let mut spec = spec(&[2, 5, 1], &[Activation::Relu], 0.1, 20);
    spec.batching = Batching::Shuffled { size: 50, seed: 9 };
    spec.log_every = 4;
    let (actual, expected) = run_both(&spec, &table, None, fused_backend(&spec, FusedOptions::default()));
    assert_runs_match("mini-batches", &spec, &actual, &expected);
}

#[test]
fn early_stop_keeps_best_parameters() {
    let table = load_table("data/diabetes.csv", &ALL_FEATURES, &["target"]);
    let (train, validation) = prepare::split_validation(&table, 0.3, 11).unwrap();
    let mut spec = spec(&[10, 32, 1], &[Activation::Relu], 0.5, 2000);
    spec.early_stop = Some(100);
    spec.log_every = 10;
    let (actual, expected) = run_both(
        &spec,
        &train,
        Some(&validation),
        fused_backend(&spec, FusedOptions::default()),
    );
    assert!(
        matches!(expected.halt, Some(Halt::EarlyStopped { .. })),
        "the CPU run should stop early, got {:?}",
        expected.halt
    );
    assert_runs_match("early stop", &spec, &actual, &expected);
}
