//! `shadertrain eval`: the metrics of a saved model on a CSV file with targets.

use std::process::ExitCode;

use shadertrain::data::{self, CsvOptions};

use super::predict::{SavedModel, TargetColumns, table_row};
use crate::cli::EvalArgs;
use crate::output::Output;

pub fn run(args: &EvalArgs, output: &Output) -> anyhow::Result<ExitCode> {
    let csv = CsvOptions {
        delimiter: data::parse_delimiter(&args.delimiter).map_err(anyhow::Error::msg)?,
        drop_missing: args.drop_missing,
    };
    let model = SavedModel::read(&args.model)?;
    let dataset = model.load(&args.data, &csv, TargetColumns::Required)?;
    if dataset.dropped_rows > 0 {
        output.warn(&format!(
            "dropped {} rows of {} with missing values (--drop-missing)",
            dataset.dropped_rows,
            args.data.display()
        ));
    }
    let metrics = model.metrics(&dataset);

    if args.json {
        let record = model.metrics_record(&args.data, dataset.rows, dataset.dropped_rows, Some(metrics));
        output.result(&serde_json::to_string_pretty(&record)?);
        return Ok(ExitCode::SUCCESS);
    }
    let model_text = format!(
        "{}: {}, targets {}",
        args.model.display(),
        model.architecture.describe(),
        model.file.targets.join(", ")
    );
    output.result(&table_row("model", &model_text));
    let data_text = format!("{}: {} rows", args.data.display(), dataset.rows);
    output.result(&table_row("data", &data_text));
    for line in model.metrics_table(&metrics) {
        output.result(&line);
    }
    Ok(ExitCode::SUCCESS)
}
