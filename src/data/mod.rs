//! CSV loading for regression data.
//!
//! [`load_csv`] reads the requested feature and target columns of a CSV file with a header
//! line into row-major f32 arrays. It streams the file and keeps only the parsed values, so
//! memory stays close to 4 bytes per requested cell plus 8 bytes per row for line numbers.
//! [`write_with_columns`] streams the same file again and appends columns such as predictions.
//!
//! Numbers are parsed as f64 and rounded to f32, as pandas `read_csv` followed by
//! `torch.tensor(..., dtype=torch.float32)` does, so that both pipelines see the same values.
//! Errors name the file, and where it applies the line, the column and the cell text.

mod columns;
mod error;
mod number;
mod reader;
mod write;

use std::path::{Path, PathBuf};

use csv::ByteRecord;

pub use error::{ColumnRole, DataError};
pub use write::write_with_columns;

use columns::{ResolvedColumns, resolve_columns, validate_selection};
use number::{CellError, parse_cell};
use reader::RecordReader;

/// Number of data rows read before the loader reserves memory for the estimated rest.
const ROWS_BEFORE_ESTIMATE: usize = 1000;

/// Options for reading a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    /// Field delimiter byte. [`parse_delimiter`] converts the command-line forms.
    pub delimiter: u8,
    /// Skip rows with a missing value in a requested column, instead of failing.
    ///
    /// Missing values are empty cells, the pandas default `na_values` such as `NA`, `N/A`,
    /// `NaN`, `nan`, `null` and `None`, and any other text that parses as NaN. Infinite
    /// values are not missing, so they still fail.
    pub drop_missing: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            drop_missing: false,
        }
    }
}

/// Columns to read, and whether the targets must be present.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSelection<'a> {
    /// Feature columns, in the order of the network inputs. At least one is required.
    pub features: &'a [String],
    /// Target columns, in the order the network predicts them.
    pub targets: &'a [String],
    /// If false, a file without any of the target columns loads with no targets, as for
    /// prediction. A file with only some of them is an error either way.
    pub targets_required: bool,
}

/// A loaded table: only the requested columns, as f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// File the table was read from.
    pub path: PathBuf,
    /// Every column name of the header, trimmed, in file order.
    pub header: Vec<String>,
    /// Feature column names, in requested order.
    pub feature_names: Vec<String>,
    /// Target column names, in requested order. Empty if targets were optional and absent.
    pub target_names: Vec<String>,
    /// Number of kept rows.
    pub rows: usize,
    /// Feature values, row-major `[rows][feature_names.len()]`.
    pub features: Vec<f32>,
    /// Target values, row-major `[rows][target_names.len()]`. Empty when targets are absent.
    pub targets: Vec<f32>,
    /// Number of rows skipped by [`CsvOptions::drop_missing`].
    pub dropped_rows: usize,
    /// 1-based line in the file of each kept row, counting the header as line 1 if it is the
    /// first line. A row whose quoted cell spans lines gets the line where it starts.
    pub lines: Vec<u64>,
}

impl Dataset {
    /// Number of feature columns.
    pub fn inputs(&self) -> usize {
        self.feature_names.len()
    }

    /// Number of target columns, 0 when targets are absent.
    pub fn outputs(&self) -> usize {
        self.target_names.len()
    }

    /// Returns the features of row `r`. Panics if `r >= rows`.
    pub fn feature_row(&self, r: usize) -> &[f32] {
        let width = self.inputs();
        &self.features[r * width..(r + 1) * width]
    }

    /// Returns the targets of row `r`, empty when targets are absent. Panics if `r >= rows`.
    pub fn target_row(&self, r: usize) -> &[f32] {
        assert!(r < self.rows, "row {r} out of range for {} rows", self.rows);
        let width = self.outputs();
        &self.targets[r * width..(r + 1) * width]
    }
}

/// Converts a `--delimiter` argument to a byte.
///
/// Accepts the words `comma`, `semicolon`, `tab`, `pipe` and `space`, the escape `\t`, and any
/// single ASCII character except letters, digits, `.`, `+`, `-`, `"`, CR and LF, which would
/// make numbers or quoting ambiguous.
pub fn parse_delimiter(s: &str) -> Result<u8, String> {
    let byte = match s {
        "comma" => b',',
        "semicolon" => b';',
        "tab" | "\\t" => b'\t',
        "pipe" => b'|',
        "space" => b' ',
        _ => match s.as_bytes() {
            [byte] if byte.is_ascii() => *byte,
            _ => {
                return Err(format!(
                    "invalid delimiter '{s}': use one ASCII character, or one of the words \
                     comma, semicolon, tab, pipe, space"
                ));
            }
        },
    };
    if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'+' | b'-') {
        return Err(format!(
            "invalid delimiter '{s}': letters, digits, '.', '+' and '-' are parts of numbers"
        ));
    }
    validate_delimiter(byte).map_err(|error| error.to_string())?;
    Ok(byte)
}

/// Rejects delimiters that the CSV parser uses for quoting or line endings.
fn validate_delimiter(delimiter: u8) -> Result<(), DataError> {
    if matches!(delimiter, b'"' | b'\r' | b'\n') || !delimiter.is_ascii() {
        return Err(DataError::InvalidDelimiter { delimiter });
    }
    Ok(())
}

/// Loads the requested columns of a CSV file with a header line.
///
/// Blank lines and lines of only whitespace are skipped. Cells and header names are trimmed
/// of ASCII whitespace. A UTF-8 byte order mark is skipped. Every line must be valid UTF-8
/// and have as many fields as the header, including columns that are not requested.
pub fn load_csv(path: &Path, columns: &ColumnSelection, options: &CsvOptions) -> Result<Dataset, DataError> {
    validate_delimiter(options.delimiter)?;
    validate_selection(path, columns)?;

    let mut reader = RecordReader::open(path, options.delimiter)?;
    let mut record = ByteRecord::new();
    let Some(header_line) = reader.next_record(&mut record)? else {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    };
    let header = parse_header(path, &record, header_line)?;
    let resolved = resolve_columns(path, &header, header_line, columns, options.delimiter)?;

    let mut table = TableBuilder::new(path, &header, &resolved, options);
    let header_end = reader.bytes_consumed();
    while let Some(line) = reader.next_record(&mut record)? {
        table.push_record(&record, line)?;
        if table.records_read() == ROWS_BEFORE_ESTIMATE {
            table.reserve_for_file(reader.file_len(), header_end, reader.bytes_consumed());
        }
    }
    let target_names = resolved.target_names.clone();
    table.finish(header_line, target_names, columns.features)
}

/// Validates the header record and returns its trimmed names.
///
/// A header with NUL bytes in at least a quarter of its bytes is taken as UTF-16 without a
/// byte order mark, because NUL is valid UTF-8 but rare in text.
fn parse_header(path: &Path, record: &ByteRecord, line: u64) -> Result<Vec<String>, DataError> {
    let bytes = record.as_slice();
    let nul_count = bytes.iter().filter(|&&byte| byte == 0).count();
    if nul_count > 0 && nul_count * 4 >= bytes.len() {
        return Err(DataError::Utf16 {
            path: path.to_path_buf(),
            evidence: "the header has NUL bytes between its characters",
        });
    }
    check_utf8(path, record, line, None)?;
    let names = record
        .iter()
        .map(|field| {
            let text = std::str::from_utf8(field).expect("checked by check_utf8");
            text.trim_ascii().to_string()
        })
        .collect();
    Ok(names)
}

/// Returns an error naming the line and column if a field of `record` is not valid UTF-8.
///
/// Each field is checked on its own, because a multibyte character split by a delimiter
/// (`\xC3,\xA9`) makes two invalid fields whose concatenation is valid.
fn check_utf8(path: &Path, record: &ByteRecord, line: u64, header: Option<&[String]>) -> Result<(), DataError> {
    for (index, field) in record.iter().enumerate() {
        if let Err(error) = std::str::from_utf8(field) {
            return Err(DataError::NotUtf8 {
                path: path.to_path_buf(),
                line,
                column_position: index + 1,
                column: header.and_then(|names| names.get(index)).cloned(),
                byte: field[error.valid_up_to()],
            });
        }
    }
    Ok(())
}

/// Accumulates the parsed rows of [`load_csv`].
struct TableBuilder<'a> {
    path: &'a Path,
    header: &'a [String],
    resolved: &'a ResolvedColumns,
    options: &'a CsvOptions,
    features: Vec<f32>,
    targets: Vec<f32>,
    lines: Vec<u64>,
    dropped_rows: usize,
}

impl<'a> TableBuilder<'a> {
    fn new(path: &'a Path, header: &'a [String], resolved: &'a ResolvedColumns, options: &'a CsvOptions) -> Self {
        Self {
            path,
            header,
            resolved,
            options,
            features: Vec::new(),
            targets: Vec::new(),
            lines: Vec::new(),
            dropped_rows: 0,
        }
    }

    fn records_read(&self) -> usize {
        self.lines.len() + self.dropped_rows
    }

    /// Parses the requested cells of one data record and keeps or drops the row.
    fn push_record(&mut self, record: &ByteRecord, line: u64) -> Result<(), DataError> {
        if record.len() != self.header.len() {
            return Err(DataError::RaggedRow {
                path: self.path.to_path_buf(),
                line,
                expected: self.header.len(),
                found: record.len(),
                delimiter: self.options.delimiter,
            });
        }
        check_utf8(self.path, record, line, Some(self.header))?;

        let features_before = self.features.len();
        let targets_before = self.targets.len();
        let mut has_missing = false;
        let cells = self
            .resolved
            .feature_indices
            .iter()
            .map(|&index| (index, false))
            .chain(self.resolved.target_indices.iter().map(|&index| (index, true)));
        for (index, is_target) in cells {
            let text = std::str::from_utf8(&record[index]).expect("checked by check_utf8");
            let text = text.trim_ascii();
            match parse_cell(text, self.options.delimiter) {
                Ok(value) if is_target => self.targets.push(value),
                Ok(value) => self.features.push(value),
                Err(CellError::Missing) if self.options.drop_missing => has_missing = true,
                Err(reason) => return Err(self.cell_error(reason, line, index, text)),
            }
        }

        if has_missing {
            self.features.truncate(features_before);
            self.targets.truncate(targets_before);
            self.dropped_rows += 1;
        } else {
            self.lines.push(line);
        }
        Ok(())
    }

    fn cell_error(&self, reason: CellError, line: u64, index: usize, text: &str) -> DataError {
        let path = self.path.to_path_buf();
        let column = self.header[index].clone();
        let text = text.to_string();
        match reason {
            CellError::Missing => DataError::MissingValue {
                path,
                line,
                column,
                text,
            },
            CellError::NonFinite => DataError::NonFinite {
                path,
                line,
                column,
                text,
            },
            CellError::ThousandsSeparator => DataError::ThousandsSeparator {
                path,
                line,
                column,
                text,
            },
            CellError::DecimalComma => DataError::DecimalComma {
                path,
                line,
                column,
                text,
            },
            CellError::Invalid => DataError::InvalidNumber {
                path,
                line,
                column,
                text,
            },
        }
    }

    /// Reserves room for the rows that the rest of the file likely holds, estimated from the
    /// mean size of the records read so far plus 5 %, so that the vectors need not double.
    fn reserve_for_file(&mut self, file_len: u64, header_end: u64, consumed: u64) {
        let data_bytes = consumed.saturating_sub(header_end);
        if data_bytes == 0 {
            return;
        }
        let bytes_per_record = data_bytes as f64 / self.records_read() as f64;
        let remaining_bytes = file_len.saturating_sub(consumed) as f64;
        let remaining_rows = (remaining_bytes / bytes_per_record * 1.05).ceil() as usize;
        let inputs = self.resolved.feature_indices.len();
        let outputs = self.resolved.target_indices.len();
        self.features.reserve_exact(remaining_rows * inputs);
        self.targets.reserve_exact(remaining_rows * outputs);
        self.lines.reserve_exact(remaining_rows);
    }

    fn finish(
        mut self,
        header_line: u64,
        target_names: Vec<String>,
        feature_names: &[String],
    ) -> Result<Dataset, DataError> {
        if self.lines.is_empty() {
            let path = self.path.to_path_buf();
            return Err(if self.dropped_rows > 0 {
                DataError::AllRowsDropped {
                    path,
                    dropped: self.dropped_rows,
                }
            } else {
                DataError::NoRows { path, header_line }
            });
        }
        self.features.shrink_to_fit();
        self.targets.shrink_to_fit();
        self.lines.shrink_to_fit();
        Ok(Dataset {
            path: self.path.to_path_buf(),
            header: self.header.to_vec(),
            feature_names: feature_names.to_vec(),
            target_names,
            rows: self.lines.len(),
            features: self.features,
            targets: self.targets,
            dropped_rows: self.dropped_rows,
            lines: self.lines,
        })
    }
}
