"""Per-evaluation aggregates of the leaderboard, kept in the catalog: what a board reads instead of predictions.

For one evaluation and one *sample list* (variant ``''``: the evaluation's own samples; variant
``S``: the samples of a reference that shift ``S``'s class sub-list or class map keeps, and the
evaluation's correctness on them) an aggregate holds the sample count, the correct count, and the
correct samples in each of the first ``resamples`` resamples of the list's shared resampling weights
(:func:`~shiftboard.domain.bootstrap.resampled_correct`; R int32, 4 KB for 1,000 resamples).
A board reads two aggregates per model and fits; the paired bootstrap is then the same, to the
last bit, as the one computed from per-sample correctness (see :mod:`shiftboard.domain.bootstrap`).

**Where correctness comes from.** ``Evaluations.correctness`` (the stored correctness bits) for
variant ``''``; for a variant, ``Evaluations.restricted_correct`` (the exact restricted scores the
worker sent) or, where an evaluation has none, the reference correctness rebuilt from its stored
top-5 (:func:`~.aggregate_lists.rebuilt_correct`, an undercount; ``exact`` is false and the board says so).

**When it is computed.**

* In a background thread after evaluations change (``Evaluations.changed``): once no change has
  come for :data:`QUIET_S` (at most :data:`MAX_DELAY_S` after the first), every succeeded
  evaluation without a fresh aggregate is computed with the gateway's ``bootstrap_resamples``,
  batched per sample list: one pass of weights serves every evaluation waiting on that list (up to
  :data:`MATRIX_BYTES` of correctness at a time). The thread runs at a lower CPU priority.
* On a request, for what is missing, stale or holds fewer resamples than asked (then stored too), in
  the same batches. A lock per sample list keeps the thread and requests from computing one list twice.
* :meth:`Aggregator.flush` computes everything pending now and returns when it is stored (benchmarks,
  tests).

**Freshness.** An aggregate is used only while its ``stamp`` equals the evaluation's ``updated_at``
(every commit and status change sets it; it is read *before* the correctness, so a row computed
from newer data is at worst recomputed), its ``method`` and ``seed`` are the current ones, and a
variant's ``list_stamp`` (a digest of the shift's classes) matches the shift as registered now. Rows
of deleted evaluations and of shifts no longer restricted are removed by the thread.

Memory while computing is bounded by :data:`MATRIX_BYTES` of float32 correctness plus one chunk of
weights (~32 MB), whatever the number of stored predictions; nothing is kept between passes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shiftboard.domain.bootstrap import WEIGHTS_METHOD, sample_list_key
from shiftboard.services.gateway.aggregate_lists import SEED, list_stamp, rebuilt_correct, resampled_rows

if TYPE_CHECKING:
    from shiftboard.adapters.duckdb.catalog import Catalog
    from shiftboard.adapters.duckdb.evaluations import Evaluations
    from shiftboard.settings import Settings

log = logging.getLogger(__name__)

#: The background thread computes once no evaluation changed for this long ...
QUIET_S = 1.0
#: ... or this long after the first change it saw, whichever comes first (while commits stream in
#: without a pause, e.g. during a sweep; a request computes what it needs meanwhile).
MAX_DELAY_S = 120.0
#: Float32 correctness of one batch (evaluations x samples) at most.
MATRIX_BYTES = 96 * 2**20

Key = tuple[int, str]


@dataclass(frozen=True)
class Need:
    """An aggregate a board needs: evaluation ``evaluation_id`` on ``testset``, on sample list ``variant``."""

    evaluation_id: int
    testset: str
    variant: str = ""

    @property
    def key(self) -> Key:
        return self.evaluation_id, self.variant


@dataclass(frozen=True, eq=False)
class Aggregate:
    """One evaluation on one sample list: ``correct`` of ``samples``, and ``counts`` (int32, read-only):
    the correct samples in each resample (empty when none were asked). ``exact`` is false for a
    restricted reference correctness rebuilt from top-5."""

    samples: int
    correct: int
    exact: bool
    counts: np.ndarray


@dataclass(frozen=True)
class AggregatorStats:
    """Aggregates computed and stored, weight passes made (one per batch), and seconds spent."""

    computed: int
    passes: int
    seconds: float


def _lower_priority() -> None:
    """Let requests come first: this thread's nice value up by 10 (Linux: per thread)."""
    with suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class Aggregator:
    """Computes, stores and serves aggregates; owns the background thread (``close`` stops it)."""

    def __init__(self, catalog: Catalog, evaluations: Evaluations, settings: Settings, *,
                 background: bool = True) -> None:
        self.catalog = catalog
        self.evaluations = evaluations
        self.settings = settings
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._computed = self._passes = 0
        self._seconds = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="aggregates", daemon=True)
            self._thread.start()

    @property
    def resamples(self) -> int:
        """What the background computes: the gateway's default bootstrap resamples."""
        return int(self.settings.bootstrap_resamples)

    def stats(self) -> AggregatorStats:
        with self._stats_lock:
            return AggregatorStats(self._computed, self._passes, self._seconds)

    def close(self) -> None:
        """Stop the background thread (waits for a pass in progress)."""
        self._stop.set()
        with self.evaluations.changed:
            self.evaluations.changed.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # ---------------------------------------------------------------- serving

    def get(self, needs: Sequence[Need], resamples: int,
            known: dict[Key, Aggregate] | None = None) -> dict[Key, Aggregate]:
        """The aggregates of ``needs`` with at least ``resamples`` resamples (0: counts only), computed
        and stored where missing or stale. ``known`` (filled in) spares re-reading within one request."""
        known = {} if known is None else known
        wanted = {n.key: n for n in needs if not self._enough(known.get(n.key), resamples)}
        if wanted:
            known.update(self._stored(list(wanted.values()), resamples))
            missing = [n for k, n in wanted.items() if not self._enough(known.get(k), resamples)]
            target = max(resamples, self.resamples) if resamples else 0
            for (testset, variant), group in _by_list(missing).items():
                known.update(self._compute(testset, variant, [n.evaluation_id for n in group], target, resamples))
        return {n.key: known[n.key] for n in needs}

    @staticmethod
    def _enough(agg: Aggregate | None, resamples: int) -> bool:
        return agg is not None and len(agg.counts) >= resamples

    def _restrictions(self, reference: str) -> dict[str, tuple[list[int], list[list[int]]]]:
        return {name: (subset, groups) for name, subset, groups in self.catalog.restricted_shifts(reference)}

    def _stored(self, needs: Sequence[Need], resamples: int) -> dict[Key, Aggregate]:
        """Fresh stored aggregates of ``needs`` holding at least ``resamples`` resamples."""
        ids = sorted({n.evaluation_id for n in needs})
        counts = "a.counts" if resamples else "NULL"
        rows = self.catalog.query(
            f"SELECT a.evaluation_id, a.variant, a.list_stamp, a.exact, a.samples, a.correct, {counts} "
            "FROM aggregates a JOIN evaluations e ON e.id = a.evaluation_id "
            "WHERE list_contains(?, a.evaluation_id) AND a.stamp = epoch_us(e.updated_at) AND a.method = ? "
            "AND a.seed = ? AND a.resamples >= ?", [ids, WEIGHTS_METHOD, SEED, resamples])
        wanted = {n.key: n for n in needs}
        stamps: dict[str, dict[str, str]] = {}
        out = {}
        for evaluation_id, variant, stamp, exact, samples, correct, blob in rows:
            need = wanted.get((int(evaluation_id), variant))
            if need is None:
                continue
            if variant:
                if need.testset not in stamps:
                    stamps[need.testset] = {k: list_stamp(*v) for k, v in self._restrictions(need.testset).items()}
                if stamps[need.testset].get(variant) != stamp:
                    continue
            data = np.frombuffer(blob, dtype="<i4")[:resamples] if blob is not None else np.zeros(0, np.int32)
            out[need.key] = Aggregate(samples=int(samples), correct=int(correct), exact=bool(exact), counts=data)
        return out

    # ---------------------------------------------------------------- computing

    @contextmanager
    def _list_lock(self, key: str) -> Iterator[None]:
        with self._locks_lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def correctness(self, evaluation_id: int) -> np.ndarray:
        """An evaluation's per-sample correctness (bool, sample order), from the stored correctness bits."""
        return np.asarray(self.evaluations.correctness(evaluation_id), dtype=bool)

    def _list_correctness(self, evaluation_id: int, variant: str,
                          restriction: tuple[list[int], list[list[int]]] | None) -> tuple[np.ndarray, bool]:
        """(correctness on the sample list, exact) of one evaluation."""
        if not variant:
            return self.correctness(evaluation_id), True
        exact = self.evaluations.restricted_correct(evaluation_id, variant)
        if exact is not None:
            return np.asarray(exact, dtype=bool), True
        assert restriction is not None
        labels, top5, _ = self.evaluations.columns(evaluation_id)
        return rebuilt_correct(restriction[0], restriction[1], labels, top5), False

    def _states(self, ids: Sequence[int]) -> dict[int, tuple[str, int]]:
        rows = self.catalog.query("SELECT id, status, epoch_us(updated_at) FROM evaluations WHERE "
                                  "list_contains(?, id)", [list(ids)])
        return {int(i): (status, int(stamp)) for i, status, stamp in rows}

    def _compute(self, testset: str, variant: str, ids: Sequence[int], resamples: int,
                 at_least: int | None = None) -> dict[Key, Aggregate]:
        """Compute (and store, for evaluations still succeeded) the aggregates of ``ids`` on one sample
        list with ``resamples`` resamples, unless a fresh one with ``at_least`` is stored meanwhile."""
        list_key = sample_list_key(testset, variant)
        restriction = None
        if variant:
            restriction = self._restrictions(testset).get(variant)
            if restriction is None:
                raise LookupError(f"{variant} is not a shift of {testset} with a class sub-list or class map")
        stamp = list_stamp(*restriction) if restriction is not None else ""
        out: dict[Key, Aggregate] = {}
        with self._list_lock(list_key):
            floor = resamples if at_least is None else at_least
            done = self._stored([Need(i, testset, variant) for i in ids], floor)
            out.update(done)
            pending = [i for i in ids if (i, variant) not in done]
            while pending:
                out.update(self._batch(list_key, variant, restriction, stamp, pending, resamples))
        return out

    def _gather(self, variant: str, restriction: tuple[list[int], list[list[int]]] | None,
                pending: list[int]) -> tuple[np.ndarray, list[tuple[int, bool, int]]]:
        """The correctness matrix (float32, one row per evaluation) of the next evaluations of ``pending``
        with as many samples as the first, up to :data:`MATRIX_BYTES`, and (evaluation, exact, correct)
        of each row; they are removed from ``pending``, the others stay for a later pass."""
        matrix: np.ndarray | None = None
        rows: list[tuple[int, bool, int]] = []
        skipped: list[int] = []
        while pending:
            evaluation_id = pending.pop(0)
            correct, exact = self._list_correctness(evaluation_id, variant, restriction)
            if matrix is None:
                n = max(1, len(correct))
                cap = max(1, min(len(pending) + 1, MATRIX_BYTES // (4 * n)))
                matrix = np.empty((cap, len(correct)), dtype=np.float32)
            elif len(correct) != matrix.shape[1]:
                skipped.append(evaluation_id)
                continue
            matrix[len(rows)] = correct
            rows.append((evaluation_id, exact, int(correct.sum())))
            if len(rows) == matrix.shape[0]:
                break
        pending[:0] = skipped
        assert matrix is not None
        return matrix[:len(rows)], rows

    def _batch(self, list_key: str, variant: str, restriction: tuple[list[int], list[list[int]]] | None,
               stamp: str, pending: list[int], resamples: int) -> dict[Key, Aggregate]:
        """One pass of weights over the next evaluations of ``pending`` (see :meth:`_gather`); the
        aggregates of those still succeeded are stored."""
        started = time.perf_counter()
        states = self._states(pending)  # read before the correctness: a newer commit only makes it stale
        matrix, rows = self._gather(variant, restriction, pending)
        n = matrix.shape[1]
        counts = resampled_rows(matrix, list_key, resamples)
        out: dict[Key, Aggregate] = {}
        store = []
        now = time.time()
        for (evaluation_id, exact, hits), row in zip(rows, counts, strict=True):
            out[(evaluation_id, variant)] = Aggregate(samples=n, correct=hits, exact=exact, counts=row)
            state = states.get(evaluation_id)
            if state is not None and state[0] == "succeeded" and n:
                store.append([evaluation_id, variant, state[1], stamp, WEIGHTS_METHOD, SEED, exact, n, hits,
                              resamples, row.tobytes(), now])
        if store:
            with self.catalog.transaction() as cur:
                cur.executemany("INSERT OR REPLACE INTO aggregates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                                "to_timestamp(?))", store)
        with self._stats_lock:
            self._computed += len(store)
            self._passes += 1
            self._seconds += time.perf_counter() - started
        log.debug("aggregates: %d evaluation(s) on %s, %d samples, %d resamples in %.2f s", len(rows), list_key, n,
                  resamples, time.perf_counter() - started)
        return out

    # ---------------------------------------------------------------- background

    def pending(self) -> list[Need]:
        """Every succeeded evaluation's aggregate (own samples, and each restricted shift of a reference)
        that is missing, stale or holds fewer than the default resamples. Sets registered without labels
        have none: their correctness is unknown, so there is nothing to count."""
        fresh = ("a.evaluation_id IS NOT NULL AND a.stamp = epoch_us(e.updated_at) AND a.method = ? AND a.seed = ? "
                 "AND a.resamples >= ?")
        params = [WEIGHTS_METHOD, SEED, self.resamples]
        own = self.catalog.query(
            "SELECT e.id, e.testset FROM evaluations e LEFT JOIN aggregates a ON a.evaluation_id = e.id AND "
            f"a.variant = '' WHERE e.status = 'succeeded' AND NOT ({fresh}) AND e.testset NOT IN (SELECT name FROM "
            "testsets WHERE coalesce(unlabelled, false)) ORDER BY e.testset, e.id", params)
        variants = self.catalog.query(
            "SELECT e.id, e.testset, t.name, t.class_subset, t.class_map, a.list_stamp, "
            f"coalesce({fresh}, false) FROM evaluations e "
            "JOIN testsets t ON t.reference = e.testset AND t.kind <> 'reference' "
            "AND (len(t.class_subset) > 0 OR t.class_map IS NOT NULL) "
            "LEFT JOIN aggregates a ON a.evaluation_id = e.id AND a.variant = t.name "
            "WHERE e.status = 'succeeded' ORDER BY e.testset, t.name, e.id", params)
        out = [Need(int(i), testset) for i, testset in own]
        for i, testset, shift, subset, groups, stamp, ok in variants:
            if not ok or stamp != list_stamp(list(subset or []), [list(g) for g in groups or []]):
                out.append(Need(int(i), testset, shift))
        return out

    def flush(self) -> AggregatorStats:
        """Compute every pending aggregate now (in this thread) and return when all are stored; the
        stats say what this gateway has computed so far."""
        tried: set[Key] = set()
        while not self._stop.is_set() and (needs := [n for n in self.pending() if n.key not in tried]):
            tried.update(n.key for n in needs)  # what cannot be stored (no samples) is not retried here
            for (testset, variant), group in _by_list(needs).items():
                try:
                    self._compute(testset, variant, [n.evaluation_id for n in group], self.resamples)
                except LookupError as exc:  # the shift was deleted or re-registered meanwhile
                    log.info("aggregates of %s on %s skipped: %s", testset, variant, exc)
        return self.stats()

    def _cleanup(self) -> None:
        """Remove rows of evaluations that are gone and of shifts that no longer restrict a reference."""
        with self.catalog.transaction() as cur:
            cur.execute("DELETE FROM aggregates WHERE evaluation_id NOT IN (SELECT id FROM evaluations)")
            cur.execute("DELETE FROM aggregates a WHERE a.variant <> '' AND NOT EXISTS (SELECT 1 FROM testsets t "
                        "JOIN evaluations e ON e.id = a.evaluation_id WHERE t.name = a.variant AND "
                        "t.reference = e.testset AND (len(t.class_subset) > 0 OR t.class_map IS NOT NULL))")

    def _wait_for_quiet(self, changed: threading.Condition) -> None:
        first = time.monotonic()
        while not self._stop.is_set():
            with changed:
                generation = self.evaluations.generation
                changed.wait(QUIET_S)
                if self.evaluations.generation == generation or time.monotonic() - first > MAX_DELAY_S:
                    return

    def _run(self) -> None:
        _lower_priority()
        changed = self.evaluations.changed
        seen = -1
        while not self._stop.is_set():
            with changed:
                if self.evaluations.generation == seen:
                    changed.wait(60.0)
                if self._stop.is_set() or self.evaluations.generation == seen:
                    continue
            self._wait_for_quiet(changed)
            seen = self.evaluations.generation
            if self._stop.is_set():
                return
            try:
                self._cleanup()
                self.flush()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("computing leaderboard aggregates failed; the next change or request retries")


def _by_list(needs: Sequence[Need]) -> Mapping[tuple[str, str], list[Need]]:
    groups: dict[tuple[str, str], list[Need]] = {}
    for need in needs:
        groups.setdefault((need.testset, need.variant), []).append(need)
    return groups
