"""The package's type hints are complete and consistent (what editors complete
and document from): mypy --strict over brandsim/, its native stub included."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO


def test_package_type_checks_strictly() -> None:
    pytest.importorskip("mypy", reason="mypy is installed by tests/python.rs")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", "/dev/null", "brandsim"],
        cwd=REPO / "python", capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
