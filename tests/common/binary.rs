//! Runs of the `shadertrain` binary for end-to-end tests.

use std::path::Path;
use std::process::Command;

/// The captured result of one run of the binary.
pub struct Run {
    pub args: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Formats the command line, exit code and both streams for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "shadertrain {}\nexit code: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    pub fn succeeded(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs the binary in `dir` with `args`, with `RUST_LOG` unset and Mesa's
/// device-select warning silenced.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    run_with_env(dir, args, &[])
}

/// [`run`] with extra environment variables.
pub fn run_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_shadertrain"))
        .args(args)
        .current_dir(dir)
        .env("NODEVICE_SELECT", "1")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("start the shadertrain binary");
    Run {
        args: args.join(" "),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Creates a temporary working directory with `data/diabetes.csv` copied in,
/// so the `--data` default resolves as it does in the repository root.
pub fn create_work_directory() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    std::fs::create_dir(dir.path().join("data")).expect("create data/");
    std::fs::copy(
        super::repo_path("data/diabetes.csv"),
        dir.path().join("data/diabetes.csv"),
    )
    .expect("copy diabetes.csv");
    dir
}

/// Reads a JSON file, naming the file in a failure.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", path.display()))
}
