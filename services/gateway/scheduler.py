"""Triggers: turn "this model / this test set / every missing pair" into pending evaluations and
hand each to the Prefect deployment ``evaluate``.

Hand-off happens on a background thread so that SubmitModel and RegisterTestSet return at once. If
Prefect cannot be reached the evaluation simply stays pending, and the watchdog hands it out again. A
pair that can never run (input shapes or label spaces differ) is recorded as failed with the reason
instead. A pair already live (running with a recent heartbeat, or pending for a flow run) is not handed
out twice.

**Watchdog.** Every few seconds the gateway looks for flow runs that went quiet: a run heartbeats every
``settings.eval_heartbeat_s`` while it evaluates (:mod:`shiftboard.flows.evaluate`), so one with pairs left
and no sign of life for ``settings.eval_stale_s`` has lost its worker (killed, its machine gone). Its
pairs are handed out again (they resume at their first uncommitted shard) and the flow run is marked
crashed in Prefect. Pending pairs whose hand-off was lost (Prefect down, the gateway restarted) are
handed out again too. Nothing is judged before the gateway has been up for ``eval_stale_s`` itself (a
gateway that was down saw no heartbeats).

**Cancelling.** When a model or test set is deleted, the flow runs of its unfinished pairs that have
nothing else left to do are cancelled in Prefect (:meth:`Scheduler.cancel_runs`, on the hand-off thread).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from shiftboard.adapters import prefect
from shiftboard.adapters.duckdb.catalog import Catalog
from shiftboard.adapters.duckdb.database import now as db_now
from shiftboard.adapters.duckdb.evaluations import STALE_PENDING, Evaluations, Pair, PairState
from shiftboard.domain import compatibility
from shiftboard.domain.compatibility import ModelShape, TestSetShape
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb

log = logging.getLogger(__name__)

#: (settings, model, version, test sets) -> flow-run id
Submit = Callable[[Settings, str, str, list[str]], str]
#: (settings, flow-run id, message) -> whether its state changed
Crash = Callable[[Settings, str, str], bool]
#: (settings, flow-run id, message) -> whether its state changed
Cancel = Callable[[Settings, str, str], bool]
#: Most seconds between two looks of the watchdog.
WATCHDOG_MAX_PERIOD_S = 5.0


def _prefect_submit(settings: Settings, model: str, version: str, testsets: list[str]) -> str:
    return prefect.submit_evaluations(settings, model, version, testsets)


def _prefect_crash(settings: Settings, flow_run_id: str, message: str) -> bool:
    return prefect.crash_flow_run(settings, flow_run_id, message)


def _prefect_cancel(settings: Settings, flow_run_id: str, message: str) -> bool:
    return prefect.cancel_flow_run(settings, flow_run_id, message)


class _Mark(NamedTuple):
    """A state to give a flow run in Prefect: ``crash`` (its worker died) or ``cancel`` (its pairs were deleted)."""

    kind: str
    flow_run_id: str
    message: str


def is_live(state: PairState | None, now: dt.datetime, stale: dt.timedelta, handing_off: bool) -> bool:
    """Whether a pair's evaluation is under way, so that asking for it again must not start a second run:
    running with a sign of life within ``stale``, or pending for a flow run (or its hand-off) within
    :data:`STALE_PENDING`."""
    if state is None:
        return False
    if state.state == "running":
        return state.last_sign >= now - stale
    if state.state == "pending":
        return handing_off or (bool(state.flow_run_id) and state.updated_at >= now - STALE_PENDING)
    return False


def incompatibility(model: pb.Model, testset: pb.TestSet) -> str:
    """Why ``model`` cannot be evaluated on ``testset``, or "" when it can
    (:func:`shiftboard.domain.compatibility.incompatibility`)."""
    md, spec = model.metadata, testset.spec
    return compatibility.incompatibility(
        ModelShape(f"{md.name}:{md.version}", (md.input.channels, md.input.height, md.input.width), md.num_classes),
        TestSetShape(spec.name, (spec.channels, spec.height, spec.width), spec.num_classes, tuple(spec.class_subset),
                     tuple(tuple(g.outputs) for g in spec.class_map))) or ""


class Scheduler:
    """Records pending evaluations and hands them to the evaluation worker."""

    def __init__(self, settings: Settings, catalog: Catalog, evaluations: Evaluations,
                 submit: Submit | None = None, crash: Crash | None = None, cancel: Cancel | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.evaluations = evaluations
        self.submit = submit or _prefect_submit
        self.crash = crash or _prefect_crash
        self.cancel = cancel or _prefect_cancel
        self.stale = dt.timedelta(seconds=settings.eval_stale_s)
        #: Hand-offs (model, version, test sets) and crash or cancel marks, in order.
        self._queue: queue.Queue[tuple[str, str, list[str]] | _Mark] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._handing_off: set[Pair] = set()  # queued, not yet handed to a flow run
        self._lock = threading.Lock()
        self._preloads: queue.Queue[pb.Model] = queue.Queue()
        self._preloader: threading.Thread | None = None
        self._started = time.monotonic()
        self._closed = threading.Event()
        self._watchdog: threading.Thread | None = None
        if settings.auto_evaluate:
            if self.submit is _prefect_submit:
                self._ensure_thread()  # it imports Prefect now, not when the first model arrives
            self._watchdog = threading.Thread(target=self._watch, name="evaluation-watchdog", daemon=True)
            self._watchdog.start()

    def close(self) -> None:
        """Stop the watchdog (the gateway is stopping)."""
        self._closed.set()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=WATCHDOG_MAX_PERIOD_S + 1)

    def request(self, pairs: list[Pair], *, rerun: bool = False, force: bool = False) -> list[pb.Evaluation]:
        """Make each pair pending (or failed when it cannot run) and queue the runnable ones; with ``rerun``
        every shard is inferred again. A pair already under way (:func:`is_live`) is left as it is (and
        returned with the queued ones) unless ``force`` (the watchdog: it knows its run is lost)."""
        runnable: list[Pair] = []
        live: list[Pair] = []
        models: dict[tuple[str, str], pb.Model] = {}
        testsets: dict[str, pb.TestSet] = {}
        states = {} if force else self.evaluations.states(pairs)
        now = db_now()
        for pair in pairs:  # each model and test set read once, however many pairs share it
            with self._lock:
                handing_off = pair in self._handing_off
            if not force and is_live(states.get(pair), now, self.stale, handing_off):
                live.append(pair)
                continue
            if (pair.model, pair.version) not in models:
                models[pair.model, pair.version] = self.catalog.get_model(pair.model, pair.version)[0]
            if pair.testset not in testsets:
                testsets[pair.testset] = self.catalog.get_testset(pair.testset)
            model, testset = models[pair.model, pair.version], testsets[pair.testset]
            reason = incompatibility(model, testset)
            self.evaluations.ensure_pending(pair, shards_total=len(testset.spec.shards),
                                            samples_total=testset.spec.num_samples, error=reason, rerun=rerun)
            if not reason:
                runnable.append(pair)
        if self.settings.auto_evaluate:
            # One flow run per model version: it is deployed once and evaluated on each test set.
            by_model: dict[tuple[str, str], list[str]] = {}
            for pair in runnable:
                by_model.setdefault((pair.model, pair.version), []).append(pair.testset)
            with self._lock:
                self._handing_off.update(runnable)
            for (name, version), names in by_model.items():
                self._enqueue((name, version, names))
        return [self.evaluations.get(pb.EvaluationKey(model=p.model, version=p.version, testset=p.testset))
                for p in runnable + live]

    def for_model(self, name: str, version: str) -> list[pb.Evaluation]:
        """Every pair of a new model; with ``triton_preload`` it starts loading into Triton meanwhile."""
        evaluations = self.request([Pair(name, version, t.spec.name) for t in self.catalog.list_testsets()])
        if evaluations and self.settings.auto_evaluate and self.settings.triton_preload \
                and self.submit is _prefect_submit:
            self._preload(name, version)
        return evaluations

    def for_testset(self, name: str) -> list[pb.Evaluation]:
        return self.request([Pair(m.metadata.name, m.metadata.version, name) for m in self.catalog.list_models()])

    def cancel_runs(self, flow_run_ids: Sequence[str], message: str) -> None:
        """Cancel these flow runs in Prefect (on the hand-off thread: the caller does not wait on Prefect).
        Nothing is sent when the gateway hands out no work (``auto_evaluate`` off)."""
        if not self.settings.auto_evaluate:
            return
        for flow_run_id in flow_run_ids:
            self._enqueue(_Mark("cancel", flow_run_id, message))

    def _enqueue(self, work: tuple[str, str, list[str]] | _Mark) -> None:
        self._ensure_thread()
        self._queue.put(work)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="evaluation-handoff", daemon=True)
            self._thread.start()

    def _preload(self, name: str, version: str) -> None:
        """Queue a Triton load of a new model: the hand-off to the worker and the run's start (seconds)
        then overlap the load instead of preceding it. A burst of submissions preloads no more models
        than Triton keeps loaded (the rest load when their evaluations run)."""
        if self._preloads.qsize() >= max(1, self.settings.triton_max_loaded_models - 1):
            return
        model, key = self.catalog.get_model(name, version)
        model.artifact_uri = f"s3://{self.settings.s3_bucket}/{key}"
        if self._preloader is None or not self._preloader.is_alive():
            self._preloader = threading.Thread(target=self._run_preloads, name="triton-preload", daemon=True)
            self._preloader.start()
        self._preloads.put(model)

    def _run_preloads(self) -> None:
        from shiftboard.adapters.triton.deployer import ModelDeployer

        deployer = ModelDeployer(self.settings)
        while True:
            model = self._preloads.get()
            md = model.metadata
            try:
                deployer.preload(model)
            except Exception as exc:  # noqa: BLE001 - the evaluation deploys it again and reports the error
                log.warning("could not preload %s:%s into Triton (its evaluation will load it): %s", md.name,
                            md.version, getattr(exc, "message", None) or exc)

    def _run(self) -> None:
        if self.submit is _prefect_submit:
            prefect.preload()  # importing Prefect takes seconds: pay it once, before the first hand-off
        while True:
            work = self._queue.get()
            if isinstance(work, _Mark):
                self._mark(work)
                continue
            model, version, testsets = work
            pairs = [Pair(model, version, testset) for testset in testsets]
            try:
                try:
                    flow_run_id = self.submit(self.settings, model, version, testsets)
                except Exception as exc:  # noqa: BLE001 - Prefect down: stays pending for the watchdog
                    log.warning("could not hand %s:%s on %s to the evaluation worker (%s); they stay pending",
                                model, version, ", ".join(testsets), exc)
                    continue
                for pair in pairs:
                    self.evaluations.set_flow_run(pair, flow_run_id)
            finally:
                with self._lock:
                    self._handing_off.difference_update(pairs)
            log.info("evaluations of %s:%s on %s handed to flow run %s", model, version, ", ".join(testsets),
                     flow_run_id)

    def _mark(self, mark: _Mark) -> None:
        action = self.crash if mark.kind == "crash" else self.cancel
        try:
            action(self.settings, mark.flow_run_id, mark.message)
        except Exception as exc:  # noqa: BLE001 - a crash mark: its pairs are handed out again all the same;
            # a cancel: the run's next commit is refused (NOT_FOUND) and it stops there
            log.warning("could not mark flow run %s %s in Prefect: %s", mark.flow_run_id,
                        "crashed" if mark.kind == "crash" else "cancelled", exc)

    # ---------------------------------------------------------------- watchdog

    def _watch(self) -> None:
        period = min(WATCHDOG_MAX_PERIOD_S, self.settings.eval_stale_s / 3)
        while not self._closed.wait(period):
            if time.monotonic() - self._started < self.settings.eval_stale_s:
                continue  # heartbeats sent while this gateway was not up went unseen
            try:
                self.requeue_lost()
            except Exception:  # noqa: BLE001 - the catalog closing, a model deleted meanwhile: look again later
                if self._closed.is_set():
                    return
                log.exception("the evaluation watchdog failed; it looks again in %.0f s", period)

    def requeue_lost(self) -> list[Pair]:
        """Hand out again the pairs of flow runs that went quiet and the pending pairs whose hand-off was
        lost; the quiet flow runs are marked crashed in Prefect. Returns the pairs handed out."""
        cutoff = db_now() - self.stale
        lost = self.evaluations.lost_runs(cutoff)
        with self._lock:
            unhanded = [p for p in self.evaluations.unhanded(cutoff) if p not in self._handing_off]
        pairs = [p for run in lost.values() for p in run]
        pairs += [p for p in unhanded if p not in pairs]
        if not pairs:
            return []
        for flow_run_id, run in lost.items():
            log.warning("flow run %s sent no heartbeat for %.0f s (its worker died?): handing out %s again",
                        flow_run_id, self.settings.eval_stale_s,
                        ", ".join(f"{p.model}:{p.version} on {p.testset}" for p in run))
        if unhanded:
            log.warning("handing out again %d pending evaluation(s) whose hand-off was lost", len(unhanded))
        alive = [p for p in pairs if self._exists(p)]
        self.request(alive, force=True)
        for flow_run_id in lost:
            self._enqueue(_Mark("crash", flow_run_id, f"shiftboard: no heartbeat for {self.settings.eval_stale_s:.0f} "
                                                      "s; its evaluations were handed to a new flow run"))
        return alive

    def _exists(self, pair: Pair) -> bool:
        """Whether the pair's model and test set are still registered (one may be deleted meanwhile)."""
        return bool(self.catalog.query(
            "SELECT 1 FROM models m, testsets t WHERE m.name = ? AND m.version = ? AND t.name = ?",
            [pair.model, pair.version, pair.testset]))
