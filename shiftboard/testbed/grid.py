"""The testbed's layout: a grid of top-1 accuracies in percent (models x settings) and the models' types.

See :mod:`.results` for the format; :func:`shipped_grid` is the testbed's published grid.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from importlib import resources

from shiftboard.domain.errors import InvalidArgument

from .categories import TESTBED_TYPES
from .files import Problems, Source, csv_rows, number, read_bytes, utf8_text
from .protocol import Setting, describe_all
from .results import TESTBED_SOURCE, TESTBED_URL, ImportedModel, ImportedPoint, ImportedResults, Provenance

__all__ = ["read_model_types", "read_testbed", "shipped_grid"]


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
            content, name = read_bytes(source, "model types")
        rows = csv_rows(utf8_text(content, name))
        if not rows or [c.strip().lower() for c in rows[0][:2]] != ["model", "type"]:
            raise InvalidArgument(f"{name}: the header must be `model,type`: one row per model, e.g. "
                                  "`resnet50,STANDARD`")
        items = ((i, (r + ["", ""])[0], (r + ["", ""])[1]) for i, r in enumerate(rows[1:], 1)
                 if any(c.strip() for c in r))
    problems = Problems(name)
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
    """Read a grid in the testbed's layout (see :mod:`.results`).

    ``model_types``: a ``model,type`` file or mapping (default: the shipped one); every model of the
    grid must have a type. ``source_name`` / ``url`` are the provenance (default: the file's name and
    nothing); ``settings`` declares settings the protocol does not know (or overrides it).
    """
    content, name = read_bytes(source, "testbed grid")
    rows = csv_rows(utf8_text(content, name))
    types = read_model_types(model_types)
    columns = _setting_columns(rows, name)
    described = describe_all(columns, settings)
    problems = Problems(name)
    points: list[ImportedPoint] = []
    seen: dict[str, int] = {}
    for row_number, row in enumerate(rows[1:], 1):
        if any(c.strip() for c in row):
            points += _grid_row(row_number, row, columns, described.settings, seen, problems)
    missing_types = [m for m in seen if m not in types]
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


def _setting_columns(rows: list[list[str]], name: str) -> list[str]:
    """The setting columns named by the grid's header (after ``model``), checked."""
    if not rows:
        raise InvalidArgument(f"{name} is empty: give the grid with a header row (model, then one column per "
                              "evaluation setting)")
    header = [c.strip() for c in rows[0]]
    if header[0].lower() not in ("model", ""):
        raise InvalidArgument(f"{name}: the first column is {header[0]!r}: it must be `model` (the model names), "
                              "followed by one column per evaluation setting")
    columns = header[1:]
    problems = Problems(name)
    if not columns:
        problems.add("no evaluation-setting columns after `model`: add one column per setting")
    for i, column in enumerate(columns, 2):
        if not column:
            problems.add(f"column {i} has no name: name every setting column")
        elif columns.index(column) + 2 != i:
            problems.add(f"column {i} ({column}) repeats column {columns.index(column) + 2}: one column per setting")
    problems.raise_if_any()
    return columns


def _grid_row(row_number: int, row: list[str], columns: list[str], settings: Mapping[str, Setting],
              seen: dict[str, int], problems: Problems) -> list[ImportedPoint]:
    """The points of one model's row (none when the row is wrong); every problem goes to ``problems``."""
    if len(row) != len(columns) + 1:
        problems.add(f"row {row_number} has {len(row)} cells for {len(columns) + 1} columns: give one cell per "
                     "column (empty where not evaluated)")
        return []
    model = row[0].strip()
    if not model:
        problems.add(f"row {row_number}: the model name is empty")
        return []
    if model in seen:
        problems.add(f"row {row_number}: model {model} appears again (first in row {seen[model]}): one row "
                     "per model")
        return []
    seen[model] = row_number
    points = []
    for column, cell in zip(columns, row[1:], strict=True):
        value = number(cell)
        if value is None:
            continue
        if not math.isfinite(value) or not 0.0 <= value <= 100.0:
            problems.add(f"row {row_number} ({model}), column {column}: {cell.strip()!r} is not a percentage "
                         "in [0, 100]: the testbed layout gives top-1 accuracy in percent, empty where not "
                         "evaluated")
            continue
        setting = settings.get(column)
        points.append(ImportedPoint(model=model, testset=column, accuracy=value / 100.0,
                                    samples=None if setting is None else setting.samples))
    return points


def shipped_grid() -> ImportedResults:
    """The testbed's published grid shipped with shiftboard (``shiftboard/testbed/data``)."""
    content = resources.files("shiftboard.testbed").joinpath("data/robustness_top1s.csv").read_bytes()
    return read_testbed(content, source_name=TESTBED_SOURCE, url=TESTBED_URL)
