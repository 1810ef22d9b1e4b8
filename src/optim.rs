//! Optimizers with PyTorch's update rules (the single-tensor implementations
//! of `torch.optim.Adam`, `AdamW` and `SGD`, as documented in their
//! "Algorithm" sections and coded in `torch/optim/*.py`).
//!
//! Scalar factors that PyTorch computes in Python (f64) once per step, such
//! as the bias corrections, are computed the same way here by
//! [`Optimizer::step_factors`] and cast to f32. The CPU reference and the
//! shaders both consume those f32 factors, so they differ only in the
//! element-wise f32 arithmetic.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Optimizer {
    /// Adam; `weight_decay` is L2 regularization added to the gradient.
    Adam {
        lr: f32,
        betas: (f32, f32),
        eps: f32,
        weight_decay: f32,
    },
    /// Adam with decoupled weight decay (Loshchilov and Hutter, 2019).
    #[serde(rename = "adamw")]
    AdamW {
        lr: f32,
        betas: (f32, f32),
        eps: f32,
        weight_decay: f32,
    },
    /// Stochastic gradient descent with optional momentum and Nesterov momentum.
    Sgd {
        lr: f32,
        momentum: f32,
        dampening: f32,
        nesterov: bool,
        weight_decay: f32,
    },
}

/// Optimizer kind selected on the command line, before its hyperparameters are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    Adam,
    AdamW,
    Sgd,
}

impl OptimizerKind {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "adam" => Ok(Self::Adam),
            "adamw" => Ok(Self::AdamW),
            "sgd" => Ok(Self::Sgd),
            _ => Err(format!("unknown optimizer '{text}': expected adam, adamw or sgd")),
        }
    }
}

/// Per-step scalars, computed in f64 as PyTorch does and rounded to f32.
///
/// This struct is also uploaded to the GPU, so its layout is fixed.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepFactors {
    /// Adam: `lr / (1 - beta1^t)`; SGD: `lr`.
    pub step_size: f32,
    /// Adam: `sqrt(1 - beta2^t)`; SGD: unused.
    pub bias_correction2_sqrt: f32,
    /// AdamW: `1 - lr * weight_decay`, applied to the parameter first; otherwise 1.
    pub decay: f32,
    /// 1 on the first step (`t = 1`), else 0. SGD starts its momentum buffer from the gradient then.
    pub first_step: u32,
}

impl Optimizer {
    /// PyTorch's defaults for `kind` with learning rate `lr`.
    pub fn with_defaults(kind: OptimizerKind, lr: f32) -> Self {
        match kind {
            OptimizerKind::Adam => Optimizer::Adam {
                lr,
                betas: (0.9, 0.999),
                eps: 1e-8,
                weight_decay: 0.0,
            },
            OptimizerKind::AdamW => Optimizer::AdamW {
                lr,
                betas: (0.9, 0.999),
                eps: 1e-8,
                weight_decay: 0.01,
            },
            OptimizerKind::Sgd => Optimizer::Sgd {
                lr,
                momentum: 0.0,
                dampening: 0.0,
                nesterov: false,
                weight_decay: 0.0,
            },
        }
    }

    pub fn lr(&self) -> f32 {
        match *self {
            Optimizer::Adam { lr, .. } | Optimizer::AdamW { lr, .. } | Optimizer::Sgd { lr, .. } => lr,
        }
    }

    /// Checks the hyperparameters as PyTorch's constructors do.
    pub fn validate(&self) -> Result<(), String> {
        let lr = self.lr();
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(format!("invalid learning rate {lr}: expected a finite number >= 0"));
        }
        match *self {
            Optimizer::Adam {
                betas,
                eps,
                weight_decay,
                ..
            }
            | Optimizer::AdamW {
                betas,
                eps,
                weight_decay,
                ..
            } => {
                for (name, beta) in [("beta1", betas.0), ("beta2", betas.1)] {
                    if !(0.0..1.0).contains(&beta) {
                        return Err(format!("invalid {name} {beta}: expected 0 <= beta < 1"));
                    }
                }
                if !(eps.is_finite() && eps >= 0.0) {
                    return Err(format!("invalid eps {eps}: expected a finite number >= 0"));
                }
                if !(weight_decay.is_finite() && weight_decay >= 0.0) {
                    return Err(format!(
                        "invalid weight decay {weight_decay}: expected a finite number >= 0"
                    ));
                }
            }
            Optimizer::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
                ..
            } => {
                if !(momentum.is_finite() && momentum >= 0.0) {
                    return Err(format!("invalid momentum {momentum}: expected a finite number >= 0"));
                }
                if !dampening.is_finite() {
                    return Err(format!("invalid dampening {dampening}: expected a finite number"));
                }
                if !(weight_decay.is_finite() && weight_decay >= 0.0) {
                    return Err(format!(
                        "invalid weight decay {weight_decay}: expected a finite number >= 0"
                    ));
                }
                if nesterov && (momentum <= 0.0 || dampening != 0.0) {
                    return Err("Nesterov momentum requires a momentum > 0 and zero dampening (as in PyTorch)".into());
                }
            }
        }
        Ok(())
    }

    /// Scalars of step `t` (1-based), computed in f64 as PyTorch's Python code does.
    pub fn step_factors(&self, t: u64) -> StepFactors {
        let first_step = u32::from(t == 1);
        match *self {
            Optimizer::Adam { lr, betas, .. } | Optimizer::AdamW { lr, betas, .. } => {
                let lr = f64::from(lr);
                let t = t as f64;
                let bias_correction1 = 1.0 - f64::from(betas.0).powf(t);
                let bias_correction2 = 1.0 - f64::from(betas.1).powf(t);
                let decay = match *self {
                    Optimizer::AdamW { weight_decay, .. } => 1.0 - lr * f64::from(weight_decay),
                    _ => 1.0,
                };
                StepFactors {
                    step_size: (lr / bias_correction1) as f32,
                    bias_correction2_sqrt: bias_correction2.sqrt() as f32,
                    decay: decay as f32,
                    first_step,
                }
            }
            Optimizer::Sgd { lr, .. } => StepFactors {
                step_size: lr,
                bias_correction2_sqrt: 1.0,
                decay: 1.0,
                first_step,
            },
        }
    }

    /// Number of f32 state slots per parameter (Adam: `m` and `v`; SGD: the momentum buffer).
    pub fn state_slots(&self) -> usize {
        match self {
            Optimizer::Adam { .. } | Optimizer::AdamW { .. } => 2,
            Optimizer::Sgd { .. } => 1,
        }
    }

    /// Applies one step to every parameter.
    ///
    /// `state` contains [`Self::state_slots`] vectors of `P` values each, zero before the first step.
    pub fn update(&self, factors: &StepFactors, params: &mut [f32], grads: &[f32], state: &mut [Vec<f32>]) {
        match *self {
            Optimizer::Adam {
                betas,
                eps,
                weight_decay,
                ..
            } => {
                let (m, v) = state.split_at_mut(1);
                for (p, (g, (m, v))) in params
                    .iter_mut()
                    .zip(grads.iter().zip(m[0].iter_mut().zip(v[0].iter_mut())))
                {
                    adam_update(factors, betas, eps, weight_decay, p, *g, m, v);
                }
            }
            Optimizer::AdamW { betas, eps, .. } => {
                let (m, v) = state.split_at_mut(1);
                for (p, (g, (m, v))) in params
                    .iter_mut()
                    .zip(grads.iter().zip(m[0].iter_mut().zip(v[0].iter_mut())))
                {
                    *p *= factors.decay;
                    adam_update(factors, betas, eps, 0.0, p, *g, m, v);
                }
            }
            Optimizer::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
                ..
            } => {
                for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
                    let mut g = *g;
                    if weight_decay != 0.0 {
                        g += weight_decay * *p;
                    }
                    if momentum != 0.0 {
                        let buffer = &mut state[0][i];
                        if factors.first_step != 0 {
                            *buffer = g;
                        } else {
                            *buffer = *buffer * momentum + (1.0 - dampening) * g;
                        }
                        g = if nesterov { g + momentum * *buffer } else { *buffer };
                    }
                    *p += -factors.step_size * g;
                }
            }
        }
    }

    /// The PyTorch constructor call that configures the same optimizer.
    pub fn torch_constructor(&self) -> String {
        match *self {
            Optimizer::Adam {
                lr,
                betas,
                eps,
                weight_decay,
            } => format!(
                "torch.optim.Adam(params, lr={lr}, betas=({}, {}), eps={eps:e}, weight_decay={weight_decay})",
                betas.0, betas.1
            ),
            Optimizer::AdamW {
                lr,
                betas,
                eps,
                weight_decay,
            } => format!(
                "torch.optim.AdamW(params, lr={lr}, betas=({}, {}), eps={eps:e}, weight_decay={weight_decay})",
                betas.0, betas.1
            ),
            Optimizer::Sgd {
                lr,
                momentum,
                dampening,
                nesterov,
                weight_decay,
            } => format!(
                "torch.optim.SGD(params, lr={lr}, momentum={momentum}, dampening={dampening}, nesterov={}, weight_decay={weight_decay})",
                if nesterov { "True" } else { "False" }
            ),
        }
    }
}

/// Applies one Adam step to one parameter, in the order of PyTorch's `_single_tensor_adam`:
/// L2 term, `m`, `v`, then the bias-corrected step with `eps` added after the square root.
#[allow(clippy::too_many_arguments)]
fn adam_update(
    factors: &StepFactors,
    betas: (f32, f32),
    eps: f32,
    weight_decay: f32,
    p: &mut f32,
    g: f32,
    m: &mut f32,
    v: &mut f32,
) {
    let mut g = g;
    if weight_decay != 0.0 {
        g += weight_decay * *p;
    }

    // exp_avg.lerp_(grad, 1 - beta1)
    let weight = (1.0 - f64::from(betas.0)) as f32;
    *m = if weight < 0.5 {
        *m + weight * (g - *m)
    } else {
        g - (g - *m) * (1.0 - weight)
    };

    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    let value = (1.0 - f64::from(betas.1)) as f32;
    *v = *v * betas.1 + value * g * g;

    // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    let denom = v.sqrt() / factors.bias_correction2_sqrt + eps;

    // param.addcdiv_(exp_avg, denom, value=-step_size)
    *p += -factors.step_size * *m / denom;
}

impl fmt::Display for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Optimizer::Adam {
                lr,
                betas,
                eps,
                weight_decay,
            } => write!(
                f,
                "adam (lr {lr}, betas {}/{}, eps {eps:e}, weight decay {weight_decay})",
                betas.0, betas.1
            ),
            Optimizer::AdamW {
                lr,
                betas,
                eps,
                weight_decay,
            } => write!(
                f,
                "adamw (lr {lr}, betas {}/{}, eps {eps:e}, weight decay {weight_decay})",
                betas.0, betas.1
            ),
            Optimizer::Sgd {
                lr,
                momentum,
                dampening,
                nesterov,
                weight_decay,
            } => write!(
                f,
                "sgd (lr {lr}, momentum {momentum}, dampening {dampening}, nesterov {nesterov}, weight decay {weight_decay})"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_first_step_moves_by_lr() {
        // With bias correction, Adam's first step is lr * g / (|g| + eps), so about lr.
        let adam = Optimizer::with_defaults(OptimizerKind::Adam, 0.5);
        let mut params = vec![1.0, -1.0];
        let mut state = vec![vec![0.0; 2]; 2];
        adam.update(&adam.step_factors(1), &mut params, &[3.0, -0.25], &mut state);
        assert!((params[0] - 0.5).abs() < 1e-6, "{}", params[0]);
        assert!((params[1] + 0.5).abs() < 1e-6, "{}", params[1]);
    }

    #[test]
    fn adam_zero_gradient_changes_nothing() {
        let adam = Optimizer::with_defaults(OptimizerKind::Adam, 1.0);
        let mut params = vec![0.25];
        let mut state = vec![vec![0.0; 1]; 2];
        for t in 1..=3 {
            adam.update(&adam.step_factors(t), &mut params, &[0.0], &mut state);
        }
        assert_eq!(params, vec![0.25]);
    }

    #[test]
    fn sgd_momentum_starts_from_gradient() {
        let sgd = Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.5,
            nesterov: false,
            weight_decay: 0.0,
        };
        let mut params = vec![0.0];
        let mut state = vec![vec![0.0; 1]];
        sgd.update(&sgd.step_factors(1), &mut params, &[1.0], &mut state);
        assert_eq!(state[0][0], 1.0);
        sgd.update(&sgd.step_factors(2), &mut params, &[1.0], &mut state);
        assert_eq!(state[0][0], 0.9 + 0.5);
    }
}
