"""Every function gives the CLI's results bit for bit: the same files, byte for
byte, except the wall-clock fields (throughput, work, seconds) and report.html."""

from __future__ import annotations

from pathlib import Path

import pytest

import brandsim
from conftest import SMALL, cli, read_json, small, without

KP = "scenarios/knowledge_platform.toml"


def same_bytes(a: Path, b: Path, *names: str) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs"


def test_run_summary_and_daily_equal_the_cli_bit_for_bit(tmp_path: Path) -> None:
    cli("run", KP, *SMALL, "-r", "6", "--seed", "11", "-q", "--out", str(tmp_path / "cli"))
    study = brandsim.run(small(KP), replications=6, seed=11, out=tmp_path / "py")
    a, b = tmp_path / "cli", study.dir
    same_bytes(a, b, "daily.csv", "replications.csv", "scenario.toml", ".brandsim-study")
    assert without(read_json(a / "summary.json"), "throughput") == without(
        read_json(b / "summary.json"), "throughput"
    )
    assert without(read_json(a / "study.json"), "work") == without(read_json(b / "study.json"), "work")
    # threads=0 uses every core, as the CLI does.
    assert read_json(a / "study.json")["work"]["threads"] == read_json(b / "study.json")["work"]["threads"]
    # Every outcome file, too.
    outcomes = sorted(p.name for p in (a / "outcomes").iterdir())
    assert outcomes == sorted(p.name for p in (b / "outcomes").iterdir())
    same_bytes(a / "outcomes", b / "outcomes", *outcomes)
    # The printed table is the CLI's, apart from the throughput and the directory.
    cli_table = cli("run", KP, *SMALL, "-r", "6", "--seed", "11", "-q", "--out", str(tmp_path / "cli2"))
    assert cli_table.stdout.split("throughput:")[0] == study.text.split("throughput:")[0]


def test_dataframes_hold_exactly_the_values_of_the_files(tmp_path: Path) -> None:
    study = brandsim.run(small(KP), replications=4, out=tmp_path / "s")
    metrics = study.summary_json["metrics"]
    summary = study.summary
    assert list(summary.index) == list(brandsim.METRICS)
    for name, stats in metrics.items():
        assert summary.loc[name, "mean"] == stats["mean"]
        assert summary.loc[name, "ci95_low"] == stats["ci95"][0]
        assert summary.loc[name, "ci95_high"] == stats["ci95"][1]
        assert summary.loc[name, "p95"] == stats["p95"]
    daily = study.daily
    assert len(daily) == 30 and daily["day"].tolist() == list(range(30))
    lines = (study.dir / "daily.csv").read_text().splitlines()
    first = dict(zip(lines[0].split(","), lines[2].split(",")))
    assert daily.loc[1, "revenue_mean"] == float(first["revenue_mean"])
    assert len(study.replications) == 4
    # A notebook shows the summary table.
    assert "<table" in study._repr_html_() and "profit" in study._repr_html_()


def test_results_do_not_depend_on_threads(tmp_path: Path) -> None:
    one = brandsim.run(small(KP), replications=4, threads=1, out=tmp_path / "one")
    every = brandsim.run(small(KP), replications=4, out=tmp_path / "all")
    same_bytes(one.dir, every.dir, "daily.csv", "replications.csv")


def test_compare_paired_differences_equal_the_cli(tmp_path: Path) -> None:
    strategies = "scenarios/strategies.toml"
    cli("compare", strategies, *SMALL, "-r", "5", "-q", "--no-plots", "--out", str(tmp_path / "cli"))
    scenario = small(strategies)
    comparison = brandsim.compare(scenario, replications=5, plots=False, out=tmp_path / "py")
    same_bytes(tmp_path / "cli", comparison.dir, "compare.csv", "compare.json", "arm-0.toml", "arm-3.toml")
    # The per-replication differences average to the CLI's paired difference.
    table = comparison.table
    differences = comparison.paired_differences("profit")
    for arm in comparison.arm_names[1:]:
        row = table[(table["arm"] == arm) & (table["metric"] == "profit")].iloc[0]
        assert differences[arm].mean() == pytest.approx(row["difference"], rel=1e-12, abs=1e-9)
    assert comparison.replications("kol-heavy")["profit"].tolist() == [
        base + d
        for base, d in zip(
            comparison.replications(0)["profit"].tolist(), differences["kol-heavy"].tolist()
        )
    ]


def test_compare_of_files_equals_the_cli(tmp_path: Path) -> None:
    files = ["scenarios/knowledge_platform.toml", "scenarios/price_cut.toml"]
    cli("compare", *files, *SMALL, "-r", "3", "-q", "--no-plots", "--out", str(tmp_path / "cli"))
    comparison = brandsim.compare(
        small(files[0]), small(files[1]), replications=3, plots=False, out=tmp_path / "py"
    )
    same_bytes(tmp_path / "cli", comparison.dir, "compare.csv", "compare.json")


def test_sweep_equals_the_cli(tmp_path: Path) -> None:
    cli("sweep", KP, "--vary", "brand.value=0:0.5:0.25", *SMALL, "-r", "3", "-q", "--no-plots",
        "--out", str(tmp_path / "cli"))
    result = brandsim.sweep(small(KP), {"brand.value": "0:0.5:0.25"}, replications=3, plots=False,
                            out=tmp_path / "py")
    same_bytes(tmp_path / "cli", result.dir, "sweep.csv", "sweep.json")
    assert len(result.table) == 3
    listed = brandsim.sweep(small(KP), {"brand.value": [0, 0.25, 0.5]}, replications=3, plots=False)
    assert listed.table["profit_mean"].tolist() == result.table["profit_mean"].tolist()
    assert len(result.replications(2)) == 3


def test_sensitivity_equals_the_cli(tmp_path: Path) -> None:
    params = ["--param", "brand.value=0:1", "--param", "market.word_of_mouth=0:0.5"]
    cli("sensitivity", KP, *params, "--samples", "2", *SMALL, "-r", "2", "-q", "--no-plots",
        "--out", str(tmp_path / "cli"))
    result = brandsim.sensitivity(small(KP), {"brand.value": (0, 1), "market.word_of_mouth": (0, 0.5)},
                                  samples=2, replications=2, plots=False, out=tmp_path / "py")
    same_bytes(tmp_path / "cli", result.dir, "sensitivity.csv", "sensitivity.json")


def test_optimize_equals_the_cli(tmp_path: Path) -> None:
    cli("optimize", KP, "--objective", "profit", "--iterations", "3", "--replications-per-step", "2",
        *SMALL, "-r", "2", "-q", "--out", str(tmp_path / "cli"))
    result = brandsim.optimize(small(KP), objective="profit", iterations=3, replications_per_step=2,
                               replications=2, out=tmp_path / "py")
    same_bytes(tmp_path / "cli", result.dir, "trace.csv", "scenario.toml")
    assert without(read_json(tmp_path / "cli" / "optimize.json"), "seconds") == without(
        result.result, "seconds"
    )
    assert set(result.parameters) == {"brand.value"}


COHORTS = "period,regular\n0,1000\n1,631\n2,468\n3,382\n4,326\n5,289\n6,262\n7,241\n"


def test_fit_churn_equals_the_cli_and_takes_a_dataframe(tmp_path: Path) -> None:
    data = tmp_path / "cohorts.csv"
    data.write_text(COHORTS)
    cli("fit", "churn", str(data), "-q", "--out", str(tmp_path / "cli"))
    fit = brandsim.fit_churn(data, out=tmp_path / "py")
    same_bytes(tmp_path / "cli", fit.dir, "churn.json", "churn.csv")
    assert fit.estimates.loc["alpha", "estimate"] == pytest.approx(0.704, abs=0.001)
    assert fit.estimates.loc["beta", "estimate"] == pytest.approx(1.182, abs=0.001)
    frame = {"period": list(range(8)), "regular": [1000, 631, 468, 382, 326, 289, 262, 241]}
    again = brandsim.fit_churn(frame)
    assert again.estimates.loc["alpha", "estimate"] == fit.estimates.loc["alpha", "estimate"]
    import pandas

    indexed = brandsim.fit_churn(pandas.DataFrame(frame).set_index("period"))
    assert indexed.estimates.loc["beta", "estimate"] == fit.estimates.loc["beta", "estimate"]
    # Integer options take numpy integers, as a notebook computes them.
    assert brandsim.fit_churn(frame, periods=pandas.Series([12]).iloc[0]).curves["period"].iloc[-1] == 12


def test_fit_bass_equals_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "sales.csv"
    data.write_text("period,adoptions\n" + "".join(
        f"{t},{a}\n" for t, a in enumerate([840, 1470, 2110, 4000, 7590, 10950, 10530, 9470, 7790, 5890], 1)))
    cli("fit", "bass", str(data), "--period-days", "365", "-q", "--out", str(tmp_path / "cli"))
    fit = brandsim.fit_bass(data, period_days=365, out=tmp_path / "py")
    same_bytes(tmp_path / "cli", fit.dir, "bass.json", "bass.csv")
    assert list(fit.estimates.index) == ["m", "p", "q"]


def test_calibrate_equals_the_cli(tmp_path: Path) -> None:
    args = ["--data", "scenarios/data/last_quarter.csv", "--param", "brand.value=-3:3",
            "--starts", "1", "--max-iterations", "8"]
    cli("calibrate", "scenarios/last_quarter.toml", *args, "-r", "2", "-q", "--no-plots",
        "--out", str(tmp_path / "cli"))
    result = brandsim.calibrate(
        "scenarios/last_quarter.toml", "scenarios/data/last_quarter.csv", {"brand.value": (-3, 3)},
        starts=1, max_iterations=8, replications=2, plots=False, out=tmp_path / "py",
    )
    same_bytes(tmp_path / "cli", result.dir, "calibration.csv", "scenario.toml")
    assert without(read_json(tmp_path / "cli" / "calibration.json"), "seconds") == without(
        result.result, "seconds"
    )
    assert list(result.estimates.index) == ["brand.value"]
    assert result.scenario.to_dict()["uncertain"][0]["key"] == "brand.value"


def test_save_writes_the_cli_study_directory(tmp_path: Path) -> None:
    cli("run", KP, *SMALL, "-r", "3", "-q", "--out", str(tmp_path / "cli"))
    study = brandsim.run(small(KP), replications=3)
    saved = study.save(tmp_path / "saved")
    files = lambda d: sorted(str(p.relative_to(d)) for p in d.rglob("*"))  # noqa: E731
    assert files(saved) == files(tmp_path / "cli")
    # Not the lock file: it holds the id of the process that wrote the study.
    for name in files(saved):
        if (saved / name).is_file() and name not in ("report.html", "summary.json", "study.json", ".brandsim-lock"):
            assert (saved / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    assert str(saved) in (saved / "report.html").read_text()
    with pytest.raises(brandsim.ScenarioError, match="not empty"):
        study.save(tmp_path / "saved")
    # The temporary directory goes with the result.
    temporary = study.dir
    del study
    import gc

    gc.collect()
    assert not temporary.exists()


def test_run_to_precision_equals_the_cli(tmp_path: Path) -> None:
    cli("run", KP, *SMALL, "-r", "4", "--precision", "0.05", "--max-replications", "40",
        "--metric", "profit", "-q", "--no-plots", "--out", str(tmp_path / "cli"))
    study = brandsim.run(small(KP), replications=4, precision=0.05, max_replications=40,
                         metrics=["profit"], plots=False, out=tmp_path / "py")
    same_bytes(tmp_path / "cli", study.dir, "daily.csv", "replications.csv")
    assert study.summary_json["precision"] == read_json(tmp_path / "cli" / "summary.json")["precision"]


def test_shards_run_from_python_merge_into_the_whole_study(tmp_path: Path) -> None:
    for k in range(2):
        brandsim.run(small(KP), replications=5, shard=(k, 2), plots=False, out=tmp_path / f"shard{k}")
    merged = brandsim.merge(tmp_path / "shard0", tmp_path / "shard1", out=tmp_path / "merged")
    assert isinstance(merged, brandsim.Study)
    whole = brandsim.run(small(KP), replications=5, plots=False, out=tmp_path / "whole")
    same_bytes(merged.dir, whole.dir, "daily.csv", "replications.csv")
    cli("merge", str(tmp_path / "shard0"), str(tmp_path / "shard1"), "--out", str(tmp_path / "cli"))
    same_bytes(merged.dir, tmp_path / "cli", "daily.csv", "replications.csv", "scenario.toml")
    # A missing shard is refused.
    with pytest.raises(brandsim.ScenarioError, match="shard"):
        brandsim.merge(tmp_path / "shard0", out=tmp_path / "partial")


def test_sharded_comparison_merges_into_a_comparison(tmp_path: Path) -> None:
    scenario = small("scenarios/strategies.toml")
    for k in range(2):
        brandsim.compare(scenario, replications=4, shard=f"{k}/2", plots=False, out=tmp_path / f"s{k}")
    merged = brandsim.merge(tmp_path / "s0", tmp_path / "s1", out=tmp_path / "merged")
    assert isinstance(merged, brandsim.Comparison)
    whole = brandsim.compare(scenario, replications=4, plots=False, out=tmp_path / "whole")
    same_bytes(merged.dir, whole.dir, "compare.csv")


def test_calendar_scenario_with_dates_equals_the_cli(tmp_path: Path) -> None:
    import datetime

    calendar = "scenarios/campaign_calendar.toml"
    cli("sweep", calendar, "--set", "market.population=5000", "-r", "2", "-q", "--no-plots",
        "--vary", "campaigns.summer-sale.start=2026-06-01,2026-07-01", "--out", str(tmp_path / "cli"))
    scenario = brandsim.Scenario.from_file(calendar).set("market.population", 5000)
    dates = [datetime.date(2026, 6, 1), datetime.date(2026, 7, 1)]
    result = brandsim.sweep(scenario, {"campaigns.summer-sale.start": dates}, replications=2,
                            plots=False, out=tmp_path / "py")
    same_bytes(tmp_path / "cli", result.dir, "sweep.csv", "sweep.json")
    # A run of it: daily.csv has the dates, read as text.
    study = brandsim.run(scenario.set("campaigns.summer-sale.start", dates[1]), replications=2,
                         plots=False, out=tmp_path / "run")
    cli("run", calendar, "--set", "market.population=5000", "--set",
        "campaigns.summer-sale.start=2026-07-01", "-r", "2", "-q", "--no-plots", "--out", str(tmp_path / "clirun"))
    same_bytes(tmp_path / "clirun", study.dir, "daily.csv", "replications.csv")
    assert study.daily["date"].iloc[0] == "2026-01-01"
