//! `shadertrain predict`: apply a saved model to a CSV file and write its rows
//! with prediction columns added.
//!
//! [`SavedModel`] contains the steps that `eval` shares: reading the model file,
//! loading its columns, predicting and computing metrics as the trainer does.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use serde::Serialize;

use shadertrain::cpu;
use shadertrain::data::{self, ColumnRole, ColumnSelection, CsvOptions, DataError, Dataset};
use shadertrain::loss::Loss;
use shadertrain::model::Architecture;
use shadertrain::report::{self, ModelFile};
use shadertrain::train::{Metrics, Samples, Sums};

use crate::cli::PredictArgs;
use crate::output::Output;

/// Selection of the model's target columns to load with its features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetColumns {
    /// Features only.
    Skip,
    /// All target columns if the file has any of them, else none.
    Optional,
    /// All target columns; a file without them is an error.
    Required,
}

/// A model file that was read and checked, ready to predict.
pub struct SavedModel {
    pub path: PathBuf,
    pub file: ModelFile,
    pub architecture: Architecture,
    /// Parameters in `state_dict()` order, as [`cpu::predict`] takes them.
    parameters: Vec<f32>,
}

impl SavedModel {
    /// Reads a model file written by `train --save`. Errors name the file and the invalid field.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let file = ModelFile::read(path)?;
        let architecture = file.architecture()?;
        let parameters = file.parameters().to_flat();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            architecture,
            parameters,
        })
    }

    /// Loads the model's feature columns, in the model's input order, and the target columns
    /// that `targets` selects. A missing column error names the model that needs the column.
    pub fn load(&self, data: &Path, csv: &CsvOptions, targets: TargetColumns) -> anyhow::Result<Dataset> {
        let columns = ColumnSelection {
            features: &self.file.features,
            targets: if targets == TargetColumns::Skip {
                &[]
            } else {
                &self.file.targets
            },
            targets_required: targets == TargetColumns::Required,
        };
        data::load_csv(data, &columns, csv).map_err(|error| self.explain_column_error(error))
    }

    /// Adds the model's columns to an error about a missing column.
    fn explain_column_error(&self, error: DataError) -> anyhow::Error {
        let context = match &error {
            DataError::MissingColumn {
                role: ColumnRole::Feature,
                ..
            } => format!("needs the feature columns {}", quote_list(&self.file.features)),
            DataError::MissingColumn {
                role: ColumnRole::Target,
                ..
            }
            | DataError::PartialTargets { .. } => format!("has the target columns {}", quote_list(&self.file.targets)),
            _ => return error.into(),
        };
        anyhow::Error::new(error).context(format!("model {} {context}", self.path.display()))
    }

    /// Predicts `[rows][targets]` for the rows of `dataset`, in target units.
    pub fn predict(&self, dataset: &Dataset) -> Vec<f32> {
        let mut predictions = self.predict_training_units(dataset);
        if let Some(zscore) = &self.file.standardization.targets {
            zscore.invert(&mut predictions);
        }
        predictions
    }

    /// Predicts without undoing the target standardization, so the values are in the units
    /// the loss was computed in during training.
    fn predict_training_units(&self, dataset: &Dataset) -> Vec<f32> {
        let mut features = dataset.features.clone();
        if let Some(zscore) = &self.file.standardization.features {
            zscore.apply(&mut features);
        }
        cpu::predict(&self.architecture, &self.parameters, &features)
    }

    /// Computes the metrics on `dataset` as the trainer computes them: the loss
    /// with the model's loss function on the values it trained on (standardized targets
    /// when it standardized them), and mse, rmse, mae and r2 in target units.
    ///
    /// Panics if `dataset` lacks the target columns.
    pub fn metrics(&self, dataset: &Dataset) -> Metrics {
        assert_eq!(
            dataset.outputs(),
            self.architecture.outputs(),
            "metrics need the target columns"
        );
        let outputs = self.architecture.outputs();
        let predictions = self.predict_training_units(dataset);
        let mut targets = dataset.targets.clone();
        if let Some(zscore) = &self.file.standardization.targets {
            zscore.apply(&mut targets);
        }

        let mut sums = Sums {
            loss: 0.0,
            squared_error: vec![0.0; outputs],
            absolute_error: vec![0.0; outputs],
        };
        for (prediction, target) in predictions.chunks(outputs).zip(targets.chunks(outputs)) {
            // The scale only matters for the gradient, which is not requested.
            cpu::accumulate_loss(self.file.loss, prediction, target, 0.0, &mut sums, None);
        }
        let total_sum_of_squares =
            Samples::new(dataset.inputs(), outputs, &dataset.features, &targets).total_sum_of_squares();
        let target_scale = self.file.standardization.targets.as_ref().map(|z| z.std.as_slice());
        Metrics::from_sums(&sums, dataset.rows, &total_sum_of_squares, target_scale)
    }

    /// Builds the record that `--json` prints. `rows` are the rows the metrics cover and
    /// `dropped_rows` those that `--drop-missing` skipped.
    pub fn metrics_record(
        &self,
        data: &Path,
        rows: usize,
        dropped_rows: usize,
        metrics: Option<Metrics>,
    ) -> MetricsRecord {
        MetricsRecord {
            model: self.path.display().to_string(),
            data: data.display().to_string(),
            rows,
            dropped_rows,
            predicted_rows: None,
            targets: self.file.targets.clone(),
            loss_function: self.file.loss,
            loss_on_standardized_targets: self.file.standardization.targets.is_some(),
            metrics,
        }
    }

    /// Formats the metrics as lines of a two-column table: name and value.
    pub fn metrics_table(&self, metrics: &Metrics) -> Vec<String> {
        let loss_units = if self.file.standardization.targets.is_some() {
            " on standardized targets"
        } else {
            ""
        };
        vec![
            table_row(
                "loss",
                &format!("{:.6}  ({}{loss_units})", metrics.loss, self.file.loss),
            ),
            table_row("mse", &format!("{:.6}", metrics.mse)),
            table_row("rmse", &format!("{:.6}", metrics.rmse)),
            table_row("mae", &format!("{:.6}", metrics.mae)),
            table_row("r2", &format!("{:.6}", metrics.r2)),
        ]
    }
}

/// Formats one line of the metrics table, with the values aligned.
pub fn table_row(name: &str, value: &str) -> String {
    format!("{name:<6}{value}")
}

/// Metrics record that `predict --json` and `eval --json` print.
#[derive(Debug, Serialize)]
pub struct MetricsRecord {
    pub model: String,
    pub data: String,
    /// Rows the metrics cover: 0 when the data has no target values.
    pub rows: usize,
    /// Rows skipped by `--drop-missing`.
    pub dropped_rows: usize,
    /// Rows written with predictions (predict only). Rows without target values count
    /// here but not in `rows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_rows: Option<usize>,
    pub targets: Vec<String>,
    pub loss_function: Loss,
    /// Whether `metrics.loss` is in standardized target units, as during training.
    pub loss_on_standardized_targets: bool,
    /// Absent (null) when the data has no target columns.
    pub metrics: Option<Metrics>,
}

/// Names a list of columns in messages: `'a', 'b', 'c'`.
fn quote_list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(args: &PredictArgs, output: &Output) -> anyhow::Result<ExitCode> {
    let csv = CsvOptions {
        delimiter: data::parse_delimiter(&args.delimiter).map_err(anyhow::Error::msg)?,
        drop_missing: args.drop_missing,
    };
    if let Some(path) = &args.output {
        for (input, option) in [(&args.data, "--data"), (&args.model, "--model")] {
            if is_same_file(path, input) {
                bail!(
                    "--output {} is the same file as {option} {}; write the predictions to another file",
                    path.display(),
                    input.display()
                );
            }
        }
    }

    let model = SavedModel::read(&args.model)?;
    let dataset = model.load(&args.data, &csv, TargetColumns::Skip)?;
    if dataset.dropped_rows > 0 {
        output.warn(&format!(
            "dropped {} rows of {} with missing feature values (--drop-missing); the output has {} rows",
            dataset.dropped_rows,
            args.data.display(),
            dataset.rows
        ));
    }
    let predictions = model.predict(&dataset);
    let names = prediction_column_names(&model.file.targets, &dataset.header);

    // Metrics need the rows whose target values are present as well. Rows without a target
    // value are predicted all the same, which is the usual reason to run predict on them.
    let scored = load_scored_rows(&model, &args.data, &csv)?.map(|rows| {
        let metrics = model.metrics(&rows);
        (rows, metrics)
    });

    match &args.output {
        Some(path) => {
            write_predictions_file(path, &dataset, &csv, &names, &predictions)?;
            output.info(&format!(
                "wrote {} rows with the columns {} to {}",
                dataset.rows,
                quote_list(&names),
                path.display()
            ));
        }
        None => {
            if !write_predictions_stdout(&dataset, &csv, &names, &predictions)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    report_metrics(args, output, &model, &dataset, scored.as_ref())?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the metrics as JSON on standard output with --json, else as a table on
/// standard error, because standard output may be the CSV.
fn report_metrics(
    args: &PredictArgs,
    output: &Output,
    model: &SavedModel,
    predicted: &Dataset,
    scored: Option<&(Dataset, Metrics)>,
) -> anyhow::Result<()> {
    if args.json {
        let rows = scored.map_or(0, |(rows, _)| rows.rows);
        let metrics = scored.map(|(_, metrics)| *metrics);
        let mut record = model.metrics_record(&args.data, rows, predicted.dropped_rows, metrics);
        record.predicted_rows = Some(predicted.rows);
        output.result(&serde_json::to_string_pretty(&record)?);
        return Ok(());
    }
    match scored {
        Some((rows, metrics)) => {
            eprintln!(
                "metrics on {} rows of {} that have target values:",
                rows.rows,
                args.data.display()
            );
            for line in model.metrics_table(metrics) {
                eprintln!("  {line}");
            }
        }
        None => output.info(&format!(
            "no metrics: {} has no rows with values in the target columns {}",
            args.data.display(),
            quote_list(&model.file.targets)
        )),
    }
    Ok(())
}

/// Loads the rows that have values in every feature and target column, for metrics.
/// Returns None when the file lacks the target columns or no row has all of them.
fn load_scored_rows(model: &SavedModel, data: &Path, csv: &CsvOptions) -> anyhow::Result<Option<Dataset>> {
    let options = CsvOptions {
        drop_missing: true,
        ..*csv
    };
    match model.load(data, &options, TargetColumns::Optional) {
        Ok(dataset) if dataset.target_names.is_empty() => Ok(None),
        Ok(dataset) => Ok(Some(dataset)),
        Err(error) if matches!(error.downcast_ref(), Some(DataError::AllRowsDropped { .. })) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Names the prediction columns `<target>_predicted`. A name that the header already
/// contains gets the first free suffix `_2`, `_3`, ..., so no input column is shadowed.
pub fn prediction_column_names(targets: &[String], header: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(targets.len());
    for target in targets {
        let base = format!("{target}_predicted");
        let is_taken = |name: &str| header.iter().any(|h| h == name) || names.iter().any(|n| n == name);
        let mut name = base.clone();
        let mut suffix = 2;
        while is_taken(&name) {
            name = format!("{base}_{suffix}");
            suffix += 1;
        }
        names.push(name);
    }
    names
}

/// Returns whether both paths exist and resolve to the same file.
fn is_same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Writes the input rows with the predictions appended to `path`, atomically.
fn write_predictions_file(
    path: &Path,
    dataset: &Dataset,
    csv: &CsvOptions,
    names: &[String],
    predictions: &[f32],
) -> anyhow::Result<()> {
    // A failure to read the input again is reported as itself, not as a write error.
    let mut read_error = None;
    let written = report::write_atomically(path, |writer| {
        data::write_with_columns(&dataset.path, csv, &dataset.lines, names, predictions, writer).map_err(|error| {
            let message = error.to_string();
            read_error = Some(error);
            io::Error::other(message)
        })
    });
    match (read_error, written) {
        (Some(DataError::Write { source }), _) => Err(report::FileError::Write {
            path: path.to_path_buf(),
            source,
        }
        .into()),
        (Some(error), _) => Err(error.into()),
        (None, written) => Ok(written?),
    }
}

/// Writes the input rows with the predictions appended to standard output. Returns false
/// when the reader closed the pipe early (as `head` does), which is not an error.
fn write_predictions_stdout(
    dataset: &Dataset,
    csv: &CsvOptions,
    names: &[String],
    predictions: &[f32],
) -> anyhow::Result<bool> {
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    let written = data::write_with_columns(&dataset.path, csv, &dataset.lines, names, predictions, &mut stdout)
        .and_then(|()| stdout.flush().map_err(|source| DataError::Write { source }));
    match written {
        Ok(()) => Ok(true),
        Err(DataError::Write { source }) if source.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error.into()),
    }
}
