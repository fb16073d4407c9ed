"""Imported results: accuracy-only points with provenance, read from the testbed's layout or a long table.

Pure Python/numpy (pyarrow only to read Parquet): no gRPC, no DuckDB, no object store. This module
holds what a file is read into (:class:`ImportedResults`); the readers are :mod:`.grid` and :mod:`.long`.

Two formats:

* **testbed** (:func:`~.grid.read_testbed`): the grid of ``robustness_top1s.csv``: a ``model`` column,
  then one column per evaluation setting, top-1 accuracy in percent, an empty cell where the model was
  not evaluated; the models' types come from a ``model_types.csv`` (``model,type``; the shipped one by
  default) and become categories (:data:`~.categories.TESTBED_TYPES`).
* **long** (:func:`~.long.read_long`): CSV or Parquet, one row per (model, test set): ``model``,
  ``testset``, and ``accuracy`` (a fraction, or percent with ``scale="percent"``) or ``correct`` +
  ``total``; optional ``total`` beside ``accuracy``, ``category`` (a category word), ``model_type`` (a
  testbed type), ``source``, ``url``.

Every problem is an :class:`~shiftboard.domain.errors.InvalidArgument` that names the row (data rows count
from 1, the header not included), the column and the fix; up to five problems are listed at once, and
nothing is returned when there is any (:mod:`.files`). A point's sample count is its ``total``, else the
setting's known count (:mod:`.protocol`), else None. ``Provenance.version`` is the sha256 of the file's
bytes, so re-importing the same file is recognisably the same import and an edited file a new version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from .protocol import Setting

__all__ = ["TESTBED_SOURCE", "TESTBED_URL", "ImportedModel", "ImportedPoint", "ImportedResults", "Provenance"]

#: Where the shipped grid comes from.
TESTBED_SOURCE = "imagenet-testbed (Taori et al., NeurIPS 2020)"
TESTBED_URL = "https://github.com/modestyachts/imagenet-testbed"


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
