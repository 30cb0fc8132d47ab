"""Every kind of bad input the CLI refuses is an exception with the CLI's message
(and its key path, line and column where known), and nothing is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

import brandsim
from conftest import SMALL, cli, small

KP = "scenarios/knowledge_platform.toml"
LQ = "scenarios/last_quarter.toml"
DATA = "scenarios/data/last_quarter.csv"


def write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


# (id, python call, CLI arguments, expected key_path, expected line, expected column)
Case = tuple[str, Callable[[Path], Any], Callable[[Path], list[str]], Any, Any, Any]

CASES: list[Case] = [
    (
        "missing-file",
        lambda t: brandsim.run(str(t / "absent.toml")),
        lambda t: ["run", str(t / "absent.toml")],
        None, None, None,
    ),
    (
        "bad-set-value",
        lambda t: brandsim.run(brandsim.Scenario.from_file(KP).set("brand.value", "high")),
        lambda t: ["run", KP, "--set", "brand.value=high"],
        "brand.value", None, None,
    ),
    (
        "zero-replications",
        lambda t: brandsim.run(small(KP), replications=0),
        lambda t: ["run", KP, *SMALL, "--replications", "0"],
        "simulation.replications", None, None,
    ),
    (
        "vary-off-grid",
        lambda t: brandsim.sweep(small(KP), {"brand.value": "0:1:0.3"}),
        lambda t: ["sweep", KP, *SMALL, "--vary", "brand.value=0:1:0.3"],
        None, None, None,
    ),
    (
        "vary-unknown-key",
        lambda t: brandsim.sweep(small(KP), {"brand.valu": [0, 1]}),
        lambda t: ["sweep", KP, *SMALL, "--vary", "brand.valu=0,1"],
        "brand.valu", None, None,
    ),
    (
        "unknown-metric",
        lambda t: brandsim.compare(small("scenarios/strategies.toml"), metric="profits"),
        lambda t: ["compare", "scenarios/strategies.toml", *SMALL, "--metric", "profits"],
        None, None, None,
    ),
    (
        "sensitivity-empty-range",
        lambda t: brandsim.sensitivity(small(KP), {"brand.value": (1, 0)}),
        lambda t: ["sensitivity", KP, *SMALL, "--param", "brand.value=1:0"],
        None, None, None,
    ),
    (
        "sobol-unknown-method",
        lambda t: brandsim.sensitivity(small(KP), {"brand.value": (0, 1)}, method="fast"),
        lambda t: ["sensitivity", KP, *SMALL, "--param", "brand.value=0:1", "--method", "fast"],
        None, None, None,
    ),
    (
        "optimize-unknown-estimator",
        lambda t: brandsim.optimize(small(KP), estimator="adam"),
        lambda t: ["optimize", KP, *SMALL, "--estimator", "adam"],
        None, None, None,
    ),
    (
        "optimize-bad-budget",
        lambda t: brandsim.optimize(small(KP), budgets={("channels.ads.daily_budget",): -5}),
        lambda t: ["optimize", KP, *SMALL, "--budget", "channels.ads.daily_budget=-5"],
        None, None, None,
    ),
    (
        "fit-churn-growing-cohort",
        lambda t: brandsim.fit_churn(write(t, "c.csv", "period,a\n0,100\n1,90\n2,95\n")),
        lambda t: ["fit", "churn", write(t, "c.csv", "period,a\n0,100\n1,90\n2,95\n")],
        None, 4, 2,
    ),
    (
        "fit-bass-not-a-number",
        lambda t: brandsim.fit_bass(write(t, "b.csv", "period,n\n1,5\n2,x\n3,9\n")),
        lambda t: ["fit", "bass", write(t, "b.csv", "period,n\n1,5\n2,x\n3,9\n")],
        None, 3, 2,
    ),
    (
        "calibrate-unknown-series",
        lambda t: brandsim.calibrate(LQ, write(t, "o.csv", "day,signups\n0,5\n"), ["brand.value"]),
        lambda t: ["calibrate", LQ, "--data", write(t, "o.csv", "day,signups\n0,5\n"), "--param", "brand.value"],
        None, None, None,
    ),
    (
        "calibrate-unknown-param",
        lambda t: brandsim.calibrate(LQ, DATA, {"brand.valu": (0, 1)}),
        lambda t: ["calibrate", LQ, "--data", DATA, "--param", "brand.valu=0:1"],
        None, None, None,
    ),
    (
        "resume-without-study",
        lambda t: brandsim.run(small(KP), resume=t / "empty"),
        lambda t: ["run", KP, *SMALL, "--resume", str(t / "empty")],
        None, None, None,
    ),
    (
        "out-is-a-file",
        lambda t: brandsim.run(small(KP), out=write(t, "file", "x")),
        lambda t: ["run", KP, *SMALL, "--out", write(t, "file", "x")],
        None, None, None,
    ),
    (
        "out-holds-a-users-files",
        lambda t: brandsim.run(small(KP), out=Path(write(t, "notes.txt", "mine")).parent),
        lambda t: ["run", KP, *SMALL, "--out", str(Path(write(t, "notes.txt", "mine")).parent)],
        None, None, None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_scenario_error_with_the_cli_message(case: Case, tmp_path: Path) -> None:
    name, call, argv, key_path, line, column = case
    (tmp_path / "empty").mkdir()
    args = argv(tmp_path)  # writes the input files, the same the call writes
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(brandsim.ScenarioError) as caught:
        call(tmp_path)
    error = caught.value
    assert error.exit_code == 2
    if key_path is not None:
        assert error.key_path == key_path
    if line is not None:
        assert error.line == line
    if column is not None:
        assert error.column == column
    # Nothing was written (but the lock file, which the CLI leaves too: it holds
    # no results and keeps a second process out).
    written = lambda d: sorted(p.name for p in d.iterdir() if p.name != ".brandsim-lock")  # noqa: E731
    assert written(tmp_path) == before
    assert written(tmp_path / "empty") == []
    refused = cli(*args, "-q", expect=2)
    # The CLI's message (clap's ends with a hint at --help).
    assert refused.stderr.split("\n\n")[0].rstrip("\n") == f"error: {error}"


def test_a_python_value_of_the_wrong_type_is_refused_before_running() -> None:
    with pytest.raises(brandsim.ScenarioError, match="replications"):
        brandsim.run(small(KP), replications="many")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        brandsim.run(42)  # type: ignore[arg-type]


def test_save_into_a_non_empty_directory_is_refused(tmp_path: Path) -> None:
    study = brandsim.run(small(KP), replications=2, plots=False)
    (tmp_path / "x").write_text("mine")
    with pytest.raises(brandsim.ScenarioError):
        study.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["x"]
