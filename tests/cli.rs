//! End-to-end tests of the `shadertrain` binary: output, files, exit codes
//! and error messages, each run in its own temporary directory.
//!
//! The runs with `--device auto` need a GPU adapter (lavapipe on machines
//! without a GPU). Without one, `auto` falls back to the CPU reference and
//! prints no `kernel:` line, so those tests fail instead of passing silently.

mod common;

use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;

use common::binary::{Run, run};
use common::repo_path;

/// Epoch-0 loss of the textbook model in PyTorch 2.15 (tests/golden/textbook_full.json).
const TORCH_EPOCH_0_LOSS: f64 = 29134.859375;

/// Arguments of a short run, which keeps this file to a few seconds.
const SHORT_RUN: [&str; 4] = ["--epochs", "300", "--log-every", "100"];

/// Creates a temporary working directory with `data/diabetes.csv` copied in,
/// so the `--data` default resolves as it does in the repository root.
fn create_work_directory() -> TempDir {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    std::fs::create_dir(dir.path().join("data")).expect("create data/");
    std::fs::copy(repo_path("data/diabetes.csv"), dir.path().join("data/diabetes.csv")).expect("copy diabetes.csv");
    dir
}

/// Runs `train` with [`SHORT_RUN`] followed by `extra`.
fn train_short(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["train"];
    args.extend(SHORT_RUN);
    args.extend(extra);
    run(dir, &args)
}

/// Parses the loss from the `epoch <N>  loss <L>` line of `epoch` on stdout.
fn logged_loss(run: &Run, epoch: u64) -> f64 {
    let line = run
        .stdout
        .lines()
        .find(|line| {
            let mut words = line.split_whitespace();
            words.next() == Some("epoch") && words.next() == Some(epoch.to_string().as_str())
        })
        .unwrap_or_else(|| panic!("no line for epoch {epoch} on stdout\n{}", run.describe()));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        words.get(2),
        Some(&"loss"),
        "unexpected log line '{line}'\n{}",
        run.describe()
    );
    words[3]
        .parse()
        .unwrap_or_else(|e| panic!("loss '{}' is not a number ({e})\n{}", words[3], run.describe()))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", path.display()))
}

fn relative_difference(actual: f64, expected: f64) -> f64 {
    (actual - expected).abs() / expected.abs()
}

/// Asserts that `run` failed cleanly: a non-zero exit code, no panic, and
/// every one of `words` in the error output.
fn assert_fails_with(run: &Run, words: &[&str]) {
    assert!(!run.succeeded(), "expected a non-zero exit code\n{}", run.describe());
    assert_ne!(run.code, None, "killed by a signal\n{}", run.describe());
    assert!(!run.stderr.contains("panicked"), "panicked\n{}", run.describe());
    assert!(
        run.stderr.contains("error: "),
        "no 'error: ' line on stderr\n{}",
        run.describe()
    );
    for word in words {
        assert!(
            run.stderr.contains(word),
            "'{word}' missing from the error output\n{}",
            run.describe()
        );
    }
}

// ---------------------------------------------------------------- train

#[test]
fn train_defaults_epoch0_loss() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &[]);

    assert!(run.succeeded(), "train failed\n{}", run.describe());
    let loss = logged_loss(&run, 0);
    assert!(
        relative_difference(loss, TORCH_EPOCH_0_LOSS) <= 1e-4,
        "epoch-0 loss {loss}, PyTorch's is {TORCH_EPOCH_0_LOSS}\n{}",
        run.describe()
    );
    assert!(
        run.stdout
            .lines()
            .any(|line| line.starts_with("epoch       0  loss 29134.8")),
        "epoch-0 line not in the documented format 'epoch       0  loss 29134.8...'\n{}",
        run.describe()
    );
    assert!(
        run.stdout.contains("final loss "),
        "no final loss line on stdout\n{}",
        run.describe()
    );
}

#[test]
fn train_startup_lines_on_stderr() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &[]);

    assert!(run.succeeded(), "train failed\n{}", run.describe());
    let has_line = |text: &str, prefix: &str| text.lines().any(|line| line.starts_with(prefix));
    assert!(
        has_line(&run.stderr, "device: "),
        "no 'device:' line on stderr\n{}",
        run.describe()
    );
    assert!(
        has_line(&run.stderr, "kernel: "),
        "no 'kernel:' line on stderr, so no GPU adapter was used\n{}",
        run.describe()
    );
    assert!(
        !has_line(&run.stdout, "device: "),
        "start-up lines belong on stderr, not stdout\n{}",
        run.describe()
    );
}

#[test]
fn train_cpu_same_epoch0_loss() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &["--device", "cpu"]);

    assert!(run.succeeded(), "train --device cpu failed\n{}", run.describe());
    assert!(
        run.stderr.contains("device: CPU reference trainer"),
        "no CPU reference start-up line\n{}",
        run.describe()
    );
    let loss = logged_loss(&run, 0);
    assert!(
        relative_difference(loss, TORCH_EPOCH_0_LOSS) <= 1e-4,
        "epoch-0 loss {loss}, PyTorch's is {TORCH_EPOCH_0_LOSS}\n{}",
        run.describe()
    );
}

// ---------------------------------------------------------------- files

#[test]
fn report_fields_present_and_typed() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &["--report", "r.json"]);
    assert!(run.succeeded(), "train failed\n{}", run.describe());
    let report = read_json(&dir.path().join("r.json"));

    for field in ["name", "backend", "type"] {
        assert!(
            report["device"][field].is_string(),
            "device.{field} is not a string: {}",
            report["device"]
        );
    }
    assert_eq!(report["epochs"].as_u64(), Some(300), "epochs: {}", report["epochs"]);
    assert!(report["seconds"].is_f64(), "seconds: {}", report["seconds"]);
    assert!(
        report["epochs_per_second"].is_f64(),
        "epochs_per_second: {}",
        report["epochs_per_second"]
    );
    let loss = report["loss"].as_object().expect("loss is an object keyed by epoch");
    let epochs: Vec<&str> = loss.keys().map(String::as_str).collect();
    assert_eq!(epochs, ["0", "100", "200"], "logged epochs in loss");
    let epoch0 = loss["0"].as_f64().expect("loss[\"0\"] is a number");
    assert!(
        relative_difference(epoch0, TORCH_EPOCH_0_LOSS) <= 1e-4,
        "loss[\"0\"] = {epoch0}, PyTorch's is {TORCH_EPOCH_0_LOSS}"
    );
    assert!(report["final_loss"].is_f64(), "final_loss: {}", report["final_loss"]);
    let layers = report["layers"].as_array().expect("layers is an array");
    assert_eq!(layers.len(), 2, "layers: {}", report["layers"]);
}

#[test]
fn model_file_layers_shape() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &["--save", "m.json"]);
    assert!(run.succeeded(), "train failed\n{}", run.describe());
    let model = read_json(&dir.path().join("m.json"));

    assert_eq!(model["format"], "shadertrain-model", "format");
    let layers = model["layers"].as_array().expect("layers is an array");
    assert_eq!(layers.len(), 2, "layers: {}", model["layers"]);
    // Weights are [out][in], as in PyTorch: 5 rows of 2, then 1 row of 5.
    let rows = |l: usize| layers[l]["weight"].as_array().expect("weight is an array").clone();
    assert_eq!(rows(0).len(), 5, "layers[0].weight rows");
    assert_eq!(rows(0)[0].as_array().map(Vec::len), Some(2), "layers[0].weight columns");
    assert_eq!(rows(1).len(), 1, "layers[1].weight rows");
    assert_eq!(rows(1)[0].as_array().map(Vec::len), Some(5), "layers[1].weight columns");
    assert_eq!(
        layers[0]["bias"].as_array().map(Vec::len),
        Some(5),
        "layers[0].bias length"
    );
    assert_eq!(
        layers[1]["bias"].as_array().map(Vec::len),
        Some(1),
        "layers[1].bias length"
    );
}

/// Trains a short run with `--report r.json --save m.json`, then evaluates
/// `init_file` with `--epochs 0` and compares the final losses.
fn assert_init_reproduces_final_loss(init_file: &str) {
    let dir = create_work_directory();
    let first = train_short(dir.path(), &["--report", "r.json", "--save", "m.json"]);
    assert!(first.succeeded(), "first train failed\n{}", first.describe());
    let saved = read_json(&dir.path().join("r.json"))["final_loss"]
        .as_f64()
        .expect("final_loss is a number");

    let second = run(
        dir.path(),
        &["train", "--init", init_file, "--epochs", "0", "--report", "again.json"],
    );
    assert!(
        second.succeeded(),
        "train --init {init_file} failed\n{}",
        second.describe()
    );
    assert!(
        second.stderr.contains(&format!("parameters from {init_file}")),
        "the start-up lines do not name the init file\n{}",
        second.describe()
    );
    let again = read_json(&dir.path().join("again.json"))["final_loss"]
        .as_f64()
        .expect("final_loss is a number");
    assert!(
        relative_difference(again, saved) <= 1e-5,
        "--init {init_file} gives final loss {again}, the first run ended at {saved}\n{}",
        second.describe()
    );
}

#[test]
fn init_from_model_file() {
    assert_init_reproduces_final_loss("m.json");
}

#[test]
fn init_from_report() {
    assert_init_reproduces_final_loss("r.json");
}

#[test]
fn failed_init_keeps_existing_outputs() {
    let dir = create_work_directory();
    let save = dir.path().join("m.json");
    let report = dir.path().join("r.json");
    std::fs::write(&save, "previous model\n").unwrap();
    std::fs::write(&report, "previous report\n").unwrap();
    std::fs::write(dir.path().join("bad.json"), "{\"layers\": [").unwrap();

    let run = train_short(
        dir.path(),
        &["--init", "bad.json", "--save", "m.json", "--report", "r.json"],
    );

    assert_fails_with(&run, &["bad.json"]);
    assert_eq!(
        std::fs::read_to_string(&save).unwrap(),
        "previous model\n",
        "--save file changed\n{}",
        run.describe()
    );
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        "previous report\n",
        "--report file changed\n{}",
        run.describe()
    );
}

#[test]
fn diverged_run_saves_finite_parameters() {
    // Adam's first step divides the learning rate by the bias correction
    // 1 - beta1 = 0.1, and 1e39 overflows float32: that update is rejected,
    // so the run halts at epoch 0 and keeps the initial parameters.
    let dir = create_work_directory();
    let save = dir.path().join("m.json");
    std::fs::write(&save, "previous model\n").unwrap();

    let run = train_short(dir.path(), &["--device", "cpu", "--lr", "1e38", "--save", "m.json"]);

    assert_eq!(run.code, Some(3), "a diverged run exits with 3\n{}", run.describe());
    assert!(
        run.stderr.contains("training diverged"),
        "says it diverged\n{}",
        run.describe()
    );
    assert!(!run.stderr.contains("panicked"), "no panic\n{}", run.describe());
    let model = read_json(&save);
    let values: Vec<f64> = model["layers"]
        .as_array()
        .expect("the saved model has layers")
        .iter()
        .flat_map(|layer| {
            let weights = layer["weight"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|row| row.as_array().unwrap().clone());
            weights
                .chain(layer["bias"].as_array().unwrap().clone())
                .collect::<Vec<_>>()
        })
        .map(|value| value.as_f64().expect("parameters are numbers"))
        .collect();
    assert_eq!(values.len(), 21, "the textbook model has 21 parameters");
    assert!(
        values.iter().all(|v| v.is_finite()),
        "saved parameters must be finite: {values:?}"
    );
}

// ---------------------------------------------------------------- devices

#[test]
fn devices_lists_llvmpipe() {
    let dir = create_work_directory();
    let run = run(dir.path(), &["devices"]);

    assert!(run.succeeded(), "devices failed\n{}", run.describe());
    assert!(
        run.stdout.contains("llvmpipe"),
        "no llvmpipe adapter listed (is mesa-vulkan-drivers installed?)\n{}",
        run.describe()
    );
    assert_eq!(
        run.stdout.matches("<- auto").count(),
        1,
        "expected exactly one adapter marked '<- auto'\n{}",
        run.describe()
    );
}

#[test]
fn devices_json_auto_index() {
    let dir = create_work_directory();
    let run = run(dir.path(), &["devices", "--json"]);

    assert!(run.succeeded(), "devices --json failed\n{}", run.describe());
    let listing: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", run.describe()));
    let adapters = listing["adapters"].as_array().expect("adapters is an array");
    let auto = listing["auto"].as_u64().expect("auto is an adapter index");
    assert!(
        (auto as usize) < adapters.len(),
        "auto index {auto} out of {} adapters",
        adapters.len()
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn error_missing_data_file() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &["--data", "missing.csv"]);
    assert_fails_with(&run, &["missing.csv", "not found"]);
}

#[test]
fn error_missing_column_lists_columns() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &["--features", "bmi,glucose"]);
    assert_fails_with(&run, &["'glucose'", "not found", "'bmi'", "'s6'", "'target'"]);
}

#[test]
fn error_hidden_zero() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &["--hidden", "0"]);
    assert_fails_with(&run, &["invalid hidden layer width '0'", "positive integers"]);
}

#[test]
fn error_hidden_not_a_number() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &["--hidden", "abc"]);
    assert_fails_with(&run, &["invalid hidden layer width 'abc'", "positive integers"]);
}

#[test]
fn error_unknown_activation() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &["--activation", "swish"]);
    assert_fails_with(&run, &["unknown activation 'swish'", "relu"]);
}

#[test]
fn error_log_every_zero() {
    let dir = create_work_directory();
    let run = run(dir.path(), &["train", "--epochs", "10", "--log-every", "0"]);
    assert_fails_with(&run, &["--log-every", "at least 1"]);
}

#[test]
fn error_init_wrong_shape() {
    let dir = create_work_directory();
    // Six rows in the first weight where the model has five hidden units.
    let weight = vec![[0.5, -0.5]; 6];
    let init = serde_json::json!({
        "layers": [
            {"weight": weight, "bias": [0.0, 0.0, 0.0, 0.0, 0.0]},
            {"weight": [[1.0, 1.0, 1.0, 1.0, 1.0]], "bias": [0.0]},
        ]
    });
    std::fs::write(dir.path().join("wrong.json"), init.to_string()).unwrap();

    let run = train_short(dir.path(), &["--init", "wrong.json"]);

    assert_fails_with(&run, &["wrong.json", "layers[0].weight", "6 rows", "expected 5"]);
}

#[test]
fn error_init_malformed_json() {
    let dir = create_work_directory();
    std::fs::write(dir.path().join("broken.json"), "{\"layers\": [{\"weight\": [[1, 2]],").unwrap();

    let run = train_short(dir.path(), &["--init", "broken.json"]);

    assert_fails_with(&run, &["broken.json", "not valid JSON"]);
}

#[test]
fn error_early_stop_without_validation() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &["--early-stop", "500"]);
    assert_fails_with(&run, &["--early-stop", "validation data", "--val-fraction"]);
}

#[test]
fn error_negative_learning_rate() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &["--lr", "-1"]);
    assert_fails_with(&run, &["invalid learning rate -1", ">= 0"]);
}

/// A constant feature under --standardize becomes all zeros, as in
/// scikit-learn's StandardScaler, with a warning; training goes on.
#[test]
fn standardize_constant_feature_warns() {
    let dir = create_work_directory();
    let csv = "x,constant,y\n1,5,2\n2,5,4\n3,5,6\n4,5,8\n5,5,10\n6,5,12\n";
    std::fs::write(dir.path().join("constant.csv"), csv).unwrap();
    let run = run(
        dir.path(),
        &[
            "train",
            "--data",
            "constant.csv",
            "--features",
            "x,constant",
            "--target",
            "y",
            "--standardize",
            "--epochs",
            "50",
            "--log-every",
            "10",
            "--lr",
            "0.1",
        ],
    );
    assert!(run.succeeded(), "training must go on:\n{}", run.describe());
    assert!(
        run.stderr.contains("feature 'constant' is constant"),
        "warns about the column:\n{}",
        run.describe()
    );
    assert!(
        run.stdout.contains("final loss"),
        "reports a final loss:\n{}",
        run.describe()
    );
}

/// Every training option combined runs on the GPU paths and the CPU
/// reference, and the two agree on the first logged loss.
#[test]
fn all_options_on_gpu_and_cpu() {
    let dir = create_work_directory();
    let options = [
        "train",
        "--features",
        "age,sex,bmi,bp,s1,s2,s3,s4,s5",
        "--target",
        "target,s6",
        "--hidden",
        "12,6",
        "--activation",
        "gelu,leaky_relu:0.1",
        "--loss",
        "huber:20",
        "--optimizer",
        "adamw",
        "--weight-decay",
        "0.05",
        "--betas",
        "0.8,0.99",
        "--eps",
        "1e-7",
        "--lr",
        "0.01",
        "--standardize",
        "--standardize-target",
        "--val-fraction",
        "0.25",
        "--early-stop",
        "50",
        "--batch-size",
        "64",
        "--epochs",
        "40",
        "--log-every",
        "10",
    ];
    let mut first_losses = Vec::new();
    for device in [["--device", "cpu"], ["--kernel", "fused"], ["--kernel", "general"]] {
        let mut args = options.to_vec();
        args.extend(device);
        let run = run(dir.path(), &args);
        assert!(run.succeeded(), "{device:?}:\n{}", run.describe());
        first_losses.push(logged_loss(&run, 0));
    }
    for (i, loss) in first_losses.iter().enumerate() {
        assert!(
            relative_difference(*loss, first_losses[0]) < 1e-5,
            "epoch-0 losses differ between backends: {first_losses:?} (run {i})"
        );
    }
}

#[test]
fn output_equal_to_data_is_rejected() {
    let dir = create_work_directory();
    let before = std::fs::read(dir.path().join("data/diabetes.csv")).unwrap();
    let run = train_short(dir.path(), &["--report", "./data/diabetes.csv"]);
    assert_fails_with(&run, &["--report", "same file as --data"]);
    assert_eq!(
        std::fs::read(dir.path().join("data/diabetes.csv")).unwrap(),
        before,
        "the data file must be unchanged"
    );
}

#[test]
fn missing_output_directory_fails_before_training() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &["--save", "no-such-dir/m.json"]);
    assert_fails_with(&run, &["no-such-dir", "does not exist"]);
    assert!(
        !run.stdout.contains("epoch"),
        "no training may run first\n{}",
        run.describe()
    );
}

#[test]
fn huge_hidden_layer_is_rejected() {
    let dir = create_work_directory();
    let run = train_short(dir.path(), &["--hidden", "4294967296"]);
    assert_fails_with(&run, &["parameters", "maximum"]);
}

/// A model file used as --init brings its standardization, so training it
/// for zero epochs reproduces what eval reports for it.
#[test]
fn init_from_standardized_model() {
    let dir = create_work_directory();
    let common = [
        "--features",
        "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6",
        "--hidden",
        "8",
        "--activation",
        "tanh",
        "--device",
        "cpu",
    ];
    let mut args = vec![
        "train",
        "--epochs",
        "100",
        "--lr",
        "0.01",
        "--standardize",
        "--standardize-target",
    ];
    args.extend(common);
    args.extend(["--save", "std.json"]);
    let trained = run(dir.path(), &args);
    assert!(trained.succeeded(), "{}", trained.describe());

    let evaluated = run(
        dir.path(),
        &["eval", "--model", "std.json", "--data", "data/diabetes.csv", "--json"],
    );
    assert!(evaluated.succeeded(), "{}", evaluated.describe());
    let metrics: Value = serde_json::from_str(&evaluated.stdout).unwrap();
    let eval_mse = metrics["metrics"]["mse"].as_f64().expect("eval reports mse");

    let mut args = vec!["train", "--epochs", "0", "--init", "std.json", "--report", "again.json"];
    args.extend(common);
    let again = run(dir.path(), &args);
    assert!(again.succeeded(), "{}", again.describe());
    assert!(
        again.stderr.contains("standardization"),
        "says it uses the saved standardization\n{}",
        again.describe()
    );
    let report = read_json(&dir.path().join("again.json"));
    let mse = report["final_metrics"]["train"]["mse"].as_f64().unwrap();
    assert!(
        relative_difference(mse, eval_mse) < 1e-6,
        "mse after --init with 0 epochs {mse} differs from eval's {eval_mse}"
    );
}

#[test]
fn init_with_other_activation_is_rejected() {
    let dir = create_work_directory();
    let trained = train_short(
        dir.path(),
        &["--activation", "tanh", "--device", "cpu", "--save", "m.json"],
    );
    assert!(trained.succeeded(), "{}", trained.describe());
    let run = train_short(dir.path(), &["--init", "m.json", "--device", "cpu"]);
    assert_fails_with(&run, &["trained with activations tanh", "--activation tanh"]);
}

#[test]
fn plot_reads_diverged_report() {
    let dir = create_work_directory();
    std::fs::copy(repo_path("data/diabetes_raw.csv"), dir.path().join("raw.csv")).unwrap();
    let diverged = run(
        dir.path(),
        &[
            "train",
            "--data",
            "raw.csv",
            "--hidden",
            "none",
            "--optimizer",
            "sgd",
            "--lr",
            "0.001",
            "--epochs",
            "50",
            "--log-every",
            "1",
            "--device",
            "cpu",
            "--report",
            "r.json",
        ],
    );
    assert_eq!(diverged.code, Some(3), "the run must diverge\n{}", diverged.describe());
    let plotted = run(dir.path(), &["plot", "r.json", "--output", "plots"]);
    assert!(
        plotted.succeeded(),
        "plot must read a report with null losses\n{}",
        plotted.describe()
    );
    assert!(dir.path().join("plots/loss.png").is_file(), "{}", plotted.describe());
}
