//! The calendar of a scenario (MODEL.md v2, "The calendar", "Campaigns and
//! schedules"): the start date, the discount rate, campaigns and the schedule, and
//! their resolution into the values every time-varying key takes on each day.

use chrono::NaiveDate;

use super::Scenario;

/// `[simulation] start_date`, `discount_rate`, `[[campaigns]]` and `[schedule]`,
/// checked: every campaign and schedule day lies in the horizon (a campaign's `end`
/// may lie past it), no two sources set one key on one day, every value is in the
/// range of its key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Calendar {
    /// Day 0 is this date; day `t` is `start_date + t` days.
    pub start_date: Option<NaiveDate>,
    /// `r >= 0`, per year, for `npv` (MODEL.md v2, "The calendar").
    pub discount_rate: f64,
    /// In file order.
    pub campaigns: Vec<Campaign>,
    /// Rows of the schedule, in file order; days unique and in the horizon.
    pub schedule: Vec<ScheduleRow>,
    /// The schedule file as the scenario names it (`[schedule] file`), for messages.
    pub schedule_source: Option<String>,
}

/// One `[[campaigns]]` entry: values that hold on days `start..=end`.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// Unique among campaigns.
    pub name: String,
    /// First day, in `0..T`.
    pub start: u32,
    /// Last day, inclusive, `>= start`; may lie past the horizon.
    pub end: u32,
    /// The values it sets, in file order, each key at most once.
    pub set: Vec<(TimeVaryingKey, f64)>,
}

impl Campaign {
    /// Whether day `t` lies in the campaign's window.
    pub fn holds(&self, t: u32) -> bool {
        self.start <= t && t <= self.end
    }
}

/// One row of the schedule: the values it sets on its day.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRow {
    pub day: u32,
    /// Each key at most once; empty cells are left out.
    pub set: Vec<(TimeVaryingKey, f64)>,
}

/// A key that takes a value per day (MODEL.md v2, "Campaigns and schedules"), with
/// its segment, item or channel as an index into the scenario's lists. Values are
/// numbers; `available` is 1 (true) or 0 (false).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeVaryingKey {
    DailyBudget { channel: usize },
    Cpm { channel: usize },
    Price { item: usize },
    Promotion { item: usize },
    ClickRate { item: usize },
    ConversionRate { item: usize },
    Quality { item: usize },
    Available { item: usize },
    BrandValue,
    CostPerDay,
    TopicMatch,
    WordOfMouth,
    Dormancy,
    Targeting { segment: usize, channel: usize },
}

/// The key names of each time-varying table, for messages.
pub const TIME_VARYING_KEYS: &str = "channels.<c>.daily_budget, channels.<c>.cpm, \
content.<i>.{price, promotion, click_rate, conversion_rate, quality, available}, \
brand.value, brand.cost_per_day, brand.topic_match, market.word_of_mouth, \
market.dormancy, market.segments.<s>.targeting.<c>";

impl TimeVaryingKey {
    /// The key's value in `scenario`.
    pub fn value_in(self, scenario: &Scenario) -> f64 {
        use TimeVaryingKey::*;
        match self {
            DailyBudget { channel } => scenario.channels[channel].daily_budget,
            Cpm { channel } => scenario.channels[channel].cpm,
            Price { item } => scenario.content[item].price,
            Promotion { item } => scenario.content[item].promotion,
            ClickRate { item } => scenario.content[item].click_rate,
            ConversionRate { item } => scenario.content[item].conversion_rate,
            Quality { item } => scenario.content[item].quality,
            Available { item } => f64::from(u8::from(scenario.content[item].available)),
            BrandValue => scenario.brand.value,
            CostPerDay => scenario.brand.cost_per_day,
            TopicMatch => scenario.brand.topic_match,
            WordOfMouth => scenario.market.word_of_mouth,
            Dormancy => scenario.market.dormancy,
            Targeting { segment, channel } => scenario.market.segments[segment].targeting[channel],
        }
    }

    /// Puts `value` in `scenario`'s field for this key.
    pub fn set_in(self, scenario: &mut Scenario, value: f64) {
        use TimeVaryingKey::*;
        let field = match self {
            DailyBudget { channel } => &mut scenario.channels[channel].daily_budget,
            Cpm { channel } => &mut scenario.channels[channel].cpm,
            Price { item } => &mut scenario.content[item].price,
            Promotion { item } => &mut scenario.content[item].promotion,
            ClickRate { item } => &mut scenario.content[item].click_rate,
            ConversionRate { item } => &mut scenario.content[item].conversion_rate,
            Quality { item } => &mut scenario.content[item].quality,
            Available { item } => {
                scenario.content[item].available = value != 0.0;
                return;
            }
            BrandValue => &mut scenario.brand.value,
            CostPerDay => &mut scenario.brand.cost_per_day,
            TopicMatch => &mut scenario.brand.topic_match,
            WordOfMouth => &mut scenario.market.word_of_mouth,
            Dormancy => &mut scenario.market.dormancy,
            Targeting { segment, channel } => {
                &mut scenario.market.segments[segment].targeting[channel]
            }
        };
        *field = value;
    }

    /// The key path with names, as `--set` and the schedule write it:
    /// `content.annual-vip.price`.
    pub fn path(self, scenario: &Scenario) -> String {
        use TimeVaryingKey::*;
        let channel = |k: usize| &scenario.channels[k].name;
        let item = |i: usize| &scenario.content[i].name;
        match self {
            DailyBudget { channel: k } => format!("channels.{}.daily_budget", channel(k)),
            Cpm { channel: k } => format!("channels.{}.cpm", channel(k)),
            Price { item: i } => format!("content.{}.price", item(i)),
            Promotion { item: i } => format!("content.{}.promotion", item(i)),
            ClickRate { item: i } => format!("content.{}.click_rate", item(i)),
            ConversionRate { item: i } => format!("content.{}.conversion_rate", item(i)),
            Quality { item: i } => format!("content.{}.quality", item(i)),
            Available { item: i } => format!("content.{}.available", item(i)),
            BrandValue => "brand.value".to_string(),
            CostPerDay => "brand.cost_per_day".to_string(),
            TopicMatch => "brand.topic_match".to_string(),
            WordOfMouth => "market.word_of_mouth".to_string(),
            Dormancy => "market.dormancy".to_string(),
            Targeting {
                segment,
                channel: k,
            } => format!(
                "market.segments.{}.targeting.{}",
                scenario.market.segments[segment].name,
                channel(k)
            ),
        }
    }

    /// Whether the key is `content.<i>.available` (a boolean, not a number).
    pub fn is_boolean(self) -> bool {
        matches!(self, TimeVaryingKey::Available { .. })
    }
}

impl Calendar {
    /// Whether any value changes over time (a campaign or a schedule row).
    pub fn is_time_varying(&self) -> bool {
        !self.campaigns.is_empty() || !self.schedule.is_empty()
    }

    /// The date of day `t`, when the scenario has a start date.
    pub fn date_of(&self, t: u32) -> Option<NaiveDate> {
        self.start_date
            .and_then(|start| start.checked_add_days(chrono::Days::new(u64::from(t))))
    }

    /// The `date` of day `t` as ISO 8601 (`2026-06-01`), or `None` without a start date.
    pub fn date_text(&self, t: u32) -> Option<String> {
        self.date_of(t)
            .map(|date| date.format("%Y-%m-%d").to_string())
    }

    /// The values set on day `t`, sorted by key: schedule cells, then campaign
    /// values (never the same key twice: validation rejects overlaps).
    pub fn assignments_on(&self, t: u32) -> Vec<(TimeVaryingKey, f64)> {
        let mut set: Vec<(TimeVaryingKey, f64)> = self
            .schedule
            .iter()
            .filter(|row| row.day == t)
            .flat_map(|row| row.set.iter().copied())
            .chain(
                self.campaigns
                    .iter()
                    .filter(|campaign| campaign.holds(t))
                    .flat_map(|campaign| campaign.set.iter().copied()),
            )
            .collect();
        set.sort_by_key(|&(key, _)| key);
        set
    }

    /// The discount factor of day `t`: `(1 + r)^(−t/365)` (MODEL.md v2, `npv`).
    pub fn discount_factor(&self, t: usize) -> f64 {
        (1.0 + self.discount_rate).powf(-(t as f64) / 365.0)
    }
}

/// The values the time-varying keys take on each day of the horizon (MODEL.md
/// v2: the schedule's cell, else the campaign's value, else the base value), as
/// the set of values that differ from the base scenario. Consecutive days with
/// the same set share one *version*, so a consumer rebuilds what depends on the
/// values only on a day whose version differs from the day before, and holds one
/// day's scenario at a time (never one copy per day). Empty for a scenario whose
/// values never change (no campaign, no schedule).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// The version of each day: an index into `sets`.
    versions: Vec<usize>,
    /// Each version's values, sorted by key; an empty set is the base scenario.
    sets: Vec<Vec<(TimeVaryingKey, f64)>>,
}

impl Timeline {
    /// Resolves the calendar of `scenario` day by day.
    pub fn new(scenario: &Scenario) -> Self {
        let calendar = &scenario.calendar;
        if !calendar.is_time_varying() {
            return Timeline::default();
        }
        let mut timeline = Timeline::default();
        for t in 0..scenario.simulation.days {
            let set = calendar.assignments_on(t);
            let same = timeline.sets.last().is_some_and(|last| {
                last.len() == set.len()
                    && last
                        .iter()
                        .zip(&set)
                        .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits())
            });
            if !same {
                timeline.sets.push(set);
            }
            timeline.versions.push(timeline.sets.len() - 1);
        }
        timeline
    }

    /// The version of day `t`'s values, or `None` when they never change.
    pub fn version_on(&self, t: u32) -> Option<usize> {
        self.versions.get(t as usize).copied()
    }

    /// The values that version `version` sets (empty: the base values).
    pub fn set_of(&self, version: usize) -> &[(TimeVaryingKey, f64)] {
        &self.sets[version]
    }

    /// The first day of each version, with the version.
    pub fn changes(&self) -> impl Iterator<Item = (u32, usize)> + '_ {
        self.versions
            .iter()
            .enumerate()
            .filter(|&(t, &v)| t == 0 || self.versions[t - 1] != v)
            .map(|(t, &v)| (t as u32, v))
    }

    /// `scenario` with `set` applied (a cheap copy: the calendar is shared).
    pub fn day_scenario(scenario: &Scenario, set: &[(TimeVaryingKey, f64)]) -> Scenario {
        let mut day = scenario.clone();
        for &(key, value) in set {
            key.set_in(&mut day, value);
        }
        day
    }

    /// The value of `key` on each day, given the base scenario.
    pub fn values_of(&self, scenario: &Scenario, key: TimeVaryingKey) -> Vec<f64> {
        let base = key.value_in(scenario);
        self.versions
            .iter()
            .map(|&v| {
                self.sets[v]
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or(base, |&(_, value)| value)
            })
            .collect()
    }

    /// Every key that takes more than one value over the horizon, with its value on
    /// each day (for the plot of time-varying values), in key order.
    pub fn changing_keys(&self, scenario: &Scenario) -> Vec<(TimeVaryingKey, Vec<f64>)> {
        let mut keys: Vec<TimeVaryingKey> = self
            .sets
            .iter()
            .flat_map(|set| set.iter().map(|&(key, _)| key))
            .collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter_map(|key| {
                let values = self.values_of(scenario, key);
                let changes = values.iter().any(|v| v.to_bits() != values[0].to_bits());
                changes.then_some((key, values))
            })
            .collect()
    }
}

/// Parses an ISO 8601 date `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

/// The date of a TOML local date (`2026-06-01`, no time, no offset).
pub fn toml_local_date(value: &toml::Value) -> Option<NaiveDate> {
    let toml::Value::Datetime(datetime) = value else {
        return None;
    };
    match (datetime.date, datetime.time, datetime.offset) {
        (Some(date), None, None) => NaiveDate::from_ymd_opt(
            i32::from(date.year),
            u32::from(date.month),
            u32::from(date.day),
        ),
        _ => None,
    }
}

/// A date as a TOML local date value.
pub fn toml_date(date: NaiveDate) -> toml::Value {
    use chrono::Datelike;
    toml::Value::Datetime(toml::value::Datetime {
        date: Some(toml::value::Date {
            year: date.year() as u16,
            month: date.month() as u8,
            day: date.day() as u8,
        }),
        time: None,
        offset: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn scenario_with(calendar: Calendar) -> Scenario {
        let mut scenario =
            crate::scenario::parse_str(include_str!("../../scenarios/bass.toml"), "bass.toml")
                .unwrap();
        scenario.simulation.days = 10;
        scenario.calendar = Arc::new(calendar);
        scenario
    }

    #[test]
    fn a_key_takes_the_schedule_cell_else_the_campaign_else_the_base_value() {
        let budget = TimeVaryingKey::DailyBudget { channel: 0 };
        let cpm = TimeVaryingKey::Cpm { channel: 0 };
        let scenario = scenario_with(Calendar {
            campaigns: vec![Campaign {
                name: "pulse".into(),
                start: 2,
                end: 4,
                set: vec![(budget, 500.0)],
            }],
            schedule: vec![ScheduleRow {
                day: 3,
                set: vec![(cpm, 7.0)],
            }],
            ..Calendar::default()
        });
        let b = scenario.channels[0].daily_budget;
        let c = scenario.channels[0].cpm;
        let timeline = Timeline::new(&scenario);
        let budgets = timeline.values_of(&scenario, budget);
        assert_eq!(budgets, [b, b, 500.0, 500.0, 500.0, b, b, b, b, b]);
        let cpms = timeline.values_of(&scenario, cpm);
        assert_eq!(cpms, [c, c, c, 7.0, c, c, c, c, c, c]);
        // A new version only where the values change: days 0, 2, 3, 4, 5.
        let changes: Vec<u32> = timeline.changes().map(|(t, _)| t).collect();
        assert_eq!(changes, [0, 2, 3, 4, 5]);
        assert!(timeline.set_of(timeline.version_on(0).unwrap()).is_empty());
        let day3 =
            Timeline::day_scenario(&scenario, timeline.set_of(timeline.version_on(3).unwrap()));
        assert_eq!((budget.value_in(&day3), cpm.value_in(&day3)), (500.0, 7.0));
        let changing: Vec<TimeVaryingKey> = timeline
            .changing_keys(&scenario)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(changing, vec![budget, cpm]);
    }

    #[test]
    fn a_scenario_without_calendar_has_an_empty_timeline() {
        let scenario = scenario_with(Calendar::default());
        let timeline = Timeline::new(&scenario);
        assert!(timeline.version_on(0).is_none());
        assert!(timeline.changing_keys(&scenario).is_empty());
    }

    #[test]
    fn dates_count_days_from_the_start_date_across_months_and_leap_days() {
        let calendar = Calendar {
            start_date: parse_date("2028-02-27"),
            ..Calendar::default()
        };
        assert_eq!(calendar.date_text(0).unwrap(), "2028-02-27");
        assert_eq!(calendar.date_text(2).unwrap(), "2028-02-29");
        assert_eq!(calendar.date_text(3).unwrap(), "2028-03-01");
        assert_eq!(Calendar::default().date_text(3), None);
        let value: toml::Value = toml_date(parse_date("2026-06-01").unwrap());
        assert_eq!(toml_local_date(&value), parse_date("2026-06-01"));
    }

    #[test]
    fn discount_factor_is_one_at_r_zero_and_a_year_discounts_by_one_plus_r() {
        let calendar = Calendar {
            discount_rate: 0.1,
            ..Calendar::default()
        };
        assert!((calendar.discount_factor(365) - 1.0 / 1.1).abs() < 1e-15);
        assert_eq!(Calendar::default().discount_factor(100), 1.0);
    }
}
