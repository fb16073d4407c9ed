"""Triggers: turn "this model / this test set / every missing pair" into pending evaluations and
hand each to the Prefect deployment ``evaluate``.

Hand-off happens on a background thread so that SubmitModel and RegisterTestSet return at once. If
Prefect cannot be reached the evaluation simply stays pending, and the scheduled sweep (which calls
RequestEvaluations with no pairs) hands it out again later. A pair that can never run (input shapes
or label spaces differ) is recorded as failed with the reason instead.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from shiftboard.adapters import prefect
from shiftboard.adapters.duckdb.catalog import Catalog
from shiftboard.adapters.duckdb.evaluations import Evaluations, Pair
from shiftboard.domain import compatibility
from shiftboard.domain.compatibility import ModelShape, TestSetShape
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb

log = logging.getLogger(__name__)

#: (settings, model, version, test sets) -> flow-run id
Submit = Callable[[Settings, str, str, list[str]], str]


def _prefect_submit(settings: Settings, model: str, version: str, testsets: list[str]) -> str:
    return prefect.submit_evaluations(settings, model, version, testsets)


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
                 submit: Submit | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.evaluations = evaluations
        self.submit = submit or _prefect_submit
        self._queue: queue.Queue[tuple[str, str, list[str]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._preloads: queue.Queue[pb.Model] = queue.Queue()
        self._preloader: threading.Thread | None = None
        if settings.auto_evaluate and self.submit is _prefect_submit:
            self._ensure_thread()  # it imports Prefect now, not when the first model arrives

    def request(self, pairs: list[Pair]) -> list[pb.Evaluation]:
        """Make each pair pending (or failed when it cannot run) and queue the runnable ones."""
        runnable: list[Pair] = []
        models: dict[tuple[str, str], pb.Model] = {}
        testsets: dict[str, pb.TestSet] = {}
        for pair in pairs:  # each model and test set read once, however many pairs share it
            if (pair.model, pair.version) not in models:
                models[pair.model, pair.version] = self.catalog.get_model(pair.model, pair.version)[0]
            if pair.testset not in testsets:
                testsets[pair.testset] = self.catalog.get_testset(pair.testset)
            model, testset = models[pair.model, pair.version], testsets[pair.testset]
            reason = incompatibility(model, testset)
            self.evaluations.ensure_pending(pair, shards_total=len(testset.spec.shards),
                                            samples_total=testset.spec.num_samples, error=reason)
            if not reason:
                runnable.append(pair)
        if self.settings.auto_evaluate:
            # One flow run per model version: it is deployed once and evaluated on each test set.
            by_model: dict[tuple[str, str], list[str]] = {}
            for pair in runnable:
                by_model.setdefault((pair.model, pair.version), []).append(pair.testset)
            for (name, version), names in by_model.items():
                self._enqueue((name, version, names))
        return [self.evaluations.get(pb.EvaluationKey(model=p.model, version=p.version, testset=p.testset))
                for p in runnable]

    def for_model(self, name: str, version: str) -> list[pb.Evaluation]:
        """Every pair of a new model; with ``triton_preload`` it starts loading into Triton meanwhile."""
        evaluations = self.request([Pair(name, version, t.spec.name) for t in self.catalog.list_testsets()])
        if evaluations and self.settings.auto_evaluate and self.settings.triton_preload \
                and self.submit is _prefect_submit:
            self._preload(name, version)
        return evaluations

    def for_testset(self, name: str) -> list[pb.Evaluation]:
        return self.request([Pair(m.metadata.name, m.metadata.version, name) for m in self.catalog.list_models()])

    def _enqueue(self, work: tuple[str, str, list[str]]) -> None:
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
            model, version, testsets = self._queue.get()
            try:
                flow_run_id = self.submit(self.settings, model, version, testsets)
            except Exception as exc:  # noqa: BLE001 - Prefect down: stays pending for the sweep
                log.warning("could not hand %s:%s on %s to the evaluation worker (%s); they stay pending",
                            model, version, ", ".join(testsets), exc)
                continue
            for testset in testsets:
                self.evaluations.set_flow_run(Pair(model, version, testset), flow_run_id)
            log.info("evaluations of %s:%s on %s handed to flow run %s", model, version, ", ".join(testsets),
                     flow_run_id)
