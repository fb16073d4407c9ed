"""Evaluations and per-sample predictions in the catalog.

An evaluation is one (model version, test set) pair. Its predictions are committed one shard at a
time: the shard's rows are deleted and inserted again in the same transaction as the shard's
progress row, so a re-sent shard replaces its rows and a killed run resumes at the first shard
without a progress row. Ingest goes through Arrow, column by column.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from shiftboard.errors import FailedPrecondition, InvalidArgument, NotFound
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


def key_text(key: pb.EvaluationKey) -> str:
    return f"{key.model}:{key.version} on {key.testset}"


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
              samples_total: int) -> tuple[pb.Evaluation, list[int]]:
        """Mark running (creating the row if a worker starts a pair directly); returns pending shards."""
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
        self._notify()
        return self.get(key), [i for i in range(shards_total) if i not in done]

    def commit_shard(self, key: pb.EvaluationKey, shard: pb.Shard, predictions: pb.Predictions,
                     seconds: float, num_classes: int) -> pb.Evaluation:
        """Replace the rows of one shard and record it done, in one transaction."""
        n = int(shard.num_samples)
        sample = np.asarray(predictions.sample, dtype=np.int64)
        columns = {"label": predictions.label, "top1": predictions.top1, "confidence": predictions.confidence}
        if len(sample) != n or any(len(v) != n for v in columns.values()) or len(predictions.top5) != 5 * n:
            raise InvalidArgument(f"shard {shard.index} has {n} samples; the predictions must hold {n} samples, "
                                  f"labels, top-1, confidences and {5 * n} top-5 entries")
        first = int(shard.first_sample)
        if not np.array_equal(sample, np.arange(first, first + n)):
            raise InvalidArgument(f"shard {shard.index} covers samples {first}..{first + n - 1} in order")
        label = np.asarray(predictions.label, dtype=np.int32)
        top1 = np.asarray(predictions.top1, dtype=np.int32)
        top5 = np.asarray(predictions.top5, dtype=np.int32)
        if ((top5 < -1) | (top5 >= num_classes)).any() or ((top1 < 0) | (top1 >= num_classes)).any():
            raise InvalidArgument(f"predicted classes must lie in [0, {num_classes}) (-1 pads top-5)")
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
