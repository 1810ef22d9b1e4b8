//! Host side of the general path: one kernel per layer operation over many
//! workgroups, for problems too large for the fused kernel.
//!
//! Per optimizer step, for each piece of rows (a piece's activations fit
//! one storage binding): `forward` for every layer (the output layer also
//! takes the loss), then from the last layer down `weight_gradient` and
//! `backward_input`. A narrow output layer instead trains in one `head`
//! kernel that reads its input rows once. After all pieces, `reduce_sums`
//! and `reduce_gradients` add up the per-workgroup partials, and a
//! validation pass runs `forward` over the validation blocks. Then `control`
//! records the logs and decides the update, `update` applies the optimizer
//! to all parameters in one dispatch, and `commit` rejects an update that
//! made a parameter non-finite. Every step of a chunk is recorded in one compute
//! pass and submitted once. The host reads back only the run state and the
//! log sums.
//!
//! On the GPU the parameters and every row of data and activations are
//! padded with zeros to multiples of 4 values, so the kernels read `vec4`s
//! (see `shaders/linear.wgsl`). [`Layout`] converts between that layout and
//! the flat `state_dict()` order.

use std::collections::HashMap;
use std::fmt;

use bytemuck::{Pod, Zeroable};

use super::shaders::{self, Header};
use super::{GpuContext, KernelProfiler};
use crate::model::{Activation, Architecture};
use crate::schedule::{Chunk, EVALUATE, Step, UPDATE, VALIDATE};
use crate::train::{Backend, ChunkOutcome, Samples, TrainError, TrainSpec, TrainingData};

/// Loop iterations one invocation may run per dispatch: llvmpipe stops an
/// invocation after 65,535, so every kernel is sized to stay below.
const LOOP_BUDGET: u64 = 60_000;

/// Invocations per workgroup of every general kernel.
const LANES: u32 = 64;

/// Rows per lane in `forward` and `backward_input`: each weight vector
/// loaded serves this many rows.
const ROWS_PER_LANE: usize = 4;

/// Outputs per lane in the forward kernel of hidden layers.
const TILE_OUTPUTS: usize = 16;

/// Rows of the input staged at once in workgroup memory by `weight_gradient`.
const TILE_ROWS: usize = 16;

/// Rows per split of the weight gradient: each split's partial sums go to
/// their own slot, and `reduce_gradients` adds the slots up. Large models
/// get longer splits, so the slots fit one storage binding.
const GRAD_ROWS: usize = 1024;

/// Layers with at least this many outputs share dZ across lanes in the
/// weight gradient. Narrower ones give each lane one input vector and all
/// outputs.
const WIDE_OUTPUTS_FROM: usize = 16;

/// Lane layouts of `weight_gradient` (`GRADIENT_MODE` in linear.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GradientMode {
    /// One lane per input vector, all outputs per lane (few outputs).
    InputLanes = 0,
    /// Subgroup tiles of outputs by input vectors (many of both).
    Tiles = 1,
    /// One lane per output, all input vectors per lane (few inputs).
    OutputLanes = 2,
}

/// Largest `OUT * IN4` for which the output layer trains with the `head`
/// kernel, whose lanes each keep all of W and its gradient.
const HEAD_MAX: usize = 64;

/// Vectors per lane and round of the `head` kernel's workgroup sums.
const HEAD_CHUNK: usize = 16;

/// Most outputs the output layer may have (it keeps all of a row's outputs in one tile).
const MAX_OUTPUTS: usize = 64;

/// Per-dispatch immediates (`Dispatch` in general.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Dispatch {
    step: Step,
    batch_offset: u32,
    data_row: u32,
    rows: u32,
    slot: u32,
    flags: u32,
    grad_slot: u32,
    pad: [u32; 2],
}

const GATHER_ROWS: u32 = 1;
const WANT_GRADIENT: u32 = 2;

/// Run state shared with the kernels (`RunState` in general.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct RunState {
    updates: u32,
    halt: u32,
    halt_epoch: u32,
    has_best: u32,
    best_epoch: u32,
    best_loss: f32,
    snapshot: u32,
    apply: u32,
    nonfinite: u32,
    patience: u32,
    rejected: u32,
    pad: u32,
}

/// Profiler labels by layer (the last one covers deeper layers).
const FORWARD_LABELS: [&str; 4] = [
    "forward layer 0",
    "forward layer 1",
    "forward layer 2",
    "forward layer 3+",
];
const GRADIENT_LABELS: [&str; 4] = [
    "weight_gradient layer 0",
    "weight_gradient layer 1",
    "weight_gradient layer 2",
    "weight_gradient layer 3+",
];
const BACKWARD_LABELS: [&str; 4] = [
    "backward_input layer 0",
    "backward_input layer 1",
    "backward_input layer 2",
    "backward_input layer 3+",
];

/// The padded parameter layout: per layer `W[O][IN4 * 4]` then `b[OUT4 * 4]`.
#[derive(Clone, Debug)]
pub struct Layout {
    layers: Vec<LayerLayout>,
    /// Floats in the padded layout (a multiple of 4).
    pub padded: usize,
}

#[derive(Clone, Copy, Debug)]
struct LayerLayout {
    inputs: usize,
    outputs: usize,
    in4: usize,
    out4: usize,
    /// Offset of W in vectors.
    w4: usize,
    /// Offset of b in floats (a multiple of 4).
    b: usize,
}

impl Layout {
    pub fn new(architecture: &Architecture) -> Self {
        let mut layers = Vec::new();
        let mut offset = 0;
        for l in 0..architecture.layer_count() {
            let (inputs, outputs) = architecture.layer_shape(l);
            let (in4, out4) = (inputs.div_ceil(4), outputs.div_ceil(4));
            let w4 = offset / 4;
            let b = offset + outputs * in4 * 4;
            offset = b + out4 * 4;
            layers.push(LayerLayout {
                inputs,
                outputs,
                in4,
                out4,
                w4,
                b,
            });
        }
        Self { layers, padded: offset }
    }

    /// Flat `state_dict()` order to the padded layout.
    pub fn pack(&self, architecture: &Architecture, flat: &[f32]) -> Vec<f32> {
        let mut padded = vec![0.0; self.padded];
        for (l, layer) in self.layers.iter().enumerate() {
            let (w, b) = architecture.parameter_offsets(l);
            for o in 0..layer.outputs {
                let source = &flat[w + o * layer.inputs..w + (o + 1) * layer.inputs];
                let start = layer.w4 * 4 + o * layer.in4 * 4;
                padded[start..start + layer.inputs].copy_from_slice(source);
            }
            padded[layer.b..layer.b + layer.outputs].copy_from_slice(&flat[b..b + layer.outputs]);
        }
        padded
    }

    /// Converts the padded layout back to flat `state_dict()` order.
    pub fn unpack(&self, architecture: &Architecture, padded: &[f32]) -> Vec<f32> {
        let mut flat = vec![0.0; architecture.parameter_count()];
        for (l, layer) in self.layers.iter().enumerate() {
            let (w, b) = architecture.parameter_offsets(l);
            for o in 0..layer.outputs {
                let start = layer.w4 * 4 + o * layer.in4 * 4;
                flat[w + o * layer.inputs..w + (o + 1) * layer.inputs]
                    .copy_from_slice(&padded[start..start + layer.inputs]);
            }
            flat[b..b + layer.outputs].copy_from_slice(&padded[layer.b..layer.b + layer.outputs]);
        }
        flat
    }
}

/// Kernel geometry of one layer.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    layout: LayerLayout,
    /// Outputs per forward tile.
    to: usize,
    /// Vectors per input tile.
    kt: usize,
    gradient_mode: GradientMode,
    /// The output layer trains with the fused `head` kernel.
    head: bool,
}

impl Geometry {
    fn new(layout: LayerLayout, output_layer: bool, first_layer: bool, kt: usize) -> Self {
        Self {
            head: output_layer && !first_layer && layout.outputs <= 4 && layout.outputs * layout.in4 <= HEAD_MAX,
            layout,
            to: if output_layer { layout.outputs } else { TILE_OUTPUTS },
            kt,
            gradient_mode: if layout.outputs < WIDE_OUTPUTS_FROM {
                GradientMode::InputLanes
            } else if layout.in4 < kt {
                GradientMode::OutputLanes
            } else {
                GradientMode::Tiles
            },
        }
    }

    fn o_tiles(&self) -> usize {
        self.layout.outputs.div_ceil(self.to)
    }

    fn k_tiles(&self) -> usize {
        self.layout.in4.div_ceil(self.kt)
    }

    /// Workgroups of `weight_gradient` per row split.
    fn gradient_groups_per_split(&self) -> usize {
        match self.gradient_mode {
            GradientMode::Tiles => {
                // Tiles of kt outputs by kt input vectors, one per subgroup of kt lanes.
                let tiles = self.layout.outputs.div_ceil(self.kt) * self.layout.in4.div_ceil(self.kt);
                tiles.div_ceil(LANES as usize / self.kt)
            }
            GradientMode::OutputLanes => self.layout.outputs.div_ceil(LANES as usize),
            GradientMode::InputLanes => (self.layout.in4 + 1).div_ceil(LANES as usize),
        }
    }

    /// Loop iterations per invocation of the costliest kernel, counting every
    /// loop as written in linear.wgsl plus one exit test per loop run.
    fn loop_iterations(&self, grad_rows: usize) -> u64 {
        let (to, kt, rpl) = (self.to as u64, self.kt as u64, ROWS_PER_LANE as u64);
        let (in4, out4) = (self.layout.in4 as u64, self.layout.out4 as u64);
        let lanes = u64::from(LANES);
        let staging = (to * kt).div_ceil(lanes) + 1 + to + 1;
        let forward_tile = staging + rpl * (kt + 1) + 1 + to * (kt * (rpl + 1) + 1 + rpl + 1) + 1;
        let forward = 2 * (rpl + 1) + self.k_tiles() as u64 * forward_tile + rpl * (to + 2) * 5 + 64;
        let backward_step = 5 + (4 * kt).div_ceil(lanes) + rpl + 1 + 4 * (kt * (rpl + 1) + 1) + 1;
        let backward = rpl + 1 + out4 * backward_step + rpl * (kt + 1) * 5;
        let gradient_row = match self.gradient_mode {
            GradientMode::Tiles | GradientMode::OutputLanes => kt + 2,
            GradientMode::InputLanes => out4 * 6 + 2,
        };
        let gradient = grad_rows as u64 * gradient_row
            + (grad_rows as u64).div_ceil(TILE_ROWS as u64) * ((TILE_ROWS as u64 * kt).div_ceil(lanes) + 2)
            + in4.max(out4) * 5
            + 16;
        let head = if self.head {
            let rows = (grad_rows as u64).div_ceil(lanes);
            let out = self.layout.outputs as u64;
            let entries = out * in4 + 1 + 16;
            rows * (in4 + 1 + out * (in4 + 2) + in4 * (out + 6) + 1)
                + entries.div_ceil(HEAD_CHUNK as u64) * (HEAD_CHUNK as u64 * 6 + lanes + 4)
                + out * (in4 + 1)
        } else {
            0
        };
        forward.max(backward).max(gradient).max(head)
    }
}

/// The general path's sizes and choices for one problem.
#[derive(Clone, Debug)]
pub struct GeneralPlan {
    pub lanes: u32,
    /// Operands shared through subgroup shuffles (CPU adapters) rather than
    /// workgroup-memory tiles (GPUs).
    pub shuffle: bool,
    /// Subgroup size the shuffles assume.
    pub subgroup_size: u32,
    /// Rows per piece; each piece's activations fit one storage binding.
    pub block_rows: usize,
    /// Blocks of training rows.
    pub train_blocks: usize,
    pub grad_rows: usize,
    /// Maximum workgroups per grid dimension.
    pub max_grid_x: u32,
}

impl fmt::Display for GeneralPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lanes, {}, {} block(s) of up to {} rows, gradient splits of {} rows",
            self.lanes,
            if self.shuffle {
                format!("operands shared by subgroup shuffles of {}", self.subgroup_size)
            } else {
                "operands shared through workgroup-memory tiles".to_string()
            },
            self.train_blocks,
            self.block_rows,
            self.grad_rows
        )
    }
}

/// Whether the fused kernel is expected to be faster than the general path.
///
/// The fused kernel runs on one workgroup, so its time grows with rows times
/// parameters. The general path spreads that work over the whole device but
/// pays a dozen or more dispatches per step (on llvmpipe each costs tens of
/// microseconds). On llvmpipe the fused kernel wins up to a few million
/// row-parameters per epoch: 442 rows x 321 parameters ran at 1,600 epochs/s
/// fused (loop form) and 460 general.
// NOTE: both thresholds are estimates from runs on llvmpipe; no GPU has checked the second.
pub fn prefers_fused(context: &GpuContext, spec: &TrainSpec, data: TrainingData<'_>) -> bool {
    let work = (data.train.rows + data.validation.map_or(0, |v| v.rows)) * spec.architecture.parameter_count();
    let threshold = if context.is_cpu { 4_000_000 } else { 1_000_000 };
    work <= threshold
}

/// Returns whether the activation's derivative needs the pre-activation `x`, not only `y = f(x)`.
fn needs_pre_activation(activation: Activation) -> bool {
    match activation {
        Activation::Gelu | Activation::GeluTanh => true,
        Activation::LeakyRelu { negative_slope } => negative_slope <= 0.0,
        _ => false,
    }
}

/// Overrides for tests and benchmarks; `None` lets the plan decide.
#[derive(Clone, Copy, Debug, Default)]
pub struct GeneralOptions {
    /// Share operands by subgroup shuffles (needs subgroups of a fixed size).
    pub shuffle: Option<bool>,
    /// Maximum rows per piece, below what the binding limit allows.
    pub block_rows: Option<usize>,
    /// Maximum workgroups per grid dimension, below the adapter's limit, to
    /// exercise the 2D grids that dispatches past 65,535 workgroups need.
    pub max_grid_x: Option<u32>,
}

/// Checks that the general path can run the problem and sizes its pieces.
pub fn plan(
    context: &GpuContext,
    spec: &TrainSpec,
    data: TrainingData<'_>,
    options: GeneralOptions,
) -> Result<GeneralPlan, TrainError> {
    if !context.immediates {
        return Err(TrainError::Invalid(format!(
            "the general kernel path needs immediate data (push constants), which {} does not offer; \
             train on the CPU reference with --device cpu",
            context.adapter.name
        )));
    }
    let outputs = spec.architecture.outputs();
    if outputs > MAX_OUTPUTS {
        return Err(TrainError::Invalid(format!(
            "the general kernel path supports at most {MAX_OUTPUTS} outputs, not {outputs}"
        )));
    }

    // Shuffles need subgroups of one known size, which serves as the tile width.
    let (min_subgroup, max_subgroup) = context.subgroup_size;
    let shuffle_possible = context.subgroups && min_subgroup == max_subgroup && (4..=64).contains(&min_subgroup);
    let shuffle = options.shuffle.unwrap_or(context.is_cpu) && shuffle_possible;
    let subgroup_size = if shuffle { min_subgroup } else { 8 };

    // Rows per piece: every per-piece buffer must fit one storage binding.
    let layout = Layout::new(&spec.architecture);
    let binding = context
        .limits
        .max_storage_buffer_binding_size
        .min(context.limits.max_buffer_size);
    let widest = layout.layers.iter().map(|l| l.in4.max(l.out4) * 4).max().unwrap_or(4) as u64;
    let mut max_block = ((binding / (4 * widest)) as usize / LANES as usize * LANES as usize).max(LANES as usize);
    if let Some(rows) = options.block_rows {
        max_block = max_block.min(rows.max(1));
    }
    let block_rows = data
        .train
        .rows
        .max(data.validation.map_or(0, |v| v.rows))
        .min(max_block)
        .max(1);
    let train_blocks = data.train.rows.div_ceil(block_rows);

    // Gradient slots: one per split of every piece, all in one binding.
    let padded_bytes = (layout.padded * 4) as u64;
    let max_slots = (binding / padded_bytes) as usize;
    let pieces = data.train.rows.div_ceil(block_rows);
    if max_slots <= pieces {
        return Err(TrainError::Invalid(format!(
            "the model's {} parameters need {padded_bytes} bytes per gradient slot, too many for the adapter's \
             binding limit of {binding} bytes; use a smaller model or --device cpu",
            spec.architecture.parameter_count()
        )));
    }
    let grad_rows = GRAD_ROWS.max(data.train.rows.div_ceil(max_slots - pieces));

    // Loop iterations per invocation, counted as linear.wgsl writes them.
    let layers = spec.architecture.layer_count();
    for (l, layer) in layout.layers.iter().enumerate() {
        let geometry = Geometry::new(*layer, l + 1 == layers, l == 0, subgroup_size as usize);
        let iterations = geometry.loop_iterations(grad_rows);
        if iterations > LOOP_BUDGET {
            return Err(TrainError::Invalid(format!(
                "layer {l} ({} -> {}) needs about {iterations} loop iterations per GPU invocation, more than \
                 the {LOOP_BUDGET} one dispatch may run; use narrower layers, fewer rows or --device cpu",
                layer.inputs, layer.outputs
            )));
        }
    }

    if spec.batching.batch_size().is_some() {
        let feature_bytes = (data.train.rows * layout.layers[0].in4 * 16) as u64;
        if feature_bytes > binding {
            return Err(TrainError::Invalid(format!(
                "mini-batches on the GPU gather rows from one buffer, but the training features need {feature_bytes} \
                 bytes, more than the adapter's limit of {binding} bytes per binding; train with full batches or \
                 --device cpu"
            )));
        }
    }

    Ok(GeneralPlan {
        lanes: LANES,
        shuffle,
        subgroup_size,
        block_rows,
        train_blocks,
        grad_rows,
        max_grid_x: options
            .max_grid_x
            .unwrap_or(u32::MAX)
            .min(context.limits.max_compute_workgroups_per_dimension),
    })
}

/// The WGSL modules of the general path for one problem.
pub struct Sources {
    /// One module per layer, with the entry points forward, backward_input and weight_gradient.
    pub layers: Vec<String>,
    /// reduce_gradients, reduce_sums and control.
    pub reduce: String,
    /// The optimizer's update.
    pub update: String,
    geometry: Vec<Geometry>,
}

impl Sources {
    pub fn new(spec: &TrainSpec, plan: &GeneralPlan) -> Self {
        let architecture = &spec.architecture;
        let layout = Layout::new(architecture);
        let padded = layout.padded;
        let outputs = architecture.outputs();
        let sums = 1 + 2 * outputs;
        let layers = architecture.layer_count();
        let (loss, delta) = shaders::loss_code(spec.loss);
        let lanes = plan.lanes as usize;
        let spread = if plan.shuffle {
            "fn spread(v: vec4<f32>, k: u32) -> vec4<f32> { return subgroupShuffle(v, k); }\n\
             fn spread1(v: f32, k: u32) -> f32 { return subgroupShuffle(v, k); }"
        } else {
            "fn spread(v: vec4<f32>, k: u32) -> vec4<f32> { return v; }\nfn spread1(v: f32, k: u32) -> f32 { return v; }"
        };
        let kt = plan.subgroup_size as usize;

        let mut sources = Vec::with_capacity(layers);
        let mut geometries = Vec::with_capacity(layers);
        for (l, layer) in layout.layers.iter().enumerate() {
            let output_layer = l + 1 == layers;
            let geometry = Geometry::new(*layer, output_layer, l == 0, kt);
            let activation = architecture.activation(l);
            let previous = if l > 0 {
                architecture.activation(l - 1)
            } else {
                Activation::Identity
            };
            let (act, slope) = shaders::activation_code(activation);
            let (prev_act, prev_slope) = shaders::activation_code(previous);
            let tile_size = (geometry.to * kt).max(4 * kt).max(TILE_ROWS * kt);
            let header = Header::new(&format!(
                "general kernels for layer {l} ({} -> {})",
                layer.inputs, layer.outputs
            ))
            .u32("WG", lanes)
            .u32("SG", plan.subgroup_size as usize)
            .bool("SHUFFLE", plan.shuffle)
            .u32("LAYER", l)
            .u32("IN", layer.inputs)
            .u32("IN4", layer.in4)
            .u32("OUT", layer.outputs)
            .u32("OUT4", layer.out4)
            .u32("W4", layer.w4)
            .u32("B", layer.b)
            .u32("PARAMS4", padded / 4)
            .u32("SUMS", sums)
            .u32("KT", kt)
            .u32("TO", geometry.to)
            .u32("RPL", ROWS_PER_LANE)
            .u32("TR", TILE_ROWS)
            .u32("TILE_SIZE", tile_size)
            .u32("ACT", act as usize)
            .f32("SLOPE", slope)
            .u32("PREV_ACT", prev_act as usize)
            .f32("PREV_SLOPE", prev_slope)
            .bool("STORE_PRE", needs_pre_activation(activation))
            .bool("PREV_PRE", l > 0 && needs_pre_activation(previous))
            .bool("OUTPUT_LAYER", output_layer)
            .u32("LOSS", loss as usize)
            .f32("LOSS_DELTA", delta)
            .u32("GRAD_ROWS", plan.grad_rows)
            .u32("KT_USED", kt.min(layer.in4))
            .u32("GRADIENT_MODE", geometry.gradient_mode as usize)
            .u32("HEAD_CHUNK", HEAD_CHUNK)
            .u32("HEAD_TILE", if geometry.head { lanes * HEAD_CHUNK } else { 1 })
            .u32("GRADIENT_GROUPS_PER_SPLIT", geometry.gradient_groups_per_split())
            .raw(spread);
            sources.push(header.assemble(&[shaders::GENERAL, shaders::LINEAR]));
            geometries.push(geometry);
        }
        let common = Header::new("general reductions and optimizer")
            .u32("WG", lanes)
            .u32("PARAMS", padded)
            .u32("SUMS", sums)
            .u32("OUTPUTS", outputs)
            .u32("STATE_SLOTS", spec.optimizer.state_slots())
            .raw(&format!(
                "const OPTIMIZER = {};",
                shaders::optimizer_config(&spec.optimizer)
            ));
        Self {
            layers: sources,
            reduce: common.assemble(&[shaders::GENERAL, shaders::REDUCE]),
            update: common.assemble(&[shaders::GENERAL, shaders::OPTIMIZER]),
            geometry: geometries,
        }
    }
}

/// A pipeline and the bindings of group 0 its entry point uses.
struct Kernel {
    pipeline: wgpu::ComputePipeline,
    bindings: Vec<u32>,
}

impl Kernel {
    fn new(context: &GpuContext, label: &str, source: &str, entry_point: &str) -> Result<Self, TrainError> {
        let pipeline = context.compute_pipeline(label, source, entry_point)?;
        let bindings = shaders::used_bindings(source, entry_point)
            .map_err(|error| TrainError::Gpu(format!("shader '{label}': {error}")))?;
        Ok(Self { pipeline, bindings })
    }

    /// Creates a bind group with the buffers this kernel uses, taken from `resources` by binding.
    fn bind(&self, context: &GpuContext, label: &str, resources: &HashMap<u32, &wgpu::Buffer>) -> wgpu::BindGroup {
        let layout = self.pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry> = self
            .bindings
            .iter()
            .map(|binding| wgpu::BindGroupEntry {
                binding: *binding,
                resource: resources
                    .get(binding)
                    .unwrap_or_else(|| panic!("kernel '{label}' uses binding {binding}, which has no buffer"))
                    .as_entire_binding(),
            })
            .collect();
        context.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &layout,
            entries: &entries,
        })
    }
}

/// The kernels of one layer.
struct LayerKernels {
    geometry: Geometry,
    forward: Kernel,
    backward_input: Option<Kernel>,
    weight_gradient: Kernel,
}

/// Rows of data on the GPU: features padded to `[rows][IN4 * 4]`, targets `[rows][O]`.
struct DataBlock {
    rows: usize,
    features: wgpu::Buffer,
    targets: wgpu::Buffer,
}

fn upload_blocks(context: &GpuContext, name: &str, samples: Samples<'_>, block_rows: usize) -> Vec<DataBlock> {
    let padded_width = samples.inputs.div_ceil(4) * 4;
    (0..samples.rows)
        .step_by(block_rows.max(1))
        .map(|start| {
            let rows = block_rows.min(samples.rows - start);
            let mut features = vec![0.0_f32; rows * padded_width];
            for r in 0..rows {
                features[r * padded_width..r * padded_width + samples.inputs]
                    .copy_from_slice(samples.feature_row(start + r));
            }
            let targets = &samples.targets[start * samples.outputs..(start + rows) * samples.outputs];
            DataBlock {
                rows,
                features: context.storage_buffer(
                    &format!(
                        "{name} features rows {start}..{} [{rows}][{padded_width}]",
                        start + rows
                    ),
                    bytemuck::cast_slice(&features),
                    wgpu::BufferUsages::empty(),
                ),
                targets: context.storage_buffer(
                    &format!(
                        "{name} targets rows {start}..{} [{rows}][{}]",
                        start + rows,
                        samples.outputs
                    ),
                    bytemuck::cast_slice(targets),
                    wgpu::BufferUsages::empty(),
                ),
            }
        })
        .collect()
}

/// Per-piece activation buffers of every layer and the partial-sum buffers.
struct Buffers {
    grads: wgpu::Buffer,
    state: wgpu::Buffer,
    sums: wgpu::Buffer,
    grad_partials: wgpu::Buffer,
    sum_partials: wgpu::Buffer,
    /// Per layer: output Y, pre-activation Z (empty unless needed), gradient dZ; each `[rows][OUT4 * 4]`.
    outputs: Vec<wgpu::Buffer>,
    pre: Vec<wgpu::Buffer>,
    grads_out: Vec<wgpu::Buffer>,
}

struct BindGroups {
    /// [block][layer] forward over training blocks.
    train_forward: Vec<Vec<wgpu::BindGroup>>,
    /// [block][layer] weight gradient over training blocks.
    weight_gradient: Vec<Vec<wgpu::BindGroup>>,
    /// [layer] backward_input (layer 0 has none).
    backward_input: Vec<Option<wgpu::BindGroup>>,
    /// [block][layer] forward over validation blocks.
    val_forward: Vec<Vec<wgpu::BindGroup>>,
    reduce_gradients: wgpu::BindGroup,
    reduce_sums: wgpu::BindGroup,
    control: wgpu::BindGroup,
    update: wgpu::BindGroup,
    commit: wgpu::BindGroup,
    /// [block] the output layer's head over training blocks (empty without a head).
    head: Vec<wgpu::BindGroup>,
}

/// Returns a 2D grid of at least `workgroups` workgroups with at most `max_x`
/// per row. The kernels flatten it and skip the indices past the end.
fn grid(max_x: u32, workgroups: usize) -> (u32, u32) {
    let max = max_x.max(1) as usize;
    let x = workgroups.clamp(1, max);
    (x as u32, workgroups.div_ceil(x).max(1) as u32)
}

/// Trains with the general kernels.
pub struct GeneralBackend<'c> {
    context: &'c GpuContext,
    plan: GeneralPlan,
    architecture: Architecture,
    layout: Layout,
    sums: usize,
    outputs: usize,
    val_rows: usize,
    train: Vec<DataBlock>,
    validation: Vec<DataBlock>,
    kernels: Vec<LayerKernels>,
    reduce_gradients: Kernel,
    reduce_sums: Kernel,
    control: Kernel,
    update: Kernel,
    commit: Kernel,
    /// The output layer's fused training step (`head` in linear.wgsl), when it is narrow enough.
    head: Option<Kernel>,
    params: wgpu::Buffer,
    /// Parameters before the last update, restored when `commit` rejects it.
    previous: wgpu::Buffer,
    best: wgpu::Buffer,
    run: wgpu::Buffer,
    logs: wgpu::Buffer,
    log_bytes: usize,
    order: wgpu::Buffer,
    order_bytes: usize,
    bind_groups: Option<BindGroups>,
    buffers: Buffers,
    staging: wgpu::Buffer,
    staging_size: u64,
    profiler: Option<KernelProfiler>,
}

impl<'c> GeneralBackend<'c> {
    /// Uploads the data and parameters and compiles every kernel.
    pub fn new(
        context: &'c GpuContext,
        spec: &TrainSpec,
        data: TrainingData<'_>,
        initial: &[f32],
        plan: GeneralPlan,
    ) -> Result<Self, TrainError> {
        let architecture = &spec.architecture;
        assert_eq!(
            initial.len(),
            architecture.parameter_count(),
            "initial parameters do not match the architecture"
        );
        let layout = Layout::new(architecture);
        let padded = layout.padded;
        let outputs = architecture.outputs();
        let sums = 1 + 2 * outputs;
        let layers = architecture.layer_count();
        let lanes = plan.lanes as usize;

        // Training data in blocks; mini-batches gather from a single block.
        let data_block_rows = if spec.batching.batch_size().is_some() {
            data.train.rows
        } else {
            plan.block_rows
        };
        let train = upload_blocks(context, "training", data.train, data_block_rows);
        let validation = match data.validation {
            Some(samples) => upload_blocks(context, "validation", samples, plan.block_rows),
            None => Vec::new(),
        };

        // Kernels, one module per layer.
        let sources = Sources::new(spec, &plan);
        let mut kernels = Vec::with_capacity(layers);
        for (l, source) in sources.layers.iter().enumerate() {
            kernels.push(LayerKernels {
                geometry: sources.geometry[l],
                forward: Kernel::new(context, &format!("layer {l} forward"), source, "forward")?,
                backward_input: if l > 0 {
                    Some(Kernel::new(
                        context,
                        &format!("layer {l} backward_input"),
                        source,
                        "backward_input",
                    )?)
                } else {
                    None
                },
                weight_gradient: Kernel::new(
                    context,
                    &format!("layer {l} weight_gradient"),
                    source,
                    "weight_gradient",
                )?,
            });
        }
        let (reduce_source, update_source) = (&sources.reduce, &sources.update);
        let reduce_gradients = Kernel::new(context, "reduce gradients", reduce_source, "reduce_gradients")?;
        let reduce_sums = Kernel::new(context, "reduce sums", reduce_source, "reduce_sums")?;
        let control = Kernel::new(context, "step control", reduce_source, "control")?;
        let update = Kernel::new(context, "optimizer update", update_source, "update")?;
        let commit = Kernel::new(context, "commit update", reduce_source, "commit")?;
        let head = match sources.geometry.last() {
            Some(geometry) if geometry.head => Some(Kernel::new(
                context,
                "output layer head",
                sources.layers.last().expect("a layer"),
                "head",
            )?),
            _ => None,
        };

        // Parameters, optimizer state and run state.
        let packed = layout.pack(architecture, initial);
        let params = context.storage_buffer(
            &format!("parameters, padded [{padded}]"),
            bytemuck::cast_slice(&packed),
            wgpu::BufferUsages::empty(),
        );
        let best = context.storage_buffer(
            "best parameters",
            bytemuck::cast_slice(&packed),
            wgpu::BufferUsages::empty(),
        );
        let previous = context.storage_buffer(
            "parameters before the last update",
            bytemuck::cast_slice(&packed),
            wgpu::BufferUsages::empty(),
        );
        let run = RunState {
            best_loss: f32::INFINITY,
            patience: spec.early_stop.map_or(u32::MAX, |p| p.min(u64::from(u32::MAX)) as u32),
            ..RunState::default()
        };

        // Every pass (training or validation) cuts its rows into pieces of at
        // most `block_rows`. Each piece adds one loss partial per workgroup of
        // rows and one gradient slot per split.
        let zeros = |count: usize| vec![0u8; count * 4];
        let max_rows = data.train.rows.max(data.validation.map_or(0, |v| v.rows)).max(1);
        let piece_rows = plan.block_rows.min(max_rows);
        let pieces = max_rows.div_ceil(piece_rows);
        let sum_slots = max_rows.div_ceil(lanes * ROWS_PER_LANE) + pieces;
        let grad_slots = data.train.rows.div_ceil(plan.grad_rows) + pieces;
        let activation_buffer = |kind: &str, l: usize, width4: usize, rows: usize| {
            context.storage_buffer(
                &format!("layer {l} {kind} [{rows}][{}]", width4 * 4),
                &zeros(rows * width4 * 4),
                wgpu::BufferUsages::empty(),
            )
        };
        let buffers = Buffers {
            grads: context.storage_buffer("gradients", &zeros(padded), wgpu::BufferUsages::empty()),
            state: context.storage_buffer(
                "optimizer state",
                &zeros(padded * spec.optimizer.state_slots()),
                wgpu::BufferUsages::empty(),
            ),
            sums: context.storage_buffer("loss sums [2][SUMS]", &zeros(2 * sums), wgpu::BufferUsages::empty()),
            grad_partials: context.storage_buffer(
                &format!("gradient partials [{grad_slots}][{padded}]"),
                &zeros(grad_slots * padded),
                wgpu::BufferUsages::empty(),
            ),
            sum_partials: context.storage_buffer(
                &format!("loss partials [{sum_slots}][{sums}]"),
                &zeros(sum_slots * sums),
                wgpu::BufferUsages::empty(),
            ),
            outputs: (0..layers)
                .map(|l| activation_buffer("output", l, layout.layers[l].out4, piece_rows))
                .collect(),
            pre: (0..layers)
                .map(|l| {
                    let rows = if needs_pre_activation(architecture.activation(l)) {
                        piece_rows
                    } else {
                        0
                    };
                    activation_buffer("pre-activation", l, layout.layers[l].out4, rows)
                })
                .collect(),
            grads_out: (0..layers)
                .map(|l| activation_buffer("gradient dZ", l, layout.layers[l].out4, piece_rows))
                .collect(),
        };
        log::debug!("general path: pieces of {piece_rows} rows, {grad_slots} gradient slots, {sum_slots} loss slots");

        let staging_size = 4096;
        Ok(Self {
            context,
            architecture: architecture.clone(),
            sums,
            outputs,
            val_rows: data.validation.map_or(0, |v| v.rows),
            train,
            validation,
            kernels,
            reduce_gradients,
            reduce_sums,
            control,
            update,
            commit,
            head,
            params,
            previous,
            best,
            run: context.storage_buffer("run state", bytemuck::bytes_of(&run), wgpu::BufferUsages::empty()),
            logs: context.storage_buffer("log sums", &zeros(1024), wgpu::BufferUsages::empty()),
            log_bytes: 4096,
            order: context.storage_buffer("row order", &zeros(1024), wgpu::BufferUsages::empty()),
            order_bytes: 4096,
            bind_groups: None,
            buffers,
            staging: context.staging_buffer("general read-back", staging_size),
            staging_size,
            profiler: KernelProfiler::from_environment(context, 4095),
            layout,
            plan,
        })
    }

    /// Returns the plan this backend runs with.
    pub fn plan(&self) -> &GeneralPlan {
        &self.plan
    }

    fn create_bind_groups(&self) -> BindGroups {
        let context = self.context;
        let b = &self.buffers;
        let layers = self.kernels.len();
        let forward_group = |block: &DataBlock, l: usize, label: &str| {
            let mut resources: HashMap<u32, &wgpu::Buffer> = HashMap::new();
            resources.insert(0, &self.params);
            resources.insert(1, if l == 0 { &block.features } else { &b.outputs[l - 1] });
            resources.insert(2, &b.outputs[l]);
            resources.insert(3, &b.pre[l]);
            resources.insert(4, &block.targets);
            resources.insert(5, &b.grads_out[l]);
            resources.insert(6, &b.sum_partials);
            resources.insert(7, &self.order);
            self.kernels[l].forward.bind(context, label, &resources)
        };
        let gradient_group = |block: &DataBlock, l: usize| {
            let mut resources: HashMap<u32, &wgpu::Buffer> = HashMap::new();
            resources.insert(1, if l == 0 { &block.features } else { &b.outputs[l - 1] });
            resources.insert(7, &self.order);
            resources.insert(8, &b.grads_out[l]);
            resources.insert(10, &b.grad_partials);
            resources.insert(11, &b.grads_out[l]);
            self.kernels[l]
                .weight_gradient
                .bind(context, &format!("layer {l} weight gradient"), &resources)
        };

        let train_forward = self
            .train
            .iter()
            .map(|block| {
                (0..layers)
                    .map(|l| forward_group(block, l, "training forward"))
                    .collect()
            })
            .collect();
        let weight_gradient = self
            .train
            .iter()
            .map(|block| (0..layers).map(|l| gradient_group(block, l)).collect())
            .collect();
        let val_forward = self
            .validation
            .iter()
            .map(|block| {
                (0..layers)
                    .map(|l| forward_group(block, l, "validation forward"))
                    .collect()
            })
            .collect();
        let backward_input = (0..layers)
            .map(|l| {
                self.kernels[l].backward_input.as_ref().map(|kernel| {
                    let mut resources: HashMap<u32, &wgpu::Buffer> = HashMap::new();
                    resources.insert(0, &self.params);
                    resources.insert(1, &b.outputs[l - 1]);
                    resources.insert(5, &b.grads_out[l - 1]);
                    resources.insert(8, &b.grads_out[l]);
                    resources.insert(9, &b.pre[l - 1]);
                    kernel.bind(context, &format!("layer {l} backward input"), &resources)
                })
            })
            .collect();

        // Pipelines with automatic layouts each need bind groups of their own.
        let mut resources: HashMap<u32, &wgpu::Buffer> = HashMap::new();
        resources.insert(0, &b.grad_partials);
        resources.insert(1, &b.grads);
        resources.insert(2, &b.sum_partials);
        resources.insert(3, &b.sums);
        resources.insert(4, &self.run);
        resources.insert(5, &self.logs);
        let reduce_gradients = self.reduce_gradients.bind(context, "reduce gradients", &resources);
        let reduce_sums = self.reduce_sums.bind(context, "reduce sums", &resources);
        let control = self.control.bind(context, "step control", &resources);
        let commit = self.commit.bind(context, "commit update", &resources);
        let mut update_resources: HashMap<u32, &wgpu::Buffer> = HashMap::new();
        update_resources.insert(0, &self.params);
        update_resources.insert(1, &b.grads);
        update_resources.insert(2, &b.state);
        update_resources.insert(3, &self.best);
        update_resources.insert(4, &self.run);
        update_resources.insert(5, &self.previous);
        let update = self.update.bind(context, "optimizer update", &update_resources);
        let head = match &self.head {
            Some(kernel) => {
                let last = layers - 1;
                self.train
                    .iter()
                    .map(|block| {
                        let mut resources: HashMap<u32, &wgpu::Buffer> = HashMap::new();
                        resources.insert(0, &self.params);
                        resources.insert(1, &b.outputs[last - 1]);
                        resources.insert(4, &block.targets);
                        resources.insert(6, &b.sum_partials);
                        resources.insert(7, &self.order);
                        resources.insert(9, &b.pre[last - 1]);
                        resources.insert(10, &b.grad_partials);
                        resources.insert(12, &b.grads_out[last - 1]);
                        kernel.bind(context, "output layer head", &resources)
                    })
                    .collect()
            }
            None => Vec::new(),
        };

        BindGroups {
            train_forward,
            weight_gradient,
            backward_input,
            val_forward,
            reduce_gradients,
            reduce_sums,
            control,
            update,
            commit,
            head,
        }
    }

    /// Pieces of a training pass over `rows` rows: (data block, row in the
    /// block's buffers, offset in the batch, rows).
    fn train_pieces(&self, gather: bool, rows: usize) -> Vec<(usize, usize, usize, usize)> {
        let piece = self.plan.block_rows.max(1);
        if gather || self.train.len() == 1 {
            // One data block: gathered batches and full passes both index it directly.
            (0..rows)
                .step_by(piece)
                .map(|start| (0, if gather { 0 } else { start }, start, piece.min(rows - start)))
                .collect()
        } else {
            self.train
                .iter()
                .enumerate()
                .map(|(b, block)| (b, 0, 0, block.rows))
                .collect()
        }
    }
}

/// Records dispatches into one compute pass, with optional profiling marks.
struct Recorder<'p, 'q> {
    pass: wgpu::ComputePass<'p>,
    profiler: &'q mut Option<KernelProfiler>,
    max_grid_x: u32,
}

impl Recorder<'_, '_> {
    fn dispatch(
        &mut self,
        kernel: &Kernel,
        group: &wgpu::BindGroup,
        immediates: &Dispatch,
        workgroups: usize,
        label: &'static str,
    ) {
        self.pass.set_pipeline(&kernel.pipeline);
        self.pass.set_bind_group(0, group, &[]);
        self.pass.set_immediates(0, bytemuck::bytes_of(immediates));
        let (x, y) = grid(self.max_grid_x, workgroups);
        self.pass.dispatch_workgroups(x, y, 1);
        if let Some(profiler) = self.profiler.as_mut() {
            profiler.mark(&mut self.pass, label);
        }
    }
}

impl GeneralBackend<'_> {
    /// Records `forward` of every layer for one piece; returns the loss
    /// partial slots it wrote.
    /// Records `forward` of the first `layers` layers for one piece; returns
    /// the loss partial slots it wrote (none unless it includes the output layer).
    fn record_forward(
        &self,
        recorder: &mut Recorder<'_, '_>,
        groups: &[wgpu::BindGroup],
        immediates: &Dispatch,
        layers: usize,
    ) -> usize {
        let row_groups = (immediates.rows as usize).div_ceil(self.plan.lanes as usize * ROWS_PER_LANE);
        for (l, kernels) in self.kernels.iter().enumerate().take(layers) {
            recorder.dispatch(
                &kernels.forward,
                &groups[l],
                immediates,
                row_groups * kernels.geometry.o_tiles(),
                FORWARD_LABELS[l.min(FORWARD_LABELS.len() - 1)],
            );
        }
        if layers == self.kernels.len() { row_groups } else { 0 }
    }

    /// Records the output layer's `head` for one piece, when it has one;
    /// returns the loss partial slots it wrote.
    fn record_head(
        &self,
        recorder: &mut Recorder<'_, '_>,
        groups: &BindGroups,
        block: usize,
        immediates: &Dispatch,
    ) -> usize {
        let (Some(kernel), Some(group)) = (&self.head, groups.head.get(block)) else {
            return 0;
        };
        let splits = (immediates.rows as usize).div_ceil(self.plan.grad_rows);
        recorder.dispatch(kernel, group, immediates, splits, "head (output layer)");
        splits
    }

    /// Records `weight_gradient` and `backward_input` from the last layer
    /// down for one piece, or from the one before it when `head` did the
    /// output layer. Returns the gradient slots it wrote.
    fn record_backward(
        &self,
        recorder: &mut Recorder<'_, '_>,
        groups: &BindGroups,
        block: usize,
        immediates: &Dispatch,
        head: bool,
    ) -> usize {
        let rows = immediates.rows as usize;
        let splits = rows.div_ceil(self.plan.grad_rows);
        let row_groups = rows.div_ceil(self.plan.lanes as usize * ROWS_PER_LANE);
        let top = if head {
            self.kernels.len() - 1
        } else {
            self.kernels.len()
        };
        for l in (0..top).rev() {
            let kernels = &self.kernels[l];
            recorder.dispatch(
                &kernels.weight_gradient,
                &groups.weight_gradient[block][l],
                immediates,
                splits * kernels.geometry.gradient_groups_per_split(),
                GRADIENT_LABELS[l.min(GRADIENT_LABELS.len() - 1)],
            );
            if let (Some(kernel), Some(group)) = (&kernels.backward_input, &groups.backward_input[l]) {
                recorder.dispatch(
                    kernel,
                    group,
                    immediates,
                    row_groups * kernels.geometry.k_tiles(),
                    BACKWARD_LABELS[l.min(BACKWARD_LABELS.len() - 1)],
                );
            }
        }
        splits
    }
}

/// Makes `buffer` hold at least `size` bytes, replacing it when it is too small.
fn grow(context: &GpuContext, buffer: &mut wgpu::Buffer, capacity: &mut usize, size: usize, label: &str) -> bool {
    if size <= *capacity {
        return false;
    }
    *capacity = size.next_power_of_two();
    *buffer = context.storage_buffer(label, &vec![0u8; *capacity], wgpu::BufferUsages::empty());
    true
}

impl Backend for GeneralBackend<'_> {
    fn run_chunk(&mut self, chunk: &Chunk) -> Result<ChunkOutcome, TrainError> {
        let context = self.context;
        let slots = chunk.log_epochs.len();
        let log_bytes = slots.max(1) * 2 * self.sums * 4;
        let mut replaced = grow(context, &mut self.logs, &mut self.log_bytes, log_bytes, "log sums");
        replaced |= grow(
            context,
            &mut self.order,
            &mut self.order_bytes,
            chunk.order.len() * 4,
            "row order",
        );
        if replaced || self.bind_groups.is_none() {
            self.bind_groups = Some(self.create_bind_groups());
        }
        if !chunk.order.is_empty() {
            context
                .queue
                .write_buffer(&self.order, 0, bytemuck::cast_slice(&chunk.order));
        }
        let groups = self.bind_groups.as_ref().expect("bind groups exist");

        let lanes = self.plan.lanes as usize;
        let padded = self.layout.padded;
        let train_rows: usize = self.train.iter().map(|b| b.rows).sum();
        let mut profiler = self.profiler.take();
        let mut encoder = context.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("general chunk"),
        });
        {
            let mut recorder = Recorder {
                pass: encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("general steps"),
                    timestamp_writes: None,
                }),
                profiler: &mut profiler,
                max_grid_x: self.plan.max_grid_x,
            };
            if let Some(profiler) = recorder.profiler.as_mut() {
                profiler.start(&mut recorder.pass);
            }
            for step in &chunk.steps {
                let update = step.flags & UPDATE != 0;
                let plain = |slot: usize, flags: u32, rows: usize| Dispatch {
                    step: *step,
                    rows: rows as u32,
                    slot: slot as u32,
                    flags,
                    ..Dispatch::default()
                };

                // Training rows: the batch for an update, all rows for metrics only.
                if update || step.flags & EVALUATE != 0 {
                    let gather = update && step.full_batch == 0;
                    let rows = if update { step.batch_rows as usize } else { train_rows };
                    let mut flags = if update { WANT_GRADIENT } else { 0 };
                    if gather {
                        flags |= GATHER_ROWS;
                    }
                    let mut sum_slot = 0;
                    let mut grad_slot = 0;
                    for (block, data_row, batch_offset, piece_rows) in self.train_pieces(gather, rows) {
                        let mut immediates = Dispatch {
                            step: *step,
                            batch_offset: batch_offset as u32,
                            data_row: data_row as u32,
                            rows: piece_rows as u32,
                            slot: sum_slot as u32,
                            flags,
                            grad_slot: grad_slot as u32,
                            pad: [0; 2],
                        };
                        let head = update && self.head.is_some();
                        let forward_layers = if head {
                            self.kernels.len() - 1
                        } else {
                            self.kernels.len()
                        };
                        sum_slot += self.record_forward(
                            &mut recorder,
                            &groups.train_forward[block],
                            &immediates,
                            forward_layers,
                        );
                        if update {
                            sum_slot += self.record_head(&mut recorder, groups, block, &immediates);
                            immediates.slot = grad_slot as u32;
                            grad_slot += self.record_backward(&mut recorder, groups, block, &immediates, head);
                        }
                    }
                    recorder.dispatch(
                        &self.reduce_sums,
                        &groups.reduce_sums,
                        &plain(sum_slot, 0, 0),
                        self.sums,
                        "reduce_sums",
                    );
                    if update {
                        recorder.dispatch(
                            &self.reduce_gradients,
                            &groups.reduce_gradients,
                            &plain(grad_slot, 0, 0),
                            padded.div_ceil(lanes),
                            "reduce_gradients",
                        );
                    }
                }

                // Validation rows.
                if step.flags & VALIDATE != 0 && !self.validation.is_empty() {
                    let mut sum_slot = 0;
                    for (block, data) in self.validation.iter().enumerate() {
                        let immediates = Dispatch {
                            step: *step,
                            rows: data.rows as u32,
                            slot: sum_slot as u32,
                            ..Dispatch::default()
                        };
                        sum_slot += self.record_forward(
                            &mut recorder,
                            &groups.val_forward[block],
                            &immediates,
                            self.kernels.len(),
                        );
                    }
                    recorder.dispatch(
                        &self.reduce_sums,
                        &groups.reduce_sums,
                        &plain(sum_slot, 1, 0),
                        self.sums,
                        "reduce_sums",
                    );
                }

                recorder.dispatch(
                    &self.control,
                    &groups.control,
                    &plain(0, 0, self.val_rows),
                    1,
                    "control",
                );
                if update {
                    recorder.dispatch(
                        &self.update,
                        &groups.update,
                        &plain(0, 0, 0),
                        padded.div_ceil(lanes),
                        "optimizer update",
                    );
                    recorder.dispatch(&self.commit, &groups.commit, &plain(0, 0, 0), 1, "commit");
                }
            }
        }
        if let Some(profiler) = profiler.as_ref() {
            profiler.resolve(&mut encoder);
        }

        // Read back the run state and the log sums together.
        let state_size = std::mem::size_of::<RunState>() as u64;
        let read_size = state_size + log_bytes as u64;
        if read_size > self.staging_size {
            self.staging_size = read_size.next_power_of_two();
            self.staging = context.staging_buffer("general read-back", self.staging_size);
        }
        encoder.copy_buffer_to_buffer(&self.run, 0, &self.staging, 0, state_size);
        encoder.copy_buffer_to_buffer(&self.logs, 0, &self.staging, state_size, log_bytes as u64);
        context.queue.submit([encoder.finish()]);
        let bytes = context.map_staging(&self.staging, read_size)?;
        let run: RunState = bytemuck::pod_read_unaligned(&bytes[..state_size as usize]);
        let logs: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes[state_size as usize..]);
        if run.rejected != 0 {
            // The run diverged: go back to the parameters before the last
            // update. The run is halted, so nothing later wrote them.
            let mut encoder = context.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("restore parameters before the rejected update"),
            });
            encoder.copy_buffer_to_buffer(&self.previous, 0, &self.params, 0, (self.layout.padded * 4) as u64);
            context
                .queue
                .write_buffer(&self.run, std::mem::offset_of!(RunState, rejected) as u64, &[0; 4]);
            context.queue.submit([encoder.finish()]);
            context.wait()?;
        }
        if let Some(mut profiler) = profiler {
            profiler.log(context)?;
            self.profiler = Some(profiler);
        }

        Ok(super::chunk_outcome(
            chunk,
            &logs,
            self.outputs,
            !self.validation.is_empty(),
            super::HaltState {
                updates: run.updates,
                halt: run.halt,
                halt_epoch: run.halt_epoch,
                best_epoch: run.best_epoch,
            },
        ))
    }

    fn parameters(&mut self) -> Result<Vec<f32>, TrainError> {
        let size = (self.layout.padded * 4) as u64;
        if size > self.staging_size {
            self.staging_size = size.next_power_of_two();
            self.staging = self.context.staging_buffer("general read-back", self.staging_size);
        }
        let encoder = self
            .context
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("read parameters"),
            });
        let bytes = self.context.read_back(encoder, &self.params, 0, size, &self.staging)?;
        let padded: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(self.layout.unpack(&self.architecture, &padded))
    }

    fn restore_best(&mut self) -> Result<(), TrainError> {
        let mut encoder = self
            .context
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("restore best parameters"),
            });
        encoder.copy_buffer_to_buffer(&self.best, 0, &self.params, 0, (self.layout.padded * 4) as u64);
        self.context.queue.submit([encoder.finish()]);
        self.context.wait()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trip() {
        let architecture = Architecture::new(3, &[5, 2], 1, &[Activation::Relu]).unwrap();
        let flat: Vec<f32> = (0..architecture.parameter_count()).map(|v| v as f32 + 1.0).collect();
        let layout = Layout::new(&architecture);
        assert_eq!(layout.padded % 4, 0);
        let packed = layout.pack(&architecture, &flat);
        assert_eq!(packed.iter().filter(|v| **v != 0.0).count(), flat.len());
        assert_eq!(layout.unpack(&architecture, &packed), flat);
    }
}
