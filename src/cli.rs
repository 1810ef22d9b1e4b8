//! Command-line interface definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Train small neural networks for regression on any GPU, with WGSL compute shaders through wgpu";

const EXAMPLES: &str = "\
Examples:
  shadertrain train
      The textbook job: Linear(2,5) -> ReLU -> Linear(5,1) on data/diabetes.csv
      (features bmi, s6), MSE loss, Adam at lr 1, 40000 full-batch epochs.
  shadertrain train --hidden 16,8 --activation tanh --lr 0.01 --standardize \\
      --features age,sex,bmi,bp,s1,s2,s3,s4,s5,s6 --val-fraction 0.2 --save model.json
  shadertrain predict --model model.json --data data/diabetes.csv --output predictions.csv
  shadertrain train --epochs 5000 --val-fraction 0.2 --plot plots --history history.csv
      Draws plots/loss.png, plots/fit.png (and SVG) and writes the metrics by epoch as CSV.
  shadertrain plot run.json --output plots --model model.json
  shadertrain devices

Each command has its own examples: shadertrain help COMMAND.";

#[derive(Debug, Parser)]
#[command(name = "shadertrain", version, about = ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Print less: only results, no progress or start-up lines
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more: adapter limits, kernel choices and timings (repeat for debug output; RUST_LOG overrides)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model on a CSV file (with no options: the textbook diabetes job)
    #[command(after_help = TRAIN_EXAMPLES)]
    Train(Box<TrainArgs>),
    /// List the GPU adapters wgpu finds and which one --device auto picks
    #[command(after_help = DEVICES_EXAMPLES)]
    Devices(DevicesArgs),
    /// Predict with a saved model and write the input rows with prediction columns added
    #[command(after_help = PREDICT_EXAMPLES)]
    Predict(PredictArgs),
    /// Report the metrics of a saved model on a CSV file with targets
    #[command(after_help = EVAL_EXAMPLES)]
    Eval(EvalArgs),
    /// Draw the loss curve of a saved report, and the fit of a saved model, as PNG and SVG
    #[command(after_help = PLOT_EXAMPLES)]
    Plot(PlotArgs),
    /// Time fixed, seeded training workloads on each backend (GPU kernel paths and the CPU reference)
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
}

const TRAIN_EXAMPLES: &str = "\
Examples:
  shadertrain train                                  # the textbook job on the best adapter
  shadertrain train --device cpu                     # the same on the CPU reference trainer
  shadertrain train --epochs 2000 --log-every 100 --report run.json --save model.json
  shadertrain train --init model.json --epochs 0     # evaluate saved parameters
  shadertrain train --epochs 5000 --val-fraction 0.2 --plot plots --history history.csv
      # plots/loss.png, plots/loss.svg, plots/fit.png, plots/fit.svg and the metrics by epoch as CSV
  shadertrain train --epochs 2000 --json > run.json  # the report on standard output, results on standard error

On a terminal, a progress bar on standard error shows the epoch, epochs/s, the estimated time left and
the latest logged loss; with --quiet, or when standard error is not a terminal, there is no bar.
Ctrl-C stops training at the end of the current chunk of epochs (within about a second), writes the
requested files with the parameters so far (the report and the model file record \"interrupted\": true)
and exits with code 130.

Exit codes: 0 success, 1 error, 2 command-line syntax error, 3 training diverged, 130 interrupted.";

/// Data file and the columns to use.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// CSV file with a header row
    #[arg(long, default_value = "data/diabetes.csv", value_name = "FILE")]
    pub data: PathBuf,

    /// Feature columns, comma-separated, in input order
    #[arg(long, default_value = "bmi,s6", value_delimiter = ',', value_name = "COLUMNS")]
    pub features: Vec<String>,

    /// Target columns, comma-separated (several for multi-output regression)
    #[arg(long, default_value = "target", value_delimiter = ',', value_name = "COLUMNS")]
    pub target: Vec<String>,

    /// Field delimiter of the CSV files: a character, or comma, semicolon, tab, pipe, space
    #[arg(long, default_value = ",", value_name = "CHAR")]
    pub delimiter: String,

    /// Skip rows with a missing value (empty, NA, NaN, null, ...) in a used column instead of failing
    #[arg(long)]
    pub drop_missing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// The best GPU adapter (hardware first, then a software one such as lavapipe), else the CPU reference
    Auto,
    /// A GPU adapter through wgpu; fail if there is none
    Gpu,
    /// The CPU reference trainer (plain Rust loops, no wgpu)
    Cpu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KernelArg {
    /// Fused for problems that fit one workgroup, general otherwise
    Auto,
    /// One workgroup runs many whole optimizer steps per dispatch (small problems)
    Fused,
    /// One kernel per layer operation over many workgroups (large problems)
    General,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Widths of the hidden layers, comma-separated (for example 64,32,16); "none" for a linear model
    #[arg(long, default_value = "5", value_name = "WIDTHS")]
    pub hidden: String,

    /// Activation after each hidden layer: one for all, or one per layer, comma-separated.
    /// relu, sigmoid, tanh, leaky_relu[:SLOPE] (slope 0.01), gelu (exact), gelu_tanh, identity
    #[arg(long, default_value = "relu", value_delimiter = ',', value_name = "NAMES")]
    pub activation: Vec<String>,

    /// Loss: mse (mean squared error), mae (mean absolute error) or huber[:DELTA] (delta 1.0)
    #[arg(long, default_value = "mse", value_name = "NAME")]
    pub loss: String,

    /// Optimizer: adam, adamw (decoupled weight decay) or sgd
    #[arg(long, default_value = "adam", value_name = "NAME")]
    pub optimizer: String,

    /// Learning rate
    #[arg(long, default_value_t = 1.0, value_name = "RATE", allow_negative_numbers = true)]
    pub lr: f32,

    /// Adam's beta1,beta2: decay rates of the gradient's first and second moment estimates
    #[arg(long, default_value = "0.9,0.999", value_name = "B1,B2")]
    pub betas: String,

    /// Adam's epsilon, added to the square root of the second moment
    #[arg(long, default_value_t = 1e-8, value_name = "EPS", allow_negative_numbers = true)]
    pub eps: f32,

    /// Weight decay [default: 0 for adam and sgd (L2 added to the gradient), 0.01 for adamw (decoupled)]
    #[arg(long, value_name = "RATE", allow_negative_numbers = true)]
    pub weight_decay: Option<f32>,

    /// SGD momentum factor
    #[arg(long, default_value_t = 0.0, value_name = "FACTOR", allow_negative_numbers = true)]
    pub momentum: f32,

    /// SGD dampening of the momentum
    #[arg(long, default_value_t = 0.0, value_name = "FACTOR", allow_negative_numbers = true)]
    pub dampening: f32,

    /// SGD with Nesterov momentum (needs --momentum > 0 and no dampening)
    #[arg(long)]
    pub nesterov: bool,

    /// Number of passes over the training data
    #[arg(long, default_value_t = 40_000, value_name = "N")]
    pub epochs: u64,

    /// Rows per mini-batch, reshuffled every epoch from --seed [default: all rows, one step per epoch]
    #[arg(long, value_name = "ROWS")]
    pub batch_size: Option<usize>,

    /// Seed of the initialization (identical to torch.manual_seed), the validation split and the batch order.
    /// 4603 reproduces the textbook's run
    #[arg(long, default_value_t = 4603, value_name = "N")]
    pub seed: u64,

    /// Start from parameters in a JSON file ({"layers": [{"weight": [[...]], "bias": [...]}, ...]},
    /// as --save and --report write them) instead of a seeded initialization
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,

    /// Z-score the features with the training rows' mean and standard deviation (stored in the saved model)
    #[arg(long)]
    pub standardize: bool,

    /// Z-score the targets too; metrics stay in the target's units
    #[arg(long)]
    pub standardize_target: bool,

    /// Hold out this fraction of the rows (seeded shuffle) as validation data, for example 0.2
    #[arg(long, value_name = "FRACTION", conflicts_with = "val_data")]
    pub val_fraction: Option<f64>,

    /// Validation data from a separate CSV file with the same columns
    #[arg(long, value_name = "FILE")]
    pub val_data: Option<PathBuf>,

    /// Stop when the validation loss has not improved for this many epochs, and keep the best parameters
    /// (checked at every logged epoch)
    #[arg(long, value_name = "EPOCHS")]
    pub early_stop: Option<u64>,

    /// Device to train on
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,

    /// GPU kernel path
    #[arg(long, value_enum, default_value_t = KernelArg::Auto)]
    pub kernel: KernelArg,

    /// Print and record the metrics every N epochs (and at epoch 0)
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub log_every: u64,

    /// Write a JSON report: device, timing, loss at every logged epoch, final metrics and parameters
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Save the trained model as JSON (architecture, standardization, metrics, parameters) for predict
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,

    /// Save the parameters as safetensors with PyTorch's nn.Sequential names (layers.0.weight, ...)
    #[arg(long, value_name = "FILE")]
    pub save_safetensors: Option<PathBuf>,

    /// Draw plots into this directory, created if missing. loss.png and loss.svg show the loss by logged epoch
    /// on a log scale, with the validation loss. fit.png and fit.svg show predicted against actual values of the
    /// first target on the training rows, with the least-squares line
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,

    /// Write the metrics at every logged epoch as CSV: epoch, loss, mse, rmse, mae, r2, then val_loss, val_mse,
    /// val_rmse, val_mae, val_r2 with validation data, then elapsed_seconds (since training started)
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,

    /// Print the report (the same JSON that --report writes) on standard output, and nothing else there:
    /// the loss lines and results go to standard error
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model file written by `train --save`
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,

    /// CSV file with the model's feature columns (the target columns are optional)
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,

    /// Write the input rows with prediction columns added to this CSV file [default: standard output]
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Field delimiter of the CSV file: a character, or comma, semicolon, tab, pipe, space
    #[arg(long, default_value = ",", value_name = "CHAR")]
    pub delimiter: String,

    /// Skip rows with a missing feature value instead of failing (the output then lacks those rows)
    #[arg(long)]
    pub drop_missing: bool,

    /// Print the metrics as JSON on standard output once the predictions are written (needs --output)
    #[arg(long, requires = "output")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model file written by `train --save`
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,

    /// CSV file with the model's feature and target columns
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,

    /// Field delimiter of the CSV file: a character, or comma, semicolon, tab, pipe, space
    #[arg(long, default_value = ",", value_name = "CHAR")]
    pub delimiter: String,

    /// Skip rows with a missing value in a used column instead of failing
    #[arg(long)]
    pub drop_missing: bool,

    /// Print the metrics as JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

const BENCH_EXAMPLES: &str = "\
Workloads (each seeded; Adam, MSE, full batch):
  textbook-relu, textbook-sigmoid, textbook-tanh
      data/diabetes.csv (bmi, s6 -> target), 2 -> 5 -> 1, lr 1, 40000 epochs (4000 on the general
      path); reads data/diabetes.csv from the working directory
  wide-100k   100,000 x 32 synthetic rows, 32 -> 128 (relu) -> 1, lr 0.001, 20 epochs
  tall-1m     1,000,000 x 16 synthetic rows, 16 -> 64 (relu) -> 1, lr 0.001, 5 epochs
  Each timed run starts from a freshly built backend after one untimed warm-up run.

Examples:
  shadertrain bench
  shadertrain bench --quick
  shadertrain bench --workloads textbook-relu,wide-100k --backends fused,cpu --json bench.json";

/// A workload of `shadertrain bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchWorkload {
    TextbookRelu,
    TextbookSigmoid,
    TextbookTanh,
    #[value(name = "wide-100k")]
    Wide100k,
    #[value(name = "tall-1m")]
    Tall1m,
}

/// A backend of `shadertrain bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    /// The fused GPU kernel (small problems only)
    Fused,
    /// The general GPU kernel path
    General,
    /// The CPU reference trainer
    Cpu,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Workloads to run, comma-separated [default: all]
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub workloads: Option<Vec<BenchWorkload>>,

    /// Backends to run, comma-separated [default: all; fused runs only where its plan accepts the problem]
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub backends: Option<Vec<BenchBackend>>,

    /// Epochs per timed run, for every workload and backend [default: per workload]
    #[arg(long, value_name = "N")]
    pub epochs: Option<u64>,

    /// Timed runs per workload and backend [default: 5 for the textbook workloads, 3 for the large ones]
    #[arg(long, value_name = "N")]
    pub repeats: Option<usize>,

    /// Short runs: 2000 textbook epochs (200 on the general path) in 3 runs, 2 epochs of the large workloads in 1 run
    #[arg(long)]
    pub quick: bool,

    /// Write every measurement, the runs' times and the machine description as JSON
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Device: auto runs the GPU backends when wgpu finds an adapter, gpu fails without one, cpu runs only the cpu backend
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
}

const DEVICES_EXAMPLES: &str = "\
Examples:
  shadertrain devices          # one line per adapter; '<- auto' marks the one --device auto uses
  shadertrain devices --json   # {\"adapters\": [...], \"auto\": INDEX or null}";

const PREDICT_EXAMPLES: &str = "\
Examples:
  shadertrain predict --model model.json --data data/diabetes.csv --output predictions.csv
      Writes the input rows with a target_predicted column added, and prints the metrics on the rows
      that have target values to standard error.
  shadertrain predict --model model.json --data data/diabetes.csv > predictions.csv
  shadertrain predict --model model.json --data data/diabetes.csv --output predictions.csv --json
      Prints the metrics as JSON on standard output instead.";

const EVAL_EXAMPLES: &str = "\
Examples:
  shadertrain eval --model model.json --data data/diabetes.csv
  shadertrain eval --model model.json --data data/diabetes.csv --json";

const PLOT_EXAMPLES: &str = "\
Examples:
  shadertrain train --epochs 5000 --report run.json --save model.json
  shadertrain plot run.json --output plots
      Writes plots/loss.png and plots/loss.svg.
  shadertrain plot run.json --output plots --model model.json
      Also writes plots/fit.png and plots/fit.svg: the model's predictions on every row of the data
      file it was trained on (recorded in model.json), against the first target.
  shadertrain plot run.json --output plots --model model.json --data test.csv";

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Report written by `train --report` or `train --json`; its history gives the loss curve
    #[arg(value_name = "REPORT")]
    pub report: PathBuf,

    /// Directory for the plots, created if missing
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,

    /// Model file written by `train --save`: also draw fit.png and fit.svg, its predictions against the first
    /// target on every row of --data
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// CSV file with the model's feature and target columns, for the fit plot
    /// [default: the data file the model was trained on, as recorded in the model file]
    #[arg(long, value_name = "FILE", requires = "model")]
    pub data: Option<PathBuf>,

    /// Field delimiter of the CSV file: a character, or comma, semicolon, tab, pipe, space
    #[arg(long, default_value = ",", value_name = "CHAR")]
    pub delimiter: String,

    /// Skip rows with a missing value in a used column instead of failing
    #[arg(long)]
    pub drop_missing: bool,
}
