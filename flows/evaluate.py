"""The Prefect flow ``evaluate(model, version, testsets)``: one model on its test sets, end to end.

    evaluate-pair (one task per test set):
      start_evaluation  (gateway: mark running, get the model, the test set and the pending shards)
      deploy to Triton (lease), then per pending shard: infer; per batch of shards: commit_shards
      finish_evaluation (gateway: succeeded; or failed with the error the user will see)

Shards are committed in batches (by samples and by time), each batch all or nothing, so a run that
dies resumes at the first missing shard (the gateway's plan lists only uncommitted ones) and a
re-sent shard replaces its rows. Each step is a
pair's task retries **only transient failures** (:class:`~shiftboard.domain.errors.Unavailable`: the gateway,
Triton or the object store unreachable, or the model gone from Triton), via ``retry_condition_fn``;
a retried pair deploys again and skips the shards this run already committed. A
permanent failure (the model does not load, crashes, returns the wrong shape or NaN; a shard does
not match its manifest) is recorded with ``finish_evaluation(failed=True, error=...)`` and the flow
run ends failed. So are transient failures that outlast the retries; the sweep hands the pair out
again later.

Every inference request has a deadline, :func:`request_deadline_s`: ``max(settings.eval_deadline_min_s,
settings.eval_deadline_factor x the probe's seconds per image x the batch size)``. A model that misses it
(it hangs, or is far slower on the test set's images than in the submission probe) fails permanently
(:class:`~shiftboard.adapters.triton.client.ModelDeadlineExceeded`, never retried) with a message
naming the deadline, and its Triton instance is killed and unloaded
(:meth:`~shiftboard.adapters.triton.deployer.ModelDeployer.stop_hung`) so Triton keeps serving the others.

While a pair is evaluated (retries and their pauses included), a thread of the flow run sends the
gateway a heartbeat every ``settings.eval_heartbeat_s`` (:class:`Heartbeat`), however long one inference
batch takes: a run whose process dies goes quiet, and the gateway hands its pairs out again after
``settings.eval_stale_s`` (see :mod:`shiftboard.services.gateway.scheduler`).

With ``settings.store_logits`` every shard's full logits also go to the object store as Parquet,
``logits/<model>/<version>/<testset>/shard-NNNNNN.parquet`` (columns ``sample``, ``label``,
``logits``), written before the shard is committed.

A pair deleted while its run is under way (its model or test set deleted; the gateway cancels the flow run
when it has nothing else to do) makes every gateway call of the run answer NOT_FOUND: the pair ends there,
logged in one line, without a failure or a traceback (:func:`pair_deleted`), and the run goes on with its
other test sets.

The core, :func:`run_evaluation`, is plain Python (no Prefect); the flow adds retries and the UI.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import Task

from shiftboard.adapters.s3 import ObjectStore
from shiftboard.adapters.triton.client import ModelDeadlineExceeded
from shiftboard.adapters.triton.deployer import Lease, ModelDeployer
from shiftboard.client import Client
from shiftboard.domain.compatibility import ModelShape, TestSetShape, incompatibility
from shiftboard.domain.errors import InvalidArgument, NotFound, ShiftboardError, Unavailable
from shiftboard.domain.scoring import ClassMap, Restriction, subset_index
from shiftboard.domain.shards import shard_file_name
from shiftboard.flows.inference import InferencePipeline, ShardResult
from shiftboard.sandbox import redact, secret_values
from shiftboard.settings import Settings, env_name
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire.commits import COMMIT_SAMPLES

log = logging.getLogger(__name__)

__all__ = ["Heartbeat", "RunProgress", "evaluate", "is_transient", "logits_key", "pair_deleted",
           "request_deadline_s", "run_evaluation"]

#: Seconds between lease renewals while a long evaluation runs.
LEASE_RENEW_S = 300.0
#: A batch of shard results is committed once this many seconds have passed since its first result
#: (or once it holds :data:`~shiftboard.wire.commits.COMMIT_SAMPLES` samples).
COMMIT_SECONDS = 1.0
_RETRY_DELAYS_S = [2, 5, 15, 30]


def is_transient(exc: BaseException) -> bool:
    """Whether a failure may go away on retry (a server down or restarting), not a broken model (a model
    past its request deadline is broken: :class:`ModelDeadlineExceeded` is no ``Unavailable``)."""
    return isinstance(exc, Unavailable)


def request_deadline_s(settings: Settings, model: pb.Model, batch_size: int) -> float:
    """Seconds one inference request of ``batch_size`` images of ``model`` may take (see the module doc)."""
    return max(settings.eval_deadline_min_s,
               settings.eval_deadline_factor * model.probe_seconds_per_sample * batch_size)


def _deadline_rule(settings: Settings, model: pb.Model, batch_size: int) -> str:
    return (f"max({env_name('eval_deadline_min_s')}={settings.eval_deadline_min_s:g} s, "
            f"{env_name('eval_deadline_factor')}={settings.eval_deadline_factor:g} x the probe's "
            f"{model.probe_seconds_per_sample:.3g} s per image x {batch_size} images)")


def _retry_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """``retry_condition_fn``: retry a failed task only when it failed transiently."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - we only classify it
        return is_transient(exc)
    return False


#: Task options: retry transient failures only (see :func:`is_transient`), never cache.
TRANSIENT_RETRIES: dict[str, Any] = {"retries": len(_RETRY_DELAYS_S), "retry_delay_seconds": _RETRY_DELAYS_S,
                             "retry_condition_fn": _retry_transient, "cache_policy": NO_CACHE}


@dataclass
class RunProgress:
    """What this flow run has committed so far; survives task retries within the run."""

    committed: set[int] = field(default_factory=set)
    samples: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        rate = self.samples / self.seconds if self.seconds > 0 else 0.0
        return {"shards": len(self.committed), "samples": self.samples, "seconds": round(self.seconds, 3),
                "samples_per_second": round(rate, 1)}


def logits_key(key: pb.EvaluationKey, shard_index: int) -> str:
    """Object key of one shard's logits (Parquet)."""
    name = shard_file_name(shard_index).rsplit(".", 1)[0]
    return f"logits/{key.model}/{key.version}/{key.testset}/{name}.parquet"


def _logits_parquet(result: ShardResult) -> bytes:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert result.logits is not None and result.labels is not None
    logits = np.ascontiguousarray(result.logits, dtype=np.float32)
    table = pa.table({
        "sample": pa.array(np.arange(result.arrays.first_sample, result.arrays.first_sample + len(logits),
                                     dtype=np.uint64)),
        "label": pa.array(np.asarray(result.labels, dtype=np.int32)),
        "logits": pa.FixedSizeListArray.from_arrays(pa.array(logits.ravel()), logits.shape[1]),
    })
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def check_plan(plan: pb.EvaluationPlan) -> None:
    """Refuse a pair that can never run (shapes or label spaces differ) with a message for the user
    (:func:`shiftboard.domain.compatibility.incompatibility`, the rule the gateway applies too)."""
    md, spec = plan.model.metadata, plan.testset.spec
    reason = incompatibility(
        ModelShape(f"{md.name}:{md.version}", (md.input.channels, md.input.height, md.input.width), md.num_classes),
        TestSetShape(spec.name, (spec.channels, spec.height, spec.width), spec.num_classes,
                     class_subset=tuple(spec.class_subset), class_map=tuple(tuple(g.outputs) for g in spec.class_map)))
    if reason:
        raise InvalidArgument(reason)


def plan_scoring(plan: pb.EvaluationPlan) -> tuple[ClassMap | None, list[tuple[str, Restriction]]]:
    """The test set's class map (None without one) and the plan's restrictions, in the model's outputs.

    A restriction whose classes the model does not have is left out (the gateway falls back for it).
    """
    md, spec = plan.model.metadata, plan.testset.spec
    class_map = ClassMap.from_groups([list(g.outputs) for g in spec.class_map], md.num_classes) \
        if spec.class_map else None
    restrictions: list[tuple[str, Restriction]] = []
    for r in plan.restrictions:
        try:
            if r.class_map:
                restrictions.append((r.shift, ClassMap.from_groups([list(g.outputs) for g in r.class_map],
                                                                   md.num_classes)))
            elif (index := subset_index(list(r.class_subset), md.num_classes)) is not None:
                restrictions.append((r.shift, index))
        except ValueError as exc:
            log.warning("not scoring %s on the class sub-list of %s: %s", spec.name, r.shift, exc)
    return class_map, restrictions


def run_evaluation(settings: Settings, client: Client, plan: pb.EvaluationPlan, progress: RunProgress, *,
                   store: ObjectStore | None = None, deployer: ModelDeployer | None = None,
                   on_shard: Callable[[pb.Evaluation], None] | None = None) -> RunProgress:
    """Deploy the plan's model, then infer and commit every pending shard not yet in ``progress``.

    Results are committed in batches, each one CommitShards stream (all its shards or none): when a
    batch holds :data:`COMMIT_SAMPLES` samples (a shard that would take it past them starts the next
    batch, unless it is the first: a larger shard is committed alone), when :data:`COMMIT_SECONDS` have
    passed since its first result (or would have before the next one), and at the end. A run that dies loses at most its
    uncommitted batch and resumes there. ``on_shard`` is called with the evaluation after each shard's
    commit; with it, shards are committed one at a time (a batch of one) so it sees every shard.
    """
    check_plan(plan)
    key = plan.evaluation.key
    pending = set(plan.pending_shards) - progress.committed
    shards = [s for s in plan.testset.spec.shards if s.index in pending]
    if not shards:
        return progress
    store = store or ObjectStore.from_settings(settings)
    deployer = deployer or ModelDeployer(settings, store=store)
    md, spec = plan.model.metadata, plan.testset.spec
    class_map, restrictions = plan_scoring(plan)
    with deployer.acquire(plan.model) as lease:
        batch_size = min(settings.eval_batch_size, lease.max_batch_size)
        pipeline = InferencePipeline(
            settings.triton_target, lease.model_name, num_classes=md.num_classes,
            chw=(spec.channels, spec.height, spec.width), class_subset=list(spec.class_subset) or None,
            batch_size=batch_size, in_flight=settings.eval_in_flight,
            keep_logits=settings.store_logits, label=f"{md.name}:{md.version}", auth=deployer.auth,
            class_map=class_map, restrictions=restrictions,
            request_timeout_s=request_deadline_s(settings, plan.model, batch_size))
        log.info("evaluating %s:%s on %s: %d shard(s) to do (request deadline %.0f s)", md.name, md.version,
                 spec.name, len(shards), pipeline.request_timeout_s)
        try:
            _infer_and_commit(client, key, pipeline, shards, store, progress, on_shard, lease)
        except ModelDeadlineExceeded as exc:
            done = deployer.stop_hung(lease.model_name)
            raise ModelDeadlineExceeded(
                f"{exc.message}, the deadline {_deadline_rule(settings, plan.model, batch_size)}: the model hangs "
                f"or is far slower on these images than in the submission probe; it failed permanently and "
                f"{done}") from exc
    return progress


def _infer_and_commit(client: Client, key: pb.EvaluationKey, pipeline: InferencePipeline, shards: list[pb.Shard],
                      store: ObjectStore, progress: RunProgress, on_shard: Callable[[pb.Evaluation], None] | None,
                      lease: Lease) -> None:
    """Run ``shards`` through ``pipeline`` and commit their results in batches (see :func:`run_evaluation`)."""
    renewed = time.monotonic()
    batch: list[ShardResult] = []
    held, first_at = 0, 0.0
    for result in pipeline.run(shards, lambda shard: store.get_bytes(shard.key)):
        if result.logits is not None:  # before the shard is committed: a committed shard has its logits
            store.put_bytes(logits_key(key, result.shard.index), _logits_parquet(result))
        samples = result.arrays.samples
        if batch and held + samples > COMMIT_SAMPLES:  # a batch stays within one row group
            _commit(client, key, batch, progress, on_shard)
            batch, held = [], 0
        if not batch:
            first_at = time.monotonic()
        batch.append(result)
        held += samples
        # the next shard should take as long as this one: commit now rather than past the time bound
        if on_shard is not None or held >= COMMIT_SAMPLES \
                or time.monotonic() - first_at + result.seconds >= COMMIT_SECONDS:
            _commit(client, key, batch, progress, on_shard)
            batch, held = [], 0
        if time.monotonic() - renewed > LEASE_RENEW_S:
            lease.renew()
            renewed = time.monotonic()
    _commit(client, key, batch, progress, on_shard)


def _commit(client: Client, key: pb.EvaluationKey, batch: list[ShardResult], progress: RunProgress,
            on_shard: Callable[[pb.Evaluation], None] | None) -> None:
    """Commit ``batch`` in one CommitShards stream (all or none), then record it in ``progress``."""
    if not batch:
        return
    sent = [r.arrays for r in batch]
    evaluation = client.commit_shards(key, sent)
    for shard in sent:
        progress.committed.add(shard.index)
        progress.samples += shard.samples
        progress.seconds += shard.seconds
    log.info("%d shard(s) committed (%s): %d samples in %.2f s (%d/%d shards)", len(sent),
             ", ".join(str(s.index) for s in sent[:8]) + (", ..." if len(sent) > 8 else ""),
             sum(s.samples for s in sent), sum(s.seconds for s in sent), evaluation.shards_done,
             evaluation.shards_total)
    if on_shard is not None:
        on_shard(evaluation)


class Heartbeat:
    """A context in which a thread tells the gateway every ``settings.eval_heartbeat_s`` that the run of
    ``key`` is alive (a CommitShards stream of the key alone). A failed heartbeat is logged once per
    outage and tried again at the next beat; the run itself never waits on it."""

    def __init__(self, settings: Settings, key: pb.EvaluationKey) -> None:
        self.settings = settings
        self.key = key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evaluation-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        failing = False
        with Client.from_settings(self.settings) as client:
            while not self._stop.wait(self.settings.eval_heartbeat_s):
                try:
                    client.commit_shards(self.key, [])
                except Exception as exc:  # noqa: BLE001 - the gateway down for a moment: the next beat may pass
                    if not failing:
                        log.warning("heartbeat of %s:%s on %s failed (trying again every %.0f s): %s",
                                    self.key.model, self.key.version, self.key.testset,
                                    self.settings.eval_heartbeat_s, getattr(exc, "message", None) or exc)
                    failing = True
                else:
                    failing = False


def error_message(exc: BaseException) -> str:
    """The message recorded on a failed evaluation (what ``eval list`` shows), secrets redacted."""
    message = exc.message if isinstance(exc, ShiftboardError) else f"{type(exc).__name__}: {exc}"
    return redact(message, secret_values(Settings.from_env()))


# ------------------------------------------------------------------------------ Prefect


@task(name="finish-evaluation", **TRANSIENT_RETRIES)
def finish_evaluation_task(settings: Settings, key: pb.EvaluationKey, error: str = "") -> pb.Evaluation:
    """Record the outcome: succeeded, or failed with ``error``."""
    with Client.from_settings(settings) as client:
        return client.finish_evaluation(key, failed=bool(error), error=error)


def _flow_run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    testsets = params.get("testsets") or []
    where = testsets[0] if len(testsets) == 1 else f"{len(testsets)} test sets"
    return f"{params.get('model')}:{params.get('version')} on {where}"


@task(name="evaluate-pair", **TRANSIENT_RETRIES)
def evaluate_pair_task(settings: Settings, key: pb.EvaluationKey, flow_run_id: str, progress: RunProgress,
                       store: ObjectStore, deployer: ModelDeployer) -> dict[str, Any]:
    """Start, infer and commit every pending shard, finish: one task per pair, retried when transient.

    One task rather than three keeps Prefect's per-task bookkeeping (several API calls) off the
    critical path of small test sets; a retry starts again from the gateway's plan, so committed
    shards are skipped.
    """
    with Client.from_settings(settings) as client:
        try:
            plan = client.start_evaluation(key, flow_run_id)
            try:
                summary = run_evaluation(settings, client, plan, progress, store=store,
                                         deployer=deployer).summary()
            except Exception as exc:
                if not is_transient(exc) and not (isinstance(exc, NotFound) and pair_deleted(client, key)):
                    client.finish_evaluation(key, failed=True, error=error_message(exc) or type(exc).__name__)
                raise
            client.finish_evaluation(key)
        except NotFound as exc:
            if not pair_deleted(client, key):
                raise
            log.info("%s:%s on %s was deleted meanwhile (its model or its test set): this pair stops here (%s)",
                     key.model, key.version, key.testset, exc.message)
            return {"deleted": True, **progress.summary()}
    return summary


def pair_deleted(client: Client, key: pb.EvaluationKey) -> bool:
    """Whether the pair's evaluation is gone from the gateway (its model or test set was deleted): the
    gateway then answers NOT_FOUND to every call of the run, which ends the pair without an error."""
    try:
        evaluations = client.list_evaluations(model=key.model, testset=key.testset)
    except ShiftboardError:
        return False  # cannot tell: the NOT_FOUND is reported as the failure it seems
    return not any(e.key.version == key.version for e in evaluations)


def _evaluate_one(settings: Settings, key: pb.EvaluationKey, flow_run_id: str, store: ObjectStore,
                  deployer: ModelDeployer) -> dict[str, Any]:
    try:
        summary = evaluate_pair_task(settings, key, flow_run_id, RunProgress(), store, deployer)
    except Exception as exc:
        message = error_message(exc) or type(exc).__name__
        log.error("evaluation of %s:%s on %s failed: %s", key.model, key.version, key.testset, message)
        if is_transient(exc):  # retries exhausted: record it (the sweep hands the pair out again)
            try:
                _ = finish_evaluation_task(settings, key, message)
            except Exception:  # noqa: BLE001 - the original failure is what matters
                log.exception("could not record the failure of %s:%s on %s", key.model, key.version,
                              key.testset)
        raise
    log.info("evaluation of %s:%s on %s succeeded: %s", key.model, key.version, key.testset, summary)
    return summary


@flow(name="evaluate", flow_run_name=_flow_run_name, log_prints=False, validate_parameters=True)
def evaluate(model: str, version: str, testsets: list[str]) -> dict[str, Any]:
    """Evaluate one model version on one or more test sets through Triton, one after the other.

    One run per model rather than per pair: the model is deployed once and the run's process start
    (seconds) is paid once. Each pair succeeds or fails on its own; the run fails if any pair did.
    """
    from prefect.runtime import flow_run

    # Prefect gives the shiftboard loggers its handlers (PREFECT_LOGGING_EXTRA_LOGGERS) but no level.
    logging.getLogger("shiftboard").setLevel(logging.INFO)
    settings = Settings.from_env()
    store = ObjectStore.from_settings(settings)
    deployer = ModelDeployer(settings, store=store)
    results: dict[str, Any] = {}
    failures: list[str] = []
    for testset in testsets:
        key = pb.EvaluationKey(model=model, version=version, testset=testset)
        try:
            with Heartbeat(settings, key):
                results[testset] = _evaluate_one(settings, key, str(flow_run.id or ""), store, deployer)
        except Exception as exc:  # noqa: BLE001 - recorded on the evaluation; the others go on
            failures.append(f"{testset}: {error_message(exc)}")
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(testsets)} evaluation(s) failed: " + "; ".join(failures))
    return results
