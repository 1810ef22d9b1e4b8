//! End-to-end tests of what `train` writes besides its result lines: the
//! history CSV, the report on standard output with --json, and every output
//! file after Ctrl-C. The runs use the CPU reference, so they need no GPU.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::binary::{create_work_directory, read_json, run};

/// Reads a CSV file into its header and rows of fields.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|record| record.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

const CPU_RUN: [&str; 7] = ["train", "--device", "cpu", "--epochs", "300", "--log-every", "100"];

// ---------------------------------------------------------------- history

#[test]
fn history_csv_matches_report() {
    let dir = create_work_directory();
    let mut args = CPU_RUN.to_vec();
    args.extend(["--history", "h.csv", "--report", "r.json"]);
    let run = run(dir.path(), &args);
    assert!(run.succeeded(), "train failed\n{}", run.describe());

    let (header, rows) = read_csv(&dir.path().join("h.csv"));
    assert_eq!(
        header,
        ["epoch", "loss", "mse", "rmse", "mae", "r2", "elapsed_seconds"],
        "header without validation data"
    );
    let report = read_json(&dir.path().join("r.json"));
    let history = report["history"].as_array().expect("history is an array");
    assert_eq!(rows.len(), history.len(), "one row per logged epoch");
    let epochs: Vec<&str> = rows.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(epochs, ["0", "100", "200"], "logged epochs");
    for (row, entry) in rows.iter().zip(history) {
        let loss: f64 = row[1].parse().expect("loss is a number");
        assert_eq!(
            loss,
            entry["train"]["loss"].as_f64().unwrap(),
            "loss at epoch {}",
            row[0]
        );
        let r2: f64 = row[5].parse().expect("r2 is a number");
        assert_eq!(r2, entry["train"]["r2"].as_f64().unwrap(), "r2 at epoch {}", row[0]);
        let elapsed: f64 = row[6].parse().expect("elapsed_seconds is a number");
        assert_eq!(
            elapsed,
            entry["elapsed"].as_f64().unwrap(),
            "elapsed at epoch {}",
            row[0]
        );
    }
}

#[test]
fn history_csv_validation_columns() {
    let dir = create_work_directory();
    let mut args = CPU_RUN.to_vec();
    args.extend(["--val-fraction", "0.2", "--history", "h.csv"]);
    let run = run(dir.path(), &args);
    assert!(run.succeeded(), "train failed\n{}", run.describe());

    let (header, rows) = read_csv(&dir.path().join("h.csv"));
    assert_eq!(
        header,
        [
            "epoch",
            "loss",
            "mse",
            "rmse",
            "mae",
            "r2",
            "val_loss",
            "val_mse",
            "val_rmse",
            "val_mae",
            "val_r2",
            "elapsed_seconds"
        ],
        "header with validation data"
    );
    assert_eq!(rows.len(), 3, "one row per logged epoch");
    for row in &rows {
        assert_eq!(row.len(), header.len(), "fields in row {row:?}");
        for (name, field) in header.iter().zip(row) {
            let value: f64 = field
                .parse()
                .unwrap_or_else(|e| panic!("{name} '{field}' is not a number: {e}"));
            assert!(value.is_finite(), "{name} is {value}");
        }
    }
}

// ---------------------------------------------------------------- --json

#[test]
fn json_stdout_is_report_only() {
    let dir = create_work_directory();
    let mut args = CPU_RUN.to_vec();
    args.extend(["--json", "--report", "r.json"]);
    let run = run(dir.path(), &args);
    assert!(run.succeeded(), "train --json failed\n{}", run.describe());

    let printed: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("standard output is not one JSON document: {e}\n{}", run.describe()));
    let written = read_json(&dir.path().join("r.json"));
    assert_eq!(printed, written, "--json and --report differ");
    assert_eq!(printed["epochs_done"], 300, "epochs_done");
    assert!(
        run.stderr.contains("final loss "),
        "the result lines are not on standard error\n{}",
        run.describe()
    );
}

#[test]
fn json_quiet_prints_only_report() {
    let dir = create_work_directory();
    let mut args = CPU_RUN.to_vec();
    args.extend(["--json", "--quiet"]);
    let run = run(dir.path(), &args);
    assert!(run.succeeded(), "train --json --quiet failed\n{}", run.describe());

    let printed: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("standard output is not one JSON document: {e}\n{}", run.describe()));
    assert!(printed["history"].is_array(), "no history in the report");
    assert_eq!(run.stderr, "", "standard error with --quiet\n{}", run.describe());
}

// ---------------------------------------------------------------- Ctrl-C

/// Starts a run too long to finish, sends SIGINT after the first logged
/// line, and checks the exit code and every output file.
#[test]
fn interrupt_writes_outputs() {
    let dir = create_work_directory();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shadertrain"))
        .args([
            "train",
            "--device",
            "cpu",
            "--epochs",
            "100000000",
            "--log-every",
            "1000",
            "--save",
            "m.json",
            "--report",
            "r.json",
            "--history",
            "h.csv",
            "--plot",
            "plots",
        ])
        .current_dir(dir.path())
        .env("NODEVICE_SELECT", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the shadertrain binary");

    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first_line = String::new();
    stdout.read_line(&mut first_line).expect("read the first line");
    assert!(
        first_line.starts_with("epoch       0  loss "),
        "first line on stdout: {first_line:?}"
    );
    let pid = libc::pid_t::try_from(child.id()).expect("process id fits pid_t");
    // SAFETY: kill has no memory-safety preconditions; pid is our own child, still running
    // because it has a hundred million epochs left.
    let sent = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(sent, 0, "kill(SIGINT) failed: {}", std::io::Error::last_os_error());

    let started = Instant::now();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read stdout");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let status = child.wait().expect("wait for shadertrain");
    let stop_time = started.elapsed();
    let describe = format!("exit status: {status}\n--- stdout ---\n{first_line}{rest}--- stderr ---\n{stderr}");

    assert_eq!(status.code(), Some(130), "exit code after SIGINT\n{describe}");
    assert!(
        stop_time < Duration::from_secs(10),
        "took {stop_time:?} to stop after SIGINT\n{describe}"
    );
    assert!(
        stderr.contains("interrupt: stopping at the end of the current chunk"),
        "no interrupt notice\n{describe}"
    );
    assert!(
        stderr.contains("error: interrupted after "),
        "no final interrupt message\n{describe}"
    );
    assert!(rest.contains("final loss "), "no final results\n{describe}");

    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(report["interrupted"], true, "report.interrupted\n{describe}");
    let epochs_done = report["epochs_done"].as_u64().expect("epochs_done is a number");
    assert!(
        epochs_done > 0 && epochs_done < 100_000_000,
        "epochs_done {epochs_done}\n{describe}"
    );
    let model = read_json(&dir.path().join("m.json"));
    assert_eq!(
        model["training"]["interrupted"], true,
        "model training.interrupted\n{describe}"
    );
    assert_eq!(
        model["training"]["epochs_done"], epochs_done,
        "model and report epochs_done"
    );
    let (header, rows) = read_csv(&dir.path().join("h.csv"));
    assert_eq!(header[0], "epoch", "history header");
    assert_eq!(
        rows.len(),
        report["history"].as_array().unwrap().len(),
        "history rows and report history"
    );
    for file in ["loss.png", "loss.svg", "fit.png", "fit.svg"] {
        let path = dir.path().join("plots").join(file);
        let size = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{} missing: {e}\n{describe}", path.display()))
            .len();
        assert!(size > 1000, "{} has only {size} bytes", path.display());
    }
}

// ---------------------------------------------------------------- divergence

#[test]
fn diverged_run_message_and_exit_code() {
    // Adam's first step divides the learning rate by the bias correction
    // 1 - beta1 = 0.1, and 1e39 overflows float32, so the first update diverges.
    let dir = create_work_directory();
    let mut args = CPU_RUN.to_vec();
    args.extend(["--lr", "1e38", "--report", "r.json"]);
    let run = run(dir.path(), &args);

    assert_eq!(run.code, Some(3), "exit code of a diverged run\n{}", run.describe());
    assert!(
        run.stderr.contains("error: training diverged at epoch "),
        "no divergence message\n{}",
        run.describe()
    );
    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(report["halt"]["kind"], "diverged", "report.halt");
}
