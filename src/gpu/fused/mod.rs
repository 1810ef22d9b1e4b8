//! Host side of the fused kernel (`shaders/fused.wgsl`): one workgroup runs
//! many whole optimizer steps per dispatch.
//!
//! The data, the schedule and the parameters stay on the GPU; after each
//! chunk the host reads back only the log sums and the run state (a few
//! hundred bytes), and the parameters once at the end.

use bytemuck::{Pod, Zeroable};

use super::GpuContext;
use super::shaders::{self, Header};

mod unrolled;

use crate::schedule::Chunk;
use crate::train::{Backend, ChunkOutcome, TrainError, TrainSpec, TrainingData};
pub use unrolled::MAX_UNROLLED_PARAMS;

/// Loop iterations one invocation may run per dispatch. llvmpipe ends an
/// invocation after 65,535; the rest is margin for loops the count below
/// does not see (such as those inside library functions).
pub const LOOP_BUDGET: u64 = 60_000;

/// Largest parameter count the fused kernel accepts: every lane keeps four
/// private copies (parameters, gradients, two optimizer slots).
pub const MAX_PARAMS: usize = 4096;

/// Canary loop iterations at the end of each dispatch.
const CANARY_ITERATIONS: u32 = 2;

/// Run state shared with the kernel (`RunState` in fused.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct RunState {
    next_step: u32,
    updates: u32,
    halt: u32,
    halt_epoch: u32,
    has_best: u32,
    best_epoch: u32,
    best_loss: f32,
    loop_faults: u32,
    restore: u32,
    pad: [u32; 3],
}

/// Per-chunk configuration (`Config` in fused.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct FusedConfig {
    train_rows: u32,
    val_rows: u32,
    train_features: u32,
    train_targets: u32,
    val_features: u32,
    val_targets: u32,
    step_count: u32,
    steps_per_dispatch: u32,
    canary_iterations: u32,
    patience: u32,
    pad: [u32; 2],
}

/// Overrides for tests and benchmarks; `None` lets the plan decide.
#[derive(Clone, Copy, Debug, Default)]
pub struct FusedOptions {
    /// Invocations in the workgroup.
    pub lanes: Option<u32>,
    /// Reduce with subgroup operations (needs one subgroup per workgroup).
    pub subgroups: Option<bool>,
    /// Generate straight-line code instead of loops (small models only).
    pub unrolled: Option<bool>,
}

/// The fused kernel's sizes and choices for one problem.
#[derive(Clone, Debug)]
pub struct FusedPlan {
    pub lanes: u32,
    pub subgroups: bool,
    /// Straight-line per-row code (see `unrolled.rs`) rather than loops.
    pub unrolled: bool,
    /// Loop iterations of the costliest step, counted as written in fused.wgsl.
    pub iterations_per_step: u64,
    pub steps_per_dispatch: u32,
    /// f32 values in the workgroup exchange buffer (workgroup reduction only).
    pub exchange: usize,
}

/// Shape constants of the problem, as the header declares them.
pub(crate) struct Shape {
    layer_in: Vec<usize>,
    layer_out: Vec<usize>,
    weight_offset: Vec<usize>,
    bias_offset: Vec<usize>,
    unit_offset: Vec<usize>,
    params: usize,
    units: usize,
    sums: usize,
    state_slots: usize,
}

impl Shape {
    fn new(spec: &TrainSpec) -> Self {
        let architecture = &spec.architecture;
        let layers = architecture.layer_count();
        let mut unit_offset = vec![0];
        for l in 0..layers {
            unit_offset.push(unit_offset[l] + architecture.sizes[l]);
        }
        Self {
            layer_in: (0..layers).map(|l| architecture.layer_shape(l).0).collect(),
            layer_out: (0..layers).map(|l| architecture.layer_shape(l).1).collect(),
            weight_offset: (0..layers).map(|l| architecture.parameter_offsets(l).0).collect(),
            bias_offset: (0..layers).map(|l| architecture.parameter_offsets(l).1).collect(),
            units: unit_offset[layers] + architecture.outputs(),
            unit_offset,
            params: architecture.parameter_count(),
            sums: 1 + 2 * architecture.outputs(),
            state_slots: spec.optimizer.state_slots(),
        }
    }

    /// Loop iterations of forward_row, loss_row and backward_row for one row.
    fn row_iterations(&self) -> (u64, u64, u64) {
        let layers = self.layer_in.len() as u64;
        let inputs = self.layer_in[0] as u64;
        let outputs = *self.layer_out.last().unwrap() as u64;
        let mut forward = loop_cost(1, inputs) + loop_cost(1, layers);
        let mut backward = loop_cost(1, layers);
        for (l, (&i, &o)) in self.layer_in.iter().zip(&self.layer_out).enumerate() {
            let (i, o) = (i as u64, o as u64);
            forward += loop_cost(1, o) + loop_cost(o, o * i);
            backward += loop_cost(1, o) + loop_cost(o, o * i);
            if l > 0 {
                backward += loop_cost(1, i) + loop_cost(i, i * o);
            }
        }
        (forward, loop_cost(1, outputs), backward)
    }
}

/// Returns what `instances` runs of a loop with `iterations` iterations in
/// total cost against llvmpipe's limit: the limiter also counts the final exit
/// test of each run, so a loop of n iterations costs n + 1.
fn loop_cost(instances: u64, iterations: u64) -> u64 {
    instances + iterations
}

/// Decides lanes, reduction and steps per dispatch, or explains why the
/// fused kernel cannot run this problem.
pub fn plan(
    context: &GpuContext,
    spec: &TrainSpec,
    data: TrainingData<'_>,
    options: FusedOptions,
) -> Result<FusedPlan, String> {
    let shape = Shape::new(spec);
    if shape.params > MAX_PARAMS {
        return Err(format!(
            "{} parameters exceed the fused kernel's maximum of {MAX_PARAMS}",
            shape.params
        ));
    }

    // One subgroup per workgroup lets subgroupAdd do the whole reduction.
    let (min_subgroup, max_subgroup) = context.subgroup_size;
    let fixed_subgroup = context.subgroups && min_subgroup == max_subgroup && min_subgroup > 0;
    let subgroups = options.subgroups.unwrap_or(fixed_subgroup) && fixed_subgroup;
    let lanes = match (options.lanes, subgroups) {
        (Some(lanes), false) => lanes,
        (_, true) => min_subgroup,
        (None, false) => 32,
    };
    if lanes == 0 || lanes > context.limits.max_compute_invocations_per_workgroup {
        return Err(format!("{lanes} lanes are not a valid workgroup size on this adapter"));
    }

    let max_exchange = (context.limits.max_compute_workgroup_storage_size as usize / 4).min(8192);
    let block = (max_exchange / lanes as usize).min(shape.params.max(shape.sums)).max(1);
    let exchange = block * lanes as usize;
    if !subgroups && block == 0 {
        return Err("the workgroup memory is too small for the reduction".into());
    }

    // Count loop iterations as the kernel is written, assuming the driver
    // unrolls nothing. Straight-line code has no loops but the row and step loops.
    let unrolled = options.unrolled.unwrap_or(true) && shape.params <= unrolled::MAX_UNROLLED_PARAMS;
    let inner = |cost: u64| if unrolled { 0 } else { cost };
    let lanes64 = u64::from(lanes);
    let params = shape.params as u64;
    let sums = shape.sums as u64;
    let (forward, loss, backward) = shape.row_iterations();
    let (forward, loss, backward) = (inner(forward), inner(loss), inner(backward));
    let reduce = |values: u64| -> u64 {
        if unrolled {
            0
        } else if subgroups {
            loop_cost(1, values)
        } else {
            let block = block as u64;
            let blocks = values.div_ceil(block);
            loop_cost(1, blocks) + 2 * loop_cost(blocks, values) + loop_cost(values, values * lanes64)
        }
    };
    let clear = |values: u64| inner(loop_cost(1, values));
    let rows_loop = |rows: u64| loop_cost(1, rows.div_ceil(lanes64));
    let train_rows = data.train.rows as u64;
    let val_rows = data.validation.map_or(0, |v| v.rows as u64);
    let train_pass = clear(params)
        + clear(sums)
        + rows_loop(train_rows)
        + train_rows.div_ceil(lanes64) * (forward + loss + backward)
        + reduce(params)
        + reduce(sums)
        + clear(sums);
    let val_pass = clear(sums)
        + rows_loop(val_rows)
        + val_rows.div_ceil(lanes64) * (forward + loss)
        + reduce(sums)
        + clear(sums)
        + inner(loop_cost(1, params.div_ceil(lanes64)));
    // gradients_finite, then apply_update's check and store loops.
    let update = inner(3 * loop_cost(1, params));
    let per_step = 1 + train_pass + val_pass + update;
    // Loading and storing the parameters, the step loop's exit test and the canary.
    let per_dispatch = inner(loop_cost(1, params) + loop_cost(1, params.div_ceil(lanes64)))
        + 1
        + loop_cost(1, u64::from(CANARY_ITERATIONS));
    if per_step + per_dispatch > LOOP_BUDGET {
        return Err(format!(
            "one step needs about {per_step} loop iterations per lane, more than the {LOOP_BUDGET} one dispatch may run"
        ));
    }
    let steps_per_dispatch = ((LOOP_BUDGET - per_dispatch) / per_step).min(u64::from(u32::MAX)) as u32;

    Ok(FusedPlan {
        lanes,
        subgroups,
        unrolled,
        iterations_per_step: per_step,
        steps_per_dispatch,
        exchange,
    })
}

/// Generates the module source for `spec` under `plan`.
pub fn source(spec: &TrainSpec, plan: &FusedPlan) -> String {
    let shape = Shape::new(spec);
    let architecture = &spec.architecture;
    let layers = architecture.layer_count();
    let codes: Vec<(u32, f32)> = (0..layers)
        .map(|l| shaders::activation_code(architecture.activation(l)))
        .collect();
    let (loss, delta) = shaders::loss_code(spec.loss);

    let header = Header::new(&format!("fused kernel for {}", architecture.describe()))
        .u32("LANES", plan.lanes as usize)
        .u32("LAYERS", layers)
        .u32("INPUTS", architecture.inputs())
        .u32("OUTPUTS", architecture.outputs())
        .u32("PARAMS", shape.params)
        .u32("UNITS", shape.units)
        .u32("SUMS", shape.sums)
        .u32("STATE_SLOTS", shape.state_slots)
        .u32("BEST_OFFSET", (1 + shape.state_slots) * shape.params)
        .u32("PREVIOUS_OFFSET", (2 + shape.state_slots) * shape.params)
        .u32("EXCHANGE", plan.exchange)
        .u32_array("LAYER_IN", &shape.layer_in)
        .u32_array("LAYER_OUT", &shape.layer_out)
        .u32_array("WEIGHT_OFFSET", &shape.weight_offset)
        .u32_array("BIAS_OFFSET", &shape.bias_offset)
        .u32_array("UNIT_OFFSET", &shape.unit_offset)
        .u32_array("ACTIVATION", &codes.iter().map(|c| c.0 as usize).collect::<Vec<_>>())
        .f32_array("SLOPE", &codes.iter().map(|c| c.1).collect::<Vec<_>>())
        .u32("LOSS", loss as usize)
        .f32("LOSS_DELTA", delta)
        .raw(&format!(
            "const OPTIMIZER = {};",
            shaders::optimizer_config(&spec.optimizer)
        ));
    if plan.unrolled {
        let functions = unrolled::functions(architecture, &shape, plan.lanes, plan.subgroups, plan.exchange);
        return header.assemble(&[shaders::FUSED, &functions]);
    }
    let reduce = if plan.subgroups {
        shaders::FUSED_SUBGROUP
    } else {
        shaders::FUSED_WORKGROUP
    };
    header.assemble(&[shaders::FUSED, shaders::FUSED_LOOPS, reduce])
}

/// A buffer that grows to the largest size a chunk needed.
struct GrowingBuffer {
    label: &'static str,
    buffer: wgpu::Buffer,
    capacity: u64,
}

impl GrowingBuffer {
    fn new(context: &GpuContext, label: &'static str, capacity: u64) -> Self {
        Self {
            label,
            buffer: context.storage_buffer(
                label,
                &vec![0u8; capacity.max(16) as usize],
                wgpu::BufferUsages::empty(),
            ),
            capacity: capacity.max(16),
        }
    }

    /// Makes room for `size` bytes; returns true when the buffer was replaced.
    fn reserve(&mut self, context: &GpuContext, size: u64) -> bool {
        if size <= self.capacity {
            return false;
        }
        let capacity = size.next_power_of_two();
        *self = Self::new(context, self.label, capacity);
        true
    }
}

/// Trains with the fused kernel.
pub struct FusedBackend<'c> {
    context: &'c GpuContext,
    plan: FusedPlan,
    params: usize,
    state_slots: usize,
    sums: usize,
    outputs: usize,
    config: FusedConfig,
    pipeline: wgpu::ComputePipeline,
    data: wgpu::Buffer,
    steps: GrowingBuffer,
    order: GrowingBuffer,
    model: wgpu::Buffer,
    logs: GrowingBuffer,
    run: wgpu::Buffer,
    uniforms: wgpu::Buffer,
    staging: wgpu::Buffer,
    staging_size: u64,
    bind_group: Option<wgpu::BindGroup>,
}

impl<'c> FusedBackend<'c> {
    /// Uploads the data and initial parameters and compiles the kernel.
    pub fn new(
        context: &'c GpuContext,
        spec: &TrainSpec,
        data: TrainingData<'_>,
        initial: &[f32],
        plan: FusedPlan,
    ) -> Result<Self, TrainError> {
        let shape = Shape::new(spec);
        let architecture = &spec.architecture;
        assert_eq!(
            initial.len(),
            shape.params,
            "initial parameters do not match the architecture"
        );

        // All data in one buffer: training features, targets, then validation.
        let mut values = Vec::new();
        let offset = |block: &[f32], values: &mut Vec<f32>| -> u32 {
            let start = values.len() as u32;
            values.extend_from_slice(block);
            start
        };
        let train_features = offset(data.train.features, &mut values);
        let train_targets = offset(data.train.targets, &mut values);
        let (val_rows, val_features, val_targets) = match data.validation {
            Some(validation) => (
                validation.rows as u32,
                offset(validation.features, &mut values),
                offset(validation.targets, &mut values),
            ),
            None => (0, 0, 0),
        };
        let data_bytes = (values.len() * 4) as u64;
        if data_bytes > context.limits.max_storage_buffer_binding_size {
            return Err(TrainError::Invalid(format!(
                "the data need {data_bytes} bytes, more than the adapter's storage binding limit of {} bytes",
                context.limits.max_storage_buffer_binding_size
            )));
        }
        let data_buffer = context.storage_buffer(
            &format!(
                "data: features [{}][{}], targets [{}][{}]",
                data.train.rows,
                architecture.inputs(),
                data.train.rows,
                architecture.outputs()
            ),
            bytemuck::cast_slice(&values),
            wgpu::BufferUsages::empty(),
        );

        // Parameters, zeroed optimizer state, the best parameters and those
        // before the last update.
        let mut model = initial.to_vec();
        model.resize((3 + shape.state_slots) * shape.params, 0.0);
        let model_buffer = context.storage_buffer(
            &format!(
                "model: parameters, optimizer state, best parameters ({} each)",
                shape.params
            ),
            bytemuck::cast_slice(&model),
            wgpu::BufferUsages::empty(),
        );
        let run = RunState {
            best_loss: f32::INFINITY,
            ..RunState::default()
        };
        let run_buffer = context.storage_buffer("run state", bytemuck::bytes_of(&run), wgpu::BufferUsages::empty());
        let uniforms = context.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("fused config"),
            size: std::mem::size_of::<FusedConfig>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });

        let source = source(spec, &plan);
        let pipeline = context.compute_pipeline("fused training loop", &source, "main")?;
        log::debug!(
            "fused kernel: {} code, {} lanes, {} reduction, {} loop iterations per step, {} steps per dispatch",
            if plan.unrolled { "straight-line" } else { "loop" },
            plan.lanes,
            if plan.subgroups { "subgroup" } else { "workgroup" },
            plan.iterations_per_step,
            plan.steps_per_dispatch
        );

        let config = FusedConfig {
            train_rows: data.train.rows as u32,
            val_rows,
            train_features,
            train_targets,
            val_features,
            val_targets,
            step_count: 0,
            steps_per_dispatch: plan.steps_per_dispatch,
            canary_iterations: CANARY_ITERATIONS,
            patience: spec.early_stop.map_or(u32::MAX, |p| p.min(u64::from(u32::MAX)) as u32),
            pad: [0; 2],
        };

        let staging_size = 4096;
        let mut backend = Self {
            context,
            params: shape.params,
            state_slots: shape.state_slots,
            sums: shape.sums,
            outputs: architecture.outputs(),
            config,
            pipeline,
            data: data_buffer,
            steps: GrowingBuffer::new(context, "schedule steps", 48 * 1024),
            order: GrowingBuffer::new(context, "row order", 4 * 1024),
            model: model_buffer,
            logs: GrowingBuffer::new(context, "log sums", 4096),
            run: run_buffer,
            uniforms,
            staging: context.staging_buffer("fused read-back", staging_size),
            staging_size,
            bind_group: None,
            plan,
        };

        // Some drivers (llvmpipe among them) compile a pipeline at its first
        // dispatch; an empty chunk moves that cost out of the timed training.
        backend.run_chunk(&Chunk::default())?;
        Ok(backend)
    }

    fn bind_group(&mut self) -> &wgpu::BindGroup {
        if self.bind_group.is_none() {
            let layout = self.pipeline.get_bind_group_layout(0);
            let entries = [
                self.data.as_entire_binding(),
                self.steps.buffer.as_entire_binding(),
                self.order.buffer.as_entire_binding(),
                self.model.as_entire_binding(),
                self.logs.buffer.as_entire_binding(),
                self.run.as_entire_binding(),
                self.uniforms.as_entire_binding(),
            ];
            let entries: Vec<wgpu::BindGroupEntry> = entries
                .into_iter()
                .enumerate()
                .map(|(binding, resource)| wgpu::BindGroupEntry {
                    binding: binding as u32,
                    resource,
                })
                .collect();
            self.bind_group = Some(self.context.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("fused bindings"),
                layout: &layout,
                entries: &entries,
            }));
        }
        self.bind_group.as_ref().expect("bind group was just created")
    }

    fn read(&mut self, source: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>, TrainError> {
        if size > self.staging_size {
            self.staging_size = size.next_power_of_two();
            self.staging = self.context.staging_buffer("fused read-back", self.staging_size);
        }
        let encoder = self
            .context
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("fused read-back"),
            });
        self.context.read_back(encoder, source, offset, size, &self.staging)
    }
}

impl Backend for FusedBackend<'_> {
    fn run_chunk(&mut self, chunk: &Chunk) -> Result<ChunkOutcome, TrainError> {
        let context = self.context;
        let slots = chunk.log_epochs.len();
        let log_bytes = (slots.max(1) * 2 * self.sums * 4) as u64;

        let mut replaced = self.steps.reserve(context, (chunk.steps.len() * 48) as u64);
        replaced |= self.order.reserve(context, (chunk.order.len() * 4) as u64);
        replaced |= self.logs.reserve(context, log_bytes);
        if replaced {
            self.bind_group = None;
        }
        context
            .queue
            .write_buffer(&self.steps.buffer, 0, bytemuck::cast_slice(&chunk.steps));
        if !chunk.order.is_empty() {
            context
                .queue
                .write_buffer(&self.order.buffer, 0, bytemuck::cast_slice(&chunk.order));
        }
        self.config.step_count = chunk.steps.len() as u32;
        context
            .queue
            .write_buffer(&self.uniforms, 0, bytemuck::bytes_of(&self.config));
        // Restart the schedule index and the fault counter; keep the rest of the run state.
        context.queue.write_buffer(&self.run, 0, bytemuck::bytes_of(&0u32));
        context.queue.write_buffer(
            &self.run,
            std::mem::offset_of!(RunState, loop_faults) as u64,
            bytemuck::bytes_of(&0u32),
        );

        let dispatches = chunk.steps.len().div_ceil(self.plan.steps_per_dispatch as usize).max(1);
        let mut encoder = context.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("fused chunk"),
        });
        {
            let bind_group = self.bind_group().clone();
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("fused steps"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            for _ in 0..dispatches {
                pass.dispatch_workgroups(1, 1, 1);
            }
        }

        // Read back the run state and the log sums together.
        let state_size = std::mem::size_of::<RunState>() as u64;
        let read_size = state_size + log_bytes;
        if read_size > self.staging_size {
            self.staging_size = read_size.next_power_of_two();
            self.staging = context.staging_buffer("fused read-back", self.staging_size);
        }
        encoder.copy_buffer_to_buffer(&self.run, 0, &self.staging, 0, state_size);
        encoder.copy_buffer_to_buffer(&self.logs.buffer, 0, &self.staging, state_size, log_bytes);
        context.queue.submit([encoder.finish()]);
        let bytes = context.map_staging(&self.staging, read_size)?;
        let run: RunState = bytemuck::pod_read_unaligned(&bytes[..state_size as usize]);
        let logs: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes[state_size as usize..]);
        if run.restore != 0 {
            // The run diverged: go back to the parameters before the last update.
            let bytes = (self.params * 4) as u64;
            let offset = ((2 + self.state_slots) * self.params * 4) as u64;
            let model = self.model.clone();
            let previous = self.read(&model, offset, bytes)?;
            context.queue.write_buffer(&self.model, 0, &previous);
            context
                .queue
                .write_buffer(&self.run, std::mem::offset_of!(RunState, restore) as u64, &[0; 4]);
            context.wait()?;
        }

        if run.loop_faults != 0 || run.next_step as usize != chunk.steps.len() {
            return Err(TrainError::KernelIncomplete {
                kernel: "fused training loop".into(),
                detail: format!(
                    "{} of {} steps done, {} dispatches with a short canary loop",
                    run.next_step,
                    chunk.steps.len(),
                    run.loop_faults
                ),
            });
        }

        Ok(super::chunk_outcome(
            chunk,
            &logs,
            self.outputs,
            self.config.val_rows > 0,
            super::HaltState {
                updates: run.updates,
                halt: run.halt,
                halt_epoch: run.halt_epoch,
                best_epoch: run.best_epoch,
            },
        ))
    }

    fn parameters(&mut self) -> Result<Vec<f32>, TrainError> {
        let model = self.model.clone();
        let bytes = self.read(&model, 0, (self.params * 4) as u64)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn restore_best(&mut self) -> Result<(), TrainError> {
        let bytes = (self.params * 4) as u64;
        let best_offset = ((1 + self.state_slots) * self.params * 4) as u64;
        let model = self.model.clone();
        let best = self.read(&model, best_offset, bytes)?;
        self.context.queue.write_buffer(&self.model, 0, &best);
        self.context.wait()
    }
}

impl FusedBackend<'_> {
    /// Returns the plan this backend runs with.
    pub fn plan(&self) -> &FusedPlan {
        &self.plan
    }
}
