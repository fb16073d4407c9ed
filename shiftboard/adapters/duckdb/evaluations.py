"""Evaluations and per-sample predictions in the catalog.

An evaluation is one (model version, test set) pair. Its predictions are committed a batch of
shards at a time (``CommitShards``; ``CommitShard`` is a batch of one), checked first
(:mod:`.checks`: labels and correctness are the platform's own, computed from the labels stored
when the test set was registered), then written in one transaction in the compact layout
(:mod:`.commits`), and read back by :mod:`.reads`. :class:`Evaluations` keeps the evaluations'
state (pending, running, succeeded, failed) and wakes the watchers of ``changed`` on every change.

**Heartbeats.** Every sign of life of a pair's run (StartEvaluation, a commit, a heartbeat, FinishEvaluation)
sets ``heartbeat_at``; :meth:`Evaluations.lost_runs` finds the flow runs that went quiet (their worker died)
and the pairs they left pending or running, which the gateway hands out again.

**Reruns.** A rerun re-infers every shard. While it is under way the pair keeps its earlier results
(``status`` and the rows under the evaluation's id: predictions, accuracy and boards are unchanged) and its
state is in ``rerun`` (pending, running, failed); its rows are staged under the id's negative
(:func:`storage_id`) and replace the earlier rows in one transaction when it finishes with every shard. A
failed rerun leaves the earlier results as they were.
"""

from __future__ import annotations

import builtins
import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import duckdb
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

__all__ = ["STALE_PENDING", "STATE", "STATUS_OF_VALUE", "STATUS_WORDS", "Evaluations", "Pair", "PairState",
           "key_text", "label_bytes", "labels_of", "storage_id"]

#: The stored status words and their protobuf values (the vocabulary's).
STATUS_WORDS = vocab.STATUSES
STATUS_OF_VALUE = {v: k for k, v in STATUS_WORDS.items()}

#: A pending evaluation older than this is considered lost (its flow run never started, or was removed
#: from Prefect) and is handed out again by the sweep. (A running one is lost once its heartbeat is older
#: than ``settings.eval_stale_s``.)
STALE_PENDING = dt.timedelta(minutes=10)

#: The state an evaluation shows (SQL over ``evaluations e``): its rerun's while one is under way.
STATE = "(CASE WHEN coalesce(e.rerun, '') <> '' THEN e.rerun ELSE e.status END)"
#: Where its current run's rows are (SQL): the staging id while a rerun is under way.
STORAGE_ID = "(CASE WHEN coalesce(e.rerun, '') <> '' THEN -e.id ELSE e.id END)"

_COLUMNS = ("e.id, e.model, e.version, e.testset, " + STATE + ", e.shards_total, e.samples_total, e.error, "
            "e.flow_run_id, e.attempts, e.created_at, e.updated_at, e.run_started_at, e.run_samples")


def storage_id(evaluation_id: int, rerun: str | None) -> int:
    """Where a run of the evaluation stores its rows: its id, or the staging id (negative) of a rerun."""
    return -evaluation_id if rerun else evaluation_id


@dataclass(frozen=True)
class PairState:
    """What the scheduler needs to know of a pair's evaluation to decide whether it is live."""

    state: str  # as shown: the rerun's while one is under way
    flow_run_id: str
    last_sign: dt.datetime  # the last heartbeat, else the last change
    updated_at: dt.datetime


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
        sql = (f"SELECT {_COLUMNS}, (SELECT count(*) FROM evaluation_shards s WHERE s.evaluation_id = {STORAGE_ID}), "
               f"(SELECT coalesce(sum(samples), 0) FROM evaluation_shards s WHERE s.evaluation_id = {STORAGE_ID}) "
               f"FROM evaluations e WHERE {where} ORDER BY e.model, e.version, e.testset")
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
        for column, value in (("e.model", model), ("e.testset", testset), (STATE, status)):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        return [self._message(r) for r in self._rows(" AND ".join(clauses), params)]

    def get(self, key: pb.EvaluationKey) -> pb.Evaluation:
        rows = self._rows("e.model = ? AND e.version = ? AND e.testset = ?", [key.model, key.version, key.testset])
        if not rows:
            raise NotFound(f"no evaluation of {key_text(key)}: `shiftboard eval list` shows them")
        return self._message(rows[0])

    def _id(self, key: pb.EvaluationKey) -> int:
        rows = self.catalog.query("SELECT id FROM evaluations WHERE model = ? AND version = ? AND testset = ?",
                                  [key.model, key.version, key.testset])
        if not rows:
            raise NotFound(f"no evaluation of {key_text(key)}")
        return int(rows[0][0])

    def missing_pairs(self, *, stale: dt.timedelta, rerun: bool = False) -> builtins.list[Pair]:
        """Every (model, test set) pair without a good or live evaluation (what the sweep hands out): none
        yet, failed, running without a heartbeat for ``stale``, pending without a flow run for ``stale``
        (its hand-off was lost) or for :data:`STALE_PENDING`; with ``rerun``, every pair."""
        now = database.now()
        rows = self.catalog.query(
            "SELECT m.name, m.version, t.name FROM models m CROSS JOIN testsets t "
            "LEFT JOIN evaluations e ON e.model = m.name AND e.version = m.version AND e.testset = t.name "
            f"WHERE ? OR e.id IS NULL OR {STATE} = 'failed' "
            f"OR ({STATE} = 'pending' AND (e.updated_at < ? OR (e.flow_run_id = '' AND e.updated_at < ?))) "
            f"OR ({STATE} = 'running' AND coalesce(e.heartbeat_at, e.updated_at) < ?) "
            "ORDER BY m.name, m.version, t.name",
            [rerun, now - STALE_PENDING, now - stale, now - stale])
        return [Pair(*r) for r in rows]

    def states(self, pairs: Sequence[Pair]) -> dict[Pair, PairState]:
        """The state of each of ``pairs`` that has an evaluation."""
        if not pairs:
            return {}
        rows = self.catalog.query(
            f"SELECT e.model, e.version, e.testset, {STATE}, e.flow_run_id, coalesce(e.heartbeat_at, e.updated_at), "
            "e.updated_at FROM evaluations e JOIN (SELECT unnest(?) AS model, unnest(?) AS version, "
            "unnest(?) AS testset) w USING (model, version, testset)",
            [[p.model for p in pairs], [p.version for p in pairs], [p.testset for p in pairs]])
        return {Pair(m, v, t): PairState(state, flow_run_id, last, updated)
                for m, v, t, state, flow_run_id, last, updated in rows}

    def lost_runs(self, cutoff: dt.datetime) -> dict[str, builtins.list[Pair]]:
        """Flow runs that went quiet: each one's pairs still pending or running, by flow-run id.

        A flow run is lost when it has started (some pair of it has a heartbeat), has pairs left to do, and
        none of its pairs has shown a sign of life since ``cutoff``. A flow run that has not started yet
        (waiting for a worker) is not lost.
        """
        rows = self.catalog.query(
            f"WITH runs AS (SELECT e.flow_run_id FROM evaluations e WHERE e.flow_run_id <> '' "
            f"GROUP BY e.flow_run_id HAVING bool_or({STATE} IN ('pending', 'running')) "
            "AND max(e.heartbeat_at) < ?) "
            f"SELECT e.flow_run_id, e.model, e.version, e.testset FROM evaluations e JOIN runs USING (flow_run_id) "
            f"WHERE {STATE} IN ('pending', 'running') ORDER BY e.flow_run_id, e.model, e.version, e.testset",
            [cutoff])
        out: dict[str, builtins.list[Pair]] = {}
        for flow_run_id, *pair in rows:
            out.setdefault(flow_run_id, []).append(Pair(*pair))
        return out

    def unhanded(self, cutoff: dt.datetime) -> builtins.list[Pair]:
        """Pending pairs never handed to a flow run since before ``cutoff`` (the hand-off was lost)."""
        rows = self.catalog.query(
            f"SELECT e.model, e.version, e.testset FROM evaluations e WHERE {STATE} = 'pending' "
            "AND e.flow_run_id = '' AND e.updated_at < ? ORDER BY e.model, e.version, e.testset", [cutoff])
        return [Pair(*r) for r in rows]

    # ---------------------------------------------------------------- writing

    def ensure_pending(self, pair: Pair, *, shards_total: int, samples_total: int, error: str = "",
                       rerun: bool = False) -> None:
        """Create or reset the evaluation of ``pair`` as pending (or failed, when ``error`` is given); it
        waits for a new flow run (:meth:`set_flow_run`).

        With ``rerun`` every shard is inferred again: a succeeded pair keeps its results until the rerun
        has every shard (see the module docstring), any other pair's rows are dropped. Without it, a rerun
        under way (or failed) goes on from its staged shards.
        """
        status = "failed" if error else "pending"
        now = database.now()
        with self.catalog.transaction() as cur:
            row = cur.execute("SELECT id, status, coalesce(rerun, '') FROM evaluations WHERE model = ? AND "
                              "version = ? AND testset = ?", [pair.model, pair.version, pair.testset]).fetchone()
            if row:
                evaluation_id, old_status, old_rerun = row
                staged = bool(old_rerun)
                if error or (rerun and old_status != "succeeded"):
                    _delete_rows(cur, [-evaluation_id])
                    staged = False
                    if rerun:
                        _delete_rows(cur, [evaluation_id])
                elif rerun:  # a fresh rerun of a succeeded pair: staged from scratch
                    _delete_rows(cur, [-evaluation_id])
                    staged = True
                if staged:
                    cur.execute("UPDATE evaluations SET rerun = 'pending', error = '', updated_at = ?, "
                                "shards_total = ?, samples_total = ?, flow_run_id = '', heartbeat_at = NULL "
                                "WHERE id = ?", [now, shards_total, samples_total, evaluation_id])
                else:
                    cur.execute("UPDATE evaluations SET status = ?, rerun = '', error = ?, updated_at = ?, "
                                "shards_total = ?, samples_total = ?, flow_run_id = '', heartbeat_at = NULL "
                                "WHERE id = ?", [status, error, now, shards_total, samples_total, evaluation_id])
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
            rerun = (cur.execute("SELECT coalesce(rerun, '') FROM evaluations WHERE id = ?", [row[0]]).fetchone()
                     or [""])[0]
            state = "rerun = 'running'" if rerun else "status = 'running'"
            cur.execute(f"UPDATE evaluations SET {state}, error = '', attempts = attempts + 1, "
                        "flow_run_id = CASE WHEN ? = '' THEN flow_run_id ELSE ? END, updated_at = ?, heartbeat_at = ?, "
                        "run_started_at = ?, run_samples = 0, shards_total = ?, samples_total = ? WHERE id = ?",
                        [flow_run_id, flow_run_id, now, now, now, shards_total, samples_total, row[0]])
            stored = storage_id(int(row[0]), rerun)
            done = {r[0] for r in cur.execute("SELECT shard FROM evaluation_shards WHERE evaluation_id = ?",
                                              [stored]).fetchall()}
            if restricted:
                counts = dict(cur.execute(
                    f"SELECT shard, count(*) FROM restricted_correct WHERE evaluation_id = ? AND shift IN "
                    f"({', '.join('?' * len(restricted))}) GROUP BY shard", [stored, *restricted]).fetchall())
                done = {i for i in done if counts.get(i, 0) == len(set(restricted))}
        self._notify()
        return self.get(key), [i for i in range(shards_total) if i not in done]

    def heartbeat(self, key: pb.EvaluationKey) -> pb.Evaluation:
        """Record that the run of a pending or running evaluation is alive (nothing else changes; a pending
        one's run may be waiting to retry its start); returns the evaluation."""
        with self.catalog.transaction() as cur:
            cur.execute(f"UPDATE evaluations e SET heartbeat_at = ? WHERE model = ? AND version = ? AND testset = ? "
                        f"AND {STATE} IN ('pending', 'running')", [database.now(), key.model, key.version,
                                                                  key.testset])
        return self.get(key)

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
        """Succeeded (every shard committed; a rerun's staged rows then replace the earlier ones, in this
        transaction) or failed with ``error``. A failed rerun keeps the earlier results; a failure reported
        for a pair that has succeeded meanwhile (by another run of it) changes nothing."""
        evaluation_id = self._id(key)
        now = database.now()
        with self.catalog.transaction() as cur:
            row = cur.execute("SELECT status, coalesce(rerun, ''), shards_total FROM evaluations WHERE id = ?",
                              [evaluation_id]).fetchone()
            if row is None:
                raise NotFound(f"no evaluation of {key_text(key)}")
            status, rerun, total = row
            stored = storage_id(evaluation_id, rerun)
            if failed:
                if rerun:
                    kept = " (the earlier results are kept)" if status == "succeeded" else ""
                    cur.execute("UPDATE evaluations SET rerun = 'failed', error = ?, updated_at = ?, heartbeat_at = ? "
                                "WHERE id = ?", [(error[:3960] + kept), now, now, evaluation_id])
                elif status != "succeeded":
                    cur.execute("UPDATE evaluations SET status = 'failed', error = ?, updated_at = ?, "
                                "heartbeat_at = ? WHERE id = ?", [error[:4000], now, now, evaluation_id])
            else:
                count = cur.execute("SELECT count(*) FROM evaluation_shards WHERE evaluation_id = ?",
                                    [stored]).fetchone()
                done = int(count[0]) if count else 0
                if done != total:
                    raise FailedPrecondition(f"{key_text(key)}: {done} of {total} shards committed; commit "
                                             "every shard before finishing")
                if rerun:
                    commits.swap_staged(cur, evaluation_id)
                cur.execute("UPDATE evaluations SET status = 'succeeded', rerun = '', error = '', updated_at = ?, "
                            "heartbeat_at = ? WHERE id = ?", [now, now, evaluation_id])
        self._notify()
        return self.get(key)

    def delete_for(self, *, model: str | None = None, version: str | None = None,
                   testset: str | None = None) -> None:
        with self.catalog.transaction() as cur:
            where, params = ("model = ? AND version = ?", [model, version]) if model else ("testset = ?",
                                                                                            [testset])
            ids = [int(r[0]) for r in cur.execute(f"SELECT id FROM evaluations WHERE {where}", params).fetchall()]
            _delete_rows(cur, ids + [-i for i in ids])  # with any rerun's staged rows
            for evaluation_id in ids:
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


def _delete_rows(cur: duckdb.DuckDBPyConnection, ids: Sequence[int]) -> None:
    """Delete every stored row (predictions, top-1, restricted correctness, shards) under ``ids``."""
    if not ids:
        return
    for table_name in commits.ROW_TABLES:
        cur.execute(f"DELETE FROM {table_name} WHERE evaluation_id IN ({', '.join('?' * len(ids))})", list(ids))
