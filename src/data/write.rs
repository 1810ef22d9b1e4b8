//! Copy of a CSV file with extra columns appended, such as predictions.

use std::cmp::Ordering;
use std::io;
use std::path::Path;

use csv::ByteRecord;

use super::reader::RecordReader;
use super::{CsvOptions, DataError, validate_delimiter};

/// Streams the input file again and writes it with extra columns appended to each kept row
/// (used by `predict --output`).
///
/// `lines_kept` are the [`Dataset::lines`](super::Dataset::lines) of the rows that were kept,
/// in increasing order. Other rows, such as those dropped by `drop_missing`, are skipped. The
/// header gets `extra_names` appended. `extra` is row-major `[lines_kept.len()][extra_names.len()]`
/// and each value is written in the shortest form that reads back as the same f32.
///
/// The output uses the input's delimiter and `\n` line endings, and has no byte order mark.
/// Cells are copied as parsed, untrimmed, and quoted only where the CSV writer needs quotes,
/// so quotes around plain numbers in the input are not kept.
pub fn write_with_columns(
    input: &Path,
    options: &CsvOptions,
    lines_kept: &[u64],
    extra_names: &[String],
    extra: &[f32],
    out: &mut dyn io::Write,
) -> Result<(), DataError> {
    validate_delimiter(options.delimiter)?;
    let extra_columns = extra_names.len();
    if extra.len() != lines_kept.len() * extra_columns {
        return Err(DataError::ExtraShape {
            rows: lines_kept.len(),
            columns: extra_columns,
            found: extra.len(),
        });
    }

    let mut reader = RecordReader::open(input, options.delimiter)?;
    let mut writer = csv::WriterBuilder::new()
        .delimiter(options.delimiter)
        .flexible(true)
        .from_writer(out);
    let mut record = ByteRecord::new();
    if reader.next_record(&mut record)?.is_none() {
        return Err(DataError::Empty {
            path: input.to_path_buf(),
        });
    }
    write_row(&mut writer, &record, extra_names.iter().map(String::as_bytes))?;

    let row_not_found = |line| DataError::RowNotFound {
        path: input.to_path_buf(),
        line,
    };
    let mut next = 0;
    while next < lines_kept.len() {
        let Some(line) = reader.next_record(&mut record)? else {
            return Err(row_not_found(lines_kept[next]));
        };
        match line.cmp(&lines_kept[next]) {
            Ordering::Less => continue,
            Ordering::Greater => return Err(row_not_found(lines_kept[next])),
            Ordering::Equal => {}
        }
        let values = &extra[next * extra_columns..(next + 1) * extra_columns];
        let texts = values.iter().map(|value| value.to_string().into_bytes());
        write_row(&mut writer, &record, texts)?;
        next += 1;
    }
    writer.flush().map_err(|source| DataError::Write { source })
}

/// Writes the fields of `record` followed by `extra` as one output record.
fn write_row<W: io::Write, T: AsRef<[u8]>>(
    writer: &mut csv::Writer<W>,
    record: &ByteRecord,
    extra: impl Iterator<Item = T>,
) -> Result<(), DataError> {
    record
        .iter()
        .try_for_each(|field| writer.write_field(field))
        .and_then(|()| writer.write_record(extra))
        .map_err(|error| DataError::Write {
            source: match error.into_kind() {
                csv::ErrorKind::Io(source) => source,
                other => io::Error::other(format!("CSV writer error: {other:?}")),
            },
        })
}
