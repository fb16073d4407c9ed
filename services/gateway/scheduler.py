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

from shiftboard.services.gateway.catalog import Catalog
from shiftboard.services.gateway.evaluations import Evaluations, Pair
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb

log = logging.getLogger(__name__)

#: (settings, model, version, test sets) -> flow-run id
Submit = Callable[[Settings, str, str, list[str]], str]


def _prefect_submit(settings: Settings, model: str, version: str, testsets: list[str]) -> str:
    from shiftboard.flows.worker import submit_evaluations

    return str(submit_evaluations(settings, model, version, testsets))


def incompatibility(model: pb.Model, testset: pb.TestSet) -> str:
    """Why ``model`` cannot be evaluated on ``testset``, or "" when it can."""
    spec, md = testset.spec, model.metadata
    want = (md.input.channels, md.input.height, md.input.width)
    have = (spec.channels, spec.height, spec.width)
    if want != have:
        return (f"model {md.name}:{md.version} takes {'x'.join(map(str, want))} images but test set {spec.name} "
                f"holds {'x'.join(map(str, have))}: add the test set at the model's input size (--size, "
                "--channels) or submit a model for its size")
    if spec.class_map:  # scored through the map: the model needs every mapped output
        top = max(max(g.outputs) for g in spec.class_map)
        if top >= md.num_classes:
            return (f"model {md.name}:{md.version} has {md.num_classes} classes, but the class map of test set "
                    f"{spec.name} counts output {top}: submit a model of its reference's label space")
    elif md.num_classes != spec.num_classes:
        return (f"model {md.name}:{md.version} has {md.num_classes} classes, test set {spec.name} "
                f"{spec.num_classes}: they must share one label space")
    return ""


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
            for (model, version), testsets in by_model.items():
                self._enqueue((model, version, testsets))
        return [self.evaluations.get(pb.EvaluationKey(model=p.model, version=p.version, testset=p.testset))
                for p in runnable]

    def for_model(self, name: str, version: str) -> list[pb.Evaluation]:
        return self.request([Pair(name, version, t.spec.name) for t in self.catalog.list_testsets()])

    def for_testset(self, name: str) -> list[pb.Evaluation]:
        return self.request([Pair(m.metadata.name, m.metadata.version, name) for m in self.catalog.list_models()])

    def _enqueue(self, work: tuple[str, str, list[str]]) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="evaluation-handoff", daemon=True)
            self._thread.start()
        self._queue.put(work)

    def _run(self) -> None:
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
