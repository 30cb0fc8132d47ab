"""brandsim from Python: the agent-based market simulation engine of the ``brandsim``
command, with the same results bit for bit.

Every function runs the CLI's command of the same name inside this process (the
native module ``brandsim._core`` parses the same options and calls the same Rust
functions), writes the command's study directory (to ``out``, or to a temporary
directory kept as long as the result object lives), and reads its files back into
a result object: tables as pandas DataFrames when pandas is importable, else as
:class:`Table` (``.to_dict()``, columns as lists).

>>> import brandsim
>>> base = brandsim.Scenario.from_file("scenarios/knowledge_platform.toml")
>>> study = brandsim.run(base.set("market.population", 20_000), replications=8)
>>> study.summary.loc["profit", ["mean", "ci95_low", "ci95_high"]]   # with pandas

Errors: :class:`ScenarioError` for input the CLI refuses with exit code 2 (the
scenario, a ``set``, an option, a data file), with ``key_path``, ``line`` and
``column`` where known; :class:`StudyError` when a study cannot be carried out
(an output directory that cannot be written, a damaged study to resume, too
little memory). Ctrl-C stops a running study as it stops the CLI (running
replications finish and are saved in ``out``) and raises ``KeyboardInterrupt``.
The GIL is released while a study runs; ``threads=0`` uses every core.
"""

from __future__ import annotations

import csv
import io
import json
import math
import operator
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, Union

from . import _core

__all__ = [
    "BrandsimError",
    "ScenarioError",
    "StudyError",
    "Scenario",
    "Table",
    "Result",
    "Study",
    "Sweep",
    "Comparison",
    "Sensitivity",
    "Optimization",
    "Fit",
    "Calibration",
    "run",
    "sweep",
    "compare",
    "sensitivity",
    "optimize",
    "fit_churn",
    "fit_bass",
    "calibrate",
    "merge",
    "METRICS",
    "DAILY_SERIES",
]

__version__ = "0.1.0"

PathLike = Union[str, "os.PathLike[str]"]

#: The metrics of every replication, in the order of ``replications.csv`` (MODEL.md,
#: "Metrics"); counts are users, money is in the scenario's currency over the whole
#: horizon, rates are shares in [0, 1].
METRICS: tuple[str, ...] = tuple(_core.METRIC_NAMES)

#: The daily series of ``daily.csv``: new users (or money) per day, except ``aware``
#: and ``active_payers`` (end of day). Both lists come from the library
#: (``brandsim::metrics``), so they always match the files the commands write.
DAILY_SERIES: tuple[str, ...] = tuple(_core.SERIES_NAMES)


# ---------------------------------------------------------------------------------
# Errors


class BrandsimError(Exception):
    """A brandsim command refused its input or failed; ``str(error)`` is the CLI's
    message (``error: ...`` without the prefix).

    Attributes:
        file: the scenario or data file the problem is in (as the user named it),
            or ``None``.
        key_path: where in the scenario, e.g. ``"market.segments[1].share"``, or
            ``None`` when the problem is not tied to a key.
        line: 1-based line in ``file``, or ``None`` when unknown (a value from
            ``Scenario.set``).
        column: 1-based column in a data file (CSV), or ``None``.
        exit_code: the exit code of the CLI for the same problem (2; 130 when
            interrupted).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key_path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        exit_code: int = 2,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.key_path = key_path
        self.line = line
        self.column = column
        self.exit_code = exit_code


class ScenarioError(BrandsimError, ValueError):
    """Bad input, refused before anything is simulated or written: a malformed or
    invalid scenario, a bad ``set`` key or value, a bad option (``vary``,
    ``params``, a metric name, ...), a bad data file, an output directory holding
    another study."""


class StudyError(BrandsimError, RuntimeError):
    """A study could not be carried out: an output that cannot be written, a
    damaged study directory to resume, too little memory, or a study stopped by a
    Ctrl-C given to another thread."""


def _raise(
    error: _core.CommandError,
    labels: Mapping[str, str] = {},
    sources: Mapping[str, str | None] = {},
) -> NoReturn:
    """Raises ``error`` as ScenarioError or StudyError. ``labels`` maps temporary
    paths to what messages show instead; ``sources`` the scenario files involved to
    their text (``None``: read the file), to find the column of a scenario error."""
    kind, message, file, key_path, line, column, exit_code = error.args
    if kind == "scenario" and column is None and line is not None and file in sources:
        column = _column(sources[file], file, key_path or "", line)
    for hidden, shown in labels.items():
        message = message.replace(hidden, shown)
        if file == hidden:
            file = shown
    cls = StudyError if kind in ("study", "interrupted", "internal") else ScenarioError
    raise cls(
        message,
        file=file,
        key_path=key_path,
        line=line,
        column=column,
        exit_code=exit_code,
    ) from None


def _column(text: str | None, file: str, key_path: str, line: int) -> int | None:
    """The column of ``key_path`` (or of a syntax error) on ``line`` of the scenario
    text, when the key is written there."""
    if text is None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    position = _core.key_position(text, key_path)
    return position[1] if position is not None and position[0] == line else None


# ---------------------------------------------------------------------------------
# Tables


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


class Table:
    """A table without pandas: named columns of equal length.

    ``table["mean"]`` is a column (a list), ``table.columns`` the names in order,
    ``table.to_dict()`` a ``{column: list}`` dict, ``len(table)`` the number of
    rows, ``table.to_pandas()`` a DataFrame (needs pandas).
    """

    def __init__(self, columns: Mapping[str, list[Any]], index: str | None = None) -> None:
        self._columns = {name: list(values) for name, values in columns.items()}
        self.index = index
        lengths = {len(v) for v in self._columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of unequal lengths: {sorted(lengths)}")

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def __getitem__(self, column: str) -> list[Any]:
        return self._columns[column]

    def __contains__(self, column: object) -> bool:
        return column in self._columns

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()), []))

    def row(self, key: Any) -> dict[str, Any]:
        """The row whose index column (``self.index``) holds ``key``, as a dict."""
        if self.index is None:
            raise KeyError("this table has no index column; use a row number with rows()")
        i = self._columns[self.index].index(key)
        return {name: values[i] for name, values in self._columns.items()}

    def rows(self) -> list[dict[str, Any]]:
        """Every row as a dict."""
        return [
            {name: values[i] for name, values in self._columns.items()} for i in range(len(self))
        ]

    def to_dict(self) -> dict[str, list[Any]]:
        return {name: list(values) for name, values in self._columns.items()}

    def to_pandas(self) -> Any:
        import pandas

        frame = pandas.DataFrame(self._columns)
        return frame.set_index(self.index) if self.index is not None else frame

    def __repr__(self) -> str:
        return f"Table({len(self)} rows: {', '.join(self.columns)})"


def _frame(columns: Mapping[str, list[Any]], index: str | None = None) -> Any:
    table = Table(columns, index)
    return table.to_pandas() if _has_pandas() else table


def _cell(text: str) -> Any:
    """A CSV cell as written by brandsim: an integer, a float (read exactly), or
    text (dates, names); an empty cell is ``None`` (pandas: NaN)."""
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _read_csv(path: Path) -> dict[str, list[Any]]:
    return _read_csv_text(path.read_text(encoding="utf-8"))


def _read_csv_text(text: str) -> dict[str, list[Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    columns: dict[str, list[Any]] = {name: [] for name in header}
    for record in reader:
        for name, value in zip(header, record):
            columns[name].append(_cell(value))
    return columns


def _write_csv(data: Any, path: Path) -> None:
    """Writes a table given as a DataFrame or ``{column: values}`` as CSV."""
    if hasattr(data, "to_csv"):
        # A named index (`period`, `day` set as the index) is a column of the data.
        named_index = any(name is not None for name in getattr(data.index, "names", [None]))
        data.to_csv(path, index=named_index)
        return
    if isinstance(data, Table):
        data = data.to_dict()
    if not isinstance(data, Mapping):
        raise TypeError(
            f"expected a path, a DataFrame or a dict of columns, found {type(data).__name__}"
        )
    names = list(data)
    columns = [list(data[name]) for name in names]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(names)
        for row in zip(*columns):
            writer.writerow(
                ["" if v is None or (isinstance(v, float) and math.isnan(v)) else repr(v)
                 if isinstance(v, float) else v for v in row]
            )


# ---------------------------------------------------------------------------------
# Temporary directories


class _TempDir:
    """A temporary directory deleted when the last object holding it goes."""

    def __init__(self, prefix: str = "brandsim-") -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)

    def cleanup(self) -> None:
        self._finalizer()


# ---------------------------------------------------------------------------------
# Scenarios


class Scenario:
    """A checked scenario (MODEL.md, "Scenario file"), immutable: a scenario file
    plus ``set`` overrides, exactly what the CLI gets as ``FILE --set KEY=VALUE...``.

    Build one with :meth:`from_file`, :meth:`from_toml` or :meth:`from_dict`; each
    validates at once and raises :class:`ScenarioError` with the key path and line.
    """

    __slots__ = ("_path", "_sets", "_label", "_keep")

    def __init__(
        self, _path: str, _sets: tuple[str, ...] = (), _label: str | None = None, _keep: Any = None
    ) -> None:
        self._path = _path
        self._sets = _sets
        self._label = _label if _label is not None else _path
        self._keep = _keep

    def _labels(self) -> dict[str, str]:
        return {} if self._label == self._path else {self._path: self._label}

    def _resolved(self) -> str:
        try:
            text = _core.load_scenario(self._path, list(self._sets))
        except _core.CommandError as error:
            _raise(error, self._labels(), {self._path: None})
        for hidden, shown in self._labels().items():
            text = text.replace(hidden, shown, 1)
        return text

    @classmethod
    def from_file(cls, path: PathLike) -> Scenario:
        """The scenario in the TOML file ``path`` (relative paths in it, such as a
        ``[schedule] file``, are read from the file's directory).

        Raises:
            ScenarioError: the file cannot be read or is not a valid scenario
                (``key_path``, ``line`` where known).
        """
        scenario = cls(os.fspath(path))
        scenario._resolved()
        return scenario

    @classmethod
    def from_toml(
        cls, text: str, *, name: str | None = None, base_dir: PathLike | None = None
    ) -> Scenario:
        """The scenario in the TOML ``text``, as if read from the file
        ``<base_dir>/<name>.toml``: ``name`` (default ``"scenario"``) is its name
        when the text sets none, and names it in errors; a relative ``[schedule]
        file`` is read from ``base_dir`` (default: the current directory).

        Raises:
            ScenarioError: not a valid scenario; ``line`` counts lines of ``text``.
        """
        stem = name if name is not None else "scenario"
        label = os.path.join(os.fspath(base_dir), f"{stem}.toml") if base_dir else f"{stem}.toml"
        try:
            resolved = _core.load_scenario(label, [], text)
        except _core.CommandError as error:
            _raise(error, {}, {label: text})
        keep = _TempDir()
        path = keep.path / f"{stem}.toml"
        path.write_text(resolved, encoding="utf-8")
        return cls(str(path), (), label, keep)

    @classmethod
    def from_dict(
        cls, document: Mapping[str, Any], *, name: str | None = None, base_dir: PathLike | None = None
    ) -> Scenario:
        """The scenario given as nested dicts and lists, as TOML would read it
        (``{"market": {"population": 10000, ...}, "channels": [{...}], ...}``;
        dates as ``datetime.date``). ``name`` and ``base_dir`` as in
        :meth:`from_toml`; ``line`` in errors counts lines of :meth:`to_toml`'s
        layout of the dict.

        Raises:
            ScenarioError: not a valid scenario.
            TypeError: a value TOML cannot hold (``None``, objects).
        """
        return cls.from_toml(_core.dict_to_toml(dict(document)), name=name, base_dir=base_dir)

    def set(self, key: str, value: Any) -> Scenario:
        """A new scenario with the value at ``key`` replaced, as ``--set KEY=VALUE``
        does (``"brand.value"``, ``"channels.kol.daily_budget"``,
        ``"market.segments.students.share"``, ``"content.annual-vip.price"``);
        this one is unchanged. Validated like the file.

        Raises:
            ScenarioError: unknown key path or a value out of range, with the key
                path (``line`` is ``None``: the value comes from ``set``).
        """
        if "=" in key or not key.strip():
            raise ScenarioError(
                f"--set: {key!r}: expected a key path like brand.value (without '=')",
                file="--set",
                key_path=key,
            )
        assignment = f"{key}={_core.value_literal(value)}"
        scenario = Scenario(self._path, self._sets + (assignment,), self._label, self._keep)
        scenario._resolved()
        return scenario

    def to_toml(self) -> str:
        """The resolved scenario as TOML: the file with every ``set`` applied and its
        ``name`` filled in (the ``scenario.toml`` a study of it writes)."""
        return self._resolved()

    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario as nested dicts and lists (see :meth:`to_toml`)."""
        return _core.toml_to_dict(self._resolved())

    @property
    def name(self) -> str:
        """The scenario's name (its ``name`` key, else the file's stem)."""
        return str(self.to_dict()["name"])

    @property
    def path(self) -> str:
        """The file this scenario is read from (a temporary file for
        :meth:`from_toml` and :meth:`from_dict`)."""
        return self._path

    @property
    def overrides(self) -> tuple[str, ...]:
        """The ``set`` overrides as ``KEY=VALUE`` texts, in order: the CLI's
        ``--set`` options for the same scenario."""
        return self._sets

    def _materialized(self, keep: _TempDir) -> str:
        """A file holding this scenario with its overrides applied (for commands
        that take several files with different overrides)."""
        if not self._sets:
            return self._path
        path = keep.path / f"{self.name}.toml"
        n = 2
        while path.exists():
            path = keep.path / f"{self.name}-{n}.toml"
            n += 1
        path.write_text(self._resolved(), encoding="utf-8")
        return str(path)

    def __repr__(self) -> str:
        sets = "".join(f" --set {s}" for s in self._sets)
        return f"<brandsim.Scenario {self._label}{sets}>"


# ---------------------------------------------------------------------------------
# Results


class Result:
    """What a command wrote: its output directory, read back.

    Attributes:
        dir: the output directory (``out``, or a temporary directory deleted with
            this object; :meth:`save` keeps a copy).
        text: what the CLI prints for the same command (its tables).
    """

    def __init__(self, directory: Path, text: str, keep: object) -> None:
        self.dir = Path(directory)
        self.text = text
        self._keep = keep

    @property
    def files(self) -> list[str]:
        """The files of the output directory, relative to it, sorted."""
        return sorted(
            str(p.relative_to(self.dir)) for p in self.dir.rglob("*") if p.is_file()
        )

    def read_json(self, name: str) -> Any:
        """The JSON file ``name`` of the output directory, parsed."""
        return json.loads((self.dir / name).read_text(encoding="utf-8"))

    def _json_object(self, name: str) -> dict[str, Any]:
        document = self.read_json(name)
        if not isinstance(document, dict):
            raise StudyError(f"{self.dir / name}: expected a JSON object")
        return document

    def read_csv(self, name: str, index: str | None = None) -> Any:
        """The CSV file ``name`` of the output directory as a DataFrame (or
        :class:`Table`), numbers read exactly as written."""
        return _frame(_read_csv(self.dir / name), index)

    @property
    def report(self) -> Path:
        """``report.html``: the self-contained HTML report of the study."""
        return self.dir / "report.html"

    def save(self, directory: PathLike) -> Path:
        """Writes the output directory to ``directory`` (which must not exist or be
        empty): the CLI's study directory, file for file, with ``report.html``
        rebuilt to name its new place. Returns the new directory.

        Raises:
            ScenarioError: ``directory`` exists and is not empty.
        """
        target = Path(directory)
        if target.exists() and any(target.iterdir()):
            raise ScenarioError(
                f"{target}: exists and is not empty; expected a new or empty directory"
            )
        shutil.copytree(self.dir, target, dirs_exist_ok=True)
        if (target / "report.html").exists():
            try:
                _core.run_command(["report", str(target)])
            except _core.CommandError as error:
                _raise(error)
        return target

    def __repr__(self) -> str:
        return f"<brandsim.{type(self).__name__} in {self.dir}>"

    def __str__(self) -> str:
        return self.text

    def _headline(self) -> Any:
        """The table a notebook shows for this result."""
        return None

    def _repr_html_(self) -> str | None:
        """In a notebook: the headline table (with pandas), else the plain repr."""
        table = self._headline()
        return table.to_html() if hasattr(table, "to_html") else None


class Study(Result):
    """A Monte Carlo study of one scenario (``brandsim run``)."""

    def _headline(self) -> Any:
        return self.summary

    @property
    def summary(self) -> Any:
        """One row per metric (index ``metric``, in :data:`METRICS` order):
        ``mean``, ``sd``, ``se`` (standard error of the mean), ``ci95_low``,
        ``ci95_high`` (Student's t), ``p05``, ``p50``, ``p95`` over replications;
        units of each metric."""
        metrics = self.summary_json["metrics"]
        names = [m for m in METRICS if m in metrics] + [m for m in metrics if m not in METRICS]
        columns: dict[str, list[Any]] = {"metric": names}
        for stat in ("mean", "sd", "se"):
            columns[stat] = [metrics[m][stat] for m in names]
        columns["ci95_low"] = [metrics[m]["ci95"][0] for m in names]
        columns["ci95_high"] = [metrics[m]["ci95"][1] for m in names]
        for stat in ("p05", "p50", "p95"):
            columns[stat] = [metrics[m][stat] for m in names]
        return _frame(columns, "metric")

    @property
    def summary_json(self) -> dict[str, Any]:
        """``summary.json`` parsed: scenario, seed, replications, population, days,
        metrics and throughput."""
        return self._json_object("summary.json")

    @property
    def replications(self) -> Any:
        """One row per replication (``replications.csv``): ``replication``, every
        metric, then each drawn ``[[uncertain]]`` value."""
        return self.read_csv("replications.csv")

    @property
    def daily(self) -> Any:
        """One row per day (``daily.csv``): ``day`` (and ``date`` with a
        ``start_date``), then ``<series>_mean``, ``_p05``, ``_p50``, ``_p95`` of
        each daily series over replications."""
        return self.read_csv("daily.csv")

    @property
    def scenario(self) -> Scenario:
        """The scenario as resolved (``scenario.toml``)."""
        return Scenario(str(self.dir / "scenario.toml"), (), None, self._keep)


class Sweep(Result):
    """A grid of scenarios on the same replications (``brandsim sweep``)."""

    def _headline(self) -> Any:
        return self.table

    @property
    def table(self) -> Any:
        """``sweep.csv``: one row per grid point: the varied keys, then
        ``<metric>_mean``, ``_ci_low``, ``_ci_high`` of every metric."""
        return self.read_csv("sweep.csv")

    @property
    def result(self) -> dict[str, Any]:
        """``sweep.json`` parsed: axes, points with their metrics."""
        return self._json_object("sweep.json")

    def replications(self, point: int) -> Any:
        """One row per replication of grid point ``point`` (0-based, in ``table``
        order): ``replication``, every metric, each drawn ``[[uncertain]]`` value
        (what ``run`` writes as ``replications.csv``)."""
        return _stored_replications(self, "points", point)


class Comparison(Result):
    """A scenario against its variants or other scenarios, paired on the same
    replications (``brandsim compare``)."""

    def _headline(self) -> Any:
        return self.table

    _labels: Mapping[str, str] = {}

    def _shown(self, label: str) -> str:
        for hidden, shown in self._labels.items():
            label = label.replace(hidden, shown)
        return label

    @property
    def table(self) -> Any:
        """``compare.csv``: one row per arm and metric: ``mean``, ``ci_low``,
        ``ci_high``, the paired ``difference`` from the base with its 95% CI,
        ``se_paired``, ``se_unpaired``, ``p_beats_base`` and its Wilson interval."""
        columns = _read_csv(self.dir / "compare.csv")
        columns["arm"] = [self._shown(str(a)) for a in columns["arm"]]
        return _frame(columns)

    @property
    def result(self) -> dict[str, Any]:
        """``compare.json`` parsed (the table's numbers and the ranking)."""
        return self._json_object("compare.json")

    @property
    def arm_names(self) -> list[str]:
        """The arms' labels, base first (``compare.json``)."""
        return [self._shown(arm["name"]) for arm in self.result["arms"]]

    def replications(self, arm: int | str) -> Any:
        """One row per replication of ``arm`` (its index, 0 = base, or its name):
        ``replication``, every metric, each drawn ``[[uncertain]]`` value."""
        return _stored_replications(self, "arms", self._arm_index(arm))

    def _arm_index(self, arm: int | str) -> int:
        if isinstance(arm, str):
            names = self.arm_names
            if arm not in names:
                raise KeyError(f"no arm named {arm!r}; arms are: {', '.join(names)}")
            return names.index(arm)
        return arm

    def paired_differences(self, metric: str = "profit") -> Any:
        """Per replication, each arm's ``metric`` minus the base's on the same
        replication (the numbers whose mean, SE and CI are ``table``'s paired
        ``difference``): index ``replication``, one column per arm but the base."""
        names = self.arm_names
        base = _read_csv_text(_core_replications(self, "arms", 0))
        if metric not in base:
            raise KeyError(f"no metric {metric!r}; metrics are: {', '.join(METRICS)}")
        columns: dict[str, list[Any]] = {"replication": base["replication"]}
        for i in range(1, len(names)):
            values = _read_csv_text(_core_replications(self, "arms", i))[metric]
            columns[names[i]] = [a - b for a, b in zip(values, base[metric])]
        return _frame(columns, "replication")


class Sensitivity(Result):
    """Global sensitivity of metrics to scenario values (``brandsim sensitivity``)."""

    def _headline(self) -> Any:
        return self.table

    @property
    def table(self) -> Any:
        """``sensitivity.csv``: one row per metric and key: Morris ``mu_star``
        (with its bootstrap CI), ``mu``, ``sigma``, or Sobol first- and total-order
        indices with their intervals."""
        return self.read_csv("sensitivity.csv")

    @property
    def result(self) -> dict[str, Any]:
        """``sensitivity.json`` parsed."""
        return self._json_object("sensitivity.json")


class Optimization(Result):
    """Stochastic-gradient tuning of scenario values (``brandsim optimize``)."""

    def _headline(self) -> Any:
        return self.trace

    @property
    def trace(self) -> Any:
        """``trace.csv``: one row per step: the tuned values, the objective's mean
        and CI, J, the gradient and its SE, the gain and perturbation."""
        return self.read_csv("trace.csv")

    @property
    def result(self) -> dict[str, Any]:
        """``optimize.json`` parsed: the answer (``parameters``), its SE, the
        confirmation study, convergence, settings."""
        return self._json_object("optimize.json")

    @property
    def parameters(self) -> dict[str, float]:
        """The tuned values found, by key path."""
        return dict(self.result["parameters"])

    @property
    def scenario(self) -> Scenario:
        """The scenario with the tuned values (``scenario.toml``)."""
        return Scenario(str(self.dir / "scenario.toml"), (), None, self._keep)


class Fit(Result):
    """A model fitted to data (``brandsim fit churn`` or ``fit bass``)."""

    def __init__(self, directory: Path, text: str, keep: object, model: str) -> None:
        super().__init__(directory, text, keep)
        self.model = model

    def _headline(self) -> Any:
        return self.estimates

    @property
    def result(self) -> dict[str, Any]:
        """``churn.json`` or ``bass.json`` parsed."""
        return self._json_object(f"{self.model}.json")

    @property
    def estimates(self) -> Any:
        """One row per parameter (index ``parameter``): ``estimate``, ``se``,
        ``ci95_low``, ``ci95_high`` (churn: ``alpha``, ``beta``; bass: ``m``,
        ``p``, ``q`` per period of the data)."""
        return _estimates(
            {k: v for k, v in self.result.items() if isinstance(v, dict) and "estimate" in v}
        )

    @property
    def curves(self) -> Any:
        """``churn.csv`` or ``bass.csv``: the fitted curves beside the data."""
        return self.read_csv(f"{self.model}.csv")


class Calibration(Result):
    """Scenario values fitted to observed daily series (``brandsim calibrate``)."""

    def _headline(self) -> Any:
        return self.estimates

    @property
    def result(self) -> dict[str, Any]:
        """``calibration.json`` parsed."""
        return self._json_object("calibration.json")

    @property
    def estimates(self) -> Any:
        """One row per fitted key (index ``parameter``): ``estimate``, ``se``,
        ``ci95_low``, ``ci95_high`` (cut to the bounds), ``start``."""
        return _estimates(self.result["parameters"])

    @property
    def series(self) -> Any:
        """``calibration.csv``: per day, each observed series beside the simulated
        mean and 5–95% band at the answer."""
        return self.read_csv("calibration.csv")

    @property
    def scenario(self) -> Scenario:
        """The calibrated scenario (``scenario.toml``): the estimates, held
        uncertain as ``normal(estimate, se)``."""
        return Scenario(str(self.dir / "scenario.toml"), (), None, self._keep)


def _estimates(parameters: Mapping[str, Mapping[str, Any]]) -> Any:
    names = list(parameters)
    columns: dict[str, list[Any]] = {"parameter": names}
    columns["estimate"] = [parameters[n]["estimate"] for n in names]
    columns["se"] = [parameters[n].get("se") for n in names]
    columns["ci95_low"] = [(parameters[n].get("ci95") or [None, None])[0] for n in names]
    columns["ci95_high"] = [(parameters[n].get("ci95") or [None, None])[1] for n in names]
    if any("start" in parameters[n] for n in names):
        columns["start"] = [parameters[n].get("start") for n in names]
    return _frame(columns, "parameter")


def _core_replications(result: Result, folder: str, index: int) -> str:
    directory = result.dir / folder / str(index)
    if not directory.is_dir():
        raise IndexError(f"{folder}/{index}: no such study in {result.dir}")
    try:
        return _core.stored_replications_csv(str(directory))
    except _core.CommandError as error:
        _raise(error)


def _stored_replications(result: Result, folder: str, index: int) -> Any:
    return _frame(_read_csv_text(_core_replications(result, folder, index)))


# ---------------------------------------------------------------------------------
# Commands


def _execute(
    argv: list[str],
    out: PathLike | None,
    labels: Mapping[str, str],
    keep: _TempDir | None,
    scenario_files: Iterable[str] = (),
) -> tuple[Path, str, _TempDir | None]:
    """Runs ``brandsim ARGV --out DIR``: into ``out``, or a new temporary directory
    (deleted if the command fails). Returns the directory, the printout and the
    temporary directory to keep alive. ``scenario_files`` are read to find the
    column of a scenario error."""
    if out is None:
        temp = _TempDir()
        directory = temp.path
    else:
        temp, directory = None, Path(out)
    try:
        text = _core.run_command(argv + ["--out", str(directory)])
    except _core.CommandError as error:
        if temp is not None:
            temp.cleanup()
        _raise(error, labels, {f: None for f in scenario_files})
    except BaseException:
        if temp is not None:
            temp.cleanup()
        raise
    for hidden, shown in labels.items():
        text = text.replace(hidden, shown)
    return directory, text, temp if temp is not None else keep


def _study_options(
    replications: int | None,
    seed: int | None,
    threads: int,
    quiet: bool,
    shard: str | tuple[int, int] | None,
    resume: PathLike | None,
    force: bool,
    sets: Sequence[str] = (),
) -> list[str]:
    argv: list[str] = []
    for s in sets:
        argv += ["--set", s]
    if replications is not None:
        argv += ["--replications", _int_option("replications", replications)]
    if seed is not None:
        argv += ["--seed", _int_option("seed", seed)]
    argv += ["--threads", _int_option("threads", threads)]
    if quiet:
        argv.append("--quiet")
    if shard is not None:
        argv += ["--shard", shard if isinstance(shard, str) else f"{shard[0]}/{shard[1]}"]
    if resume is not None:
        argv += ["--resume", os.fspath(resume)]
    if force:
        argv.append("--force")
    return argv


def _int_option(name: str, value: Any) -> str:
    """An integer option (numpy integers too); anything else is refused."""
    if isinstance(value, bool):
        raise ScenarioError(f"{name}={value!r}: expected an integer")
    try:
        return str(operator.index(value))
    except TypeError:
        raise ScenarioError(f"{name}={value!r}: expected an integer") from None


def _number(value: Any) -> str:
    """A number as the CLI reads it: integers stay integers; floats round-trip."""
    if isinstance(value, bool):
        raise ScenarioError(f"{value!r}: expected a number")
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        value = value.item()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _plot_options(plots: bool, plot_format: str) -> list[str]:
    return ["--no-plots"] if not plots else ["--plot-format", plot_format]


def _check_scenario(scenario: Any) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, (str, os.PathLike)):
        return Scenario.from_file(scenario)
    raise TypeError(f"expected a brandsim.Scenario or a path, found {type(scenario).__name__}")


def _resume_out(out: PathLike | None, resume: PathLike | None) -> PathLike | None:
    """``--resume DIR`` continues the study in DIR: that is the output directory."""
    return resume if out is None and resume is not None else out


def run(
    scenario: Scenario | PathLike,
    *,
    replications: int | None = None,
    seed: int | None = None,
    threads: int = 0,
    out: PathLike | None = None,
    quiet: bool = False,
    shard: str | tuple[int, int] | None = None,
    resume: PathLike | None = None,
    force: bool = False,
    precision: float | None = None,
    max_replications: int = 1000,
    metrics: Sequence[str] = (),
    plots: bool = True,
    plot_format: str = "svg",
) -> Study:
    """A Monte Carlo study of ``scenario`` (``brandsim run``), bit for bit the
    CLI's for the same scenario, seed and replications.

    Args:
        replications: replications R (default: the scenario's
            ``simulation.replications``).
        seed: master seed (default: ``simulation.seed``).
        threads: worker threads (0: one per core); results never depend on it.
        out: output directory (new or empty, or holding this same study, which
            is continued); default a temporary directory deleted with the result.
            With ``out``, replications finished before a Ctrl-C are kept there.
        quiet: no progress bar (as the CLI, it shows only when stderr is a
            terminal: in a terminal session, not in a notebook).
        shard: ``"K/N"`` or ``(K, N)``: only the replications ``j mod N = K``.
        resume: continue the interrupted study in this directory.
        force: replace another study in ``out`` (only files brandsim wrote).
        precision: run in batches until every ``metrics``' 95% CI half-width is
            below ``precision × |mean|`` (e.g. 0.01), at most ``max_replications``.
        metrics: metrics ``precision`` watches (default registrations,
            active_payers, revenue).
        plots: write the fan charts; ``plot_format``: ``"svg"`` or ``"png"``.

    Returns:
        a :class:`Study`: ``summary`` (19 metrics × mean, sd, se, ci95_low,
        ci95_high, p05, p50, p95), ``replications`` (R rows), ``daily`` (one row
        per day).

    Raises:
        ScenarioError: bad scenario or option; StudyError: the study failed;
        KeyboardInterrupt: Ctrl-C (finished replications are kept in ``out``).
    """
    scenario = _check_scenario(scenario)
    argv = ["run", scenario._path]
    argv += _study_options(replications, seed, threads, quiet, shard, resume, force, scenario._sets)
    if precision is not None:
        argv += ["--precision", _number(precision), "--max-replications",
                 _int_option("max_replications", max_replications)]
    for m in metrics:
        argv += ["--metric", m]
    argv += _plot_options(plots, plot_format)
    directory, text, keep = _execute(
        argv, _resume_out(out, resume), scenario._labels(), scenario._keep, [scenario._path]
    )
    return Study(directory, text, keep)


def sweep(
    scenario: Scenario | PathLike,
    vary: Mapping[str, str | Sequence[Any]] | Sequence[str],
    *,
    metrics: Sequence[str] = (),
    replications: int | None = None,
    seed: int | None = None,
    threads: int = 0,
    out: PathLike | None = None,
    quiet: bool = False,
    shard: str | tuple[int, int] | None = None,
    resume: PathLike | None = None,
    force: bool = False,
    plots: bool = True,
    plot_format: str = "svg",
) -> Sweep:
    """A grid of scenario values, every point on the same replications
    (``brandsim sweep``).

    Args:
        vary: ``{key: "START:STOP:STEP"}`` (STOP included, on the grid), ``{key:
            [v1, v2, ...]}`` (numbers, or dates for a campaign's start and end),
            or the CLI's ``["KEY=VALUES", ...]``; several keys make a grid.
        metrics: metrics to plot (default profit, revenue, active_payers,
            registrations).
        Other options as :func:`run`.

    Returns:
        a :class:`Sweep`: ``table`` (one row per grid point), ``replications(i)``
        of grid point ``i``.
    """
    scenario = _check_scenario(scenario)
    argv = ["sweep", scenario._path]
    for spec in _specs(vary, _values_text):
        argv += ["--vary", spec]
    for m in metrics:
        argv += ["--metric", m]
    argv += _study_options(replications, seed, threads, quiet, shard, resume, force, scenario._sets)
    argv += _plot_options(plots, plot_format)
    directory, text, keep = _execute(
        argv, _resume_out(out, resume), scenario._labels(), scenario._keep, [scenario._path]
    )
    return Sweep(directory, text, keep)


def _values_text(values: Any) -> str:
    if isinstance(values, str):
        return values
    if isinstance(values, Iterable):
        return ",".join(
            v.isoformat() if hasattr(v, "isoformat") else _number(v) for v in values
        )
    return _number(values)


def _range_text(bounds: Any) -> str:
    if isinstance(bounds, str):
        return bounds
    low, high = bounds
    return f"{_number(low)}:{_number(high)}"


def _specs(given: Any, text: Any, optional: bool = False) -> list[str]:
    """``{key: value}`` as ``KEY=VALUE`` texts (``None`` values, where
    ``optional``: the key alone), or a sequence of such texts as given."""
    if isinstance(given, str):
        return [given]
    if isinstance(given, Mapping):
        return [
            key if (optional and value is None) else f"{key}={text(value)}"
            for key, value in given.items()
        ]
    return list(given)


def compare(
    scenario: Scenario | PathLike,
    *others: Scenario | PathLike,
    metric: str = "profit",
    replications: int | None = None,
    seed: int | None = None,
    threads: int = 0,
    out: PathLike | None = None,
    quiet: bool = False,
    shard: str | tuple[int, int] | None = None,
    resume: PathLike | None = None,
    force: bool = False,
    plots: bool = True,
    plot_format: str = "svg",
) -> Comparison:
    """A scenario against its ``[[variants]]`` and the ``others``, paired on the
    same replications (``brandsim compare``): the first is the base.

    Args:
        others: more scenarios (each with its own variants); they run with the
            first one's seed and replications.
        metric: the metric to rank by and plot.
        Other options as :func:`run`.

    Returns:
        a :class:`Comparison`: ``table`` (arms × metrics: mean, paired difference
        with CI, paired and unpaired SE, P(beats base)), ``arm_names``,
        ``replications(arm)``, ``paired_differences(metric)``.
    """
    scenarios = [_check_scenario(s) for s in (scenario, *others)]
    labels: dict[str, str] = {}
    for s in scenarios:
        labels.update(s._labels())
    keep = _TempDir()
    if len({s._sets for s in scenarios}) == 1:
        files, sets = [s._path for s in scenarios], scenarios[0]._sets
    else:
        # The CLI's --set applies to every file: each scenario goes in as a file
        # of its own, its overrides applied, named in the results by its file and
        # overrides.
        files, sets = [s._materialized(keep) for s in scenarios], ()
        for s, file in zip(scenarios, files):
            labels[file] = s._label + "".join(f" --set {a}" for a in s._sets)
    argv = ["compare", *files, "--metric", metric]
    argv += _study_options(replications, seed, threads, quiet, shard, resume, force, sets)
    argv += _plot_options(plots, plot_format)
    directory, text, result_keep = _execute(argv, _resume_out(out, resume), labels, None, files)
    comparison = Comparison(directory, text, _Keep(result_keep, keep, *(s._keep for s in scenarios)))
    comparison._labels = labels
    return comparison


class _Keep:
    """Keeps several temporary directories alive together."""

    def __init__(self, *held: Any) -> None:
        self.held = [h for h in held if h is not None]


def sensitivity(
    scenario: Scenario | PathLike,
    params: Mapping[str, str | tuple[float, float]] | Sequence[str],
    *,
    method: str = "morris",
    samples: int | None = None,
    metrics: Sequence[str] = (),
    replications: int | None = None,
    seed: int | None = None,
    threads: int = 0,
    out: PathLike | None = None,
    quiet: bool = False,
    shard: str | tuple[int, int] | None = None,
    resume: PathLike | None = None,
    force: bool = False,
    plots: bool = True,
    plot_format: str = "svg",
) -> Sensitivity:
    """Global sensitivity of metrics to scenario values (``brandsim
    sensitivity``): Morris screening or Sobol indices, every design point a study
    on the same replications.

    Args:
        params: ``{key: (low, high)}`` or ``{key: "LO:HI"}`` or ``["KEY=LO:HI"]``.
        method: ``"morris"`` (elementary effects) or ``"sobol"`` (first- and
            total-order indices).
        samples: Morris trajectories (default 10) or Sobol base rows (default 64).
        metrics: metrics to analyse (default profit).
        Other options as :func:`run`.

    Returns:
        a :class:`Sensitivity` with ``table`` (metric × key indices).
    """
    scenario = _check_scenario(scenario)
    argv = ["sensitivity", scenario._path, "--method", method]
    for spec in _specs(params, _range_text):
        argv += ["--param", spec]
    if samples is not None:
        argv += ["--samples", _int_option("samples", samples)]
    for m in metrics:
        argv += ["--metric", m]
    argv += _study_options(replications, seed, threads, quiet, shard, resume, force, scenario._sets)
    argv += _plot_options(plots, plot_format)
    directory, text, keep = _execute(
        argv, _resume_out(out, resume), scenario._labels(), scenario._keep, [scenario._path]
    )
    return Sensitivity(directory, text, keep)


def optimize(
    scenario: Scenario | PathLike,
    *,
    objective: str | None = None,
    estimator: str | None = None,
    iterations: int | None = None,
    learning_rate: float | None = None,
    regularization: float | None = None,
    perturbation: float | None = None,
    replications_per_step: int | None = None,
    params: Mapping[str, str | tuple[float, float] | None] | Sequence[str] = (),
    budgets: Mapping[Sequence[str] | str, float] | Sequence[str] = (),
    adaptive: bool = False,
    budget_user_days: float | None = None,
    tolerance: float | None = None,
    replications: int | None = None,
    seed: int | None = None,
    threads: int = 0,
    out: PathLike | None = None,
    quiet: bool = False,
    resume: PathLike | None = None,
    force: bool = False,
) -> Optimization:
    """Tunes scenario values by stochastic gradient steps (``brandsim
    optimize``); each option overrides its key of the scenario's ``[optimize]``.

    Args:
        objective: metric M to maximise (J = E[M] − λ/2·|θ|²), e.g. ``"profit"``.
        estimator: ``"spsa"``, ``"fd"``, ``"lr"`` or ``"lr-whole"``.
        iterations: gradient steps K; learning_rate: η; regularization: λ;
        perturbation: c of fd and spsa; replications_per_step: per gradient.
        params: ``{key: (low, high)}``, ``{key: None}`` (unbounded), or
            ``["KEY[=LO:HI]"]`` (default brand.value).
        budgets: ``{("channels.ads.daily_budget", "channels.kol.daily_budget"):
            7000}``: keys that sum to a total, or ``["KEY,KEY=TOTAL"]``.
        adaptive: replications per step grow with the gradient's noise; stops once
            converged. budget_user_days: stop after this many simulated user-days.
        tolerance: SE of the answer that counts as converged, relative to
            max(1, |value|).
        replications: replications of the confirmation study. Other options as
            :func:`run`.

    Returns:
        an :class:`Optimization`: ``parameters`` (the answer), ``trace`` (one row
        per step), ``scenario`` (tuned).
    """
    scenario = _check_scenario(scenario)
    argv = ["optimize", scenario._path]
    named = {
        "--objective": objective,
        "--estimator": estimator,
        "--iterations": iterations,
        "--learning-rate": learning_rate,
        "--regularization": regularization,
        "--perturbation": perturbation,
        "--replications-per-step": replications_per_step,
        "--budget-user-days": budget_user_days,
        "--tolerance": tolerance,
    }
    for flag, value in named.items():
        if value is not None:
            argv += [flag, value if isinstance(value, str) else _number(value)]
    for spec in _specs(params, _range_text, optional=True):
        argv += ["--param", spec]
    if isinstance(budgets, Mapping):
        budget_specs = [
            f"{k if isinstance(k, str) else ','.join(k)}={_number(total)}"
            for k, total in budgets.items()
        ]
    else:
        budget_specs = list(budgets)
    for spec in budget_specs:
        argv += ["--budget", spec]
    if adaptive:
        argv.append("--adaptive")
    argv += _study_options(replications, seed, threads, quiet, None, resume, force, scenario._sets)
    directory, text, keep = _execute(
        argv, _resume_out(out, resume), scenario._labels(), scenario._keep, [scenario._path]
    )
    return Optimization(directory, text, keep)


def _data_file(data: Any, keep: _TempDir, name: str) -> tuple[str, dict[str, str]]:
    """A data table as a CSV path: a path as given, or a DataFrame / dict of
    columns written to a temporary CSV (named ``<name>`` in messages)."""
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data), {}
    path = keep.path / name
    _write_csv(data, path)
    return str(path), {str(path): name}


def _fit_options(quiet: bool, force: bool, plots: bool, plot_format: str) -> list[str]:
    argv = ["--quiet"] if quiet else []
    if force:
        argv.append("--force")
    return argv + _plot_options(plots, plot_format)


def fit_churn(
    data: PathLike | Mapping[str, Sequence[Any]] | Any,
    *,
    periods: int | None = None,
    out: PathLike | None = None,
    quiet: bool = False,
    force: bool = False,
    plots: bool = True,
    plot_format: str = "svg",
) -> Fit:
    """Maximum-likelihood fit of the shifted-beta-geometric churn model (Fader &
    Hardie 2007) to cohorts (``brandsim fit churn``).

    Args:
        data: a CSV path, a DataFrame or ``{column: values}``: a ``period`` column
            (0, 1, 2, ...; period 0 holds each cohort's size), then one column of
            active customers per cohort (empty/None: not observed).
        periods: periods of the projected curves (default twice the longest
            cohort's).

    Returns:
        a :class:`Fit`: ``estimates`` (alpha, beta), ``curves``, ``result``.

    Raises:
        ScenarioError: a bad table, with ``file``, ``line`` and ``column``.
    """
    keep = _TempDir()
    path, labels = _data_file(data, keep, "cohorts.csv")
    argv = ["fit", "churn", path]
    if periods is not None:
        argv += ["--periods", _int_option("periods", periods)]
    argv += _fit_options(quiet, force, plots, plot_format)
    directory, text, result_keep = _execute(argv, out, labels, None)
    return Fit(directory, text, _Keep(result_keep, keep), "churn")


def fit_bass(
    data: PathLike | Mapping[str, Sequence[Any]] | Any,
    *,
    form: str = "period",
    period_days: float = 1.0,
    cpm: float = 10.0,
    satisfaction: float = 1.0,
    out: PathLike | None = None,
    quiet: bool = False,
    force: bool = False,
    plots: bool = True,
    plot_format: str = "svg",
) -> Fit:
    """Nonlinear least-squares fit of the Bass diffusion model (m, p, q) to
    adoptions per period (``brandsim fit bass``).

    Args:
        data: a CSV path, a DataFrame or ``{column: values}``: a ``period`` column
            (1, 2, 3, ...), then the adoptions of each period.
        form: ``"period"`` (m·(F(t) − F(t−1))) or ``"density"`` (m·f(t)).
        period_days: days in one period of the data (365 for years), to turn p and
            q into the scenario's daily rates.
        cpm: cost per 1000 impressions of the channel that carries p.
        satisfaction: payers' mean satisfaction (q = word_of_mouth · satisfaction).

    Returns:
        a :class:`Fit`: ``estimates`` (m, p, q), ``curves``, ``result``.
    """
    keep = _TempDir()
    path, labels = _data_file(data, keep, "adoptions.csv")
    argv = ["fit", "bass", path, "--form", form, "--period-days", _number(period_days),
            "--cpm", _number(cpm), "--satisfaction", _number(satisfaction)]
    argv += _fit_options(quiet, force, plots, plot_format)
    directory, text, result_keep = _execute(argv, out, labels, None)
    return Fit(directory, text, _Keep(result_keep, keep), "bass")


def calibrate(
    scenario: Scenario | PathLike,
    data: PathLike | Mapping[str, Sequence[Any]] | Any,
    params: Mapping[str, str | tuple[float, float] | None] | Sequence[str],
    *,
    starts: int = 3,
    max_iterations: int = 200,
    bootstrap: int = 0,
    replications: int | None = None,
    seed: int | None = None,
    threads: int = 0,
    out: PathLike | None = None,
    quiet: bool = False,
    resume: PathLike | None = None,
    force: bool = False,
    plots: bool = True,
    plot_format: str = "svg",
) -> Calibration:
    """Fits scenario values so that simulated daily series match observed ones
    (``brandsim calibrate``: simulated moments on common random numbers), with
    standard errors.

    Args:
        data: observed daily series: a CSV path, a DataFrame or ``{column:
            values}`` with a ``day`` (or ``date``) column, then any daily series
            (``registrations``, ``conversions``, ``active_payers``, ``revenue``,
            ...) and spend columns by key path; empty/None cells are missing.
        params: ``{key: (low, high)}``, ``{key: None}``, or ``["KEY[=LO:HI]"]``.
        starts: Nelder–Mead starts; max_iterations: per start; bootstrap: B
            parametric bootstrap refits.
        replications: replications per evaluation. Other options as :func:`run`.

    Returns:
        a :class:`Calibration`: ``estimates`` (key × estimate, se, CI),
        ``series``, ``scenario`` (calibrated).
    """
    scenario = _check_scenario(scenario)
    keep = _TempDir()
    path, labels = _data_file(data, keep, "observed.csv")
    labels = {**labels, **scenario._labels()}
    argv = ["calibrate", scenario._path, "--data", path]
    for spec in _specs(params, _range_text, optional=True):
        argv += ["--param", spec]
    argv += ["--starts", _int_option("starts", starts), "--max-iterations",
             _int_option("max_iterations", max_iterations), "--bootstrap",
             _int_option("bootstrap", bootstrap)]
    argv += _study_options(replications, seed, threads, quiet, None, resume, force, scenario._sets)
    argv += _plot_options(plots, plot_format)
    directory, text, result_keep = _execute(
        argv, _resume_out(out, resume), labels, None, [scenario._path]
    )
    return Calibration(directory, text, _Keep(result_keep, keep, scenario._keep))


def merge(*shards: PathLike, out: PathLike) -> Result:
    """Merges the shard directories of a study (``shard=(K, N)`` of :func:`run`,
    :func:`sweep`, :func:`compare` or :func:`sensitivity`) into the outputs of the
    whole study in ``out``, identical to a one-process study (``brandsim merge``).

    Returns:
        the result of the merged study's kind: :class:`Study`, :class:`Sweep`,
        :class:`Comparison` or :class:`Sensitivity`.

    Raises:
        ScenarioError: missing or extra shards, shards of different studies, an
            ``out`` in use.
    """
    argv = ["merge", *(os.fspath(d) for d in shards)]
    directory, text, keep = _execute(argv, out, {}, None)
    for name, kind in (
        ("compare.csv", Comparison),
        ("sweep.csv", Sweep),
        ("sensitivity.csv", Sensitivity),
    ):
        if (directory / name).exists():
            return kind(directory, text, keep)
    return Study(directory, text, keep)
