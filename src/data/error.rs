//! Errors of the CSV loader and writer.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Maximum number of column names that a "column not found" message lists.
const LISTED_COLUMNS_MAX: usize = 40;

/// Maximum number of characters of a header line that a wrong-delimiter message shows.
const SHOWN_HEADER_MAX: usize = 80;

/// Role of a requested column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnRole {
    /// Input column of the network.
    Feature,
    /// Output column that the network learns to predict.
    Target,
}

impl fmt::Display for ColumnRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnRole::Feature => f.write_str("feature"),
            ColumnRole::Target => f.write_str("target"),
        }
    }
}

/// Error from [`load_csv`](super::load_csv) or [`write_with_columns`](super::write_with_columns).
///
/// Line numbers are 1-based and count the header line. Column positions are 1-based.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The path does not exist.
    #[error("data file {path} not found; check the path and the working directory", path = .path.display())]
    NotFound { path: PathBuf },

    /// The path is a directory.
    #[error("{path} is a directory; pass the path of a CSV file", path = .path.display())]
    IsDirectory { path: PathBuf },

    /// Opening or reading the file failed, for example for lack of permission.
    #[error("failed to read {path}: {source}", path = .path.display())]
    Io { path: PathBuf, source: io::Error },

    /// The file is empty or contains only whitespace.
    #[error(
        "{path} is empty; a CSV file needs a header line with the column names followed by data rows",
        path = .path.display()
    )]
    Empty { path: PathBuf },

    /// The file contains a header but no data rows.
    #[error(
        "{path} contains a header (line {header_line}) but no data rows; add rows below the header",
        path = .path.display()
    )]
    NoRows { path: PathBuf, header_line: u64 },

    /// `drop_missing` dropped every data row.
    #[error(
        "{path}: --drop-missing dropped all {dropped} data rows because each has a missing value \
         in a requested column, so no rows remain; fill in the missing values or request other columns",
        path = .path.display()
    )]
    AllRowsDropped { path: PathBuf, dropped: usize },

    /// The file is UTF-16 encoded.
    #[error(
        "{path} is encoded as UTF-16 ({evidence}); convert it to UTF-8, \
         for example with `iconv -f UTF-16 -t UTF-8 IN > OUT`",
        path = .path.display()
    )]
    Utf16 { path: PathBuf, evidence: &'static str },

    /// A line contains bytes that are not valid UTF-8.
    #[error(
        "{path}: line {line} is not valid UTF-8 (byte 0x{byte:02X} in column {column}); \
         save the file as UTF-8",
        path = .path.display(),
        column = describe_column(*.column_position, .column.as_deref())
    )]
    NotUtf8 {
        path: PathBuf,
        line: u64,
        /// 1-based position of the column that contains the invalid byte.
        column_position: usize,
        /// Name of that column, unless the header itself is invalid.
        column: Option<String>,
        /// First invalid byte.
        byte: u8,
    },

    /// The delimiter cannot separate CSV fields.
    #[error(
        "invalid delimiter {delimiter_text}: use one ASCII character other than a double quote, CR or LF",
        delimiter_text = describe_byte(*.delimiter)
    )]
    InvalidDelimiter { delimiter: u8 },

    /// The selection names no feature column.
    #[error("no feature columns requested for {path}; name at least one feature column", path = .path.display())]
    NoFeatures { path: PathBuf },

    /// The selection lists a column twice in the same role.
    #[error(
        "{role} column '{column}' is requested twice for {path}; list each column once",
        path = .path.display()
    )]
    ColumnRequestedTwice {
        path: PathBuf,
        column: String,
        role: ColumnRole,
    },

    /// The selection lists a column both as a feature and as a target.
    #[error(
        "column '{column}' is requested both as a feature and as a target for {path}; \
         a target cannot also be a feature",
        path = .path.display()
    )]
    TargetIsFeature { path: PathBuf, column: String },

    /// A requested column is not in the header.
    #[error(
        "{path}: {role} column '{column}' not found in the header (line {header_line}). {suggestion}\
         The file has {count} columns: {listed}",
        path = .path.display(),
        suggestion = describe_suggestion(.suggestion.as_deref()),
        count = .available.len(),
        listed = list_columns(.available)
    )]
    MissingColumn {
        path: PathBuf,
        column: String,
        role: ColumnRole,
        header_line: u64,
        /// Header name that is close to `column`, if any.
        suggestion: Option<String>,
        /// All names in the header, in file order.
        available: Vec<String>,
    },

    /// Some but not all target columns are present while targets are optional.
    #[error(
        "{path} contains the target columns {present} but not {missing}; \
         a file must contain all target columns or none",
        path = .path.display(),
        present = quote_names(.present),
        missing = quote_names(.missing)
    )]
    PartialTargets {
        path: PathBuf,
        present: Vec<String>,
        missing: Vec<String>,
    },

    /// A requested column name appears more than once in the header.
    #[error(
        "{path}: requested column '{column}' appears more than once in the header, \
         at positions {first} and {second}; rename one of them",
        path = .path.display()
    )]
    DuplicateColumn {
        path: PathBuf,
        column: String,
        first: usize,
        second: usize,
    },

    /// The header parsed as one column that contains another common delimiter.
    #[error(
        "{path}: the header (line {header_line}) was read as one column '{header}' that contains \
         {found_name}s, so the file looks {found_name}-separated; pass --delimiter {flag}",
        path = .path.display(),
        header = describe_header(.header),
        found_name = delimiter_name(*.found),
        flag = delimiter_flag(*.found)
    )]
    WrongDelimiter {
        path: PathBuf,
        header_line: u64,
        header: String,
        found: u8,
    },

    /// A row has a different number of fields than the header.
    #[error(
        "{path}: line {line} has {found} fields but the header has {expected}; fix the row, \
         or quote cells that contain the delimiter {delimiter}",
        path = .path.display(),
        delimiter = describe_byte(*.delimiter)
    )]
    RaggedRow {
        path: PathBuf,
        line: u64,
        expected: usize,
        found: usize,
        delimiter: u8,
    },

    /// A requested cell is empty or a missing-value marker such as `NA`.
    #[error(
        "{path}: line {line}, column '{column}': missing value {cell_text}; fill it in, \
         or pass --drop-missing to skip rows with missing values",
        path = .path.display(),
        cell_text = describe_cell(.text)
    )]
    MissingValue {
        path: PathBuf,
        line: u64,
        column: String,
        text: String,
    },

    /// A requested cell is infinite, or too large for f32.
    #[error(
        "{path}: line {line}, column '{column}': '{text}' is not a finite 32-bit float \
         (the largest is about 3.4e38); replace it with a finite value",
        path = .path.display()
    )]
    NonFinite {
        path: PathBuf,
        line: u64,
        column: String,
        text: String,
    },

    /// A requested cell is not a number.
    #[error(
        "{path}: line {line}, column '{column}': '{text}' is not a number; \
         requested columns must contain only numbers",
        path = .path.display()
    )]
    InvalidNumber {
        path: PathBuf,
        line: u64,
        column: String,
        text: String,
    },

    /// A requested cell looks like a number with thousands separators.
    #[error(
        "{path}: line {line}, column '{column}': '{text}' is not a number because it seems to \
         contain thousands separators; remove them (write {fixed})",
        path = .path.display(),
        fixed = without_thousands_separators(.text)
    )]
    ThousandsSeparator {
        path: PathBuf,
        line: u64,
        column: String,
        text: String,
    },

    /// A requested cell looks like a number with a decimal comma.
    #[error(
        "{path}: line {line}, column '{column}': '{text}' is not a number because it seems to \
         use a decimal comma; write numbers with a decimal point (write {fixed})",
        path = .path.display(),
        fixed = with_decimal_point(.text)
    )]
    DecimalComma {
        path: PathBuf,
        line: u64,
        column: String,
        text: String,
    },

    /// The extra values passed to `write_with_columns` do not fit the kept rows.
    #[error(
        "got {found} extra values for {rows} rows and {columns} extra columns; expected {expected}",
        expected = .rows * .columns
    )]
    ExtraShape { rows: usize, columns: usize, found: usize },

    /// A line listed as kept is not a data row of the file.
    #[error(
        "{path}: line {line} is not a data row after the previous kept line; \
         the file may have changed since it was loaded, so load it again",
        path = .path.display()
    )]
    RowNotFound { path: PathBuf, line: u64 },

    /// Writing the output failed.
    #[error("failed to write the CSV output: {source}")]
    Write { source: io::Error },
}

fn describe_column(position: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{position} '{name}'"),
        None => position.to_string(),
    }
}

fn describe_suggestion(suggestion: Option<&str>) -> String {
    match suggestion {
        Some(name) => format!("Did you mean '{name}'? "),
        None => String::new(),
    }
}

fn describe_cell(text: &str) -> String {
    if text.is_empty() {
        "(empty cell)".to_string()
    } else {
        format!("'{text}'")
    }
}

/// Formats a byte as a quoted character, or as a hex escape if it is not printable ASCII.
fn describe_byte(byte: u8) -> String {
    match byte {
        b'\t' => "'\\t' (tab)".to_string(),
        b' ' => "' ' (space)".to_string(),
        0x21..=0x7E => format!("'{}'", byte as char),
        _ => format!("0x{byte:02X}"),
    }
}

/// Escapes tabs and other control characters and shortens long headers.
fn describe_header(header: &str) -> String {
    let mut shown: String = header.chars().take(SHOWN_HEADER_MAX).collect();
    if shown.len() < header.len() {
        shown.push_str("...");
    }
    shown.escape_debug().to_string()
}

fn quote_names(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
    quoted.join(", ")
}

fn list_columns(names: &[String]) -> String {
    let mut listed = quote_names(&names[..names.len().min(LISTED_COLUMNS_MAX)]);
    if names.len() > LISTED_COLUMNS_MAX {
        listed.push_str(&format!(" and {} more", names.len() - LISTED_COLUMNS_MAX));
    }
    listed
}

/// Returns the English name of a delimiter byte, used as in "semicolon-separated".
pub(crate) fn delimiter_name(byte: u8) -> String {
    match byte {
        b',' => "comma".to_string(),
        b';' => "semicolon".to_string(),
        b'\t' => "tab".to_string(),
        b'|' => "pipe".to_string(),
        b' ' => "space".to_string(),
        _ => describe_byte(byte),
    }
}

/// Returns the `--delimiter` argument that selects `byte`, in a form a shell accepts.
pub(crate) fn delimiter_flag(byte: u8) -> String {
    match byte {
        b',' => "comma".to_string(),
        b'\t' => "tab".to_string(),
        b' ' => "space".to_string(),
        _ => format!("'{}'", byte as char),
    }
}

fn without_thousands_separators(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, ',' | ' ' | '\'' | '_')).collect()
}

/// Rewrites "1.234,5" as "1234.5": dots are thousands separators and the comma is the decimal mark.
fn with_decimal_point(text: &str) -> String {
    text.chars()
        .filter(|&c| c != '.')
        .map(|c| if c == ',' { '.' } else { c })
        .collect()
}
