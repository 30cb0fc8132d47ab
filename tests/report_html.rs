//! `report.html` of every kind of study, loaded in a real headless browser
//! (Debian's `chromium`, driven over the DevTools protocol): it renders with no
//! console error and no request at all (it is self-contained), every plot is
//! visible, and the page fits a phone's width and an A4 page. Screenshots
//! (desktop and phone) and a printed PDF of each are saved under
//! `target/tmp/report-html/`. Without a browser the browser checks print
//! `SKIPPED: ...` and pass; the checks of the HTML text always run.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Scratch, brandsim, path, succeed, text};
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Emulation, Network, Page};
use headless_chrome::{Browser, LaunchOptions};
use serde_json::json;

const SCENARIO: &str = "scenarios/knowledge_platform.toml";
const STRATEGIES: &str = "scenarios/strategies.toml";
/// A small, short market: every study here runs in well under a second.
const SMALL: [&str; 4] = [
    "--set",
    "market.population=1500",
    "--set",
    "simulation.days=20",
];

/// What the page reported about itself in one viewport.
#[derive(Debug)]
struct PageCheck {
    plots: usize,
    sections: Vec<String>,
}

/// Loads `report` in a headless browser at a desktop, a phone and an A4 print
/// width; fails on any console error, failed or external request, invisible
/// plot or page wider than the viewport. Saves screenshots and a PDF named
/// `name`. `None` (after printing `SKIPPED: ...`) when no browser can start.
fn check_in_browser(report: &Path, name: &str) -> Option<PageCheck> {
    let executable = match headless_chrome::browser::default_executable() {
        Ok(executable) => executable,
        Err(error) => {
            eprintln!(
                "SKIPPED: report {name} not checked in a browser: no chromium found ({error}); install it with apt-get install chromium"
            );
            return None;
        }
    };
    let options = LaunchOptions::default_builder()
        .path(Some(executable))
        .sandbox(false)
        .window_size(Some((1280, 900)))
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .expect("launch options");
    let browser = match Browser::new(options) {
        Ok(browser) => browser,
        Err(error) => {
            eprintln!(
                "SKIPPED: report {name} not checked in a browser: chromium does not start ({error})"
            );
            return None;
        }
    };
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html");
    std::fs::create_dir_all(&out_dir).unwrap();
    let url = format!("file://{}", report.canonicalize().unwrap().display());
    let mut last = None;
    for (viewport, width, mobile) in [("desktop", 1280, false), ("phone", 390, true)] {
        let tab = browser.new_tab().expect("a tab");
        tab.set_default_timeout(Duration::from_secs(60));
        let problems = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = Arc::clone(&problems);
        let page_url = url.clone();
        tab.add_event_listener(Arc::new(move |event: &Event| {
            let problem = match event {
                Event::LogEntryAdded(entry) => {
                    let entry = &entry.params.entry;
                    let level = format!("{:?}", entry.level);
                    (level == "Error" || level == "Warning")
                        .then(|| format!("log {level}: {}", entry.text))
                }
                Event::RuntimeConsoleAPICalled(call) => {
                    let kind = format!("{:?}", call.params.Type);
                    (kind == "Error" || kind == "Warning" || kind == "Assert")
                        .then(|| format!("console.{kind}: {:?}", call.params.args))
                }
                Event::RuntimeExceptionThrown(thrown) => Some(format!(
                    "exception: {}",
                    thrown.params.exception_details.text
                )),
                Event::NetworkLoadingFailed(failed) => {
                    Some(format!("failed request: {}", failed.params.error_text))
                }
                Event::NetworkRequestWillBeSent(sent) => {
                    let requested = &sent.params.request.url;
                    (requested != &page_url).then(|| format!("request: {requested}"))
                }
                _ => None,
            };
            if let Some(problem) = problem {
                seen.lock().unwrap().push(problem);
            }
        }))
        .unwrap();
        tab.enable_log().unwrap();
        tab.enable_runtime().unwrap();
        tab.call_method(serde_json::from_value::<Network::Enable>(json!({})).unwrap())
            .unwrap();
        set_viewport(&tab, width, 900, mobile);
        tab.navigate_to(&url)
            .unwrap()
            .wait_until_navigated()
            .unwrap();
        let check = page_facts(&tab);
        let height = check["height"].as_u64().unwrap().clamp(600, 12_000) as u32;
        set_viewport(&tab, width, height, mobile);
        let shot = tab
            .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap();
        let shot_path = out_dir.join(format!("{name}-{viewport}.png"));
        std::fs::write(&shot_path, shot).unwrap();
        eprintln!("screenshot: {}", shot_path.display());

        assert_eq!(
            check["bad"],
            json!([]),
            "{name} ({viewport}): plots not visible: {check}"
        );
        assert_eq!(
            check["overflow"],
            json!(false),
            "{name} ({viewport}): the page is wider than the screen: {check}"
        );
        assert_eq!(
            check["resources"],
            json!([]),
            "{name} ({viewport}): the page loaded resources: {check}"
        );
        if viewport == "desktop" {
            // A4 with the page's 12 mm side margins leaves 186 mm = 703 CSS pixels.
            tab.call_method(
                serde_json::from_value::<Emulation::SetEmulatedMedia>(json!({"media": "print"}))
                    .unwrap(),
            )
            .unwrap();
            set_viewport(&tab, 703, 1000, false);
            let printed = page_facts(&tab);
            assert_eq!(
                printed["bad"],
                json!([]),
                "{name} (print): plots not visible: {printed}"
            );
            assert_eq!(
                printed["overflow"],
                json!(false),
                "{name} (print): wider than A4: {printed}"
            );
            let pdf = tab
                .print_to_pdf(Some(headless_chrome::types::PrintToPdfOptions {
                    paper_width: Some(8.27),
                    paper_height: Some(11.69),
                    prefer_css_page_size: Some(true),
                    ..Default::default()
                }))
                .unwrap();
            assert!(pdf.starts_with(b"%PDF"), "{name}: not a PDF");
            std::fs::write(out_dir.join(format!("{name}-a4.pdf")), pdf).unwrap();
        }
        // Let late events (a slow failed load) arrive before judging.
        std::thread::sleep(Duration::from_millis(200));
        let problems = problems.lock().unwrap().clone();
        assert!(problems.is_empty(), "{name} ({viewport}): {problems:#?}");
        last = Some(PageCheck {
            plots: check["plots"].as_u64().unwrap() as usize,
            sections: check["sections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect(),
        });
        tab.close_target().ok();
    }
    last
}

fn set_viewport(tab: &headless_chrome::Tab, width: u32, height: u32, mobile: bool) {
    tab.call_method(
        serde_json::from_value::<Emulation::SetDeviceMetricsOverride>(json!({
            "width": width,
            "height": height,
            "deviceScaleFactor": 1,
            "mobile": mobile,
        }))
        .unwrap(),
    )
    .unwrap();
}

/// Runs the page's own checks: every plot laid out with an area, no page wider
/// than the viewport, the resources it loaded, its height and sections.
fn page_facts(tab: &headless_chrome::Tab) -> serde_json::Value {
    let script = r#"JSON.stringify((() => {
        const plots = [...document.querySelectorAll('svg.plot, img.plot')];
        const bad = plots.filter(p => {
            const r = p.getBoundingClientRect();
            const s = getComputedStyle(p);
            const drawn = p.tagName.toLowerCase() === 'img'
                ? p.complete && p.naturalWidth > 0
                : p.querySelectorAll('*').length > 5;
            return !(r.width > 200 && r.height > 60) || s.visibility !== 'visible'
                || s.display === 'none' || !drawn;
        }).map(p => p.getAttribute('aria-label') || p.getAttribute('alt') || p.outerHTML.slice(0, 80));
        return {
            plots: plots.length,
            bad,
            overflow: document.documentElement.scrollWidth > window.innerWidth + 1,
            wide: [...document.querySelectorAll('main *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(0, 5)
                .map(e => `${e.tagName.toLowerCase()}.${e.getAttribute('class') || ''} ${Math.round(e.getBoundingClientRect().right)}`),
            height: Math.ceil(document.documentElement.scrollHeight),
            resources: performance.getEntriesByType('resource').map(e => e.name),
            sections: [...document.querySelectorAll('section')].map(s => s.id),
        };
    })())"#;
    let value = tab.evaluate(script, false).unwrap().value.unwrap();
    serde_json::from_str(value.as_str().unwrap()).unwrap()
}

/// The page without its footer (which says when it was built).
fn without_footer(html: &str) -> String {
    let start = html.find("<footer>").unwrap();
    let end = html.find("</footer>").unwrap();
    format!("{}{}", &html[..start], &html[end..])
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// `brandsim report DIR` rebuilds the page the study command wrote, from the
/// directory alone: the same page but for the build time in the footer.
fn assert_rebuilt_identically(dir: &Path) -> String {
    let written = read(&dir.join("report.html"));
    let output = succeed(&["report", path(dir)]);
    assert!(text(&output.stdout).contains("report.html"));
    let rebuilt = read(&dir.join("report.html"));
    assert_eq!(without_footer(&written), without_footer(&rebuilt));
    rebuilt
}

#[test]
fn run_report_renders_with_every_plot_and_its_calendar_and_uncertainty() {
    let scratch = Scratch::new("report-run");
    let out = scratch.join("run");
    let mut args = vec!["run", SCENARIO, "-q", "-r", "3", "-o", path(&out)];
    args.extend(SMALL);
    succeed(&args);
    let html = assert_rebuilt_identically(&out);
    assert!(html.contains("Headline results") && html.contains("profit"));
    assert!(html.contains("brandsim · run report"));
    assert!(
        !html.contains("id=\"calendar\""),
        "no campaigns, no calendar"
    );
    assert!(html.contains("Nothing: every replication runs at the scenario's values"));
    assert!(!html.contains("src=\"http") && !html.contains("<script"));

    // Campaigns, a seeding and uncertain keys (MODEL.md version 2) are read from
    // the directory's scenario.toml, whatever this build's scenario parser knows.
    let scenario = out.join("scenario.toml");
    let mut toml = read(&scenario);
    toml = toml.replacen(
        "[simulation]\n",
        "[simulation]\nstart_date = 2026-01-01\n",
        1,
    );
    toml.push_str(
        r#"
[[campaigns]]
name = "spring-sale"
start = 2026-01-05
end = 2026-01-09
set = { "content.annual-vip.price" = 199.0, channels.kol.daily_budget = 60.0 }

[[campaigns]]
name = "long-brand-push"
start = 12
end = 40
set = { "brand.value" = 0.5 }

[[seeding]]
name = "kol-seed"
day = 2
item = "annual-vip"
users = 10
rule = "random"

[[uncertain]]
key = "market.word_of_mouth"
distribution = "normal"
mean = 0.3
sd = 0.05
"#,
    );
    std::fs::write(&scenario, toml).unwrap();
    succeed(&["report", path(&out)]);
    let html = read(&out.join("report.html"));
    for expected in [
        "spring-sale",
        "2026-01-05 – 2026-01-09",
        "content.annual-vip.price = 199.0",
        "channels.kol.daily_budget = 60.0",
        "long-brand-push",
        "kol-seed",
        "<code>market.word_of_mouth</code>",
        "mean = 0.3, sd = 0.05",
    ] {
        assert!(html.contains(expected), "report lacks {expected:?}");
    }
    let Some(page) = check_in_browser(&out.join("report.html"), "run") else {
        return;
    };
    // Four fan charts and the calendar.
    assert_eq!(page.plots, 5);
    assert_eq!(
        page.sections,
        [
            "results",
            "plots",
            "scenario",
            "calendar",
            "uncertain",
            "how"
        ]
    );
}

#[test]
fn sweep_report_renders_with_every_plot() {
    let scratch = Scratch::new("report-sweep");
    let out = scratch.join("sweep");
    let mut args = vec![
        "sweep",
        STRATEGIES,
        "-q",
        "-r",
        "2",
        "--vary",
        "brand.value=0:1:0.5",
        "-o",
        path(&out),
    ];
    args.extend(SMALL);
    succeed(&args);
    let html = assert_rebuilt_identically(&out);
    assert!(html.contains("sweep of brand.value"));
    // A grid point alone is no study to report: its report points to the sweep's.
    let output = succeed(&["report", &format!("{}/points/1", path(&out))]);
    assert!(text(&output.stderr).contains("one grid point or arm of the what-if study"));
    let Some(page) = check_in_browser(&out.join("report.html"), "sweep") else {
        return;
    };
    // One line plot per default metric: profit, revenue, active_payers, registrations.
    assert_eq!(page.plots, 4);
    assert!(page.sections.contains(&"results".to_string()));
}

#[test]
fn sensitivity_report_renders_with_its_indices_and_every_plot() {
    let scratch = Scratch::new("report-sensitivity");
    let out = scratch.join("sensitivity");
    let mut args = vec![
        "sensitivity",
        STRATEGIES,
        "-q",
        "-r",
        "2",
        "--param",
        "brand.value=0:1",
        "--param",
        "brand.cost_per_day=0:1000",
        "--method",
        "morris",
        "--samples",
        "2",
        "--metric",
        "registrations",
        "--metric",
        "spend",
        "-o",
        path(&out),
    ];
    args.extend(SMALL);
    succeed(&args);
    let html = assert_rebuilt_identically(&out);
    assert!(html.contains("morris sensitivity of brand.value, brand.cost_per_day"));
    assert!(html.contains("Morris screening") && html.contains("<code>brand.cost_per_day</code>"));
    let output = succeed(&["report", &format!("{}/points/1", path(&out))]);
    assert!(text(&output.stderr).contains("one grid point or arm of the what-if study"));
    let Some(page) = check_in_browser(&out.join("report.html"), "sensitivity") else {
        return;
    };
    // One bar chart per metric.
    assert_eq!(page.plots, 2);
    assert!(page.sections.contains(&"results".to_string()));
}

#[test]
fn compare_report_renders_with_its_ranking_and_plot() {
    let scratch = Scratch::new("report-compare");
    let out = scratch.join("compare");
    let mut args = vec!["compare", STRATEGIES, "-q", "-r", "2", "-o", path(&out)];
    args.extend(SMALL);
    succeed(&args);
    let html = assert_rebuilt_identically(&out);
    for arm in ["kol-heavy", "price-cut", "brand-investment", "double-ads"] {
        assert!(html.contains(arm), "report lacks the arm {arm}");
    }
    assert!(html.contains("Ranking by profit") && html.contains("(base)"));
    let Some(page) = check_in_browser(&out.join("report.html"), "compare") else {
        return;
    };
    assert_eq!(page.plots, 1);
}

#[test]
fn optimize_report_renders_with_its_trace() {
    let scratch = Scratch::new("report-optimize");
    let out = scratch.join("optimize");
    let mut args = vec![
        "optimize",
        SCENARIO,
        "-q",
        "-r",
        "2",
        "--iterations",
        "3",
        "--replications-per-step",
        "2",
        "-o",
        path(&out),
    ];
    args.extend(SMALL);
    succeed(&args);
    let html = assert_rebuilt_identically(&out);
    assert!(html.contains("<code>brand.value</code>") && html.contains("J at the answer"));
    // A run forced into the directory removes the optimizer's files (they are
    // brandsim's own, recorded in the marker); the report is of the run.
    let mut args = vec![
        "run",
        SCENARIO,
        "-q",
        "-r",
        "2",
        "-o",
        path(&out),
        "--force",
    ];
    args.extend(SMALL);
    succeed(&args);
    let html = read(&out.join("report.html"));
    assert!(!out.join("optimize.json").exists());
    assert!(
        html.contains("brandsim · run report"),
        "not the run's report"
    );
    succeed(&[
        "optimize",
        SCENARIO,
        "-q",
        "-r",
        "2",
        "--iterations",
        "2",
        "--replications-per-step",
        "2",
        "-o",
        path(&out),
        "--force",
        "--set",
        "market.population=1500",
        "--set",
        "simulation.days=20",
    ]);
    let html = read(&out.join("report.html"));
    assert!(
        html.contains("brandsim · optimize report"),
        "not the optimizer's report"
    );
    let Some(page) = check_in_browser(&out.join("report.html"), "optimize") else {
        return;
    };
    assert_eq!(page.plots, 1);
}

#[test]
fn merged_report_renders_and_a_shard_gets_a_partial_report() {
    let scratch = Scratch::new("report-merge");
    let shards: Vec<PathBuf> = (0..2).map(|k| scratch.join(format!("shard-{k}"))).collect();
    for (k, shard) in shards.iter().enumerate() {
        let spec = format!("{k}/2");
        let mut args = vec![
            "run",
            SCENARIO,
            "-q",
            "-r",
            "3",
            "--shard",
            &spec,
            "-o",
            path(shard),
        ];
        args.extend(SMALL);
        succeed(&args);
        assert!(
            !shard.join("report.html").exists(),
            "a shard writes no report"
        );
    }
    // A shard has no results: `report` says so and writes a partial report.
    let output = succeed(&["report", path(&shards[0])]);
    assert!(text(&output.stderr).contains("partial report: This directory holds shard 0/2"));
    let partial = read(&shards[0].join("report.html"));
    assert!(partial.contains("Partial report.") && !partial.contains("Headline results"));

    let merged = scratch.join("merged");
    assert!(common::merge(&shards, &merged).status.success());
    let html = assert_rebuilt_identically(&merged);
    // merge writes no plot files for a run: the report draws the fan charts
    // from the stored replications.
    assert!(html.contains("(drawn for this report)"));
    let Some(page) = check_in_browser(&merged.join("report.html"), "merge") else {
        return;
    };
    assert_eq!(page.plots, 4);
}

#[test]
fn report_of_a_directory_that_is_no_study_is_refused_writing_nothing() {
    let scratch = Scratch::new("report-refused");
    let output = brandsim(&["report", &scratch.arg("absent")]);
    common::assert_refused(&output, &"absent", &["absent: no such directory"]);
    let output = brandsim(&["report", path(&scratch)]);
    common::assert_refused(&output, &"empty", &["holds no brandsim study"]);
    assert!(!scratch.join("report.html").exists());

    // A damaged result file is named with its line and column.
    let out = scratch.join("run");
    let mut args = vec!["run", SCENARIO, "-q", "-r", "2", "-o", path(&out)];
    args.extend(SMALL);
    succeed(&args);
    let before = read(&out.join("report.html"));
    std::fs::write(out.join("summary.json"), "{\n  \"metrics\": [1,\n").unwrap();
    let output = brandsim(&["report", path(&out)]);
    common::assert_refused(
        &output,
        &"damaged",
        &["summary.json: not valid JSON", "line 3 column 0"],
    );
    assert_eq!(
        read(&out.join("report.html")),
        before,
        "the old report is kept"
    );

    let mut args = vec![
        "run",
        SCENARIO,
        "-q",
        "-r",
        "2",
        "-o",
        path(&out),
        "--force",
    ];
    args.extend(SMALL);
    succeed(&args);
    std::fs::write(out.join("scenario.toml"), "name = \"x\"\n[simulation\n").unwrap();
    let output = brandsim(&["report", path(&out)]);
    common::assert_refused(
        &output,
        &"damaged scenario",
        &["scenario.toml: not a scenario file", "line 2"],
    );
}

#[test]
fn precision_run_report_says_whether_the_target_was_reached() {
    let scratch = Scratch::new("report-precision");
    let out = scratch.join("run");
    let mut args = vec![
        "run",
        SCENARIO,
        "-q",
        "-r",
        "2",
        "--precision",
        "0.5",
        "--max-replications",
        "4",
        "-o",
        path(&out),
    ];
    args.extend(SMALL);
    succeed(&args);
    let html = assert_rebuilt_identically(&out);
    let precision = &common::read_json(&out.join("summary.json"))["precision"];
    let expected = format!(
        "Adaptive precision: {} after {} replications in {} batches",
        if precision["reached"] == json!(true) {
            "reached"
        } else {
            "<strong>not reached</strong>"
        },
        precision["replications"],
        precision["batches"]
    );
    assert!(html.contains(&expected), "report lacks {expected:?}");
    // No stored replications and no rerun command: --precision decides the count as it goes.
    assert!(html.contains("fan-revenue.svg") && !html.contains("The same results again"));
}

#[test]
fn calibrate_report_renders_with_its_estimates_and_fit_plots() {
    const LAST_QUARTER: &str = "scenarios/last_quarter.toml";
    let scratch = Scratch::new("report-calibrate");
    // Observed data: one replication at brand.value = 0.4 on another seed.
    let truth = scratch.join("truth");
    let mut args = vec![
        "run",
        LAST_QUARTER,
        "-q",
        "-r",
        "1",
        "--seed",
        "7",
        "--no-plots",
        "--set",
        "brand.value=0.4",
        "-o",
        path(&truth),
    ];
    args.extend(SMALL);
    succeed(&args);
    let daily = read(&truth.join("daily.csv"));
    let mut lines = daily.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (day, registrations, conversions) = (
        column("day"),
        column("registrations_mean"),
        column("conversions_mean"),
    );
    let mut observed = String::from("day,registrations,conversions\n");
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        observed += &format!(
            "{},{},{}\n",
            cells[day], cells[registrations], cells[conversions]
        );
    }
    let data = scratch.join("observed.csv");
    std::fs::write(&data, observed).unwrap();
    let out = scratch.join("calibrate");
    let mut args = vec![
        "calibrate",
        LAST_QUARTER,
        "--data",
        path(&data),
        "--param",
        "brand.value=-3:3",
        "--starts",
        "1",
        "--max-iterations",
        "15",
        "-q",
        "-r",
        "2",
        "-o",
        path(&out),
    ];
    args.extend(SMALL);
    succeed(&args);
    let html = assert_rebuilt_identically(&out);
    assert!(
        html.contains("brandsim · calibrate report"),
        "not a calibration's report"
    );
    assert!(html.contains("calibration of 1 value to observed data"));
    assert!(html.contains("<code>brand.value</code>") && html.contains("Fit at the answer"));
    for series in ["registrations", "conversions"] {
        assert!(
            html.contains(&format!("calibration-{series}.svg")),
            "report lacks the plot of {series}"
        );
    }
    let calibrated = std::fs::read_to_string(out.join("scenario.toml")).unwrap();
    assert!(
        html.contains("The calibrated scenario is shown"),
        "{calibrated}"
    );
    let page = check_in_browser(&out.join("report.html"), "calibrate");
    if let Some(page) = page {
        assert_eq!(page.plots, 2);
        assert!(page.sections.contains(&"results".to_string()));
    }
    // Without calibration.json (an interrupted calibration) the report is partial
    // and says how to continue.
    std::fs::remove_file(out.join("calibration.json")).unwrap();
    let output = succeed(&["report", path(&out)]);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("partial report") && stderr.contains("--resume"),
        "{stderr}"
    );
}
