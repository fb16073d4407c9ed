"""Per-sample matrices of several evaluations of one test set, for the analyses that need every sample.

Each reader takes the evaluations (their ids, in the order wanted) and the test set's sample count, and
returns one row per evaluation in that order, one column per sample, from one query over the compact
layout (:mod:`shiftboard.domain.layout`): correctness from the packed bits of ``evaluation_shards``
(no prediction row is read), confidence from the quantized ``predictions.confidence`` column. An
evaluation whose stored rows do not cover the test set raises FAILED_PRECONDITION naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from shiftboard.adapters.duckdb.database import Database
from shiftboard.domain import layout
from shiftboard.domain.errors import FailedPrecondition


def _incomplete(names: Mapping[int, str], evaluation_id: int, testset: str, got: int,
                samples: int) -> FailedPrecondition:
    name = names.get(evaluation_id, f"evaluation {evaluation_id}")
    model, _, version = name.partition(":")
    return FailedPrecondition(
        f"{name} stores {got} of the {samples} samples of {testset}: `shiftboard eval request --model {model} "
        f"--version {version} --testset {testset} --rerun` evaluates it again")


def correctness_matrix(catalog: Database, testset: str, evaluation_ids: Sequence[int], samples: int,
                       names: Mapping[int, str] | None = None) -> np.ndarray:
    """Whether each sample's top-1 is its label: bool [evaluations, samples], rows in the order given.

    ``names`` (evaluation id -> name:version) words the error of an evaluation that does not cover
    the test set.
    """
    ids = [int(i) for i in evaluation_ids]
    out = np.zeros((len(ids), samples), dtype=bool)
    if not ids:
        return out
    row_of = {e: r for r, e in enumerate(ids)}
    rows = catalog.query(
        "SELECT es.evaluation_id, s.first_sample, es.samples, es.correct FROM evaluation_shards es "
        "JOIN shards s ON s.testset = ? AND s.idx = es.shard WHERE list_contains(?, es.evaluation_id)",
        [testset, ids])
    covered = np.zeros(len(ids), dtype=np.int64)
    for evaluation_id, first, count, bits in rows:
        r, first, count = row_of[int(evaluation_id)], int(first), int(count)
        if first < 0 or first + count > samples:
            raise _incomplete(names or {}, int(evaluation_id), testset, first + count, samples)
        out[r, first:first + count] = layout.unpack_bits(bytes(bits), count)
        covered[r] += count
    for r, got in enumerate(covered):
        if got != samples:
            raise _incomplete(names or {}, ids[r], testset, int(got), samples)
    return out


def confidence_matrix(catalog: Database, testset: str, evaluation_ids: Sequence[int], samples: int,
                      names: Mapping[int, str] | None = None) -> np.ndarray:
    """The softmax probability of each sample's top-1: float64 [evaluations, samples], rows in the
    order given (read back from the stored 20-bit quantization, within 4.8e-7 of what was sent)."""
    ids = [int(i) for i in evaluation_ids]
    out = np.zeros((len(ids), samples), dtype=np.float64)
    if not ids:
        return out
    with catalog.transaction() as cur:
        table = cur.execute("SELECT evaluation_id, sample, confidence FROM predictions "
                            "WHERE list_contains(?, evaluation_id)", [ids]).to_arrow_table()
    evaluation = table.column("evaluation_id").to_numpy().astype(np.int64)
    sample = table.column("sample").to_numpy().astype(np.int64)
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    sorted_ids = np.asarray(ids, dtype=np.int64)[order]
    row = order[np.searchsorted(sorted_ids, evaluation)]
    counts = np.bincount(row, minlength=len(ids))
    outside = (sample < 0) | (sample >= samples)
    for r, got in enumerate(counts):
        if got != samples or outside[row == r].any():
            raise _incomplete(names or {}, ids[r], testset, int(got), samples)
    filled = np.zeros((len(ids), samples), dtype=bool)
    filled[row, sample] = True
    if not filled.all():  # a sample stored twice and another not at all
        r = int(np.nonzero(~filled.all(axis=1))[0][0])
        raise _incomplete(names or {}, ids[r], testset, int(filled[r].sum()), samples)
    out[row, sample] = layout.confidence_of(table.column("confidence").to_numpy()).astype(np.float64)
    return out


def top1_matrix(catalog: Database, testset: str, evaluation_ids: Sequence[int], samples: int,
                names: Mapping[int, str] | None = None) -> np.ndarray:
    """Each sample's top-1 class: int32 [evaluations, samples], rows in the order given, from one query.

    Top-1 is the first stored top-5 class (its low ``class_bits`` bits, minus 1), or the row of
    ``prediction_top1`` where the two differ (see :mod:`.commits`); ``class_bits`` is each shard's.
    """
    ids = [int(i) for i in evaluation_ids]
    out = np.full((len(ids), samples), -1, dtype=np.int32)
    if not ids:
        return out
    with catalog.transaction() as cur:
        table = cur.execute(
            "SELECT p.evaluation_id, p.sample, coalesce(t.top1, ((p.top5 & ((1::BIGINT << es.class_bits) - 1)) - 1)"
            "::INTEGER) AS top1 FROM predictions p "
            "JOIN shards s ON s.testset = ? AND p.sample >= s.first_sample "
            "AND p.sample < s.first_sample + s.num_samples "
            "JOIN evaluation_shards es ON es.evaluation_id = p.evaluation_id AND es.shard = s.idx "
            "LEFT JOIN prediction_top1 t ON t.evaluation_id = p.evaluation_id AND t.sample = p.sample "
            "WHERE list_contains(?, p.evaluation_id)", [testset, ids]).to_arrow_table()
    evaluation = table.column("evaluation_id").to_numpy().astype(np.int64)
    sample = table.column("sample").to_numpy().astype(np.int64)
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    sorted_ids = np.asarray(ids, dtype=np.int64)[order]
    row = order[np.searchsorted(sorted_ids, evaluation)]
    filled = np.zeros((len(ids), samples), dtype=bool)
    filled[row, sample] = True
    counts = np.bincount(row, minlength=len(ids))
    for r in range(len(ids)):
        if counts[r] != samples or not filled[r].all():
            raise _incomplete(names or {}, ids[r], testset, int(filled[r].sum()), samples)
    out[row, sample] = table.column("top1").to_numpy().astype(np.int32)
    return out
