//! Helpers shared by the integration tests: golden files, data, comparisons
//! that print the worst difference, one GPU context per test binary, and
//! runs of the `shadertrain` binary ([`binary`]).

#![allow(dead_code)]

pub mod binary;
pub mod compare;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use shadertrain::data::{self, ColumnSelection, CsvOptions};
use shadertrain::gpu::GpuContext;

use shadertrain::loss::Loss;
use shadertrain::model::{Activation, Architecture, Layer, Parameters};
use shadertrain::optim::Optimizer;
use shadertrain::prepare::Table;
use shadertrain::schedule::Batching;
use shadertrain::train::TrainSpec;

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Returns the GPU adapter for this test binary: lavapipe on machines without a GPU.
/// A missing adapter fails the test, because GPU tests must never pass by skipping.
pub fn gpu() -> &'static GpuContext {
    static CONTEXT: OnceLock<GpuContext> = OnceLock::new();
    CONTEXT.get_or_init(|| match GpuContext::new() {
        Ok(context) => {
            eprintln!("GPU tests run on {}", context.adapter);
            context
        }
        Err(error) => panic!("GPU tests need an adapter: {error}"),
    })
}

/// Loads `features -> targets` from a CSV file of the repository.
pub fn load_table(file: &str, features: &[&str], targets: &[&str]) -> Table {
    let features: Vec<String> = features.iter().map(|s| s.to_string()).collect();
    let targets: Vec<String> = targets.iter().map(|s| s.to_string()).collect();
    let dataset = data::load_csv(
        &repo_path(file),
        &ColumnSelection {
            features: &features,
            targets: &targets,
            targets_required: true,
        },
        &CsvOptions::default(),
    )
    .expect("test data loads");
    Table {
        inputs: dataset.inputs(),
        outputs: dataset.outputs(),
        features: dataset.features,
        targets: dataset.targets,
    }
}

/// A training run that PyTorch recorded (tests/golden/traj_*.json).
#[derive(Debug, Deserialize)]
pub struct Golden {
    pub name: String,
    pub torch_version: String,
    pub data: String,
    pub features: Vec<String>,
    pub targets: Vec<String>,
    pub sizes: Vec<usize>,
    pub activations: Vec<Activation>,
    pub loss: Loss,
    pub optimizer: Optimizer,
    pub seed: u64,
    pub epochs: u64,
    pub batch: Option<GoldenBatch>,
    pub initial_layers: Vec<Layer>,
    pub losses: Vec<f64>,
    #[serde(default)]
    pub step_losses: Vec<f64>,
    pub final_layers: Vec<Layer>,
    pub final_loss: f64,
}

#[derive(Debug, Deserialize)]
pub struct GoldenBatch {
    pub size: usize,
    pub orders: Vec<Vec<u32>>,
}

impl Golden {
    pub fn load(name: &str) -> Self {
        let path = repo_path(&format!("tests/golden/traj_{name}.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    pub fn table(&self) -> Table {
        let features: Vec<&str> = self.features.iter().map(String::as_str).collect();
        let targets: Vec<&str> = self.targets.iter().map(String::as_str).collect();
        load_table(&self.data, &features, &targets)
    }

    pub fn architecture(&self) -> Architecture {
        let hidden = &self.sizes[1..self.sizes.len() - 1];
        Architecture::new(self.sizes[0], hidden, *self.sizes.last().unwrap(), &self.activations).unwrap()
    }

    /// Returns the run as a spec that logs every epoch.
    pub fn spec(&self) -> TrainSpec {
        let batching = match &self.batch {
            None => Batching::Full,
            Some(batch) => Batching::Fixed {
                size: batch.size,
                orders: batch.orders.clone(),
            },
        };
        TrainSpec {
            architecture: self.architecture(),
            loss: self.loss,
            optimizer: self.optimizer,
            epochs: self.epochs,
            log_every: 1,
            batching,
            early_stop: None,
        }
    }

    pub fn initial(&self) -> Vec<f32> {
        Parameters {
            layers: self.initial_layers.clone(),
        }
        .to_flat()
    }

    pub fn expected_final(&self) -> Vec<f32> {
        Parameters {
            layers: self.final_layers.clone(),
        }
        .to_flat()
    }
}

/// Asserts `|actual - expected| <= rel * |expected|` element-wise and prints
/// the worst element on failure.
pub fn assert_series_close(what: &str, actual: &[f64], expected: &[f64], rel: f64) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: {} values, expected {}",
        actual.len(),
        expected.len()
    );
    let mut worst = (0, 0.0_f64);
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let error = (a - e).abs() / e.abs().max(f64::MIN_POSITIVE);
        if error.is_nan() || error > worst.1 {
            worst = (i, error);
        }
    }
    let (i, error) = worst;
    assert!(
        error <= rel,
        "{what}: worst relative difference {error:.3e} at index {i} (actual {}, expected {}) exceeds {rel:e}",
        actual[i],
        expected[i]
    );
}

/// Asserts each parameter tensor matches within `rel` of that tensor's
/// largest magnitude, and prints the worst parameter on failure. The scale
/// is per tensor because near-zero entries carry round-off from the whole
/// tensor (PyTorch's own CPU builds differ there by up to 1e-5 of the scale).
pub fn assert_parameters_close(what: &str, architecture: &Architecture, actual: &[f32], expected: &[f32], rel: f32) {
    assert_eq!(actual.len(), expected.len(), "{what}: parameter count");
    for l in 0..architecture.layer_count() {
        let (inputs, outputs) = architecture.layer_shape(l);
        let (w, b) = architecture.parameter_offsets(l);
        for (name, start, len) in [("weight", w, inputs * outputs), ("bias", b, outputs)] {
            let expected = &expected[start..start + len];
            let actual = &actual[start..start + len];
            let scale = expected.iter().fold(0.0_f32, |m, v| m.max(v.abs())).max(1e-6);
            let (i, error) = actual
                .iter()
                .zip(expected)
                .map(|(a, e)| (a - e).abs() / scale)
                .enumerate()
                .fold(
                    (0, 0.0_f32),
                    |worst, (i, e)| if e.is_nan() || e > worst.1 { (i, e) } else { worst },
                );
            assert!(
                error <= rel,
                "{what}: layer {l} {name}[{i}] = {} but expected {} (difference {error:.3e} of the tensor's largest magnitude {scale}, tolerance {rel:e})",
                actual[i],
                expected[i]
            );
        }
    }
}
