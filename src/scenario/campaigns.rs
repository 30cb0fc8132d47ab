//! Validation of the calendar (MODEL.md v2, "Days", "The calendar", "Campaigns and
//! schedules"): `start_date`, `discount_rate`, `[[campaigns]]` and the schedule's
//! rows, with errors naming the campaign and key path, or the schedule's line and
//! column.

use chrono::NaiveDate;
use toml::{Table, Value};

use super::calendar::{
    Calendar, Campaign, ScheduleRow, TIME_VARYING_KEYS, TimeVaryingKey, Timeline, toml_local_date,
};
use super::load::{
    Bound, Checked, EMPTY, Field, Kind, Locations, Names, Validator, describe_found, get_str,
    number_of, push_key,
};
use super::overrides::{Step, locate};
use super::{Scenario, ScenarioError};

const CAMPAIGN_FIELDS: &[Field] = &[
    Field {
        key: "name",
        kind: Kind::Text,
        required: true,
    },
    Field {
        key: "start",
        kind: Kind::Day,
        required: true,
    },
    // `end` or (an extension of MODEL.md v2, docs/MODEL.md) `duration`: one of them.
    Field {
        key: "end",
        kind: Kind::Day,
        required: false,
    },
    Field {
        key: "duration",
        kind: Kind::Integer {
            min: 1,
            max: u32::MAX as i64,
        },
        required: false,
    },
    Field {
        key: "set",
        kind: Kind::Table,
        required: true,
    },
];

const SCHEDULE_FIELDS: &[Field] = &[
    Field {
        key: "file",
        kind: Kind::Text,
        required: false,
    },
    Field {
        key: "source",
        kind: Kind::Text,
        required: false,
    },
    Field {
        key: "rows",
        kind: Kind::Tables,
        required: false,
    },
];

/// Turns every campaign's `set` into a flat table of key paths: TOML dotted keys
/// (`content.x.price = 1`, which TOML reads as nested tables) become the quoted
/// path (`"content.x.price" = 1`), so `--set campaigns.<name>.<key path>` and
/// validation see one spelling. Both spellings of one path is an error.
pub(super) fn flatten_campaign_sets(
    document: &mut Table,
    file: &str,
    locations: &Locations,
) -> Result<(), ScenarioError> {
    let Some(campaigns) = document.get_mut("campaigns").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (i, campaign) in campaigns.iter_mut().enumerate() {
        let Some(set) = campaign
            .as_table_mut()
            .and_then(|campaign| campaign.get_mut("set"))
            .and_then(Value::as_table_mut)
        else {
            continue;
        };
        if set.values().all(|value| !value.is_table()) {
            continue;
        }
        let mut flat = Table::new();
        for (key, value) in std::mem::take(set) {
            flatten_into(&mut flat, key, value).map_err(|path| {
                let set_path = format!("campaigns[{i}].set");
                ScenarioError {
                    file: file.to_string(),
                    line: locations
                        .line(&nested_path(&set_path, &path))
                        .or_else(|| locations.line(&set_path)),
                    key_path: set_path,
                    message: format!(
                        "key path {path:?} is given twice, as a quoted key and as dotted \
                         keys; give it once"
                    ),
                }
            })?;
        }
        *set = flat;
    }
    Ok(())
}

/// Adds the leaves of `value` under `path` to `flat`; the path given twice as `Err`.
fn flatten_into(flat: &mut Table, path: String, value: Value) -> Result<(), String> {
    match value {
        Value::Table(table) if !table.is_empty() => {
            for (key, value) in table {
                flatten_into(flat, format!("{path}.{key}"), value)?;
            }
            Ok(())
        }
        leaf => {
            if flat.contains_key(&path) {
                return Err(path);
            }
            flat.insert(path, leaf);
            Ok(())
        }
    }
}

/// `set_path` then each part of the dotted `key`, as TOML dotted keys are located.
fn nested_path(set_path: &str, key: &str) -> String {
    let mut path = set_path.to_string();
    for part in key.split('.') {
        push_key(&mut path, part);
    }
    path
}

/// The range of a time-varying key: the kind of its base key.
fn kind_of(key: TimeVaryingKey) -> Kind {
    use TimeVaryingKey::*;
    match key {
        Available { .. } => Kind::Boolean,
        Cpm { .. } => Kind::Number(Bound::Positive),
        ClickRate { .. } | ConversionRate { .. } | Quality { .. } | TopicMatch | Dormancy => {
            Kind::Number(Bound::Unit)
        }
        BrandValue => Kind::Number(Bound::Finite),
        DailyBudget { .. }
        | Price { .. }
        | Promotion { .. }
        | CostPerDay
        | WordOfMouth
        | Targeting { .. } => Kind::Number(Bound::NonNegative),
    }
}

/// The value of a time-varying key as a number (`available`: 1 or 0), or what
/// was expected.
fn value_of(key: TimeVaryingKey, value: &Value) -> Result<f64, String> {
    let kind = kind_of(key);
    let found = || describe_found(value, !key.is_boolean());
    match (kind, value) {
        (Kind::Boolean, Value::Boolean(b)) => Ok(f64::from(u8::from(*b))),
        (Kind::Number(bound), _) => number_of(value)
            .filter(|&x| bound.contains(x))
            .ok_or_else(|| format!("expected {}, found {}", kind.describe(), found())),
        _ => Err(format!("expected {}, found {}", kind.describe(), found())),
    }
}

/// The time-varying key that the key path `key` names in `document`, or why it
/// names none: an unknown name or key, a fixed key, a name with a dot.
pub(super) fn time_varying_key(document: &Table, key: &str) -> Result<TimeVaryingKey, String> {
    use TimeVaryingKey::*;
    let steps = locate(document, key)?;
    let list = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    let segments = document
        .get("market")
        .and_then(|market| market.get("segments"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let name_of = |entries: &[Value], i: usize| {
        entries
            .get(i)
            .and_then(|entry| entry.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let no_dot = |what: &str, name: String| {
        if name.contains('.') {
            Err(format!(
                "the {what} name {name:?} contains a dot; names used in campaign and \
                 schedule key paths must not contain dots"
            ))
        } else {
            Ok(())
        }
    };
    let fixed = || {
        format!(
            "{key} is fixed for the whole horizon; campaigns and schedules set only \
             time-varying keys: {TIME_VARYING_KEYS}"
        )
    };
    let words: Vec<Option<&str>> = steps
        .iter()
        .map(|step| match step {
            Step::Key(word) => Some(word.as_str()),
            Step::Index(_) => None,
        })
        .collect();
    let index = |at: usize| match steps.get(at) {
        Some(Step::Index(i)) => *i,
        _ => 0,
    };
    let resolved = match words.as_slice() {
        [Some("content"), None, Some(field)] => {
            let item = index(1);
            no_dot("content item", name_of(list("content"), item))?;
            match *field {
                "price" => Price { item },
                "promotion" => Promotion { item },
                "click_rate" => ClickRate { item },
                "conversion_rate" => ConversionRate { item },
                "quality" => Quality { item },
                "available" => Available { item },
                _ => return Err(fixed()),
            }
        }
        [Some("channels"), None, Some(field)] => {
            let channel = index(1);
            no_dot("channel", name_of(list("channels"), channel))?;
            match *field {
                "daily_budget" => DailyBudget { channel },
                "cpm" => Cpm { channel },
                _ => return Err(fixed()),
            }
        }
        [Some("brand"), Some("value")] => BrandValue,
        [Some("brand"), Some("cost_per_day")] => CostPerDay,
        [Some("brand"), Some("topic_match")] => TopicMatch,
        [Some("market"), Some("word_of_mouth")] => WordOfMouth,
        [Some("market"), Some("dormancy")] => Dormancy,
        [
            Some("market"),
            Some("segments"),
            None,
            Some("targeting"),
            Some(channel_name),
        ] => {
            let segment = index(2);
            no_dot("segment", name_of(segments, segment))?;
            let channels = list("channels");
            let Some(channel) =
                (0..channels.len()).find(|&k| name_of(channels, k) == *channel_name)
            else {
                let known: Vec<String> =
                    (0..channels.len()).map(|k| name_of(channels, k)).collect();
                return Err(format!(
                    "no channel named {channel_name:?}; channels are: {}",
                    known.join(", ")
                ));
            };
            no_dot("channel", channel_name.to_string())?;
            Targeting { segment, channel }
        }
        _ => return Err(fixed()),
    };
    Ok(resolved)
}

/// A day of the scenario as read from its key: a day number or a date (shared
/// by campaigns, the schedule and `[[seeding]]`).
pub(crate) struct DayRules<'a> {
    pub(crate) start_date: Option<NaiveDate>,
    /// The horizon T.
    pub(crate) days: u32,
    pub(crate) calendar: &'a Calendar,
}

impl DayRules<'_> {
    /// The day `value` names, or why it is not one: a negative day, a date
    /// without `start_date` or before it, a day past the horizon (unless
    /// `may_pass_end`, for a campaign's `end`).
    pub(crate) fn day(&self, value: &Value, may_pass_end: bool) -> Result<u32, String> {
        let last = self.days - 1;
        let (day, shown) = match value {
            Value::Integer(i) if *i < 0 => {
                return Err(format!(
                    "a negative day ({i}); expected a day in 0..={last}"
                ));
            }
            Value::Integer(i) => (*i, format!("day {i}")),
            other => {
                let Some(date) = toml_local_date(other) else {
                    return Err(format!(
                        "expected a day number or a date like 2026-06-01, found {}",
                        describe_found(other, true)
                    ));
                };
                let Some(start) = self.start_date else {
                    return Err(format!(
                        "the date {date} needs simulation.start_date; give the start \
                         date or write a day number"
                    ));
                };
                let day = (date - start).num_days();
                if day < 0 {
                    return Err(format!(
                        "the date {date} is before simulation.start_date = {start}"
                    ));
                }
                (day, format!("the date {date} (day {day})"))
            }
        };
        if day > i64::from(last) && !may_pass_end {
            return Err(format!(
                "{shown} is outside the horizon: expected a day in 0..={last}{} \
                 (simulation.days = {})",
                self.range_dates(),
                self.days
            ));
        }
        Ok(u32::try_from(day).unwrap_or(u32::MAX))
    }

    /// ` (2026-01-01..=2026-06-29)` with a start date, else nothing.
    fn range_dates(&self) -> String {
        match (
            self.calendar.date_text(0),
            self.calendar.date_text(self.days - 1),
        ) {
            (Some(first), Some(last)) => format!(" ({first}..={last})"),
            _ => String::new(),
        }
    }

    /// `day 12 (2026-01-13)` or `day 12`.
    fn describe(&self, day: u32) -> String {
        match self.calendar.date_text(day) {
            Some(date) => format!("day {day} ({date})"),
            None => format!("day {day}"),
        }
    }
}

impl Validator<'_> {
    /// The calendar of the scenario: start date, discount rate, campaigns and the
    /// schedule's rows, each checked against `scenario` (after `--set`).
    pub(super) fn calendar(&self, document: &Table, scenario: &Scenario) -> Checked<Calendar> {
        let simulation = document
            .get("simulation")
            .and_then(Value::as_table)
            .unwrap_or(&EMPTY);
        let mut calendar = Calendar {
            start_date: simulation.get("start_date").and_then(toml_local_date),
            discount_rate: simulation
                .get("discount_rate")
                .and_then(number_of)
                .unwrap_or(0.0),
            ..Calendar::default()
        };
        let days = {
            let probe = calendar.clone();
            let rules = DayRules {
                start_date: calendar.start_date,
                days: scenario.simulation.days,
                calendar: &probe,
            };
            calendar.campaigns = self.campaigns(document, &rules)?;
            calendar.schedule = self.schedule_rows(document, &rules)?;
            rules.days
        };
        calendar.schedule_source = document
            .get("schedule")
            .and_then(|schedule| schedule.get("source"))
            .and_then(Value::as_str)
            .map(str::to_string);
        self.check_overlaps(document, &calendar, scenario, days)?;
        Ok(calendar)
    }

    fn campaigns(&self, document: &Table, rules: &DayRules<'_>) -> Checked<Vec<Campaign>> {
        let elements = document
            .get("campaigns")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut names = Names::new("campaign");
        let mut campaigns = Vec::new();
        for (i, element) in elements.iter().enumerate() {
            let path = format!("campaigns[{i}]");
            let table = element.as_table().unwrap_or(&EMPTY);
            self.check_table(&path, table, CAMPAIGN_FIELDS)?;
            let name = get_str(table, "name");
            names.add(self, &path, &name)?;
            let in_campaign = |message: String| format!("campaign {name:?}: {message}");
            let day = |key: &str, may_pass_end: bool| {
                let key_path = Validator::child(&path, key);
                rules
                    .day(&table[key], may_pass_end)
                    .map_err(|message| self.error(&key_path, in_campaign(message)))
            };
            let start = day("start", false)?;
            let end = match (table.get("end"), table.get("duration")) {
                (Some(_), None) => day("end", true)?,
                (None, Some(duration)) => {
                    let duration = duration.as_integer().unwrap_or(1).max(1) as u64;
                    u32::try_from(u64::from(start) + duration - 1).unwrap_or(u32::MAX)
                }
                (Some(_), Some(_)) => {
                    return Err(self.error(
                        &Validator::child(&path, "duration"),
                        in_campaign(
                            "both end and duration; expected one: the last day (end) or \
                             the number of days (duration)"
                                .to_string(),
                        ),
                    ));
                }
                (None, None) => {
                    let mut error = self.error(
                        &Validator::child(&path, "end"),
                        in_campaign(
                            "missing required key \"end\" (the last day, inclusive: a day \
                             number or a date; or give duration, a number of days)"
                                .to_string(),
                        ),
                    );
                    error.line = self.locations.line(&path);
                    return Err(error);
                }
            };
            if end < start {
                return Err(self.error(
                    &Validator::child(&path, "end"),
                    in_campaign(format!(
                        "ends on {} before it starts on {}; expected end >= start",
                        rules.describe(end),
                        rules.describe(start)
                    )),
                ));
            }
            let set_path = Validator::child(&path, "set");
            let set_table = table.get("set").and_then(Value::as_table).unwrap_or(&EMPTY);
            let mut set: Vec<(TimeVaryingKey, f64)> = Vec::new();
            let mut first_key: Vec<&str> = Vec::new();
            for (key, value) in set_table {
                let error = |message: String| self.set_error(&set_path, key, in_campaign(message));
                let resolved = time_varying_key(document, key).map_err(error)?;
                if let Some(at) = set.iter().position(|&(k, _)| k == resolved) {
                    return Err(error(format!(
                        "sets the same key as {:?}; set each key once",
                        first_key[at]
                    )));
                }
                let number = value_of(resolved, value).map_err(error)?;
                set.push((resolved, number));
                first_key.push(key);
            }
            campaigns.push(Campaign {
                name,
                start,
                end,
                set,
            });
        }
        Ok(campaigns)
    }

    /// An error at key `key` of the `set` at `set_path`, with the line of either
    /// spelling of the key.
    fn set_error(&self, set_path: &str, key: &str, message: String) -> ScenarioError {
        let mut error = self.error(&Validator::child(set_path, key), message);
        if error.line.is_none() && !error.message.ends_with("(from --set)") {
            error.line = self
                .locations
                .line(&nested_path(set_path, key))
                .or_else(|| self.locations.line(set_path));
        }
        error
    }

    /// An error at cell `key` (or the day, for `None`) of schedule row `row`: by
    /// line and column of the schedule file when the rows came from one.
    fn schedule_error(&self, row: usize, key: Option<&str>, message: String) -> ScenarioError {
        if let Some(origin) = &self.locations.schedule {
            return origin.error(row, key, message);
        }
        let row_path = format!("schedule.rows[{row}]");
        let path = match key {
            Some(key) => Validator::child(&row_path, key),
            None => row_path,
        };
        self.error(&path, message)
    }

    fn schedule_rows(&self, document: &Table, rules: &DayRules<'_>) -> Checked<Vec<ScheduleRow>> {
        let Some(value) = document.get("schedule") else {
            return Ok(Vec::new());
        };
        let schedule = value.as_table().unwrap_or(&EMPTY);
        self.check_table("schedule", schedule, SCHEDULE_FIELDS)?;
        match (schedule.contains_key("file"), schedule.contains_key("rows")) {
            (true, true) => {
                return Err(self.error(
                    "schedule.rows",
                    "both file and rows; expected one: the file, or its rows",
                ));
            }
            (false, false) => {
                return Err(self.error(
                    "schedule.file",
                    "missing required key \"file\" (a string: the schedule CSV, relative \
                     to the scenario file)",
                ));
            }
            _ => {}
        }
        let elements = schedule
            .get("rows")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut rows: Vec<ScheduleRow> = Vec::new();
        // A schedule names few keys in many rows: resolve each key path once.
        let mut resolved_keys: std::collections::HashMap<&str, Result<TimeVaryingKey, String>> =
            Default::default();
        let mut first_row_of_day: std::collections::HashMap<u32, usize> = Default::default();
        for (r, element) in elements.iter().enumerate() {
            let row = element.as_table().unwrap_or(&EMPTY);
            let day_value = match (row.get("day"), row.get("date")) {
                (Some(_), Some(_)) => {
                    return Err(self.schedule_error(
                        r,
                        None,
                        "both day and date; expected one of them".to_string(),
                    ));
                }
                (Some(day), None) => day,
                (None, Some(date)) => date,
                (None, None) => {
                    return Err(self.schedule_error(
                        r,
                        None,
                        "no day or date; expected a row to name its day".to_string(),
                    ));
                }
            };
            let day = rules
                .day(day_value, false)
                .map_err(|message| self.schedule_error(r, None, message))?;
            if let Some(&first) = first_row_of_day.get(&day) {
                let first_at = match &self.locations.schedule {
                    Some(origin) => format!("line {}", origin.row_lines[first]),
                    None => format!("schedule.rows[{first}]"),
                };
                return Err(self.schedule_error(
                    r,
                    None,
                    format!(
                        "{} is also the day of {first_at}; expected each day once",
                        rules.describe(day)
                    ),
                ));
            }
            first_row_of_day.insert(day, r);
            let mut set: Vec<(TimeVaryingKey, f64)> = Vec::new();
            for (key, value) in row {
                if key == "day" || key == "date" {
                    continue;
                }
                let error = |message: String| self.schedule_error(r, Some(key), message);
                let resolved = resolved_keys
                    .entry(key.as_str())
                    .or_insert_with(|| time_varying_key(document, key))
                    .clone()
                    .map_err(error)?;
                if set.iter().any(|&(k, _)| k == resolved) {
                    return Err(error(format!(
                        "{key} names a key of another column; name each key once"
                    )));
                }
                set.push((resolved, value_of(resolved, value).map_err(error)?));
            }
            rows.push(ScheduleRow { day, set });
        }
        Ok(rows)
    }

    /// Two campaigns that set one key on a common day, or a campaign and a schedule
    /// cell that set one key on one day: an error naming both.
    fn check_overlaps(
        &self,
        document: &Table,
        calendar: &Calendar,
        scenario: &Scenario,
        days: u32,
    ) -> Checked<()> {
        // The spelling of `key` in a table of key paths (a campaign's `set`, a
        // schedule row), to find its line or column.
        let as_written = |table: Option<&Value>, key: TimeVaryingKey| {
            table
                .and_then(Value::as_table)
                .and_then(|table| {
                    table
                        .keys()
                        .find(|k| time_varying_key(document, k) == Ok(key))
                        .cloned()
                })
                .unwrap_or_else(|| key.path(scenario))
        };
        let rules = DayRules {
            start_date: calendar.start_date,
            days,
            calendar,
        };
        let campaigns = &calendar.campaigns;
        for (b, later) in campaigns.iter().enumerate() {
            for (a, earlier) in campaigns[..b].iter().enumerate() {
                let first = earlier.start.max(later.start);
                let last = earlier.end.min(later.end);
                if first > last {
                    continue;
                }
                let shared = later
                    .set
                    .iter()
                    .find(|(key, _)| earlier.set.iter().any(|(k, _)| k == key));
                if let Some(&(key, _)) = shared {
                    let path = key.path(scenario);
                    return Err(self.set_error(
                        &format!("campaigns[{b}].set"),
                        &as_written(
                            document
                                .get("campaigns")
                                .and_then(|c| c.get(b))
                                .and_then(|c| c.get("set")),
                            key,
                        ),
                        format!(
                            "campaigns {:?} (campaigns[{a}]) and {:?} both set {path} from {} \
                             to {}; campaigns that set one key must not overlap",
                            earlier.name,
                            later.name,
                            rules.describe(first),
                            rules.describe(last.min(days - 1))
                        ),
                    ));
                }
            }
        }
        for (r, row) in calendar.schedule.iter().enumerate() {
            for &(key, _) in &row.set {
                let Some((i, campaign)) = campaigns
                    .iter()
                    .enumerate()
                    .find(|(_, c)| c.holds(row.day) && c.set.iter().any(|(k, _)| *k == key))
                else {
                    continue;
                };
                let path = key.path(scenario);
                let written = as_written(
                    document
                        .get("schedule")
                        .and_then(|s| s.get("rows"))
                        .and_then(|rows| rows.get(r)),
                    key,
                );
                return Err(self.schedule_error(
                    r,
                    Some(&written),
                    format!(
                        "the schedule sets {path} on {}, which campaign {:?} \
                         (campaigns[{i}], {} to {}) also sets; a key has one source a day",
                        rules.describe(row.day),
                        campaign.name,
                        rules.describe(campaign.start),
                        rules.describe(campaign.end.min(days - 1)),
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The model's derived quantities (impressions, spend, money totals) with the
    /// values of each day on which campaigns or the schedule change them.
    pub(super) fn check_days_derived_quantities(&self, scenario: &Scenario) -> Checked<()> {
        if !scenario.calendar.is_time_varying() {
            return Ok(());
        }
        let timeline = Timeline::new(scenario);
        for (t, version) in timeline.changes() {
            let set = timeline.set_of(version);
            if set.is_empty() {
                continue;
            }
            let day = Timeline::day_scenario(scenario, set);
            if let Err(error) = self.check_derived_quantities(&day) {
                let mut sources: Vec<String> = scenario
                    .calendar
                    .campaigns
                    .iter()
                    .filter(|c| c.holds(t))
                    .map(|c| format!("campaign {:?}", c.name))
                    .collect();
                if scenario.calendar.schedule.iter().any(|row| row.day == t) {
                    sources.push("the schedule".to_string());
                }
                return Err(ScenarioError {
                    file: self.file.to_string(),
                    key_path: error.key_path,
                    line: None,
                    message: format!(
                        "with the values of day {t} (set by {}): {}",
                        sources.join(" and "),
                        error.message
                    ),
                });
            }
        }
        Ok(())
    }
}
