//! Output streams of the command-line program: results to standard output;
//! start-up lines, warnings, errors, log records and the progress bar to
//! standard error.
//!
//! While a progress bar is on screen, every line goes through
//! [`print_above_bar`], which hides the bar, prints the line and draws the
//! bar again, so lines and bar do not mix on the terminal.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use shadertrain::train::LogEntry;

/// The progress bar on screen, if any. Global so that log records and the
/// Ctrl-C handler can print above it.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `print` with the progress bar, if one is on screen, hidden.
pub fn print_above_bar<R>(print: impl FnOnce() -> R) -> R {
    let bar = ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match bar {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// Returns the writer for env_logger: standard error, above the progress bar.
pub fn log_target() -> env_logger::Target {
    env_logger::Target::Pipe(Box::new(LogWriter))
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        print_above_bar(|| io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Prints a line on standard output. A reader that closed the pipe early,
/// as `head` does, is no error: training goes on and still writes its files.
fn print_stdout(line: &str) {
    let written = print_above_bar(|| writeln!(io::stdout().lock(), "{line}"));
    if let Err(error) = written
        && error.kind() != io::ErrorKind::BrokenPipe
    {
        print_stderr(&format!("warning: cannot write to standard output: {error}"));
    }
}

/// Prints a line on standard error, ignoring a closed pipe, where no message could go.
fn print_stderr(line: &str) {
    let _ = print_above_bar(|| writeln!(io::stderr().lock(), "{line}"));
}

/// Printing levels chosen by --quiet and --verbose.
pub struct Output {
    quiet: bool,
    /// Sends result lines to standard error, for `train --json`, whose
    /// standard output is the report alone.
    results_on_stderr: bool,
}

impl Output {
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            results_on_stderr: false,
        }
    }

    /// Returns the same output with result lines on standard error, where --quiet hides them.
    pub fn with_results_on_stderr(&self) -> Self {
        Self {
            quiet: self.quiet,
            results_on_stderr: true,
        }
    }

    /// Prints a training result (logged losses, final metrics, parameters, timing) to standard output.
    pub fn result(&self, line: &str) {
        if self.results_on_stderr {
            self.info(line);
        } else {
            print_stdout(line);
        }
    }

    /// Prints a JSON document for --json, always on standard output.
    pub fn json(&self, document: &str) {
        print_stdout(document);
    }

    /// Prints a start-up or status line to standard error, unless --quiet.
    pub fn info(&self, line: &str) {
        if !self.quiet {
            print_stderr(line);
        }
    }

    pub fn warn(&self, line: &str) {
        print_stderr(&format!("warning: {line}"));
    }

    pub fn error(&self, line: &str) {
        print_stderr(&format!("error: {line}"));
    }

    /// Starts the display of a training run of `total` epochs: a progress bar
    /// when standard error is a terminal and --quiet is off, else nothing
    /// beyond the result lines.
    pub fn start_progress(&self, total: u64) -> TrainingProgress {
        let bar = (!self.quiet && io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(bar_style());
            bar.enable_steady_tick(Duration::from_millis(100));
            *ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
            bar
        });
        TrainingProgress {
            bar,
            chunk_start: Instant::now(),
            chunk_first_epoch: 0,
        }
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner:.green} {elapsed_precise} [{bar:30.cyan/blue}] epoch {human_pos}/{human_len}, {epoch_rate}, ETA {eta} {msg}",
    )
    .expect("the progress bar template is valid")
    .with_key("epoch_rate", |state: &ProgressState, writer: &mut dyn std::fmt::Write| {
        let _ = write!(writer, "{:.0} epochs/s", state.per_sec());
    })
    .progress_chars("=> ")
}

/// The progress display of one training run, fed by the driver's progress
/// events. Also logs each chunk's duration at debug level.
pub struct TrainingProgress {
    bar: Option<ProgressBar>,
    chunk_start: Instant,
    chunk_first_epoch: u64,
}

impl TrainingProgress {
    /// Shows the latest logged losses next to the bar.
    pub fn logged(&self, entry: &LogEntry) {
        if let Some(bar) = &self.bar {
            let mut message = format!("loss {:.4}", entry.train.loss);
            if let Some(validation) = &entry.validation {
                let _ = write!(message, ", val_loss {:.4}", validation.loss);
            }
            bar.set_message(message);
        }
    }

    /// Records that `epoch` epochs are done at the end of a chunk.
    pub fn advanced(&mut self, epoch: u64) {
        let seconds = self.chunk_start.elapsed().as_secs_f64();
        let epochs = epoch.saturating_sub(self.chunk_first_epoch);
        log::debug!(
            "chunk of epochs {}..{epoch}: {:.1} ms, {:.0} epochs/s",
            self.chunk_first_epoch,
            seconds * 1e3,
            if seconds > 0.0 { epochs as f64 / seconds } else { 0.0 }
        );
        self.chunk_start = Instant::now();
        self.chunk_first_epoch = epoch;
        if let Some(bar) = &self.bar {
            bar.set_position(epoch);
        }
    }
}

impl Drop for TrainingProgress {
    /// Removes the bar from the screen, after a finished, interrupted or failed run.
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            *ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()) = None;
            bar.finish_and_clear();
        }
    }
}
