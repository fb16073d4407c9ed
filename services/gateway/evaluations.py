"""Evaluations and per-sample predictions in the catalog.

An evaluation is one (model version, test set) pair. Its predictions are committed one shard at a
time: the shard's rows are deleted and inserted again in the same transaction as the shard's
progress row, so a re-sent shard replaces its rows and a killed run resumes at the first shard
without a progress row. Ingest goes through Arrow, column by column.

Labels and correctness are the platform's own: the caller sends predicted classes and confidences
only, and ``correct`` is computed here from the labels the gateway stored when the test set was
registered (``shard_labels``), so no caller can change what counts as right.

The same holds for a reference shard's correctness on a shift's class sub-list (or class map): the
worker sends each sample's restricted top-1, and the gateway decides from the stored labels which
samples the sub-list keeps and which of them are right, storing both as packed bits per shard in
``restricted_correct`` (0.25 bytes a sample), in the same transaction as the shard's predictions.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from shiftboard.errors import FailedPrecondition, InvalidArgument, NotFound
from shiftboard.flows.scoring import ClassMap, Restriction, restricted_outcome
from shiftboard.leaderboard.stats import clopper_pearson
from shiftboard.services.gateway.catalog import Catalog, _ts
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


def _restricted_rows(shard: pb.Shard, label: np.ndarray, top5: np.ndarray, sent: Sequence[pb.RestrictedTop1],
                     restrictions: Mapping[str, Restriction], testset: str) -> list[list[object]]:
    """``(shift, samples, kept bits, correct bits)`` of each restricted top-1 sent with a reference shard.

    The restricted top-1 must lie in the sub-list (a class of the map), and for a sub-list it must be
    the first stored top-5 class inside the sub-list wherever there is one (top-5 is ordered by logit).
    """
    n = len(label)
    rows: list[list[object]] = []
    for item in sent:
        restriction = restrictions.get(item.shift)
        if restriction is None:
            raise InvalidArgument(f"{item.shift!r} is not a registered shift of {testset} with a class sub-list "
                                  "or class map: send restricted top-1 only for the plan's restrictions")
        if any(r[0] == item.shift for r in rows):
            raise InvalidArgument(f"restricted top-1 for {item.shift} sent twice: send each shift once")
        top1 = np.asarray(item.top1, dtype=np.int64)
        if len(top1) != n:
            raise InvalidArgument(f"shard {shard.index} has {n} samples; the restricted top-1 for {item.shift} "
                                  f"holds {len(top1)}: send one per sample")
        if isinstance(restriction, ClassMap):
            if ((top1 < 0) | (top1 >= len(restriction))).any():
                raise InvalidArgument(f"the restricted top-1 for {item.shift} must be classes of its class map, "
                                      f"in [0, {len(restriction)})")
        else:
            if not np.isin(top1, restriction).all():
                raise InvalidArgument(f"the restricted top-1 for {item.shift} must lie in its class sub-list")
            inside = np.isin(top5, restriction)
            found = inside.any(axis=1)
            first = top5[np.arange(n), inside.argmax(axis=1)]
            if (found & (first != top1)).any():
                raise InvalidArgument(f"the restricted top-1 for {item.shift} contradicts the shard's top-5 (the "
                                      "first top-5 class in the sub-list is the restricted top-1)")
        outcome = restricted_outcome(label, top1, restriction)
        correct = np.zeros(n, dtype=bool)
        correct[outcome.kept] = outcome.correct
        rows.append([item.shift, n, np.packbits(outcome.kept).tobytes(), np.packbits(correct).tobytes()])
    return rows


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

    def _rows(self, where: str = "1=1", params: list[object] | None = None) -> list[tuple]:
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

    def missing_pairs(self, *, rerun: bool = False) -> list[Pair]:
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
              samples_total: int, restricted: Sequence[str] = ()) -> tuple[pb.Evaluation, list[int]]:
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
        """Replace the rows of one shard and record it done, in one transaction.

        ``labels`` are the shard's true labels (the platform's); ``correct`` is ``top1 == label``. With a
        class subset the predicted classes must lie in it (the subset is what is scored). ``restricted``
        are a reference shard's restricted top-1 for the shifts of ``restrictions`` (see
        :func:`_restricted_rows`); they replace the shard's earlier restricted rows.
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
        if len(labels) != n:
            raise FailedPrecondition(f"the stored labels of shard {shard.index} of {key.testset} hold "
                                     f"{len(labels)} samples, the manifest {n}: register the test set again")
        label = np.asarray(labels, dtype=np.int32)
        top1 = np.asarray(predictions.top1, dtype=np.int32)
        top5 = np.asarray(predictions.top5, dtype=np.int32)
        if ((top5 < -1) | (top5 >= num_classes)).any() or ((top1 < 0) | (top1 >= num_classes)).any():
            raise InvalidArgument(f"predicted classes must lie in [0, {num_classes}) (-1 pads top-5)")
        if class_subset:
            scored = np.asarray(class_subset, dtype=np.int32)
            if not np.isin(top1, scored).all() or not np.isin(top5, np.append(scored, -1)).all():
                raise InvalidArgument(f"test set {key.testset} scores only its class sub-list: predicted "
                                      "classes must lie in it (-1 pads top-5)")
        rows = _restricted_rows(shard, label, top5.reshape(n, 5), restricted, restrictions or {}, key.testset)
        evaluation_id = self._id(key)
        table = pa.table({
            "evaluation_id": pa.array(np.full(n, evaluation_id, dtype=np.int32)),
            "sample": pa.array(sample),
            "label": pa.array(label),
            "top1": pa.array(top1),
            "top5": pa.FixedSizeListArray.from_arrays(pa.array(top5), 5),
            "confidence": pa.array(np.asarray(predictions.confidence, dtype=np.float32)),
            "correct": pa.array(top1 == label),
        })
        now = _now()
        with self.catalog.transaction() as cur:
            status = cur.execute("SELECT status FROM evaluations WHERE id = ?", [evaluation_id]).fetchone()
            if status is None or status[0] != "running":
                raise FailedPrecondition(f"the evaluation of {key_text(key)} is not running: call "
                                         "StartEvaluation first")
            cur.execute("DELETE FROM predictions WHERE evaluation_id = ? AND sample >= ? AND sample < ?",
                        [evaluation_id, first, first + n])
            cur.register("incoming", table)
            cur.execute("INSERT INTO predictions SELECT * FROM incoming")
            cur.unregister("incoming")
            cur.execute("DELETE FROM restricted_correct WHERE evaluation_id = ? AND shard = ?",
                        [evaluation_id, shard.index])
            if rows:
                cur.executemany("INSERT INTO restricted_correct VALUES (?, ?, ?, ?, ?, ?)",
                                [[evaluation_id, r[0], shard.index, *r[1:]] for r in rows])
            cur.execute("INSERT OR REPLACE INTO evaluation_shards VALUES (?, ?, ?, ?, ?)",
                        [evaluation_id, shard.index, n, seconds, now])
            cur.execute("UPDATE evaluations SET updated_at = ?, run_samples = run_samples + ? WHERE id = ?",
                        [now, n, evaluation_id])
        self._notify()
        return self.get(key)

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
                cur.execute("DELETE FROM restricted_correct WHERE evaluation_id = ?", [evaluation_id])
                cur.execute("DELETE FROM evaluation_shards WHERE evaluation_id = ?", [evaluation_id])
                cur.execute("DELETE FROM evaluations WHERE id = ?", [evaluation_id])
        self._notify()

    # ---------------------------------------------------------------- results

    def predictions(self, key: pb.EvaluationKey, batch: int = 65536) -> Iterator[pb.Predictions]:
        evaluation_id = self._id(key)
        total = self.catalog.query("SELECT count(*) FROM predictions WHERE evaluation_id = ?", [evaluation_id])
        for offset in range(0, int(total[0][0]), batch):
            with self.catalog.transaction() as cur:
                table = cur.execute(
                    "SELECT sample, label, top1, top5, confidence, correct FROM predictions "
                    "WHERE evaluation_id = ? ORDER BY sample LIMIT ? OFFSET ?",
                    [evaluation_id, batch, offset]).fetch_arrow_table()
            top5 = table.column("top5").combine_chunks()
            yield pb.Predictions(
                sample=table.column("sample").to_numpy().tolist(),
                label=table.column("label").to_numpy().tolist(),
                top1=table.column("top1").to_numpy().tolist(),
                top5=top5.flatten().to_numpy().tolist(),
                confidence=table.column("confidence").to_numpy().tolist(),
                correct=table.column("correct").to_numpy(zero_copy_only=False).tolist(),
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

    def accuracies(self, *, model: str = "", testset: str = "") -> list[pb.Accuracy]:
        clauses, params = ["e.status = 'succeeded'"], []
        if model:
            clauses.append("e.model = ?")
            params.append(model)
        if testset:
            clauses.append("e.testset = ?")
            params.append(testset)
        rows = self.catalog.query(
            "SELECT e.model, e.version, e.testset, count(p.sample), coalesce(sum(p.correct::INTEGER), 0) "
            "FROM evaluations e JOIN predictions p ON p.evaluation_id = e.id "
            f"WHERE {' AND '.join(clauses)} GROUP BY ALL ORDER BY e.testset, e.model, e.version", params)
        out = []
        for model_name, version, testset_name, samples, correct in rows:
            low, high = clopper_pearson(int(correct), int(samples))
            out.append(pb.Accuracy(key=pb.EvaluationKey(model=model_name, version=version, testset=testset_name),
                                   samples=samples, correct=correct, accuracy=correct / samples if samples else 0.0,
                                   ci_low=low, ci_high=high))
        return out
