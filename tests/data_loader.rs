//! Integration tests of the CSV loader and writer in `shadertrain::data`.
//!
//! Each test writes its input to a fresh temporary directory, so the tests can run in parallel.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use shadertrain::data::{
    ColumnRole, ColumnSelection, CsvOptions, DataError, Dataset, load_csv, parse_delimiter, write_with_columns,
};
use tempfile::TempDir;

/// Temporary CSV file that is deleted with its directory when dropped.
struct CsvFile {
    _dir: TempDir,
    path: PathBuf,
}

fn csv_file(contents: impl AsRef<[u8]>) -> CsvFile {
    let dir = tempfile::tempdir().expect("create temporary directory");
    let path = dir.path().join("input.csv");
    std::fs::write(&path, contents).expect("write temporary CSV file");
    CsvFile { _dir: dir, path }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| name.to_string()).collect()
}

fn load_with(path: &Path, features: &[&str], targets: &[&str], options: CsvOptions) -> Result<Dataset, DataError> {
    let features = names(features);
    let targets = names(targets);
    let columns = ColumnSelection {
        features: &features,
        targets: &targets,
        targets_required: true,
    };
    load_csv(path, &columns, &options)
}

fn load(path: &Path, features: &[&str], targets: &[&str]) -> Result<Dataset, DataError> {
    load_with(path, features, targets, CsvOptions::default())
}

fn semicolon() -> CsvOptions {
    CsvOptions {
        delimiter: b';',
        ..CsvOptions::default()
    }
}

fn drop_missing() -> CsvOptions {
    CsvOptions {
        drop_missing: true,
        ..CsvOptions::default()
    }
}

/// Loads `contents` with features `a`, `b` and target `y`, expecting an error.
fn load_error(contents: &str) -> (CsvFile, DataError) {
    let file = csv_file(contents);
    let error = load(&file.path, &["a", "b"], &["y"]).expect_err("load should fail");
    (file, error)
}

/// Asserts that `message` contains each of `parts`, showing the message on failure.
fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} not in message: {message}");
    }
}

fn path_text(file: &CsvFile) -> String {
    file.path.display().to_string()
}

// Files that parse.

#[test]
fn simple_file_values_and_lines() {
    let file = csv_file("a,b,y\n1,2,3\n4.5,-6,7e1\n");
    let data = load(&file.path, &["a", "b"], &["y"]).unwrap();

    assert_eq!(data.path, file.path);
    assert_eq!(data.feature_names, names(&["a", "b"]));
    assert_eq!(data.target_names, names(&["y"]));
    assert_eq!(data.rows, 2);
    assert_eq!(data.inputs(), 2);
    assert_eq!(data.outputs(), 1);
    assert_eq!(data.features, vec![1.0, 2.0, 4.5, -6.0]);
    assert_eq!(data.targets, vec![3.0, 70.0]);
    assert_eq!(data.feature_row(1), &[4.5, -6.0]);
    assert_eq!(data.target_row(0), &[3.0]);
    assert_eq!(data.dropped_rows, 0);
    assert_eq!(data.lines, vec![2, 3]);
}

#[test]
fn features_in_requested_order() {
    let file = csv_file("c,y,b,a\n1,2,3,4\n");
    let data = load(&file.path, &["a", "c"], &["y"]).unwrap();
    assert_eq!(data.features, vec![4.0, 1.0]);
    assert_eq!(data.targets, vec![2.0]);
}

#[test]
fn several_targets() {
    let file = csv_file("a,y1,y2\n1,2,3\n4,5,6\n");
    let data = load(&file.path, &["a"], &["y2", "y1"]).unwrap();
    assert_eq!(data.outputs(), 2);
    assert_eq!(data.target_row(1), &[6.0, 5.0]);
}

#[test]
fn utf8_bom_before_header() {
    let file = csv_file("\u{FEFF}a,b,y\n1,2,3\n");
    let data = load(&file.path, &["a", "b"], &["y"]).unwrap();
    assert_eq!(data.features, vec![1.0, 2.0]);
    assert_eq!(data.lines, vec![2]);
}

#[test]
fn crlf_line_endings() {
    let file = csv_file("a,b,y\r\n1,2,3\r\n4,5,6\r\n");
    let data = load(&file.path, &["a", "b"], &["y"]).unwrap();
    assert_eq!(data.features, vec![1.0, 2.0, 4.0, 5.0]);
    assert_eq!(data.targets, vec![3.0, 6.0]);
    assert_eq!(data.lines, vec![2, 3]);
}

#[test]
fn cr_only_line_endings() {
    let file = csv_file("a,b,y\r1,2,3\r\r4,5,6\r");
    let data = load(&file.path, &["a", "b"], &["y"]).unwrap();
    assert_eq!(data.targets, vec![3.0, 6.0]);
    assert_eq!(data.lines, vec![2, 4]);
}

#[test]
fn trailing_blank_line() {
    let file = csv_file("a,b,y\n1,2,3\n\n");
    let data = load(&file.path, &["a", "b"], &["y"]).unwrap();
    assert_eq!(data.rows, 1);
    assert_eq!(data.lines, vec![2]);
}

#[test]
fn blank_lines_keep_line_numbers() {
    let file = csv_file("\n\na,b,y\n1,2,3\n\n   \r\n4,5,6\n\n \n");
    let data = load(&file.path, &["a", "b"], &["y"]).unwrap();
    assert_eq!(data.rows, 2);
    assert_eq!(data.lines, vec![4, 7]);
}

#[test]
fn quoted_multiline_cell_keeps_line_numbers() {
    let file = csv_file("a,note,b,y\n1,\"two\nlines\",2,3\r\n4,\"x\r\ny\",5,6\n7,plain,8,9\n");
    let data = load(&file.path, &["a", "b"], &["y"]).unwrap();
    assert_eq!(data.lines, vec![2, 4, 6]);
    assert_eq!(data.targets, vec![3.0, 6.0, 9.0]);
}

#[test]
fn quoted_numbers() {
    let file = csv_file("\"a\",\"b\",\"y\"\n\"1.5\",\" 2 \",\"-3\"\n");
    let data = load(&file.path, &["a", "b"], &["y"]).unwrap();
    assert_eq!(data.features, vec![1.5, 2.0]);
    assert_eq!(data.targets, vec![-3.0]);
}

#[test]
fn spaces_around_cells_and_names() {
    let file = csv_file("  a , b\t,y  \n 1 ,\t2 ,  3\n");
    let data = load(&file.path, &["a", "b"], &["y"]).unwrap();
    assert_eq!(data.feature_names, names(&["a", "b"]));
    assert_eq!(data.features, vec![1.0, 2.0]);
    assert_eq!(data.targets, vec![3.0]);
}

#[test]
fn scientific_notation() {
    let file = csv_file("a,b,y\n1e3,-2.5E-2,+4e+0\n.5,5.,1E38\n");
    let data = load(&file.path, &["a", "b"], &["y"]).unwrap();
    assert_eq!(data.features, vec![1000.0, -0.025, 0.5, 5.0]);
    assert_eq!(data.targets, vec![4.0, 1e38]);
}

#[test]
fn semicolon_delimiter() {
    let file = csv_file("a;b;y\n1.5;2;3\n");
    let data = load_with(&file.path, &["a", "b"], &["y"], semicolon()).unwrap();
    assert_eq!(data.features, vec![1.5, 2.0]);
    assert_eq!(data.targets, vec![3.0]);
}

#[test]
fn tab_delimiter() {
    let file = csv_file("a\tb\ty\n1.5\t2\t3\n");
    let options = CsvOptions {
        delimiter: b'\t',
        ..CsvOptions::default()
    };
    let data = load_with(&file.path, &["a", "b"], &["y"], options).unwrap();
    assert_eq!(data.features, vec![1.5, 2.0]);
    assert_eq!(data.targets, vec![3.0]);
}

#[test]
fn number_rounds_through_f64() {
    // Just above the midpoint between 1.0 and the next f32, but within half an f64 ulp of it:
    // f64 parsing gives the midpoint exactly, which rounds to even (1.0), while direct f32
    // parsing rounds up.
    let text = "1.00000005960464477539062501";
    assert_ne!(text.parse::<f32>().unwrap(), 1.0);
    let file = csv_file(format!("a,y\n{text},0\n"));
    let data = load(&file.path, &["a"], &["y"]).unwrap();
    assert_eq!(data.features, vec![1.0]);
}

#[test]
fn optional_targets_absent() {
    let file = csv_file("a,b\n1,2\n");
    let features = names(&["a", "b"]);
    let targets = names(&["y"]);
    let columns = ColumnSelection {
        features: &features,
        targets: &targets,
        targets_required: false,
    };
    let data = load_csv(&file.path, &columns, &CsvOptions::default()).unwrap();
    assert!(data.target_names.is_empty());
    assert!(data.targets.is_empty());
    assert_eq!(data.outputs(), 0);
    assert_eq!(data.target_row(0), &[] as &[f32]);
    assert_eq!(data.features, vec![1.0, 2.0]);
}

#[test]
fn optional_targets_present() {
    let file = csv_file("a,y\n1,2\n");
    let features = names(&["a"]);
    let targets = names(&["y"]);
    let columns = ColumnSelection {
        features: &features,
        targets: &targets,
        targets_required: false,
    };
    let data = load_csv(&file.path, &columns, &CsvOptions::default()).unwrap();
    assert_eq!(data.target_names, names(&["y"]));
    assert_eq!(data.targets, vec![2.0]);
}

#[test]
fn unrequested_duplicate_names_allowed() {
    let file = csv_file("a,x,x,y\n1,2,3,4\n");
    let data = load(&file.path, &["a"], &["y"]).unwrap();
    assert_eq!(data.features, vec![1.0]);
    assert_eq!(data.targets, vec![4.0]);
}

#[test]
fn unrequested_columns_may_hold_text() {
    let file = csv_file("id,a,name,y\n7,1,alice,2\n8,3,,4\n");
    let data = load(&file.path, &["a"], &["y"]).unwrap();
    assert_eq!(data.features, vec![1.0, 3.0]);
}

#[test]
fn diabetes_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/diabetes.csv");
    let features = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"];
    let data = load(&path, &features, &["target"]).unwrap();
    assert_eq!(data.rows, 442);
    assert_eq!(data.inputs(), 10);
    assert_eq!(data.target_row(0), &[151.0]);
    assert_eq!(data.feature_row(0)[0], 0.038075906433423026_f64 as f32);
    assert_eq!(data.lines[441], 443);
}

// Missing values and drop_missing.

#[test]
fn missing_value_markers_rejected() {
    for marker in ["", "NA", "N/A", "NaN", "nan", "null", "None"] {
        let (file, error) = load_error(&format!("a,b,y\n1,2,3\n4,{marker},6\n"));
        assert!(matches!(error, DataError::MissingValue { .. }), "{marker:?}: {error:?}");
        let message = error.to_string();
        let expected_text = if marker.is_empty() {
            "(empty cell)".to_string()
        } else {
            format!("'{marker}'")
        };
        assert_mentions(
            &message,
            &[&path_text(&file), "line 3", "'b'", &expected_text, "--drop-missing"],
        );
    }
}

#[test]
fn drop_missing_skips_and_counts_rows() {
    let file = csv_file("a,b,y\n1,2,3\nNA,5,6\n7,8,\n9,10,11\n");
    let data = load_with(&file.path, &["a", "b"], &["y"], drop_missing()).unwrap();
    assert_eq!(data.rows, 2);
    assert_eq!(data.dropped_rows, 2);
    assert_eq!(data.features, vec![1.0, 2.0, 9.0, 10.0]);
    assert_eq!(data.targets, vec![3.0, 11.0]);
    assert_eq!(data.lines, vec![2, 5]);
}

#[test]
fn drop_missing_ignores_unrequested_columns() {
    let file = csv_file("a,note,y\n1,NA,2\n");
    let data = load_with(&file.path, &["a"], &["y"], drop_missing()).unwrap();
    assert_eq!(data.rows, 1);
    assert_eq!(data.dropped_rows, 0);
}

#[test]
fn drop_missing_keeps_invalid_text_an_error() {
    let file = csv_file("a,b,y\nNA,abc,3\n");
    let error = load_with(&file.path, &["a", "b"], &["y"], drop_missing()).unwrap_err();
    assert!(matches!(error, DataError::InvalidNumber { .. }), "{error:?}");
}

#[test]
fn all_rows_dropped_error() {
    let file = csv_file("a,b,y\nNA,2,3\n4,,6\n");
    let error = load_with(&file.path, &["a", "b"], &["y"], drop_missing()).unwrap_err();
    assert!(
        matches!(error, DataError::AllRowsDropped { dropped: 2, .. }),
        "{error:?}"
    );
    assert_mentions(
        &error.to_string(),
        &[&path_text(&file), "dropped all 2 data rows", "no rows remain"],
    );
}

// Values that are not finite numbers.

#[test]
fn non_finite_values_rejected() {
    for text in ["inf", "-inf", "Infinity", "1e39", "-1e39"] {
        let (file, error) = load_error(&format!("a,b,y\n1,{text},3\n"));
        assert!(matches!(error, DataError::NonFinite { .. }), "{text}: {error:?}");
        assert_mentions(
            &error.to_string(),
            &[&path_text(&file), "line 2", "'b'", &format!("'{text}'"), "finite"],
        );
    }
}

#[test]
fn non_finite_not_dropped_by_drop_missing() {
    let file = csv_file("a,b,y\n1,inf,3\n4,5,6\n");
    let error = load_with(&file.path, &["a", "b"], &["y"], drop_missing()).unwrap_err();
    assert!(matches!(error, DataError::NonFinite { line: 2, .. }), "{error:?}");
}

#[test]
fn text_cell_is_invalid_number() {
    let (file, error) = load_error("a,b,y\n1,2,3\n4,abc,6\n");
    assert!(matches!(error, DataError::InvalidNumber { line: 3, .. }), "{error:?}");
    assert_mentions(
        &error.to_string(),
        &[&path_text(&file), "line 3", "'b'", "'abc'", "not a number"],
    );
}

#[test]
fn thousands_separator_hint() {
    let (file, error) = load_error("a,b,y\n\"1,234\",2,3\n");
    assert!(matches!(error, DataError::ThousandsSeparator { .. }), "{error:?}");
    assert_mentions(
        &error.to_string(),
        &[
            &path_text(&file),
            "line 2",
            "'a'",
            "'1,234'",
            "thousands separators",
            "1234",
        ],
    );
}

#[test]
fn decimal_comma_hint() {
    let file = csv_file("a;b;y\n1,5;2;3\n");
    let error = load_with(&file.path, &["a", "b"], &["y"], semicolon()).unwrap_err();
    assert!(matches!(error, DataError::DecimalComma { .. }), "{error:?}");
    assert_mentions(
        &error.to_string(),
        &[&path_text(&file), "line 2", "'a'", "'1,5'", "decimal comma", "1.5"],
    );
}

// Files and encodings.

#[test]
fn missing_path_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.csv");
    let error = load(&path, &["a"], &["y"]).unwrap_err();
    assert!(matches!(error, DataError::NotFound { .. }), "{error:?}");
    assert_mentions(&error.to_string(), &[&path.display().to_string(), "not found"]);
}

#[test]
fn directory_path_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let error = load(dir.path(), &["a"], &["y"]).unwrap_err();
    assert!(matches!(error, DataError::IsDirectory { .. }), "{error:?}");
    assert_mentions(
        &error.to_string(),
        &[&dir.path().display().to_string(), "is a directory"],
    );
}

#[test]
fn path_under_file_is_io_error() {
    let file = csv_file("a,y\n1,2\n");
    let path = file.path.join("child.csv");
    let error = load(&path, &["a"], &["y"]).unwrap_err();
    assert!(matches!(error, DataError::Io { .. }), "{error:?}");
    assert_mentions(&error.to_string(), &["failed to read", &path.display().to_string()]);
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_io_error() {
    use std::os::unix::fs::PermissionsExt;

    let file = csv_file("a,y\n1,2\n");
    std::fs::set_permissions(&file.path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&file.path).is_ok() {
        // Root and some sandboxes ignore file permissions, so there is nothing to test.
        eprintln!("skipped: the file is readable despite mode 000");
        return;
    }
    let error = load(&file.path, &["a"], &["y"]).unwrap_err();
    assert!(matches!(error, DataError::Io { .. }), "{error:?}");
    assert_mentions(
        &error.to_string(),
        &["failed to read", &path_text(&file), "ermission denied"],
    );
}

#[test]
fn zero_byte_file_is_empty() {
    let (file, error) = load_error("");
    assert!(matches!(error, DataError::Empty { .. }), "{error:?}");
    assert_mentions(&error.to_string(), &[&path_text(&file), "is empty"]);
}

#[test]
fn whitespace_file_is_empty() {
    let (file, error) = load_error(" \n\t\n\r\n  \n");
    assert!(matches!(error, DataError::Empty { .. }), "{error:?}");
    assert_mentions(&error.to_string(), &[&path_text(&file), "is empty"]);
}

#[test]
fn header_only_file_has_no_rows() {
    for contents in ["a,b,y", "a,b,y\n", "a,b,y\r\n\r\n  \n"] {
        let (file, error) = load_error(contents);
        assert!(matches!(error, DataError::NoRows { .. }), "{contents:?}: {error:?}");
        assert_mentions(&error.to_string(), &[&path_text(&file), "no data rows"]);
    }
}

#[test]
fn latin1_byte_not_utf8() {
    let file = csv_file(b"a,city,b,y\n1,Z\xFCrich,2,3\n");
    let error = load(&file.path, &["a", "b"], &["y"]).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::NotUtf8 {
                line: 2,
                column_position: 2,
                ..
            }
        ),
        "{error:?}"
    );
    assert_mentions(
        &error.to_string(),
        &[
            &path_text(&file),
            "line 2",
            "not valid UTF-8",
            "0xFC",
            "'city'",
            "save the file as UTF-8",
        ],
    );
}

#[test]
fn utf8_character_split_by_delimiter() {
    // Each field is invalid alone, although the two fields together are the bytes of 'é'.
    let file = csv_file(b"a,b,y\n\xC3,\xA9,1\n");
    let error = load(&file.path, &["a", "b"], &["y"]).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::NotUtf8 {
                line: 2,
                column_position: 1,
                byte: 0xC3,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn invalid_utf8_in_header() {
    let file = csv_file(b"a,\xE9,y\n1,2,3\n");
    let error = load(&file.path, &["a"], &["y"]).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::NotUtf8 {
                line: 1,
                column: None,
                ..
            }
        ),
        "{error:?}"
    );
    assert_mentions(&error.to_string(), &["line 1", "column 2"]);
}

fn utf16_le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[test]
fn utf16_le_bom_rejected() {
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(utf16_le("a,b,y\n1,2,3\n"));
    let file = csv_file(bytes);
    let error = load(&file.path, &["a", "b"], &["y"]).unwrap_err();
    assert!(matches!(error, DataError::Utf16 { .. }), "{error:?}");
    assert_mentions(
        &error.to_string(),
        &[&path_text(&file), "UTF-16", "little-endian", "convert it to UTF-8"],
    );
}

#[test]
fn utf16_be_bom_rejected() {
    let mut bytes = vec![0xFE, 0xFF];
    bytes.extend("a,y\n1,2\n".encode_utf16().flat_map(u16::to_be_bytes));
    let file = csv_file(bytes);
    let error = load(&file.path, &["a"], &["y"]).unwrap_err();
    assert!(matches!(error, DataError::Utf16 { .. }), "{error:?}");
    assert_mentions(&error.to_string(), &["big-endian", "convert it to UTF-8"]);
}

#[test]
fn utf16_without_bom_rejected() {
    let file = csv_file(utf16_le("a,b,y\n1,2,3\n"));
    let error = load(&file.path, &["a", "b"], &["y"]).unwrap_err();
    assert!(matches!(error, DataError::Utf16 { .. }), "{error:?}");
    assert_mentions(&error.to_string(), &["UTF-16", "NUL bytes", "convert it to UTF-8"]);
}

// Header and column selection.

#[test]
fn missing_column_lists_header() {
    let (file, error) = load_error("a,y,zeta\n1,2,3\n");
    assert!(
        matches!(
            &error,
            DataError::MissingColumn {
                role: ColumnRole::Feature,
                suggestion: None,
                ..
            }
        ),
        "{error:?}"
    );
    assert_mentions(
        &error.to_string(),
        &[
            &path_text(&file),
            "feature column 'b' not found",
            "3 columns: 'a', 'y', 'zeta'",
        ],
    );
}

#[test]
fn missing_column_suggests_other_case() {
    let file = csv_file("age,BMI,y\n1,2,3\n");
    let error = load(&file.path, &["age", "bmi"], &["y"]).unwrap_err();
    assert_mentions(&error.to_string(), &["'bmi' not found", "Did you mean 'BMI'?"]);
}

#[test]
fn missing_column_suggests_close_name() {
    let file = csv_file("age,bmi,target\n1,2,3\n");
    let error = load(&file.path, &["age", "bmii"], &["traget"]).unwrap_err();
    assert_mentions(&error.to_string(), &["'bmii' not found", "Did you mean 'bmi'?"]);

    let error = load(&file.path, &["age", "bmi"], &["traget"]).unwrap_err();
    assert!(
        matches!(
            &error,
            DataError::MissingColumn {
                role: ColumnRole::Target,
                ..
            }
        ),
        "{error:?}"
    );
    assert_mentions(
        &error.to_string(),
        &["target column 'traget' not found", "Did you mean 'target'?"],
    );
}

#[test]
fn missing_column_list_truncated() {
    let header: Vec<String> = (0..100).map(|i| format!("c{i}")).collect();
    let row = vec!["1"; 100].join(",");
    let file = csv_file(format!("{}\n{row}\n", header.join(",")));
    let error = load(&file.path, &["nothing_like_it"], &[]).unwrap_err();
    assert_mentions(&error.to_string(), &["100 columns", "'c39' and 60 more"]);
}

#[test]
fn partial_targets_rejected() {
    let file = csv_file("a,y1\n1,2\n");
    let features = names(&["a"]);
    let targets = names(&["y1", "y2"]);
    let columns = ColumnSelection {
        features: &features,
        targets: &targets,
        targets_required: false,
    };
    let error = load_csv(&file.path, &columns, &CsvOptions::default()).unwrap_err();
    assert!(matches!(error, DataError::PartialTargets { .. }), "{error:?}");
    assert_mentions(
        &error.to_string(),
        &[&path_text(&file), "'y1' but not 'y2'", "all target columns or none"],
    );
}

#[test]
fn requested_duplicate_header_rejected() {
    let (file, error) = load_error("a,b,c,b,y\n1,2,3,4,5\n");
    assert!(
        matches!(
            error,
            DataError::DuplicateColumn {
                first: 2,
                second: 4,
                ..
            }
        ),
        "{error:?}"
    );
    assert_mentions(&error.to_string(), &[&path_text(&file), "'b'", "positions 2 and 4"]);
}

#[test]
fn column_requested_twice_rejected() {
    let file = csv_file("a,bmi,y\n1,2,3\n");
    let error = load(&file.path, &["bmi", "a", "bmi"], &["y"]).unwrap_err();
    assert!(
        matches!(
            &error,
            DataError::ColumnRequestedTwice {
                role: ColumnRole::Feature,
                ..
            }
        ),
        "{error:?}"
    );
    assert_mentions(
        &error.to_string(),
        &["feature column 'bmi' is requested twice", &path_text(&file)],
    );

    let error = load(&file.path, &["a"], &["y", "y"]).unwrap_err();
    assert!(
        matches!(
            &error,
            DataError::ColumnRequestedTwice {
                role: ColumnRole::Target,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn target_listed_as_feature_rejected() {
    let file = csv_file("a,y\n1,2\n");
    let error = load(&file.path, &["a", "y"], &["y"]).unwrap_err();
    assert!(matches!(error, DataError::TargetIsFeature { .. }), "{error:?}");
    assert_mentions(
        &error.to_string(),
        &["'y'", "both as a feature and as a target", &path_text(&file)],
    );
}

#[test]
fn empty_feature_list_rejected() {
    let file = csv_file("a,y\n1,2\n");
    let error = load(&file.path, &[], &["y"]).unwrap_err();
    assert!(matches!(error, DataError::NoFeatures { .. }), "{error:?}");
    assert_mentions(&error.to_string(), &["no feature columns", &path_text(&file)]);
}

#[test]
fn semicolon_file_read_with_commas() {
    let (file, error) = load_error("a;b;y\n1;2;3\n");
    assert!(
        matches!(error, DataError::WrongDelimiter { found: b';', .. }),
        "{error:?}"
    );
    assert_mentions(
        &error.to_string(),
        &[&path_text(&file), "'a;b;y'", "semicolon-separated", "--delimiter ';'"],
    );
}

#[test]
fn tab_file_read_with_commas() {
    let (_file, error) = load_error("a\tb\ty\n1\t2\t3\n");
    assert!(
        matches!(error, DataError::WrongDelimiter { found: b'\t', .. }),
        "{error:?}"
    );
    assert_mentions(&error.to_string(), &["'a\\tb\\ty'", "tab-separated", "--delimiter tab"]);
}

#[test]
fn comma_file_read_with_semicolons() {
    let file = csv_file("a,b,y\n1,2,3\n");
    let error = load_with(&file.path, &["a", "b"], &["y"], semicolon()).unwrap_err();
    assert!(
        matches!(error, DataError::WrongDelimiter { found: b',', .. }),
        "{error:?}"
    );
    assert_mentions(&error.to_string(), &["comma-separated", "--delimiter comma"]);
}

#[test]
fn ragged_row_rejected() {
    for (row, found) in [("1,2", 2), ("1,2,3,4", 4)] {
        let (file, error) = load_error(&format!("a,b,y\n1,2,3\n{row}\n"));
        assert!(
            matches!(
                error,
                DataError::RaggedRow {
                    line: 3,
                    expected: 3,
                    ..
                }
            ),
            "{row}: {error:?}"
        );
        assert_mentions(
            &error.to_string(),
            &[
                &path_text(&file),
                "line 3",
                &format!("has {found} fields"),
                "header has 3",
            ],
        );
    }
}

#[test]
fn invalid_delimiter_option_rejected() {
    let file = csv_file("a,y\n1,2\n");
    let options = CsvOptions {
        delimiter: b'"',
        ..CsvOptions::default()
    };
    let error = load_with(&file.path, &["a"], &["y"], options).unwrap_err();
    assert!(matches!(error, DataError::InvalidDelimiter { .. }), "{error:?}");
}

#[test]
fn parse_delimiter_words_and_characters() {
    let cases = [
        ("comma", b','),
        ("semicolon", b';'),
        ("tab", b'\t'),
        ("\\t", b'\t'),
        ("\t", b'\t'),
        ("pipe", b'|'),
        ("space", b' '),
        (",", b','),
        (";", b';'),
        ("|", b'|'),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_delimiter(text), Ok(expected), "{text:?}");
    }
}

#[test]
fn parse_delimiter_rejects_ambiguous() {
    for text in ["", ";;", "é", "\"", "\n", "a", "7", ".", "-", "tabs"] {
        let error = parse_delimiter(text).expect_err(text);
        assert!(error.contains("invalid delimiter"), "{text:?}: {error}");
    }
}

// write_with_columns.

fn write_to_string(
    path: &Path,
    options: &CsvOptions,
    lines: &[u64],
    extra_names: &[&str],
    extra: &[f32],
) -> Result<String, DataError> {
    let mut out = Vec::new();
    write_with_columns(path, options, lines, &names(extra_names), extra, &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn write_appends_columns_to_kept_rows() {
    let file = csv_file("a,note,y\n1,x,2\nNA,y,3\n4,\"has, comma\",5\n");
    let data = load_with(&file.path, &["a"], &["y"], drop_missing()).unwrap();
    assert_eq!(data.lines, vec![2, 4]);

    let options = drop_missing();
    let text = write_to_string(&file.path, &options, &data.lines, &["pred"], &[0.5, -1.25]).unwrap();
    assert_eq!(text, "a,note,y,pred\n1,x,2,0.5\n4,\"has, comma\",5,-1.25\n");
}

#[test]
fn write_handles_bom_crlf_and_semicolons() {
    let file = csv_file("\u{FEFF}a;y\r\n1;2\r\n\r\n3;4\r\n");
    let data = load_with(&file.path, &["a"], &["y"], semicolon()).unwrap();
    let text = write_to_string(
        &file.path,
        &semicolon(),
        &data.lines,
        &["p", "q"],
        &[1.0, 2.0, 3.0, 4.0],
    )
    .unwrap();
    assert_eq!(text, "a;y;p;q\n1;2;1;2\n3;4;3;4\n");
}

#[test]
fn write_values_read_back_exactly() {
    let values = [0.1_f32, 1.0 / 3.0, f32::MAX, f32::MIN_POSITIVE, -7.0e-45];
    let file = csv_file("a\n1\n2\n3\n4\n5\n");
    let text = write_to_string(&file.path, &CsvOptions::default(), &[2, 3, 4, 5, 6], &["p"], &values).unwrap();
    let out = csv_file(text);
    let data = load(&out.path, &["p"], &[]).unwrap();
    assert_eq!(data.features, values);
}

#[test]
fn write_rejects_wrong_extra_length() {
    let file = csv_file("a\n1\n2\n");
    let error = write_to_string(&file.path, &CsvOptions::default(), &[2, 3], &["p"], &[1.0]).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::ExtraShape {
                rows: 2,
                columns: 1,
                found: 1
            }
        ),
        "{error:?}"
    );
    assert_mentions(&error.to_string(), &["got 1 extra values", "expected 2"]);
}

#[test]
fn write_rejects_line_not_in_file() {
    let file = csv_file("a\n1\n2\n");
    for lines in [[2, 9], [3, 2], [2, 2]] {
        let error = write_to_string(&file.path, &CsvOptions::default(), &lines, &["p"], &[1.0, 2.0]).unwrap_err();
        assert!(matches!(error, DataError::RowNotFound { .. }), "{lines:?}: {error:?}");
        assert_mentions(&error.to_string(), &[&path_text(&file), "changed"]);
    }
}

#[test]
fn write_rejects_missing_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.csv");
    let error = write_to_string(&path, &CsvOptions::default(), &[], &[], &[]).unwrap_err();
    assert!(matches!(error, DataError::NotFound { .. }), "{error:?}");
}

// Properties: no input panics, and finite tables read back exactly.

/// Pieces of CSV text that exercise quoting, delimiters, line endings, encodings and numbers.
fn csv_piece() -> impl Strategy<Value = Vec<u8>> {
    let pieces: Vec<&'static [u8]> = vec![
        b"a",
        b"b",
        b"y",
        b"1",
        b"-2.5e3",
        b"1e39",
        b"inf",
        b"NA",
        b"",
        b"abc",
        b"1,5",
        b"\"",
        b"\"\"",
        b",",
        b";",
        b"\t",
        b" ",
        b"\r",
        b"\n",
        b"\r\n",
        b"\xEF\xBB\xBF",
        b"\xFF\xFE",
        b"\xFE\xFF",
        b"\x00",
        b"\xC3",
        b"\xA9",
        b"\xE9",
        b"a,b,y\n",
        b"1,2,3\n",
        b"a;b;y\n",
    ];
    prop_oneof![
        4 => proptest::sample::select(pieces).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..4),
    ]
}

/// Mostly well-formed files with their options: an optional byte order mark, a header and
/// rows of cells that are mostly numbers, joined mostly by the delimiter of the options, with
/// random line endings.
fn csv_like_file() -> impl Strategy<Value = (Vec<u8>, CsvOptions)> {
    let start = prop_oneof![
        8 => Just(&b""[..]),
        2 => Just(&b"\xEF\xBB\xBF"[..]),
        1 => Just(&b"\xFF\xFE"[..]),
        1 => Just(&b"\n \n"[..]),
    ];
    let header_name = prop_oneof![
        8 => proptest::sample::select(vec!["a", "b", "y"]),
        1 => proptest::sample::select(vec!["\"a\"", " b ", "note", "A"]),
    ];
    let cell = prop_oneof![
        6 => any::<i16>().prop_map(|value| value.to_string().into_bytes()),
        3 => any::<f32>().prop_map(|value| format!("{value:e}").into_bytes()),
        1 => csv_piece(),
    ];
    let row = (
        prop_oneof![8 => Just(3usize), 1 => 1usize..6],
        proptest::collection::vec(cell, 5),
        line_end(),
    );
    (
        csv_options(),
        start,
        prop_oneof![4 => Just(vec!["a", "b", "y"]), 1 => proptest::collection::vec(header_name, 1..5)],
        line_end(),
        proptest::collection::vec(row, 0..8),
    )
        .prop_map(|(options, start, header, header_end, rows)| {
            let separator = [options.delimiter];
            let mut bytes = [start, header.join(",").as_bytes(), header_end].concat();
            if options.delimiter != b',' {
                bytes = bytes
                    .iter()
                    .map(|&byte| if byte == b',' { options.delimiter } else { byte })
                    .collect();
            }
            for (width, cells, end) in rows {
                bytes.extend(cells[..width].join(&separator[..]));
                bytes.extend_from_slice(end);
            }
            (bytes, options)
        })
}

fn line_end() -> impl Strategy<Value = &'static [u8]> {
    proptest::sample::select(vec![&b"\n"[..], b"\r\n", b"\r", b"\n\n"])
}

fn csv_options() -> impl Strategy<Value = CsvOptions> {
    (proptest::sample::select(vec![b',', b';', b'\t']), any::<bool>()).prop_map(|(delimiter, drop_missing)| {
        CsvOptions {
            delimiter,
            drop_missing,
        }
    })
}

/// Loads `bytes` with features `a`, `b` and optional target `y`. If that succeeds, writing the
/// kept rows back must succeed too.
fn load_and_write_back(bytes: &[u8], options: &CsvOptions) -> Result<(), TestCaseError> {
    let file = csv_file(bytes);
    let features = names(&["a", "b"]);
    let targets = names(&["y"]);
    let columns = ColumnSelection {
        features: &features,
        targets: &targets,
        targets_required: false,
    };
    if let Ok(data) = load_csv(&file.path, &columns, options) {
        prop_assert_eq!(data.features.len(), data.rows * 2);
        prop_assert_eq!(data.lines.len(), data.rows);
        let extra = vec![0.0; data.rows];
        let mut out = Vec::new();
        let written = write_with_columns(&file.path, options, &data.lines, &names(&["p"]), &extra, &mut out);
        prop_assert!(written.is_ok(), "write failed: {:?}", written);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        options in csv_options(),
    ) {
        load_and_write_back(&bytes, &options)?;
    }

    #[test]
    fn csv_like_files_never_panic((bytes, options) in csv_like_file()) {
        load_and_write_back(&bytes, &options)?;
    }

    #[test]
    fn csv_pieces_never_panic(
        pieces in proptest::collection::vec(csv_piece(), 0..60),
        options in csv_options(),
    ) {
        load_and_write_back(&pieces.concat(), &options)?;
    }
}

/// Finite f32 values, including subnormals, zeros of both signs and extremes.
fn finite_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>().prop_filter("finite", |value| value.is_finite()),
        proptest::sample::select(vec![0.0, -0.0, f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-45]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn finite_tables_round_trip(
        (columns, values) in (1usize..6, 1usize..20).prop_flat_map(|(columns, rows)| {
            (Just(columns), proptest::collection::vec(finite_f32(), columns * rows))
        }),
        exponent_form in any::<bool>(),
        delimiter in proptest::sample::select(vec![b',', b';', b'\t']),
    ) {
        let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
        let separator = (delimiter as char).to_string();
        let mut text = header.join(&separator);
        text.push('\n');
        for row in values.chunks(columns) {
            let cells: Vec<String> = row
                .iter()
                .map(|value| if exponent_form { format!("{value:e}") } else { value.to_string() })
                .collect();
            text.push_str(&cells.join(&separator));
            text.push('\n');
        }
        let file = csv_file(text);
        let (features, targets) = header.split_at(columns - 1);
        let (features, targets) = if features.is_empty() {
            (targets, &[][..])
        } else {
            (features, targets)
        };
        let selection = ColumnSelection { features, targets, targets_required: true };
        let options = CsvOptions { delimiter, drop_missing: false };
        let data = load_csv(&file.path, &selection, &options).unwrap();

        let width = columns;
        let mut loaded = Vec::with_capacity(values.len());
        for r in 0..data.rows {
            loaded.extend_from_slice(data.feature_row(r));
            loaded.extend_from_slice(data.target_row(r));
        }
        prop_assert_eq!(loaded.len(), values.len());
        for (index, (got, expected)) in loaded.iter().zip(&values).enumerate() {
            prop_assert_eq!(
                got.to_bits(),
                expected.to_bits(),
                "row {} column {}: {} != {}",
                index / width,
                index % width,
                got,
                expected
            );
        }
    }
}
