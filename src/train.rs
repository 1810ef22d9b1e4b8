//! The training driver, shared by every backend.
//!
//! The driver cuts the run into chunks of whole epochs, builds each chunk's
//! [`Step`] schedule, hands it to a [`Backend`] and turns the sums the
//! backend returns into metrics. Backends differ only in how they execute a
//! chunk, so the CPU reference and the GPU paths share every decision about
//! batching, logging, early stopping and divergence.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::loss::Loss;
use crate::model::Architecture;
use crate::optim::Optimizer;
use crate::schedule::{Batching, Chunk, EVALUATE, MONITOR, Step, UPDATE, VALIDATE};

/// Rows of features and targets, row-major.
#[derive(Clone, Copy, Debug)]
pub struct Samples<'a> {
    pub rows: usize,
    pub inputs: usize,
    pub outputs: usize,
    /// `[N][I]`
    pub features: &'a [f32],
    /// `[N][O]`
    pub targets: &'a [f32],
}

impl<'a> Samples<'a> {
    pub fn new(inputs: usize, outputs: usize, features: &'a [f32], targets: &'a [f32]) -> Self {
        let rows = features.len().checked_div(inputs).unwrap_or(0);
        assert_eq!(features.len(), rows * inputs, "features are not [rows][inputs]");
        assert_eq!(targets.len(), rows * outputs, "targets are not [rows][outputs]");
        Self {
            rows,
            inputs,
            outputs,
            features,
            targets,
        }
    }

    pub fn feature_row(&self, r: usize) -> &'a [f32] {
        &self.features[r * self.inputs..(r + 1) * self.inputs]
    }

    pub fn target_row(&self, r: usize) -> &'a [f32] {
        &self.targets[r * self.outputs..(r + 1) * self.outputs]
    }

    /// Total sum of squares of each target column around its mean, for R^2.
    pub fn total_sum_of_squares(&self) -> Vec<f64> {
        let mut mean = vec![0.0; self.outputs];
        for r in 0..self.rows {
            for (m, t) in mean.iter_mut().zip(self.target_row(r)) {
                *m += f64::from(*t);
            }
        }
        for m in &mut mean {
            *m /= self.rows as f64;
        }
        let mut total = vec![0.0; self.outputs];
        for r in 0..self.rows {
            for ((s, m), t) in total.iter_mut().zip(&mean).zip(self.target_row(r)) {
                *s += (f64::from(*t) - m).powi(2);
            }
        }
        total
    }
}

/// Everything that defines a training run apart from data and initial parameters.
#[derive(Clone, Debug)]
pub struct TrainSpec {
    pub architecture: Architecture,
    pub loss: Loss,
    pub optimizer: Optimizer,
    pub epochs: u64,
    /// Metrics are taken before epoch `e`'s update when `e % log_every == 0`.
    pub log_every: u64,
    pub batching: Batching,
    /// Stop when the validation loss has not improved for this many epochs,
    /// and keep the best parameters.
    pub early_stop: Option<u64>,
}

/// Per-evaluation sums over a data set, from which every metric follows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sums {
    /// Sum of the per-element loss terms.
    pub loss: f64,
    /// Sum of squared errors per output.
    pub squared_error: Vec<f64>,
    /// Sum of absolute errors per output.
    pub absolute_error: Vec<f64>,
}

/// Metrics of one model on one data set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// The training loss (mean over all elements), in the units the model trains on.
    #[serde(with = "crate::report::finite_or_null")]
    pub loss: f64,
    #[serde(with = "crate::report::finite_or_null")]
    pub mse: f64,
    #[serde(with = "crate::report::finite_or_null")]
    pub rmse: f64,
    #[serde(with = "crate::report::finite_or_null")]
    pub mae: f64,
    /// Coefficient of determination, averaged over outputs (scikit-learn's
    /// `r2_score` with `multioutput="uniform_average"`); NaN for a constant target.
    #[serde(with = "crate::report::finite_or_null")]
    pub r2: f64,
}

impl Metrics {
    /// Metrics from the sums over `rows` rows. `target_scale` converts each
    /// output's errors back to the target's units when the model trains on
    /// standardized targets; the loss stays in training units.
    pub fn from_sums(sums: &Sums, rows: usize, total_sum_of_squares: &[f64], target_scale: Option<&[f64]>) -> Self {
        let outputs = sums.squared_error.len();
        let scale = |o: usize| target_scale.map_or(1.0, |s| s[o]);
        let elements = (rows * outputs) as f64;
        let mse = (0..outputs)
            .map(|o| sums.squared_error[o] * scale(o).powi(2))
            .sum::<f64>()
            / elements;
        let mae = (0..outputs).map(|o| sums.absolute_error[o] * scale(o)).sum::<f64>() / elements;
        let r2 = sums
            .squared_error
            .iter()
            .zip(total_sum_of_squares)
            .map(|(sse, sst)| if *sst > 0.0 { 1.0 - sse / sst } else { f64::NAN })
            .sum::<f64>()
            / outputs as f64;
        Self {
            loss: sums.loss / elements,
            mse,
            rmse: mse.sqrt(),
            mae,
            r2,
        }
    }
}

/// Metrics at one logged epoch, taken before that epoch's update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub epoch: u64,
    pub train: Metrics,
    pub validation: Option<Metrics>,
    /// Seconds since training started.
    pub elapsed: f64,
}

/// Reason a run ended before its last epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Halt {
    /// At `epoch` the batch loss or a gradient was not finite, or the update
    /// would have made a parameter non-finite. The run keeps the last
    /// parameters with a finite loss: those before the previous update in
    /// the first case, those before the rejected update in the second.
    Diverged { epoch: u64 },
    /// The validation loss last improved at `best_epoch`; stopped at `epoch`.
    EarlyStopped { epoch: u64, best_epoch: u64 },
}

/// Result of one chunk on a backend.
#[derive(Clone, Debug, Default)]
pub struct ChunkOutcome {
    /// Training sums per log slot, for slots whose step had [`EVALUATE`].
    pub train: Vec<Option<Sums>>,
    /// Validation sums per log slot, for slots whose step had [`VALIDATE`].
    pub validation: Vec<Option<Sums>>,
    /// Set when the backend halted in this chunk or earlier.
    pub halt: Option<Halt>,
    /// Optimizer steps applied so far in the whole run.
    pub updates: u64,
}

/// Errors while training.
#[derive(Debug, Error)]
pub enum TrainError {
    #[error("GPU error: {0}")]
    Gpu(String),
    #[error(
        "GPU kernel '{kernel}' did not finish its work: {detail}. The driver stopped it early \
         (llvmpipe ends any shader invocation after 65,535 loop iterations, and desktop drivers \
         have watchdogs); this is a bug in shadertrain's dispatch sizing, please report it"
    )]
    KernelIncomplete { kernel: String, detail: String },
    #[error("{0}")]
    Invalid(String),
}

/// A device that executes chunks of the schedule.
pub trait Backend {
    /// Executes every step of `chunk` in order.
    fn run_chunk(&mut self, chunk: &Chunk) -> Result<ChunkOutcome, TrainError>;
    /// Current parameters, flattened in `state_dict()` order.
    fn parameters(&mut self) -> Result<Vec<f32>, TrainError>;
    /// Replaces the current parameters by the best ones the monitor kept.
    fn restore_best(&mut self) -> Result<(), TrainError>;
}

/// Training and validation data for the driver.
#[derive(Clone, Copy, Debug)]
pub struct TrainingData<'a> {
    pub train: Samples<'a>,
    pub validation: Option<Samples<'a>>,
    /// Standard deviation of each target when the targets are standardized,
    /// so metrics are reported in the target's units.
    pub target_scale: Option<&'a [f64]>,
}

/// Progress events for the caller's display.
pub enum Progress<'a> {
    /// A logged epoch's metrics are known.
    Logged(&'a LogEntry),
    /// A chunk finished; `epoch` epochs of `total` are done.
    Advanced { epoch: u64, total: u64 },
}

/// Options of the driver that do not change the result.
#[derive(Clone, Debug, Default)]
pub struct DriverOptions {
    /// Checked between chunks; when set, training stops after the current chunk.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Upper bound on a chunk's duration, for responsive progress and interrupts.
    pub target_chunk_time: Option<Duration>,
}

/// Result of a whole run.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    pub logs: Vec<LogEntry>,
    /// Metrics of the final parameters (after the last update, or the best
    /// ones after early stopping) on the training data.
    pub final_train: Metrics,
    pub final_validation: Option<Metrics>,
    pub parameters: Vec<f32>,
    /// Epochs whose updates were applied.
    pub epochs_done: u64,
    pub halt: Option<Halt>,
    pub interrupted: bool,
    /// Wall time of the training loop, without device set-up.
    pub seconds: f64,
}

impl TrainOutcome {
    pub fn epochs_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.epochs_done as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Largest number of steps in one chunk, to bound the schedule's memory.
const MAX_CHUNK_STEPS: usize = 1 << 16;
/// Largest number of row-order entries in one chunk (16 MiB of `u32`).
const MAX_CHUNK_ORDER: usize = 1 << 22;

/// Runs the whole training described by `spec` on `backend`.
pub fn run(
    backend: &mut dyn Backend,
    spec: &TrainSpec,
    data: TrainingData<'_>,
    options: &DriverOptions,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<TrainOutcome, TrainError> {
    if spec.early_stop.is_some() && data.validation.is_none() {
        return Err(TrainError::Invalid(
            "early stopping needs validation data: add --val-fraction or --val-data".into(),
        ));
    }
    let log_every = spec.log_every.max(1);
    let train_sst = data.train.total_sum_of_squares();
    let validation_sst = data.validation.map(|v| v.total_sum_of_squares());
    let steps_per_epoch = spec.batching.steps_per_epoch(data.train.rows);
    let target_chunk_time = options.target_chunk_time.unwrap_or(Duration::from_millis(250));

    let start = Instant::now();
    let mut logs = Vec::new();
    let mut epoch = 0;
    let mut updates = 0;
    let mut halt = None;
    let mut interrupted = false;
    // Start with a single epoch, whose duration is unknown, and grow chunks
    // towards the target duration.
    let mut chunk_epochs = 1;

    while epoch < spec.epochs && halt.is_none() {
        let max_by_steps = (MAX_CHUNK_STEPS / (steps_per_epoch + 1)).max(1) as u64;
        let max_by_order = match spec.batching {
            Batching::Full => u64::MAX,
            _ => (MAX_CHUNK_ORDER / data.train.rows.max(1)).max(1) as u64,
        };
        let mut end = (epoch + chunk_epochs.min(max_by_steps).min(max_by_order)).min(spec.epochs);
        // End chunks on log boundaries where possible, so progress shows fresh metrics.
        if end < spec.epochs && end % log_every != 0 && end - epoch > log_every {
            end -= end % log_every;
        }

        let chunk = build_chunk(spec, data, epoch, end);
        let chunk_start = Instant::now();
        let outcome = backend.run_chunk(&chunk)?;
        let chunk_time = chunk_start.elapsed();

        for (slot, &logged_epoch) in chunk.log_epochs.iter().enumerate() {
            if let Some(halted) = outcome.halt
                && logged_epoch > halt_epoch(halted)
            {
                break;
            }
            let train = outcome.train[slot]
                .as_ref()
                .map(|sums| Metrics::from_sums(sums, data.train.rows, &train_sst, data.target_scale));
            let validation = match (&outcome.validation[slot], data.validation, &validation_sst) {
                (Some(sums), Some(samples), Some(sst)) => {
                    Some(Metrics::from_sums(sums, samples.rows, sst, data.target_scale))
                }
                _ => None,
            };
            if let Some(train) = train {
                let entry = LogEntry {
                    epoch: logged_epoch,
                    train,
                    validation,
                    elapsed: start.elapsed().as_secs_f64(),
                };
                progress(Progress::Logged(&entry));
                logs.push(entry);
            }
        }

        updates = outcome.updates;
        halt = outcome.halt;
        epoch = match halt {
            Some(halted) => halt_epoch(halted),
            None => end,
        };
        progress(Progress::Advanced {
            epoch,
            total: spec.epochs,
        });

        if let Some(flag) = &options.interrupt
            && flag.load(Ordering::SeqCst)
        {
            interrupted = true;
            break;
        }

        // Grow or shrink the chunk towards the target duration: at most 8
        // times longer than the last one, in whole log intervals once it
        // spans more than one.
        let epochs_in_chunk = (end - chunk.steps.first().map_or(end, |s| u64::from(s.epoch))).max(1);
        let per_epoch = chunk_time.as_secs_f64() / epochs_in_chunk as f64;
        let wanted = ((target_chunk_time.as_secs_f64() / per_epoch.max(1e-9)) as u64).clamp(1, epochs_in_chunk * 8);
        chunk_epochs = if wanted > log_every {
            wanted / log_every * log_every
        } else {
            wanted
        };
    }
    let seconds = start.elapsed().as_secs_f64();

    if matches!(halt, Some(Halt::EarlyStopped { .. })) {
        backend.restore_best()?;
    }
    let epochs_done = updates / steps_per_epoch.max(1) as u64;

    // Final evaluation of the parameters the run ends with.
    let mut chunk = Chunk::default();
    let slot = chunk.add_log_slot(epochs_done);
    let mut flags = EVALUATE;
    if data.validation.is_some() {
        flags |= VALIDATE;
    }
    chunk.steps.push(Step {
        flags,
        epoch: epochs_done as u32,
        batch_rows: data.train.rows as u32,
        full_batch: 1,
        log_slot: slot,
        ..Step::default()
    });
    let outcome = backend.run_chunk(&chunk)?;
    let final_train = Metrics::from_sums(
        outcome.train[0]
            .as_ref()
            .expect("final evaluation returns training sums"),
        data.train.rows,
        &train_sst,
        data.target_scale,
    );
    let final_validation = match (&outcome.validation[0], data.validation, &validation_sst) {
        (Some(sums), Some(samples), Some(sst)) => Some(Metrics::from_sums(sums, samples.rows, sst, data.target_scale)),
        _ => None,
    };
    let parameters = backend.parameters()?;

    Ok(TrainOutcome {
        logs,
        final_train,
        final_validation,
        parameters,
        epochs_done,
        halt,
        interrupted,
        seconds,
    })
}

fn halt_epoch(halt: Halt) -> u64 {
    match halt {
        Halt::Diverged { epoch } | Halt::EarlyStopped { epoch, .. } => epoch,
    }
}

/// Builds the schedule for epochs `first..end`.
pub fn build_chunk(spec: &TrainSpec, data: TrainingData<'_>, first: u64, end: u64) -> Chunk {
    let rows = data.train.rows;
    let log_every = spec.log_every.max(1);
    let outputs = spec.architecture.outputs();
    let steps_per_epoch = spec.batching.steps_per_epoch(rows) as u64;
    let mut chunk = Chunk::default();

    for epoch in first..end {
        let logged = epoch % log_every == 0;
        let mut log_flags = 0;
        let mut log_slot = 0;
        if logged {
            log_slot = chunk.add_log_slot(epoch);
            log_flags = EVALUATE;
            if data.validation.is_some() {
                log_flags |= VALIDATE;
                if spec.early_stop.is_some() {
                    log_flags |= MONITOR;
                }
            }
        }
        let t_first = epoch * steps_per_epoch + 1;

        match spec.batching.epoch_order(epoch, rows) {
            None => chunk.steps.push(Step {
                flags: UPDATE | log_flags,
                epoch: epoch as u32,
                batch_start: 0,
                batch_rows: rows as u32,
                log_slot,
                full_batch: 1,
                loss_scale: spec.loss.gradient_scale(rows * outputs),
                factors: spec.optimizer.step_factors(t_first),
                ..Step::default()
            }),
            Some(order) => {
                // Metrics over all training rows before the epoch's first update.
                if logged {
                    chunk.steps.push(Step {
                        flags: log_flags,
                        epoch: epoch as u32,
                        batch_rows: rows as u32,
                        log_slot,
                        full_batch: 1,
                        ..Step::default()
                    });
                }
                let size = spec.batching.batch_size().unwrap_or(rows).clamp(1, rows.max(1));
                let base = chunk.order.len();
                chunk.order.extend_from_slice(&order);
                for (b, start) in (0..rows).step_by(size).enumerate() {
                    let batch_rows = size.min(rows - start);
                    chunk.steps.push(Step {
                        flags: UPDATE,
                        epoch: epoch as u32,
                        batch_start: (base + start) as u32,
                        batch_rows: batch_rows as u32,
                        log_slot: 0,
                        full_batch: 0,
                        loss_scale: spec.loss.gradient_scale(batch_rows * outputs),
                        factors: spec.optimizer.step_factors(t_first + b as u64),
                        ..Step::default()
                    });
                }
            }
        }
    }
    chunk
}
