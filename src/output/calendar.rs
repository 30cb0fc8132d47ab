//! The campaign calendar of a scenario for the HTML report: its `[[campaigns]]`
//! windows and `[[seeding]]` days, read generically from the resolved
//! `scenario.toml` (MODEL.md version 2, "Campaigns and schedules", "Seeding") and
//! drawn as an inline SVG timeline over the horizon.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use html_escape::encode_text;

/// One row of the calendar: a campaign's window or a seeding's day.
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarEntry {
    /// `campaign` or `seeding`.
    pub kind: &'static str,
    pub name: String,
    /// The first and last day (inclusive, day numbers `t` of the model), or
    /// `None` where the file's value is not a day this report can place.
    pub days: Option<(i64, i64)>,
    /// The window as written in the file (`start – end`, or the seeding's `day`).
    pub when: String,
    /// What it does: a campaign's `set` as `key = value` pairs, a seeding's
    /// users, item and rule.
    pub what: Vec<String>,
}

/// The calendar of `scenario` (a resolved `scenario.toml` read as plain TOML):
/// every campaign, then every seeding, in file order. `start_date` turns
/// dates into day numbers (`t = date − start_date`).
pub fn calendar_entries(scenario: &toml::Table) -> Vec<CalendarEntry> {
    let start_date = scenario
        .get("simulation")
        .and_then(|s| s.get("start_date"))
        .and_then(date_of);
    let day = |value: Option<&toml::Value>| -> Option<i64> {
        match value? {
            toml::Value::Integer(t) => Some(*t),
            other => {
                let date = date_of(other)?;
                let start = start_date?;
                let seconds = match date.duration_since(start) {
                    Ok(after) => i64::try_from(after.as_secs()).ok()?,
                    Err(before) => -i64::try_from(before.duration().as_secs()).ok()?,
                };
                Some(seconds.div_euclid(86_400))
            }
        }
    };
    let mut entries = Vec::new();
    for (i, campaign) in tables(scenario, "campaigns").enumerate() {
        let (start, end) = (campaign.get("start"), campaign.get("end"));
        let mut what = Vec::new();
        if let Some(toml::Value::Table(set)) = campaign.get("set") {
            flatten_set("", set, &mut what);
        }
        entries.push(CalendarEntry {
            kind: "campaign",
            name: name_or(campaign, &format!("campaign {}", i + 1)),
            days: day(start).zip(day(end)),
            when: format!("{} – {}", scalar_text(start), scalar_text(end)),
            what,
        });
    }
    for (i, seeding) in tables(scenario, "seeding").enumerate() {
        let at = day(seeding.get("day"));
        let mut what = Vec::new();
        for key in ["users", "item", "rule", "segment", "cost_per_user"] {
            if let Some(value) = seeding.get(key) {
                what.push(format!("{key} = {}", scalar_text(Some(value))));
            }
        }
        entries.push(CalendarEntry {
            kind: "seeding",
            name: name_or(seeding, &format!("seeding {}", i + 1)),
            days: at.map(|t| (t, t)),
            when: scalar_text(seeding.get("day")),
            what,
        });
    }
    entries
}

/// The tables of the array of tables `key` (`[[key]]`), none if absent.
fn tables<'a>(scenario: &'a toml::Table, key: &str) -> impl Iterator<Item = &'a toml::Table> {
    scenario
        .get(key)
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_table)
}

fn name_or(table: &toml::Table, default: &str) -> String {
    table
        .get("name")
        .and_then(toml::Value::as_str)
        .map_or_else(|| default.to_string(), str::to_string)
}

/// A `set` table as `key.path = value` lines; TOML dotted keys (nested tables)
/// are joined back into key paths.
pub fn flatten_set(prefix: &str, set: &toml::Table, out: &mut Vec<String>) {
    for (key, value) in set {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten_set(&path, inner, out),
            other => out.push(format!("{path} = {}", scalar_text(Some(other)))),
        }
    }
}

/// A TOML value as the report shows it: strings without quotes, `—` if absent.
pub fn scalar_text(value: Option<&toml::Value>) -> String {
    match value {
        None => "—".to_string(),
        Some(toml::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Midnight UTC of a TOML date (a local date, or the date part of a datetime).
fn date_of(value: &toml::Value) -> Option<SystemTime> {
    let date = match value {
        toml::Value::Datetime(datetime) => datetime.date?,
        toml::Value::String(text) => text.parse::<toml::value::Datetime>().ok()?.date?,
        _ => return None,
    };
    humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).ok()
}

/// The date of day `t` after `start` as `YYYY-MM-DD`; `None` outside the years
/// 1970–9999 that RFC 3339 formatting covers.
fn date_label(start: SystemTime, t: i64) -> Option<String> {
    utc_text(day_after(start, t)?).map(|text| text[..10].to_string())
}

fn day_after(start: SystemTime, t: i64) -> Option<SystemTime> {
    let offset = Duration::from_secs(t.unsigned_abs().checked_mul(86_400)?);
    if t >= 0 {
        start.checked_add(offset)
    } else {
        start.checked_sub(offset)
    }
}

/// `moment` as RFC 3339 in UTC to the second (`2026-06-01T00:00:00Z`); `None`
/// before 1970 or after 9999, which the formatting does not cover.
pub fn utc_text(moment: SystemTime) -> Option<String> {
    let seconds = moment.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    (seconds < 253_402_300_800).then(|| humantime::format_rfc3339_seconds(moment).to_string())
}

const WIDTH: f64 = 900.0;
const LABEL_WIDTH: f64 = 230.0;
const RIGHT: f64 = 880.0;
const ROW: f64 = 30.0;
const TOP: f64 = 44.0;

/// The calendar as an inline SVG: one row per entry, a bar over each campaign's
/// window (clipped to days `0..days−1`, with an arrow where it runs past the
/// horizon) and a diamond on each seeding's day; day numbers (or dates, with
/// `simulation.start_date`) along the top. `None` when no entry has days.
pub fn calendar_svg(scenario: &toml::Table, entries: &[CalendarEntry]) -> Option<String> {
    if entries.iter().all(|e| e.days.is_none()) {
        return None;
    }
    let days = scenario
        .get("simulation")
        .and_then(|s| s.get("days"))
        .and_then(toml::Value::as_integer)
        .filter(|&d| d > 0)
        .unwrap_or_else(|| {
            entries
                .iter()
                .filter_map(|e| e.days.map(|(_, last)| last + 1))
                .max()
                .unwrap_or(1)
                .max(1)
        });
    let start_date = scenario
        .get("simulation")
        .and_then(|s| s.get("start_date"))
        .and_then(date_of);
    let x = |t: f64| LABEL_WIDTH + (RIGHT - LABEL_WIDTH) * t / days as f64;
    let height = TOP + ROW * entries.len() as f64 + 12.0;
    let mut svg = format!(
        r##"<svg class="plot calendar" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="campaign calendar" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="14">"##
    );
    let _ = write!(
        svg,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>"##
    );
    // Ticks: at most 10 day numbers or 6 dates, on round steps.
    let most = if start_date.is_some() { 6 } else { 10 };
    let step = [
        1, 2, 5, 7, 10, 14, 15, 30, 60, 90, 180, 365, 730, 1825, 3650,
    ]
    .into_iter()
    .find(|s| days / s < most)
    .unwrap_or(days.max(1));
    let mut t = 0;
    while t <= days {
        let at = x(t as f64);
        let label = start_date
            .and_then(|start| date_label(start, t))
            .unwrap_or_else(|| t.to_string());
        // A label at the right end would run off the image: it ends at its tick.
        let anchor = if at > RIGHT - 45.0 { "end" } else { "middle" };
        let _ = write!(
            svg,
            r##"<line x1="{at:.1}" y1="{}" x2="{at:.1}" y2="{:.1}" stroke="#ccc"/><text x="{at:.1}" y="{}" text-anchor="{anchor}" fill="#333">{}</text>"##,
            TOP - 8.0,
            height - 8.0,
            TOP - 16.0,
            encode_text(&label)
        );
        t += step;
    }
    let axis_name = if start_date.is_some() { "date" } else { "day" };
    let _ = write!(
        svg,
        r##"<text x="8" y="{}" fill="#333" font-style="italic">{axis_name} →</text>"##,
        TOP - 16.0
    );
    for (row, entry) in entries.iter().enumerate() {
        let y = TOP + ROW * row as f64;
        let mid = y + ROW / 2.0;
        let _ = write!(
            svg,
            r##"<text x="8" y="{:.1}" fill="#111">{}</text>"##,
            mid + 5.0,
            encode_text(&shorten(&entry.name, 26))
        );
        let Some((first, last)) = entry.days else {
            let _ = write!(
                svg,
                r##"<text x="{LABEL_WIDTH}" y="{:.1}" fill="#a00">(day not known: {})</text>"##,
                mid + 5.0,
                encode_text(&entry.when)
            );
            continue;
        };
        if entry.kind == "seeding" {
            let at = x(first as f64 + 0.5);
            let _ = write!(
                svg,
                r##"<path d="M {at:.1} {:.1} l 8 8 l -8 8 l -8 -8 z" fill="#c0392b"><title>{}</title></path>"##,
                mid - 8.0,
                encode_text(&format!("{}: day {}", entry.name, entry.when))
            );
            continue;
        }
        let (from, to) = (first.max(0), (last + 1).min(days));
        if to <= from {
            continue;
        }
        let (x0, x1) = (x(from as f64), x(to as f64));
        let _ = write!(
            svg,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="3" fill="#4682b4"><title>{}</title></rect>"##,
            y + 6.0,
            (x1 - x0).max(2.0),
            ROW - 12.0,
            encode_text(&format!("{}: {}", entry.name, entry.when))
        );
        if last + 1 > days {
            let _ = write!(
                svg,
                r##"<path d="M {:.1} {:.1} l 8 {:.1} l -8 {:.1} z" fill="#4682b4"/>"##,
                x1,
                y + 6.0,
                (ROW - 12.0) / 2.0,
                (ROW - 12.0) / 2.0
            );
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}

fn shorten(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        return text.to_string();
    }
    let mut short: String = text.chars().take(most - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn campaign_dates_become_day_numbers_from_start_date() {
        let scenario = table(
            r#"
            [simulation]
            days = 180
            start_date = 2026-01-01
            [[campaigns]]
            name = "summer-sale"
            start = 2026-06-01
            end = 2026-06-18
            set = { "content.annual-vip.price" = 199.0, channels.kol.daily_budget = 6000.0 }
            [[campaigns]]
            name = "by-number"
            start = 3
            end = 4
            set = {}
            "#,
        );
        let entries = calendar_entries(&scenario);
        // 2026-06-01 is day 151 of 2026 counted from 0 (Jan 31 + Feb 28 + Mar 31 + Apr 30 + May 31).
        assert_eq!(entries[0].days, Some((151, 168)));
        assert_eq!(entries[0].name, "summer-sale");
        assert_eq!(
            entries[0].what,
            vec![
                "content.annual-vip.price = 199.0".to_string(),
                "channels.kol.daily_budget = 6000.0".to_string()
            ]
        );
        assert_eq!(entries[1].days, Some((3, 4)));
        let start = date_of(&scenario["simulation"]["start_date"]).unwrap();
        assert_eq!(date_label(start, 151).as_deref(), Some("2026-06-01"));
        assert_eq!(date_label(start, -1).as_deref(), Some("2025-12-31"));
    }

    #[test]
    fn seedings_are_single_days_and_a_date_without_start_date_is_not_placed() {
        let scenario = table(
            r#"
            [[seeding]]
            name = "kol-seed"
            day = 5
            item = "x"
            users = 100
            rule = "random"
            [[campaigns]]
            name = "undated"
            start = 2026-06-01
            end = 2026-06-02
            "#,
        );
        let entries = calendar_entries(&scenario);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].kind, "campaign");
        assert_eq!(entries[0].days, None);
        assert_eq!(entries[1].kind, "seeding");
        assert_eq!(entries[1].days, Some((5, 5)));
        assert!(entries[1].what.contains(&"users = 100".to_string()));
    }

    #[test]
    fn dates_outside_the_formatted_years_are_drawn_as_day_numbers() {
        for start_date in ["1960-01-01", "9999-12-30"] {
            let scenario = table(&format!(
                "[simulation]\ndays = 400\nstart_date = {start_date}\n[[campaigns]]\nname = \"c\"\nstart = 1\nend = 399\n"
            ));
            let entries = calendar_entries(&scenario);
            assert_eq!(entries[0].days, Some((1, 399)));
            let svg = calendar_svg(&scenario, &entries).unwrap();
            assert!(svg.ends_with("</svg>"));
        }
    }

    #[test]
    fn calendar_svg_clips_a_campaign_running_past_the_horizon() {
        let scenario = table(
            r#"
            [simulation]
            days = 10
            [[campaigns]]
            name = "late <&> sale"
            start = 8
            end = 30
            "#,
        );
        let entries = calendar_entries(&scenario);
        let svg = calendar_svg(&scenario, &entries).unwrap();
        // The bar spans days 8..10 of the 650-unit-wide plot area: x from 750 to 880.
        assert!(svg.contains(r#"<rect x="750.0""#), "{svg}");
        assert!(svg.contains(r#"width="130.0""#), "{svg}");
        assert!(svg.contains("late &lt;&amp;&gt; sale"));
        assert!(calendar_svg(&table(""), &[]).is_none());
    }
}
