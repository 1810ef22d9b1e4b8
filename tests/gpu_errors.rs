//! GPU failures surface as clear errors: shader compilation, a missing
//! adapter, limits.

mod common;

use common::binary::run_with_env;
use common::{gpu, repo_path};
use shadertrain::train::TrainError;

/// The Vulkan loader finds no driver with these variables (both names, for
/// older and newer loaders), as on a machine without a GPU driver.
const NO_DRIVER: [(&str, &str); 2] = [
    ("VK_ICD_FILENAMES", "/nonexistent/shadertrain-no-driver.json"),
    ("VK_DRIVER_FILES", "/nonexistent/shadertrain-no-driver.json"),
];

#[test]
fn invalid_shader_is_an_error() {
    let result = gpu().compute_pipeline("deliberately broken", "@compute @workgroup_size(1) fn main( {", "main");
    match result {
        Err(TrainError::Gpu(message)) => {
            assert!(
                message.contains("deliberately broken"),
                "the error should name the shader: {message}"
            );
        }
        Err(other) => panic!("expected a GPU error, got {other}"),
        Ok(_) => panic!("a broken shader compiled"),
    }
    // The device stays usable after the failed compile.
    gpu().check_errors().expect("no error is left pending");
}

#[test]
fn missing_adapter_names_the_fix() {
    let dir = repo_path(".");
    let run = run_with_env(&dir, &["train", "--device", "gpu", "--epochs", "1"], &NO_DRIVER);
    assert!(
        !run.succeeded(),
        "training without an adapter must fail:\n{}",
        run.describe()
    );
    assert!(!run.stderr.contains("panicked"), "no panic:\n{}", run.describe());
    assert!(
        run.stderr.contains("no GPU adapter found"),
        "names the problem:\n{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("mesa-vulkan-drivers"),
        "names the fix:\n{}",
        run.describe()
    );
}

#[test]
fn auto_falls_back_to_cpu_reference() {
    let dir = repo_path(".");
    let run = run_with_env(&dir, &["train", "--epochs", "20", "--log-every", "10"], &NO_DRIVER);
    assert!(
        run.succeeded(),
        "auto must train on the CPU reference:\n{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("CPU reference"),
        "says where it trains:\n{}",
        run.describe()
    );
    assert!(
        run.stdout.contains("epoch       0  loss 29134.8"),
        "trains the textbook job:\n{}",
        run.describe()
    );
}

/// A buffer past the adapter's limits is a reported error, not a panic.
#[test]
fn oversized_buffer_is_an_error() {
    // A device of its own, so the error cannot reach the other tests' checks.
    let context = &shadertrain::gpu::GpuContext::new().expect("a GPU adapter");
    let size = context.limits.max_buffer_size.saturating_add(4);
    let _buffer = context.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("larger than max_buffer_size"),
        size,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    match context.wait() {
        Err(TrainError::Gpu(message)) => {
            assert!(
                message.contains("larger than max_buffer_size"),
                "the error should name the buffer: {message}"
            );
        }
        other => panic!("expected a GPU error for a {size}-byte buffer, got {other:?}"),
    }
    context.check_errors().expect("the error is reported once");
}
