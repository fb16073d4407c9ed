"""The table a shift's leaderboard is built from: one :class:`ModelResult` per model, checked.

Pure maths (numpy): no gRPC, no Streamlit, no pandas import (a DataFrame is recognised by its
methods). A table is a pandas DataFrame, a mapping of column lists, or a sequence of dicts /
:class:`ModelResult`; :func:`model_results` brings any of them to a list of :class:`ModelResult`
(empty cells, None / NaN / pandas' NA, become None). :func:`measured` reduces one side (the
reference or the shift) of every model to accuracies, sample counts and correct samples, from the
per-sample arrays where a row has them, else from its counts or accuracy; :func:`resampled_counts`
gives the correct samples in each resample of the shared weights of a sample list, stored or computed
from the arrays (what the paired bootstrap needs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from .resampling import resampled_correct

__all__ = ["Measured", "ModelResult", "Side", "has_paired", "measured", "model_results", "resampled_counts"]

#: The two sides of a shift: its reference (in-distribution) set and the shifted set.
Side = Literal["ref", "shift"]


@dataclass(frozen=True, kw_only=True, eq=False)
class ModelResult:
    """One model on one shift: accuracies, sample counts, and optional per-sample correctness.

    With ``ref_correct`` / ``shift_correct`` the accuracy and count may be left None (they are
    derived); when both are given they must agree. ``ref_successes`` (with ``n_ref``) gives the
    accuracy exactly as an integer count; ``ref_resampled`` holds the correct samples in each
    resample of the shared weights of the reference's sample list (at least ``settings.resamples``
    of them; the first are used), which the paired bootstrap needs instead of ``ref_correct``
    (likewise for the shift).
    """

    model: str
    category: str
    ref_acc: float | None = None
    shift_acc: float | None = None
    n_ref: int | None = None
    n_shift: int | None = None
    ref_correct: NDArray[np.bool_] | None = None
    shift_correct: NDArray[np.bool_] | None = None
    ref_successes: int | None = None
    shift_successes: int | None = None
    ref_resampled: NDArray[np.int32] | None = None
    shift_resampled: NDArray[np.int32] | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class Measured:
    """One side of every model, in table order: accuracy, samples and correct samples."""

    acc: NDArray[np.float64]
    n: NDArray[np.int64]
    successes: tuple[int, ...]


def _missing(value: object) -> bool:
    """None, NaN or pandas' NA: an empty cell of the table."""
    if value is None or isinstance(value, np.ndarray | list | tuple):
        return value is None
    try:
        return bool(value != value)  # NaN is the one value unequal to itself
    except TypeError:  # pandas.NA refuses to be a bool
        return True


def model_results(table: Any) -> list[ModelResult]:
    """Normalise a DataFrame, a mapping of columns, or a sequence of records / ModelResult."""
    # A pandas DataFrame, recognised without importing pandas.
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        records: Iterable[Any] = table.to_dict(orient="records")
    elif isinstance(table, Mapping):
        columns = {k: list(v) for k, v in table.items()}
        length = len(next(iter(columns.values()), []))
        records = [{k: v[i] for k, v in columns.items()} for i in range(length)]
    else:
        records = table
    names = {f for f in ModelResult.__dataclass_fields__}
    out = []
    for record in records:
        if isinstance(record, ModelResult):
            out.append(record)
            continue
        unknown = set(record) - names
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)}: expected some of {sorted(names)}")
        fields: dict[str, Any] = {k: None if _missing(v) else v for k, v in record.items()}
        out.append(ModelResult(**fields))
    return out


def _accuracy(model: str, which: Side, acc: float | None, n: int | None,
              correct: NDArray[np.bool_] | None, successes: int | None = None) -> tuple[float, int, int]:
    """(accuracy, samples, successes) of one model on one set, from the arrays or counts when given."""
    if successes is not None and correct is None:
        if n is None or int(n) < 1 or not 0 <= int(successes) <= int(n):
            raise ValueError(f"{model}: {which}_successes={successes} needs n_{which} >= 1 and at least as large")
        a = int(successes) / int(n)
        if acc is not None and abs(float(acc) - a) > 1e-9:
            raise ValueError(f"{model}: {which}_acc={acc} but {which}_successes gives {a}")
        return a, int(n), int(successes)
    if correct is not None:
        flags = np.asarray(correct, dtype=bool).reshape(-1)
        successes, trials = int(flags.sum()), int(flags.size)
        if trials == 0:
            raise ValueError(f"{model}: {which}_correct is empty")
        if n is not None and int(n) != trials:
            raise ValueError(f"{model}: n_{which}={n} but {which}_correct holds {trials} samples")
        if acc is not None and abs(float(acc) - successes / trials) > 1e-9:
            raise ValueError(f"{model}: {which}_acc={acc} but {which}_correct gives {successes / trials}")
        return successes / trials, trials, successes
    if acc is None or n is None:
        raise ValueError(f"{model}: {which}_acc and n_{which} are needed without {which}_correct")
    a, trials = float(acc), int(n)
    if not 0.0 <= a <= 1.0 or trials < 1:
        raise ValueError(f"{model}: {which}_acc={acc} must lie in [0, 1] and n_{which}={n} be >= 1")
    return a, trials, round(a * trials)


def measured(results: Sequence[ModelResult], which: Side) -> Measured:
    """Accuracy, samples and correct samples of every model on one side (ValueError when they disagree)."""
    if which == "ref":
        sides = [_accuracy(r.model, which, r.ref_acc, r.n_ref, r.ref_correct, r.ref_successes) for r in results]
    else:
        sides = [_accuracy(r.model, which, r.shift_acc, r.n_shift, r.shift_correct, r.shift_successes)
                 for r in results]
    return Measured(acc=np.array([a for a, _, _ in sides], dtype=np.float64),
                    n=np.array([n for _, n, _ in sides], dtype=np.int64),
                    successes=tuple(s for _, _, s in sides))


def _correct_matrix(results: Sequence[ModelResult], which: Side) -> NDArray[np.bool_]:
    arrays = [getattr(r, f"{which}_correct") for r in results]
    flat = [np.asarray(a, dtype=bool).reshape(-1) for a in arrays]
    sizes = {a.size for a in flat}
    if len(sizes) != 1:
        raise ValueError(f"every model's {which}_correct must cover the same samples; sizes {sorted(sizes)}")
    return np.stack(flat)


def has_paired(result: ModelResult, which: Side) -> bool:
    """Whether the model's side can enter a paired bootstrap: it has per-sample correctness or resampled counts."""
    return getattr(result, f"{which}_resampled") is not None or getattr(result, f"{which}_correct") is not None


def resampled_counts(results: Sequence[ModelResult], which: Side, n: NDArray[np.int64], key: str,
                     resamples: int, seed: int) -> NDArray[np.int32] | None:
    """(models x resamples) correct counts on one side, stored or computed from the arrays under the
    sample list ``key``; None when some model has neither."""
    rows: list[NDArray[np.int32] | None] = []
    arrays = []
    for r in results:
        counts = getattr(r, f"{which}_resampled")
        if counts is not None:
            c = np.asarray(counts).reshape(-1)
            if c.size < resamples:
                raise ValueError(f"{r.model}: {which}_resampled holds {c.size} resamples; {resamples} are asked")
            rows.append(c[:resamples].astype(np.int32, copy=False))
        elif getattr(r, f"{which}_correct") is not None:
            rows.append(None)
            arrays.append(r)
        else:
            return None
    if len(set(n.tolist())) > 1:
        raise ValueError(f"every model's {which} sample list must be the same for a paired bootstrap; "
                         f"sizes {sorted(set(n.tolist()))}")
    if arrays:
        computed = iter(resampled_correct(_correct_matrix(arrays, which), key, resamples, seed=seed))
        rows = [next(computed) if row is None else row for row in rows]
    return np.stack([row for row in rows if row is not None])
