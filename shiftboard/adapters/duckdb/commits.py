"""Writing checked predictions: the compact layout, one transaction per batch of shards.

Every shard's rows and its progress row go in one transaction; a re-sent shard's earlier rows are
deleted first (a shard never committed needs no delete), so a killed run resumes at the first shard
without a progress row. Ingest goes through Arrow, column by column, in the layout of
:mod:`~shiftboard.domain.layout` (about 9.7 bytes a prediction with 1,000 classes, as ``make bench``
measures): top-5 packed in integers, confidence quantized, a top-1 row only where it is not the first top-5 class, and
correctness as one bit per sample in the shard's progress row (``evaluation_shards.correct``, with
its count). A reference shard's restricted correctness goes to ``restricted_correct`` as packed bits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from shiftboard.adapters.duckdb.checks import Checked
from shiftboard.adapters.duckdb.database import Database, now
from shiftboard.adapters.duckdb.keys import key_text
from shiftboard.domain import layout
from shiftboard.domain.errors import FailedPrecondition, NotFound
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire.commits import ShardPredictions

Shards = Sequence[tuple[pb.Shard, ShardPredictions]]


def _merged_ranges(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sample ranges [start, stop) with touching ones joined (one DELETE for consecutive shards)."""
    out: list[tuple[int, int]] = []
    for start, stop in sorted(ranges):
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], stop)
        else:
            out.append((start, stop))
    return out


def _packed_bits(bits: np.ndarray, sizes: np.ndarray) -> pa.Array:
    """Each consecutive run of ``sizes`` values of ``bits`` as its own ``np.packbits`` bytes (a binary
    array, one value per run), packed in one call: each run padded with zeros to whole bytes."""
    nbytes = (sizes + 7) // 8
    offsets = np.concatenate([[0], np.cumsum(nbytes)])
    padded = np.zeros(8 * int(offsets[-1]), dtype=bool)
    padded[np.arange(len(bits)) + np.repeat(8 * offsets[:-1] - (np.cumsum(sizes) - sizes), sizes)] = bits
    return pa.Array.from_buffers(pa.binary(), len(sizes), [None, pa.py_buffer(offsets.astype(np.int32)),
                                                          pa.py_buffer(np.packbits(padded))])


@dataclass(frozen=True)
class _Encoded:
    """A batch's rows in the stored layout, without ``evaluation_id`` (prepended in the transaction,
    once the evaluation is read)."""

    predictions: pa.Table
    top1: pa.Table | None  # prediction_top1: where top-1 is not the first top-5 class
    restricted: pa.Table | None
    progress: pa.Table  # evaluation_shards
    samples: int
    at: dt.datetime


def _restricted_table(rows: Sequence[Sequence[object]]) -> pa.Table | None:
    if not rows:
        return None
    return pa.table({
        "shift": pa.array([r[0] for r in rows], pa.string()),
        "shard": pa.array([r[1] for r in rows], pa.int32()),
        "samples": pa.array([r[2] for r in rows], pa.int32()),
        "kept": pa.array([r[3] for r in rows], pa.binary()),
        "correct": pa.array([r[4] for r in rows], pa.binary())})


def _encode(shards: Shards, num_classes: int, batch: Checked) -> _Encoded:
    bits = layout.class_bits(num_classes)
    lo, hi = layout.pack_top5(batch.top5, bits)
    correct = batch.top1 == batch.label
    sizes = np.array([int(shard.num_samples) for shard, _ in shards], dtype=np.int64)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    firsts = np.array([int(shard.first_sample) for shard, _ in shards], dtype=np.int64)
    sample = np.arange(len(batch.label), dtype=np.int64) + np.repeat(firsts - starts, sizes)
    counts = np.diff(np.concatenate([[0], np.cumsum(correct, dtype=np.int64)])[np.concatenate([[0], ends])])
    predictions = pa.table({
        "sample": pa.array(sample), "top5": pa.array(lo), "top5_hi": pa.array(hi),
        "confidence": pa.array(layout.quantize_confidence(batch.confidence)),
    })
    differs = np.flatnonzero(batch.top1 != batch.top5[:, 0])
    top1 = (pa.table({"sample": pa.array(sample[differs]), "top1": pa.array(batch.top1[differs])})
            if len(differs) else None)
    at = now()
    progress = pa.table({
        "shard": pa.array([int(shard.index) for shard, _ in shards], pa.int32()),
        "samples": pa.array(sizes), "seconds": pa.array([float(sent.seconds) for _, sent in shards], pa.float64()),
        "committed_at": pa.array([at] * len(shards), pa.timestamp("us", tz="UTC")),
        "correct_count": pa.array(counts, pa.int64()),
        "correct": _packed_bits(correct, sizes),
        "class_bits": pa.array(np.full(len(shards), bits, dtype=np.int32)),
    })
    return _Encoded(predictions, top1, _restricted_table(batch.restricted), progress, len(batch.label), at)


def insert(cur: duckdb.DuckDBPyConnection, table_name: str, rows: pa.Table, *, replace: bool = False) -> None:
    """Append an Arrow table's rows to ``table_name`` (its columns in the table's order)."""
    cur.register("incoming_rows", rows)
    try:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        cur.execute(f"{verb} INTO {table_name} SELECT * FROM incoming_rows")
    finally:
        cur.unregister("incoming_rows")


def _with_id(evaluation_id: int, rows: pa.Table) -> pa.Table:
    return rows.add_column(0, "evaluation_id", pa.array(np.full(rows.num_rows, evaluation_id, np.int32)))


def _running_id(cur: duckdb.DuckDBPyConnection, key: pb.EvaluationKey) -> tuple[int, int]:
    """The running evaluation's id and where its run stores rows (the staging id of a rerun)."""
    row = cur.execute("SELECT id, status, coalesce(rerun, '') FROM evaluations WHERE model = ? AND version = ? "
                      "AND testset = ?", [key.model, key.version, key.testset]).fetchone()
    if row is None:
        raise NotFound(f"no evaluation of {key_text(key)}")
    evaluation_id, status, rerun = int(row[0]), row[1], row[2]
    if (rerun or status) != "running":
        raise FailedPrecondition(f"the evaluation of {key_text(key)} is not running: call StartEvaluation first")
    return evaluation_id, -evaluation_id if rerun else evaluation_id


#: The tables that hold an evaluation's rows, keyed by ``evaluation_id``.
ROW_TABLES = ("predictions", "prediction_top1", "restricted_correct", "evaluation_shards")


def swap_staged(cur: duckdb.DuckDBPyConnection, evaluation_id: int) -> None:
    """Replace the evaluation's rows by its rerun's staged rows (under ``-evaluation_id``), inside the
    caller's transaction: readers see the earlier rows until it commits, then only the new ones."""
    for table_name in ROW_TABLES:
        cur.execute(f"DELETE FROM {table_name} WHERE evaluation_id = ?", [evaluation_id])
        cur.execute(f"UPDATE {table_name} SET evaluation_id = ? WHERE evaluation_id = ?",
                    [evaluation_id, -evaluation_id])


def _delete_committed(cur: duckdb.DuckDBPyConnection, evaluation_id: int, shards: Shards) -> bool:
    """Delete the rows of the shards of ``shards`` committed before; whether there were any."""
    done = {int(r[0]) for r in cur.execute(
        "SELECT shard FROM evaluation_shards WHERE evaluation_id = ? AND list_contains(?, shard)",
        [evaluation_id, [int(shard.index) for shard, _ in shards]]).fetchall()}
    if not done:
        return False
    ranges = _merged_ranges([(int(shard.first_sample), int(shard.first_sample + shard.num_samples))
                             for shard, _ in shards if shard.index in done])
    for table_name in ("predictions", "prediction_top1"):
        for start, stop in ranges:
            cur.execute(f"DELETE FROM {table_name} WHERE evaluation_id = ? AND sample >= ? "
                        "AND sample < ?", [evaluation_id, start, stop])
    cur.execute("DELETE FROM restricted_correct WHERE evaluation_id = ? AND list_contains(?, shard)",
                [evaluation_id, sorted(done)])
    return True


def store(catalog: Database, key: pb.EvaluationKey, shards: Shards, num_classes: int, batch: Checked) -> None:
    """Encode a checked batch in the compact layout and write it in one transaction (the evaluation
    must be running; a rerun's rows are staged, see :func:`swap_staged`); shards committed before have
    their rows replaced."""
    encoded = _encode(shards, num_classes, batch)
    with catalog.transaction() as cur:
        evaluation_id, stored = _running_id(cur, key)
        replaced = _delete_committed(cur, stored, shards)
        insert(cur, "predictions", _with_id(stored, encoded.predictions))
        if encoded.top1 is not None:
            insert(cur, "prediction_top1", _with_id(stored, encoded.top1))
        if encoded.restricted is not None:
            insert(cur, "restricted_correct", _with_id(stored, encoded.restricted))
        insert(cur, "evaluation_shards", _with_id(stored, encoded.progress), replace=replaced)
        cur.execute("UPDATE evaluations SET updated_at = ?, heartbeat_at = ?, run_samples = run_samples + ? "
                    "WHERE id = ?", [encoded.at, encoded.at, encoded.samples, evaluation_id])
