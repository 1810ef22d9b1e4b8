//! `shadertrain plot`: the loss curve of a saved report and, with a model
//! file, its predictions against the targets of a CSV file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use shadertrain::data::{self, CsvOptions};
use shadertrain::plot::{self, FitScatter, LossCurve};
use shadertrain::report::{self, Report};

use super::predict::{SavedModel, TargetColumns};
use crate::cli::PlotArgs;
use crate::output::Output;

pub fn run(args: &PlotArgs, output: &Output) -> anyhow::Result<ExitCode> {
    let csv = CsvOptions {
        delimiter: data::parse_delimiter(&args.delimiter).map_err(anyhow::Error::msg)?,
        drop_missing: args.drop_missing,
    };
    let report: Report = report::read_json(&args.report, "report")?;
    let model = args.model.as_deref().map(SavedModel::read).transpose()?;

    let title = match &model {
        Some(model) => {
            if model.architecture.describe() != report.model {
                output.warn(&format!(
                    "the report {} describes the model {}, but {} holds {}",
                    args.report.display(),
                    report.model,
                    model.path.display(),
                    model.architecture.describe()
                ));
            }
            match &model.file.training {
                Some(training) => format!(
                    "{}, {}, {}",
                    report.model,
                    model.file.loss,
                    short_optimizer(&training.optimizer)
                ),
                None => format!("{}, {}", report.model, model.file.loss),
            }
        }
        None => report.model.clone(),
    };
    let loss_name = model.as_ref().map(|model| model.file.loss.to_string());
    let curve_points = plot::with_final_point(
        &report.history,
        report.halt,
        report.epochs_done,
        report.final_metrics.train,
        report.final_metrics.validation,
        report.seconds,
    );
    let curve = LossCurve {
        title: &title,
        loss_name: loss_name.as_deref(),
        history: &curve_points,
    };
    let mut written = plot::write_loss_plot(&args.output, &curve)?.to_vec();

    if let Some(model) = &model {
        written.extend(write_fit(args, output, model, &csv, &title)?);
    }
    for path in written {
        output.result(&format!("wrote {}", path.display()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Draws the model's predictions against the first target on every row of
/// --data, or of the data file recorded in the model.
fn write_fit(
    args: &PlotArgs,
    output: &Output,
    model: &SavedModel,
    csv: &CsvOptions,
    title: &str,
) -> anyhow::Result<[PathBuf; 2]> {
    let data_path = match (&args.data, &model.file.training) {
        (Some(path), _) => path.clone(),
        (None, Some(training)) => PathBuf::from(&training.data),
        (None, None) => anyhow::bail!(
            "{} does not record its training data; pass the CSV file for the fit plot with --data FILE",
            model.path.display()
        ),
    };
    let dataset = model
        .load(&data_path, csv, TargetColumns::Required)
        .with_context(|| format!("cannot load the data for the fit plot from {}", data_path.display()))?;
    if dataset.dropped_rows > 0 {
        output.warn(&format!(
            "dropped {} rows of {} with missing values (--drop-missing)",
            dataset.dropped_rows,
            data_path.display()
        ));
    }

    let outputs = model.architecture.outputs();
    let predicted: Vec<f32> = model.predict(&dataset).into_iter().step_by(outputs).collect();
    let actual: Vec<f32> = dataset.targets.iter().step_by(outputs).copied().collect();
    let rows_label = format!("rows of {}", file_name(&data_path));
    let scatter = FitScatter {
        title,
        target: &model.file.targets[0],
        rows_label: &rows_label,
        actual: &actual,
        predicted: &predicted,
    };
    Ok(plot::write_fit_plot(&args.output, &scatter)?)
}

/// Shortens an optimizer description as `train` records it, such as
/// `adam (lr 1, betas 0.9/0.999, eps 1e-8, weight decay 0)`, to `adam lr 1`.
/// Returns the description unchanged when it has another form.
fn short_optimizer(description: &str) -> String {
    let Some((name, settings)) = description.split_once(" (") else {
        return description.to_string();
    };
    let learning_rate = settings
        .trim_end_matches(')')
        .split(", ")
        .find_map(|setting| setting.strip_prefix("lr "));
    match learning_rate {
        Some(lr) => format!("{name} lr {lr}"),
        None => description.to_string(),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_optimizer_forms() {
        let cases = [
            ("adam (lr 1, betas 0.9/0.999, eps 1e-8, weight decay 0)", "adam lr 1"),
            ("sgd (lr 0.01, momentum 0.9)", "sgd lr 0.01"),
            ("adam", "adam"),
            ("custom (beta 2)", "custom (beta 2)"),
        ];
        for (description, expected) in cases {
            assert_eq!(
                short_optimizer(description),
                expected,
                "short_optimizer({description:?})"
            );
        }
    }
}
