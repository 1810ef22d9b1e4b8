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
///
/// A symbolic link is followed, so the link stays and its target is
/// replaced. A device, pipe or other file that is not a regular file is
/// written in place, because renaming over it would replace it. An existing
/// file keeps its permissions; a new one gets mode 0666 minus the umask.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), FileError> {
    let error = |source| FileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let target = resolve_link(path);

    if let Ok(metadata) = std::fs::metadata(&target)
        && !metadata.is_file()
    {
        let file = std::fs::OpenOptions::new().write(true).open(&target).map_err(error)?;
        let mut writer = std::io::BufWriter::new(file);
        write(&mut writer).map_err(error)?;
        return writer.flush().map_err(error);
    }

    let directory = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".shadertrain-").suffix(".tmp");
    let existing = std::fs::metadata(&target).ok().map(|metadata| metadata.permissions());
    match existing {
        Some(permissions) => {
            builder.permissions(permissions);
        }
        None => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                builder.permissions(std::fs::Permissions::from_mode(0o666));
            }
        }
    }
    let mut file = builder.tempfile_in(&directory).map_err(error)?;
    {
        let mut writer = std::io::BufWriter::new(file.as_file_mut());
        write(&mut writer).map_err(error)?;
        writer.flush().map_err(error)?;
    }
    file.as_file().sync_all().map_err(error)?;
    file.persist(&target).map_err(|e| error(e.error))?;
    Ok(())
}

/// Follows symbolic links from `path` to the file they name, including a
/// target that does not exist yet.
fn resolve_link(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    // A bounded number of hops, so a link loop cannot hang.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_symlink() => match std::fs::read_link(&current) {
                Ok(next) if next.is_absolute() => current = next,
                Ok(next) => {
                    let base = current.parent().map(Path::to_path_buf).unwrap_or_default();
                    current = base.join(next);
                }
                Err(_) => return current,
            },
            _ => return current,
        }
    }
    current
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

/// Reads `path` as a model file when it is one (its `format` is
/// `shadertrain-model`); returns `None` for a plain parameter file or a report.
pub fn read_model_if_model_file(path: &Path) -> Result<Option<ModelFile>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let is_model = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|value| {
            value
                .get("format")
                .and_then(|f| f.as_str())
                .map(|f| f == ModelFile::FORMAT)
        })
        .unwrap_or(false);
    if is_model {
        ModelFile::read(path).map(Some)
    } else {
        Ok(None)
    }
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
    #[serde(with = "finite_or_null_map")]
    pub loss: IndexMap<String, f64>,
    /// Validation loss at each logged epoch, when there is validation data.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty", with = "finite_or_null_map")]
    pub validation_loss: IndexMap<String, f64>,
    /// Every metric at each logged epoch, in epoch order.
    pub history: Vec<crate::train::LogEntry>,
    #[serde(with = "finite_or_null")]
    pub final_loss: f64,
    pub final_metrics: FinalMetrics,
    pub halt: Option<Halt>,
    pub interrupted: bool,
    pub layers: Vec<Layer>,
}

/// [`finite_or_null`] for the values of a map.
pub mod finite_or_null_map {
    use indexmap::IndexMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(map: &IndexMap<String, f64>, serializer: S) -> Result<S::Ok, S::Error> {
        let values: IndexMap<&String, Option<f64>> =
            map.iter().map(|(k, v)| (k, v.is_finite().then_some(*v))).collect();
        values.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<IndexMap<String, f64>, D::Error> {
        let values = IndexMap::<String, Option<f64>>::deserialize(deserializer)?;
        Ok(values.into_iter().map(|(k, v)| (k, v.unwrap_or(f64::NAN))).collect())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write_text(path: &Path, text: &str) -> Result<(), FileError> {
        write_atomically(path, |writer| writer.write_all(text.as_bytes()))
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_text(&path, "first").unwrap();
        write_text(&path, "second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file may stay behind");
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_follows_symlinks_and_keeps_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.json");
        let link = dir.path().join("link.json");
        std::fs::write(&target, "old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();

        write_text(&link, "new").unwrap();

        assert!(
            std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
            "the link must stay a link"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "the file keeps its mode");
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_keeps_devices() {
        let null = Path::new("/dev/null");
        write_text(null, "discarded").unwrap();
        let metadata = std::fs::metadata(null).unwrap();
        assert!(!metadata.is_file(), "/dev/null must stay a device");
    }
}
