//! The schedule file of a scenario (MODEL.md v2, "Campaigns and schedules"): a CSV
//! of day (or date) × time-varying key paths, read once and embedded in the
//! scenario document as `[schedule] rows`, so the resolved scenario holds its values.

use std::path::Path;

use toml::{Table, Value};

use super::ScenarioError;
use super::calendar::{parse_date, toml_date};
use super::load::{Locations, read_bounded_file};
use crate::csv_lines::LineCounter;

/// Where the rows of an embedded schedule came from: the CSV file, the line of
/// each row and the header of each column, to name a bad cell by line and column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScheduleOrigin {
    /// The schedule file as found from the scenario file (`scenarios/data/q1.csv`).
    pub file: String,
    /// 1-based line of each row, in row order.
    pub row_lines: Vec<usize>,
    /// The header, column by column (column 1 is `day` or `date`).
    pub columns: Vec<String>,
}

impl ScheduleOrigin {
    /// An error at row `row`, in the column of `key` (or the day column).
    pub fn error(&self, row: usize, key: Option<&str>, message: String) -> ScenarioError {
        let column = key
            .and_then(|key| self.columns.iter().position(|c| c == key))
            .unwrap_or(0);
        cell_error(
            &self.file,
            self.row_lines.get(row).copied(),
            column + 1,
            &self.columns[column],
            message,
        )
    }
}

/// `file:line: column N (header): message`.
fn cell_error(
    file: &str,
    line: Option<usize>,
    column: usize,
    header: &str,
    message: String,
) -> ScenarioError {
    ScenarioError {
        file: file.to_string(),
        key_path: format!("column {column} ({header})"),
        line,
        message,
    }
}

/// Replaces `[schedule] file = "..."` in `document` by the file's rows
/// (`[schedule] source = "...", rows = [...]`), the file found relative to the
/// scenario file `scenario_file`. Returns where the rows came from; `None` when the
/// document has no schedule file to read (no `[schedule]`, or rows already given;
/// anything malformed is left to validation).
pub(super) fn embed_schedule_file(
    document: &mut Table,
    scenario_file: &str,
    locations: &Locations,
) -> Result<Option<ScheduleOrigin>, ScenarioError> {
    let Some(schedule) = document.get_mut("schedule").and_then(Value::as_table_mut) else {
        return Ok(None);
    };
    if schedule.contains_key("rows") {
        return Ok(None);
    }
    let Some(named) = schedule
        .get("file")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Ok(None);
    };
    let path = Path::new(scenario_file)
        .parent()
        .unwrap_or(Path::new(""))
        .join(&named);
    let shown = path.display().to_string();
    let bytes =
        read_bounded_file(&path, "schedule file (CSV)").map_err(|message| ScenarioError {
            file: scenario_file.to_string(),
            key_path: "schedule.file".to_string(),
            line: locations.line("schedule.file"),
            message: format!("{shown}: {message}"),
        })?;
    let (rows, origin) = read_schedule_csv(&bytes, &shown)?;
    schedule.remove("file");
    schedule.insert("source".to_string(), Value::String(named));
    schedule.insert("rows".to_string(), Value::Array(rows));
    Ok(Some(origin))
}

/// Parses a schedule CSV: a header `day` or `date`, then key paths; each row a day
/// and its cells (numbers, or `true`/`false`), an empty cell setting nothing, blank
/// lines skipped. Returns the rows as TOML tables (`{ day = 3, "key" = 1.5 }`).
/// Key paths, types, ranges and days are checked later, with the scenario.
pub(crate) fn read_schedule_csv(
    bytes: &[u8],
    file: &str,
) -> Result<(Vec<Value>, ScheduleOrigin), ScenarioError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let whole_file = |line: Option<usize>, message: String| ScenarioError {
        file: file.to_string(),
        key_path: String::new(),
        line,
        message,
    };
    let mut lines = LineCounter::new();
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    let mut row_lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| {
            let line = error
                .position()
                .map(|p| LineCounter::new().line_at(bytes, p.byte()));
            whole_file(line, format!("not a readable CSV file: {error}"))
        })?;
        // The reader's own line count leaves out blank lines: count them here.
        let line = record
            .position()
            .map_or(0, |p| lines.line_at(bytes, p.byte()));
        if record.iter().all(str::is_empty) {
            continue;
        }
        let Some(columns) = &header else {
            header = Some(read_header(&record, file, line)?);
            continue;
        };
        if record.len() != columns.len() {
            return Err(whole_file(
                Some(line),
                format!(
                    "{} cells; expected {} (one per column of the header: {})",
                    record.len(),
                    columns.len(),
                    columns.join(",")
                ),
            ));
        }
        let cell = |column: usize, message: String| {
            cell_error(file, Some(line), column + 1, &columns[column], message)
        };
        let mut row = Table::new();
        let day_text = &record[0];
        let day = match columns[0].as_str() {
            "date" => parse_date(day_text).map(toml_date).ok_or_else(|| {
                cell(0, format!("expected a date YYYY-MM-DD, found {day_text:?}"))
            })?,
            _ => day_text.parse::<i64>().map(Value::Integer).map_err(|_| {
                cell(
                    0,
                    format!("expected a day number (an integer), found {day_text:?}"),
                )
            })?,
        };
        row.insert(columns[0].clone(), day);
        for (column, text) in record.iter().enumerate().skip(1) {
            if text.is_empty() {
                continue;
            }
            let value = match text {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                _ => match text.parse::<f64>() {
                    Ok(x) if x.is_finite() && !text.starts_with(['i', 'I', 'n', 'N', '+']) => {
                        Value::Float(x)
                    }
                    _ => {
                        return Err(cell(
                            column,
                            format!(
                                "expected a decimal or scientific number (or true/false \
                                 for an available column), found {text:?}"
                            ),
                        ));
                    }
                },
            };
            row.insert(columns[column].clone(), value);
        }
        rows.push(Value::Table(row));
        row_lines.push(line);
    }
    let Some(columns) = header else {
        return Err(whole_file(
            None,
            "the schedule file is empty; expected a header: day (or date), then key paths"
                .to_string(),
        ));
    };
    Ok((
        rows,
        ScheduleOrigin {
            file: file.to_string(),
            row_lines,
            columns,
        },
    ))
}

/// The header: `day` or `date`, then distinct, non-empty key paths.
fn read_header(
    record: &csv::StringRecord,
    file: &str,
    line: usize,
) -> Result<Vec<String>, ScenarioError> {
    let columns: Vec<String> = record.iter().map(str::to_string).collect();
    let error = |column: usize, message: String| {
        cell_error(file, Some(line), column + 1, &columns[column], message)
    };
    if !matches!(columns[0].as_str(), "day" | "date") {
        return Err(error(
            0,
            format!("the first column is {:?}; expected day or date", columns[0]),
        ));
    }
    if columns.len() < 2 {
        return Err(error(
            0,
            "no key columns; expected day (or date), then time-varying key paths".to_string(),
        ));
    }
    for (column, key) in columns.iter().enumerate().skip(1) {
        if key.is_empty() {
            return Err(error(
                column,
                "an empty column name; expected a key path".to_string(),
            ));
        }
        if matches!(key.as_str(), "day" | "date") {
            return Err(error(
                column,
                "a second day or date column; expected one, first".to_string(),
            ));
        }
        if let Some(first) = columns[1..column].iter().position(|c| c == key) {
            return Err(error(
                column,
                format!(
                    "key {key:?} is also column {}; name each key once",
                    first + 2
                ),
            ));
        }
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_day_and_set_only_non_empty_cells() {
        let text = "day,channels.ads.daily_budget,content.a.available\n0,100,\n\n2,1.5e2,false\n";
        let (rows, origin) = read_schedule_csv(text.as_bytes(), "s.csv").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["day"], Value::Integer(0));
        assert_eq!(rows[0]["channels.ads.daily_budget"], Value::Float(100.0));
        assert!(rows[0].get("content.a.available").is_none());
        assert_eq!(rows[1]["channels.ads.daily_budget"], Value::Float(150.0));
        assert_eq!(rows[1]["content.a.available"], Value::Boolean(false));
        assert_eq!(origin.row_lines, vec![2, 4]);
        let error = origin.error(1, Some("content.a.available"), "bad".into());
        assert_eq!(
            error.to_string(),
            "s.csv:4: column 3 (content.a.available): bad"
        );
    }

    #[test]
    fn bad_cells_are_named_by_line_and_column() {
        let cases = [
            (
                "day,brand.value\n0,abc\n",
                "s.csv:2: column 2 (brand.value): expected a decimal",
            ),
            (
                "day,brand.value\n0,inf\n",
                "s.csv:2: column 2 (brand.value): expected a decimal",
            ),
            (
                "day,brand.value\nx,1\n",
                "s.csv:2: column 1 (day): expected a day number",
            ),
            (
                "date,brand.value\n2026-02-30,1\n",
                "s.csv:2: column 1 (date): expected a date",
            ),
            (
                "when,brand.value\n",
                "s.csv:1: column 1 (when): the first column",
            ),
            (
                "day,brand.value,brand.value\n",
                "s.csv:1: column 3 (brand.value): key \"brand.value\" is also column 2",
            ),
            ("day,brand.value\n1,2,3\n", "s.csv:2: 3 cells; expected 2"),
            ("", "s.csv: the schedule file is empty"),
        ];
        for (text, expected) in cases {
            let error = read_schedule_csv(text.as_bytes(), "s.csv").unwrap_err();
            assert!(error.to_string().starts_with(expected), "{text:?}: {error}");
        }
    }
}
