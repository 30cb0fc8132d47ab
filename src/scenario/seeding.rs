//! `[[seeding]]` (MODEL.md v2, "Seeding"): free access given to chosen users on a
//! day, validated with key paths; the engine's part is `engine::seeding`.

use std::collections::HashMap;

use toml::{Table, Value};

use super::campaigns::DayRules;
use super::load::{
    Bound, Checked, EMPTY, Field, Kind, MAX_MONEY, Names, Validator, did_you_mean, get_str,
    number_of, optional, required,
};
use super::{Scenario, ScenarioError};

/// How a seeding picks its users among the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedingRule {
    /// Uniformly without replacement, from the stream keyed by
    /// `(S, j, seeding index)`.
    Random,
    /// The highest degrees in the whole network first, ties to the lower user
    /// number (needs `[market.network]`).
    TopDegree,
}

/// One `[[seeding]]` entry: on day `day`, up to `users` candidates (users in
/// `Unaware`, `Aware` or `Registered`, of `segment` if given) become `Paying`
/// with item `item` at price 0 (MODEL.md v2, "Seeding").
#[derive(Debug, Clone, PartialEq)]
pub struct Seeding {
    /// Unique among the seedings.
    pub name: String,
    /// In `0..T` (a date in the file is turned into its day number).
    pub day: u32,
    /// Index into `Scenario::content`.
    pub item: usize,
    /// At least 1 in a file; 0 only from `--set`/`--vary`/`--param`/a variant,
    /// where it means "no seeding" (docs/MODEL.md).
    pub users: u32,
    pub rule: SeedingRule,
    /// Index into `Scenario::market.segments`; `None`: every segment.
    pub segment: Option<usize>,
    /// Currency per seeded user, added to the day's spend; >= 0.
    pub cost_per_user: f64,
}

/// The rule names of `rule`, in the order of [`SeedingRule`].
const RULES: &[&str] = &["random", "top-degree"];

/// The keys of one `[[seeding]]` table (`--set seeding.<name>.<key>` addresses
/// them too).
pub(super) const SEEDING_FIELDS: &[Field] = &[
    required("name", Kind::Text),
    required("day", Kind::Day),
    required("item", Kind::Text),
    required(
        "users",
        Kind::Integer {
            min: 0,
            max: u32::MAX as i64,
        },
    ),
    required("rule", Kind::OneOf(RULES)),
    optional("segment", Kind::Text),
    optional("cost_per_user", Kind::Number(Bound::NonNegative)),
    // Written by brandsim (docs/MODEL.md): an override set `users = 0`.
    optional("switched_off", Kind::Boolean),
];

/// Marks with `switched_off = true` each seeding whose `users` an override
/// (`--set`, a sweep point, a variant, a sensitivity sample) set to 0, so that
/// the resolved scenario, written into a study directory and loaded again
/// (`merge`, `--resume`, a variant checked on top of a sweep point), still says
/// why it seeds nobody; a scenario file must give `users >= 1`.
pub(super) fn mark_switched_off(document: &mut Table, set_by: &HashMap<String, String>) {
    if set_by.is_empty() {
        return;
    }
    let Some(Value::Array(entries)) = document.get_mut("seeding") else {
        return;
    };
    for (i, entry) in entries.iter_mut().enumerate() {
        let Some(table) = entry.as_table_mut() else {
            continue;
        };
        let zero = table.get("users").and_then(Value::as_integer) == Some(0);
        if zero && set_by.contains_key(&format!("seeding[{i}].users")) {
            table.insert("switched_off".to_string(), Value::Boolean(true));
        }
    }
}

/// The `[[seeding]]` entries of `document`, checked against `scenario` (its
/// calendar, content, segments and network, after `--set`), in file order.
pub(super) fn parse(
    validator: &Validator<'_>,
    document: &Table,
    scenario: &Scenario,
) -> Checked<Vec<Seeding>> {
    let Some(elements) = document.get("seeding").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let rules = DayRules {
        start_date: scenario.calendar.start_date,
        days: scenario.simulation.days,
        calendar: &scenario.calendar,
    };
    let mut names = Names::new("seeding");
    let mut seedings = Vec::with_capacity(elements.len());
    for (i, element) in elements.iter().enumerate() {
        let path = format!("seeding[{i}]");
        let table = element.as_table().unwrap_or(&EMPTY);
        validator.check_table(&path, table, SEEDING_FIELDS)?;
        let name = get_str(table, "name");
        names.add(validator, &path, &name)?;
        let error = |key: &str, message: String| -> ScenarioError {
            validator.error(
                &Validator::child(&path, key),
                format!("seeding {name:?}: {message}"),
            )
        };
        let day = rules
            .day(&table["day"], false)
            .map_err(|message| error("day", message))?;
        let item_name = get_str(table, "item");
        let item = scenario
            .content
            .iter()
            .position(|item| item.name == item_name)
            .ok_or_else(|| {
                let known: Vec<&str> = scenario.content.iter().map(|i| i.name.as_str()).collect();
                error(
                    "item",
                    format!(
                        "no content item named {item_name:?}; {}content items are: {}",
                        did_you_mean(&item_name, &known),
                        known.join(", ")
                    ),
                )
            })?;
        let users_path = Validator::child(&path, "users");
        let users = table
            .get("users")
            .and_then(Value::as_integer)
            .and_then(|users| u32::try_from(users).ok())
            .unwrap_or(0);
        let switched_off = table.get("switched_off").and_then(Value::as_bool) == Some(true);
        if users == 0 && !switched_off && !validator.set_by.contains_key(&users_path) {
            return Err(error(
                "users",
                "expected an integer >= 1, found 0 (users = 0 is accepted only from --set, \
                 --vary, --param or a variant, where it means no seeding; remove the \
                 [[seeding]] table instead)"
                    .to_string(),
            ));
        }
        let rule = match table.get("rule").and_then(Value::as_str) {
            Some("top-degree") => SeedingRule::TopDegree,
            _ => SeedingRule::Random,
        };
        if rule == SeedingRule::TopDegree && !has_network(scenario) {
            return Err(error(
                "rule",
                "\"top-degree\" needs a network to rank users by degree, and the scenario \
                 has no [market.network]; add one, or use rule = \"random\""
                    .to_string(),
            ));
        }
        let segment = match table.get("segment").and_then(Value::as_str) {
            None => None,
            Some(segment_name) => Some(
                scenario
                    .market
                    .segments
                    .iter()
                    .position(|segment| segment.name == segment_name)
                    .ok_or_else(|| {
                        let known: Vec<&str> = scenario
                            .market
                            .segments
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect();
                        error(
                            "segment",
                            format!(
                                "no segment named {segment_name:?}; {}segments are: {}",
                                did_you_mean(segment_name, &known),
                                known.join(", ")
                            ),
                        )
                    })?,
            ),
        };
        let cost_per_user = table
            .get("cost_per_user")
            .and_then(number_of)
            .unwrap_or(0.0);
        if cost_per_user * f64::from(users) > MAX_MONEY {
            return Err(error(
                "cost_per_user",
                format!(
                    "users·cost_per_user = {users}·{cost_per_user:?} exceeds {MAX_MONEY:e}, \
                     beyond which money totals and their statistics overflow; expected a \
                     smaller cost_per_user"
                ),
            ));
        }
        seedings.push(Seeding {
            name,
            day,
            item,
            users,
            rule,
            segment,
            cost_per_user,
        });
    }
    Ok(seedings)
}

/// Whether the scenario has a social network (which `top-degree` ranks by).
fn has_network(scenario: &Scenario) -> bool {
    scenario.market.network.is_some()
}

#[cfg(test)]
mod tests {
    use crate::scenario::parse_str;

    fn with_seeding(seeding: &str) -> String {
        format!(
            "{}\n[[seeding]]\n{seeding}\n",
            include_str!("../../scenarios/knowledge_platform.toml")
        )
    }

    #[test]
    fn a_seeding_is_read_with_its_item_segment_and_day() {
        let text = with_seeding(
            "name = \"kol\"\nday = 3\nitem = \"tech-pro-monthly\"\nusers = 100\n\
             rule = \"random\"\nsegment = \"students\"\ncost_per_user = 5",
        );
        let scenario = parse_str(&text, "s.toml").unwrap_or_else(|e| panic!("{e}"));
        let seeding = &scenario.seeding[0];
        assert_eq!(
            (seeding.day, seeding.users, seeding.cost_per_user),
            (3, 100, 5.0)
        );
        assert_eq!(
            scenario.content[seeding.item].name,
            "tech-pro-monthly".to_string()
        );
        assert_eq!(
            scenario.market.segments[seeding.segment.unwrap()].name,
            "students"
        );
    }

    #[test]
    fn bad_seedings_are_rejected_with_their_key_path() {
        let cases = [
            (
                "name = \"a\"\nday = 0\nitem = \"nope\"\nusers = 1\nrule = \"random\"",
                "seeding[0].item",
                "no content item named \"nope\"",
            ),
            (
                "name = \"a\"\nday = 0\nitem = \"tech-pro-monthly\"\nusers = 0\nrule = \"random\"",
                "seeding[0].users",
                "expected an integer >= 1",
            ),
            (
                "name = \"a\"\nday = 0\nitem = \"tech-pro-monthly\"\nusers = -2\nrule = \"random\"",
                "seeding[0].users",
                "expected an integer",
            ),
            (
                "name = \"a\"\nday = 999\nitem = \"tech-pro-monthly\"\nusers = 1\nrule = \"random\"",
                "seeding[0].day",
                "outside the horizon",
            ),
            (
                "name = \"a\"\nday = -1\nitem = \"tech-pro-monthly\"\nusers = 1\nrule = \"random\"",
                "seeding[0].day",
                "negative day",
            ),
            (
                "name = \"a\"\nday = 2026-01-05\nitem = \"tech-pro-monthly\"\nusers = 1\nrule = \"random\"",
                "seeding[0].day",
                "needs simulation.start_date",
            ),
            (
                "name = \"a\"\nday = 0\nitem = \"tech-pro-monthly\"\nusers = 1\nrule = \"top-degree\"",
                "seeding[0].rule",
                "needs a network",
            ),
            (
                "name = \"a\"\nday = 0\nitem = \"tech-pro-monthly\"\nusers = 1\nrule = \"best\"",
                "seeding[0].rule",
                "expected one of \"random\", \"top-degree\"",
            ),
            (
                "name = \"a\"\nday = 0\nitem = \"tech-pro-monthly\"\nusers = 1\nrule = \"random\"\nsegment = \"student\"",
                "seeding[0].segment",
                "did you mean \"students\"?",
            ),
            (
                "name = \"a\"\nday = 0\nitem = \"tech-pro-monthly\"\nusers = 1\nrule = \"random\"\ncost_per_user = -1",
                "seeding[0].cost_per_user",
                "expected a number >= 0",
            ),
            (
                "name = \"a\"\nday = 0\nitem = \"tech-pro-monthly\"\nusers = 1\nrule = \"random\"\ncolour = 1",
                "seeding[0].colour",
                "unknown key",
            ),
            (
                "name = \"a\"\nday = 0\nitem = \"tech-pro-monthly\"\nrule = \"random\"",
                "seeding[0].users",
                "missing required key \"users\"",
            ),
            (
                "name = \"a\"\nday = 0\nitem = \"tech-pro-monthly\"\nusers = 1\nrule = \"random\"\n\
                 [[seeding]]\nname = \"a\"\nday = 1\nitem = \"tech-pro-monthly\"\nusers = 1\nrule = \"random\"",
                "seeding[1].name",
                "duplicate seeding name \"a\"",
            ),
        ];
        for (body, path, message) in cases {
            let error = parse_str(&with_seeding(body), "s.toml").unwrap_err();
            assert_eq!(error.key_path, path, "{body}: {error}");
            assert!(error.message.contains(message), "{body}: {error}");
            assert!(error.line.is_some(), "{body}: {error}");
        }
    }
}
