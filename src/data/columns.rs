//! Checks of the requested columns against each other and against the header.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{ColumnRole, ColumnSelection, DataError};

/// Delimiters that the wrong-delimiter check looks for in a header that parsed as one column.
const COMMON_DELIMITERS: [u8; 4] = [b';', b'\t', b',', b'|'];

/// Positions in the header of the requested columns.
#[derive(Debug)]
pub(super) struct ResolvedColumns {
    /// 0-based header position of each feature, in requested order.
    pub(super) feature_indices: Vec<usize>,
    /// 0-based header position of each target, in requested order. Empty if targets are
    /// optional and absent.
    pub(super) target_indices: Vec<usize>,
    pub(super) target_names: Vec<String>,
}

/// Rejects an empty feature list, a column listed twice and a target listed as a feature.
pub(super) fn validate_selection(path: &Path, columns: &ColumnSelection) -> Result<(), DataError> {
    if columns.features.is_empty() {
        return Err(DataError::NoFeatures {
            path: path.to_path_buf(),
        });
    }
    for (names, role) in [
        (columns.features, ColumnRole::Feature),
        (columns.targets, ColumnRole::Target),
    ] {
        let mut seen = HashSet::new();
        for name in names {
            if !seen.insert(name.as_str()) {
                return Err(DataError::ColumnRequestedTwice {
                    path: path.to_path_buf(),
                    column: name.clone(),
                    role,
                });
            }
        }
    }
    if let Some(name) = columns.targets.iter().find(|target| columns.features.contains(target)) {
        return Err(DataError::TargetIsFeature {
            path: path.to_path_buf(),
            column: name.clone(),
        });
    }
    Ok(())
}

/// Finds the requested columns in `header`, whose names are already trimmed.
///
/// Duplicate header names are an error only for requested columns. Others get one warning.
pub(super) fn resolve_columns(
    path: &Path,
    header: &[String],
    header_line: u64,
    columns: &ColumnSelection,
    delimiter: u8,
) -> Result<ResolvedColumns, DataError> {
    let mut positions: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, name) in header.iter().enumerate() {
        positions.entry(name.as_str()).or_default().push(index);
    }
    let missing_column = |name: &String, role| missing_column_error(path, header, header_line, name, role, delimiter);
    let find = |name: &String| -> Result<Option<usize>, DataError> {
        match positions.get(name.as_str()).map(Vec::as_slice) {
            None => Ok(None),
            Some([index]) => Ok(Some(*index)),
            Some(indices) => Err(DataError::DuplicateColumn {
                path: path.to_path_buf(),
                column: name.clone(),
                first: indices[0] + 1,
                second: indices[1] + 1,
            }),
        }
    };

    let mut feature_indices = Vec::with_capacity(columns.features.len());
    for name in columns.features {
        match find(name)? {
            Some(index) => feature_indices.push(index),
            None => return Err(missing_column(name, ColumnRole::Feature)),
        }
    }

    let mut target_indices = Vec::with_capacity(columns.targets.len());
    let mut absent_targets = Vec::new();
    for name in columns.targets {
        match find(name)? {
            Some(index) => target_indices.push(index),
            None => absent_targets.push(name.clone()),
        }
    }
    let target_names = if absent_targets.is_empty() {
        columns.targets.to_vec()
    } else if columns.targets_required {
        return Err(missing_column(&absent_targets[0], ColumnRole::Target));
    } else if target_indices.is_empty() {
        Vec::new()
    } else {
        let present = columns
            .targets
            .iter()
            .filter(|name| !absent_targets.contains(name))
            .cloned()
            .collect();
        return Err(DataError::PartialTargets {
            path: path.to_path_buf(),
            present,
            missing: absent_targets,
        });
    };

    warn_unused_duplicates(path, header, &positions, columns);
    Ok(ResolvedColumns {
        feature_indices,
        target_indices,
        target_names,
    })
}

/// Logs one warning that lists header names that appear more than once but are not requested.
fn warn_unused_duplicates(
    path: &Path,
    header: &[String],
    positions: &HashMap<&str, Vec<usize>>,
    columns: &ColumnSelection,
) {
    let mut duplicates: Vec<&str> = Vec::new();
    for name in header {
        let repeated = positions.get(name.as_str()).is_some_and(|p| p.len() > 1);
        if repeated && !duplicates.contains(&name.as_str()) {
            duplicates.push(name);
        }
    }
    duplicates.retain(|name| !columns.features.iter().any(|f| f == name) && !columns.targets.iter().any(|t| t == name));
    if !duplicates.is_empty() {
        log::warn!(
            "{}: the header contains these names more than once: '{}'; they are not requested, \
             so they are ignored",
            path.display(),
            duplicates.join("', '")
        );
    }
}

/// Builds the error for a requested column that the header lacks. A header that parsed as
/// one column containing another common delimiter gets a wrong-delimiter error instead.
fn missing_column_error(
    path: &Path,
    header: &[String],
    header_line: u64,
    name: &str,
    role: ColumnRole,
    delimiter: u8,
) -> DataError {
    if let [only] = header
        && let Some(found) = most_frequent_delimiter(only, delimiter)
    {
        return DataError::WrongDelimiter {
            path: path.to_path_buf(),
            header_line,
            header: only.clone(),
            found,
        };
    }
    DataError::MissingColumn {
        path: path.to_path_buf(),
        column: name.to_string(),
        role,
        header_line,
        suggestion: suggest_column(name, header),
        available: header.to_vec(),
    }
}

/// Returns the common delimiter other than `used` that occurs most often in `text`.
fn most_frequent_delimiter(text: &str, used: u8) -> Option<u8> {
    COMMON_DELIMITERS
        .iter()
        .filter(|&&candidate| candidate != used)
        .map(|&candidate| {
            let count = text.bytes().filter(|&byte| byte == candidate).count();
            (count, candidate)
        })
        .filter(|&(count, _)| count > 0)
        .max_by_key(|&(count, _)| count)
        .map(|(_, candidate)| candidate)
}

/// Returns the header name closest to `requested`: a case-insensitive match, else the first
/// name within a small edit distance that grows with the length of `requested`. Names of one
/// or two characters get only the case-insensitive match, as any edit would change most of them.
pub(super) fn suggest_column(requested: &str, header: &[String]) -> Option<String> {
    let requested = requested.to_lowercase();
    if let Some(name) = header.iter().find(|name| name.to_lowercase() == requested) {
        return Some(name.clone());
    }
    let distance_max = match requested.chars().count() {
        0..=2 => return None,
        3..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    header
        .iter()
        .map(|name| (edit_distance(&requested, &name.to_lowercase()), name))
        .filter(|&(distance, _)| distance <= distance_max)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, name)| name.clone())
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, a_char) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, &b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != b_char);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn edit_distance_examples() {
        assert_eq!(edit_distance("bmi", "bmi"), 0);
        assert_eq!(edit_distance("bmii", "bmi"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggestion_prefers_case_insensitive_match() {
        let header = names(&["bp", "BMI", "bmx"]);
        assert_eq!(suggest_column("bmi", &header).as_deref(), Some("BMI"));
    }

    #[test]
    fn suggestion_absent_for_distant_names() {
        let header = names(&["age", "sex"]);
        assert_eq!(suggest_column("cholesterol", &header), None);
    }

    #[test]
    fn wrong_delimiter_prefers_most_frequent() {
        assert_eq!(most_frequent_delimiter("a;b;c,d", b','), Some(b';'));
        assert_eq!(most_frequent_delimiter("a\tb", b','), Some(b'\t'));
        assert_eq!(most_frequent_delimiter("a,b", b';'), Some(b','));
        assert_eq!(most_frequent_delimiter("ab", b','), None);
    }
}
