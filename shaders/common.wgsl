// Element-wise functions shared by every kernel: activations, losses and
// optimizer updates. Each mirrors the function of the same name in the CPU
// reference (src/cpu.rs, src/loss.rs, src/optim.rs) line for line.
//
// NOTE: every function has a single return at its end. A `return` inside a
// `switch` becomes a loop once the driver inlines the function (Mesa's
// lowering of early returns), and on llvmpipe each such call then counts
// against the per-dispatch loop limit.
//
// The kind constants below must match the codes in src/gpu/shaders.rs.

const ACT_IDENTITY: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_SIGMOID: u32 = 2u;
const ACT_TANH: u32 = 3u;
const ACT_LEAKY_RELU: u32 = 4u;
const ACT_GELU: u32 = 5u;
const ACT_GELU_TANH: u32 = 6u;

const LOSS_MSE: u32 = 0u;
const LOSS_MAE: u32 = 1u;
const LOSS_HUBER: u32 = 2u;

const OPT_ADAM: u32 = 0u;
const OPT_ADAMW: u32 = 1u;
const OPT_SGD: u32 = 2u;

// Schedule flags, as in src/schedule.rs.
const STEP_EVALUATE: u32 = 1u;
const STEP_VALIDATE: u32 = 2u;
const STEP_UPDATE: u32 = 4u;
const STEP_MONITOR: u32 = 8u;

// Halt codes stored in the run state.
const HALT_NONE: u32 = 0u;
const HALT_DIVERGED: u32 = 1u;
const HALT_EARLY_STOPPED: u32 = 2u;

// One schedule entry (src/schedule.rs `Step`, 48 bytes).
struct Step {
    flags: u32,
    epoch: u32,
    batch_start: u32,
    batch_rows: u32,
    log_slot: u32,
    full_batch: u32,
    // Factor of the loss gradient: 2 / (N O) for mse, 1 / (N O) otherwise.
    loss_scale: f32,
    pad0: u32,
    // Optimizer factors of this step (src/optim.rs `StepFactors`).
    step_size: f32,
    bias_correction2_sqrt: f32,
    decay: f32,
    first_step: u32,
}

// 1 / sqrt(2 pi), sqrt(2 / pi) and the cubic coefficient of GELU's tanh form.
const GELU_ALPHA: f32 = 0.3989422804014327;
const GELU_BETA: f32 = 0.7978845608028654;
const GELU_KAPPA: f32 = 0.044715;

// tanh that stays finite on every driver: some return NaN past |x| of about
// 44 to 89, and tanh(15) already rounds to 1 in f32.
fn tanh_finite(x: f32) -> f32 {
    return tanh(clamp(x, -15.0, 15.0));
}

// erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), the
// same approximation PyTorch's vectorized CPU kernels use.
fn erf_approx(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let r = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    return sign(x) * (1.0 - r * exp(-a * a));
}

// y = f(x)
fn activation_forward(kind: u32, slope: f32, x: f32) -> f32 {
    var result: f32;
    switch kind {
        case ACT_RELU: {
            result = select(0.0, x, x > 0.0);
        }
        case ACT_SIGMOID: {
            // exp of a non-positive number only, so it never overflows.
            let e = exp(-abs(x));
            result = select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
        }
        case ACT_TANH: {
            result = tanh_finite(x);
        }
        case ACT_LEAKY_RELU: {
            result = select(x * slope, x, x > 0.0);
        }
        case ACT_GELU: {
            result = x * 0.5 * (1.0 + erf_approx(x * 0.7071067811865476));
        }
        case ACT_GELU_TANH: {
            let inner = GELU_BETA * (x + GELU_KAPPA * x * x * x);
            result = 0.5 * x * (1.0 + tanh_finite(inner));
        }
        default: {
            result = x;
        }
    }
    return result;
}

// dx = dy * f'(x), given x and y = f(x)
fn activation_backward(kind: u32, slope: f32, x: f32, y: f32, dy: f32) -> f32 {
    var result: f32;
    switch kind {
        case ACT_RELU: {
            result = select(0.0, dy, y > 0.0);
        }
        case ACT_SIGMOID: {
            result = dy * (1.0 - y) * y;
        }
        case ACT_TANH: {
            result = dy * (1.0 - y * y);
        }
        case ACT_LEAKY_RELU: {
            result = select(dy * slope, dy, x > 0.0);
        }
        case ACT_GELU: {
            let cdf = 0.5 * (1.0 + erf_approx(x * 0.7071067811865476));
            let pdf = GELU_ALPHA * exp(-0.5 * x * x);
            result = dy * (cdf + x * pdf);
        }
        case ACT_GELU_TANH: {
            let x_sq = x * x;
            let inner = GELU_BETA * (x + GELU_KAPPA * x_sq * x);
            let tanh_inner = tanh_finite(inner);
            let left = 0.5 * x;
            let right = 1.0 + tanh_inner;
            let left_derivative = 0.5 * right;
            let tanh_derivative = 1.0 - tanh_inner * tanh_inner;
            let inner_derivative = GELU_BETA * (1.0 + 3.0 * GELU_KAPPA * x_sq);
            let right_derivative = left * tanh_derivative * inner_derivative;
            result = dy * (left_derivative + right_derivative);
        }
        default: {
            result = dy;
        }
    }
    return result;
}

// Per-element loss term of d = prediction - target, before the mean.
fn loss_value(kind: u32, delta: f32, d: f32) -> f32 {
    var result: f32;
    switch kind {
        case LOSS_MAE: {
            result = abs(d);
        }
        case LOSS_HUBER: {
            let z = abs(d);
            result = select(delta * (z - 0.5 * delta), 0.5 * z * z, z < delta);
        }
        default: {
            result = d * d;
        }
    }
    return result;
}

// Gradient of the mean loss with respect to one prediction; `scale` is
// 2 / (N O) for mse and 1 / (N O) otherwise.
fn loss_gradient(kind: u32, delta: f32, d: f32, scale: f32) -> f32 {
    var result: f32;
    switch kind {
        case LOSS_MAE: {
            result = scale * sign(d);
        }
        case LOSS_HUBER: {
            result = scale * clamp(d, -delta, delta);
        }
        default: {
            result = scale * d;
        }
    }
    return result;
}

// Optimizer hyperparameters (src/optim.rs), rounded to f32 as PyTorch does.
struct OptimizerConfig {
    kind: u32,
    // Adam: beta1's lerp weight 1 - beta1, beta2, 1 - beta2, eps.
    lerp_weight: f32,
    beta2: f32,
    one_minus_beta2: f32,
    eps: f32,
    // L2 weight decay added to the gradient (Adam, SGD).
    weight_decay: f32,
    // SGD momentum, 1 - dampening, nesterov (0 or 1).
    momentum: f32,
    one_minus_dampening: f32,
    nesterov: u32,
}

// Parameter and its optimizer state after one step.
struct Updated {
    p: f32,
    s0: f32,
    s1: f32,
}

// One optimizer step for one parameter `p` with gradient `g` and state
// slots `s0`, `s1` (Adam: m and v; SGD: the momentum buffer and unused).
fn optimizer_update(config: OptimizerConfig, step: Step, p_in: f32, g_in: f32, s0: f32, s1: f32) -> Updated {
    var p = p_in;
    var g = g_in;
    var result: Updated;
    if config.kind == OPT_SGD {
        if config.weight_decay != 0.0 {
            g = g + config.weight_decay * p;
        }
        var buffer = s0;
        if config.momentum != 0.0 {
            if step.first_step != 0u {
                buffer = g;
            } else {
                buffer = buffer * config.momentum + config.one_minus_dampening * g;
            }
            g = select(buffer, g + config.momentum * buffer, config.nesterov != 0u);
        }
        p = p + -step.step_size * g;
        result = Updated(p, buffer, s1);
    } else {
        // Adam and AdamW, in the order of PyTorch's _single_tensor_adam.
        if config.kind == OPT_ADAMW {
            p = p * step.decay;
        } else if config.weight_decay != 0.0 {
            g = g + config.weight_decay * p;
        }
        let w = config.lerp_weight;
        let m = select(g - (g - s0) * (1.0 - w), s0 + w * (g - s0), w < 0.5);
        let v = s1 * config.beta2 + config.one_minus_beta2 * g * g;
        let denom = sqrt(v) / step.bias_correction2_sqrt + config.eps;
        p = p + -step.step_size * m / denom;
        result = Updated(p, m, v);
    }
    return result;
}
