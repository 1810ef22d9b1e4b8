//! The `shadertrain` command-line program.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

mod cli;
mod commands;
mod output;

use cli::{Cli, Command};
use output::Output;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.quiet, cli.verbose);
    let output = Output::new(cli.quiet);

    // Ctrl-C requests a stop at the end of the current chunk. A second Ctrl-C exits at once.
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        output::print_above_bar(|| {
            eprintln!(
                "\ninterrupt: stopping at the end of the current chunk of epochs, within about a second \
                 (press Ctrl-C again to exit at once)"
            )
        });
    });

    let result = match &cli.command {
        Command::Train(args) => commands::train::run(args, &output, interrupt),
        Command::Devices(args) => commands::devices::run(args, &output),
        Command::Predict(args) => commands::predict::run(args, &output),
        Command::Eval(args) => commands::eval::run(args, &output),
        Command::Plot(args) => commands::plot::run(args, &output),
        Command::Bench(args) => commands::bench::run(args, &output, interrupt),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            output.error(&error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// Logs go to standard error: warnings by default, more with -v, RUST_LOG overrides.
fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(format!("warn,shadertrain={level}")))
        .format_timestamp(None)
        .target(output::log_target())
        .init();
}

/// Joins the error and its causes with ": ", leaving out a cause whose
/// text the message before it already contains.
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
