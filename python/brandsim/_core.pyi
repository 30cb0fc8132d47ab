"""The native half of brandsim (Rust, PyO3): runs the CLI's commands in this
process. Use the functions of :mod:`brandsim` instead; these are their plumbing."""

from typing import Any

class CommandError(Exception):
    """A command refused its input or failed.

    ``args`` is ``(kind, message, file, key_path, line, column, exit_code)``: kind is
    one of ``"scenario"``, ``"data"``, ``"usage"``, ``"study"``, ``"interrupted"``,
    ``"internal"``; message is the CLI's (without ``error: ``); file, key_path,
    line (1-based) and column (1-based, data files) are ``None`` where unknown;
    exit_code is the CLI's (2, or 130 when interrupted)."""

#: Every scalar metric of a replication, in report order (``brandsim::metrics``).
METRIC_NAMES: list[str]
#: Every daily series of a replication, in report order (``brandsim::metrics``).
SERIES_NAMES: list[str]

def run_command(argv: list[str]) -> str:
    """Runs ``brandsim ARGV...`` (without the program name) in this process with
    the GIL released, and returns what the CLI would print on stdout. Wakes every
    100 ms to let Python handle signals; on ``KeyboardInterrupt`` the study stops
    as Ctrl-C stops the CLI (running replications finish and are saved), then the
    ``KeyboardInterrupt`` is raised. A Ctrl-C stops every study running in the
    process.

    Raises:
        CommandError: the CLI's error, with its structured fields.
    """

def load_scenario(path: str, sets: list[str], text: str | None = None) -> str:
    """Loads and validates the scenario file ``path`` (or ``text`` as if it were
    that file) with the ``KEY=VALUE`` overrides ``sets`` applied in order, as
    ``--set`` does; returns the resolved scenario as TOML.

    Raises:
        CommandError: kind ``"scenario"``, with file, key path and line.
    """

def toml_to_dict(text: str) -> dict[str, Any]:
    """A TOML document as nested dicts and lists (dates as ``datetime.date``).

    Raises:
        ValueError: not TOML.
    """

def dict_to_toml(document: dict[str, Any]) -> str:
    """Nested dicts and lists as a TOML document.

    Raises:
        TypeError: a value TOML cannot hold; ValueError: an integer beyond 64 bits.
    """

def value_literal(value: Any) -> str:
    """A Python value as the VALUE of ``--set KEY=VALUE`` (TOML; strings quoted)."""

def stored_replications_csv(dir: str) -> str:
    """The ``replications.csv`` text of the study stored in ``dir`` (a sweep's grid
    point or a comparison's arm), made by the CLI's own function.

    Raises:
        CommandError: kind ``"study"``: no complete study there.
    """

def key_position(text: str, key_path: str) -> tuple[int, int] | None:
    """Where ``key_path`` (``""``: a TOML syntax error) is written in the scenario
    text: ``(line, column)``, 1-based, of its value; ``None`` if not in the text."""
