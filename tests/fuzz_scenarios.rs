//! Fuzzing the scenario loader: arbitrary bytes, byte-level edits and structural
//! mutations of the bundled scenarios (wrong types, huge and tiny numbers, NaN,
//! deep nesting, duplicate keys and names, unicode, empty arrays) go through
//! parse + validate + the resource guard + a one-day simulation of a small
//! population. Any panic is a bug; each past crasher is kept in `tests/corpus/`
//! and replayed. Seeded and bounded; `BRANDSIM_FUZZ_CASES=N` runs N cases per
//! strategy and `BRANDSIM_FUZZ_SEED=S` another seed, to fuzz for longer.

mod accounting;

use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};
use toml::{Table, Value};

use brandsim::engine::simulate;
use brandsim::guard;
use brandsim::scenario::parse_str;

const BUNDLED: &[&str] = &[
    include_str!("../scenarios/bass.toml"),
    include_str!("../scenarios/knowledge_platform.toml"),
    include_str!("../scenarios/kol_heavy.toml"),
    include_str!("../scenarios/price_cut.toml"),
    include_str!("../scenarios/quality_investment.toml"),
    include_str!("../scenarios/network_seeding.toml"),
];

/// The users and days simulated for a valid input: small, so cases stay fast.
const MAX_USERS: u32 = 300;

/// Parse + validate; for a valid scenario the memory plan, then one day of a
/// small population and the accounting identities. Panics on any bug.
fn exercise(text: &str) {
    let scenario = match parse_str(text, "fuzz.toml") {
        Err(error) => {
            assert!(!error.message.is_empty(), "an error says what is wrong");
            assert!(error.to_string().starts_with("fuzz.toml"), "{error}");
            return;
        }
        Ok(scenario) => scenario,
    };
    let replications = scenario.simulation.replications as usize;
    let _ = guard::plan_study(&scenario, replications, 64, Some(16 << 30));
    let mut small = scenario;
    small.market.population = small.market.population.min(MAX_USERS);
    small.simulation.days = 1;
    let outcome = simulate(&Arc::new(small.clone()), 0);
    accounting::assert_accounting_identities(&small, &outcome);
    let summary = brandsim::study::summarize_study(std::slice::from_ref(&outcome));
    let _ = brandsim::report::daily_csv(&summary, &small.calendar);
    let _ = brandsim::report::replications_csv(std::slice::from_ref(&outcome));
}

fn cases() -> u32 {
    std::env::var("BRANDSIM_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500)
}

fn runner(salt: u64) -> TestRunner {
    let seed = std::env::var("BRANDSIM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_240_607u64);
    TestRunner::new(Config {
        cases: cases(),
        rng_seed: RngSeed::Fixed(seed ^ salt),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    })
}

/// Runs `strategy` through `exercise`; on a panic, the shrunk input is shown so
/// that it can be added to `tests/corpus/`.
fn fuzz<S: Strategy>(salt: u64, strategy: S, render: impl Fn(&S::Value) -> Option<String>) {
    let mut runner = runner(salt);
    let result = runner.run(&strategy, |input| {
        if let Some(text) = render(&input) {
            exercise(&text);
        }
        Ok(())
    });
    if let Err(error) = result {
        let shown = match &error {
            TestError::Fail(reason, input) => format!(
                "{reason}\n--- input (add it to tests/corpus/) ---\n{}",
                render(input).unwrap_or_default()
            ),
            TestError::Abort(reason) => reason.to_string(),
        };
        panic!("fuzzing found a bug: {shown}");
    }
    eprintln!("{} cases without a panic", cases());
}

// ---------------------------------------------------------------------------------
// Byte-level inputs

/// Fragments that make TOML interesting to a parser.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    "\"",
    "'",
    "\"\"\"",
    ".",
    ",",
    "\n",
    "#",
    "\\",
    "-",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "-0",
    "0x7fffffffffffffff",
    "99999999999999999999",
    "true",
    "1979-05-27",
    "[[content]]",
    "[market]",
    "name = \"x\"",
    "ü",
    "名前",
    "\u{202e}",
    "\u{0}",
    "\u{feff}",
    "\r\n",
];

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(TOKENS).prop_map(str::to_string),
        any::<char>().prop_map(String::from),
    ]
}

#[derive(Debug, Clone)]
enum TextEdit {
    Insert(Index, Vec<String>),
    Delete(Index, usize),
    DuplicateLine(Index),
    Truncate(Index),
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    prop_oneof![
        (any::<Index>(), prop::collection::vec(token(), 1..4))
            .prop_map(|(at, t)| TextEdit::Insert(at, t)),
        (any::<Index>(), 1usize..40).prop_map(|(at, n)| TextEdit::Delete(at, n)),
        any::<Index>().prop_map(TextEdit::DuplicateLine),
        any::<Index>().prop_map(TextEdit::Truncate),
    ]
}

fn apply_text_edits(base: &str, edits: &[TextEdit]) -> String {
    let mut bytes = base.as_bytes().to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match edit {
            TextEdit::Insert(at, tokens) => {
                let at = at.index(len + 1).min(bytes.len());
                let text: String = tokens.concat();
                bytes.splice(at..at, text.into_bytes());
            }
            TextEdit::Delete(at, n) => {
                let at = at.index(len).min(bytes.len());
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            TextEdit::DuplicateLine(at) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let lines: Vec<&str> = text.lines().collect();
                if lines.is_empty() {
                    continue;
                }
                let i = at.index(lines.len());
                let mut out: Vec<&str> = lines[..=i].to_vec();
                out.extend(&lines[i..]);
                bytes = out.join("\n").into_bytes();
            }
            TextEdit::Truncate(at) => bytes.truncate(at.index(len)),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn arbitrary_bytes_never_panic_the_loader() {
    fuzz(1, prop::collection::vec(any::<u8>(), 0..512), |bytes| {
        Some(String::from_utf8_lossy(bytes).into_owned())
    });
}

#[test]
fn byte_edits_of_bundled_scenarios_never_panic() {
    let strategy = (0..BUNDLED.len(), prop::collection::vec(text_edit(), 1..5));
    fuzz(2, strategy, |(base, edits)| {
        Some(apply_text_edits(BUNDLED[*base], edits))
    });
}

// ---------------------------------------------------------------------------------
// Structural mutations

/// Values that probe types, ranges and the arithmetic of the model.
fn weird_value() -> impl Strategy<Value = Value> {
    let integers = prop_oneof![
        proptest::sample::select(vec![
            0i64,
            1,
            -1,
            2,
            65_535,
            65_536,
            i64::from(u32::MAX),
            i64::from(u32::MAX) + 1,
            i64::MAX,
            i64::MIN,
        ]),
        any::<i64>(),
        0i64..1000,
    ]
    .prop_map(Value::Integer);
    let floats = prop_oneof![
        proptest::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1.0,
            0.5,
            1e308,
            -1e308,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            1e-300,
            1e300,
            1.000_000_1,
            0.999_999_9,
        ]),
        any::<f64>(),
        0.0f64..1.0,
        -1e6f64..1e6,
    ]
    .prop_map(Value::Float);
    let strings = prop_oneof![
        proptest::sample::select(vec![
            "",
            "ads",
            "tech",
            "spsa",
            "seed_r",
            "名前",
            "é\u{301}",
            "\u{202e}rtl",
            " ",
            "a.b",
            "\"quoted\"",
            "line\nbreak",
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ]
    .prop_map(Value::String);
    let leaf = prop_oneof![
        4 => integers,
        4 => floats,
        2 => strings,
        1 => any::<bool>().prop_map(Value::Boolean),
        1 => Just(Value::Array(Vec::new())),
        1 => Just(Value::Table(Table::new())),
    ];
    leaf.prop_recursive(4, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..4)
                .prop_map(|entries| Value::Table(entries.into_iter().collect())),
            (1usize..200).prop_map(deeply_nested),
        ]
    })
}

fn deeply_nested(depth: usize) -> Value {
    (0..depth).fold(Value::Integer(1), |value, _| Value::Array(vec![value]))
}

#[derive(Debug, Clone)]
enum Mutation {
    /// A number replaced by an extreme number of the same TOML type, so that the
    /// scenario often stays valid and the engine sees the extremes.
    Extreme(Index, i64, f64),
    SetLeaf(Index, Value),
    Remove(Index),
    DuplicateElement(Index),
    EmptyArray(Index),
    AddKey(Index, String, Value),
    Rename(Index, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let key = prop_oneof![
        proptest::sample::select(vec![
            "name",
            "share",
            "extra",
            "promotion",
            "targeting",
            "ü"
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,10}",
    ];
    let name = prop_oneof![
        proptest::sample::select(vec!["ads", "students", "the product", "", "名前", "x.y"])
            .prop_map(str::to_string),
        any::<String>(),
    ];
    let extreme_integer = proptest::sample::select(vec![0i64, 1, 2, 7, 365, i64::from(u32::MAX)]);
    let extreme_float = proptest::sample::select(vec![
        0.0,
        1.0,
        0.5,
        1e-300,
        5e-324,
        1e-9,
        1e300,
        f64::MAX,
        1e6,
        -1e300,
    ]);
    prop_oneof![
        8 => (any::<Index>(), extreme_integer, extreme_float)
            .prop_map(|(at, i, x)| Mutation::Extreme(at, i, x)),
        6 => (any::<Index>(), weird_value()).prop_map(|(at, v)| Mutation::SetLeaf(at, v)),
        2 => any::<Index>().prop_map(Mutation::Remove),
        2 => any::<Index>().prop_map(Mutation::DuplicateElement),
        1 => any::<Index>().prop_map(Mutation::EmptyArray),
        2 => (any::<Index>(), key, weird_value()).prop_map(|(at, k, v)| Mutation::AddKey(at, k, v)),
        2 => (any::<Index>(), name).prop_map(|(at, n)| Mutation::Rename(at, n)),
    ]
}

/// One step of a path into a TOML document.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

/// Every path of the document (to tables, arrays and leaves), depth first.
fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        Value::Table(table) => {
            for (key, child) in table {
                prefix.push(Step::Key(key.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(array) => {
            for (i, child) in array.iter().enumerate() {
                prefix.push(Step::At(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |value, step| match step {
        Step::Key(key) => value.as_table_mut()?.get_mut(key),
        Step::At(i) => value.as_array_mut()?.get_mut(*i),
    })
}

fn apply_mutation(document: &mut Value, mutation: &Mutation) {
    let mut all = Vec::new();
    paths(document, &mut Vec::new(), &mut all);
    let pick = |at: &Index, keep: &dyn Fn(&Vec<Step>) -> bool| {
        let chosen: Vec<&Vec<Step>> = all.iter().filter(|p| keep(p)).collect();
        (!chosen.is_empty()).then(|| chosen[at.index(chosen.len())].clone())
    };
    let is_leaf = |document: &Value, path: &Vec<Step>| {
        let mut copy = document.clone();
        get_mut(&mut copy, path).is_some_and(|v| !v.is_table() && !v.is_array())
    };
    match mutation {
        Mutation::Extreme(at, integer, float) => {
            let numbers = |p: &Vec<Step>| {
                let mut copy = document.clone();
                get_mut(&mut copy, p).is_some_and(|v| v.is_integer() || v.is_float())
            };
            if let Some(path) = pick(at, &numbers) {
                let value = get_mut(document, &path).unwrap();
                *value = if value.is_integer() {
                    Value::Integer(*integer)
                } else {
                    Value::Float(*float)
                };
            }
        }
        Mutation::SetLeaf(at, new) => {
            if let Some(path) = pick(at, &|p| !p.is_empty() && is_leaf(document, p)) {
                *get_mut(document, &path).unwrap() = new.clone();
            }
        }
        Mutation::Remove(at) => {
            if let Some(path) = pick(at, &|p| !p.is_empty()) {
                let (last, parent) = path.split_last().unwrap();
                match (get_mut(document, parent).unwrap(), last) {
                    (Value::Table(table), Step::Key(key)) => {
                        table.remove(key);
                    }
                    (Value::Array(array), Step::At(i)) => {
                        array.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        Mutation::DuplicateElement(at) => {
            let arrays = |p: &Vec<Step>| {
                let mut copy = document.clone();
                get_mut(&mut copy, p).is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            };
            if let Some(path) = pick(at, &arrays) {
                let array = get_mut(document, &path).unwrap().as_array_mut().unwrap();
                let first = array[0].clone();
                array.push(first);
            }
        }
        Mutation::EmptyArray(at) => {
            let arrays = |p: &Vec<Step>| {
                let mut copy = document.clone();
                get_mut(&mut copy, p).is_some_and(|v| v.is_array())
            };
            if let Some(path) = pick(at, &arrays) {
                *get_mut(document, &path).unwrap() = Value::Array(Vec::new());
            }
        }
        Mutation::AddKey(at, key, new) => {
            let tables = |p: &Vec<Step>| {
                let mut copy = document.clone();
                get_mut(&mut copy, p).is_some_and(|v| v.is_table())
            };
            if let Some(path) = pick(at, &tables) {
                let table = get_mut(document, &path).unwrap().as_table_mut().unwrap();
                table.insert(key.clone(), new.clone());
            }
        }
        Mutation::Rename(at, name) => {
            let names = |p: &Vec<Step>| matches!(p.last(), Some(Step::Key(k)) if k == "name" || k == "topic");
            if let Some(path) = pick(at, &names) {
                *get_mut(document, &path).unwrap() = Value::String(name.clone());
            }
        }
    }
}

fn mutated(base: usize, mutations: &[Mutation]) -> Option<String> {
    let mut document = Value::Table(toml::from_str(BUNDLED[base]).unwrap());
    for mutation in mutations {
        apply_mutation(&mut document, mutation);
    }
    // Some mutated documents have no TOML text (e.g. a table after an array of
    // tables in some nestings); those are not inputs a user can write.
    toml::to_string(document.as_table()?).ok()
}

#[test]
fn structural_mutations_of_bundled_scenarios_never_panic() {
    let strategy = (0..BUNDLED.len(), prop::collection::vec(mutation(), 1..5));
    fuzz(3, strategy, |(base, mutations)| mutated(*base, mutations));
}

#[test]
fn mutations_that_stay_valid_are_simulated() {
    // The fuzzer must reach the engine, not only the validator: count how many
    // mutated scenarios are valid.
    let mut runner = runner(4);
    let strategy = (0..BUNDLED.len(), prop::collection::vec(mutation(), 1..3));
    let (mut valid, mut total) = (0u32, 0u32);
    for _ in 0..300 {
        let tree = strategy.new_tree(&mut runner).unwrap();
        let (base, mutations) = tree.current();
        if let Some(text) = mutated(base, &mutations) {
            total += 1;
            valid += u32::from(parse_str(&text, "fuzz.toml").is_ok());
        }
    }
    eprintln!("{valid} of {total} mutated scenarios are valid");
    assert!(
        valid * 20 >= total,
        "only {valid} of {total} mutated scenarios were valid"
    );
}

// ---------------------------------------------------------------------------------
// Past crashers and known weak spots

#[test]
fn corpus_of_past_crashers_is_replayed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| {
            exercise(&String::from_utf8_lossy(&bytes));
            // Through the file reader as well (UTF-8 check, size bound).
            let _ = brandsim::scenario::load_file(&path, &[]);
        });
        assert!(result.is_ok(), "{} panics", path.display());
        replayed += 1;
    }
    assert!(replayed > 0, "the corpus in {} is empty", dir.display());
}
