//! The files `shadertrain train` writes after training: the report, the
//! history CSV, the plots and the safetensors file.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use shadertrain::cpu;
use shadertrain::model::{Architecture, Parameters};
use shadertrain::optim::Optimizer;
use shadertrain::plot::{self, FitScatter, LossCurve};
use shadertrain::prepare::ZScore;
use shadertrain::report::{self, DeviceRecord, FinalMetrics, Report};
use shadertrain::train::{LogEntry, Metrics, TrainOutcome};

/// Names a run in plot captions: model, loss, optimizer and learning rate,
/// such as `2 -> 5 (relu) -> 1, mse, adam lr 1`.
pub fn run_title(architecture: &Architecture, loss: &str, optimizer: &Optimizer) -> String {
    let name = match optimizer {
        Optimizer::Adam { .. } => "adam",
        Optimizer::AdamW { .. } => "adamw",
        Optimizer::Sgd { .. } => "sgd",
    };
    format!("{}, {loss}, {name} lr {}", architecture.describe(), optimizer.lr())
}

/// Columns of the history CSV that each data set (training, validation) has.
const METRIC_COLUMNS: [&str; 5] = ["loss", "mse", "rmse", "mae", "r2"];

/// Writes one row per logged epoch: `epoch`, the training metrics, the
/// validation metrics with a `val_` prefix when `has_validation`, and
/// `elapsed_seconds` since training started. Values are written in full
/// precision; a metric that is not finite is written as `NaN`, `inf` or `-inf`.
pub fn write_history_csv(path: &Path, logs: &[LogEntry], has_validation: bool) -> anyhow::Result<()> {
    let mut header: Vec<String> = vec!["epoch".into()];
    header.extend(METRIC_COLUMNS.iter().map(|name| name.to_string()));
    if has_validation {
        header.extend(METRIC_COLUMNS.iter().map(|name| format!("val_{name}")));
    }
    header.push("elapsed_seconds".into());

    let metric_fields = |metrics: &Metrics| {
        [metrics.loss, metrics.mse, metrics.rmse, metrics.mae, metrics.r2].map(|value| value.to_string())
    };
    report::write_atomically(path, |writer| {
        let mut csv = csv::Writer::from_writer(writer);
        csv.write_record(&header)?;
        for entry in logs {
            let mut record = vec![entry.epoch.to_string()];
            record.extend(metric_fields(&entry.train));
            if has_validation {
                match &entry.validation {
                    Some(validation) => record.extend(metric_fields(validation)),
                    None => record.extend(METRIC_COLUMNS.map(|_| String::new())),
                }
            }
            record.push(entry.elapsed.to_string());
            csv.write_record(&record)?;
        }
        csv.flush()
    })?;
    Ok(())
}

/// Inputs of the plots of a training run.
pub struct RunPlots<'a> {
    pub directory: &'a Path,
    /// Caption, from [`run_title`].
    pub title: &'a str,
    pub loss_name: &'a str,
    pub history: &'a [LogEntry],
    pub architecture: &'a Architecture,
    /// Final parameters in `state_dict()` order.
    pub parameters: &'a [f32],
    /// Training features `[rows][inputs]` as the model's input, standardized when
    /// the run standardized them.
    pub features: &'a [f32],
    /// Training targets `[rows][outputs]` as the model trained on them.
    pub targets: &'a [f32],
    /// The targets' standardization, undone before plotting, if any.
    pub target_standardization: Option<&'a ZScore>,
    pub target_names: &'a [String],
}

/// Writes the loss and fit plots of a run. Returns the paths written.
pub fn write_run_plots(plots: &RunPlots<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let curve = LossCurve {
        title: plots.title,
        loss_name: Some(plots.loss_name),
        history: plots.history,
    };
    written.extend(plot::write_loss_plot(plots.directory, &curve)?);

    let mut predicted = cpu::predict(plots.architecture, plots.parameters, plots.features);
    let mut actual = plots.targets.to_vec();
    if let Some(zscore) = plots.target_standardization {
        zscore.invert(&mut predicted);
        zscore.invert(&mut actual);
    }
    let outputs = plots.architecture.outputs();
    if outputs > 1 {
        log::info!("fit plot: the first of {outputs} targets, '{}'", plots.target_names[0]);
    }
    let first_column = |values: &[f32]| values.iter().step_by(outputs).copied().collect::<Vec<f32>>();
    let scatter = FitScatter {
        title: plots.title,
        target: &plots.target_names[0],
        rows_label: "training rows",
        actual: &first_column(&actual),
        predicted: &first_column(&predicted),
    };
    written.extend(plot::write_fit_plot(plots.directory, &scatter)?);
    Ok(written)
}

pub fn build_report(
    outcome: &TrainOutcome,
    epochs: u64,
    architecture: &Architecture,
    parameters: &Parameters,
    device: DeviceRecord,
    kernel: String,
    final_metrics: FinalMetrics,
) -> Report {
    let mut loss = IndexMap::new();
    let mut validation_loss = IndexMap::new();
    for entry in &outcome.logs {
        loss.insert(entry.epoch.to_string(), entry.train.loss);
        if let Some(validation) = &entry.validation {
            validation_loss.insert(entry.epoch.to_string(), validation.loss);
        }
    }
    Report {
        device,
        kernel,
        model: architecture.describe(),
        epochs,
        epochs_done: outcome.epochs_done,
        seconds: outcome.seconds,
        epochs_per_second: outcome.epochs_per_second(),
        loss,
        validation_loss,
        history: outcome.logs.clone(),
        final_loss: outcome.final_train.loss,
        final_metrics,
        halt: outcome.halt,
        interrupted: outcome.interrupted,
        layers: parameters.layers.clone(),
    }
}

/// Writes the parameters with the names of a PyTorch module whose `layers`
/// attribute is the equivalent `nn.Sequential` (Linear layers at even
/// indices, activations between them).
pub fn write_safetensors(
    path: &Path,
    architecture: &Architecture,
    parameters: &Parameters,
    features: &[String],
    targets: &[String],
) -> anyhow::Result<()> {
    use safetensors::tensor::{Dtype, TensorView};

    let mut buffers = Vec::new();
    for (l, layer) in parameters.layers.iter().enumerate() {
        let (inputs, outputs) = architecture.layer_shape(l);
        let weight: Vec<f32> = layer.weight.iter().flatten().copied().collect();
        buffers.push((format!("layers.{}.weight", 2 * l), vec![outputs, inputs], weight));
        buffers.push((format!("layers.{}.bias", 2 * l), vec![outputs], layer.bias.clone()));
    }
    let views = buffers
        .iter()
        .map(|(name, shape, values)| {
            TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(values)).map(|view| (name.clone(), view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| anyhow::anyhow!("cannot build safetensors tensors: {error:?}"))?;
    let metadata = [
        ("format".to_string(), "pt".to_string()),
        ("model".to_string(), architecture.describe()),
        ("features".to_string(), features.join(",")),
        ("targets".to_string(), targets.join(",")),
    ]
    .into_iter()
    .collect();
    let bytes = safetensors::tensor::serialize(views, Some(metadata))
        .map_err(|error| anyhow::anyhow!("cannot serialize safetensors: {error:?}"))?;
    report::write_atomically(path, |writer| writer.write_all(&bytes))?;
    Ok(())
}
