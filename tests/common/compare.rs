//! Running one training on a GPU backend and on the CPU reference, and
//! comparing the two runs.

use shadertrain::cpu::CpuBackend;
use shadertrain::model::init;
use shadertrain::prepare::Table;
use shadertrain::train::{self, Backend, TrainOutcome, TrainSpec, TrainingData};

use super::{assert_parameters_close, assert_series_close};

/// Loss tolerance, relative, at every logged epoch (train and validation).
pub const LOSS_TOLERANCE: f64 = 1e-4;
/// Parameter tolerance, relative to each tensor's largest magnitude.
pub const PARAMETER_TOLERANCE: f32 = 1e-3;

/// Trains `spec` from PyTorch's seed-4603 initialization on the CPU
/// reference and on the backend that `make` builds; returns (GPU, CPU).
pub fn run_both<'t>(
    spec: &TrainSpec,
    train_table: &'t Table,
    validation: Option<&'t Table>,
    make: impl for<'d> FnOnce(TrainingData<'d>, &[f32]) -> Box<dyn Backend + 'd>,
) -> (TrainOutcome, TrainOutcome) {
    let data = TrainingData {
        train: train_table.samples(),
        validation: validation.map(Table::samples),
        target_scale: None,
    };
    let initial = init::torch_linear_init(&spec.architecture, 4603).to_flat();

    let mut cpu = CpuBackend::new(spec, data, initial.clone());
    let expected = train::run(&mut cpu, spec, data, &Default::default(), |_| {}).unwrap();

    let mut backend = make(data, &initial);
    let actual = train::run(backend.as_mut(), spec, data, &Default::default(), |_| {}).unwrap();
    (actual, expected)
}

/// Asserts that two runs logged the same epochs with close losses, halted
/// the same way, and ended with close parameters.
pub fn assert_runs_match(what: &str, spec: &TrainSpec, actual: &TrainOutcome, expected: &TrainOutcome) {
    assert_runs_match_within(what, spec, actual, expected, PARAMETER_TOLERANCE);
}

/// [`assert_runs_match`] with another parameter tolerance.
pub fn assert_runs_match_within(
    what: &str,
    spec: &TrainSpec,
    actual: &TrainOutcome,
    expected: &TrainOutcome,
    parameter_tolerance: f32,
) {
    let epochs = |outcome: &TrainOutcome| outcome.logs.iter().map(|e| e.epoch).collect::<Vec<_>>();
    assert_eq!(epochs(actual), epochs(expected), "{what}: logged epochs");
    assert_eq!(actual.halt, expected.halt, "{what}: halt");
    assert_eq!(actual.epochs_done, expected.epochs_done, "{what}: epochs done");

    let losses = |outcome: &TrainOutcome| outcome.logs.iter().map(|e| e.train.loss).collect::<Vec<_>>();
    assert_series_close(
        &format!("{what}: loss"),
        &losses(actual),
        &losses(expected),
        LOSS_TOLERANCE,
    );
    let validation = |outcome: &TrainOutcome| {
        outcome
            .logs
            .iter()
            .filter_map(|e| e.validation.map(|v| v.loss))
            .collect::<Vec<_>>()
    };
    assert_series_close(
        &format!("{what}: validation loss"),
        &validation(actual),
        &validation(expected),
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
        parameter_tolerance,
    );
}
