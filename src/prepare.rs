//! Preparing loaded data for training: the validation split and z-score
//! standardization.
//!
//! Standardization statistics come from the training rows only and travel
//! with the saved model, so prediction applies exactly the same transform.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Row-major features and targets owned by the trainer.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub inputs: usize,
    pub outputs: usize,
    /// `[N][I]`
    pub features: Vec<f32>,
    /// `[N][O]`
    pub targets: Vec<f32>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.features.len().checked_div(self.inputs).unwrap_or(0)
    }

    pub fn samples(&self) -> crate::train::Samples<'_> {
        crate::train::Samples::new(self.inputs, self.outputs, &self.features, &self.targets)
    }

    /// Copies the rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Table {
        let mut features = Vec::with_capacity(indices.len() * self.inputs);
        let mut targets = Vec::with_capacity(indices.len() * self.outputs);
        for &r in indices {
            features.extend_from_slice(&self.features[r * self.inputs..(r + 1) * self.inputs]);
            targets.extend_from_slice(&self.targets[r * self.outputs..(r + 1) * self.outputs]);
        }
        Table {
            inputs: self.inputs,
            outputs: self.outputs,
            features,
            targets,
        }
    }
}

/// Splits off `fraction` of the rows, chosen by a shuffle seeded with
/// `seed`, as validation data. Both parts keep their rows in file order.
pub fn split_validation(table: &Table, fraction: f64, seed: u64) -> Result<(Table, Table), String> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(format!(
            "invalid validation fraction {fraction}: expected a number between 0 and 1, such as 0.2"
        ));
    }
    let rows = table.rows();
    let validation_rows = (fraction * rows as f64).round() as usize;
    if validation_rows == 0 || validation_rows >= rows {
        return Err(format!(
            "a validation fraction of {fraction} leaves {validation_rows} of {rows} rows for validation; \
             both the training and the validation part need at least one row"
        ));
    }
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut validation: Vec<usize> = order[..validation_rows].to_vec();
    let mut train: Vec<usize> = order[validation_rows..].to_vec();
    validation.sort_unstable();
    train.sort_unstable();
    Ok((table.select(&train), table.select(&validation)))
}

/// Mean and standard deviation of each column: `x' = (x - mean) / std`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZScore {
    pub mean: Vec<f64>,
    /// Population standard deviation (as scikit-learn's `StandardScaler`);
    /// 1 for a constant column, which then becomes all zeros.
    pub std: Vec<f64>,
}

impl ZScore {
    /// Statistics of the columns of `values[N][width]`. Returns the indices
    /// of constant columns as well, for a warning.
    pub fn fit(values: &[f32], width: usize) -> (Self, Vec<usize>) {
        let rows = values.len() / width.max(1);
        let mut mean = vec![0.0_f64; width];
        for row in values.chunks(width) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += f64::from(*v);
            }
        }
        for m in &mut mean {
            *m /= rows as f64;
        }
        let mut variance = vec![0.0_f64; width];
        for row in values.chunks(width) {
            for ((s, m), v) in variance.iter_mut().zip(&mean).zip(row) {
                *s += (f64::from(*v) - m).powi(2);
            }
        }
        let mut constant = Vec::new();
        let std = variance
            .iter()
            .enumerate()
            .map(|(c, s)| {
                let std = (s / rows as f64).sqrt();
                if std > 0.0 && std.is_finite() {
                    std
                } else {
                    constant.push(c);
                    1.0
                }
            })
            .collect();
        (Self { mean, std }, constant)
    }

    /// Applies the transform in place to `values[N][width]`.
    pub fn apply(&self, values: &mut [f32]) {
        let width = self.mean.len();
        for row in values.chunks_mut(width) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = ((f64::from(*v) - m) / s) as f32;
            }
        }
    }

    /// Undoes the transform in place.
    pub fn invert(&self, values: &mut [f32]) {
        let width = self.mean.len();
        for row in values.chunks_mut(width) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (f64::from(*v) * s + m) as f32;
            }
        }
    }
}

/// The standardization stored with a model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Standardization {
    pub features: Option<ZScore>,
    pub targets: Option<ZScore>,
}

impl Standardization {
    pub fn is_empty(&self) -> bool {
        self.features.is_none() && self.targets.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zscore_constant_column_becomes_zero() {
        let values = [1.0_f32, 5.0, 1.0, 7.0, 1.0, 9.0];
        let (z, constant) = ZScore::fit(&values, 2);
        assert_eq!(constant, vec![0]);
        assert_eq!(z.std[0], 1.0);
        let mut transformed = values.to_vec();
        z.apply(&mut transformed);
        assert_eq!(transformed[0], 0.0);
        assert!((transformed[1] + 1.224_744_9).abs() < 1e-6, "{}", transformed[1]);
        z.invert(&mut transformed);
        assert_eq!(transformed, values.to_vec());
    }

    #[test]
    fn split_keeps_every_row_once() {
        let table = Table {
            inputs: 1,
            outputs: 1,
            features: (0..10).map(|v| v as f32).collect(),
            targets: (0..10).map(|v| v as f32).collect(),
        };
        let (train, validation) = split_validation(&table, 0.3, 7).unwrap();
        assert_eq!(train.rows(), 7);
        assert_eq!(validation.rows(), 3);
        let mut all: Vec<f32> = train.features.iter().chain(&validation.features).copied().collect();
        all.sort_by(f32::total_cmp);
        assert_eq!(all, table.features);
    }
}
