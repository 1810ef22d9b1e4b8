//! Where the command-line program prints: results to standard output,
//! start-up lines, warnings and errors to standard error.

/// Printing levels chosen by --quiet and --verbose.
pub struct Output {
    quiet: bool,
}

impl Output {
    pub fn new(quiet: bool) -> Self {
        Self { quiet }
    }

    /// A training result: logged losses, final metrics, parameters, timing.
    pub fn result(&self, line: &str) {
        println!("{line}");
    }

    /// A start-up or status line, hidden by --quiet.
    pub fn info(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    pub fn warn(&self, line: &str) {
        eprintln!("warning: {line}");
    }

    pub fn error(&self, line: &str) {
        eprintln!("error: {line}");
    }
}
