//! `--set KEY=VALUE` overrides: parsing an assignment and applying it to a scenario
//! document, with segments, content items and channels addressed by name.
//!
//! Key forms: `name`, `simulation.days`, `market.population`, `brand.value`,
//! `optimize.estimator`, `market.segments.<segment>.<key>` (and `.topics.<topic>`,
//! `.targeting.<channel>`), `content.<item>.<key>`, `channels.<channel>.<key>`,
//! `seeding.<name>.<key>` (`users`, `day`, `cost_per_user`, ...); a list
//! entry can also be given by index: `channels[0].cpm`. Names may contain dots or
//! spaces: the longest name that fits wins. Values are only placed here; their types
//! and ranges are checked by the normal validation, which reports them `(from --set)`.

use std::collections::HashMap;

use toml::{Table, Value};

use super::load::{
    BRAND_FIELDS, CHANNEL_FIELDS, CONTENT_FIELDS, Field, Kind, MARKET_FIELDS, OPTIMIZE_FIELDS,
    SEGMENT_FIELDS, SIMULATION_FIELDS, ScenarioError, ScenarioSource, TOP_FIELDS, push_key,
    unknown_key_message,
};

/// One `--set KEY=VALUE`: a key path of the scenario and the TOML value to put there.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub key: String,
    pub value: Value,
}

/// Parses `KEY=VALUE`. The value is read as a TOML value (`42` an integer, `0.5` a
/// float, `true`, `"text"`); anything that is not one, like `fd`, is taken as a string.
pub fn parse_assignment(text: &str) -> Result<Assignment, ScenarioError> {
    let error = |key_path: &str, message: String| ScenarioError {
        file: "--set".to_string(),
        key_path: key_path.to_string(),
        line: None,
        message,
    };
    let Some((key, value)) = text.split_once('=') else {
        return Err(error("", format!("expected KEY=VALUE, found {text:?}")));
    };
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() {
        return Err(error(
            "",
            format!("expected a key before '=', found {text:?}"),
        ));
    }
    if value.is_empty() {
        return Err(error(
            key,
            "expected a value after '=' (write \"\" for an empty string)".to_string(),
        ));
    }
    let value = value
        .parse::<Value>()
        .unwrap_or_else(|_| Value::String(value.to_string()));
    Ok(Assignment {
        key: key.to_string(),
        value,
    })
}

/// Applies `assignments` in order. Returns, for each key path set, the key as the
/// user gave it (so validation can report `(from --set)` instead of a line).
pub(super) fn apply_assignments(
    document: &mut Table,
    assignments: &[Assignment],
    file: &str,
) -> Result<HashMap<String, String>, ScenarioError> {
    let mut set_by = HashMap::new();
    for assignment in assignments {
        let error = |message: String| ScenarioError {
            file: file.to_string(),
            key_path: assignment.key.clone(),
            line: None,
            message: format!("{message} (from --set)"),
        };
        let steps = locate(document, &assignment.key).map_err(error)?;
        set(document, &steps, assignment.value.clone()).map_err(error)?;
        set_by.insert(key_path(&steps), assignment.key.clone());
    }
    Ok(set_by)
}

/// One step from a table to a value: a key of a table or an index into a list.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// The canonical key path of `steps`, as validation names it: `channels[3].cpm`.
pub(super) fn key_path(steps: &[Step]) -> String {
    let mut path = String::new();
    for step in steps {
        match step {
            Step::Key(key) => push_key(&mut path, key),
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

fn key(name: &str) -> Step {
    Step::Key(name.to_string())
}

/// The steps to the value that `key` names in `document`.
pub(super) fn locate(document: &Table, key: &str) -> Result<Vec<Step>, String> {
    let split = key.find(['.', '[']).unwrap_or(key.len());
    let (head, rest) = key.split_at(split);
    match head {
        "name" if rest.is_empty() => Ok(vec![self::key("name")]),
        "simulation" => field(vec![self::key(head)], rest, SIMULATION_FIELDS),
        "brand" => field(vec![self::key(head)], rest, BRAND_FIELDS),
        "optimize" => field(vec![self::key(head)], rest, OPTIMIZE_FIELDS),
        "market" => match rest.strip_prefix(".segments") {
            Some(entry) if entry.starts_with(['.', '[']) => {
                let segments = document
                    .get("market")
                    .and_then(Value::as_table)
                    .and_then(|market| market.get("segments"));
                let steps = vec![self::key("market"), self::key("segments")];
                list_entry(steps, segments, entry, List::SEGMENTS)
            }
            _ => match rest.strip_prefix(".network") {
                Some(network) if network.starts_with('.') => field(
                    vec![self::key("market"), self::key("network")],
                    network,
                    super::network::NETWORK_FIELDS,
                ),
                _ => field(vec![self::key(head)], rest, MARKET_FIELDS),
            },
        },
        "content" => list_entry(
            vec![self::key(head)],
            document.get(head),
            rest,
            List::CONTENT,
        ),
        "channels" => list_entry(
            vec![self::key(head)],
            document.get(head),
            rest,
            List::CHANNELS,
        ),
        "campaigns" => campaign_key(document, rest),
        "seeding" => list_entry(
            vec![self::key(head)],
            document.get(head),
            rest,
            List::SEEDING,
        ),
        "schedule" => Err(
            "the schedule cannot be set with --set; edit its file, or set the key with a campaign"
                .to_string(),
        ),
        "variants" => Err(
            "variants cannot be set with --set; edit them in the file (brandsim compare runs each)"
                .to_string(),
        ),
        _ if TOP_FIELDS.iter().any(|field| field.key == head) => Err(format!(
            "{head:?} cannot be set as a whole; set one of its keys"
        )),
        _ => Err(unknown_key_message(head, TOP_FIELDS)),
    }
}

/// `campaigns.<name>.start`, `.end` or `.<time-varying key path>` (`rest` after
/// `campaigns`): the campaign by its name (the longest that fits), then its
/// `start`, `end` or the key of its `set`. Whether the key is time-varying is
/// checked by validation, like every value.
fn campaign_key(document: &Table, rest: &str) -> Result<Vec<Step>, String> {
    let entries = document
        .get("campaigns")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let names: Vec<&str> = entries
        .iter()
        .map(|entry| {
            entry
                .as_table()
                .and_then(|table| table.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
        })
        .collect();
    let Some(named) = rest.strip_prefix('.') else {
        return Err(format!(
            "expected campaigns.<name>.start, .end or .<key path>, found \"campaigns{rest}\""
        ));
    };
    let best = names
        .iter()
        .enumerate()
        .filter(|(_, name)| {
            named
                .strip_prefix(**name)
                .is_some_and(|after| after.starts_with('.') && after.len() > 1)
        })
        .max_by_key(|(i, name)| (name.len(), std::cmp::Reverse(*i)));
    let Some((index, name)) = best else {
        let known = if names.is_empty() {
            "there are no [[campaigns]]".to_string()
        } else {
            format!("campaigns are: {}", names.join(", "))
        };
        let guess = named.split('.').next().unwrap_or(named);
        return Err(format!("no campaign named {guess:?}; {known}"));
    };
    let key_path = &named[name.len() + 1..];
    let mut steps = vec![key("campaigns"), Step::Index(index)];
    match key_path {
        "start" | "end" => steps.push(key(key_path)),
        "name" | "set" => {
            return Err(format!(
                "campaigns.{name}.{key_path} cannot be set; set start, end or a key path it sets"
            ));
        }
        _ => {
            steps.push(key("set"));
            steps.push(key(key_path));
        }
    }
    Ok(steps)
}

/// A list of named tables that keys address by name or index.
struct List {
    /// What one entry is called in messages.
    noun: &'static str,
    plural: &'static str,
    fields: &'static [Field],
}

impl List {
    const SEGMENTS: List = List {
        noun: "segment",
        plural: "segments",
        fields: SEGMENT_FIELDS,
    };
    const CONTENT: List = List {
        noun: "content item",
        plural: "content items",
        fields: CONTENT_FIELDS,
    };
    const CHANNELS: List = List {
        noun: "channel",
        plural: "channels",
        fields: CHANNEL_FIELDS,
    };
    const SEEDING: List = List {
        noun: "seeding",
        plural: "seedings",
        fields: super::seeding::SEEDING_FIELDS,
    };
}

/// Resolves `.<name>.<key>` or `[<index>].<key>` (`rest`) in the list at `steps`.
fn list_entry(
    mut steps: Vec<Step>,
    list: Option<&Value>,
    rest: &str,
    kind: List,
) -> Result<Vec<Step>, String> {
    let entries = list
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some(indexed) = rest.strip_prefix('[') {
        let (index, after) = indexed
            .split_once(']')
            .ok_or_else(|| format!("expected [<index>] after the list name, found {rest:?}"))?;
        let index: usize = index
            .trim()
            .parse()
            .map_err(|_| format!("expected a list index like [0], found [{index}]"))?;
        if index >= entries.len() {
            return Err(format!(
                "no {} at index {index}; there are {} {}",
                kind.noun,
                entries.len(),
                kind.plural
            ));
        }
        steps.push(Step::Index(index));
        return field(steps, after, kind.fields);
    }
    let Some(named) = rest.strip_prefix('.') else {
        return Err(format!(
            "expected .<name>.<key> or [<index>].<key> after the list name, found {rest:?}"
        ));
    };
    let names: Vec<&str> = entries
        .iter()
        .map(|entry| {
            entry
                .as_table()
                .and_then(|table| table.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
        })
        .collect();
    let best = names
        .iter()
        .enumerate()
        .filter(|(_, name)| {
            named
                .strip_prefix(**name)
                .is_some_and(|after| after.is_empty() || after.starts_with('.'))
        })
        .max_by_key(|(i, name)| (name.len(), std::cmp::Reverse(*i)));
    let Some((index, name)) = best else {
        let known = if names.is_empty() {
            format!("there are no {}", kind.plural)
        } else {
            format!("{} are: {}", kind.plural, names.join(", "))
        };
        let guess = guess_name(named);
        return Err(format!(
            "no {} named {:?}; {}{known}",
            kind.noun,
            guess,
            super::load::did_you_mean(guess, &names)
        ));
    };
    steps.push(Step::Index(index));
    field(steps, &named[name.len()..], kind.fields)
}

/// The name the user probably meant in `<name>.<key>[.<sub>]`, for a message.
fn guess_name(named: &str) -> &str {
    for weights in [".topics.", ".targeting."] {
        if let Some(at) = named.find(weights) {
            return &named[..at];
        }
    }
    named.rsplit_once('.').map_or(named, |(name, _)| name)
}

/// Resolves `.<key>` (or `.<key>.<name>` for `topics`/`targeting`) in a table of `fields`.
fn field(mut steps: Vec<Step>, rest: &str, fields: &[Field]) -> Result<Vec<Step>, String> {
    let table = key_path(&steps);
    let Some(rest) = rest.strip_prefix('.').filter(|rest| !rest.is_empty()) else {
        let keys: Vec<&str> = fields.iter().map(|field| field.key).collect();
        return Err(format!(
            "{table} cannot be set as a whole; set one of its keys: {}",
            keys.join(", ")
        ));
    };
    let (name, sub) = match rest.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest, None),
    };
    let Some(field) = fields.iter().find(|field| field.key == name) else {
        return Err(unknown_key_message(name, fields));
    };
    steps.push(key(field.key));
    match (field.kind, sub) {
        (Kind::Weights(_), Some(sub)) if !sub.is_empty() => {
            steps.push(key(sub));
            Ok(steps)
        }
        (Kind::Weights(_), _) => Err(format!(
            "{} is a table of weights; set one entry as {}.<name>",
            key_path(&steps),
            key_path(&steps)
        )),
        (Kind::Table | Kind::Tables, _) => Err(format!(
            "{} cannot be set as a whole; set one of its keys",
            key_path(&steps)
        )),
        (_, Some(_)) => Err(format!(
            "{} is {}, not a table, so it has no key {:?}",
            key_path(&steps),
            field.kind_noun(),
            rest[name.len() + 1..].to_string()
        )),
        (_, None) => Ok(steps),
    }
}

impl Field {
    fn kind_noun(&self) -> &'static str {
        match self.kind {
            Kind::Integer { .. } => "an integer",
            Kind::Number(_) => "a number",
            _ => "a string",
        }
    }
}

/// Puts `value` at `steps`, creating missing tables (an absent `[optimize]`, a
/// segment without `targeting`) on the way.
fn set(table: &mut Table, steps: &[Step], value: Value) -> Result<(), String> {
    let mut current = table;
    let mut walked: Vec<Step> = Vec::new();
    let Some((last, parents)) = steps.split_last() else {
        return Err("empty key".to_string());
    };
    let mut steps = parents.iter().peekable();
    while let Some(step) = steps.next() {
        let Step::Key(name) = step else {
            return Err("a list index must follow a list".to_string());
        };
        walked.push(step.clone());
        let mut child = current
            .entry(name.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if let Some(Step::Index(i)) = steps.peek() {
            let i = *i;
            steps.next();
            walked.push(Step::Index(i));
            child = child
                .as_array_mut()
                .and_then(|entries| entries.get_mut(i))
                .ok_or_else(|| format!("{} is not in the file", key_path(&walked)))?;
        }
        current = match child {
            Value::Table(table) => table,
            other => {
                return Err(format!(
                    "cannot set a key inside {}: the file has {} there, not a table",
                    key_path(&walked),
                    other.type_str()
                ));
            }
        };
    }
    match last {
        Step::Key(name) => {
            current.insert(name.clone(), value);
            Ok(())
        }
        Step::Index(_) => Err("cannot replace a whole list entry".to_string()),
    }
}

impl ScenarioSource {
    /// The value at key path `key` (as `--set` names it), or `None` when the file
    /// leaves that optional key out. `optimize` starts its search from it.
    pub fn value_at(&self, key: &str) -> Result<Option<Value>, ScenarioError> {
        let steps = locate(&self.document, key).map_err(|message| ScenarioError {
            file: self.file.clone(),
            key_path: key.to_string(),
            line: None,
            message,
        })?;
        let mut current: Option<&Value> = None;
        for step in &steps {
            current = match (current, step) {
                (None, Step::Key(name)) => self.document.get(name),
                (Some(Value::Table(table)), Step::Key(name)) => table.get(name),
                (Some(Value::Array(entries)), Step::Index(i)) => entries.get(*i),
                _ => None,
            };
            if current.is_none() {
                return Ok(None);
            }
        }
        Ok(current.cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Table {
        r#"
            [market]
            population = 10
            [[market.segments]]
            name = "students"
            topics = { tech = 1.0 }
            [[market.segments]]
            name = "students.night"
            topics = { tech = 1.0 }
            [[content]]
            name = "Python 3.12 in 30 days"
            [[content]]
            name = "Python 3"
            [[channels]]
            name = "ads"
            [[channels]]
            name = "kol"
        "#
        .parse()
        .unwrap()
    }

    fn path_of(key: &str) -> Result<String, String> {
        locate(&document(), key).map(|steps| key_path(&steps))
    }

    #[test]
    fn values_parse_as_toml_and_bare_words_as_strings() {
        let cases = [
            ("market.population=1000000", Value::Integer(1_000_000)),
            ("brand.value = 0.5", Value::Float(0.5)),
            ("optimize.estimator=fd", Value::String("fd".into())),
            ("name=\"my run\"", Value::String("my run".into())),
            ("name=my run", Value::String("my run".into())),
            ("x=true", Value::Boolean(true)),
        ];
        for (text, value) in cases {
            assert_eq!(parse_assignment(text).unwrap().value, value, "{text}");
        }
        assert_eq!(parse_assignment("a.b = 1").unwrap().key, "a.b");
        assert!(parse_assignment("no equals sign").is_err());
        assert!(parse_assignment("=1").is_err());
        assert!(parse_assignment("brand.value=").is_err());
    }

    #[test]
    fn value_at_reads_the_value_a_key_path_names() {
        let source = ScenarioSource {
            file: "test.toml".to_string(),
            document: document(),
        };
        assert_eq!(
            source.value_at("market.population").unwrap(),
            Some(Value::Integer(10))
        );
        assert_eq!(
            source.value_at("content.Python 3.name").unwrap(),
            Some(Value::String("Python 3".into()))
        );
        assert_eq!(source.value_at("channels.kol.cpm").unwrap(), None);
        let error = source.value_at("channels.tv.cpm").unwrap_err();
        assert_eq!(error.key_path, "channels.tv.cpm");
    }

    #[test]
    fn names_with_dots_match_the_longest_name() {
        assert_eq!(
            path_of("content.Python 3.12 in 30 days.price").unwrap(),
            r#"content[0].price"#
        );
        assert_eq!(
            path_of("content.Python 3.price").unwrap(),
            "content[1].price"
        );
        assert_eq!(
            path_of("market.segments.students.night.share").unwrap(),
            "market.segments[1].share"
        );
        assert_eq!(
            path_of("market.segments.students.topics.data.science").unwrap(),
            r#"market.segments[0].topics."data.science""#
        );
        assert_eq!(
            path_of("market.segments.students.targeting.kol").unwrap(),
            "market.segments[0].targeting.kol"
        );
    }

    #[test]
    fn index_form_addresses_list_entries() {
        assert_eq!(path_of("channels[1].cpm").unwrap(), "channels[1].cpm");
        assert_eq!(
            path_of("market.segments[0].share").unwrap(),
            "market.segments[0].share"
        );
        assert!(
            path_of("channels[2].cpm")
                .unwrap_err()
                .contains("no channel at index 2")
        );
        assert!(path_of("channels[x].cpm").is_err());
    }

    #[test]
    fn unknown_names_and_keys_are_explained() {
        let message = path_of("channels.tv.daily_budget").unwrap_err();
        assert_eq!(message, r#"no channel named "tv"; channels are: ads, kol"#);
        let message = path_of("market.segments.pros.topics.tech").unwrap_err();
        assert!(
            message.starts_with(r#"no segment named "pros""#),
            "{message}"
        );
        let message = path_of("brand.colour").unwrap_err();
        assert!(message.starts_with(r#"unknown key "colour"; expected one of: value"#));
        assert!(
            path_of("colour")
                .unwrap_err()
                .starts_with(r#"unknown key "colour""#)
        );
        assert!(path_of("brand").is_err());
        assert!(path_of("market.segments").is_err());
        assert!(path_of("market.segments.students.topics").is_err());
        assert!(path_of("simulation.days.x").is_err());
        assert!(path_of("content.Python 3.price.x").is_err());
    }

    #[test]
    fn setting_creates_absent_optional_tables() {
        let mut document = document();
        let steps = locate(&document, "optimize.iterations").unwrap();
        set(&mut document, &steps, Value::Integer(3)).unwrap();
        let steps = locate(&document, "market.segments.students.targeting.kol").unwrap();
        set(&mut document, &steps, Value::Float(2.0)).unwrap();
        assert_eq!(document["optimize"]["iterations"], Value::Integer(3));
        assert_eq!(
            document["market"]["segments"][0]["targeting"]["kol"],
            Value::Float(2.0)
        );
    }

    #[test]
    fn setting_inside_a_non_table_is_an_error() {
        let mut document: Table = "brand = 3".parse().unwrap();
        let steps = locate(&document, "brand.value").unwrap();
        assert!(set(&mut document, &steps, Value::Integer(1)).is_err());
    }
}
