//! Data tables of the fitting commands (cohorts, adoptions, observed daily series):
//! a CSV file with a header, read into cells that keep their line and column so that
//! every complaint names the file, the line and the column.

use std::path::Path;

use super::DataError;
use crate::csv_lines::LineCounter;

/// Largest data file read (64 MiB): a calibration table of a few years of days is
/// a few hundred kilobytes.
pub const MAX_DATA_BYTES: u64 = 64 << 20;

/// A CSV table: its header and its rows, each with its 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub file: String,
    pub headers: Vec<String>,
    pub rows: Vec<Row>,
}

/// One data row: its line in the file and its cells (trimmed).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub cells: Vec<String>,
}

impl Table {
    /// Reads a CSV file with a header line. Blank lines are skipped; every row must
    /// have as many cells as the header.
    pub fn read(path: &Path) -> Result<Table, DataError> {
        let file = path.display().to_string();
        let error = |message: String| DataError {
            file: file.clone(),
            line: None,
            column: None,
            message,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| error(format!("cannot read: {e}")))?
            .len();
        if size > MAX_DATA_BYTES {
            return Err(error(format!(
                "{size} bytes; expected a data table of at most {MAX_DATA_BYTES} bytes"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| error(format!("cannot read: {e}")))?;
        Table::parse(&bytes, &file)
    }

    /// Parses CSV text (see [`Table::read`]); `file` names it in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Table, DataError> {
        let at = |line: Option<u64>, message: String| DataError {
            file: file.to_string(),
            line,
            column: None,
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| at(Some(1), csv_message(&e)))?
            .iter()
            .map(str::to_string)
            .collect();
        if headers.iter().all(String::is_empty) {
            return Err(at(
                Some(1),
                "expected a header line naming the columns, found nothing".into(),
            ));
        }
        for (i, name) in headers.iter().enumerate() {
            if name.is_empty() {
                return Err(at(
                    Some(1),
                    format!("column {}: the header names no column", i + 1),
                ));
            }
            if headers[..i].contains(name) {
                return Err(at(
                    Some(1),
                    format!("column {}: {name:?} is named twice", i + 1),
                ));
            }
        }
        let mut rows = Vec::new();
        let mut lines = LineCounter::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                at(
                    e.position()
                        .map(|p| LineCounter::new().line_at(bytes, p.byte()) as u64),
                    csv_message(&e),
                )
            })?;
            let line = record
                .position()
                .map_or(0, |p| lines.line_at(bytes, p.byte()) as u64);
            if record.iter().all(str::is_empty) {
                continue;
            }
            rows.push(Row {
                line,
                cells: record.iter().map(str::to_string).collect(),
            });
        }
        Ok(Table {
            file: file.to_string(),
            headers,
            rows,
        })
    }

    /// An error at `line`, column `column` (0-based index into the header).
    pub fn error(&self, line: u64, column: usize, message: String) -> DataError {
        DataError {
            file: self.file.clone(),
            line: Some(line),
            column: Some(format!("{} ({:?})", column + 1, self.headers[column])),
            message,
        }
    }

    /// An error about the whole file or its header.
    pub fn file_error(&self, line: Option<u64>, message: String) -> DataError {
        DataError {
            file: self.file.clone(),
            line,
            column: None,
            message,
        }
    }

    /// The number in `row`'s cell `column`: `None` if the cell is empty, an error
    /// naming the cell if it is not a finite decimal or scientific number.
    pub fn number(&self, row: &Row, column: usize) -> Result<Option<f64>, DataError> {
        let cell = &row.cells[column];
        if cell.is_empty() {
            return Ok(None);
        }
        match cell.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(self.error(
                row.line,
                column,
                format!("expected a number, found {cell:?}"),
            )),
        }
    }

    /// The non-negative integer in `row`'s cell `column` (a day or a period).
    pub fn index(&self, row: &Row, column: usize, what: &str) -> Result<u64, DataError> {
        let cell = &row.cells[column];
        cell.parse::<u64>().map_err(|_| {
            self.error(
                row.line,
                column,
                format!("expected {what} (an integer >= 0), found {cell:?}"),
            )
        })
    }
}

fn csv_message(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} cells like the header, found {len}"),
        csv::ErrorKind::Utf8 { .. } => "expected UTF-8 text".to_string(),
        _ => format!("malformed CSV: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_their_lines_and_blank_lines_are_skipped() {
        let t = Table::parse(b"day, a ,b\n0,1,\n\n2, 3 ,4\n", "x.csv").unwrap();
        assert_eq!(t.headers, ["day", "a", "b"]);
        assert_eq!(t.rows[1].line, 4, "{t:?}");
        assert_eq!(t.number(&t.rows[0], 2).unwrap(), None);
        assert_eq!(t.number(&t.rows[1], 1).unwrap(), Some(3.0));
    }

    #[test]
    fn bad_cells_and_rows_are_located() {
        let t = Table::parse(b"day,a\n0,1\n1,x\n", "x.csv").unwrap();
        let e = t.number(&t.rows[1], 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.csv:3: column 2 (\"a\"): expected a number, found \"x\""
        );
        let e = t.number(
            &Row {
                line: 9,
                cells: vec!["0".into(), "inf".into()],
            },
            1,
        );
        assert!(e.is_err());
        let e = Table::parse(b"day,a\n0,1\n1,2,3\n", "x.csv").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("expected 2 cells"), "{e}");
        let e = Table::parse(b"day,a,a\n", "x.csv").unwrap_err();
        assert!(e.message.contains("named twice"), "{e}");
        let e = Table::parse(b"", "x.csv").unwrap_err();
        assert!(e.message.contains("header"), "{e}");
    }
}
