//! The JSON files shadertrain reads and writes, and safe file output.
//!
//! - init file (`--init`): `{"layers": [{"weight": [[...]], "bias": [...]}, ...]}`
//! - model file (`--save`): the layers plus everything `predict` needs
//! - report (`--report`): device, timing, logged metrics and the layers
//!
//! Every output goes to a temporary file beside its destination and is
//! renamed into place once complete, so an interrupted or failed run never
//! leaves a half-written file or replaces a good one.

use indexmap::IndexMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::loss::Loss;
use crate::model::{Activation, Architecture, Layer, ModelError, Parameters};
use crate::prepare::Standardization;
use crate::train::{Halt, Metrics};

/// Errors reading or writing shadertrain's files.
#[derive(Debug, Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid JSON for a {what}: at {field}: {message}")]
    Json {
        path: PathBuf,
        what: &'static str,
        field: String,
        message: String,
    },
    #[error("cannot write {path}: {source}; the previous file, if any, is unchanged")]
    Write { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Writes a file atomically: to a temporary file in the same directory,
/// flushed to disk, then renamed over `path`.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), FileError> {
    let error = |source| FileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // Mode 0666 before the umask, as for any new file; the rename keeps it.
    let mut builder = tempfile::Builder::new();
    builder.prefix(".shadertrain-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut file = builder.tempfile_in(directory).map_err(error)?;
    {
        let mut writer = std::io::BufWriter::new(file.as_file_mut());
        write(&mut writer).map_err(error)?;
        writer.flush().map_err(error)?;
    }
    file.as_file().sync_all().map_err(error)?;
    file.persist(path).map_err(|e| error(e.error))?;
    Ok(())
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    write_atomically(path, |writer| {
        serde_json::to_writer_pretty(&mut *writer, value).map_err(std::io::Error::other)?;
        writer.write_all(b"\n")
    })
}

/// Reads JSON, naming the path of the first bad field in errors.
pub fn read_json<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let deserializer = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("{inner} (JSON has no NaN or Infinity; parameters must be finite numbers)")
        } else {
            inner.to_string()
        };
        FileError::Json {
            path: path.to_path_buf(),
            what,
            field: if field == "." { "the top level".into() } else { field },
            message,
        }
    })
}

/// Reads an init file and checks it against the architecture.
pub fn read_init(path: &Path, architecture: &Architecture) -> Result<Parameters, FileError> {
    let parameters: Parameters = read_json(path, "parameter file")?;
    parameters.validate(architecture, &path.display().to_string())?;
    Ok(parameters)
}

/// Training settings recorded in a saved model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub data: String,
    pub optimizer: String,
    pub loss: String,
    pub epochs: u64,
    pub epochs_done: u64,
    pub batch_size: Option<usize>,
    pub seed: u64,
    pub device: String,
    pub kernel: String,
    #[serde(default)]
    pub halt: Option<Halt>,
    #[serde(default)]
    pub interrupted: bool,
}

/// Final metrics recorded in a saved model and in the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalMetrics {
    pub train: Metrics,
    pub validation: Option<Metrics>,
}

/// A trained model, as `--save` writes it and `predict` reads it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always `shadertrain-model`.
    pub format: String,
    pub version: u32,
    pub features: Vec<String>,
    pub targets: Vec<String>,
    pub hidden: Vec<usize>,
    /// One per hidden layer.
    pub activations: Vec<Activation>,
    pub loss: Loss,
    #[serde(default)]
    pub standardization: Standardization,
    #[serde(default)]
    pub training: Option<TrainingRecord>,
    #[serde(default)]
    pub metrics: Option<FinalMetrics>,
    pub layers: Vec<Layer>,
}

impl ModelFile {
    pub const FORMAT: &'static str = "shadertrain-model";
    pub const VERSION: u32 = 1;

    pub fn architecture(&self) -> Result<Architecture, ModelError> {
        Architecture::new(self.features.len(), &self.hidden, self.targets.len(), &self.activations)
    }

    /// Reads a model file and checks that its layers match its architecture.
    pub fn read(path: &Path) -> Result<Self, FileError> {
        let model: ModelFile = read_json(path, "model file")?;
        if model.format != Self::FORMAT {
            return Err(FileError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "format is '{}', expected '{}'; pass a file written by `shadertrain train --save`",
                    model.format,
                    Self::FORMAT
                ),
            });
        }
        let architecture = model.architecture()?;
        let parameters = Parameters {
            layers: model.layers.clone(),
        };
        parameters.validate(&architecture, &path.display().to_string())?;
        let standardization_widths = [
            (
                model.standardization.features.as_ref(),
                model.features.len(),
                "features",
            ),
            (model.standardization.targets.as_ref(), model.targets.len(), "targets"),
        ];
        for (zscore, width, name) in standardization_widths {
            if let Some(zscore) = zscore
                && (zscore.mean.len() != width || zscore.std.len() != width)
            {
                return Err(FileError::Invalid {
                    path: path.to_path_buf(),
                    message: format!(
                        "standardization.{name} has {} means and {} standard deviations, expected {width} of each",
                        zscore.mean.len(),
                        zscore.std.len()
                    ),
                });
            }
        }
        Ok(model)
    }

    pub fn parameters(&self) -> Parameters {
        Parameters {
            layers: self.layers.clone(),
        }
    }
}

/// The adapter a run used.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub name: String,
    pub backend: String,
    #[serde(rename = "type")]
    pub device_type: String,
}

/// Run report, as `--report` writes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub device: DeviceRecord,
    /// `fused`, `general` or `cpu-reference`.
    pub kernel: String,
    pub model: String,
    pub epochs: u64,
    pub epochs_done: u64,
    pub seconds: f64,
    pub epochs_per_second: f64,
    /// Training loss before each logged epoch's update, by epoch number.
    pub loss: IndexMap<String, f64>,
    /// Validation loss at each logged epoch, when there is validation data.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub validation_loss: IndexMap<String, f64>,
    /// Every metric at each logged epoch, in epoch order.
    pub history: Vec<crate::train::LogEntry>,
    pub final_loss: f64,
    pub final_metrics: FinalMetrics,
    pub halt: Option<Halt>,
    pub interrupted: bool,
    pub layers: Vec<Layer>,
}

/// Serializes non-finite f64 as JSON `null` and reads `null` back as NaN,
/// for metrics such as R^2 that are undefined for a constant target.
pub mod finite_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else {
            serializer.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
    }
}
