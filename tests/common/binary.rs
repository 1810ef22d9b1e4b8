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
