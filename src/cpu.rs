//! The CPU reference trainer: plain loops, one row at a time.
//!
//! This is the yardstick the GPU paths are tested against, so it favours
//! clarity over speed. Per row it runs `forward` through every layer, takes
//! the loss gradient and runs `backward` in reverse, adding the row's
//! parameter gradients to f64 accumulators. Sums over rows (gradients, loss,
//! metrics) are kept in f64, so the reference's own round-off stays below the
//! float32 differences between other implementations; everything per row is
//! f32, as in PyTorch.
//!
//! Shapes use the legend of [`crate::model`]: `N` rows, `I` inputs and `O`
//! outputs of a layer, `P` parameters.

use crate::loss::Loss;
use crate::model::{Activation, Architecture};
use crate::optim::StepFactors;
use crate::schedule::{Chunk, EVALUATE, MONITOR, Step, UPDATE, VALIDATE};
use crate::train::{Backend, ChunkOutcome, Halt, Samples, Sums, TrainError, TrainSpec, TrainingData};

// ----------------------------------------------------------------------------
// Element-wise functions

/// `y = f(x)` for one pre-activation.
pub fn activation_forward(activation: Activation, x: f32) -> f32 {
    match activation {
        Activation::Relu => {
            if x > 0.0 {
                x
            } else {
                0.0
            }
        }
        // Both branches evaluate exp of a non-positive number, so neither overflows.
        Activation::Sigmoid => {
            if x >= 0.0 {
                1.0 / (1.0 + (-x).exp())
            } else {
                let e = x.exp();
                e / (1.0 + e)
            }
        }
        Activation::Tanh => x.tanh(),
        Activation::LeakyRelu { negative_slope } => {
            if x > 0.0 {
                x
            } else {
                x * negative_slope
            }
        }
        Activation::Gelu => x * 0.5 * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            let inner = GELU_BETA * (x + GELU_KAPPA * x * x * x);
            0.5 * x * (1.0 + inner.tanh())
        }
        Activation::Identity => x,
    }
}

/// `dx = dy * f'(x)`, given the pre-activation `x` and the output `y = f(x)`.
///
/// The formulas follow PyTorch's backward kernels: ReLU's derivative at 0 is
/// 0, sigmoid and tanh use `y`, GELU uses `x`.
pub fn activation_backward(activation: Activation, x: f32, y: f32, dy: f32) -> f32 {
    match activation {
        Activation::Relu => {
            if y > 0.0 {
                dy
            } else {
                0.0
            }
        }
        Activation::Sigmoid => dy * (1.0 - y) * y,
        Activation::Tanh => dy * (1.0 - y * y),
        Activation::LeakyRelu { negative_slope } => {
            if x > 0.0 {
                dy
            } else {
                dy * negative_slope
            }
        }
        Activation::Gelu => {
            let cdf = 0.5 * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2));
            let pdf = GELU_ALPHA * (-0.5 * x * x).exp();
            dy * (cdf + x * pdf)
        }
        Activation::GeluTanh => {
            let x_sq = x * x;
            let inner = GELU_BETA * (x + GELU_KAPPA * x_sq * x);
            let tanh_inner = inner.tanh();
            let left = 0.5 * x;
            let right = 1.0 + tanh_inner;
            let left_derivative = 0.5 * right;
            let tanh_derivative = 1.0 - tanh_inner * tanh_inner;
            let inner_derivative = GELU_BETA * (1.0 + 3.0 * GELU_KAPPA * x_sq);
            let right_derivative = left * tanh_derivative * inner_derivative;
            dy * (left_derivative + right_derivative)
        }
        Activation::Identity => dy,
    }
}

/// `1 / sqrt(2 pi)`, the normal density's factor.
const GELU_ALPHA: f32 = 0.398_942_3;
/// `sqrt(2 / pi)`, in GELU's tanh approximation.
const GELU_BETA: f32 = 0.797_884_6;
/// Cubic coefficient of GELU's tanh approximation.
const GELU_KAPPA: f32 = 0.044_715;

// ----------------------------------------------------------------------------
// One layer

/// `z = W x + b` for one row. Shapes: `x[I]`, `weight[O][I]` (flattened), `bias[O]`, `z[O]`.
pub fn linear_forward(x: &[f32], weight: &[f32], bias: &[f32], z: &mut [f32]) {
    let inputs = x.len();
    for (o, z) in z.iter_mut().enumerate() {
        let row = &weight[o * inputs..(o + 1) * inputs];
        let mut sum = 0.0_f32;
        for i in 0..inputs {
            sum += row[i] * x[i];
        }
        *z = sum + bias[o];
    }
}

/// Backward of [`linear_forward`] for one row: adds `dz x^T` to `dweight[O][I]`
/// and `dz` to `dbias[O]`, and writes `dx = W^T dz` when `dx` is given.
pub fn linear_backward(
    x: &[f32],
    weight: &[f32],
    dz: &[f32],
    dweight: &mut [f64],
    dbias: &mut [f64],
    dx: Option<&mut [f32]>,
) {
    let inputs = x.len();
    for (o, &dz_o) in dz.iter().enumerate() {
        for i in 0..inputs {
            dweight[o * inputs + i] += f64::from(dz_o * x[i]);
        }
        dbias[o] += f64::from(dz_o);
    }
    if let Some(dx) = dx {
        for (i, dx_i) in dx.iter_mut().enumerate() {
            let mut sum = 0.0_f32;
            for (o, &dz_o) in dz.iter().enumerate() {
                sum += weight[o * inputs + i] * dz_o;
            }
            *dx_i = sum;
        }
    }
}

// ----------------------------------------------------------------------------
// The whole network, one row at a time

/// Per-row buffers: `z[l]` are layer `l`'s pre-activations, `a[l]` its input
/// (`a[0]` is the row's features, `a[L]` the prediction).
struct RowPass {
    z: Vec<Vec<f32>>,
    a: Vec<Vec<f32>>,
    da: Vec<Vec<f32>>,
    dz: Vec<f32>,
}

impl RowPass {
    fn new(architecture: &Architecture) -> Self {
        let layers = architecture.layer_count();
        Self {
            z: (0..layers).map(|l| vec![0.0; architecture.sizes[l + 1]]).collect(),
            a: architecture.sizes.iter().map(|&width| vec![0.0; width]).collect(),
            da: architecture.sizes.iter().map(|&width| vec![0.0; width]).collect(),
            dz: vec![0.0; architecture.sizes.iter().copied().max().unwrap_or(0)],
        }
    }
}

/// Computes the prediction for `x`; it is left in `pass.a[L]`.
fn forward(architecture: &Architecture, params: &[f32], x: &[f32], pass: &mut RowPass) {
    pass.a[0].copy_from_slice(x);
    for l in 0..architecture.layer_count() {
        let (inputs, outputs) = architecture.layer_shape(l);
        let (w, b) = architecture.parameter_offsets(l);
        let activation = architecture.activation(l);
        linear_forward(
            &pass.a[l],
            &params[w..w + outputs * inputs],
            &params[b..b + outputs],
            &mut pass.z[l],
        );
        for o in 0..outputs {
            pass.a[l + 1][o] = activation_forward(activation, pass.z[l][o]);
        }
    }
}

/// Back-propagates `dy = dLoss/dprediction` (in `pass.da[L]`) and adds the
/// row's parameter gradients to `grads[P]`.
fn backward(architecture: &Architecture, params: &[f32], pass: &mut RowPass, grads: &mut [f64]) {
    for l in (0..architecture.layer_count()).rev() {
        let (inputs, outputs) = architecture.layer_shape(l);
        let (w, b) = architecture.parameter_offsets(l);
        let activation = architecture.activation(l);

        // dz = da * f'(z): the derivative of the activation after this layer.
        for o in 0..outputs {
            pass.dz[o] = activation_backward(activation, pass.z[l][o], pass.a[l + 1][o], pass.da[l + 1][o]);
        }

        debug_assert_eq!(b, w + outputs * inputs, "bias follows its weight");
        let (dweight, rest) = grads[w..].split_at_mut(outputs * inputs);
        let dbias = &mut rest[..outputs];
        let (a_before, da_before) = (&pass.a[l], &mut pass.da[l]);
        linear_backward(
            a_before,
            &params[w..w + outputs * inputs],
            &pass.dz[..outputs],
            dweight,
            dbias,
            if l > 0 { Some(da_before.as_mut_slice()) } else { None },
        );
    }
}

/// Adds one row's loss terms and errors to `sums`, and writes the loss
/// gradient into `dy` when it is given.
pub fn accumulate_loss(
    loss: Loss,
    prediction: &[f32],
    target: &[f32],
    scale: f32,
    sums: &mut Sums,
    dy: Option<&mut [f32]>,
) {
    for (o, (&y, &t)) in prediction.iter().zip(target).enumerate() {
        let d = y - t;
        sums.loss += f64::from(loss.value(d));
        sums.squared_error[o] += f64::from(d) * f64::from(d);
        sums.absolute_error[o] += f64::from(d.abs());
    }
    if let Some(dy) = dy {
        for ((dy, &y), &t) in dy.iter_mut().zip(prediction).zip(target) {
            *dy = loss.gradient(y - t, scale);
        }
    }
}

// ----------------------------------------------------------------------------
// The backend

/// Trains on the CPU with the reference semantics.
pub struct CpuBackend<'a> {
    spec: TrainSpec,
    data: TrainingData<'a>,
    params: Vec<f32>,
    grads: Vec<f64>,
    grads_f32: Vec<f32>,
    optimizer_state: Vec<Vec<f32>>,
    best: Option<(f64, u64, Vec<f32>)>,
    /// Parameters before the last applied update.
    previous: Option<Vec<f32>>,
    halt: Option<Halt>,
    updates: u64,
    pass: RowPass,
}

impl<'a> CpuBackend<'a> {
    pub fn new(spec: &TrainSpec, data: TrainingData<'a>, initial: Vec<f32>) -> Self {
        let p = spec.architecture.parameter_count();
        assert_eq!(initial.len(), p, "initial parameters do not match the architecture");
        Self {
            optimizer_state: vec![vec![0.0; p]; spec.optimizer.state_slots()],
            pass: RowPass::new(&spec.architecture),
            spec: spec.clone(),
            data,
            params: initial,
            grads: vec![0.0; p],
            grads_f32: vec![0.0; p],
            best: None,
            previous: None,
            halt: None,
            updates: 0,
        }
    }

    fn empty_sums(&self) -> Sums {
        let outputs = self.spec.architecture.outputs();
        Sums {
            loss: 0.0,
            squared_error: vec![0.0; outputs],
            absolute_error: vec![0.0; outputs],
        }
    }

    /// Loss and error sums of the current parameters over all rows of `samples`.
    fn evaluate(&mut self, samples: Samples<'_>) -> Sums {
        let mut sums = self.empty_sums();
        let last = self.spec.architecture.layer_count();
        for r in 0..samples.rows {
            forward(
                &self.spec.architecture,
                &self.params,
                samples.feature_row(r),
                &mut self.pass,
            );
            accumulate_loss(
                self.spec.loss,
                &self.pass.a[last],
                samples.target_row(r),
                0.0,
                &mut sums,
                None,
            );
        }
        sums
    }

    /// Forward and backward over the step's batch; returns the batch's sums.
    fn gradients(&mut self, step: &Step, order: &[u32]) -> Sums {
        let architecture = &self.spec.architecture;
        let samples = self.data.train;
        let last = architecture.layer_count();
        let batch = step.batch_rows as usize;
        let scale = step.loss_scale;
        let mut sums = self.empty_sums();
        self.grads.fill(0.0);

        for k in 0..batch {
            let r = if step.full_batch != 0 {
                k
            } else {
                order[step.batch_start as usize + k] as usize
            };
            forward(architecture, &self.params, samples.feature_row(r), &mut self.pass);
            accumulate_loss(
                self.spec.loss,
                &self.pass.a[last],
                samples.target_row(r),
                scale,
                &mut sums,
                Some(self.pass.da[last].as_mut_slice()),
            );
            backward(architecture, &self.params, &mut self.pass, &mut self.grads);
        }
        sums
    }

    /// Applies the optimizer step unless it would make a parameter
    /// non-finite; returns whether it was applied.
    fn update(&mut self, factors: &StepFactors) -> bool {
        for (g32, g) in self.grads_f32.iter_mut().zip(&self.grads) {
            *g32 = *g as f32;
        }
        let mut params = self.params.clone();
        let mut state = self.optimizer_state.clone();
        self.spec
            .optimizer
            .update(factors, &mut params, &self.grads_f32, &mut state);
        if params.iter().any(|p| !p.is_finite()) {
            return false;
        }
        self.previous = Some(std::mem::replace(&mut self.params, params));
        self.optimizer_state = state;
        self.updates += 1;
        true
    }

    /// Early-stopping monitor: returns true when training must stop.
    fn monitor(&mut self, epoch: u64, validation_loss: f64) -> bool {
        let patience = self.spec.early_stop.unwrap_or(u64::MAX);
        // NaN never improves; the first finite loss always does.
        let improved = match &self.best {
            Some((best_loss, _, _)) => validation_loss < *best_loss,
            None => validation_loss.is_finite(),
        };
        if improved {
            self.best = Some((validation_loss, epoch, self.params.clone()));
            return false;
        }
        let best_epoch = self.best.as_ref().map_or(0, |b| b.1);
        if epoch - best_epoch >= patience {
            self.halt = Some(Halt::EarlyStopped { epoch, best_epoch });
            return true;
        }
        false
    }
}

impl Backend for CpuBackend<'_> {
    fn run_chunk(&mut self, chunk: &Chunk) -> Result<ChunkOutcome, TrainError> {
        let slots = chunk.log_epochs.len();
        let mut outcome = ChunkOutcome {
            train: vec![None; slots],
            validation: vec![None; slots],
            ..ChunkOutcome::default()
        };
        let outputs = self.spec.architecture.outputs();

        for step in &chunk.steps {
            let slot = step.log_slot as usize;
            let update = step.flags & UPDATE != 0 && self.halt.is_none();
            let mut batch_sums = None;
            if update {
                batch_sums = Some(self.gradients(step, &chunk.order));
            }

            if step.flags & EVALUATE != 0 {
                outcome.train[slot] = match (&batch_sums, step.full_batch != 0) {
                    (Some(sums), true) => Some(sums.clone()),
                    _ => Some(self.evaluate(self.data.train)),
                };
            }
            if step.flags & VALIDATE != 0
                && let Some(validation) = self.data.validation
            {
                let sums = self.evaluate(validation);
                let loss = sums.loss / (validation.rows * outputs) as f64;
                outcome.validation[slot] = Some(sums);
                if step.flags & MONITOR != 0 && self.halt.is_none() && self.monitor(u64::from(step.epoch), loss) {
                    continue;
                }
            }

            if let Some(sums) = batch_sums {
                // A non-finite loss or gradient halts the run and goes back to
                // the parameters before the last update, the last ones with a
                // finite loss. An update that would make a parameter
                // non-finite halts it too, without being applied.
                let finite = sums.loss.is_finite() && self.grads.iter().all(|g| g.is_finite());
                if !finite {
                    if let Some(previous) = self.previous.take() {
                        self.params = previous;
                        self.updates -= 1;
                    }
                    self.halt = Some(Halt::Diverged {
                        epoch: u64::from(step.epoch),
                    });
                } else if !self.update(&step.factors) {
                    self.halt = Some(Halt::Diverged {
                        epoch: u64::from(step.epoch),
                    });
                }
            }
        }

        outcome.halt = self.halt;
        outcome.updates = self.updates;
        Ok(outcome)
    }

    fn parameters(&mut self) -> Result<Vec<f32>, TrainError> {
        Ok(self.params.clone())
    }

    fn restore_best(&mut self) -> Result<(), TrainError> {
        if let Some((_, _, best)) = &self.best {
            self.params = best.clone();
        }
        Ok(())
    }
}

/// Predictions `[N][O]` of `params` for every row of `features[N][I]`.
pub fn predict(architecture: &Architecture, params: &[f32], features: &[f32]) -> Vec<f32> {
    let mut pass = RowPass::new(architecture);
    let inputs = architecture.inputs();
    let last = architecture.layer_count();
    let mut predictions = Vec::with_capacity(features.len() / inputs.max(1) * architecture.outputs());
    for x in features.chunks(inputs) {
        forward(architecture, params, x, &mut pass);
        predictions.extend_from_slice(&pass.a[last]);
    }
    predictions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central finite difference of the activation against its backward.
    #[test]
    fn activation_backward_matches_finite_difference() {
        let activations = [
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::LeakyRelu { negative_slope: 0.1 },
            Activation::Gelu,
            Activation::GeluTanh,
            Activation::Identity,
        ];
        for activation in activations {
            for &x in &[-3.0_f32, -0.7, 0.4, 2.5] {
                let h = 1e-3_f32;
                let numeric =
                    (activation_forward(activation, x + h) - activation_forward(activation, x - h)) / (2.0 * h);
                let y = activation_forward(activation, x);
                let analytic = activation_backward(activation, x, y, 1.0);
                assert!(
                    (numeric - analytic).abs() < 2e-3,
                    "{activation} at {x}: numeric {numeric}, analytic {analytic}"
                );
            }
        }
    }

    #[test]
    fn sigmoid_and_tanh_finite_for_large_inputs() {
        let cases = [
            (Activation::Sigmoid, 1e30_f32),
            (Activation::Tanh, 1e30),
            (Activation::Gelu, 1e30),
            // x^3 overflows past about 1e12, as in PyTorch.
            (Activation::GeluTanh, 1e3),
        ];
        for (activation, magnitude) in cases {
            for x in [-magnitude, -1e3, 1e3, magnitude] {
                let y = activation_forward(activation, x);
                assert!(y.is_finite(), "{activation}({x}) = {y}");
                assert!(
                    activation_backward(activation, x, y, 1.0).is_finite(),
                    "{activation}'({x})"
                );
            }
        }
    }
}
