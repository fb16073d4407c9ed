"""Evaluations and per-sample predictions in the catalog.

An evaluation is one (model version, test set) pair. Its predictions are committed a batch of
shards at a time (``CommitShards``; ``CommitShard`` is a batch of one), checked first
(:mod:`.checks`: labels and correctness are the platform's own, computed from the labels stored
when the test set was registered), then written in one transaction in the compact layout
(:mod:`.commits`), and read back by :mod:`.reads`. :class:`Evaluations` keeps the evaluations'
state (pending, running, succeeded, failed) and wakes the watchers of ``changed`` on every change.
"""

from __future__ import annotations

import builtins
import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from shiftboard.adapters.duckdb import checks, commits, database, reads
from shiftboard.adapters.duckdb.catalog import Catalog
from shiftboard.adapters.duckdb.database import timestamp
from shiftboard.adapters.duckdb.keys import Pair, key_text, label_bytes, labels_of
from shiftboard.domain.errors import FailedPrecondition, NotFound
from shiftboard.domain.scoring import Restriction
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab
from shiftboard.wire.commits import ShardPredictions

__all__ = ["STALE_PENDING", "STALE_RUNNING", "STATUS_OF_VALUE", "STATUS_WORDS", "Evaluations", "Pair", "key_text",
           "label_bytes", "labels_of"]

#: The stored status words and their protobuf values (the vocabulary's).
STATUS_WORDS = vocab.STATUSES
STATUS_OF_VALUE = {v: k for k, v in STATUS_WORDS.items()}

#: A pending evaluation older than this, or a running one without progress for this long, is
#: considered lost (its worker died) and is handed out again by the sweep.
STALE_PENDING = dt.timedelta(minutes=10)
STALE_RUNNING = dt.timedelta(minutes=30)

_COLUMNS = ("id, model, version, testset, status, shards_total, samples_total, error, flow_run_id, attempts, "
            "created_at, updated_at, run_started_at, run_samples")


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

    def _rows(self, where: str = "1=1", params: Sequence[object] | None = None) -> builtins.list[tuple]:
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
        out.created_at.CopyFrom(timestamp(created_at))
        out.updated_at.CopyFrom(timestamp(updated_at))
        return out

    def list(self, *, model: str = "", testset: str = "", status: str = "") -> builtins.list[pb.Evaluation]:
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
        now = database.now()
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
        now = database.now()
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
        now = database.now()
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
        arrays = checks.from_message(shard, predictions, seconds, restricted)
        return self.commit_shards(key, [(shard, arrays)], num_classes, {shard.index: labels}, class_subset,
                                  restrictions)

    def commit_shards(self, key: pb.EvaluationKey, shards: Sequence[tuple[pb.Shard, ShardPredictions]],
                      num_classes: int, labels: Mapping[int, np.ndarray], class_subset: Sequence[int] = (),
                      restrictions: Mapping[str, Restriction] | None = None) -> pb.Evaluation:
        """Replace the rows of ``shards`` (manifest entry, predictions) and record them done, all in one
        transaction: every shard is stored, or (on any error) none.

        ``labels`` are each shard's true labels (the platform's); ``correct`` is ``top1 == label``. With a
        class subset the predicted classes must lie in it (the subset is what is scored). Restricted top-1
        are a reference shard's for the shifts of ``restrictions`` (see :func:`.checks._restricted_rows`);
        they replace the shard's earlier restricted rows. A shard committed before has its rows deleted
        first; one never committed costs no delete.
        """
        batch = checks.checked(key, shards, num_classes, labels, class_subset, restrictions)
        commits.store(self.catalog, key, shards, num_classes, batch)
        self._notify()
        return self.get(key)

    def finish(self, key: pb.EvaluationKey, *, failed: bool, error: str) -> pb.Evaluation:
        evaluation_id = self._id(key)
        with self.catalog.transaction() as cur:
            if not failed:
                row = cur.execute(
                    "SELECT (SELECT count(*) FROM evaluation_shards WHERE evaluation_id = ?), shards_total "
                    "FROM evaluations WHERE id = ?", [evaluation_id, evaluation_id]).fetchone()
                if row is None:
                    raise NotFound(f"no evaluation of {key_text(key)}")
                done, total = row
                if done != total:
                    raise FailedPrecondition(f"{key_text(key)}: {done} of {total} shards committed; commit "
                                             "every shard before finishing")
            cur.execute("UPDATE evaluations SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                        ["failed" if failed else "succeeded", error[:4000], database.now(), evaluation_id])
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

    # ---------------------------------------------------------------- results (see :mod:`.reads`)

    def correctness(self, evaluation_id: int) -> np.ndarray:
        """Whether each committed sample's top-1 is its label (bool, sample order), from the stored bits."""
        return reads.correctness(self.catalog, evaluation_id)

    def columns(self, evaluation_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(labels int32 [N], top5 int32 [N, 5], correct bool [N]) of every committed sample in sample order."""
        return reads.columns(self.catalog, evaluation_id)

    def predictions(self, key: pb.EvaluationKey, batch: int = 65536) -> Iterator[pb.Predictions]:
        """Every committed prediction in sample order, in messages of ``batch`` samples (the last one fewer)."""
        yield from reads.predictions(self.catalog, key, self._id(key), batch)

    def restricted_correct(self, evaluation_id: int, shift: str) -> np.ndarray | None:
        """The evaluation's correctness on ``shift``'s class sub-list, kept samples only in sample order;
        None unless every shard of the evaluation carries it."""
        return reads.restricted_correct(self.catalog, evaluation_id, shift)

    def accuracies(self, *, model: str = "", testset: str = "") -> builtins.list[pb.Accuracy]:
        return reads.accuracies(self.catalog, model=model, testset=testset)
