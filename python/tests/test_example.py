"""The example script of examples/python/ runs to the end (quick settings)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_example_script_runs_to_the_end(tmp_path: Path) -> None:
    env = {**os.environ, "BRANDSIM_EXAMPLE_QUICK": "1", "BRANDSIM_EXAMPLE_OUT": str(tmp_path),
           "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "examples/python/calibrate_and_compare.py"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "more-social:" in done.stdout and "better in" in done.stdout
    assert (tmp_path / "compare" / "compare.csv").exists()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "no plot" in done.stdout
    else:
        assert (tmp_path / "paired_difference.png").stat().st_size > 1000


def test_readme_example_runs_and_prints_what_it_says(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From Python", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"runs/strategies-python"', repr(str(tmp_path / "saved")))
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    # The numbers the README quotes in its comment.
    assert "225575" in done.stdout and "222863.5" in done.stdout
    assert "brand-investment" in done.stdout
    assert (tmp_path / "saved" / "summary.json").exists()
