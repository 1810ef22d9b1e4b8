//! Numeric faults on every backend: divergence, saturating activations,
//! zero gradients and large magnitudes. Each case runs on the CPU
//! reference, the fused kernel and the general kernels (lavapipe in CI).

mod common;

use common::compare::{LOSS_TOLERANCE, assert_runs_match, run_both};
use common::{assert_series_close, gpu, load_table};
use shadertrain::cpu::CpuBackend;
use shadertrain::gpu::fused::{self, FusedBackend};
use shadertrain::gpu::general::{self, GeneralBackend};
use shadertrain::loss::Loss;
use shadertrain::model::{Activation, Architecture, init};
use shadertrain::optim::{Optimizer, OptimizerKind};
use shadertrain::prepare::Table;
use shadertrain::schedule::Batching;
use shadertrain::train::{self, Backend, Halt, TrainOutcome, TrainSpec, TrainingData};

#[derive(Clone, Copy, Debug)]
enum Path {
    Cpu,
    Fused,
    General,
}

const PATHS: [Path; 3] = [Path::Cpu, Path::Fused, Path::General];

fn spec(sizes: &[usize], activation: Activation, optimizer: Optimizer, epochs: u64) -> TrainSpec {
    TrainSpec {
        architecture: Architecture::new(
            sizes[0],
            &sizes[1..sizes.len() - 1],
            *sizes.last().unwrap(),
            &[activation],
        )
        .unwrap(),
        loss: Loss::Mse,
        optimizer,
        epochs,
        log_every: 1,
        batching: Batching::Full,
        early_stop: None,
    }
}

fn train_on(path: Path, spec: &TrainSpec, table: &Table, initial: &[f32]) -> TrainOutcome {
    let data = TrainingData {
        train: table.samples(),
        validation: None,
        target_scale: None,
    };
    let context = gpu();
    let mut backend: Box<dyn Backend + '_> = match path {
        Path::Cpu => Box::new(CpuBackend::new(spec, data, initial.to_vec())),
        Path::Fused => {
            let plan = fused::plan(context, spec, data, Default::default()).unwrap();
            Box::new(FusedBackend::new(context, spec, data, initial, plan).unwrap())
        }
        Path::General => {
            let plan = general::plan(context, spec, data, Default::default()).unwrap();
            Box::new(GeneralBackend::new(context, spec, data, initial, plan).unwrap())
        }
    };
    train::run(backend.as_mut(), spec, data, &Default::default(), |_| {}).unwrap()
}

fn sgd(lr: f32) -> Optimizer {
    Optimizer::Sgd {
        lr,
        momentum: 0.0,
        dampening: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    }
}

/// An update that would overflow a parameter is rejected at epoch 0: the
/// run halts with the initial parameters.
#[test]
fn overflowing_update_is_rejected() {
    let table = load_table("data/diabetes_raw.csv", &["bmi", "s6"], &["target"]);
    let spec = spec(&[2, 5, 1], Activation::Relu, sgd(1e38), 10);
    let initial = init::torch_linear_init(&spec.architecture, 4603).to_flat();
    for path in PATHS {
        let outcome = train_on(path, &spec, &table, &initial);
        assert_eq!(outcome.halt, Some(Halt::Diverged { epoch: 0 }), "{path:?}: halt");
        assert_eq!(outcome.epochs_done, 0, "{path:?}: epochs done");
        assert_eq!(
            outcome.parameters, initial,
            "{path:?}: parameters must stay the initial ones"
        );
        assert_eq!(outcome.logs.len(), 1, "{path:?}: only epoch 0 is logged");
    }
}

/// Raw units with a large learning rate grow until the loss overflows. Every
/// backend stops at the same epoch and keeps the last parameters with a
/// finite loss.
#[test]
fn divergence_stops_at_first_non_finite_loss() {
    let table = load_table("data/diabetes_raw.csv", &["bmi", "s6"], &["target"]);
    let spec = spec(&[2, 5, 1], Activation::Identity, sgd(1e-3), 200);
    let initial = init::torch_linear_init(&spec.architecture, 4603).to_flat();
    let mut epochs = Vec::new();
    for path in PATHS {
        let outcome = train_on(path, &spec, &table, &initial);
        let Some(Halt::Diverged { epoch }) = outcome.halt else {
            panic!("{path:?}: expected divergence, got {:?}", outcome.halt);
        };
        assert!(epoch > 0, "{path:?}: diverged at once");
        assert!(
            outcome.parameters.iter().all(|p| p.is_finite()),
            "{path:?}: parameters must be finite"
        );
        let last = outcome.logs.last().unwrap();
        assert_eq!(
            last.epoch, epoch,
            "{path:?}: the last logged epoch is the one that diverged"
        );
        assert!(
            !last.train.loss.is_finite(),
            "{path:?}: loss at the halt epoch {}",
            last.train.loss
        );
        assert!(
            outcome.final_train.loss.is_finite(),
            "{path:?}: the kept parameters must have a finite loss, got {}",
            outcome.final_train.loss
        );
        assert_eq!(outcome.epochs_done, epoch - 1, "{path:?}: the last update is undone");
        epochs.push(epoch);
    }
    assert!(
        epochs.iter().all(|e| *e == epochs[0]),
        "halt epochs differ between backends: {epochs:?}"
    );
}

/// Pre-activations of about +-1e3 and beyond saturate sigmoid and tanh:
/// every backend stays finite and the GPU matches the CPU.
#[test]
fn saturating_activations_stay_finite() {
    let mut table = load_table("data/diabetes_raw.csv", &["bmi", "s6"], &["target"]);
    for value in &mut table.features {
        *value *= 20.0;
    }
    for activation in [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
        Activation::GeluTanh,
    ] {
        let mut spec = spec(
            &[2, 5, 1],
            activation,
            Optimizer::with_defaults(OptimizerKind::Adam, 0.1),
            50,
        );
        spec.log_every = 10;
        let initial = init::torch_linear_init(&spec.architecture, 4603).to_flat();
        let cpu = train_on(Path::Cpu, &spec, &table, &initial);
        assert!(cpu.halt.is_none(), "{activation}: CPU run halted: {:?}", cpu.halt);
        for path in [Path::Fused, Path::General] {
            let gpu_run = train_on(path, &spec, &table, &initial);
            assert!(
                gpu_run.parameters.iter().all(|p| p.is_finite()),
                "{activation} {path:?}: non-finite"
            );
            assert_runs_match(&format!("{activation} on {path:?}"), &spec, &gpu_run, &cpu);
        }
    }
}

/// A feature column of zeros gives its weights an exactly zero gradient:
/// Adam leaves them unchanged and produces no NaN.
#[test]
fn zero_gradient_leaves_weights_unchanged() {
    let mut table = load_table("data/diabetes.csv", &["bmi", "s6", "bp"], &["target"]);
    for row in table.features.chunks_mut(3) {
        row[2] = 0.0;
    }
    let spec = spec(
        &[3, 4, 1],
        Activation::Tanh,
        Optimizer::with_defaults(OptimizerKind::Adam, 0.5),
        100,
    );
    let initial = init::torch_linear_init(&spec.architecture, 4603).to_flat();
    for path in PATHS {
        let outcome = train_on(path, &spec, &table, &initial);
        assert!(outcome.halt.is_none(), "{path:?}: {:?}", outcome.halt);
        assert!(
            outcome.parameters.iter().all(|p| p.is_finite()),
            "{path:?}: non-finite parameters"
        );
        for o in 0..4 {
            let index = o * 3 + 2;
            assert_eq!(
                outcome.parameters[index], initial[index],
                "{path:?}: weight [{o}][2] of the zero feature changed"
            );
        }
        assert_ne!(
            outcome.parameters[0], initial[0],
            "{path:?}: the other weights must train"
        );
    }
}

/// Targets around 1e6 to 1e8: float32 keeps about 7 significant digits, so
/// the GPU and the CPU agree in relative terms (1e-4), not absolute ones.
#[test]
fn large_targets_agree_relatively() {
    for scale in [1e4_f32, 1e6] {
        let mut table = load_table("data/diabetes.csv", &["bmi", "s6"], &["target"]);
        for value in &mut table.targets {
            *value *= scale;
        }
        let mut spec = spec(
            &[2, 5, 1],
            Activation::Relu,
            Optimizer::with_defaults(OptimizerKind::Adam, 0.1),
            100,
        );
        spec.log_every = 10;
        for path in [Path::Fused, Path::General] {
            let (actual, expected) = run_both(&spec, &table, None, |data, initial| {
                let context = gpu();
                match path {
                    Path::Fused => {
                        let plan = fused::plan(context, &spec, data, Default::default()).unwrap();
                        Box::new(FusedBackend::new(context, &spec, data, initial, plan).unwrap())
                    }
                    _ => {
                        let plan = general::plan(context, &spec, data, Default::default()).unwrap();
                        Box::new(GeneralBackend::new(context, &spec, data, initial, plan).unwrap())
                    }
                }
            });
            let losses = |outcome: &TrainOutcome| outcome.logs.iter().map(|e| e.train.loss).collect::<Vec<_>>();
            assert!(
                expected.logs[0].train.loss > 1e10,
                "the losses should be large: {}",
                expected.logs[0].train.loss
            );
            assert_series_close(
                &format!("targets x {scale} on {path:?}"),
                &losses(&actual),
                &losses(&expected),
                LOSS_TOLERANCE,
            );
        }
    }
}
