//! Measures the peak resident memory of `load_csv` on a generated 1,000,000-row CSV file.
//!
//! Run with `cargo run --release --example csv_peak_memory`. The file (about 110 MB) goes to
//! a temporary directory that is deleted at the end. The peak comes from `VmHWM` in
//! `/proc/self/status`, so the example needs Linux.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use shadertrain::data::{ColumnSelection, CsvOptions, load_csv};

const ROWS: usize = 1_000_000;
const FEATURES: usize = 10;

/// Returns a field of `/proc/self/status` in KiB, such as `VmHWM` (peak resident memory).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("peak_memory.csv");

    let mut names: Vec<String> = (0..FEATURES).map(|i| format!("x{i}")).collect();
    names.push("y".to_string());
    let mut out = BufWriter::new(File::create(&path)?);
    writeln!(out, "{}", names.join(","))?;
    // Linear congruential generator, so that the file is the same on every run.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..ROWS {
        for column in 0..=FEATURES {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let value = (state >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 100.0;
            let separator = if column == FEATURES { '\n' } else { ',' };
            write!(out, "{value:.6}{separator}")?;
        }
    }
    out.flush()?;
    drop(out);
    let file_size = std::fs::metadata(&path)?.len();

    let features = &names[..FEATURES];
    let targets = &names[FEATURES..];
    let columns = ColumnSelection {
        features,
        targets,
        targets_required: true,
    };
    let peak_before = status_kib("VmHWM");
    let started = Instant::now();
    let data = load_csv(&path, &columns, &CsvOptions::default())?;
    let elapsed = started.elapsed();
    let peak_after = status_kib("VmHWM");
    let resident_after = status_kib("VmRSS");

    let f32_bytes = ((data.features.len() + data.targets.len()) * size_of::<f32>()) as u64;
    let line_bytes = (data.lines.len() * size_of::<u64>()) as u64;
    let growth = (peak_after - peak_before) * 1024;
    println!("file: {} rows, {:.1} MiB", data.rows, mib(file_size));
    println!("load time: {:.2} s", elapsed.as_secs_f64());
    println!(
        "data as f32: {:.1} MiB ({} bytes); line numbers: {:.1} MiB",
        mib(f32_bytes),
        f32_bytes,
        mib(line_bytes)
    );
    println!("VmHWM before load: {:.1} MiB", mib(peak_before * 1024));
    println!("VmHWM after load:  {:.1} MiB", mib(peak_after * 1024));
    println!("VmRSS after load:  {:.1} MiB", mib(resident_after * 1024));
    println!(
        "peak growth: {:.1} MiB = {:.2} x (f32 data + line numbers)",
        mib(growth),
        growth as f64 / (f32_bytes + line_bytes) as f64
    );
    Ok(())
}
