"""Evaluations and per-sample predictions in the catalog.

An evaluation is one (model version, test set) pair. Its predictions are committed a batch of
shards at a time (``CommitShards``; ``CommitShard`` is a batch of one): every shard's rows and its
progress row go in one transaction, a re-sent shard's earlier rows are deleted first (a shard never
committed needs no delete), so a killed run resumes at the first shard without a progress row.
Ingest goes through Arrow, column by column, in the compact layout of
:mod:`~shiftboard.domain.layout` (about 9.4 bytes a prediction with 1,000 classes).

Correctness is kept as one bit per sample in the shard's progress row (``evaluation_shards.correct``,
with its count), so :meth:`Evaluations.correctness` and the accuracies never read a prediction row.

Labels and correctness are the platform's own: the caller sends predicted classes and confidences
only, and ``correct`` is computed here from the labels the gateway stored when the test set was
registered (``shard_labels``), so no caller can change what counts as right.

The same holds for a reference shard's correctness on a shift's class sub-list (or class map): the
worker sends each sample's restricted top-1, and the gateway decides from the stored labels which
samples the sub-list keeps and which of them are right, storing both as packed bits per shard in
``restricted_correct`` (0.25 bytes a sample), in the same transaction as the shard's predictions.
"""

from __future__ import annotations

import builtins
import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike

from shiftboard.adapters.duckdb.catalog import Catalog, _ts
from shiftboard.domain import layout
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from shiftboard.domain.scoring import ClassMap, Restriction, restricted_outcome
from shiftboard.domain.stats import clopper_pearson
from shiftboard.flows.commits import ShardPredictions
from shiftboard.v1 import shiftboard_pb2 as pb

STATUS_WORDS = {
    "pending": pb.EVALUATION_STATUS_PENDING,
    "running": pb.EVALUATION_STATUS_RUNNING,
    "succeeded": pb.EVALUATION_STATUS_SUCCEEDED,
    "failed": pb.EVALUATION_STATUS_FAILED,
}
STATUS_OF_VALUE = {v: k for k, v in STATUS_WORDS.items()}

#: A pending evaluation older than this, or a running one without progress for this long, is
#: considered lost (its worker died) and is handed out again by the sweep.
STALE_PENDING = dt.timedelta(minutes=10)
STALE_RUNNING = dt.timedelta(minutes=30)

_COLUMNS = ("id, model, version, testset, status, shards_total, samples_total, error, flow_run_id, attempts, "
            "created_at, updated_at, run_started_at, run_samples")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def label_bytes(labels: np.ndarray) -> bytes:
    """A shard's labels as stored in ``shard_labels``: int32 little-endian, in sample order."""
    return np.ascontiguousarray(labels, dtype="<i4").tobytes()


def labels_of(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i4")


def key_text(key: pb.EvaluationKey) -> str:
    return f"{key.model}:{key.version} on {key.testset}"


def _restricted_rows(shard: pb.Shard, label: np.ndarray, top5: np.ndarray, sent: Sequence[tuple[str, ArrayLike]],
                     restrictions: Mapping[str, Restriction], testset: str) -> list[list[object]]:
    """``(shift, samples, kept bits, correct bits)`` of each restricted top-1 sent with a reference shard.

    The restricted top-1 must lie in the sub-list (a class of the map), and for a sub-list it must be
    the first stored top-5 class inside the sub-list wherever there is one (top-5 is ordered by logit).
    """
    n = len(label)
    rows: list[list[object]] = []
    for shift, sent_top1 in sent:
        restriction = restrictions.get(shift)
        if restriction is None:
            raise InvalidArgument(f"{shift!r} is not a registered shift of {testset} with a class sub-list "
                                  "or class map: send restricted top-1 only for the plan's restrictions")
        if any(r[0] == shift for r in rows):
            raise InvalidArgument(f"restricted top-1 for {shift} sent twice: send each shift once")
        top1 = np.asarray(sent_top1, dtype=np.int64)
        if len(top1) != n:
            raise InvalidArgument(f"shard {shard.index} has {n} samples; the restricted top-1 for {shift} "
                                  f"holds {len(top1)}: send one per sample")
        if isinstance(restriction, ClassMap):
            if ((top1 < 0) | (top1 >= len(restriction))).any():
                raise InvalidArgument(f"the restricted top-1 for {shift} must be classes of its class map, "
                                      f"in [0, {len(restriction)})")
        else:
            if not np.isin(top1, restriction).all():
                raise InvalidArgument(f"the restricted top-1 for {shift} must lie in its class sub-list")
            inside = np.isin(top5, restriction)
            found = inside.any(axis=1)
            first = top5[np.arange(n), inside.argmax(axis=1)]
            if (found & (first != top1)).any():
                raise InvalidArgument(f"the restricted top-1 for {shift} contradicts the shard's top-5 (the "
                                      "first top-5 class in the sub-list is the restricted top-1)")
        outcome = restricted_outcome(label, top1, restriction)
        correct = np.zeros(n, dtype=bool)
        correct[outcome.kept] = outcome.correct
        rows.append([shift, n, np.packbits(outcome.kept).tobytes(), np.packbits(correct).tobytes()])
    return rows


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
class _StoredShard:
    """A committed shard of one evaluation, as ``evaluation_shards`` and ``shards`` record it."""

    index: int
    first_sample: int
    samples: int
    correct: bytes
    class_bits: int


@dataclass(frozen=True)
class Pair:
    model: str
    version: str
    testset: str


class Evaluations:
    """Evaluation rows, shard commits and prediction queries over the catalog's connection."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.changed = threading.Condition()
        self.generation = 0

    def _notify(self) -> None:
        with self.changed:
            self.generation += 1
            self.changed.notify_all()

    def notify_watchers(self) -> None:
        """Wake WatchEvaluations streams after evaluations changed outside this class (a model deleted)."""
        self._notify()

    # ---------------------------------------------------------------- reading

    def _rows(self, where: str = "1=1", params: Sequence[object] | None = None) -> list[tuple]:
        sql = (f"SELECT {_COLUMNS}, (SELECT count(*) FROM evaluation_shards s WHERE s.evaluation_id = e.id), "
               "(SELECT coalesce(sum(samples), 0) FROM evaluation_shards s WHERE s.evaluation_id = e.id) "
               f"FROM evaluations e WHERE {where} ORDER BY model, version, testset")
        return self.catalog.query(sql, params or [])

    @staticmethod
    def _message(r: tuple) -> pb.Evaluation:
        (_id, model, version, testset, status, shards_total, samples_total, error, flow_run_id, attempts,
         created_at, updated_at, run_started_at, run_samples, shards_done, samples_done) = r
        rate = 0.0
        if run_started_at is not None and run_samples:
            elapsed = (updated_at - run_started_at).total_seconds()
            rate = run_samples / elapsed if elapsed > 0 else 0.0
        out = pb.Evaluation(
            key=pb.EvaluationKey(model=model, version=version, testset=testset), status=STATUS_WORDS[status],
            shards_done=shards_done, shards_total=shards_total, samples_done=int(samples_done),
            samples_total=samples_total, samples_per_second=rate, error=error, flow_run_id=flow_run_id,
            attempts=attempts,
        )
        out.created_at.CopyFrom(_ts(created_at))
        out.updated_at.CopyFrom(_ts(updated_at))
        return out

    def list(self, *, model: str = "", testset: str = "", status: str = "") -> list[pb.Evaluation]:
        clauses, params = ["1=1"], []
        for column, value in (("model", model), ("testset", testset), ("status", status)):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        return [self._message(r) for r in self._rows(" AND ".join(clauses), params)]

    def get(self, key: pb.EvaluationKey) -> pb.Evaluation:
        rows = self._rows("model = ? AND version = ? AND testset = ?", [key.model, key.version, key.testset])
        if not rows:
            raise NotFound(f"no evaluation of {key_text(key)}: `shiftboard eval list` shows them")
        return self._message(rows[0])

    def _id(self, key: pb.EvaluationKey) -> int:
        rows = self.catalog.query("SELECT id FROM evaluations WHERE model = ? AND version = ? AND testset = ?",
                                  [key.model, key.version, key.testset])
        if not rows:
            raise NotFound(f"no evaluation of {key_text(key)}")
        return int(rows[0][0])

    def missing_pairs(self, *, rerun: bool = False) -> builtins.list[Pair]:
        """Every (model, test set) pair without a good or live evaluation (what the sweep hands out)."""
        now = _now()
        rows = self.catalog.query(
            "SELECT m.name, m.version, t.name FROM models m CROSS JOIN testsets t "
            "LEFT JOIN evaluations e ON e.model = m.name AND e.version = m.version AND e.testset = t.name "
            "WHERE ? OR e.id IS NULL OR e.status = 'failed' "
            "OR (e.status = 'pending' AND e.updated_at < ?) OR (e.status = 'running' AND e.updated_at < ?) "
            "ORDER BY m.name, m.version, t.name",
            [rerun, now - STALE_PENDING, now - STALE_RUNNING])
        return [Pair(*r) for r in rows]

    # ---------------------------------------------------------------- writing

    def ensure_pending(self, pair: Pair, *, shards_total: int, samples_total: int, error: str = "") -> None:
        """Create or reset the evaluation of ``pair`` as pending (or failed, when ``error`` is given)."""
        status = "failed" if error else "pending"
        now = _now()
        with self.catalog.transaction() as cur:
            row = cur.execute("SELECT id FROM evaluations WHERE model = ? AND version = ? AND testset = ?",
                              [pair.model, pair.version, pair.testset]).fetchone()
            if row:
                cur.execute("UPDATE evaluations SET status = ?, error = ?, updated_at = ?, shards_total = ?, "
                            "samples_total = ? WHERE id = ?",
                            [status, error, now, shards_total, samples_total, row[0]])
            else:
                cur.execute("INSERT INTO evaluations (model, version, testset, status, shards_total, "
                            "samples_total, error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [pair.model, pair.version, pair.testset, status, shards_total, samples_total, error,
                             now, now])
        self._notify()

    def set_flow_run(self, pair: Pair, flow_run_id: str) -> None:
        with self.catalog.transaction() as cur:
            cur.execute("UPDATE evaluations SET flow_run_id = ? WHERE model = ? AND version = ? AND testset = ?",
                        [flow_run_id, pair.model, pair.version, pair.testset])

    def start(self, key: pb.EvaluationKey, flow_run_id: str, *, shards_total: int,
              samples_total: int, restricted: Sequence[str] = ()) -> tuple[pb.Evaluation, builtins.list[int]]:
        """Mark running (creating the row if a worker starts a pair directly); returns pending shards.

        A shard is done when committed with the restricted correctness of every shift in ``restricted``
        (a reference's shifts with class sub-lists), so a re-run fills in a shift registered later.
        """
        pair = Pair(key.model, key.version, key.testset)
        now = _now()
        with self.catalog.transaction() as cur:
            row = cur.execute("SELECT id FROM evaluations WHERE model = ? AND version = ? AND testset = ?",
                              [pair.model, pair.version, pair.testset]).fetchone()
            if row is None:
                cur.execute("INSERT INTO evaluations (model, version, testset, status, shards_total, "
                            "samples_total, created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
                            [pair.model, pair.version, pair.testset, shards_total, samples_total, now, now])
                row = cur.execute("SELECT id FROM evaluations WHERE model = ? AND version = ? AND testset = ?",
                                  [pair.model, pair.version, pair.testset]).fetchone()
            assert row is not None
            cur.execute("UPDATE evaluations SET status = 'running', error = '', attempts = attempts + 1, "
                        "flow_run_id = CASE WHEN ? = '' THEN flow_run_id ELSE ? END, updated_at = ?, "
                        "run_started_at = ?, run_samples = 0, shards_total = ?, samples_total = ? WHERE id = ?",
                        [flow_run_id, flow_run_id, now, now, shards_total, samples_total, row[0]])
            done = {r[0] for r in cur.execute("SELECT shard FROM evaluation_shards WHERE evaluation_id = ?",
                                              [row[0]]).fetchall()}
            if restricted:
                counts = dict(cur.execute(
                    f"SELECT shard, count(*) FROM restricted_correct WHERE evaluation_id = ? AND shift IN "
                    f"({', '.join('?' * len(restricted))}) GROUP BY shard", [row[0], *restricted]).fetchall())
                done = {i for i in done if counts.get(i, 0) == len(set(restricted))}
        self._notify()
        return self.get(key), [i for i in range(shards_total) if i not in done]

    def commit_shard(self, key: pb.EvaluationKey, shard: pb.Shard, predictions: pb.Predictions,
                     seconds: float, num_classes: int, labels: np.ndarray,
                     class_subset: Sequence[int] = (), restricted: Sequence[pb.RestrictedTop1] = (),
                     restrictions: Mapping[str, Restriction] | None = None) -> pb.Evaluation:
        """Replace the rows of one shard and record it done, in one transaction (see :meth:`commit_shards`).

        ``predictions`` is CommitShard's message: its samples must be the shard's, in order, and it
        must not carry labels or correctness.
        """
        n = int(shard.num_samples)
        if len(predictions.label) or len(predictions.correct):
            raise InvalidArgument("labels and correctness are the platform's own: the gateway takes them from "
                                  "the test set it registered; send samples, top-1, top-5 and confidences only")
        sample = np.asarray(predictions.sample, dtype=np.int64)
        columns = {"top1": predictions.top1, "confidence": predictions.confidence}
        if len(sample) != n or any(len(v) != n for v in columns.values()) or len(predictions.top5) != 5 * n:
            raise InvalidArgument(f"shard {shard.index} has {n} samples; the predictions must hold {n} samples, "
                                  f"top-1, confidences and {5 * n} top-5 entries")
        first = int(shard.first_sample)
        if not np.array_equal(sample, np.arange(first, first + n)):
            raise InvalidArgument(f"shard {shard.index} covers samples {first}..{first + n - 1} in order")
        shifts = [r.shift for r in restricted]
        if len(set(shifts)) != len(shifts):
            twice = next(x for x in shifts if shifts.count(x) > 1)
            raise InvalidArgument(f"restricted top-1 for {twice} sent twice: send each shift once")
        arrays = ShardPredictions.from_message(shard.index, predictions, seconds, restricted)
        return self.commit_shards(key, [(shard, arrays)], num_classes, {shard.index: labels}, class_subset,
                                  restrictions)

    def commit_shards(self, key: pb.EvaluationKey, shards: Sequence[tuple[pb.Shard, ShardPredictions]],
                      num_classes: int, labels: Mapping[int, np.ndarray], class_subset: Sequence[int] = (),
                      restrictions: Mapping[str, Restriction] | None = None) -> pb.Evaluation:
        """Replace the rows of ``shards`` (manifest entry, predictions) and record them done, all in one
        transaction: every shard is stored, or (on any error) none.

        ``labels`` are each shard's true labels (the platform's); ``correct`` is ``top1 == label``. With a
        class subset the predicted classes must lie in it (the subset is what is scored). Restricted top-1
        are a reference shard's for the shifts of ``restrictions`` (see :func:`_restricted_rows`); they
        replace the shard's earlier restricted rows. A shard committed before has its rows deleted first;
        one never committed costs no delete.
        """
        if not shards:
            raise InvalidArgument(f"nothing to commit for {key_text(key)}: send the predictions of a shard")
        seen: set[int] = set()
        for shard, sent in shards:
            n = int(shard.num_samples)
            if shard.index in seen:
                raise InvalidArgument(f"shard {shard.index} sent twice in one commit: send each shard once")
            seen.add(shard.index)
            if sent.top5.shape != (n, 5) or len(sent.confidence) != n or len(sent.top1_or_first) != n:
                raise InvalidArgument(f"shard {shard.index} has {n} samples; the predictions must hold {n} samples, "
                                      f"top-1, confidences and {5 * n} top-5 entries")
            if sent.first_sample != shard.first_sample:
                raise InvalidArgument(f"shard {shard.index} covers samples {shard.first_sample}.."
                                      f"{shard.first_sample + n - 1} in order")
            if len(labels[shard.index]) != n:
                raise FailedPrecondition(f"the stored labels of shard {shard.index} of {key.testset} hold "
                                         f"{len(labels[shard.index])} samples, the manifest {n}: register the test "
                                         "set again")
        label = np.concatenate([np.asarray(labels[shard.index], dtype=np.int32) for shard, _ in shards])
        top1 = np.concatenate([sent.top1_or_first for _, sent in shards]).astype(np.int32, copy=False)
        top5 = np.concatenate([sent.top5 for _, sent in shards]).astype(np.int32, copy=False)
        confidence = np.concatenate([sent.confidence for _, sent in shards]).astype(np.float32, copy=False)
        if ((top5 < -1) | (top5 >= num_classes)).any() or ((top1 < 0) | (top1 >= num_classes)).any():
            raise InvalidArgument(f"predicted classes must lie in [0, {num_classes}) (-1 pads top-5)")
        if class_subset:
            scored = np.asarray(class_subset, dtype=np.int32)
            if not np.isin(top1, scored).all() or not np.isin(top5, np.append(scored, -1)).all():
                raise InvalidArgument(f"test set {key.testset} scores only its class sub-list: predicted "
                                      "classes must lie in it (-1 pads top-5)")
        if not ((confidence >= 0.0) & (confidence <= 1.0 + 1e-6)).all():
            raise InvalidArgument("confidences must be probabilities in [0, 1] (the softmax of top-1)")
        restricted_rows: builtins.list[builtins.list[object]] = []
        offset = 0
        for shard, sent in shards:
            n = int(shard.num_samples)
            if sent.restricted:
                for row in _restricted_rows(shard, label[offset:offset + n], top5[offset:offset + n],
                                            list(sent.restricted.items()), restrictions or {}, key.testset):
                    restricted_rows.append([row[0], shard.index, *row[1:]])
            offset += n
        return self._store(key, shards, num_classes, label, top1, top5, confidence, restricted_rows)

    def _store(self, key: pb.EvaluationKey, shards: Sequence[tuple[pb.Shard, ShardPredictions]], num_classes: int,
               label: np.ndarray, top1: np.ndarray, top5: np.ndarray, confidence: np.ndarray,
               restricted_rows: builtins.list[builtins.list[object]]) -> pb.Evaluation:
        """Encode checked predictions in the compact layout and write them in one transaction."""
        bits = layout.class_bits(num_classes)
        lo, hi = layout.pack_top5(top5, bits)
        correct = top1 == label
        sizes = np.array([int(shard.num_samples) for shard, _ in shards], dtype=np.int64)
        ends = np.cumsum(sizes)
        starts = ends - sizes
        firsts = np.array([int(shard.first_sample) for shard, _ in shards], dtype=np.int64)
        sample = np.arange(len(label), dtype=np.int64) + np.repeat(firsts - starts, sizes)
        counts = np.diff(np.concatenate([[0], np.cumsum(correct, dtype=np.int64)])[np.concatenate([[0], ends])])
        # without evaluation_id (prepended in the transaction, once the evaluation is read)
        table = pa.table({
            "sample": pa.array(sample), "top5": pa.array(lo), "top5_hi": pa.array(hi),
            "confidence": pa.array(layout.quantize_confidence(confidence)),
        })
        differs = np.flatnonzero(top1 != top5[:, 0])
        now = _now()
        indices = [int(shard.index) for shard, _ in shards]
        progress = pa.table({
            "shard": pa.array(indices, pa.int32()),
            "samples": pa.array(sizes), "seconds": pa.array([float(sent.seconds) for _, sent in shards], pa.float64()),
            "committed_at": pa.array([now] * len(shards), pa.timestamp("us", tz="UTC")),
            "correct_count": pa.array(counts, pa.int64()),
            "correct": _packed_bits(correct, sizes),
            "class_bits": pa.array(np.full(len(shards), bits, dtype=np.int32)),
        })

        def rows_of(evaluation_id: int, rows: pa.Table) -> pa.Table:
            return rows.add_column(0, "evaluation_id", pa.array(np.full(rows.num_rows, evaluation_id, np.int32)))

        with self.catalog.transaction() as cur:
            row = cur.execute("SELECT id, status FROM evaluations WHERE model = ? AND version = ? AND testset = ?",
                              [key.model, key.version, key.testset]).fetchone()
            if row is None:
                raise NotFound(f"no evaluation of {key_text(key)}")
            evaluation_id = int(row[0])
            if row[1] != "running":
                raise FailedPrecondition(f"the evaluation of {key_text(key)} is not running: call "
                                         "StartEvaluation first")
            done = {int(r[0]) for r in cur.execute(
                "SELECT shard FROM evaluation_shards WHERE evaluation_id = ? AND list_contains(?, shard)",
                [evaluation_id, indices]).fetchall()}
            if done:
                ranges = _merged_ranges([(int(shard.first_sample), int(shard.first_sample + shard.num_samples))
                                         for shard, _ in shards if shard.index in done])
                for table_name in ("predictions", "prediction_top1"):
                    for start, stop in ranges:
                        cur.execute(f"DELETE FROM {table_name} WHERE evaluation_id = ? AND sample >= ? "
                                    "AND sample < ?", [evaluation_id, start, stop])
                cur.execute("DELETE FROM restricted_correct WHERE evaluation_id = ? AND list_contains(?, shard)",
                            [evaluation_id, sorted(done)])
            self._insert(cur, "predictions", rows_of(evaluation_id, table))
            if len(differs):
                self._insert(cur, "prediction_top1", rows_of(evaluation_id, pa.table({
                    "sample": pa.array(sample[differs]), "top1": pa.array(top1[differs])})))
            if restricted_rows:
                self._insert(cur, "restricted_correct", rows_of(evaluation_id, pa.table({
                    "shift": pa.array([r[0] for r in restricted_rows], pa.string()),
                    "shard": pa.array([r[1] for r in restricted_rows], pa.int32()),
                    "samples": pa.array([r[2] for r in restricted_rows], pa.int32()),
                    "kept": pa.array([r[3] for r in restricted_rows], pa.binary()),
                    "correct": pa.array([r[4] for r in restricted_rows], pa.binary())})))
            self._insert(cur, "evaluation_shards", rows_of(evaluation_id, progress), replace=bool(done))
            cur.execute("UPDATE evaluations SET updated_at = ?, run_samples = run_samples + ? WHERE id = ?",
                        [now, len(label), evaluation_id])
        self._notify()
        return self.get(key)

    @staticmethod
    def _insert(cur: duckdb.DuckDBPyConnection, table_name: str, rows: pa.Table, *, replace: bool = False) -> None:
        cur.register("incoming_rows", rows)
        try:
            verb = "INSERT OR REPLACE" if replace else "INSERT"
            cur.execute(f"{verb} INTO {table_name} SELECT * FROM incoming_rows")
        finally:
            cur.unregister("incoming_rows")

    def finish(self, key: pb.EvaluationKey, *, failed: bool, error: str) -> pb.Evaluation:
        evaluation_id = self._id(key)
        with self.catalog.transaction() as cur:
            if not failed:
                done, total = cur.execute(
                    "SELECT (SELECT count(*) FROM evaluation_shards WHERE evaluation_id = ?), shards_total "
                    "FROM evaluations WHERE id = ?", [evaluation_id, evaluation_id]).fetchone()
                if done != total:
                    raise FailedPrecondition(f"{key_text(key)}: {done} of {total} shards committed; commit "
                                             "every shard before finishing")
            cur.execute("UPDATE evaluations SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                        ["failed" if failed else "succeeded", error[:4000], _now(), evaluation_id])
        self._notify()
        return self.get(key)

    def delete_for(self, *, model: str | None = None, version: str | None = None,
                   testset: str | None = None) -> None:
        with self.catalog.transaction() as cur:
            where, params = ("model = ? AND version = ?", [model, version]) if model else ("testset = ?",
                                                                                            [testset])
            ids = [r[0] for r in cur.execute(f"SELECT id FROM evaluations WHERE {where}", params).fetchall()]
            for evaluation_id in ids:
                cur.execute("DELETE FROM predictions WHERE evaluation_id = ?", [evaluation_id])
                cur.execute("DELETE FROM prediction_top1 WHERE evaluation_id = ?", [evaluation_id])
                cur.execute("DELETE FROM restricted_correct WHERE evaluation_id = ?", [evaluation_id])
                cur.execute("DELETE FROM evaluation_shards WHERE evaluation_id = ?", [evaluation_id])
                cur.execute("DELETE FROM evaluations WHERE id = ?", [evaluation_id])
        self._notify()

    # ---------------------------------------------------------------- results

    def _stored_shards(self, evaluation_id: int) -> tuple[str, builtins.list[_StoredShard]]:
        """The evaluation's test set and its committed shards in sample order."""
        rows = self.catalog.query(
            "SELECT e.testset, es.shard, s.first_sample, es.samples, es.correct, es.class_bits "
            "FROM evaluations e JOIN evaluation_shards es ON es.evaluation_id = e.id "
            "JOIN shards s ON s.testset = e.testset AND s.idx = es.shard WHERE e.id = ? ORDER BY es.shard",
            [evaluation_id])
        testset = rows[0][0] if rows else ""
        return testset, [_StoredShard(int(r[1]), int(r[2]), int(r[3]), bytes(r[4]), int(r[5])) for r in rows]

    def _labels(self, testset: str, shards: Sequence[_StoredShard]) -> dict[int, np.ndarray]:
        if not shards:
            return {}
        rows = self.catalog.query("SELECT idx, labels FROM shard_labels WHERE testset = ? AND list_contains(?, idx)",
                                  [testset, [s.index for s in shards]])
        out = {int(i): labels_of(bytes(data)) for i, data in rows}
        missing = [s.index for s in shards if s.index not in out]
        if missing:
            raise FailedPrecondition(f"the labels of shard {missing[0]} of {testset} are not stored: commit the "
                                     "shard again")
        return out

    @staticmethod
    def _top5(lo: np.ndarray, hi: np.ndarray, shards: Sequence[tuple[_StoredShard, int, int]]) -> np.ndarray:
        """Decode rows of ``shards`` (each with the slice [start, stop) of its rows present) in order."""
        widths = {s.class_bits for s, _, _ in shards}
        if len(widths) == 1:
            return layout.unpack_top5(lo, hi, widths.pop())
        parts, at = [], 0
        for s, start, stop in shards:
            parts.append(layout.unpack_top5(lo[at:at + stop - start], hi[at:at + stop - start], s.class_bits))
            at += stop - start
        return np.concatenate(parts)

    def correctness(self, evaluation_id: int) -> np.ndarray:
        """Whether each committed sample's top-1 is its label (bool, sample order), from the stored bits."""
        _, shards = self._stored_shards(evaluation_id)
        if not shards:
            return np.zeros(0, dtype=bool)
        return np.concatenate([layout.unpack_bits(s.correct, s.samples) for s in shards])

    def columns(self, evaluation_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(labels int32 [N], top5 int32 [N, 5], correct bool [N]) of every committed sample in sample order."""
        testset, shards = self._stored_shards(evaluation_id)
        labels = self._labels(testset, shards)
        with self.catalog.transaction() as cur:
            table = cur.execute("SELECT top5, top5_hi FROM predictions WHERE evaluation_id = ? ORDER BY sample",
                                [evaluation_id]).fetch_arrow_table()
        total = sum(s.samples for s in shards)
        if table.num_rows != total:
            raise FailedPrecondition(f"evaluation {evaluation_id} stores {table.num_rows} predictions for {total} "
                                     "committed samples: run it again")
        lo = table.column("top5").to_numpy()
        hi = table.column("top5_hi").to_numpy()
        top5 = self._top5(lo, hi, [(s, 0, s.samples) for s in shards])
        label = np.concatenate([labels[s.index] for s in shards]).astype(np.int32) if shards \
            else np.zeros(0, dtype=np.int32)
        return label, top5, self.correctness(evaluation_id)

    def predictions(self, key: pb.EvaluationKey, batch: int = 65536) -> Iterator[pb.Predictions]:
        """Every committed prediction in sample order, in messages of ``batch`` samples (the last one fewer)."""
        evaluation_id = self._id(key)
        testset, shards = self._stored_shards(evaluation_id)
        ends = np.cumsum([s.samples for s in shards])
        total = int(ends[-1]) if len(shards) else 0
        for offset in range(0, total, batch):
            stop = min(total, offset + batch)
            pieces = []  # (shard, start, stop) within the shard
            for s, end in zip(shards, ends, strict=True):
                begin = int(end) - s.samples
                if end > offset and begin < stop:
                    pieces.append((s, max(offset, begin) - begin, min(stop, int(end)) - begin))
            low = pieces[0][0].first_sample + pieces[0][1]
            high = pieces[-1][0].first_sample + pieces[-1][2]
            labels = self._labels(testset, [p[0] for p in pieces])
            with self.catalog.transaction() as cur:
                table = cur.execute(
                    "SELECT sample, top5, top5_hi, confidence FROM predictions WHERE evaluation_id = ? "
                    "AND sample >= ? AND sample < ? ORDER BY sample", [evaluation_id, low, high]).fetch_arrow_table()
                own = cur.execute("SELECT sample, top1 FROM prediction_top1 WHERE evaluation_id = ? AND sample >= ? "
                                  "AND sample < ?", [evaluation_id, low, high]).fetchall()
            if table.num_rows != stop - offset:
                raise FailedPrecondition(f"{key_text(key)} stores {table.num_rows} predictions for samples "
                                         f"{low}..{high - 1}, {stop - offset} expected: run it again")
            sample = table.column("sample").to_numpy()
            top5 = self._top5(table.column("top5").to_numpy(), table.column("top5_hi").to_numpy(), pieces)
            top1 = top5[:, 0].copy()
            if own:
                where = np.searchsorted(sample, [r[0] for r in own])
                top1[where] = [r[1] for r in own]
            yield pb.Predictions(
                sample=sample.tolist(),
                label=np.concatenate([labels[s.index][a:b] for s, a, b in pieces]).tolist(),
                top1=top1.tolist(),
                top5=top5.ravel().tolist(),
                confidence=layout.confidence_of(table.column("confidence").to_numpy()).tolist(),
                correct=np.concatenate([layout.unpack_bits(s.correct, s.samples)[a:b] for s, a, b in pieces]).tolist(),
            )

    def restricted_correct(self, evaluation_id: int, shift: str) -> np.ndarray | None:
        """The evaluation's correctness on ``shift``'s class sub-list, kept samples only in sample order;
        None unless every shard of the evaluation carries it."""
        rows = self.catalog.query("SELECT samples, kept, correct FROM restricted_correct WHERE evaluation_id = ? "
                                  "AND shift = ? ORDER BY shard", [evaluation_id, shift])
        total = self.catalog.query("SELECT shards_total FROM evaluations WHERE id = ?", [evaluation_id])
        if not rows or not total or len(rows) != int(total[0][0]):
            return None
        parts = []
        for samples, kept, correct in rows:
            k = np.unpackbits(np.frombuffer(kept, dtype=np.uint8), count=samples).astype(bool)
            c = np.unpackbits(np.frombuffer(correct, dtype=np.uint8), count=samples).astype(bool)
            parts.append(c[k])
        return np.concatenate(parts)

    def accuracies(self, *, model: str = "", testset: str = "") -> builtins.list[pb.Accuracy]:
        clauses, params = ["e.status = 'succeeded'"], []
        if model:
            clauses.append("e.model = ?")
            params.append(model)
        if testset:
            clauses.append("e.testset = ?")
            params.append(testset)
        rows = self.catalog.query(
            "SELECT e.model, e.version, e.testset, sum(s.samples)::BIGINT, sum(s.correct_count)::BIGINT "
            "FROM evaluations e JOIN evaluation_shards s ON s.evaluation_id = e.id "
            f"WHERE {' AND '.join(clauses)} GROUP BY ALL ORDER BY e.testset, e.model, e.version", params)
        out = []
        for model_name, version, testset_name, samples, correct in rows:
            low, high = clopper_pearson(int(correct), int(samples))
            out.append(pb.Accuracy(key=pb.EvaluationKey(model=model_name, version=version, testset=testset_name),
                                   samples=samples, correct=correct, accuracy=correct / samples if samples else 0.0,
                                   ci_low=low, ci_high=high))
        return out
