//! `shadertrain devices`: every adapter wgpu finds and the one `auto` picks.

use std::process::ExitCode;

use shadertrain::gpu;

use crate::cli::DevicesArgs;
use crate::output::Output;

pub fn run(args: &DevicesArgs, output: &Output) -> anyhow::Result<ExitCode> {
    let adapters = gpu::list_adapters();
    let preferred = gpu::preferred_adapter(&adapters);

    if args.json {
        let listing = serde_json::json!({
            "adapters": adapters,
            "auto": preferred,
        });
        output.result(&serde_json::to_string_pretty(&listing)?);
        return Ok(ExitCode::SUCCESS);
    }

    if adapters.is_empty() {
        output.result("no GPU adapters found; --device auto trains on the CPU reference");
        output.result(&format!("to train on a GPU: {}", gpu::GpuError::NoAdapter));
        return Ok(ExitCode::SUCCESS);
    }
    for (index, adapter) in adapters.iter().enumerate() {
        let marker = if Some(index) == preferred { "  <- auto" } else { "" };
        output.result(&format!(
            "{index}: {} [{}] {}, driver: {} {}{marker}",
            adapter.name, adapter.backend, adapter.device_type, adapter.driver, adapter.driver_info
        ));
    }
    Ok(ExitCode::SUCCESS)
}
