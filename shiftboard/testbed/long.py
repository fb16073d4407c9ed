"""The long format: one row per (model, test set), CSV or Parquet, read and written.

See :mod:`.results` for the columns.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

from shiftboard.domain.errors import InvalidArgument

from .categories import CATEGORY_WORDS, TESTBED_TYPES
from .files import Problems, Source, csv_rows, read_bytes, utf8_text
from .grid import read_model_types
from .protocol import Setting, describe_all
from .results import ImportedModel, ImportedPoint, ImportedResults, Provenance

__all__ = ["read_long", "write_long"]

_LONG_COLUMNS = ("model", "testset", "accuracy", "correct", "total", "category", "model_type", "source", "url")


def _long_records(content: bytes, name: str) -> tuple[list[str], Iterator[dict[str, object]]]:
    if content[:4] == b"PAR1":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(content))
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise InvalidArgument(f"{name} is not a readable Parquet file ({exc}): write it again") from None
        return list(table.column_names), iter(table.to_pylist())
    rows = csv_rows(utf8_text(content, name))
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
    """Read a long table, CSV or Parquet (see :mod:`.results`).

    ``scale`` says whether ``accuracy`` is a fraction in [0, 1] or percent in [0, 100].
    ``model_types`` (a testbed ``model,type`` file or mapping) gives categories to models whose rows
    have none; without either a model's category is None. ``source_name`` / ``url`` / ``settings``
    as for :func:`~.grid.read_testbed`.
    """
    if scale not in ("fraction", "percent"):
        raise InvalidArgument(f"unknown accuracy scale {scale!r}: use fraction or percent")
    content, name = read_bytes(source, "results table")
    header, records = _long_records(content, name)
    _check_header(header, name)
    rows = _LongRows(scale, read_model_types(model_types) if model_types is not None else {})
    problems = Problems(name)
    for row, record in enumerate(records, 1):
        try:
            rows.add(row, record)
        except _RowProblem as problem:
            problems.add(str(problem))
    problems.raise_if_any()
    if not rows.points:
        raise InvalidArgument(f"{name} has no result rows: give one row per model and test set under the header")
    described = describe_all(dict.fromkeys(p.testset for p in rows.points), settings)
    points = [p if p.samples is not None or p.testset not in described.settings
              else replace(p, samples=described.settings[p.testset].samples) for p in rows.points]
    models = {m: ImportedModel(name=m, category=c, testbed_type=k) for m, (c, k, _) in rows.categories.items()}
    provenance = Provenance(source=source_name or name, version=hashlib.sha256(content).hexdigest(), url=url,
                            format="long")
    return ImportedResults(provenance=provenance, models=models, points=tuple(points),
                           settings=dict(described.settings), unknown_settings=described.unknown)


def _check_header(header: list[str], name: str) -> None:
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


class _RowProblem(Exception):
    """One row's problem (its message names the row and the fix); the row is left out."""


class _LongRows:
    """The points of a long table, row by row, and each model's category (one per model)."""

    def __init__(self, scale: Literal["fraction", "percent"], types: Mapping[str, str]) -> None:
        self.scale = scale
        self.top = 100.0 if scale == "percent" else 1.0
        self.types = types
        self.points: list[ImportedPoint] = []
        self.seen: dict[tuple[str, str], int] = {}
        self.categories: dict[str, tuple[str | None, str | None, int]] = {}

    def add(self, row: int, record: Mapping[str, object]) -> None:
        """Check one row and keep its point; :class:`_RowProblem` when it is wrong."""
        if record.get("\0extra"):
            raise _RowProblem(f"row {row} has more cells than the header has columns: one cell per column")
        model, testset = _cell(record, "model"), _cell(record, "testset")
        if not model or not testset:
            raise _RowProblem(f"row {row}: {'model' if not model else 'testset'} is empty: name both the model "
                              "and the test set")
        if (model, testset) in self.seen:
            raise _RowProblem(f"row {row}: {model} on {testset} appears again (first in row "
                              f"{self.seen[model, testset]}): one row per model and test set")
        self.seen[model, testset] = row
        accuracy, correct, total = self._measure(row, record, model, testset)
        category, kind = self._category(row, record, model)
        self.categories.setdefault(model, (category, kind, row))
        self.points.append(ImportedPoint(model=model, testset=testset, accuracy=accuracy, samples=total,
                                         correct=correct, source=_cell(record, "source") or None,
                                         url=_cell(record, "url") or None))

    def _measure(self, row: int, record: Mapping[str, object], model: str,
                 testset: str) -> tuple[float, int | None, int | None]:
        """(accuracy, correct, total) of the row, from ``accuracy`` or ``correct`` / ``total`` (or both, agreeing)."""
        correct, total = _count(record, "correct"), _count(record, "total")
        text = _cell(record, "accuracy")
        accuracy: float | None = None
        if isinstance(correct, str) or isinstance(total, str):
            raise _RowProblem(f"row {row}: correct and total must be whole numbers, got "
                              f"{_cell(record, 'correct')!r} and {_cell(record, 'total')!r}")
        if text:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or not 0.0 <= value <= self.top:
                fix = ("give fractions, or read the file as percentages (scale='percent')"
                       if self.scale == "fraction" else "give percentages")
                raise _RowProblem(f"row {row} ({model} on {testset}): accuracy {text!r} is outside "
                                  f"[0, {self.top:g}]: {fix}")
            accuracy = value / self.top
        if total is not None and total < 1:
            raise _RowProblem(f"row {row}: total {total} must be at least 1 (the number of samples scored)")
        if correct is not None:
            if total is None:
                raise _RowProblem(f"row {row}: correct without total: give the number of samples scored too")
            if not 0 <= correct <= total:
                raise _RowProblem(f"row {row} ({model} on {testset}): correct {correct} is outside "
                                  f"[0, total={total}]")
            if accuracy is not None and abs(accuracy - correct / total) > 0.5 / total + 1e-12:
                raise _RowProblem(f"row {row}: accuracy {text} disagrees with correct/total = {correct}/{total}: "
                                  "give one or make them agree")
            accuracy = correct / total if accuracy is None else accuracy
        if accuracy is None:
            raise _RowProblem(f"row {row} ({model} on {testset}): no accuracy: give accuracy, or correct and total")
        return accuracy, correct, total

    def _category(self, row: int, record: Mapping[str, object], model: str) -> tuple[str | None, str | None]:
        """(category, testbed type) of the row's model: its own cells, else the model types; the same on
        every row of the model."""
        category = _cell(record, "category") or None
        kind = _cell(record, "model_type") or self.types.get(model)
        if kind is not None and kind not in TESTBED_TYPES:
            raise _RowProblem(f"row {row}: unknown model type {kind!r}: use one of {', '.join(TESTBED_TYPES)}")
        if category is None and kind is not None:
            category = TESTBED_TYPES[kind]
        if category is not None and category not in CATEGORY_WORDS:
            raise _RowProblem(f"row {row}: unknown category {category!r} for {model}: use one of "
                              f"{', '.join(CATEGORY_WORDS)}")
        before = self.categories.get(model)
        if before is not None and (before[0], before[1]) != (category, kind):
            raise _RowProblem(f"row {row}: {model} has category {category} here but {before[0]} in row "
                              f"{before[2]}: give each model one category")
        return category, kind


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
