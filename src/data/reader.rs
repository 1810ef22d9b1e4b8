//! Record reader shared by loading and writing: opens the file, handles byte order marks
//! and reports the line number of each record.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use csv::ByteRecord;

use super::DataError;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Number of already counted bytes that [`LineTracker`] keeps before it compacts its buffer.
const COMPACT_THRESHOLD: usize = 64 * 1024;

/// Reader adapter that keeps a copy of the bytes the CSV parser has read and counts the
/// line breaks in them up to a given offset.
///
/// The csv crate's own `Position::line` (csv 1.4) is not usable for error messages. It
/// counts only `\n`, so CR-only files stay on line 1. It is also taken before blank lines
/// are skipped, and CRLF files report the previous line because the `\n` is consumed with
/// the next record.
struct LineTracker<R> {
    inner: R,
    /// Bytes read from `inner` from offset `buffer_start` on, offsets counted from the
    /// first byte that the CSV parser receives.
    buffer: Vec<u8>,
    buffer_start: u64,
    /// Offset up to which line breaks are counted.
    counted_end: u64,
    /// Line breaks before `counted_end`: each `\r\n`, lone `\r` and lone `\n` counts once.
    line_breaks: u64,
    previous_was_cr: bool,
}

impl<R: Read> LineTracker<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            buffer: Vec::new(),
            buffer_start: 0,
            counted_end: 0,
            line_breaks: 0,
            previous_was_cr: false,
        }
    }

    fn count_byte(&mut self, byte: u8) {
        if byte == b'\r' || (byte == b'\n' && !self.previous_was_cr) {
            self.line_breaks += 1;
        }
        self.previous_was_cr = byte == b'\r';
    }

    /// Returns the 1-based line of the record that the parser read from bytes `start..end`.
    ///
    /// The parser skips line breaks before a record (blank lines, and the `\n` of a CRLF
    /// that ended the previous record), so the record starts at the first other byte.
    fn record_line(&mut self, start: u64, end: u64) -> u64 {
        let local = |offset: u64, buffer_start: u64| (offset - buffer_start) as usize;
        let from = local(self.counted_end, self.buffer_start);
        let to = local(start, self.buffer_start);
        for index in from..to {
            self.count_byte(self.buffer[index]);
        }
        let mut offset = start;
        while offset < end {
            let byte = self.buffer[local(offset, self.buffer_start)];
            if byte != b'\r' && byte != b'\n' {
                break;
            }
            self.count_byte(byte);
            offset += 1;
        }
        self.counted_end = offset;

        let counted = local(offset, self.buffer_start);
        if counted >= COMPACT_THRESHOLD {
            self.buffer.drain(..counted);
            self.buffer_start = offset;
        }
        self.line_breaks + 1
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buf)?;
        self.buffer.extend_from_slice(&buf[..count]);
        Ok(count)
    }
}

/// Returns whether a record is a line of only whitespace, which the loader skips like an
/// empty line.
fn is_blank(record: &ByteRecord) -> bool {
    record.len() == 1 && record[0].trim_ascii().is_empty()
}

/// Source of [`RecordReader`]: the bytes read for the byte order mark check, then the rest
/// of the file.
type Source = io::Chain<Cursor<Vec<u8>>, File>;

/// CSV record reader over one file that skips blank lines and returns the line of each record.
pub(super) struct RecordReader {
    path: PathBuf,
    csv: csv::Reader<LineTracker<Source>>,
    file_len: u64,
}

impl RecordReader {
    /// Opens `path`, rejects UTF-16 byte order marks and skips a UTF-8 one.
    pub(super) fn open(path: &Path, delimiter: u8) -> Result<Self, DataError> {
        let io_error = |source: io::Error| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(DataError::NotFound {
                    path: path.to_path_buf(),
                });
            }
            Err(error) => return Err(io_error(error)),
        };
        if metadata.is_dir() {
            return Err(DataError::IsDirectory {
                path: path.to_path_buf(),
            });
        }
        let mut file = File::open(path).map_err(io_error)?;

        let mut start = Vec::with_capacity(UTF8_BOM.len());
        (&mut file)
            .take(UTF8_BOM.len() as u64)
            .read_to_end(&mut start)
            .map_err(io_error)?;
        let evidence = match start.get(..2) {
            Some(b"\xFF\xFE") => Some("it starts with a UTF-16 little-endian byte order mark"),
            Some(b"\xFE\xFF") => Some("it starts with a UTF-16 big-endian byte order mark"),
            _ => None,
        };
        if let Some(evidence) = evidence {
            return Err(DataError::Utf16 {
                path: path.to_path_buf(),
                evidence,
            });
        }
        if start == UTF8_BOM {
            start.clear();
        }

        let csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(LineTracker::new(Cursor::new(start).chain(file)));
        Ok(Self {
            path: path.to_path_buf(),
            csv,
            file_len: metadata.len(),
        })
    }

    /// Reads the next record that is not blank into `record` and returns its 1-based line,
    /// or `None` at the end of the file.
    pub(super) fn next_record(&mut self, record: &mut ByteRecord) -> Result<Option<u64>, DataError> {
        loop {
            let start = self.csv.position().byte();
            let found = self.csv.read_byte_record(record).map_err(|error| {
                let source = match error.into_kind() {
                    csv::ErrorKind::Io(source) => source,
                    other => io::Error::other(format!("CSV parser error: {other:?}")),
                };
                DataError::Io {
                    path: self.path.clone(),
                    source,
                }
            })?;
            if !found {
                return Ok(None);
            }
            let end = self.csv.position().byte();
            let line = self.csv.get_mut().record_line(start, end);
            if !is_blank(record) {
                return Ok(Some(line));
            }
        }
    }

    /// Size of the file in bytes when it was opened.
    pub(super) fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Number of bytes the parser has consumed, not counting a UTF-8 byte order mark.
    pub(super) fn bytes_consumed(&self) -> u64 {
        self.csv.position().byte()
    }
}
