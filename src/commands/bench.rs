//! `shadertrain bench`: times fixed, seeded training workloads on every backend.
//!
//! Per workload and backend, the bench first trains a few warm-up epochs on
//! a freshly built backend, untimed, which also compiles the shaders. Then
//! it times `repeats` runs of `epochs` epochs. Each run builds its own backend
//! from the same initial parameters, untimed, so every run trains the same
//! model from the same start and the runs are deterministic. The time of a
//! run is [`TrainOutcome::seconds`], the wall time of the training loop
//! without set-up, and the bench reports the median over the runs.
//!
//! Nothing here checks timings: the bench measures and prints, and the
//! reader judges.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use shadertrain::cpu::CpuBackend;
use shadertrain::data::{self, ColumnSelection, CsvOptions};
use shadertrain::gpu::{self, AdapterSummary, GpuContext, KernelChoice, fused};
use shadertrain::loss::Loss;
use shadertrain::model::{Activation, Architecture, init};
use shadertrain::optim::{Optimizer, OptimizerKind};
use shadertrain::prepare::Table;
use shadertrain::report;
use shadertrain::schedule::Batching;
use shadertrain::train::{self, Backend, DriverOptions, TrainOutcome, TrainSpec, TrainingData};

use crate::cli::{BenchArgs, BenchBackend, BenchWorkload, DeviceArg};
use crate::output::Output;

/// Seed of `torch_linear_init` for every workload: the textbook's seed.
const INIT_SEED: u64 = 4603;
/// The synthetic workloads.
const WIDE_100K: Synthetic = Synthetic {
    name: "wide-100k",
    rows: 100_000,
    features: 32,
    hidden: 128,
    seed: 100,
    epochs: 20,
};
const TALL_1M: Synthetic = Synthetic {
    name: "tall-1m",
    rows: 1_000_000,
    features: 16,
    hidden: 64,
    seed: 101,
    epochs: 5,
};
/// The textbook data, relative to the working directory.
const TEXTBOOK_DATA: &str = "data/diabetes.csv";

/// Format name and version of the `--json` file.
const JSON_FORMAT: &str = "shadertrain-bench";
const JSON_VERSION: u32 = 1;

/// Every workload, in the order the bench runs them.
const ALL_WORKLOADS: [BenchWorkload; 5] = [
    BenchWorkload::TextbookRelu,
    BenchWorkload::TextbookSigmoid,
    BenchWorkload::TextbookTanh,
    BenchWorkload::Wide100k,
    BenchWorkload::Tall1m,
];

/// Every backend, in the order the bench runs and prints them.
const ALL_BACKENDS: [BenchBackend; 3] = [BenchBackend::Fused, BenchBackend::General, BenchBackend::Cpu];

pub fn run(args: &BenchArgs, output: &Output, interrupt: Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    if args.epochs == Some(0) {
        bail!("--epochs must be at least 1");
    }
    if args.repeats == Some(0) {
        bail!("--repeats must be at least 1");
    }
    let workloads = args.workloads.clone().unwrap_or_else(|| ALL_WORKLOADS.to_vec());
    let backends = select_backends(args)?;

    let context = open_device(args.device, &backends, output)?;
    let backends: Vec<BenchBackend> = backends
        .into_iter()
        .filter(|backend| *backend == BenchBackend::Cpu || context.is_some())
        .collect();
    if backends.is_empty() {
        bail!("no backend left to run: without a GPU adapter only the cpu backend can run; add cpu to --backends");
    }

    let machine = Machine::describe();
    let adapter = context.as_ref().map(|c| c.adapter.clone());
    output.result(&format!("shadertrain {} bench", env!("CARGO_PKG_VERSION")));
    output.result(&format!(
        "adapter: {}",
        adapter
            .as_ref()
            .map_or("none (GPU backends not run)".to_string(), ToString::to_string)
    ));
    output.result(&format!("cpu: {machine}"));

    let mut measurements = Vec::new();
    let mut skipped = Vec::new();
    let mut failed = Vec::new();
    for &name in &workloads {
        let workload = Workload::build(name, args.quick)?;
        output.info(&format!("workload {}: {}", workload.name, workload.description));
        let first = measurements.len();
        for &backend in &backends {
            let gpu = context.as_ref();
            let not_measured = |reason: String| NotMeasured {
                workload: workload.name.to_string(),
                backend: backend_name(backend).to_string(),
                reason,
            };
            match measure(&workload, backend, gpu, args, &interrupt, output) {
                Ok(Ok(measurement)) => measurements.push(measurement),
                Ok(Err(reason)) => {
                    output.info(&format!("  {}: skipped: {reason}", backend_name(backend)));
                    skipped.push(not_measured(reason));
                }
                Err(error) if interrupt.load(Ordering::SeqCst) => return Err(error),
                // A failed backend does not stop the bench, so the other measurements still get reported.
                Err(error) => {
                    output.error(&format!(
                        "{} on {} failed: {error:#}",
                        workload.name,
                        backend_name(backend)
                    ));
                    failed.push(not_measured(format!("{error:#}")));
                }
            }
        }
        set_ratios_to_cpu(&mut measurements[first..]);
    }

    output.result("");
    for line in format_table(&measurements) {
        output.result(&line);
    }
    for entry in &skipped {
        output.result(&format!(
            "skipped {} on {}: {}",
            entry.workload, entry.backend, entry.reason
        ));
    }

    if let Some(path) = &args.json {
        let report = BenchReport {
            format: JSON_FORMAT,
            version: JSON_VERSION,
            shadertrain_version: env!("CARGO_PKG_VERSION"),
            unix_time: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            machine,
            adapter,
            settings: Settings {
                quick: args.quick,
                device: format!("{:?}", args.device).to_lowercase(),
                epochs: args.epochs,
                repeats: args.repeats,
            },
            measurements,
            skipped,
            failed: failed.clone(),
        };
        report::write_json(path, &report)?;
        output.info(&format!("results written to {}", path.display()));
    }
    if !failed.is_empty() {
        let names: Vec<String> = failed
            .iter()
            .map(|f| format!("{} on {}", f.workload, f.backend))
            .collect();
        output.error(&format!(
            "{} measurement(s) failed: {}; the errors are printed above",
            failed.len(),
            names.join(", ")
        ));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Returns the backends that `--backends` and `--device` allow, in [`ALL_BACKENDS`] order.
fn select_backends(args: &BenchArgs) -> anyhow::Result<Vec<BenchBackend>> {
    let requested = args.backends.clone().unwrap_or_else(|| ALL_BACKENDS.to_vec());
    let allowed: Vec<BenchBackend> = ALL_BACKENDS
        .into_iter()
        .filter(|backend| requested.contains(backend))
        .filter(|backend| args.device != DeviceArg::Cpu || *backend == BenchBackend::Cpu)
        .collect();
    if allowed.is_empty() {
        bail!("--device cpu runs only the cpu backend, but --backends does not list cpu");
    }
    Ok(allowed)
}

/// Opens the GPU when a GPU backend is to run. With `--device auto` and no
/// adapter, the bench warns and runs the cpu backend only.
fn open_device(device: DeviceArg, backends: &[BenchBackend], output: &Output) -> anyhow::Result<Option<GpuContext>> {
    if device == DeviceArg::Cpu || backends.iter().all(|b| *b == BenchBackend::Cpu) {
        return Ok(None);
    }
    match GpuContext::new() {
        Ok(context) => Ok(Some(context)),
        Err(error) if device == DeviceArg::Auto => {
            output.warn(&format!("{error}; running the cpu backend only"));
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

fn backend_name(backend: BenchBackend) -> &'static str {
    match backend {
        BenchBackend::Fused => "fused",
        BenchBackend::General => "general",
        BenchBackend::Cpu => "cpu",
    }
}

// ----------------------------------------------------------------------------
// Workloads

/// Epochs and repetitions of one workload on one backend.
#[derive(Clone, Copy, Debug)]
struct RunLength {
    warmup_epochs: u64,
    epochs: u64,
    repeats: usize,
}

/// One fixed training problem.
struct Workload {
    name: &'static str,
    description: String,
    table: Table,
    architecture: Architecture,
    optimizer: Optimizer,
    length: RunLength,
    /// Epochs of the general path's runs, where they differ from `length.epochs`.
    general_epochs: u64,
}

impl Workload {
    fn build(name: BenchWorkload, quick: bool) -> anyhow::Result<Self> {
        match name {
            BenchWorkload::TextbookRelu => Self::textbook("textbook-relu", Activation::Relu, quick),
            BenchWorkload::TextbookSigmoid => Self::textbook("textbook-sigmoid", Activation::Sigmoid, quick),
            BenchWorkload::TextbookTanh => Self::textbook("textbook-tanh", Activation::Tanh, quick),
            BenchWorkload::Wide100k => Ok(Self::synthetic(&WIDE_100K, quick)),
            BenchWorkload::Tall1m => Ok(Self::synthetic(&TALL_1M, quick)),
        }
    }

    /// Builds the textbook job with `activation`: 2 -> 5 -> 1 on bmi and s6
    /// of the diabetes data, Adam at lr 1, full batch.
    fn textbook(name: &'static str, activation: Activation, quick: bool) -> anyhow::Result<Self> {
        let features = ["bmi".to_string(), "s6".to_string()];
        let targets = ["target".to_string()];
        let columns = ColumnSelection {
            features: &features,
            targets: &targets,
            targets_required: true,
        };
        let dataset =
            data::load_csv(Path::new(TEXTBOOK_DATA), &columns, &CsvOptions::default()).with_context(|| {
                format!("the textbook workloads read {TEXTBOOK_DATA}: run the bench from the repository root")
            })?;
        let table = Table {
            inputs: dataset.inputs(),
            outputs: dataset.outputs(),
            features: dataset.features,
            targets: dataset.targets,
        };

        let architecture = Architecture::new(2, &[5], 1, &[activation])?;
        let length = RunLength {
            warmup_epochs: 100,
            epochs: if quick { 2_000 } else { 40_000 },
            repeats: if quick { 3 } else { 5 },
        };

        // The general path records a dozen dispatches per step, so on this
        // small problem it runs about a thousand epochs per second on lavapipe
        // (2-core x86-64) and gets a tenth of the epochs.
        let general_epochs = length.epochs / 10;

        Ok(Self {
            name,
            description: format!(
                "{TEXTBOOK_DATA} (bmi, s6 -> target), {} rows, {}, MSE, Adam lr 1, full batch",
                table.rows(),
                architecture.describe()
            ),
            table,
            architecture,
            optimizer: Optimizer::with_defaults(OptimizerKind::Adam, 1.0),
            length,
            general_epochs,
        })
    }

    /// Builds a workload on [`synthetic_table`] data: `features -> hidden (relu) -> 1`,
    /// Adam at lr 0.001, full batch, the same epochs on every backend.
    fn synthetic(workload: &Synthetic, quick: bool) -> Self {
        let Synthetic {
            name,
            rows,
            features,
            hidden,
            seed,
            epochs,
        } = *workload;
        let table = synthetic_table(rows, features, seed);
        let architecture =
            Architecture::new(features, &[hidden], 1, &[Activation::Relu]).expect("the workload's sizes are positive");
        let length = RunLength {
            warmup_epochs: 1,
            epochs: if quick { 2 } else { epochs },
            repeats: if quick { 1 } else { 3 },
        };
        Self {
            name,
            description: format!(
                "{rows} rows x {features} features of seeded synthetic data (seed {seed}), {}, MSE, Adam lr 0.001, full batch",
                architecture.describe()
            ),
            table,
            architecture,
            optimizer: Optimizer::with_defaults(OptimizerKind::Adam, 0.001),
            length,
            general_epochs: length.epochs,
        }
    }

    /// Returns the default run length on `backend`.
    fn run_length(&self, backend: BenchBackend) -> RunLength {
        match backend {
            BenchBackend::General => RunLength {
                epochs: self.general_epochs,
                ..self.length
            },
            BenchBackend::Fused | BenchBackend::Cpu => self.length,
        }
    }

    fn spec(&self, epochs: u64) -> TrainSpec {
        TrainSpec {
            architecture: self.architecture.clone(),
            loss: Loss::Mse,
            optimizer: self.optimizer,
            epochs,
            // Only epoch 0 is logged, so logging costs no read-backs during the run.
            log_every: u64::MAX,
            batching: Batching::Full,
            early_stop: None,
        }
    }

    fn data(&self) -> TrainingData<'_> {
        TrainingData {
            train: self.table.samples(),
            validation: None,
            target_scale: None,
        }
    }
}

/// Size, data seed and default epochs of a synthetic workload.
#[derive(Clone, Copy, Debug)]
struct Synthetic {
    name: &'static str,
    rows: usize,
    features: usize,
    hidden: usize,
    seed: u64,
    epochs: u64,
}

/// Generates `rows` rows of `features` features drawn uniformly from
/// [-1, 1), and the target `sin(2 z) + 0.1 e`, where `z = x . w` is a fixed
/// random projection scaled to unit variance and `e` is uniform noise in
/// [-1, 1). All draws come from a ChaCha8 generator seeded with `seed`:
/// first `w`, then each row's features followed by its noise.
fn synthetic_table(rows: usize, features: usize, seed: u64) -> Table {
    let mut generator = ChaCha8Rng::seed_from_u64(seed);
    // Each feature and each raw weight has variance 1/3, so a scale of
    // 3 / sqrt(features) gives z unit variance.
    let scale = 3.0 / (features as f32).sqrt();
    let projection: Vec<f32> = (0..features)
        .map(|_| generator.random_range(-1.0_f32..1.0) * scale)
        .collect();

    let mut values = Vec::with_capacity(rows * features);
    let mut targets = Vec::with_capacity(rows);
    for _ in 0..rows {
        let mut z = 0.0_f32;
        for weight in &projection {
            let x = generator.random_range(-1.0_f32..1.0);
            z += x * weight;
            values.push(x);
        }
        let noise = generator.random_range(-1.0_f32..1.0);
        targets.push((2.0 * z).sin() + 0.1 * noise);
    }
    Table {
        inputs: features,
        outputs: 1,
        features: values,
        targets,
    }
}

// ----------------------------------------------------------------------------
// Measurement

/// The results of one workload on one backend.
#[derive(Debug, Serialize)]
struct Measurement {
    workload: String,
    backend: String,
    /// The kernel path with its plan, or `cpu-reference`.
    kernel: String,
    model: String,
    parameters: usize,
    rows: usize,
    optimizer: String,
    loss: String,
    warmup_epochs: u64,
    epochs: u64,
    repeats: usize,
    /// Wall time of each run's training loop, in seconds.
    seconds: Vec<f64>,
    /// Epochs per second of each run.
    epochs_per_second: Vec<f64>,
    median_epochs_per_second: f64,
    /// Rows times the median epochs per second: rows processed per second.
    median_row_epochs_per_second: f64,
    /// Median epochs per second divided by the cpu backend's, when it ran.
    ratio_to_cpu: Option<f64>,
    /// Full-data loss of the initial parameters (epoch 0).
    #[serde(with = "report::finite_or_null")]
    initial_loss: f64,
    /// Loss after each run's last update.
    final_loss: Vec<f64>,
}

/// A workload and backend without a measurement: the backend cannot run
/// the workload (`skipped`), or it failed with an error (`failed`).
#[derive(Clone, Debug, Serialize)]
struct NotMeasured {
    workload: String,
    backend: String,
    reason: String,
}

/// Measures `workload` on `backend`. The inner `Err` is the reason the
/// backend cannot run this workload.
fn measure(
    workload: &Workload,
    backend: BenchBackend,
    context: Option<&GpuContext>,
    args: &BenchArgs,
    interrupt: &Arc<AtomicBool>,
    output: &Output,
) -> anyhow::Result<Result<Measurement, String>> {
    let default_length = workload.run_length(backend);
    let length = RunLength {
        warmup_epochs: default_length.warmup_epochs,
        epochs: args.epochs.unwrap_or(default_length.epochs),
        repeats: args.repeats.unwrap_or(default_length.repeats),
    };
    let initial = init::torch_linear_init(&workload.architecture, INIT_SEED).to_flat();
    let name = backend_name(backend);

    if backend == BenchBackend::Fused {
        let gpu = context.expect("GPU backends run only with a device");
        let spec = workload.spec(length.epochs);
        if let Err(reason) = fused::plan(gpu, &spec, workload.data(), fused::FusedOptions::default()) {
            return Ok(Err(reason));
        }
    }

    let mut kernel = String::new();
    let mut run_once = |epochs: u64| -> anyhow::Result<Result<TrainOutcome, String>> {
        let spec = workload.spec(epochs);
        let data = workload.data();
        let mut trainer: Box<dyn Backend + '_> = match (backend, context) {
            (BenchBackend::Cpu, _) => {
                kernel = "cpu-reference".to_string();
                Box::new(CpuBackend::new(&spec, data, initial.clone()))
            }
            (_, Some(gpu)) => {
                let choice = if backend == BenchBackend::Fused {
                    KernelChoice::Fused
                } else {
                    KernelChoice::General
                };
                match gpu::create_backend(gpu, &spec, data, &initial, choice) {
                    Ok((trainer, path)) => {
                        kernel = path.to_string();
                        trainer
                    }
                    Err(train::TrainError::Invalid(reason)) => return Ok(Err(reason)),
                    Err(error) => return Err(error.into()),
                }
            }
            (_, None) => unreachable!("GPU backends run only with a device"),
        };
        let options = DriverOptions {
            interrupt: Some(interrupt.clone()),
            target_chunk_time: None,
        };
        let outcome = train::run(trainer.as_mut(), &spec, data, &options, |_| {})?;
        if outcome.interrupted {
            bail!("interrupted; the bench stopped without printing or writing results");
        }
        Ok(Ok(outcome))
    };

    if length.warmup_epochs > 0
        && let Err(reason) = run_once(length.warmup_epochs)?
    {
        return Ok(Err(reason));
    }
    let mut outcomes = Vec::with_capacity(length.repeats);
    for _ in 0..length.repeats {
        match run_once(length.epochs)? {
            Ok(outcome) => outcomes.push(outcome),
            Err(reason) => return Ok(Err(reason)),
        }
    }

    let measurement = summarize(workload, name, kernel, length, &outcomes);
    output.info(&format!(
        "  {name}: {} epochs x {} runs, median {} epochs/s, final loss {} ({})",
        measurement.epochs,
        measurement.repeats,
        format_rate(measurement.median_epochs_per_second),
        format_loss(measurement.final_loss[0]),
        measurement.kernel
    ));
    warn_if_unequal(workload.name, name, &outcomes, output);
    Ok(Ok(measurement))
}

fn summarize(
    workload: &Workload,
    backend: &str,
    kernel: String,
    length: RunLength,
    outcomes: &[TrainOutcome],
) -> Measurement {
    let rates: Vec<f64> = outcomes.iter().map(TrainOutcome::epochs_per_second).collect();
    let median_rate = median(&rates);
    Measurement {
        workload: workload.name.to_string(),
        backend: backend.to_string(),
        kernel,
        model: workload.architecture.describe(),
        parameters: workload.architecture.parameter_count(),
        rows: workload.table.rows(),
        optimizer: workload.optimizer.to_string(),
        loss: Loss::Mse.to_string(),
        warmup_epochs: length.warmup_epochs,
        epochs: length.epochs,
        repeats: length.repeats,
        seconds: outcomes.iter().map(|o| o.seconds).collect(),
        epochs_per_second: rates,
        median_epochs_per_second: median_rate,
        median_row_epochs_per_second: median_rate * workload.table.rows() as f64,
        ratio_to_cpu: None,
        initial_loss: outcomes
            .first()
            .and_then(|o| o.logs.first())
            .map_or(f64::NAN, |entry| entry.train.loss),
        final_loss: outcomes.iter().map(|o| o.final_train.loss).collect(),
    }
}

/// Warns when the runs of one measurement did not train identically, or
/// stopped early, because then the runs did not all do the same work.
fn warn_if_unequal(workload: &str, backend: &str, outcomes: &[TrainOutcome], output: &Output) {
    if let Some(first) = outcomes.first()
        && outcomes
            .iter()
            .any(|o| o.final_train.loss.to_bits() != first.final_train.loss.to_bits())
    {
        output.warn(&format!(
            "{workload} on {backend}: the runs ended with different losses, although each starts from the same seeded state"
        ));
    }
    for outcome in outcomes {
        if let Some(halt) = outcome.halt {
            output.warn(&format!(
                "{workload} on {backend}: a run stopped early ({halt:?}); its epochs per second count only the epochs done"
            ));
        }
    }
}

/// Sets each measurement's ratio to the cpu backend's median in the same workload.
fn set_ratios_to_cpu(measurements: &mut [Measurement]) {
    let cpu_rate = measurements
        .iter()
        .find(|m| m.backend == backend_name(BenchBackend::Cpu))
        .map(|m| m.median_epochs_per_second);
    if let Some(cpu_rate) = cpu_rate.filter(|rate| *rate > 0.0) {
        for measurement in measurements {
            measurement.ratio_to_cpu = Some(measurement.median_epochs_per_second / cpu_rate);
        }
    }
}

/// Returns the median, or the mean of the two middle values for an even count.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

// ----------------------------------------------------------------------------
// Machine description and output

/// The host the bench ran on.
#[derive(Debug, Serialize)]
struct Machine {
    /// `model name` of the first processor in /proc/cpuinfo.
    cpu_model: String,
    logical_cpus: usize,
    /// `MemTotal` of /proc/meminfo.
    memory_bytes: Option<u64>,
    os: &'static str,
    arch: &'static str,
}

impl Machine {
    fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim()))
            .unwrap_or("unknown")
            .to_string();
        let processors = cpuinfo.lines().filter(|line| line.starts_with("processor")).count();
        let logical_cpus = if processors > 0 {
            processors
        } else {
            std::thread::available_parallelism().map_or(0, |n| n.get())
        };
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo.lines().find_map(|line| {
            let kib = line.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?;
            kib.trim().parse::<u64>().ok().map(|kib| kib * 1024)
        });
        Self {
            cpu_model,
            logical_cpus,
            memory_bytes,
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, {} logical CPUs", self.cpu_model, self.logical_cpus)?;
        if let Some(bytes) = self.memory_bytes {
            write!(f, ", {:.1} GiB memory", bytes as f64 / f64::from(1 << 30))?;
        }
        Ok(())
    }
}

/// Run settings as given on the command line (`None`: the workload's default).
#[derive(Debug, Serialize)]
struct Settings {
    quick: bool,
    device: String,
    epochs: Option<u64>,
    repeats: Option<usize>,
}

/// The `--json` file.
#[derive(Debug, Serialize)]
struct BenchReport {
    format: &'static str,
    version: u32,
    shadertrain_version: &'static str,
    /// Seconds since 1970-01-01 UTC when the bench finished.
    unix_time: u64,
    machine: Machine,
    adapter: Option<AdapterSummary>,
    settings: Settings,
    measurements: Vec<Measurement>,
    skipped: Vec<NotMeasured>,
    failed: Vec<NotMeasured>,
}

fn format_table(measurements: &[Measurement]) -> Vec<String> {
    let header = [
        "workload",
        "backend",
        "epochs",
        "runs",
        "median epochs/s",
        "rows x epochs/s",
        "vs cpu",
        "initial loss",
        "final loss",
    ];
    let rows: Vec<[String; 9]> = measurements
        .iter()
        .map(|m| {
            [
                m.workload.clone(),
                m.backend.clone(),
                m.epochs.to_string(),
                m.repeats.to_string(),
                format_rate(m.median_epochs_per_second),
                format_rate(m.median_row_epochs_per_second),
                m.ratio_to_cpu.map_or("-".to_string(), |r| format!("{r:.2}x")),
                format_loss(m.initial_loss),
                format_loss(m.final_loss.first().copied().unwrap_or(f64::NAN)),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    // Text columns are left-aligned, numbers right-aligned.
    let format_row = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(c, (cell, width))| {
                if c < 2 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut lines = vec![format_row(&header.map(String::from))];
    lines.extend(rows.iter().map(|row| format_row(row)));
    lines
}

/// Formats a rate: whole numbers with thousands separators from 100 up,
/// three significant digits below.
fn format_rate(rate: f64) -> String {
    if !rate.is_finite() {
        return rate.to_string();
    }
    if rate >= 100.0 {
        let digits = format!("{:.0}", rate);
        let mut grouped = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        grouped
    } else if rate >= 10.0 {
        format!("{rate:.1}")
    } else if rate >= 1.0 {
        format!("{rate:.2}")
    } else {
        format!("{rate:.3}")
    }
}

fn format_loss(loss: f64) -> String {
    if loss.abs() >= 100.0 {
        format!("{loss:.2}")
    } else {
        format!("{loss:.5}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn rate_formatting() {
        assert_eq!(format_rate(287_472.4), "287,472");
        assert_eq!(format_rate(100.0), "100");
        assert_eq!(format_rate(12.34), "12.3");
        assert_eq!(format_rate(5.678), "5.68");
        assert_eq!(format_rate(0.1104), "0.110");
    }

    #[test]
    fn synthetic_data_is_seeded() {
        let first = synthetic_table(50, 4, 7);
        let again = synthetic_table(50, 4, 7);
        let other = synthetic_table(50, 4, 8);
        assert_eq!(first, again);
        assert_ne!(first.features, other.features);
        assert_eq!(first.rows(), 50);
        assert!(first.features.iter().all(|x| (-1.0..1.0).contains(x)));
        assert!(first.targets.iter().all(|y| y.abs() <= 1.1));
    }
}
