//! Reading a scenario file: TOML parsing, `--set` overrides and validation of every
//! rule of MODEL.md ("Scenario file"), with errors that name the file, key path and line.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::{Table, Value};

use super::campaigns::flatten_campaign_sets;
use super::overrides::{Assignment, apply_assignments};
use super::schedule::{ScheduleOrigin, embed_schedule_file};
use super::{
    Brand, Channel, ContentItem, Estimator, Market, OptimizeSettings, Scenario, Segment,
    Simulation, Variant,
};

/// Why a scenario was rejected: the first problem found, in file order where possible.
///
/// Displayed as `{file}:{line}: {key_path}: {message}`; `:{line}` is left out when the
/// line is unknown (a value from `--set`, a missing top-level table) and `{key_path}: `
/// when the problem is not tied to a key (a TOML syntax error, an unreadable file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The scenario file as the user named it.
    pub file: String,
    /// Where in the scenario, e.g. `market.segments[1].share`; empty when not tied to a key.
    pub key_path: String,
    /// 1-based line of the offending value (or of its table, for a missing key).
    pub line: Option<usize>,
    /// What was found and what was expected.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key_path.is_empty() {
            write!(f, ": {}", self.key_path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// The resolved scenario: the document as loaded, with `--set` overrides applied and
/// `name` filled in (the file stem when the file has none), so that it re-loads to the
/// same `Scenario` from anywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSource {
    /// The scenario file as the user named it (used in error messages).
    pub file: String,
    pub document: Table,
}

impl ScenarioSource {
    /// The resolved scenario as TOML text, to store beside results; loading it gives
    /// the same `Scenario`.
    pub fn resolved_toml(&self) -> String {
        match toml::to_string_pretty(&self.document) {
            Ok(text) => format!(
                "# Resolved scenario: {} with any --set overrides applied.\n{text}",
                self.file
            ),
            Err(error) => format!("# cannot write the scenario as TOML: {error}\n"),
        }
    }

    /// The scenario with more overrides applied on top of this one (for sweeps and
    /// variants). Errors have no line numbers: the original text is not kept.
    pub fn with_overrides(
        &self,
        assignments: &[Assignment],
    ) -> Result<(Scenario, ScenarioSource), ScenarioError> {
        resolve(
            self.document.clone(),
            &self.file,
            &Locations::default(),
            assignments,
        )
    }

    /// The scenario with a schedule given as rows, read from the CSV `source` (e.g.
    /// the spend columns of `calibrate`'s observed data): `[schedule] source =
    /// "<source>", rows = [...]`, each row a table `{ day = t, "<key path>" =
    /// value }`. A bad row is named by `source`, the line of the row (`row_lines`,
    /// 1-based, in row order) and the column of its key in `header` (the CSV's
    /// header). Refused when the scenario has a schedule already.
    pub fn with_schedule_rows(
        &self,
        source: &str,
        rows: Vec<Table>,
        row_lines: Vec<usize>,
        header: Vec<String>,
    ) -> Result<(Scenario, ScenarioSource), ScenarioError> {
        if self.document.contains_key("schedule") {
            return Err(ScenarioError {
                file: self.file.clone(),
                key_path: "schedule".to_string(),
                line: None,
                message: format!(
                    "the scenario has a schedule already, and the key-path columns of {source} \
                     would be a second one; put those values in the scenario's schedule, or \
                     leave the columns out of {source}"
                ),
            });
        }
        let mut document = self.document.clone();
        let mut schedule = Table::new();
        schedule.insert(
            "source".to_string(),
            toml::Value::String(source.to_string()),
        );
        schedule.insert(
            "rows".to_string(),
            toml::Value::Array(rows.into_iter().map(toml::Value::Table).collect()),
        );
        document.insert("schedule".to_string(), toml::Value::Table(schedule));
        let locations = Locations {
            schedule: Some(ScheduleOrigin {
                file: source.to_string(),
                row_lines,
                columns: header,
            }),
            ..Locations::default()
        };
        resolve(document, &self.file, &locations, &[])
    }
}

impl ScenarioSource {
    /// The scenario with `key` held uncertain as `normal(mean, sd)` (MODEL.md v2,
    /// "Parameter uncertainty": drawn per replication, truncated to the key's
    /// range): an `[[uncertain]]` entry appended, replacing any entry of the same
    /// key. `calibrate` writes each fitted value so, from its estimate and
    /// standard error. Errors: the key is not uncertain-capable, `sd` is not
    /// positive and finite, or the truncated normal has no mass in the range.
    pub fn with_uncertain_normal(
        &self,
        key: &str,
        mean: f64,
        sd: f64,
    ) -> Result<(Scenario, ScenarioSource), ScenarioError> {
        let mut document = self.document.clone();
        let mut entries: Vec<toml::Value> = match document.remove("uncertain") {
            Some(toml::Value::Array(entries)) => entries
                .into_iter()
                .filter(|entry| entry.get("key").and_then(toml::Value::as_str) != Some(key))
                .collect(),
            _ => Vec::new(),
        };
        let mut entry = Table::new();
        entry.insert("key".to_string(), toml::Value::String(key.to_string()));
        entry.insert(
            "distribution".to_string(),
            toml::Value::String("normal".to_string()),
        );
        entry.insert("mean".to_string(), toml::Value::Float(mean));
        entry.insert("sd".to_string(), toml::Value::Float(sd));
        entries.push(toml::Value::Table(entry));
        document.insert("uncertain".to_string(), toml::Value::Array(entries));
        resolve(document, &self.file, &Locations::default(), &[])
    }
}

/// Entry point for `brandsim <command> scenario.toml --set KEY=VALUE...`: reads,
/// parses, applies the overrides and validates. `file` in errors is `path` as given.
pub fn load_file(
    path: &Path,
    overrides: &[Assignment],
) -> Result<(Scenario, ScenarioSource), ScenarioError> {
    let file = path.display().to_string();
    let bytes = read_bounded(path).map_err(|message| ScenarioError {
        file: file.clone(),
        key_path: String::new(),
        line: None,
        message,
    })?;
    let text = String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        ScenarioError {
            file: file.clone(),
            key_path: String::new(),
            line: Some(1 + valid.iter().filter(|&&b| b == b'\n').count()),
            message: "the file is not valid UTF-8 text; expected a TOML document".to_string(),
        }
    })?;
    let (mut document, mut locations) = parse_document(&text, &file)?;
    locations.schedule = embed_schedule_file(&mut document, &file, &locations)?;
    resolve(document, &file, &locations, overrides)
}

/// [`load_file`] for scenario text that is not read from a file (the Python
/// package's `Scenario.from_toml`): `file` names it in errors, its stem is the
/// default `name`, and a relative `[schedule] file` is read from its directory.
pub fn load_str(
    text: &str,
    file: &str,
    overrides: &[Assignment],
) -> Result<(Scenario, ScenarioSource), ScenarioError> {
    let (mut document, mut locations) = parse_document(text, file)?;
    locations.schedule = embed_schedule_file(&mut document, file, &locations)?;
    resolve(document, file, &locations, overrides)
}

/// Where `key_path` (as in [`ScenarioError::key_path`]; empty for a TOML syntax
/// error) is written in the scenario text `text`: the 1-based line and column (in
/// characters) where its value starts, or where the syntax error is. For hosts
/// that show a column (the Python package's `ScenarioError.column`); `None` when
/// the key is not in the text (a missing key, a value from `--set`).
pub fn position_in_text(text: &str, key_path: &str) -> Option<(usize, usize)> {
    let position = |offset: usize| {
        let before = &text[..offset.min(text.len())];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = 1 + before.matches('\n').count();
        (line, 1 + before[line_start..].chars().count())
    };
    match DeTable::parse(text) {
        Err(error) if key_path.is_empty() => error.span().map(|span| position(span.start)),
        Err(_) => None,
        Ok(root) => Locations::new(text, root.get_ref())
            .spans
            .get(key_path)
            .map(|span| position(span.start)),
    }
}

/// The largest scenario file read: a hand-written scenario is a few KiB, and a
/// bound keeps a wrong path (a log, `/dev/zero`) from filling the memory.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// The most segments, content items or channels a scenario may list: the engine
/// stores their indices in 16 bits.
pub const MAX_LIST_LEN: usize = u16::MAX as usize;

/// Reads at most `MAX_FILE_BYTES` of a regular file; a message saying why not otherwise.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    read_bounded_file(path, "scenario file (TOML)")
}

/// Reads at most `MAX_FILE_BYTES` of the regular file `path`, described as `what`
/// in messages.
pub(super) fn read_bounded_file(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let cannot = |error: std::io::Error| format!("cannot read the {what}: {error}");
    let metadata = std::fs::metadata(path).map_err(cannot)?;
    if metadata.is_dir() {
        return Err(format!("is a directory; expected a {what}"));
    }
    let too_big = |size: String| {
        format!(
            "the file is {size} bytes; expected a {what} of at most {MAX_FILE_BYTES} bytes (10 MiB)"
        )
    };
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_big(metadata.len().to_string()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    // A device or pipe has no size in its metadata: the bounded read catches it.
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(format!("more than {MAX_FILE_BYTES}")));
    }
    Ok(bytes)
}

/// Parses and validates scenario text (no overrides). `file_name` is used in errors
/// and its stem is the default `name`.
pub fn parse_str(text: &str, file_name: &str) -> Result<Scenario, ScenarioError> {
    let (mut document, mut locations) = parse_document(text, file_name)?;
    locations.schedule = embed_schedule_file(&mut document, file_name, &locations)?;
    resolve(document, file_name, &locations, &[]).map(|(scenario, _)| scenario)
}

/// Applies the overrides, validates, and records the resolved document.
fn resolve(
    mut document: Table,
    file: &str,
    locations: &Locations,
    overrides: &[Assignment],
) -> Result<(Scenario, ScenarioSource), ScenarioError> {
    flatten_campaign_sets(&mut document, file, locations)?;
    let set_by = apply_assignments(&mut document, overrides, file)?;
    super::uncertain::fix_set_keys(&mut document, &set_by);
    super::seeding::mark_switched_off(&mut document, &set_by);
    let default_name = Path::new(file)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let validator = Validator {
        file,
        locations,
        set_by: &set_by,
    };
    let scenario = validator.scenario(&document, &default_name)?;
    super::network::record_edge_file(&mut document, scenario.market.network.as_ref());
    if !document.contains_key("name") {
        let mut named = Table::new();
        named.insert("name".to_string(), Value::String(scenario.name.clone()));
        named.extend(document);
        document = named;
    }
    let source = ScenarioSource {
        file: file.to_string(),
        document,
    };
    Ok((scenario, source))
}

// ---------------------------------------------------------------------------------
// Parsing and locating keys

/// Byte spans of every key path of the file, to turn a path into a line number.
#[derive(Debug, Default)]
pub(super) struct Locations {
    spans: HashMap<String, Range<usize>>,
    line_starts: Vec<usize>,
    /// Integers beyond 64 bits (which TOML does not allow), as path and text.
    oversized: Vec<(String, String)>,
    /// Where the rows of an embedded schedule file came from.
    pub(super) schedule: Option<ScheduleOrigin>,
}

impl Locations {
    fn new(text: &str, root: &DeTable<'_>) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut locations = Locations {
            spans: HashMap::new(),
            line_starts,
            oversized: Vec::new(),
            schedule: None,
        };
        locations.record_table(String::new(), root);
        locations
    }

    fn record_table(&mut self, path: String, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            let mut child = path.clone();
            push_key(&mut child, key.get_ref());
            self.record_value(child, value);
        }
    }

    fn record_value(&mut self, path: String, value: &toml::Spanned<DeValue<'_>>) {
        self.spans.insert(path.clone(), value.span());
        match value.get_ref() {
            DeValue::Table(table) => self.record_table(path, table),
            DeValue::Array(array) => {
                for (i, element) in array.iter().enumerate() {
                    self.record_value(format!("{path}[{i}]"), element);
                }
            }
            DeValue::Integer(integer)
                if i64::from_str_radix(integer.as_str(), integer.radix()).is_err() =>
            {
                self.oversized.push((path, integer.to_string()));
            }
            _ => {}
        }
    }

    fn line_at(&self, offset: usize) -> usize {
        self.line_starts
            .partition_point(|&start| start <= offset)
            .max(1)
    }

    pub(super) fn line(&self, path: &str) -> Option<usize> {
        self.spans.get(path).map(|span| self.line_at(span.start))
    }

    /// The innermost key path whose value contains `span`.
    fn path_containing(&self, span: &Range<usize>) -> Option<&str> {
        self.spans
            .iter()
            .filter(|(_, s)| s.start <= span.start && span.end <= s.end)
            .min_by_key(|(path, s)| (s.end - s.start, std::cmp::Reverse(path.len())))
            .map(|(path, _)| path.as_str())
    }
}

/// Appends `key` to a key path, quoting it unless it is a TOML bare key.
pub(super) fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        path.push_str(key);
    } else {
        path.push_str(&format!("{key:?}"));
    }
}

/// Parses TOML text into a document and the locations of its keys.
fn parse_document(text: &str, file: &str) -> Result<(Table, Locations), ScenarioError> {
    let line_of = |offset: usize| {
        1 + text.as_bytes()[..offset.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    };
    let spanned = DeTable::parse(text).map_err(|mut error| {
        let line = error.span().map(|span| line_of(span.start));
        let message = error.message().trim_end().to_string();
        // The toml crate renders the line and a caret under the column.
        error.set_input(Some(text));
        let rendered = error.to_string();
        let (position, snippet) = match rendered.split_once('\n') {
            Some((first, rest)) if first.starts_with("TOML parse error at ") => (
                first.trim_start_matches("TOML parse error at ").to_string(),
                rest.strip_suffix(&format!("{message}\n"))
                    .unwrap_or(rest)
                    .trim_end(),
            ),
            _ => (String::new(), ""),
        };
        let snippet: String = snippet
            .chars()
            .map(|c| {
                if c.is_control() && c != '\n' {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect();
        ScenarioError {
            file: file.to_string(),
            key_path: String::new(),
            line,
            message: if position.is_empty() {
                format!("TOML syntax error: {message}")
            } else {
                format!("TOML syntax error at {position}: {message}\n{snippet}")
            },
        }
    })?;
    let locations = Locations::new(text, spanned.get_ref());
    if let Some((path, integer)) = locations
        .oversized
        .iter()
        .min_by_key(|(path, _)| locations.spans.get(path).map(|span| span.start))
    {
        return Err(ScenarioError {
            file: file.to_string(),
            key_path: path.clone(),
            line: locations.line(path),
            message: format!(
                "integer {integer} does not fit in 64 bits (TOML integers are 64-bit)"
            ),
        });
    }
    // Should the conversion find something the spanned parse let through, its
    // span still names the key.
    let document: Table = toml::from_str(text).map_err(|error| {
        let span = error.span();
        ScenarioError {
            file: file.to_string(),
            key_path: span
                .as_ref()
                .and_then(|span| locations.path_containing(span))
                .unwrap_or_default()
                .to_string(),
            line: span.map(|span| line_of(span.start)),
            message: error.message().trim_end().to_string(),
        }
    })?;
    Ok((document, locations))
}

// ---------------------------------------------------------------------------------
// The schema

/// The range of a number key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Bound {
    Finite,
    NonNegative,
    Positive,
    Unit,
}

impl Bound {
    pub(super) fn contains(self, x: f64) -> bool {
        x.is_finite()
            && match self {
                Bound::Finite => true,
                Bound::NonNegative => x >= 0.0,
                Bound::Positive => x > 0.0,
                Bound::Unit => (0.0..=1.0).contains(&x),
            }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Bound::Finite => "a finite number",
            Bound::NonNegative => "a number >= 0",
            Bound::Positive => "a number > 0",
            Bound::Unit => "a number in [0, 1]",
        }
    }
}

/// What a key holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    /// A TOML integer in `[min, max]`.
    Integer {
        min: i64,
        max: i64,
    },
    /// A TOML float or integer inside the bound, never NaN or infinite.
    Number(Bound),
    Text,
    OneOf(&'static [&'static str]),
    Table,
    /// `true` or `false`.
    Boolean,
    /// A TOML local date, `2026-06-01`.
    Date,
    /// A day: an integer >= 0, or a TOML local date (with `start_date`); whether it
    /// lies in the horizon is checked with the calendar.
    Day,
    /// A table of names to numbers (`topics`, `targeting`).
    Weights(Bound),
    /// An array of tables (`[[content]]`).
    Tables,
}

const U32_MAX: i64 = u32::MAX as i64;
/// A count >= 1 that fits a `u32` (days, population, replications, iterations).
const COUNT: Kind = Kind::Integer {
    min: 1,
    max: U32_MAX,
};
/// A number of days >= 0 that fits a `u32` (renewal_days).
const DAYS: Kind = Kind::Integer {
    min: 0,
    max: U32_MAX,
};
/// Any non-negative TOML integer: [0, 2^63).
const SEED: Kind = Kind::Integer {
    min: 0,
    max: i64::MAX,
};

impl Kind {
    pub(super) fn describe(self) -> String {
        match self {
            Kind::Integer { min, max: i64::MAX } => format!("an integer >= {min}"),
            Kind::Integer { min, max } => format!("an integer in [{min}, {max}]"),
            Kind::Number(bound) => bound.describe().to_string(),
            Kind::Text => "a string".to_string(),
            Kind::OneOf(options) => {
                let quoted: Vec<String> = options.iter().map(|o| format!("{o:?}")).collect();
                format!("one of {}", quoted.join(", "))
            }
            Kind::Table => "a table".to_string(),
            Kind::Boolean => "true or false".to_string(),
            Kind::Date => "a date like 2026-01-01".to_string(),
            Kind::Day => "a day number >= 0 or a date like 2026-06-01".to_string(),
            Kind::Weights(bound) => format!("a table of weights (each {})", bound.describe()),
            Kind::Tables => "an array of tables".to_string(),
        }
    }
}

/// One key of a table of the scenario file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    pub key: &'static str,
    pub kind: Kind,
    pub required: bool,
}

pub(super) const fn required(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        kind,
        required: true,
    }
}

pub(super) const fn optional(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        kind,
        required: false,
    }
}

pub(super) const TOP_FIELDS: &[Field] = &[
    optional("name", Kind::Text),
    required("simulation", Kind::Table),
    required("market", Kind::Table),
    required("content", Kind::Tables),
    optional("channels", Kind::Tables),
    required("brand", Kind::Table),
    optional("optimize", Kind::Table),
    optional("variants", Kind::Tables),
    optional("campaigns", Kind::Tables),
    optional("schedule", Kind::Table),
    optional("uncertain", Kind::Tables),
    optional("seeding", Kind::Tables),
];

pub(super) const SIMULATION_FIELDS: &[Field] = &[
    required("days", COUNT),
    required("seed", SEED),
    required("replications", COUNT),
    optional("start_date", Kind::Date),
    optional("discount_rate", Kind::Number(Bound::NonNegative)),
];

pub(super) const MARKET_FIELDS: &[Field] = &[
    required("population", COUNT),
    required("word_of_mouth", Kind::Number(Bound::NonNegative)),
    required("dormancy", Kind::Number(Bound::Unit)),
    required("price_reference", Kind::Number(Bound::Positive)),
    required("satisfaction_noise", Kind::Number(Bound::NonNegative)),
    required("segments", Kind::Tables),
    optional("network", Kind::Table),
];

pub(super) const SEGMENT_FIELDS: &[Field] = &[
    required("name", Kind::Text),
    required("share", Kind::Number(Bound::NonNegative)),
    required("topics", Kind::Weights(Bound::NonNegative)),
    required("price_sensitivity", Kind::Number(Bound::NonNegative)),
    required("click_heterogeneity", Kind::Number(Bound::NonNegative)),
    required("churn_alpha", Kind::Number(Bound::Positive)),
    required("churn_beta", Kind::Number(Bound::Positive)),
    optional("targeting", Kind::Weights(Bound::NonNegative)),
];

pub(super) const CONTENT_FIELDS: &[Field] = &[
    required("name", Kind::Text),
    required("topic", Kind::Text),
    required("click_rate", Kind::Number(Bound::Unit)),
    required("conversion_rate", Kind::Number(Bound::Unit)),
    required("price", Kind::Number(Bound::NonNegative)),
    required("quality", Kind::Number(Bound::Unit)),
    optional("promotion", Kind::Number(Bound::NonNegative)),
    required("renewal_days", DAYS),
    optional("available", Kind::Boolean),
];

pub(super) const CHANNEL_FIELDS: &[Field] = &[
    required("name", Kind::Text),
    required("daily_budget", Kind::Number(Bound::NonNegative)),
    required("cpm", Kind::Number(Bound::Positive)),
];

pub(super) const BRAND_FIELDS: &[Field] = &[
    required("value", Kind::Number(Bound::Finite)),
    required("click_effect", Kind::Number(Bound::Finite)),
    required("conversion_effect", Kind::Number(Bound::Finite)),
    required("retention_effect", Kind::Number(Bound::Finite)),
    required("satisfaction_effect", Kind::Number(Bound::Finite)),
    required("topic_match", Kind::Number(Bound::Unit)),
    required("cost_per_day", Kind::Number(Bound::NonNegative)),
];

/// Replications of the first step of an adaptive search.
const ADAPTIVE_START: u32 = 4;

const ESTIMATORS: &[&str] = &["spsa", "fd", "lr", "lr-whole"];

pub(super) const OPTIMIZE_FIELDS: &[Field] = &[
    optional("objective", Kind::OneOf(crate::metrics::METRIC_NAMES)),
    optional("estimator", Kind::OneOf(ESTIMATORS)),
    optional("iterations", COUNT),
    optional("learning_rate", Kind::Number(Bound::Positive)),
    optional("regularization", Kind::Number(Bound::NonNegative)),
    optional("perturbation", Kind::Number(Bound::Positive)),
    optional("replications_per_step", COUNT),
    optional("tolerance", Kind::Number(Bound::Positive)),
    optional("budget_user_days", Kind::Number(Bound::Positive)),
];

/// One `[[variants]]` entry: a name and a table of `--set` key paths to values.
const VARIANT_FIELDS: &[Field] = &[required("name", Kind::Text), required("set", Kind::Table)];

/// `unknown key "k"; did you mean "key"? expected one of: ...`, shared with `--set`.
pub(super) fn unknown_key_message(key: &str, fields: &[Field]) -> String {
    let keys: Vec<&str> = fields.iter().map(|field| field.key).collect();
    format!(
        "unknown key {key:?}; {}expected one of: {}",
        did_you_mean(key, &keys),
        keys.join(", ")
    )
}

/// `did you mean "x"? ` when one of `known` is close to `word` (a typo: an
/// optimal-string-alignment distance of at most a third of its length, at
/// least 1), else nothing.
pub(super) fn did_you_mean(word: &str, known: &[&str]) -> String {
    let limit = (word.chars().count() / 3).max(1);
    known
        .iter()
        .map(|candidate| (strsim::osa_distance(word, candidate), *candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map_or(String::new(), |(_, candidate)| {
            format!("did you mean {candidate:?}? ")
        })
}

/// How a value appears in a message: `-0.2`, `nan`, `string "10"`, `a table`.
pub(super) fn describe_found(value: &Value, as_number: bool) -> String {
    let number = |x: f64| {
        if x.is_nan() {
            "nan".to_string()
        } else if x.is_infinite() {
            if x > 0.0 { "inf" } else { "-inf" }.to_string()
        } else {
            format!("{x:?}")
        }
    };
    match value {
        Value::Integer(i) if as_number => i.to_string(),
        Value::Float(x) if as_number => number(*x),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(x) => format!("float {}", number(*x)),
        Value::String(s) => format!("string {s:?}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

pub(super) fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Float(x) => Some(*x),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// Validation

pub(super) struct Validator<'a> {
    pub(super) file: &'a str,
    pub(super) locations: &'a Locations,
    /// Key paths set by `--set`, to the key as the user gave it.
    pub(super) set_by: &'a HashMap<String, String>,
}

pub(super) type Checked<T> = Result<T, ScenarioError>;

/// The largest revenue or spend a scenario may produce over its horizon: far
/// beyond any real market, and far enough below `f64::MAX` that sums and
/// squares across replications stay finite.
pub const MAX_MONEY: f64 = 1e100;

impl Validator<'_> {
    /// An error at `path`: its line, or `(from --set)` if an override put it there.
    pub(super) fn error(&self, path: &str, message: impl Into<String>) -> ScenarioError {
        let message = message.into();
        match self.set_by.get(path) {
            Some(key) => ScenarioError {
                file: self.file.to_string(),
                key_path: key.clone(),
                line: None,
                message: format!("{message} (from --set)"),
            },
            None => ScenarioError {
                file: self.file.to_string(),
                key_path: path.to_string(),
                line: self.locations.line(path),
                message,
            },
        }
    }

    /// An error about a quantity derived from several keys (`candidates`, the
    /// likeliest cause first): blamed on the first of them that a `--set` put
    /// there (with `(from --set)`), else on the first.
    pub(super) fn error_among(
        &self,
        candidates: &[String],
        message: impl Into<String>,
    ) -> ScenarioError {
        let path = candidates
            .iter()
            .find(|path| self.set_by.contains_key(path.as_str()))
            .unwrap_or(&candidates[0]);
        self.error(path, message)
    }

    pub(super) fn child(path: &str, key: &str) -> String {
        let mut child = path.to_string();
        push_key(&mut child, key);
        child
    }

    /// Checks every entry of `table` (in file order: unknown keys, types, ranges),
    /// then that required keys are present; `path` is the table's key path.
    pub(super) fn check_table(&self, path: &str, table: &Table, fields: &[Field]) -> Checked<()> {
        self.check_entries(path, table, fields)?;
        self.check_required(path, table, fields)
    }

    /// Unknown keys, types and ranges of the entries of `table`, in file order.
    fn check_entries(&self, path: &str, table: &Table, fields: &[Field]) -> Checked<()> {
        for (key, value) in table {
            let child = Self::child(path, key);
            let Some(field) = fields.iter().find(|field| field.key == key) else {
                return Err(self.error(&child, unknown_key_message(key, fields)));
            };
            self.check_value(&child, value, field.kind)?;
        }
        Ok(())
    }

    fn check_required(&self, path: &str, table: &Table, fields: &[Field]) -> Checked<()> {
        for field in fields.iter().filter(|field| field.required) {
            if !table.contains_key(field.key) {
                // A missing key has no line of its own: point at its table.
                let mut error = self.error(
                    &Self::child(path, field.key),
                    format!(
                        "missing required key {:?} ({})",
                        field.key,
                        field.kind.describe()
                    ),
                );
                error.line = self.locations.line(path);
                return Err(error);
            }
        }
        Ok(())
    }

    pub(super) fn check_value(&self, path: &str, value: &Value, kind: Kind) -> Checked<()> {
        let expected = |as_number: bool| {
            self.error(
                path,
                format!(
                    "expected {}, found {}",
                    kind.describe(),
                    describe_found(value, as_number)
                ),
            )
        };
        match (kind, value) {
            (Kind::Integer { min, max }, Value::Integer(i)) if *i < min || *i > max => {
                Err(expected(true))
            }
            (Kind::Integer { .. }, Value::Integer(_)) => Ok(()),
            (Kind::Number(bound), Value::Integer(_) | Value::Float(_)) => {
                match number_of(value).filter(|&x| bound.contains(x)) {
                    Some(_) => Ok(()),
                    None => Err(expected(true)),
                }
            }
            (Kind::Text, Value::String(_)) => Ok(()),
            (Kind::OneOf(options), Value::String(s)) if options.contains(&s.as_str()) => Ok(()),
            (Kind::Table, Value::Table(_)) => Ok(()),
            (Kind::Boolean, Value::Boolean(_)) => Ok(()),
            (Kind::Date, value) if super::calendar::toml_local_date(value).is_some() => Ok(()),
            (Kind::Day, Value::Integer(i)) if *i >= 0 => Ok(()),
            (Kind::Day, Value::Integer(_)) => Err(self.error(
                path,
                format!(
                    "a negative day ({}); expected {}",
                    describe_found(value, true),
                    kind.describe()
                ),
            )),
            (Kind::Day, value) if super::calendar::toml_local_date(value).is_some() => Ok(()),
            (Kind::Weights(bound), Value::Table(weights)) => {
                for (name, weight) in weights {
                    self.check_value(&Self::child(path, name), weight, Kind::Number(bound))?;
                }
                Ok(())
            }
            (Kind::Tables, Value::Array(elements)) => {
                for (i, element) in elements.iter().enumerate() {
                    if !element.is_table() {
                        return Err(self.error(
                            &format!("{path}[{i}]"),
                            format!("expected a table, found {}", describe_found(element, false)),
                        ));
                    }
                }
                Ok(())
            }
            _ => Err(expected(false)),
        }
    }

    /// Builds the scenario, checking tables in file order and cross-references last.
    fn scenario(&self, document: &Table, default_name: &str) -> Checked<Scenario> {
        // Problems inside the tables present come before a missing table, which
        // has no line.
        self.check_entries("", document, TOP_FIELDS)?;
        let mut simulation = None;
        let mut market = None;
        let mut content = None;
        let mut channels = Vec::new();
        let mut brand = None;
        let mut optimize = OptimizeSettings::default();
        for (key, value) in document {
            let empty = Table::new();
            let table = value.as_table().unwrap_or(&empty);
            let elements = value.as_array().map(Vec::as_slice).unwrap_or_default();
            match key.as_str() {
                "simulation" => simulation = Some(self.simulation(table)?),
                "market" => market = Some(self.market(table)?),
                "content" => content = Some(self.content(elements)?),
                "channels" => channels = self.channels(elements)?,
                "brand" => brand = Some(self.brand(table)?),
                "optimize" => optimize = self.optimize(table)?,
                "variants" => self.check_variant_tables(elements)?,
                "uncertain" => {}
                _ => {}
            }
        }
        self.check_required("", document, TOP_FIELDS)?;
        let (
            Some(simulation),
            Some((mut market, raw_segments)),
            Some((topics, content)),
            Some(brand),
        ) = (simulation, market, content, brand)
        else {
            // check_required has made sure all four are present.
            return Err(self.error("", "internal error: a required table was not read"));
        };
        for (i, (segment, raw)) in market.segments.iter_mut().zip(&raw_segments).enumerate() {
            let path = format!("market.segments[{i}]");
            segment.topics = self.segment_topics(&path, &raw.topics, &topics)?;
            segment.targeting = self.segment_targeting(&path, &raw.targeting, &channels)?;
        }
        let name = match document.get("name").and_then(Value::as_str) {
            Some(name) => name.to_string(),
            None => default_name.to_string(),
        };
        let variants = self.variants(document)?;
        let scenario = Scenario {
            name,
            simulation,
            market,
            topics,
            content,
            channels,
            brand,
            optimize,
            variants,
            calendar: Default::default(),
            uncertain: Vec::new(),
            seeding: Vec::new(),
        };
        self.check_derived_quantities(&scenario)?;
        let mut scenario = scenario;
        scenario.calendar = std::sync::Arc::new(self.calendar(document, &scenario)?);
        self.check_days_derived_quantities(&scenario)?;
        scenario.uncertain = super::uncertain::parse(self, document, &scenario)?;
        scenario.seeding = super::seeding::parse(self, document, &scenario)?;
        Ok(scenario)
    }

    fn check_list_len(&self, path: &str, len: usize) -> Checked<()> {
        if len > MAX_LIST_LEN {
            return Err(self.error(
                path,
                format!("{len} entries; expected at most {MAX_LIST_LEN}"),
            ));
        }
        Ok(())
    }

    /// Values that are each in range but whose products in the model overflow a
    /// 64-bit float (e.g. `daily_budget = 1e300` with `cpm = 1e-300`): the model
    /// would then compute `inf − inf` or `0·inf`, so they are rejected here.
    pub(super) fn check_derived_quantities(&self, scenario: &Scenario) -> Checked<()> {
        let overflow = |paths: &[String], what: String, hint: &str| {
            Err(self.error_among(
                paths,
                format!("{what} overflows a 64-bit float; expected a finite result: {hint}"),
            ))
        };
        let population = f64::from(scenario.market.population);
        for (k, channel) in scenario.channels.iter().enumerate() {
            let impressions = 1000.0 * channel.daily_budget / channel.cpm;
            if !impressions.is_finite() {
                return overflow(
                    &[
                        format!("channels[{k}].daily_budget"),
                        format!("channels[{k}].cpm"),
                    ],
                    format!(
                        "daily impressions 1000·daily_budget/cpm = 1000·{:?}/{:?}",
                        channel.daily_budget, channel.cpm
                    ),
                    "lower daily_budget or raise cpm",
                );
            }
            let reach: f64 = scenario
                .market
                .segments
                .iter()
                .map(|segment| population * segment.targeting[k])
                .sum();
            if !reach.is_finite() {
                let mut paths: Vec<String> = (0..scenario.market.segments.len())
                    .map(|i| format!("market.segments[{i}].targeting"))
                    .collect();
                paths.insert(0, "market.segments".to_string());
                paths.push("market.population".to_string());
                return overflow(
                    &paths,
                    format!(
                        "the targeting weights of channel {:?} times the population",
                        channel.name
                    ),
                    "lower the targeting weights",
                );
            }
        }
        let budgets: f64 = scenario.channels.iter().map(|c| c.daily_budget).sum();
        let brand = &scenario.brand;
        let daily_spend = budgets + brand.cost_per_day * brand.value * brand.value;
        let spend_keys = spend_keys(scenario);
        if !daily_spend.is_finite() {
            return overflow(
                &spend_keys,
                "the daily spend Σ daily_budget + cost_per_day·value²".to_string(),
                "lower the budgets, cost_per_day or brand.value",
            );
        }
        for (key, effect) in [
            ("click_effect", brand.click_effect),
            ("conversion_effect", brand.conversion_effect),
            ("retention_effect", brand.retention_effect),
        ] {
            if !(effect * brand.value).is_finite() {
                return overflow(
                    &[format!("brand.{key}"), "brand.value".to_string()],
                    format!("brand.{key}·brand.value = {effect:?}·{:?}", brand.value),
                    "lower the effect or the brand value",
                );
            }
        }
        let price_reference = scenario.market.price_reference;
        for (i, item) in scenario.content.iter().enumerate() {
            if !(item.price / price_reference).is_finite() {
                return overflow(
                    &[
                        format!("content[{i}].price"),
                        "market.price_reference".to_string(),
                    ],
                    format!(
                        "price / market.price_reference = {:?}/{price_reference:?}",
                        item.price
                    ),
                    "lower the price or raise market.price_reference",
                );
            }
        }
        self.check_money_totals(scenario, daily_spend, &spend_keys)
    }

    /// Revenue and spend over the horizon must stay far from overflowing, since
    /// the statistics square them (variance across replications): at most
    /// [`MAX_MONEY`]. The bounds are the most the model can produce: every user
    /// paying the dearest item every day, every day's full spend.
    fn check_money_totals(
        &self,
        scenario: &Scenario,
        daily_spend: f64,
        spend_keys: &[String],
    ) -> Checked<()> {
        let days = f64::from(scenario.simulation.days);
        let payments = f64::from(scenario.market.population) * days;
        let dearest = scenario
            .content
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| a.price.total_cmp(&b.price));
        if let Some((i, item)) = dearest
            && item.price * payments > MAX_MONEY
        {
            return Err(self.error_among(
                &[
                    format!("content[{i}].price"),
                    "market.population".to_string(),
                    "simulation.days".to_string(),
                ],
                format!(
                    "price·population·days = {:?}·{}·{days} could exceed {MAX_MONEY:e}, \
                     beyond which money totals and their statistics overflow; \
                     expected a smaller price",
                    item.price, scenario.market.population
                ),
            ));
        }
        if daily_spend * days > MAX_MONEY {
            let mut keys = spend_keys.to_vec();
            keys.push("simulation.days".to_string());
            return Err(self.error_among(
                &keys,
                format!(
                    "the spend over the horizon, days·(Σ daily_budget + cost_per_day·value²) \
                     = {days}·{daily_spend:?}, exceeds {MAX_MONEY:e}, beyond which money \
                     totals and their statistics overflow; expected smaller budgets, \
                     cost_per_day or brand.value"
                ),
            ));
        }
        Ok(())
    }

    /// Keys, types and unique names of the `[[variants]]` tables (their `set` is
    /// checked once the base scenario is known, in [`Self::variants`]).
    fn check_variant_tables(&self, elements: &[Value]) -> Checked<()> {
        let mut names = Names::new("variant");
        for (i, element) in elements.iter().enumerate() {
            let path = format!("variants[{i}]");
            let variant = element.as_table().unwrap_or(&EMPTY);
            self.check_table(&path, variant, VARIANT_FIELDS)?;
            names.add(self, &path, &get_str(variant, "name"))?;
        }
        Ok(())
    }

    /// The `[[variants]]`, each checked by applying its `set` to the base scenario
    /// (after any `--set`) exactly as `--set` would; a problem is reported at
    /// `variants[i].set."key"` with its line.
    fn variants(&self, document: &Table) -> Checked<Vec<Variant>> {
        let Some(elements) = document.get("variants").and_then(Value::as_array) else {
            return Ok(Vec::new());
        };
        let mut base = document.clone();
        base.remove("variants");
        let mut variants = Vec::new();
        for (i, element) in elements.iter().enumerate() {
            let set_path = format!("variants[{i}].set");
            let set = element
                .as_table()
                .and_then(|variant| variant.get("set"))
                .and_then(Value::as_table)
                .unwrap_or(&EMPTY);
            let assignments: Vec<Assignment> = set
                .iter()
                .map(|(key, value)| Assignment {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect();
            if let Err(error) =
                resolve(base.clone(), self.file, &Locations::default(), &assignments)
            {
                return Err(self.variant_error(&set_path, set, error));
            }
            variants.push(Variant {
                name: element
                    .as_table()
                    .map(|variant| get_str(variant, "name"))
                    .unwrap_or_default(),
                set: assignments,
            });
        }
        Ok(variants)
    }

    /// Moves an error found while applying a variant's `set` to the key of that
    /// `set` it comes from (or to the `set` table, for a rule across keys).
    fn variant_error(&self, set_path: &str, set: &Table, error: ScenarioError) -> ScenarioError {
        let message = error
            .message
            .strip_suffix(" (from --set)")
            .unwrap_or(&error.message)
            .to_string();
        if set.contains_key(&error.key_path) {
            let path = Self::child(set_path, &error.key_path);
            return ScenarioError {
                file: self.file.to_string(),
                line: self.locations.line(&path),
                key_path: path,
                message,
            };
        }
        let message = if error.key_path.is_empty() {
            format!("with this variant applied: {message}")
        } else {
            format!("with this variant applied, {}: {message}", error.key_path)
        };
        ScenarioError {
            file: self.file.to_string(),
            line: self.locations.line(set_path),
            key_path: set_path.to_string(),
            message,
        }
    }

    fn simulation(&self, table: &Table) -> Checked<Simulation> {
        self.check_table("simulation", table, SIMULATION_FIELDS)?;
        Ok(Simulation {
            days: get_u32(table, "days"),
            seed: get_i64(table, "seed").max(0) as u64,
            replications: get_u32(table, "replications"),
        })
    }

    fn market(&self, table: &Table) -> Checked<(Market, Vec<RawSegment>)> {
        self.check_table("market", table, MARKET_FIELDS)?;
        let elements = table
            .get("segments")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if elements.is_empty() {
            return Err(self.error(
                "market.segments",
                "expected at least one [[market.segments]] table, found none",
            ));
        }
        self.check_list_len("market.segments", elements.len())?;
        let mut segments = Vec::new();
        let mut raw_segments = Vec::new();
        let mut names = Names::new("segment");
        for (i, element) in elements.iter().enumerate() {
            let path = format!("market.segments[{i}]");
            let segment = element.as_table().unwrap_or(&EMPTY);
            self.check_table(&path, segment, SEGMENT_FIELDS)?;
            let name = get_str(segment, "name");
            names.add(self, &path, &name)?;
            raw_segments.push(RawSegment {
                topics: get_weights(segment, "topics"),
                targeting: get_weights(segment, "targeting"),
            });
            segments.push(Segment {
                name,
                share: get_f64(segment, "share"),
                topics: Vec::new(),
                price_sensitivity: get_f64(segment, "price_sensitivity"),
                click_heterogeneity: get_f64(segment, "click_heterogeneity"),
                churn_alpha: get_f64(segment, "churn_alpha"),
                churn_beta: get_f64(segment, "churn_beta"),
                targeting: Vec::new(),
            });
        }
        let total: f64 = segments.iter().map(|segment| segment.share).sum();
        let sums_to_one = (total - 1.0).abs() <= 1e-9;
        if !sums_to_one {
            // Rounded so that 0.6 + 0.3 shows as 0.9, yet any miss beyond 1e-9 shows.
            let shown = (total * 1e12).round() / 1e12;
            let shares: Vec<String> = segments.iter().map(|s| format!("{:?}", s.share)).collect();
            return Err(self.error(
                "market.segments",
                format!(
                    "segment shares sum to {shown:?} ({}); expected 1 (within 1e-9)",
                    shares.join(" + ")
                ),
            ));
        }
        let market = Market {
            population: get_u32(table, "population"),
            word_of_mouth: get_f64(table, "word_of_mouth"),
            dormancy: get_f64(table, "dormancy"),
            price_reference: get_f64(table, "price_reference"),
            satisfaction_noise: get_f64(table, "satisfaction_noise"),
            segments,
            network: super::network::parse(self, table, get_u32(table, "population"))?,
        };
        Ok((market, raw_segments))
    }

    fn content(&self, elements: &[Value]) -> Checked<(Vec<String>, Vec<ContentItem>)> {
        if elements.is_empty() {
            return Err(self.error(
                "content",
                "expected at least one [[content]] item, found none",
            ));
        }
        self.check_list_len("content", elements.len())?;
        let mut topics: Vec<String> = Vec::new();
        let mut items = Vec::new();
        let mut names = Names::new("content item");
        for (i, element) in elements.iter().enumerate() {
            let path = format!("content[{i}]");
            let item = element.as_table().unwrap_or(&EMPTY);
            self.check_table(&path, item, CONTENT_FIELDS)?;
            let name = get_str(item, "name");
            names.add(self, &path, &name)?;
            let topic_name = get_str(item, "topic");
            let topic = match topics.iter().position(|t| *t == topic_name) {
                Some(index) => index,
                None => {
                    topics.push(topic_name);
                    topics.len() - 1
                }
            };
            items.push(ContentItem {
                name,
                topic,
                click_rate: get_f64(item, "click_rate"),
                conversion_rate: get_f64(item, "conversion_rate"),
                price: get_f64(item, "price"),
                quality: get_f64(item, "quality"),
                promotion: item.get("promotion").and_then(number_of).unwrap_or(1.0),
                renewal_days: get_u32(item, "renewal_days"),
                available: item
                    .get("available")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            });
        }
        Ok((topics, items))
    }

    fn channels(&self, elements: &[Value]) -> Checked<Vec<Channel>> {
        self.check_list_len("channels", elements.len())?;
        let mut channels = Vec::new();
        let mut names = Names::new("channel");
        for (i, element) in elements.iter().enumerate() {
            let path = format!("channels[{i}]");
            let channel = element.as_table().unwrap_or(&EMPTY);
            self.check_table(&path, channel, CHANNEL_FIELDS)?;
            let name = get_str(channel, "name");
            names.add(self, &path, &name)?;
            channels.push(Channel {
                name,
                daily_budget: get_f64(channel, "daily_budget"),
                cpm: get_f64(channel, "cpm"),
            });
        }
        Ok(channels)
    }

    fn brand(&self, table: &Table) -> Checked<Brand> {
        self.check_table("brand", table, BRAND_FIELDS)?;
        Ok(Brand {
            value: get_f64(table, "value"),
            click_effect: get_f64(table, "click_effect"),
            conversion_effect: get_f64(table, "conversion_effect"),
            retention_effect: get_f64(table, "retention_effect"),
            satisfaction_effect: get_f64(table, "satisfaction_effect"),
            topic_match: get_f64(table, "topic_match"),
            cost_per_day: get_f64(table, "cost_per_day"),
        })
    }

    fn optimize(&self, table: &Table) -> Checked<OptimizeSettings> {
        self.check_table("optimize", table, OPTIMIZE_FIELDS)?;
        let defaults = OptimizeSettings::default();
        let fixed_effort = table.contains_key("replications_per_step");
        let number =
            |key: &str, default: f64| table.get(key).and_then(number_of).unwrap_or(default);
        let count = |key: &str, default: u32| {
            table
                .get(key)
                .and_then(Value::as_integer)
                .and_then(|i| u32::try_from(i).ok())
                .unwrap_or(default)
        };
        Ok(OptimizeSettings {
            objective: table
                .get("objective")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or(defaults.objective),
            estimator: match table.get("estimator").and_then(Value::as_str) {
                Some("fd") => Estimator::FiniteDifference,
                Some("lr") => Estimator::LikelihoodRatio,
                Some("lr-whole") => Estimator::LikelihoodRatioWhole,
                Some(_) | None => defaults.estimator,
            },
            iterations: count("iterations", defaults.iterations),
            learning_rate: number("learning_rate", defaults.learning_rate),
            regularization: number("regularization", defaults.regularization),
            perturbation: number("perturbation", defaults.perturbation),
            replications_per_step: count(
                "replications_per_step",
                if fixed_effort {
                    defaults.replications_per_step
                } else {
                    ADAPTIVE_START
                },
            ),
            adaptive: !fixed_effort,
            tolerance: number("tolerance", defaults.tolerance),
            budget_user_days: table.get("budget_user_days").and_then(number_of),
        })
    }

    /// A segment's topic weights as indices into `topics`, normalised.
    fn segment_topics(
        &self,
        path: &str,
        weights: &[(String, f64)],
        topics: &[String],
    ) -> Checked<Vec<(usize, f64)>> {
        let topics_path = Self::child(path, "topics");
        let mut resolved = Vec::new();
        for (name, weight) in weights {
            let Some(index) = topics.iter().position(|topic| topic == name) else {
                return Err(self.error(
                    &Self::child(&topics_path, name),
                    format!(
                        "no content item has topic {name:?}; content topics are: {}",
                        topics.join(", ")
                    ),
                ));
            };
            resolved.push((index, *weight));
        }
        if resolved.is_empty() {
            return Err(self.error(
                &topics_path,
                "no topics; expected at least one topic with a positive weight".to_string(),
            ));
        }
        let total: f64 = resolved.iter().map(|(_, weight)| weight).sum();
        if !(total > 0.0 && total.is_finite()) {
            return Err(self.error(
                &topics_path,
                format!("topic weights sum to {total:?}; expected a positive finite sum"),
            ));
        }
        for (_, weight) in &mut resolved {
            *weight /= total;
        }
        Ok(resolved)
    }

    /// A segment's weight for each channel, in channel order (missing = 1.0).
    fn segment_targeting(
        &self,
        path: &str,
        weights: &[(String, f64)],
        channels: &[Channel],
    ) -> Checked<Vec<f64>> {
        let mut targeting = vec![1.0; channels.len()];
        for (name, weight) in weights {
            let Some(index) = channels.iter().position(|channel| channel.name == *name) else {
                let known: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
                let known = if known.is_empty() {
                    "there are no [[channels]]".to_string()
                } else {
                    format!("channels are: {}", known.join(", "))
                };
                return Err(self.error(
                    &Self::child(&Self::child(path, "targeting"), name),
                    format!(
                        "no channel named {name:?}; {}{known}",
                        did_you_mean(
                            name,
                            &channels.iter().map(|c| c.name.as_str()).collect::<Vec<_>>()
                        )
                    ),
                ));
            };
            targeting[index] = *weight;
        }
        Ok(targeting)
    }
}

pub(super) static EMPTY: std::sync::LazyLock<Table> = std::sync::LazyLock::new(Table::new);

/// A segment's `topics` and `targeting`, kept by name until content and channels are known.
struct RawSegment {
    topics: Vec<(String, f64)>,
    targeting: Vec<(String, f64)>,
}

/// Names seen so far in one list (to the key path of their first use), to reject duplicates.
pub(super) struct Names {
    what: &'static str,
    first: HashMap<String, String>,
}

impl Names {
    pub(super) fn new(what: &'static str) -> Self {
        Names {
            what,
            first: HashMap::new(),
        }
    }

    pub(super) fn add(&mut self, validator: &Validator<'_>, path: &str, name: &str) -> Checked<()> {
        let name_path = Validator::child(path, "name");
        if let Some(first) = self.first.get(name) {
            return Err(validator.error(
                &name_path,
                format!(
                    "duplicate {} name {name:?} (also at {first}); names must be unique",
                    self.what
                ),
            ));
        }
        self.first.insert(name.to_string(), name_path);
        Ok(())
    }
}

// Readers for values that `check_table` has already checked.

/// The keys of the daily spend `Σ daily_budget + cost_per_day·value²`, the
/// largest term's first (what to blame when it is too large).
fn spend_keys(scenario: &Scenario) -> Vec<String> {
    let brand = &scenario.brand;
    let mut terms: Vec<(f64, Vec<String>)> = scenario
        .channels
        .iter()
        .enumerate()
        .map(|(k, c)| (c.daily_budget, vec![format!("channels[{k}].daily_budget")]))
        .collect();
    terms.push((
        brand.cost_per_day * brand.value * brand.value,
        vec!["brand.cost_per_day".to_string(), "brand.value".to_string()],
    ));
    terms.sort_by(|a, b| b.0.total_cmp(&a.0));
    terms.into_iter().flat_map(|(_, keys)| keys).collect()
}

fn get_f64(table: &Table, key: &str) -> f64 {
    table.get(key).and_then(number_of).unwrap_or(0.0)
}

fn get_i64(table: &Table, key: &str) -> i64 {
    table.get(key).and_then(Value::as_integer).unwrap_or(0)
}

fn get_u32(table: &Table, key: &str) -> u32 {
    u32::try_from(get_i64(table, key)).unwrap_or(0)
}

pub(super) fn get_str(table: &Table, key: &str) -> String {
    table
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn get_weights(table: &Table, key: &str) -> Vec<(String, f64)> {
    table
        .get(key)
        .and_then(Value::as_table)
        .map(|weights| {
            weights
                .iter()
                .map(|(name, weight)| (name.clone(), number_of(weight).unwrap_or(0.0)))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locations(text: &str) -> Locations {
        Locations::new(text, DeTable::parse(text).unwrap().get_ref())
    }

    #[test]
    fn position_in_text_is_the_line_and_column_of_the_value_or_syntax_error() {
        let text = "name = \"x\"\n[market]\npopulation = -5\ntopics = { \"é\" = 1, b = 2 }\n";
        assert_eq!(position_in_text(text, "market.population"), Some((3, 14)));
        // Columns count characters, not bytes.
        assert_eq!(position_in_text(text, "market.topics.b"), Some((4, 25)));
        assert_eq!(position_in_text(text, "market.missing"), None);
        let broken = "name = \"x\"\n[market\npopulation = 3\n";
        assert_eq!(position_in_text(broken, ""), Some((2, 8)));
        assert_eq!(position_in_text(broken, "market.population"), None);
    }

    #[test]
    fn key_paths_map_to_the_line_of_their_value_or_header() {
        let text =
            "a = 1\n\n[t]\nb = { c = 2,\n  d = 3 }\n\n[[l]]\nx = 1\n[[l]] # second\ny = [1,\n 2]\n";
        let at = locations(text);
        assert_eq!(at.line("a"), Some(1));
        assert_eq!(at.line("t"), Some(3));
        assert_eq!(at.line("t.b"), Some(4));
        assert_eq!(at.line("t.b.d"), Some(5));
        assert_eq!(at.line("l[0]"), Some(7));
        assert_eq!(at.line("l[1]"), Some(9));
        assert_eq!(at.line("l[1].y[1]"), Some(11));
        assert_eq!(at.line("nowhere"), None);
    }

    #[test]
    fn keys_that_are_not_bare_are_quoted_in_paths() {
        let at = locations("[s]\ntopics = { \"data science\" = 1, tech = 2 }\n");
        assert_eq!(at.line(r#"s.topics."data science""#), Some(2));
        let mut path = "s.topics".to_string();
        push_key(&mut path, "data science");
        assert_eq!(path, r#"s.topics."data science""#);
        push_key(&mut path, "ok_key-2");
        assert!(path.ends_with(".ok_key-2"));
    }

    #[test]
    fn integers_beyond_64_bits_are_named_by_key() {
        let error =
            parse_str("[simulation]\nseed = 0x1_0000_0000_0000_0000\n", "big.toml").unwrap_err();
        assert_eq!(error.key_path, "simulation.seed");
        assert_eq!(error.line, Some(2));
        assert!(error.message.contains("does not fit in 64 bits"), "{error}");
    }

    #[test]
    fn found_values_are_shown_as_written_in_toml() {
        let number = |value: Value| describe_found(&value, true);
        assert_eq!(number(Value::Float(f64::NAN)), "nan");
        assert_eq!(number(Value::Float(f64::NEG_INFINITY)), "-inf");
        assert_eq!(number(Value::Float(-0.2)), "-0.2");
        assert_eq!(number(Value::Integer(7)), "7");
        assert_eq!(describe_found(&Value::Float(1.5), false), "float 1.5");
        assert_eq!(
            describe_found(&Value::String("10".into()), true),
            r#"string "10""#
        );
    }

    #[test]
    fn error_display_leaves_out_unknown_parts() {
        let mut error = ScenarioError {
            file: "s.toml".into(),
            key_path: "brand.value".into(),
            line: Some(3),
            message: "bad".into(),
        };
        assert_eq!(error.to_string(), "s.toml:3: brand.value: bad");
        error.line = None;
        assert_eq!(error.to_string(), "s.toml: brand.value: bad");
        error.key_path.clear();
        assert_eq!(error.to_string(), "s.toml: bad");
    }

    #[test]
    fn every_bound_rejects_nan_and_infinity() {
        for bound in [
            Bound::Finite,
            Bound::NonNegative,
            Bound::Positive,
            Bound::Unit,
        ] {
            assert!(!bound.contains(f64::NAN));
            assert!(!bound.contains(f64::INFINITY));
            assert!(!bound.contains(f64::NEG_INFINITY));
        }
        assert!(Bound::Unit.contains(0.0) && Bound::Unit.contains(1.0));
        assert!(!Bound::Positive.contains(0.0) && Bound::NonNegative.contains(0.0));
    }
}
