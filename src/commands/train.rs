//! `shadertrain train`: load, prepare, train, report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, bail};

use shadertrain::data::{self, ColumnSelection, CsvOptions};
use shadertrain::gpu::{self, GpuContext, GpuError, KernelChoice};
use shadertrain::loss::Loss;
use shadertrain::model::{Activation, Architecture, Parameters, init};
use shadertrain::optim::{Optimizer, OptimizerKind};
use shadertrain::plot;
use shadertrain::prepare::{self, Standardization, Table, ZScore};
use shadertrain::report::{self, DeviceRecord, FinalMetrics, ModelFile, TrainingRecord};
use shadertrain::schedule::Batching;
use shadertrain::train::{self, Backend, DriverOptions, Halt, Progress, TrainOutcome, TrainSpec, TrainingData};

use super::train_outputs::{self, RunPlots};
use crate::cli::{DeviceArg, KernelArg, TrainArgs};
use crate::output::Output;

/// Exit status of a run that diverged.
const EXIT_DIVERGED: u8 = 3;
/// Exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

pub fn run(args: &TrainArgs, output: &Output, interrupt: Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    // With --json, standard output is the report alone.
    let json_output;
    let output = if args.json {
        json_output = output.with_results_on_stderr();
        &json_output
    } else {
        output
    };

    // Options first, so a typo fails before any data is read.
    let hidden = parse_hidden(&args.hidden)?;
    let activations = args
        .activation
        .iter()
        .map(|name| Activation::parse(name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let loss = Loss::parse(&args.loss).map_err(anyhow::Error::msg)?;
    let optimizer = build_optimizer(args)?;
    if args.log_every == 0 {
        bail!("--log-every must be at least 1");
    }
    if args.batch_size == Some(0) {
        bail!("--batch-size must be at least 1");
    }
    if args.early_stop.is_some() && args.val_fraction.is_none() && args.val_data.is_none() {
        bail!("--early-stop needs validation data: add --val-fraction F or --val-data FILE");
    }
    if args.early_stop == Some(0) {
        bail!("--early-stop must be at least 1 epoch");
    }
    if args.device == DeviceArg::Cpu && args.kernel != KernelArg::Auto {
        output.warn("--kernel has no effect with --device cpu, which trains on the CPU reference");
    }
    // Checked now, so a typo in an output path fails before training rather than after it.
    let mut inputs: Vec<(&str, &std::path::Path)> = vec![("--data", args.data.data.as_path())];
    if let Some(path) = &args.val_data {
        inputs.push(("--val-data", path));
    }
    let files: Vec<(&str, &std::path::Path)> = [
        ("--report", &args.report),
        ("--save", &args.save),
        ("--save-safetensors", &args.save_safetensors),
        ("--history", &args.history),
    ]
    .into_iter()
    .filter_map(|(option, path)| path.as_deref().map(|path| (option, path)))
    .collect();
    let directories: Vec<(&str, &std::path::Path)> = args.plot.iter().map(|path| ("--plot", path.as_path())).collect();
    super::paths::check_outputs(&inputs, &files, &directories)?;

    // Data.
    let csv = CsvOptions {
        delimiter: data::parse_delimiter(&args.data.delimiter).map_err(anyhow::Error::msg)?,
        drop_missing: args.data.drop_missing,
    };
    let columns = ColumnSelection {
        features: &args.data.features,
        targets: &args.data.target,
        targets_required: true,
    };
    let dataset = data::load_csv(&args.data.data, &columns, &csv)?;
    if dataset.dropped_rows > 0 {
        output.warn(&format!(
            "dropped {} rows of {} with missing values (--drop-missing)",
            dataset.dropped_rows,
            args.data.data.display()
        ));
    }
    let table = Table {
        inputs: dataset.inputs(),
        outputs: dataset.outputs(),
        features: dataset.features,
        targets: dataset.targets,
    };
    let (mut train_table, mut validation_table) = match (&args.val_data, args.val_fraction) {
        (Some(path), _) => {
            let validation = data::load_csv(path, &columns, &csv)?;
            let validation = Table {
                inputs: validation.inputs(),
                outputs: validation.outputs(),
                features: validation.features,
                targets: validation.targets,
            };
            (table, Some(validation))
        }
        (None, Some(fraction)) => {
            let (train, validation) =
                prepare::split_validation(&table, fraction, args.seed).map_err(anyhow::Error::msg)?;
            (train, Some(validation))
        }
        (None, None) => (table, None),
    };

    // A model file given to --init brings the standardization its parameters
    // were trained with; otherwise the statistics come from the training rows only.
    let init_model = match &args.init {
        Some(path) => report::read_model_if_model_file(path)?,
        None => None,
    };
    let mut standardization = Standardization::default();
    if let (Some(model), Some(path)) = (&init_model, &args.init)
        && !model.standardization.is_empty()
    {
        standardization = model.standardization.clone();
        apply_saved_standardization(&standardization, &mut train_table, validation_table.as_mut(), path)?;
        output.info(&format!("standardization: the one saved in {}", path.display()));
        if args.standardize != standardization.features.is_some()
            || args.standardize_target != standardization.targets.is_some()
        {
            output.warn(&format!(
                "{} was trained with {} standardization; its saved statistics are used instead of --standardize and --standardize-target",
                path.display(),
                describe_standardization(&standardization)
            ));
        }
    } else {
        if let (Some(_), Some(path)) = (&init_model, &args.init)
            && (args.standardize || args.standardize_target)
        {
            output.warn(&format!(
                "{} was trained without standardization, so its parameters expect raw values; --standardize changes what they see",
                path.display()
            ));
        }
        if args.standardize {
            let (zscore, constant) = ZScore::fit(&train_table.features, train_table.inputs);
            for c in constant {
                output.warn(&format!(
                    "feature '{}' is constant in the training rows, so standardizing leaves it all zeros (as scikit-learn does); it cannot help the model",
                    args.data.features[c]
                ));
            }
            zscore.apply(&mut train_table.features);
            if let Some(validation) = &mut validation_table {
                zscore.apply(&mut validation.features);
            }
            standardization.features = Some(zscore);
        }
        if args.standardize_target {
            let (zscore, constant) = ZScore::fit(&train_table.targets, train_table.outputs);
            for c in constant {
                output.warn(&format!(
                    "target '{}' is constant in the training rows; standardizing leaves it all zeros",
                    args.data.target[c]
                ));
            }
            zscore.apply(&mut train_table.targets);
            if let Some(validation) = &mut validation_table {
                zscore.apply(&mut validation.targets);
            }
            standardization.targets = Some(zscore);
        }
    }
    let target_scale: Option<Vec<f64>> = standardization.targets.as_ref().map(|z| z.std.clone());

    // Model and initial parameters.
    let architecture = Architecture::new(train_table.inputs, &hidden, train_table.outputs, &activations)?;
    if let (Some(model), Some(path)) = (&init_model, &args.init) {
        check_init_model(
            model,
            path,
            &architecture,
            &args.data.features,
            &args.data.target,
            output,
        )?;
    }
    let initial = match &args.init {
        Some(path) => report::read_init(path, &architecture)?,
        None => init::torch_linear_init(&architecture, args.seed),
    };
    let batching = match args.batch_size {
        Some(size) if size < train_table.rows() => Batching::Shuffled { size, seed: args.seed },
        _ => Batching::Full,
    };
    let spec = TrainSpec {
        architecture: architecture.clone(),
        loss,
        optimizer,
        epochs: args.epochs,
        log_every: args.log_every,
        batching,
        early_stop: args.early_stop,
    };
    let data = TrainingData {
        train: train_table.samples(),
        validation: validation_table.as_ref().map(Table::samples),
        target_scale: target_scale.as_deref(),
    };

    output.info(&format!(
        "data: {} ({} training rows{}; features {}; target {})",
        args.data.data.display(),
        train_table.rows(),
        validation_table
            .as_ref()
            .map_or(String::new(), |v| format!(", {} validation rows", v.rows())),
        list_names(&args.data.features),
        list_names(&args.data.target)
    ));
    log_data_size("training", &train_table);
    if let Some(validation) = &validation_table {
        log_data_size("validation", validation);
    }
    output.info(&format!(
        "model: {} ({} parameters), loss {loss}, optimizer {optimizer}",
        architecture.describe(),
        architecture.parameter_count()
    ));
    output.info(&format!(
        "{} epochs, {}, {}",
        args.epochs,
        match args.batch_size {
            Some(size) if size < train_table.rows() => format!("mini-batches of {size} rows"),
            _ => "full batch".to_string(),
        },
        match &args.init {
            Some(path) => format!("parameters from {}", path.display()),
            None => format!("seed {}", args.seed),
        }
    ));

    // Device and backend.
    let device_start = Instant::now();
    let context = match args.device {
        DeviceArg::Cpu => None,
        DeviceArg::Gpu => Some(GpuContext::new()?),
        DeviceArg::Auto => match GpuContext::new() {
            Ok(context) => {
                if context.is_cpu {
                    output.warn(&format!(
                        "no hardware GPU found; training on {}, a software adapter that runs on the CPU",
                        context.adapter.name
                    ));
                }
                Some(context)
            }
            Err(GpuError::NoAdapter) => {
                output.warn(
                    "no GPU adapter found (wgpu looked for Vulkan, Metal and DX12), so training runs on the \
                     CPU reference trainer. To train on a GPU, install a GPU driver with Vulkan support; on Debian \
                     or Ubuntu without a GPU, `sudo apt-get install mesa-vulkan-drivers` provides lavapipe, a \
                     software Vulkan driver. --device cpu selects the CPU reference without this warning",
                );
                None
            }
            Err(error) => {
                output.warn(&format!(
                    "{error}, so training runs on the CPU reference trainer (--device cpu selects it without this warning)"
                ));
                None
            }
        },
    };
    if context.is_some() {
        log::info!(
            "opened the GPU device in {:.1} ms",
            device_start.elapsed().as_secs_f64() * 1e3
        );
    }
    let kernel_choice = match args.kernel {
        KernelArg::Auto => KernelChoice::Auto,
        KernelArg::Fused => KernelChoice::Fused,
        KernelArg::General => KernelChoice::General,
    };
    let flat = initial.to_flat();
    let (mut backend, device, kernel): (Box<dyn Backend + '_>, DeviceRecord, String) = match &context {
        None => (
            Box::new(shadertrain::cpu::CpuBackend::new(&spec, data, flat.clone())),
            DeviceRecord {
                name: "CPU reference".into(),
                backend: "none".into(),
                device_type: "CPU".into(),
            },
            "cpu-reference".into(),
        ),
        Some(context) => {
            let backend_start = Instant::now();
            let (backend, kernel) = gpu::create_backend(context, &spec, data, &flat, kernel_choice)?;
            log::info!(
                "built the {} kernel path in {:.1} ms (shader compilation, pipelines and buffer uploads)",
                kernel.name(),
                backend_start.elapsed().as_secs_f64() * 1e3
            );
            output.info(&format!("device: {}", context.adapter));
            output.info(&format!("kernel: {kernel}"));
            (
                backend,
                DeviceRecord {
                    name: context.adapter.name.clone(),
                    backend: context.adapter.backend.clone(),
                    device_type: context.adapter.device_type.clone(),
                },
                kernel.name().to_string(),
            )
        }
    };
    if context.is_none() {
        output.info("device: CPU reference trainer");
    }

    // Train.
    let options = DriverOptions {
        interrupt: Some(interrupt),
        target_chunk_time: None,
    };
    let has_validation = validation_table.is_some();
    let mut progress = output.start_progress(args.epochs);
    let outcome = train::run(backend.as_mut(), &spec, data, &options, |event| match event {
        Progress::Logged(entry) => {
            progress.logged(entry);
            output.result(&format_log_line(entry, has_validation));
        }
        Progress::Advanced { epoch, .. } => progress.advanced(epoch),
    })?;
    drop(progress);
    drop(backend);

    // Results.
    print_results(output, &outcome, &architecture, has_validation);
    let parameters = Parameters::from_flat(&architecture, &outcome.parameters);
    let record = TrainingRecord {
        data: args.data.data.display().to_string(),
        optimizer: optimizer.to_string(),
        loss: loss.to_string(),
        epochs: args.epochs,
        epochs_done: outcome.epochs_done,
        batch_size: args.batch_size,
        seed: args.seed,
        device: device.name.clone(),
        kernel: kernel.clone(),
        halt: outcome.halt,
        interrupted: outcome.interrupted,
    };
    let final_metrics = FinalMetrics {
        train: outcome.final_train,
        validation: outcome.final_validation,
    };

    // Files. The report, history and plots are written whatever the
    // parameters; the model files only with finite parameters.
    let report = train_outputs::build_report(
        &outcome,
        args.epochs,
        &architecture,
        &parameters,
        device,
        kernel,
        final_metrics.clone(),
    );
    if let Some(path) = &args.report {
        report::write_json(path, &report)?;
        output.info(&format!("report written to {}", path.display()));
    }
    if let Some(path) = &args.history {
        train_outputs::write_history_csv(path, &outcome.logs, has_validation)?;
        output.info(&format!("history written to {}", path.display()));
    }
    if let Some(directory) = &args.plot {
        let title = train_outputs::run_title(&architecture, &loss.to_string(), &optimizer);
        let curve_points = plot::with_final_point(
            &outcome.logs,
            outcome.halt,
            outcome.epochs_done,
            outcome.final_train,
            outcome.final_validation,
            outcome.seconds,
        );
        let plots = RunPlots {
            directory,
            title: &title,
            loss_name: &loss.to_string(),
            history: &curve_points,
            architecture: &architecture,
            parameters: &outcome.parameters,
            features: &train_table.features,
            targets: &train_table.targets,
            target_standardization: standardization.targets.as_ref(),
            target_names: &args.data.target,
        };
        let written = train_outputs::write_run_plots(&plots)?;
        output.info(&format!("plots written to {}", describe_paths(&written)));
    }
    let parameters_finite = outcome.parameters.iter().all(|v| v.is_finite());
    let mut not_written: Vec<&PathBuf> = Vec::new();
    if let Some(path) = &args.save {
        if parameters_finite {
            let model = ModelFile {
                format: ModelFile::FORMAT.into(),
                version: ModelFile::VERSION,
                features: args.data.features.clone(),
                targets: args.data.target.clone(),
                hidden: architecture.hidden().to_vec(),
                activations: architecture.activations.clone(),
                loss,
                standardization: standardization.clone(),
                training: Some(record),
                metrics: Some(final_metrics),
                layers: parameters.layers.clone(),
            };
            report::write_json(path, &model)?;
            output.info(&format!("model saved to {}", path.display()));
        } else {
            not_written.push(path);
        }
    }
    if let Some(path) = &args.save_safetensors {
        if parameters_finite {
            train_outputs::write_safetensors(path, &architecture, &parameters, &args.data.features, &args.data.target)?;
            output.info(&format!("parameters saved to {}", path.display()));
        } else {
            not_written.push(path);
        }
    }
    if args.json {
        output.json(&serde_json::to_string_pretty(&report)?);
    }

    Ok(report_outcome(args, output, &outcome, &optimizer, &not_written))
}

/// Prints why the run ended early or why a model file was not written, and
/// returns the exit code: divergence first, then a file not written, then Ctrl-C.
fn report_outcome(
    args: &TrainArgs,
    output: &Output,
    outcome: &TrainOutcome,
    optimizer: &Optimizer,
    not_written: &[&PathBuf],
) -> ExitCode {
    if let Some(Halt::Diverged { epoch }) = outcome.halt {
        let standardize = match (args.standardize, args.standardize_target) {
            (true, true) => String::new(),
            (true, false) => " --standardize-target".to_string(),
            (false, true) => " --standardize".to_string(),
            (false, false) => " --standardize --standardize-target".to_string(),
        };
        if outcome.epochs_done == 0 && !outcome.logs.first().is_some_and(|e| e.train.loss.is_finite()) {
            output.error(&format!(
                "training diverged at epoch {epoch}: the loss of the initial parameters is not finite, because the \
                 targets or features are too large for float32 once squared (above about 1e19). Scale the data, or \
                 standardize it ({})",
                standardize.trim_start()
            ));
        } else {
            output.error(&format!(
                "training diverged at epoch {epoch}: the loss or a gradient was not finite, or the update would have made \
                 a parameter non-finite, so training stopped and kept the last parameters with a finite loss. \
                 Try a smaller learning rate (--lr {:.1e}){}",
                f64::from(optimizer.lr()) / 10.0,
                if standardize.is_empty() {
                    String::new()
                } else {
                    format!(" or standardized data ({})", standardize.trim_start())
                }
            ));
        }
    }
    for path in not_written {
        output.error(&format!(
            "the parameters are not finite, so {} was not written",
            path.display()
        ));
    }
    if matches!(outcome.halt, Some(Halt::Diverged { .. })) {
        return ExitCode::from(EXIT_DIVERGED);
    }
    if !not_written.is_empty() {
        return ExitCode::FAILURE;
    }
    if outcome.interrupted {
        let files = [
            &args.report,
            &args.history,
            &args.plot,
            &args.save,
            &args.save_safetensors,
        ];
        let outputs_note = if files.iter().any(|path| path.is_some()) {
            "; the requested files hold the parameters so far"
        } else {
            ""
        };
        output.error(&format!(
            "interrupted after {} of {} epochs{outputs_note}",
            outcome.epochs_done, args.epochs
        ));
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    ExitCode::SUCCESS
}

/// Logs the size of a data set at info level.
/// Applies a model file's saved standardization to the loaded data.
fn apply_saved_standardization(
    standardization: &Standardization,
    train: &mut Table,
    validation: Option<&mut Table>,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let widths = [
        (standardization.features.as_ref(), train.inputs, "features"),
        (standardization.targets.as_ref(), train.outputs, "targets"),
    ];
    for (zscore, width, name) in widths {
        if let Some(zscore) = zscore
            && zscore.mean.len() != width
        {
            bail!(
                "{} standardizes {} {name}, but the data has {width}; check --features and --target",
                path.display(),
                zscore.mean.len()
            );
        }
    }
    let mut tables = vec![train];
    tables.extend(validation);
    for table in tables {
        if let Some(zscore) = &standardization.features {
            zscore.apply(&mut table.features);
        }
        if let Some(zscore) = &standardization.targets {
            zscore.apply(&mut table.targets);
        }
    }
    Ok(())
}

fn describe_standardization(standardization: &Standardization) -> &'static str {
    match (standardization.features.is_some(), standardization.targets.is_some()) {
        (true, true) => "feature and target",
        (true, false) => "feature",
        (false, true) => "target",
        (false, false) => "no",
    }
}

/// Checks that a model file given to --init fits the requested model: the
/// activations must match, and different column names get a warning.
fn check_init_model(
    model: &ModelFile,
    path: &std::path::Path,
    architecture: &Architecture,
    features: &[String],
    targets: &[String],
    output: &Output,
) -> anyhow::Result<()> {
    if model.activations != architecture.activations {
        let saved: Vec<String> = model.activations.iter().map(ToString::to_string).collect();
        bail!(
            "{} was trained with activations {}, but --activation gives {}; pass --activation {}",
            path.display(),
            saved.join(","),
            architecture
                .activations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            saved.join(",")
        );
    }
    if model.features != features || model.targets != targets {
        output.warn(&format!(
            "{} was trained on features {} and targets {}; this run uses features {} and targets {}",
            path.display(),
            model.features.join(","),
            model.targets.join(","),
            features.join(","),
            targets.join(",")
        ));
    }
    Ok(())
}

fn log_data_size(name: &str, table: &Table) {
    let values = table.features.len() + table.targets.len();
    log::info!(
        "{name} data: {} rows of {} feature and {} target columns, {} float32 values ({} bytes)",
        table.rows(),
        table.inputs,
        table.outputs,
        values,
        values * std::mem::size_of::<f32>()
    );
}

/// Joins paths for a message: `a, b and c`.
fn describe_paths(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|path| path.display().to_string()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

fn parse_hidden(text: &str) -> anyhow::Result<Vec<usize>> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|width| match width.trim().parse::<usize>() {
            Ok(width) if width > 0 => Ok(width),
            _ => bail!(
                "invalid hidden layer width '{width}' in --hidden {text}: expected positive integers such as 16,8"
            ),
        })
        .collect()
}

fn build_optimizer(args: &TrainArgs) -> anyhow::Result<Optimizer> {
    let kind = OptimizerKind::parse(&args.optimizer).map_err(anyhow::Error::msg)?;
    let betas: Vec<f32> = args
        .betas
        .split(',')
        .map(|b| b.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .ok()
        .filter(|b: &Vec<f32>| b.len() == 2)
        .with_context(|| {
            format!(
                "invalid --betas '{}': expected two numbers such as 0.9,0.999",
                args.betas
            )
        })?;
    let mut optimizer = Optimizer::with_defaults(kind, args.lr);
    match &mut optimizer {
        Optimizer::Adam {
            betas: b,
            eps,
            weight_decay,
            ..
        }
        | Optimizer::AdamW {
            betas: b,
            eps,
            weight_decay,
            ..
        } => {
            *b = (betas[0], betas[1]);
            *eps = args.eps;
            if let Some(decay) = args.weight_decay {
                *weight_decay = decay;
            }
        }
        Optimizer::Sgd {
            momentum,
            dampening,
            nesterov,
            weight_decay,
            ..
        } => {
            *momentum = args.momentum;
            *dampening = args.dampening;
            *nesterov = args.nesterov;
            if let Some(decay) = args.weight_decay {
                *weight_decay = decay;
            }
        }
    }
    if !matches!(optimizer, Optimizer::Sgd { .. }) && (args.momentum != 0.0 || args.dampening != 0.0 || args.nesterov) {
        bail!("--momentum, --dampening and --nesterov apply to --optimizer sgd only");
    }
    optimizer.validate().map_err(anyhow::Error::msg)?;
    Ok(optimizer)
}

/// Joins column names for the start-up line, the first eight of long lists.
fn list_names(names: &[String]) -> String {
    const SHOWN: usize = 8;
    if names.len() <= SHOWN {
        return names.join(", ");
    }
    format!("{}, ... ({} in all)", names[..SHOWN].join(", "), names.len())
}

/// Formats a metric with 4 decimals, or in scientific notation when it is
/// so large or small that fixed decimals would print dozens of digits or none.
fn metric(value: f64) -> String {
    let magnitude = value.abs();
    if value.is_finite() && value != 0.0 && !(1e-3..1e9).contains(&magnitude) {
        format!("{value:.6e}")
    } else {
        format!("{value:.4}")
    }
}

fn format_log_line(entry: &train::LogEntry, has_validation: bool) -> String {
    let mut line = format!("epoch {:>7}  loss {}", entry.epoch, metric(entry.train.loss));
    if has_validation && let Some(validation) = &entry.validation {
        line.push_str(&format!(
            "  val_loss {}  val_r2 {}",
            metric(validation.loss),
            metric(validation.r2)
        ));
    }
    line
}

fn print_results(output: &Output, outcome: &TrainOutcome, architecture: &Architecture, has_validation: bool) {
    let train = &outcome.final_train;
    output.result(&format!(
        "final loss {} after {} epochs (mse {}, rmse {}, mae {}, r2 {})",
        metric(train.loss),
        outcome.epochs_done,
        metric(train.mse),
        metric(train.rmse),
        metric(train.mae),
        metric(train.r2)
    ));
    if has_validation && let Some(validation) = &outcome.final_validation {
        output.result(&format!(
            "validation loss {} (mse {}, rmse {}, mae {}, r2 {})",
            metric(validation.loss),
            metric(validation.mse),
            metric(validation.rmse),
            metric(validation.mae),
            metric(validation.r2)
        ));
    }
    if let Some(Halt::EarlyStopped { epoch, best_epoch }) = outcome.halt {
        output.result(&format!(
            "early stop at epoch {epoch}: the validation loss last improved at epoch {best_epoch}, whose parameters are kept"
        ));
    }
    output.result("parameters:");
    let parameters = Parameters::from_flat(architecture, &outcome.parameters);
    for (l, layer) in parameters.layers.iter().enumerate() {
        output.result(&format!("  layers.{}.weight {:?}", 2 * l, layer.weight));
        output.result(&format!("  layers.{}.bias {:?}", 2 * l, layer.bias));
    }
    output.result(&format!(
        "time {:.3} s, {:.0} epochs/s",
        outcome.seconds,
        outcome.epochs_per_second()
    ));
}
