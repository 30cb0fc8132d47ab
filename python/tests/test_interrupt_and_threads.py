"""Ctrl-C stops a study cleanly and keeps its finished replications; the GIL is
released while a study runs."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

import brandsim
from conftest import read_json, without

KP = "scenarios/knowledge_platform.toml"


def long_study() -> brandsim.Scenario:
    """Many short replications: Ctrl-C always lands in the middle of the study."""
    return (
        brandsim.Scenario.from_file(KP)
        .set("market.population", 20000)
        .set("simulation.days", 60)
    )


def interrupt_once(outcomes: Path, at_least: int) -> threading.Thread:
    """Sends SIGINT to this process (as Ctrl-C does) once `at_least` replications
    are saved in `outcomes`."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if outcomes.is_dir() and len(list(outcomes.iterdir())) >= at_least:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_keeps_finished_replications_and_the_study_resumes(tmp_path: Path) -> None:
    out = tmp_path / "study"
    replications = 160
    watcher = interrupt_once(out / "outcomes", at_least=2)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        brandsim.run(long_study(), replications=replications, out=out, plots=False)
    watcher.join()
    kept = sorted(p.name for p in (out / "outcomes").iterdir())
    assert 2 <= len(kept) < replications, len(kept)
    # The whole study would take far longer than the interrupted one did.
    assert time.monotonic() - started < 60
    assert not (out / "summary.json").exists()
    # The flag is cleared: the next study runs, and continues the interrupted one.
    resumed = brandsim.run(long_study(), replications=replications, resume=out, plots=False)
    assert resumed.dir == out
    assert len(list((out / "outcomes").iterdir())) == replications
    # ... to the results of an uninterrupted run.
    whole = brandsim.run(long_study(), replications=replications, out=tmp_path / "whole", plots=False)
    assert (out / "daily.csv").read_bytes() == (whole.dir / "daily.csv").read_bytes()
    assert without(read_json(out / "summary.json"), "throughput") == without(
        whole.summary_json, "throughput"
    )


def test_ctrl_c_without_out_leaves_no_temporary_directory(tmp_path: Path, monkeypatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    scenario = long_study()

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(tmp_path.glob("brandsim-*/outcomes/*")):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        brandsim.run(scenario, replications=160, plots=False)
    watcher.join()
    # The study's temporary directory is gone (a scenario from a file has none).
    assert list(tmp_path.iterdir()) == []


def test_gil_is_released_while_a_study_runs() -> None:
    counter = 0
    running = threading.Event()
    done = threading.Event()

    def count() -> None:
        nonlocal counter
        running.set()
        while not done.is_set():
            counter += 1

    thread = threading.Thread(target=count, daemon=True)
    thread.start()
    running.wait()
    started = time.monotonic()
    before = counter
    brandsim.run(long_study(), replications=24, plots=False)
    during = counter - before
    seconds = time.monotonic() - started
    done.set()
    thread.join()
    # A thread that waited for the GIL the whole study would count next to nothing;
    # a free one counts hundreds of thousands of times a second.
    assert seconds > 0.2, "the study should take a while"
    assert during > 10_000 * seconds, (during, seconds)


def test_studies_run_from_several_threads_at_once_match_one_by_one() -> None:
    scenario = brandsim.Scenario.from_file(KP).set("market.population", 5000).set("simulation.days", 30)
    seeds = [1, 2, 3]
    alone = {s: brandsim.run(scenario, replications=3, seed=s, plots=False).summary_json for s in seeds}
    together: dict[int, dict] = {}

    def one(seed: int) -> None:
        together[seed] = brandsim.run(scenario, replications=3, seed=seed, plots=False).summary_json

    threads = [threading.Thread(target=one, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in seeds:
        assert without(alone[s], "throughput") == without(together[s], "throughput")


def test_tables_without_pandas_are_dicts_of_lists(monkeypatch) -> None:
    study = brandsim.run(
        brandsim.Scenario.from_file(KP).set("market.population", 5000).set("simulation.days", 30),
        replications=3,
        plots=False,
    )
    monkeypatch.setattr(brandsim, "_has_pandas", lambda: False)
    summary = study.summary
    assert isinstance(summary, brandsim.Table)
    columns = summary.to_dict()
    assert columns["metric"] == list(brandsim.METRICS)
    assert summary.row("profit")["mean"] == study.summary_json["metrics"]["profit"]["mean"]
    daily = study.daily
    assert isinstance(daily["day"], list) and daily["day"][:3] == [0, 1, 2]
    assert len(study.replications) == 3


def test_ctrl_c_stops_a_comparison_and_it_resumes(tmp_path: Path) -> None:
    out = tmp_path / "comparison"
    strategies = (
        brandsim.Scenario.from_file("scenarios/strategies.toml")
        .set("market.population", 20000)
        .set("simulation.days", 60)
    )
    watcher = interrupt_once(out / "arms" / "0" / "outcomes", at_least=2)
    with pytest.raises(KeyboardInterrupt):
        brandsim.compare(strategies, replications=40, out=out, plots=False)
    watcher.join()
    kept = sum(len(list(p.iterdir())) for p in out.glob("arms/*/outcomes"))
    assert 2 <= kept < 5 * 40
    assert not (out / "compare.csv").exists()
    resumed = brandsim.compare(strategies, replications=40, resume=out, plots=False)
    assert len(resumed.table) == 5 * len(brandsim.METRICS)
    assert sum(len(list(p.iterdir())) for p in out.glob("arms/*/outcomes")) == 5 * 40
