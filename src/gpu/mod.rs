//! The GPU backends: adapter selection, the device, and two kernel paths.
//!
//! - [`fused`]: one workgroup runs many whole optimizer steps per dispatch;
//!   for small problems such as the textbook model, where launch and
//!   synchronization costs dominate.
//! - [`general`]: one kernel per layer operation (tiled matmuls, reductions,
//!   one optimizer dispatch), for problems too large for one workgroup.
//!
//! [`GpuContext`] is built once and handed to a backend, so tests and the
//! benchmark can reuse one device for many runs.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use crate::train::TrainError;

pub mod fused;
pub mod general;
pub mod shaders;

/// The backends shadertrain requests from wgpu: Vulkan, Metal and DX12.
const BACKENDS: wgpu::Backends = wgpu::Backends::PRIMARY;

/// How long to wait for one chunk of GPU work before reporting a hang.
const GPU_TIMEOUT: Duration = Duration::from_secs(600);

/// Description of one adapter, as `devices` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
}

impl AdapterSummary {
    fn new(info: &wgpu::AdapterInfo) -> Self {
        Self {
            name: info.name.clone(),
            backend: info.backend.to_string(),
            device_type: device_type_name(info.device_type).to_string(),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
        }
    }
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {}", self.name, self.backend, self.device_type)?;
        if !self.driver.is_empty() || !self.driver_info.is_empty() {
            write!(f, ", {} {}", self.driver, self.driver_info)?;
        }
        write!(f, ")")
    }
}

fn device_type_name(device_type: wgpu::DeviceType) -> &'static str {
    match device_type {
        wgpu::DeviceType::DiscreteGpu => "discrete GPU",
        wgpu::DeviceType::IntegratedGpu => "integrated GPU",
        wgpu::DeviceType::VirtualGpu => "virtual GPU",
        wgpu::DeviceType::Cpu => "CPU (software)",
        wgpu::DeviceType::Other => "other",
    }
}

/// Errors while finding or opening a GPU.
#[derive(Debug, Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found (wgpu looked for Vulkan, Metal and DX12). Install a GPU driver with \
         Vulkan support; on Debian or Ubuntu without a GPU, `sudo apt-get install mesa-vulkan-drivers` \
         provides lavapipe, a software Vulkan driver. Or train on the CPU reference with --device cpu"
    )]
    NoAdapter,
    #[error("could not open a device on adapter {adapter}: {message}")]
    RequestDevice { adapter: String, message: String },
}

/// Lists every adapter wgpu finds, in wgpu's order.
pub fn list_adapters() -> Vec<AdapterSummary> {
    enumerate()
        .iter()
        .map(|adapter| AdapterSummary::new(&adapter.get_info()))
        .collect()
}

/// Index into [`list_adapters`] of the adapter `--device auto` and `--device gpu` use:
/// the first discrete GPU, else integrated, else virtual, else the first
/// software (CPU) adapter.
pub fn preferred_adapter(adapters: &[AdapterSummary]) -> Option<usize> {
    let rank = |device_type: &str| match device_type {
        "discrete GPU" => 0,
        "integrated GPU" => 1,
        "virtual GPU" => 2,
        "other" => 3,
        _ => 4,
    };
    (0..adapters.len()).min_by_key(|&i| (rank(&adapters[i].device_type), i))
}

fn enumerate() -> Vec<wgpu::Adapter> {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = BACKENDS;
    let instance = wgpu::Instance::new(descriptor);
    pollster::block_on(instance.enumerate_adapters(BACKENDS))
}

/// An open device and what the kernels need to know about it.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    /// The adapter's own limits, which the device was opened with.
    pub limits: wgpu::Limits,
    /// Whether subgroup operations are enabled.
    pub subgroups: bool,
    /// Whether immediate data (push constants) is enabled; the general path needs it.
    pub immediates: bool,
    /// Whether timestamps can be written between dispatches, for kernel profiling.
    pub timestamps: bool,
    /// Subgroup size range of the adapter.
    pub subgroup_size: (u32, u32),
    /// Whether this is a software adapter (such as llvmpipe).
    pub is_cpu: bool,
    errors: Arc<Mutex<Vec<String>>>,
}

impl GpuContext {
    /// Opens the preferred adapter with its own limits and, where supported, subgroups.
    pub fn new() -> Result<Self, GpuError> {
        let adapters = enumerate();
        let summaries: Vec<AdapterSummary> = adapters.iter().map(|a| AdapterSummary::new(&a.get_info())).collect();
        let index = preferred_adapter(&summaries).ok_or(GpuError::NoAdapter)?;
        Self::open(&adapters[index])
    }

    fn open(adapter: &wgpu::Adapter) -> Result<Self, GpuError> {
        let info = adapter.get_info();
        let summary = AdapterSummary::new(&info);
        let limits = adapter.limits();
        let subgroups = adapter.features().contains(wgpu::Features::SUBGROUP);
        let immediates = adapter.features().contains(wgpu::Features::IMMEDIATES) && limits.max_immediate_size >= 128;
        let mut required_features = wgpu::Features::empty();
        if subgroups {
            required_features |= wgpu::Features::SUBGROUP;
        }
        if immediates {
            required_features |= wgpu::Features::IMMEDIATES;
        }
        let timestamps = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        let timestamps = adapter.features().contains(timestamps).then_some(timestamps);
        if let Some(features) = timestamps {
            required_features |= features;
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("shadertrain"),
            required_features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|error| GpuError::RequestDevice {
            adapter: summary.to_string(),
            message: error.to_string(),
        })?;

        // Validation errors, out-of-memory and device loss are collected here
        // and turned into errors at the next check instead of panicking.
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(error.to_string());
        }));
        let sink = errors.clone();
        device.set_device_lost_callback(move |reason, message| {
            if reason != wgpu::DeviceLostReason::Destroyed {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("device lost ({reason:?}): {message}"));
            }
        });

        log::info!(
            "adapter {summary}; subgroups {subgroups} (size {}..{}); max storage binding {} bytes, max buffer {} bytes, max workgroups per dimension {}",
            info.subgroup_min_size,
            info.subgroup_max_size,
            limits.max_storage_buffer_binding_size,
            limits.max_buffer_size,
            limits.max_compute_workgroups_per_dimension
        );

        Ok(Self {
            device,
            queue,
            adapter: summary,
            limits,
            subgroups,
            immediates,
            timestamps: timestamps.is_some(),
            subgroup_size: (info.subgroup_min_size, info.subgroup_max_size),
            is_cpu: info.device_type == wgpu::DeviceType::Cpu,
            errors,
        })
    }

    /// Returns the first error the device reported since the last check.
    pub fn check_errors(&self) -> Result<(), TrainError> {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.is_empty() {
            return Ok(());
        }
        let message = errors.join("; ");
        errors.clear();
        Err(TrainError::Gpu(message))
    }

    /// Compiles a WGSL module and a compute pipeline for `entry_point`,
    /// turning shader errors into [`TrainError::Gpu`].
    pub fn compute_pipeline(
        &self,
        label: &str,
        source: &str,
        entry_point: &str,
    ) -> Result<wgpu::ComputePipeline, TrainError> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module: &module,
            entry_point: Some(entry_point),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            cache: None,
        });
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(TrainError::Gpu(format!("shader '{label}' failed to compile: {error}")));
        }
        Ok(pipeline)
    }

    /// Waits until the queue is idle, or fails after [`GPU_TIMEOUT`].
    pub fn wait(&self) -> Result<(), TrainError> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: Some(GPU_TIMEOUT),
            })
            .map_err(|error| TrainError::Gpu(format!("waiting for the GPU failed: {error}")))?;
        self.check_errors()
    }

    /// Copies `size` bytes at `offset` of `source` back to the host.
    /// `staging` must be a MAP_READ | COPY_DST buffer of at least `size` bytes.
    pub fn read_back(
        &self,
        mut encoder: wgpu::CommandEncoder,
        source: &wgpu::Buffer,
        offset: u64,
        size: u64,
        staging: &wgpu::Buffer,
    ) -> Result<Vec<u8>, TrainError> {
        encoder.copy_buffer_to_buffer(source, offset, staging, 0, size);
        self.queue.submit([encoder.finish()]);
        self.map_staging(staging, size)
    }

    /// Maps the first `size` bytes of a staging buffer after all submitted work.
    pub fn map_staging(&self, staging: &wgpu::Buffer, size: u64) -> Result<Vec<u8>, TrainError> {
        let slice = staging.slice(..size);
        let (sender, receiver) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        self.wait()?;
        match receiver.recv_timeout(Duration::from_secs(1)) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(TrainError::Gpu(format!("mapping a read-back buffer failed: {error}"))),
            Err(_) => return Err(TrainError::Gpu("the GPU did not return the read-back buffer".into())),
        }
        let bytes = slice
            .get_mapped_range()
            .map_err(|error| TrainError::Gpu(format!("reading a mapped buffer failed: {error}")))?
            .to_vec();
        staging.unmap();
        Ok(bytes)
    }

    /// Creates a labelled storage buffer filled with `contents`.
    pub fn storage_buffer(&self, label: &str, contents: &[u8], extra_usage: wgpu::BufferUsages) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        log::debug!("buffer '{label}': {} bytes", contents.len());
        // Empty bindings are invalid, so every buffer has at least 16 bytes.
        let mut padded;
        let contents = if contents.len() < 16 {
            padded = contents.to_vec();
            padded.resize(16, 0);
            &padded[..]
        } else {
            contents
        };
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC
                | extra_usage,
        })
    }

    /// Creates a labelled read-back buffer of `size` bytes.
    pub fn staging_buffer(&self, label: &str, size: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(16),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }
}

/// Kernel path requested with `--kernel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    /// Fused when the problem fits it, general otherwise.
    Auto,
    Fused,
    General,
}

/// The kernel path a backend runs, for start-up lines and reports.
#[derive(Clone, Debug)]
pub enum KernelPath {
    Fused(fused::FusedPlan),
    General(general::GeneralPlan),
}

impl KernelPath {
    /// `fused` or `general`.
    pub fn name(&self) -> &'static str {
        match self {
            KernelPath::Fused(_) => "fused",
            KernelPath::General(_) => "general",
        }
    }
}

impl fmt::Display for KernelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelPath::Fused(plan) => write!(
                f,
                "fused ({} lanes, {} reduction, {} code, {} steps per dispatch)",
                plan.lanes,
                if plan.subgroups { "subgroup" } else { "workgroup-memory" },
                if plan.unrolled { "straight-line" } else { "loop" },
                plan.steps_per_dispatch
            ),
            KernelPath::General(plan) => write!(f, "general ({plan})"),
        }
    }
}

/// Uploads the data and builds the backend for `choice`.
pub fn create_backend<'c>(
    context: &'c GpuContext,
    spec: &crate::train::TrainSpec,
    data: crate::train::TrainingData<'_>,
    initial: &[f32],
    choice: KernelChoice,
) -> Result<(Box<dyn crate::train::Backend + 'c>, KernelPath), TrainError> {
    let fused_plan = match choice {
        KernelChoice::General => Err("--kernel general was requested".to_string()),
        _ => fused::plan(context, spec, data, fused::FusedOptions::default()).and_then(|plan| {
            if choice == KernelChoice::Auto && !general::prefers_fused(context, spec, data) {
                Err("the general path is faster for this problem".to_string())
            } else {
                Ok(plan)
            }
        }),
    };
    let fused_plan_reason = fused_plan.clone().map(|_| ());
    match (choice, fused_plan) {
        (KernelChoice::Fused | KernelChoice::Auto, Ok(plan)) => {
            let backend = fused::FusedBackend::new(context, spec, data, initial, plan.clone())?;
            Ok((Box::new(backend), KernelPath::Fused(plan)))
        }
        (KernelChoice::Fused, Err(reason)) => Err(TrainError::Invalid(format!(
            "the fused kernel cannot run this problem: {reason}; use --kernel general or auto"
        ))),
        (KernelChoice::General, _) | (KernelChoice::Auto, Err(_)) => {
            if let Err(reason) = &fused_plan_reason {
                log::info!("general kernel path: {reason}");
            }
            let plan = general::plan(context, spec, data, general::GeneralOptions::default())?;
            let backend = general::GeneralBackend::new(context, spec, data, initial, plan.clone())?;
            Ok((Box::new(backend), KernelPath::General(plan)))
        }
    }
}

/// Per-kernel GPU times from timestamps written between dispatches.
///
/// Enabled by the environment variable `SHADERTRAIN_PROFILE_KERNELS=1` on
/// adapters with timestamp queries inside passes; the totals are logged at
/// info level (`-v`) after the first chunk. A development aid: timestamps
/// cost a little time themselves.
pub struct KernelProfiler {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    staging: wgpu::Buffer,
    labels: Vec<&'static str>,
    capacity: u32,
    period: f32,
}

impl KernelProfiler {
    /// Creates a profiler for up to `capacity` dispatches, or returns `None` when profiling is off or unsupported.
    pub fn from_environment(context: &GpuContext, capacity: u32) -> Option<Self> {
        if std::env::var_os("SHADERTRAIN_PROFILE_KERNELS").is_none_or(|v| v == "0") || !context.timestamps {
            return None;
        }
        let capacity = capacity.min(4095);
        let bytes = u64::from(capacity + 1) * 8;
        Some(Self {
            queries: context.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kernel timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: capacity + 1,
            }),
            resolved: context.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("resolved timestamps"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            staging: context.staging_buffer("timestamp read-back", bytes),
            labels: Vec::new(),
            capacity,
            period: context.queue.get_timestamp_period(),
        })
    }

    /// Writes the starting timestamp; call once at the start of the pass.
    pub fn start(&mut self, pass: &mut wgpu::ComputePass<'_>) {
        self.labels.clear();
        pass.write_timestamp(&self.queries, 0);
    }

    /// Writes a timestamp after the dispatch just recorded, charged to `label`.
    pub fn mark(&mut self, pass: &mut wgpu::ComputePass<'_>, label: &'static str) {
        if (self.labels.len() as u32) < self.capacity {
            self.labels.push(label);
            pass.write_timestamp(&self.queries, self.labels.len() as u32);
        }
    }

    /// Resolves the timestamps into the staging buffer; call before submitting.
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        let count = self.labels.len() as u32 + 1;
        encoder.resolve_query_set(&self.queries, 0..count, &self.resolved, 0);
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.staging, 0, u64::from(count) * 8);
    }

    /// Reads the times back and logs the total per label, largest first.
    pub fn log(&mut self, context: &GpuContext) -> Result<(), TrainError> {
        if self.labels.is_empty() {
            return Ok(());
        }
        let count = self.labels.len() as u64 + 1;
        let bytes = context.map_staging(&self.staging, count * 8)?;
        let stamps: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
        let mut totals: Vec<(&'static str, f64, usize)> = Vec::new();
        for (i, label) in self.labels.iter().enumerate() {
            let seconds = stamps[i + 1].saturating_sub(stamps[i]) as f64 * f64::from(self.period) * 1e-9;
            match totals.iter_mut().find(|t| t.0 == *label) {
                Some(total) => {
                    total.1 += seconds;
                    total.2 += 1;
                }
                None => totals.push((label, seconds, 1)),
            }
        }
        totals.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (label, seconds, dispatches) in totals {
            log::info!("kernel {label}: {:.3} ms in {dispatches} dispatches", seconds * 1e3);
        }
        self.labels.clear();
        Ok(())
    }
}

/// Run state fields that both GPU paths report after a chunk.
pub(crate) struct HaltState {
    pub updates: u32,
    /// 0 running, 1 diverged, 2 early-stopped (the HALT_* codes of common.wgsl).
    pub halt: u32,
    pub halt_epoch: u32,
    pub best_epoch: u32,
}

/// Builds a chunk's outcome from the log sums a kernel wrote: per log slot,
/// `outputs * 2 + 1` training sums then as many validation sums.
pub(crate) fn chunk_outcome(
    chunk: &crate::schedule::Chunk,
    logs: &[f32],
    outputs: usize,
    has_validation: bool,
    state: HaltState,
) -> crate::train::ChunkOutcome {
    use crate::schedule::{EVALUATE, VALIDATE};
    use crate::train::{Halt, Sums};

    let slots = chunk.log_epochs.len();
    let sums = 1 + 2 * outputs;
    let sums_at = |index: usize| {
        let values = &logs[index * sums..(index + 1) * sums];
        Sums {
            loss: f64::from(values[0]),
            squared_error: values[1..1 + outputs].iter().map(|&v| f64::from(v)).collect(),
            absolute_error: values[1 + outputs..].iter().map(|&v| f64::from(v)).collect(),
        }
    };
    let mut outcome = crate::train::ChunkOutcome {
        train: vec![None; slots],
        validation: vec![None; slots],
        halt: None,
        updates: u64::from(state.updates),
    };
    for step in &chunk.steps {
        let slot = step.log_slot as usize;
        if step.flags & EVALUATE != 0 {
            outcome.train[slot] = Some(sums_at(2 * slot));
        }
        if step.flags & VALIDATE != 0 && has_validation {
            outcome.validation[slot] = Some(sums_at(2 * slot + 1));
        }
    }
    outcome.halt = match state.halt {
        1 => Some(Halt::Diverged {
            epoch: u64::from(state.halt_epoch),
        }),
        2 => Some(Halt::EarlyStopped {
            epoch: u64::from(state.halt_epoch),
            best_epoch: u64::from(state.best_epoch),
        }),
        _ => None,
    };
    outcome
}
