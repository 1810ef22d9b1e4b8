//! Regression losses with PyTorch's mean reduction and subgradients.
//!
//! Every loss is the mean over all `N * O` elements of a per-element term of
//! `d = prediction - target`:
//! - `mse`   (`nn.MSELoss`):   `d^2`, gradient `2 d / (N O)`
//! - `mae`   (`nn.L1Loss`):    `|d|`, gradient `sign(d) / (N O)` with `sign(0) = 0`
//! - `huber` (`nn.HuberLoss`): `d^2 / 2` for `|d| <= delta`, else
//!   `delta (|d| - delta / 2)`; gradient `d / (N O)` clamped to
//!   `[-delta / (N O), delta / (N O)]`
//!
//! The gradient functions take `scale`, the mean's factor computed once per
//! batch (`2 / (N O)` for mse, `1 / (N O)` otherwise), so the CPU reference
//! and the shaders multiply in the same order as PyTorch's backward kernels.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Loss {
    Mse,
    Mae,
    Huber { delta: f32 },
}

impl Loss {
    /// Default `delta` of `huber`, as in `torch.nn.HuberLoss`.
    pub const DEFAULT_HUBER_DELTA: f32 = 1.0;

    /// Parses `mse`, `mae` (or `l1`), `huber` or `huber:DELTA`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, argument) = match text.split_once(':') {
            Some((name, argument)) => (name.trim(), Some(argument.trim())),
            None => (text, None),
        };
        match (name.to_ascii_lowercase().as_str(), argument) {
            ("mse", None) => Ok(Loss::Mse),
            ("mae" | "l1", None) => Ok(Loss::Mae),
            ("huber", None) => Ok(Loss::Huber {
                delta: Self::DEFAULT_HUBER_DELTA,
            }),
            ("huber", Some(delta)) => match delta.parse::<f32>() {
                Ok(delta) if delta.is_finite() && delta > 0.0 => Ok(Loss::Huber { delta }),
                _ => Err(format!(
                    "invalid huber delta '{delta}': expected a positive number such as huber:1.0"
                )),
            },
            ("mse" | "mae" | "l1", Some(argument)) => {
                Err(format!("loss '{name}' takes no parameter, but ':{argument}' was given"))
            }
            _ => Err(format!("unknown loss '{text}': expected mse, mae or huber[:DELTA]")),
        }
    }

    /// Factor of the mean's gradient for a batch of `elements = N * O` values.
    pub fn gradient_scale(&self, elements: usize) -> f32 {
        match self {
            Loss::Mse => (2.0 / elements as f64) as f32,
            Loss::Mae | Loss::Huber { .. } => (1.0 / elements as f64) as f32,
        }
    }

    /// Per-element loss term of `d = prediction - target`, before the mean.
    pub fn value(&self, d: f32) -> f32 {
        match *self {
            Loss::Mse => d * d,
            Loss::Mae => d.abs(),
            Loss::Huber { delta } => {
                let z = d.abs();
                if z < delta {
                    0.5 * z * z
                } else {
                    delta * (z - 0.5 * delta)
                }
            }
        }
    }

    /// Gradient of the mean loss with respect to one prediction.
    pub fn gradient(&self, d: f32, scale: f32) -> f32 {
        match *self {
            Loss::Mse => scale * d,
            Loss::Mae => {
                let sign = if d > 0.0 {
                    1.0
                } else if d < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                scale * sign
            }
            Loss::Huber { delta } => {
                if d < -delta {
                    -scale * delta
                } else if d > delta {
                    scale * delta
                } else {
                    scale * d
                }
            }
        }
    }

    /// Returns the PyTorch module that computes the same loss.
    pub fn torch_module(&self) -> String {
        match self {
            Loss::Mse => "nn.MSELoss()".into(),
            Loss::Mae => "nn.L1Loss()".into(),
            Loss::Huber { delta } => format!("nn.HuberLoss(delta={delta})"),
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loss::Mse => write!(f, "mse"),
            Loss::Mae => write!(f, "mae"),
            Loss::Huber { delta } => write!(f, "huber:{delta}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huber_matches_mse_half_inside_delta() {
        let huber = Loss::Huber { delta: 2.0 };
        assert_eq!(huber.value(1.5), 0.5 * 1.5 * 1.5);
        assert_eq!(huber.value(-3.0), 2.0 * (3.0 - 1.0));
        assert_eq!(huber.gradient(5.0, 0.5), 1.0);
        assert_eq!(huber.gradient(-5.0, 0.5), -1.0);
        assert_eq!(huber.gradient(1.0, 0.5), 0.5);
    }

    #[test]
    fn mae_gradient_is_zero_at_zero() {
        assert_eq!(Loss::Mae.gradient(0.0, 0.25), 0.0);
        assert_eq!(Loss::Mae.gradient(-2.0, 0.25), -0.25);
    }

    #[test]
    fn parse_rejects_bad_delta() {
        assert!(Loss::parse("huber:-1").is_err());
        assert!(Loss::parse("mse:3").is_err());
        assert_eq!(Loss::parse("huber:10").unwrap(), Loss::Huber { delta: 10.0 });
        assert_eq!(Loss::parse("L1").unwrap(), Loss::Mae);
    }
}
