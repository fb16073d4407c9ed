"""Imported results: accuracy-only points with provenance, read from the testbed's layout or a long table.

Pure Python/numpy (pyarrow only to read Parquet): no gRPC, no DuckDB, no object store.

Two formats:

* **testbed** (:func:`read_testbed`): the grid of ``robustness_top1s.csv``: a ``model`` column, then
  one column per evaluation setting, top-1 accuracy in percent, an empty cell where the model was not
  evaluated; the models' types come from a ``model_types.csv`` (``model,type``; the shipped one by
  default) and become categories (:data:`~.categories.TESTBED_TYPES`).
* **long** (:func:`read_long`): CSV or Parquet, one row per (model, test set): ``model``, ``testset``,
  and ``accuracy`` (a fraction, or percent with ``scale="percent"``) or ``correct`` + ``total``;
  optional ``total`` beside ``accuracy``, ``category`` (a category word), ``model_type`` (a testbed
  type), ``source``, ``url``.

Every problem is an :class:`~shiftboard.domain.errors.InvalidArgument` that names the row (data rows count
from 1, the header not included), the column and the fix; up to five problems are listed at once, and
nothing is returned when there is any. A point's sample count is its ``total``, else the setting's
known count (:mod:`.protocol`), else None. ``Provenance.version`` is the sha256 of the file's bytes, so
re-importing the same file is recognisably the same import and an edited file a new version.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

from shiftboard.domain.errors import InvalidArgument

from .categories import CATEGORY_WORDS, TESTBED_TYPES
from .protocol import Setting, describe_all

__all__ = [
    "TESTBED_SOURCE", "TESTBED_URL", "ImportedModel", "ImportedPoint", "ImportedResults", "Provenance", "Source",
    "read_long", "read_model_types", "read_testbed", "shipped_grid", "write_long",
]

#: Where the shipped grid comes from.
TESTBED_SOURCE = "imagenet-testbed (Taori et al., NeurIPS 2020)"
TESTBED_URL = "https://github.com/modestyachts/imagenet-testbed"
#: A file to read: a path, or its content as bytes. A ``str`` with a line break is the content itself.
Source = str | bytes | os.PathLike[str]
_MAX_PROBLEMS = 5


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """Where imported results come from: ``source`` (who published them), ``version`` (sha256 of the
    file), ``url`` (empty when not given) and the ``format`` they were read in."""

    source: str
    version: str
    url: str
    format: Literal["testbed", "long"]


@dataclass(frozen=True, kw_only=True)
class ImportedModel:
    """A model named by imported results: its category (None when the file gives none: the caller
    takes the catalog's, or refuses) and, from a testbed file, the testbed's type."""

    name: str
    category: str | None
    testbed_type: str | None = None


@dataclass(frozen=True, kw_only=True)
class ImportedPoint:
    """One model's accuracy (a fraction) on one test set, measured on ``samples`` samples (None:
    unknown); ``correct`` when the file gave counts; ``source`` / ``url`` when a row overrides the
    file's provenance."""

    model: str
    testset: str
    accuracy: float
    samples: int | None
    correct: int | None = None
    source: str | None = None
    url: str | None = None


@dataclass(frozen=True, kw_only=True)
class ImportedResults:
    """Everything one file holds, validated: models, points, and what each test set named is.

    ``settings`` describes the test sets the testbed's protocol understands; ``unknown_settings``
    lists the others (their points are kept: the catalog may know them; a caller that cannot place
    them should refuse the import with this list).
    """

    provenance: Provenance
    models: Mapping[str, ImportedModel]
    points: tuple[ImportedPoint, ...]
    settings: Mapping[str, Setting]
    unknown_settings: tuple[str, ...]

    @property
    def testsets(self) -> tuple[str, ...]:
        """Every test set named, in the order first met."""
        return tuple(dict.fromkeys(p.testset for p in self.points))

    @cached_property
    def _index(self) -> dict[str, dict[str, ImportedPoint]]:
        out: dict[str, dict[str, ImportedPoint]] = {}
        for p in self.points:
            out.setdefault(p.testset, {})[p.model] = p
        return out

    def by_testset(self) -> Mapping[str, Mapping[str, ImportedPoint]]:
        """test set → model → point (built once; do not modify)."""
        return self._index


# ---------------------------------------------------------------------------------------------- input


def _read_bytes(source: Source, what: str) -> tuple[bytes, str]:
    """(content, a name for messages)."""
    if isinstance(source, bytes):
        return source, what
    if isinstance(source, str) and ("\n" in source or "\r" in source):
        return source.encode("utf-8"), what
    path = Path(source)
    try:
        return path.read_bytes(), path.name
    except OSError as exc:
        raise InvalidArgument(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}: give the path of "
                              "an existing, readable file") from None


def _text(content: bytes, name: str) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"{name} is not UTF-8 text (byte {exc.start}): save it as UTF-8 CSV") from None


class _Problems:
    """Collects up to a few problems, then raises them together."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.items) < _MAX_PROBLEMS:
            self.items.append(message)

    def raise_if_any(self) -> None:
        if not self.count:
            return
        more = f" (and {self.count - len(self.items)} more)" if self.count > len(self.items) else ""
        raise InvalidArgument(f"{self.name}: " + "; ".join(self.items) + more)


def _rows(text: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise InvalidArgument(f"not a CSV file ({exc}): give comma-separated values with a header row") from None


def _number(cell: str) -> float | None:
    """The cell as a float; None when empty; NaN when it is not a number."""
    value = cell.strip()
    if value == "" or value.lower() in ("nan", "na", "null"):
        return None
    try:
        return float(value)
    except ValueError:
        return math.nan


def read_model_types(source: Source | Mapping[str, str] | None = None) -> dict[str, str]:
    """model → testbed type from a ``model,type`` CSV (the shipped one when None), or a mapping, checked."""
    if isinstance(source, Mapping):
        items: Iterable[tuple[int, str, str]] = ((i, m, t) for i, (m, t) in enumerate(source.items(), 1))
        name = "model types"
    else:
        if source is None:
            content = resources.files("shiftboard.testbed").joinpath("data/model_types.csv").read_bytes()
            name = "model_types.csv"
        else:
            content, name = _read_bytes(source, "model types")
        rows = _rows(_text(content, name))
        if not rows or [c.strip().lower() for c in rows[0][:2]] != ["model", "type"]:
            raise InvalidArgument(f"{name}: the header must be `model,type`: one row per model, e.g. "
                                  "`resnet50,STANDARD`")
        items = ((i, (r + ["", ""])[0], (r + ["", ""])[1]) for i, r in enumerate(rows[1:], 1)
                 if any(c.strip() for c in r))
    problems = _Problems(name)
    out: dict[str, str] = {}
    for row, model, kind in items:
        model, kind = model.strip(), kind.strip()
        if not model:
            problems.add(f"row {row}: the model name is empty")
        elif kind not in TESTBED_TYPES:
            problems.add(f"row {row}: unknown model type {kind!r} for {model}: use one of {', '.join(TESTBED_TYPES)}")
        elif model in out and out[model] != kind:
            problems.add(f"row {row}: {model} is typed again, as {kind} after {out[model]}: give one type per model")
        else:
            out[model] = kind
    problems.raise_if_any()
    return out


def read_testbed(source: Source, model_types: Source | Mapping[str, str] | None = None, *,
                 source_name: str | None = None, url: str = "",
                 settings: Mapping[str, Setting] | None = None) -> ImportedResults:
    """Read a grid in the testbed's layout (see the module docstring).

    ``model_types``: a ``model,type`` file or mapping (default: the shipped one); every model of the
    grid must have a type. ``source_name`` / ``url`` are the provenance (default: the file's name and
    nothing); ``settings`` declares settings the protocol does not know (or overrides it).
    """
    content, name = _read_bytes(source, "testbed grid")
    rows = _rows(_text(content, name))
    types = read_model_types(model_types)
    if not rows:
        raise InvalidArgument(f"{name} is empty: give the grid with a header row (model, then one column per "
                              "evaluation setting)")
    header = [c.strip() for c in rows[0]]
    if header[0].lower() not in ("model", ""):
        raise InvalidArgument(f"{name}: the first column is {header[0]!r}: it must be `model` (the model names), "
                              "followed by one column per evaluation setting")
    columns = header[1:]
    problems = _Problems(name)
    if not columns:
        problems.add("no evaluation-setting columns after `model`: add one column per setting")
    for i, column in enumerate(columns, 2):
        if not column:
            problems.add(f"column {i} has no name: name every setting column")
        elif columns.index(column) + 2 != i:
            problems.add(f"column {i} ({column}) repeats column {columns.index(column) + 2}: one column per setting")
    problems.raise_if_any()
    points: list[ImportedPoint] = []
    seen: dict[str, int] = {}
    missing_types: list[str] = []
    described = describe_all(columns, settings)
    for row_number, row in enumerate(rows[1:], 1):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            problems.add(f"row {row_number} has {len(row)} cells for {len(header)} columns: give one cell per "
                         "column (empty where not evaluated)")
            continue
        model = row[0].strip()
        if not model:
            problems.add(f"row {row_number}: the model name is empty")
            continue
        if model in seen:
            problems.add(f"row {row_number}: model {model} appears again (first in row {seen[model]}): one row "
                         "per model")
            continue
        seen[model] = row_number
        if model not in types:
            missing_types.append(model)
        for column, cell in zip(columns, row[1:], strict=True):
            value = _number(cell)
            if value is None:
                continue
            if not math.isfinite(value) or not 0.0 <= value <= 100.0:
                problems.add(f"row {row_number} ({model}), column {column}: {cell.strip()!r} is not a percentage "
                             "in [0, 100]: the testbed layout gives top-1 accuracy in percent, empty where not "
                             "evaluated")
                continue
            setting = described.settings.get(column)
            points.append(ImportedPoint(model=model, testset=column, accuracy=value / 100.0,
                                        samples=None if setting is None else setting.samples))
    if missing_types:
        problems.add(f"{len(missing_types)} model(s) have no type in the model-types file (first: "
                     f"{', '.join(missing_types[:3])}): add a `model,type` row for each (types: "
                     f"{', '.join(TESTBED_TYPES)})")
    problems.raise_if_any()
    if not seen:
        raise InvalidArgument(f"{name} has no model rows: give one row per model under the header")
    models = {m: ImportedModel(name=m, category=TESTBED_TYPES[types[m]], testbed_type=types[m]) for m in seen}
    provenance = Provenance(source=source_name or name, version=hashlib.sha256(content).hexdigest(), url=url,
                            format="testbed")
    return ImportedResults(provenance=provenance, models=models, points=tuple(points),
                           settings=dict(described.settings), unknown_settings=described.unknown)


def shipped_grid() -> ImportedResults:
    """The testbed's published grid shipped with shiftboard (``shiftboard/testbed/data``)."""
    content = resources.files("shiftboard.testbed").joinpath("data/robustness_top1s.csv").read_bytes()
    return read_testbed(content, source_name=TESTBED_SOURCE, url=TESTBED_URL)


# ------------------------------------------------------------------------------------------ long format

_LONG_COLUMNS = ("model", "testset", "accuracy", "correct", "total", "category", "model_type", "source", "url")


def _long_records(content: bytes, name: str) -> tuple[list[str], Iterator[dict[str, object]]]:
    if content[:4] == b"PAR1":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(content))
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise InvalidArgument(f"{name} is not a readable Parquet file ({exc}): write it again") from None
        return list(table.column_names), iter(table.to_pylist())
    rows = _rows(_text(content, name))
    if not rows:
        raise InvalidArgument(f"{name} is empty: give a header row (model, testset, accuracy or correct+total)")
    header = [c.strip().lower() for c in rows[0]]

    def records() -> Iterator[dict[str, object]]:
        for row in rows[1:]:
            if any(c.strip() for c in row):
                yield dict(zip(header, row + [""] * (len(header) - len(row)), strict=False)) | (
                    {"\0extra": True} if len(row) > len(header) else {})
    return header, records()


def _cell(record: Mapping[str, object], column: str) -> str:
    value = record.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _count(record: Mapping[str, object], column: str) -> int | None | str:
    """The cell as a whole number, None when empty, the text when it is not one."""
    text = _cell(record, column)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else text


def read_long(source: Source, *, scale: Literal["fraction", "percent"] = "fraction",
              model_types: Source | Mapping[str, str] | None = None, source_name: str | None = None,
              url: str = "", settings: Mapping[str, Setting] | None = None) -> ImportedResults:
    """Read a long table, CSV or Parquet (see the module docstring).

    ``scale`` says whether ``accuracy`` is a fraction in [0, 1] or percent in [0, 100].
    ``model_types`` (a testbed ``model,type`` file or mapping) gives categories to models whose rows
    have none; without either a model's category is None. ``source_name`` / ``url`` / ``settings``
    as for :func:`read_testbed`.
    """
    if scale not in ("fraction", "percent"):
        raise InvalidArgument(f"unknown accuracy scale {scale!r}: use fraction or percent")
    content, name = _read_bytes(source, "results table")
    header, records = _long_records(content, name)
    unknown = [c for c in header if c not in _LONG_COLUMNS]
    if unknown:
        raise InvalidArgument(f"{name}: unknown column(s) {', '.join(map(repr, unknown))}: the columns are "
                              f"{', '.join(_LONG_COLUMNS)}")
    missing = [c for c in ("model", "testset") if c not in header]
    if "accuracy" not in header and not {"correct", "total"} <= set(header):
        missing.append("accuracy (or correct and total)")
    if missing:
        raise InvalidArgument(f"{name}: missing column(s) {', '.join(missing)}: a long table has model, testset, "
                              "and accuracy or correct+total")
    types = read_model_types(model_types) if model_types is not None else {}
    top = 100.0 if scale == "percent" else 1.0
    problems = _Problems(name)
    points: list[ImportedPoint] = []
    seen: dict[tuple[str, str], int] = {}
    categories: dict[str, tuple[str | None, str | None, int]] = {}
    testsets: list[str] = []
    for row, record in enumerate(records, 1):
        if record.get("\0extra"):
            problems.add(f"row {row} has more cells than the header has columns: one cell per column")
            continue
        model, testset = _cell(record, "model"), _cell(record, "testset")
        if not model or not testset:
            problems.add(f"row {row}: {'model' if not model else 'testset'} is empty: name both the model and the "
                         "test set")
            continue
        if (model, testset) in seen:
            problems.add(f"row {row}: {model} on {testset} appears again (first in row {seen[model, testset]}): one "
                         "row per model and test set")
            continue
        seen[model, testset] = row
        correct, total = _count(record, "correct"), _count(record, "total")
        text = _cell(record, "accuracy")
        accuracy: float | None = None
        if isinstance(correct, str) or isinstance(total, str):
            problems.add(f"row {row}: correct and total must be whole numbers, got "
                         f"{_cell(record, 'correct')!r} and {_cell(record, 'total')!r}")
            continue
        if text:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or not 0.0 <= value <= top:
                fix = ("give fractions, or read the file as percentages (scale='percent')" if scale == "fraction"
                       else "give percentages")
                problems.add(f"row {row} ({model} on {testset}): accuracy {text!r} is outside [0, {top:g}]: {fix}")
                continue
            accuracy = value / top
        if total is not None and total < 1:
            problems.add(f"row {row}: total {total} must be at least 1 (the number of samples scored)")
            continue
        if correct is not None:
            if total is None:
                problems.add(f"row {row}: correct without total: give the number of samples scored too")
                continue
            if not 0 <= correct <= total:
                problems.add(f"row {row} ({model} on {testset}): correct {correct} is outside [0, total={total}]")
                continue
            if accuracy is not None and abs(accuracy - correct / total) > 0.5 / total + 1e-12:
                problems.add(f"row {row}: accuracy {text} disagrees with correct/total = {correct}/{total}: give one "
                             "or make them agree")
                continue
            accuracy = correct / total if accuracy is None else accuracy
        if accuracy is None:
            problems.add(f"row {row} ({model} on {testset}): no accuracy: give accuracy, or correct and total")
            continue
        category = _cell(record, "category") or None
        kind = _cell(record, "model_type") or types.get(model)
        if kind is not None and kind not in TESTBED_TYPES:
            problems.add(f"row {row}: unknown model type {kind!r}: use one of {', '.join(TESTBED_TYPES)}")
            continue
        if category is None and kind is not None:
            category = TESTBED_TYPES[kind]
        if category is not None and category not in CATEGORY_WORDS:
            problems.add(f"row {row}: unknown category {category!r} for {model}: use one of "
                         f"{', '.join(CATEGORY_WORDS)}")
            continue
        before = categories.get(model)
        if before is not None and (before[0], before[1]) != (category, kind):
            problems.add(f"row {row}: {model} has category {category} here but {before[0]} in row {before[2]}: give "
                         "each model one category")
            continue
        categories.setdefault(model, (category, kind, row))
        testsets.append(testset)
        points.append(ImportedPoint(model=model, testset=testset, accuracy=accuracy, samples=total,
                                    correct=correct, source=_cell(record, "source") or None,
                                    url=_cell(record, "url") or None))
    problems.raise_if_any()
    if not points:
        raise InvalidArgument(f"{name} has no result rows: give one row per model and test set under the header")
    described = describe_all(dict.fromkeys(testsets), settings)
    points = [p if p.samples is not None or p.testset not in described.settings
              else replace(p, samples=described.settings[p.testset].samples) for p in points]
    models = {m: ImportedModel(name=m, category=c, testbed_type=k) for m, (c, k, _) in categories.items()}
    provenance = Provenance(source=source_name or name, version=hashlib.sha256(content).hexdigest(), url=url,
                            format="long")
    return ImportedResults(provenance=provenance, models=models, points=tuple(points),
                           settings=dict(described.settings), unknown_settings=described.unknown)


def write_long(results: ImportedResults, path: str | os.PathLike[str]) -> Path:
    """Write ``results`` as a long table (Parquet when the name ends in ``.parquet``, CSV otherwise).

    Reading it back with :func:`read_long` gives the same models and points (floats are written in
    full precision).
    """
    target = Path(path)
    columns: dict[str, list[object]] = {c: [] for c in _LONG_COLUMNS}
    for p in results.points:
        model = results.models[p.model]
        for column, value in (("model", p.model), ("testset", p.testset), ("accuracy", p.accuracy),
                              ("correct", p.correct), ("total", p.samples), ("category", model.category),
                              ("model_type", model.testbed_type), ("source", p.source), ("url", p.url)):
            columns[column].append(value)
    if target.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table(columns), target)
        return target
    with target.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(_LONG_COLUMNS)
        for i in range(len(results.points)):
            writer.writerow(["" if columns[c][i] is None else repr(columns[c][i]) if isinstance(columns[c][i], float)
                             else columns[c][i] for c in _LONG_COLUMNS])
    return target
