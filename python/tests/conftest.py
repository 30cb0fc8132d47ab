"""Shared fixtures of the brandsim package's tests: the repository, the CLI binary
to compare against, small scenarios, and running the CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import brandsim

REPO = Path(__file__).resolve().parents[2]

#: Keeps every study small: a few thousand users over a month.
SMALL = ("--set", "market.population=5000", "--set", "simulation.days=30")


def cli_binary() -> str:
    """The `brandsim` binary built from this checkout (tests/python.rs passes it)."""
    path = os.environ.get("BRANDSIM_BIN") or str(REPO / "target" / "release" / "brandsim")
    if not Path(path).exists():
        pytest.fail(f"no brandsim binary at {path}: run `cargo build --release` or set BRANDSIM_BIN")
    return path


def cli(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    """Runs the CLI from the repository root; checks its exit code."""
    done = subprocess.run(
        [cli_binary(), *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == expect, f"brandsim {' '.join(args)}: exit {done.returncode}\n{done.stderr}"
    return done


def small(path: str) -> brandsim.Scenario:
    """The bundled scenario `path` (relative to the repository) made small, with the
    same `--set` overrides as SMALL."""
    return (
        brandsim.Scenario.from_file(path)
        .set("market.population", 5000)
        .set("simulation.days", 30)
    )


def without(document: dict, *keys: str) -> dict:
    """`document` without the (volatile) top-level `keys`."""
    return {k: v for k, v in document.items() if k not in keys}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs from the repository root, as the CLI examples do."""
    monkeypatch.chdir(REPO)
