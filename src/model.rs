//! The multilayer perceptron: architecture, parameters and their JSON form.
//!
//! Dimension legend, used with the same letters in the CPU reference, the
//! shaders and the tests:
//! - `N`: rows (samples) in a batch
//! - `I`: inputs of a layer (`in_features` in PyTorch)
//! - `O`: outputs of a layer (`out_features`)
//! - `P`: all trainable parameters, flattened
//!
//! Parameters follow PyTorch's `nn.Linear` layout: per layer `weight[O][I]`
//! then `bias[O]`, layers in forward order. The flattened vector used by the
//! optimizers and the GPU is the same order as PyTorch's `state_dict()`.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub mod init;

/// Activation function applied after every hidden layer (never after the output layer).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
    /// `x` for `x > 0`, else `negative_slope * x` (PyTorch's default slope is 0.01).
    LeakyRelu {
        negative_slope: f32,
    },
    /// `x * Phi(x)` with the exact normal CDF (`nn.GELU(approximate="none")`).
    Gelu,
    /// GELU with PyTorch's tanh approximation (`nn.GELU(approximate="tanh")`).
    GeluTanh,
    Identity,
}

impl Activation {
    /// Default slope of `leaky_relu`, as in `torch.nn.LeakyReLU`.
    pub const DEFAULT_LEAKY_SLOPE: f32 = 0.01;

    /// Parses `relu`, `sigmoid`, `tanh`, `leaky_relu`, `leaky_relu:SLOPE`,
    /// `gelu`, `gelu_tanh` or `identity`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, argument) = match text.split_once(':') {
            Some((name, argument)) => (name.trim(), Some(argument.trim())),
            None => (text, None),
        };
        let activation = match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "leaky_relu" | "leakyrelu" => {
                let negative_slope = match argument {
                    None => Self::DEFAULT_LEAKY_SLOPE,
                    Some(slope) => slope.parse::<f32>().ok().filter(|s| s.is_finite()).ok_or_else(|| {
                        format!("invalid leaky_relu slope '{slope}': expected a finite number such as leaky_relu:0.01")
                    })?,
                };
                return Ok(Activation::LeakyRelu { negative_slope });
            }
            "gelu" => Activation::Gelu,
            "gelu_tanh" => Activation::GeluTanh,
            "identity" | "linear" | "none" => Activation::Identity,
            _ => {
                return Err(format!(
                    "unknown activation '{text}': expected relu, sigmoid, tanh, leaky_relu[:SLOPE], gelu, gelu_tanh or identity"
                ));
            }
        };
        match argument {
            Some(argument) => Err(format!(
                "activation '{name}' takes no parameter, but ':{argument}' was given"
            )),
            None => Ok(activation),
        }
    }

    /// The PyTorch module that computes the same function.
    pub fn torch_module(&self) -> String {
        match self {
            Activation::Relu => "nn.ReLU()".into(),
            Activation::Sigmoid => "nn.Sigmoid()".into(),
            Activation::Tanh => "nn.Tanh()".into(),
            Activation::LeakyRelu { negative_slope } => format!("nn.LeakyReLU({negative_slope})"),
            Activation::Gelu => "nn.GELU()".into(),
            Activation::GeluTanh => "nn.GELU(approximate=\"tanh\")".into(),
            Activation::Identity => "nn.Identity()".into(),
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Relu => write!(f, "relu"),
            Activation::Sigmoid => write!(f, "sigmoid"),
            Activation::Tanh => write!(f, "tanh"),
            Activation::LeakyRelu { negative_slope } => write!(f, "leaky_relu:{negative_slope}"),
            Activation::Gelu => write!(f, "gelu"),
            Activation::GeluTanh => write!(f, "gelu_tanh"),
            Activation::Identity => write!(f, "identity"),
        }
    }
}

/// Layer sizes and activations of an MLP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// `[inputs, hidden..., outputs]`: one more entry than there are layers.
    pub sizes: Vec<usize>,
    /// One activation per hidden layer.
    pub activations: Vec<Activation>,
}

impl Architecture {
    /// Largest number of parameters a model may have. shadertrain trains
    /// small networks; the CPU reference keeps about eight copies of the
    /// parameters, and the GPU paths several, so this bounds memory too.
    pub const MAX_PARAMETERS: usize = 50_000_000;

    /// Builds the architecture `inputs -> hidden... -> outputs`.
    ///
    /// `activations` contains either one entry, used for every hidden layer, or
    /// one entry per hidden layer.
    pub fn new(
        inputs: usize,
        hidden: &[usize],
        outputs: usize,
        activations: &[Activation],
    ) -> Result<Self, ModelError> {
        let mut sizes = Vec::with_capacity(hidden.len() + 2);
        sizes.push(inputs);
        sizes.extend_from_slice(hidden);
        sizes.push(outputs);
        if let Some(position) = sizes.iter().position(|&size| size == 0) {
            return Err(ModelError::ZeroWidth { position, sizes });
        }
        // Checked before anything is allocated: the count can overflow usize.
        let count = sizes.windows(2).try_fold(0_usize, |total, pair| {
            pair[0]
                .checked_mul(pair[1])
                .and_then(|weights| weights.checked_add(pair[1]))
                .and_then(|layer| total.checked_add(layer))
        });
        match count {
            Some(count) if count <= Self::MAX_PARAMETERS => {}
            _ => {
                return Err(ModelError::TooLarge {
                    sizes,
                    count: count.map_or_else(|| "more than 2^64".to_string(), |c| c.to_string()),
                });
            }
        }
        let activations = match (activations.len(), hidden.len()) {
            (_, 0) => Vec::new(),
            (1, n) => vec![activations[0]; n],
            (a, n) if a == n => activations.to_vec(),
            (a, n) => return Err(ModelError::ActivationCount { given: a, hidden: n }),
        };
        Ok(Self { sizes, activations })
    }

    pub fn inputs(&self) -> usize {
        self.sizes[0]
    }

    pub fn outputs(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    pub fn hidden(&self) -> &[usize] {
        &self.sizes[1..self.sizes.len() - 1]
    }

    pub fn layer_count(&self) -> usize {
        self.sizes.len() - 1
    }

    /// `(I, O)` of layer `l`.
    pub fn layer_shape(&self, l: usize) -> (usize, usize) {
        (self.sizes[l], self.sizes[l + 1])
    }

    /// Activation after layer `l`: the hidden activation, or identity for the output layer.
    pub fn activation(&self, l: usize) -> Activation {
        self.activations.get(l).copied().unwrap_or(Activation::Identity)
    }

    /// Total number of trainable parameters `P`.
    pub fn parameter_count(&self) -> usize {
        (0..self.layer_count())
            .map(|l| {
                let (i, o) = self.layer_shape(l);
                o * i + o
            })
            .sum()
    }

    /// Offsets of layer `l`'s weight and bias in the flattened parameter vector.
    pub fn parameter_offsets(&self, l: usize) -> (usize, usize) {
        let mut offset = 0;
        for k in 0..l {
            let (i, o) = self.layer_shape(k);
            offset += o * i + o;
        }
        let (i, o) = self.layer_shape(l);
        (offset, offset + o * i)
    }

    /// Short human-readable form, for example `2 -> 5 (relu) -> 1`.
    pub fn describe(&self) -> String {
        let mut text = self.sizes[0].to_string();
        for l in 0..self.layer_count() {
            text.push_str(&format!(" -> {}", self.sizes[l + 1]));
            if l + 1 < self.layer_count() {
                text.push_str(&format!(" ({})", self.activation(l)));
            }
        }
        text
    }
}

/// One fully connected layer, `y = x W^T + b`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// `[O][I]`, as `nn.Linear.weight`.
    pub weight: Vec<Vec<f32>>,
    /// `[O]`, as `nn.Linear.bias`.
    pub bias: Vec<f32>,
}

/// Parameters of every layer in forward order: the `layers` member of the
/// init, report and model JSON files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Parameters {
    pub layers: Vec<Layer>,
}

impl Parameters {
    /// Splits a flattened parameter vector into layers.
    pub fn from_flat(architecture: &Architecture, flat: &[f32]) -> Self {
        assert_eq!(flat.len(), architecture.parameter_count());
        let layers = (0..architecture.layer_count())
            .map(|l| {
                let (i, o) = architecture.layer_shape(l);
                let (w, b) = architecture.parameter_offsets(l);
                Layer {
                    weight: flat[w..w + o * i].chunks(i).map(<[f32]>::to_vec).collect(),
                    bias: flat[b..b + o].to_vec(),
                }
            })
            .collect();
        Self { layers }
    }

    /// Flattens into the `state_dict()` order: per layer the weight row by row, then the bias.
    pub fn to_flat(&self) -> Vec<f32> {
        let mut flat = Vec::new();
        for layer in &self.layers {
            for row in &layer.weight {
                flat.extend_from_slice(row);
            }
            flat.extend_from_slice(&layer.bias);
        }
        flat
    }

    /// Checks that every layer has the shape the architecture expects and
    /// that every value is finite. `source` names the file for messages.
    pub fn validate(&self, architecture: &Architecture, source: &str) -> Result<(), ModelError> {
        if self.layers.len() != architecture.layer_count() {
            return Err(ModelError::LayerCount {
                origin: source.to_string(),
                found: self.layers.len(),
                expected: architecture.layer_count(),
                architecture: architecture.describe(),
            });
        }
        for (l, layer) in self.layers.iter().enumerate() {
            let (i, o) = architecture.layer_shape(l);
            if layer.weight.len() != o {
                return Err(ModelError::Shape {
                    field: format!("{source}: layers[{l}].weight"),
                    found: format!("{} rows", layer.weight.len()),
                    expected: format!("{o} rows of {i} (weight is [out][in])"),
                });
            }
            for (r, row) in layer.weight.iter().enumerate() {
                if row.len() != i {
                    return Err(ModelError::Shape {
                        field: format!("{source}: layers[{l}].weight[{r}]"),
                        found: format!("{} values", row.len()),
                        expected: format!("{i} values"),
                    });
                }
                if let Some(c) = row.iter().position(|v| !v.is_finite()) {
                    return Err(ModelError::NonFinite {
                        field: format!("{source}: layers[{l}].weight[{r}][{c}]"),
                        value: row[c],
                    });
                }
            }
            if layer.bias.len() != o {
                return Err(ModelError::Shape {
                    field: format!("{source}: layers[{l}].bias"),
                    found: format!("{} values", layer.bias.len()),
                    expected: format!("{o} values"),
                });
            }
            if let Some(c) = layer.bias.iter().position(|v| !v.is_finite()) {
                return Err(ModelError::NonFinite {
                    field: format!("{source}: layers[{l}].bias[{c}]"),
                    value: layer.bias[c],
                });
            }
        }
        Ok(())
    }

    /// Reads the architecture's layer sizes back from the parameter shapes.
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = Vec::new();
        if let Some(first) = self.layers.first() {
            sizes.push(first.weight.first().map_or(0, Vec::len));
        }
        for layer in &self.layers {
            sizes.push(layer.bias.len());
        }
        sizes
    }
}

/// Invalid architecture or parameters.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("layer sizes {sizes:?} contain a zero at position {position}: every layer needs at least one unit")]
    ZeroWidth { position: usize, sizes: Vec<usize> },
    #[error(
        "layer sizes {sizes:?} give {count} parameters, more than the maximum of 50,000,000; use narrower or fewer hidden layers"
    )]
    TooLarge { sizes: Vec<usize>, count: String },
    #[error(
        "{given} activations given for {hidden} hidden layers: give one activation for all layers or one per hidden layer"
    )]
    ActivationCount { given: usize, hidden: usize },
    #[error(
        "{origin}: found {found} layers, but the model {architecture} has {expected}; check --hidden and the features and targets"
    )]
    LayerCount {
        origin: String,
        found: usize,
        expected: usize,
        architecture: String,
    },
    #[error("{field} has {found}, expected {expected}")]
    Shape {
        field: String,
        found: String,
        expected: String,
    },
    #[error("{field} is {value}: parameters must be finite numbers")]
    NonFinite { field: String, value: f32 },
}
