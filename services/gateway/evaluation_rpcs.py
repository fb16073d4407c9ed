"""The evaluation RPCs of the gateway: progress, triggers, the worker's commits, and results.

Only evaluator and admin tokens start, commit and finish evaluations; what is correct is decided
here from the test set's stored labels, never from the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import grpc
import numpy as np

from shiftboard import testsets
from shiftboard.adapters.duckdb.evaluations import Pair, label_bytes, labels_of
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from shiftboard.domain.names import validate_name
from shiftboard.domain.scoring import ClassMap, Restriction, subset_index
from shiftboard.services.gateway.limits import MAX_KEYS_PER_REQUEST
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab
from shiftboard.wire.commits import Assembler

if TYPE_CHECKING:
    from shiftboard.adapters.duckdb.catalog import Catalog
    from shiftboard.adapters.duckdb.evaluations import Evaluations
    from shiftboard.adapters.s3 import ObjectStore
    from shiftboard.services.gateway.scheduler import Scheduler

log = logging.getLogger(__name__)

#: The label of every sample of a test set registered without labels (no class index equals it).
UNKNOWN_LABEL = -1

WATCH_POLL_S = 1.0


def _validated_key(key: pb.EvaluationKey) -> pb.EvaluationKey:
    validate_name(key.model, "model name")
    validate_name(key.version, "model version")
    validate_name(key.testset, "test set name")
    return key


class EvaluationRpcs:
    """The evaluation RPCs over the catalog, the evaluations, the scheduler and the object store."""

    def __init__(self, catalog: Catalog, evaluations: Evaluations, scheduler: Scheduler, store: ObjectStore) -> None:
        self.catalog = catalog
        self.evaluations = evaluations
        self.scheduler = scheduler
        self.store = store

    def ListEvaluations(self, request: pb.ListEvaluationsRequest,
                        context: grpc.ServicerContext) -> pb.ListEvaluationsResponse:
        """Every evaluation, optionally filtered by model, test set or status."""
        return pb.ListEvaluationsResponse(evaluations=self._list(request))

    def _list(self, request: pb.ListEvaluationsRequest) -> list[pb.Evaluation]:
        status = vocab.word_or_empty(vocab.STATUSES, request.status)
        return self.evaluations.list(model=request.model, testset=request.testset, status=status)

    def WatchEvaluations(self, request: pb.ListEvaluationsRequest,
                         context: grpc.ServicerContext) -> Iterator[pb.Evaluation]:
        """The current evaluations, then each one again whenever it changes."""
        seen: dict[tuple[str, str, str], bytes] = {}
        generation = -1
        while context.is_active():
            with self.evaluations.changed:
                if generation == self.evaluations.generation:
                    self.evaluations.changed.wait(WATCH_POLL_S)
                generation = self.evaluations.generation
            for evaluation in self._list(request):
                k = (evaluation.key.model, evaluation.key.version, evaluation.key.testset)
                blob = evaluation.SerializeToString(deterministic=True)
                if seen.get(k) != blob:
                    seen[k] = blob
                    yield evaluation

    def RequestEvaluations(self, request: pb.RequestEvaluationsRequest,
                           context: grpc.ServicerContext) -> pb.RequestEvaluationsResponse:
        """Queue the given pairs (a key without a version: the model's newest), or every missing, failed or
        stuck pair when none is given; ``rerun`` infers every shard again. A pair already under way is left
        as it is (and returned with the queued ones).

        Any role may: submitters ask for their pairs, the worker's sweep (an evaluator) for the missing ones.
        """
        if len(request.keys) > MAX_KEYS_PER_REQUEST:
            raise ResourceExhausted(f"{len(request.keys)} pairs in one request; at most {MAX_KEYS_PER_REQUEST}: "
                                    "split the request, or send none to queue every missing pair")
        if request.keys:
            pairs = []
            for given in request.keys:
                key = pb.EvaluationKey()
                key.CopyFrom(given)
                validate_name(key.model, "model name")
                if not key.version:
                    key.version = self.catalog.get_model(key.model)[0].metadata.version
                _validated_key(key)
                self.catalog.get_testset(key.testset)  # NOT_FOUND naming the test set
                pairs.append(Pair(key.model, key.version, key.testset))
        else:
            pairs = self.evaluations.missing_pairs(stale=self.scheduler.stale, rerun=request.rerun)
        return pb.RequestEvaluationsResponse(evaluations=self.scheduler.request(pairs, rerun=request.rerun))

    def StartEvaluation(self, request: pb.StartEvaluationRequest, context: grpc.ServicerContext) -> pb.EvaluationPlan:
        """Mark the pair running and tell the worker what to do."""
        key = _validated_key(request.key)
        model, artifact_key = self.catalog.get_model(key.model, key.version)
        model.artifact_uri = self.store.uri_prefix + artifact_key
        testset = self.catalog.get_testset(key.testset)
        restrictions = self._restriction_messages(testset.spec)
        evaluation, pending = self.evaluations.start(
            key, request.flow_run_id, shards_total=len(testset.spec.shards),
            samples_total=testset.spec.num_samples, restricted=[r.shift for r in restrictions])
        return pb.EvaluationPlan(evaluation=evaluation, model=model, testset=testset, pending_shards=pending,
                                 restrictions=restrictions)

    def _restriction_messages(self, spec: pb.TestSetSpec) -> list[pb.Restriction]:
        """The registered shifts of a reference that score a class sub-list or a class map."""
        if spec.kind != pb.TEST_SET_KIND_REFERENCE:
            return []
        return [pb.Restriction(shift=name, class_subset=subset, class_map=[pb.ClassGroup(outputs=g) for g in groups])
                for name, subset, groups in self.catalog.restricted_shifts(spec.name)]

    def _restrictions(self, spec: pb.TestSetSpec) -> dict[str, Restriction]:
        out: dict[str, Restriction] = {}
        for r in self._restriction_messages(spec):
            if r.class_map:
                out[r.shift] = ClassMap.from_groups([list(g.outputs) for g in r.class_map], spec.num_classes)
            else:
                index = subset_index(list(r.class_subset), spec.num_classes)
                assert index is not None  # restricted_shifts lists only non-empty sub-lists
                out[r.shift] = index
        return out

    def CommitShard(self, request: pb.CommitShardRequest, context: grpc.ServicerContext) -> pb.Evaluation:
        """Replace one shard's predictions atomically; correctness from the test set's own labels."""
        key = _validated_key(request.key)
        testset = self.catalog.get_testset(key.testset)
        if request.shard_index >= len(testset.spec.shards):
            raise InvalidArgument(f"test set {key.testset} has {len(testset.spec.shards)} shards, "
                                  f"not a shard {request.shard_index}")
        model, _ = self.catalog.get_model(key.model, key.version)
        shard = testset.spec.shards[request.shard_index]
        # A class-map set's predictions are in its own label space; every other set's in the model's.
        num_classes = len(testset.spec.class_map) or model.metadata.num_classes
        restrictions = self._restrictions(testset.spec) if request.restricted else {}
        return self.evaluations.commit_shard(key, shard, request.predictions, request.seconds,
                                             num_classes, self._labels(testset.spec.name, shard),
                                             list(testset.spec.class_subset), list(request.restricted),
                                             restrictions)

    def CommitShards(self, request_iterator: Iterator[pb.CommitShardsRequest],
                     context: grpc.ServicerContext) -> pb.Evaluation:
        """Receive parts of shards (packed bytes) until the stream ends, then commit every shard in one
        transaction; checks and errors are CommitShard's (any error: nothing stored). A stream of the key
        alone is the run's heartbeat: it tells the gateway that the run is alive, and stores nothing."""
        key: pb.EvaluationKey | None = None
        assembler: Assembler | None = None
        spec = model = None
        for message in request_iterator:
            if message.HasField("key"):
                if key is None:
                    key = _validated_key(message.key)
                    spec, firsts, counts = self._manifest(key.testset)
                    model, _ = self.catalog.get_model(key.model, key.version)
                    assembler = Assembler(firsts, counts, key.testset)
                elif message.key != key:
                    raise InvalidArgument("a CommitShards stream commits one evaluation: send its key once, "
                                          "in the first message")
            if assembler is None:
                raise InvalidArgument("the first CommitShards message must carry the evaluation's key")
            for part in message.parts:
                assembler.add(part)
        if key is None or assembler is None or spec is None or model is None:
            raise InvalidArgument("an empty CommitShards stream: send the key, then the shards' parts")
        received = assembler.shards()
        if not received:
            return self.evaluations.heartbeat(key)
        manifest = [pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.samples) for s in received]
        num_classes = len(spec.class_map) or model.metadata.num_classes
        restrictions = self._restrictions(spec) if any(sent.restricted for sent in received) else {}
        return self.evaluations.commit_shards(key, list(zip(manifest, received, strict=True)), num_classes,
                                              self._labels_of(spec.name, manifest), list(spec.class_subset),
                                              restrictions)

    def _manifest(self, testset: str) -> tuple[pb.TestSetSpec, Sequence[int], Sequence[int]]:
        """A test set's spec without its shards, and each shard's first sample and sample count by index
        (a stream of small shards needs no message per shard of the set)."""
        rows = self.catalog.query("SELECT kind, num_classes, class_subset, class_map FROM testsets WHERE name = ?",
                                  [testset])
        if not rows:
            self.catalog.get_testset(testset)  # raises NOT_FOUND with the usual message
        kind, num_classes, subset, class_map = rows[0]
        spec = pb.TestSetSpec(name=testset, kind=vocab.kind_value(kind), num_classes=num_classes,
                              class_subset=subset, class_map=[pb.ClassGroup(outputs=g) for g in class_map or []])
        with self.catalog.transaction() as cur:
            shards = cur.execute("SELECT first_sample, num_samples FROM shards WHERE testset = ? ORDER BY idx",
                                 [testset]).fetchnumpy()
        return spec, shards["first_sample"].tolist(), shards["num_samples"].tolist()

    def _labels_of(self, testset: str, shards: list[pb.Shard]) -> dict[int, np.ndarray]:
        """The stored labels of ``shards`` (one query; see :meth:`_labels` for sets stored without them). A set
        registered without labels gets :data:`UNKNOWN_LABEL` for every sample: no top-1 equals it, and its
        correctness bits (all 0) are never read as accuracy (every reader leaves unlabelled sets out)."""
        if self.catalog.is_unlabelled(testset):
            return {s.index: np.full(int(s.num_samples), UNKNOWN_LABEL, dtype=np.int32) for s in shards}
        rows = self.catalog.query("SELECT idx, labels FROM shard_labels WHERE testset = ? AND list_contains(?, idx)",
                                  [testset, [s.index for s in shards]])
        out = {int(i): labels_of(bytes(data)) for i, data in rows}
        missing = [s.index for s in shards if s.index not in out]
        if missing:
            full = self.catalog.get_testset(testset).spec.shards
            for index in missing:
                out[index] = self._labels(testset, full[index])
        return out

    def _labels(self, testset: str, shard: pb.Shard) -> np.ndarray:
        """A shard's stored labels; for a set registered before labels were stored, read (and checked
        against the manifest's sha256) from the shard once, then stored; :data:`UNKNOWN_LABEL` for an unlabelled set."""
        if self.catalog.is_unlabelled(testset):
            return np.full(int(shard.num_samples), UNKNOWN_LABEL, dtype=np.int32)
        data = self.catalog.shard_labels(testset, shard.index)
        if data is None:
            raw = self.store.get_bytes(shard.key)
            if shard.sha256 and testsets.sha256_bytes(raw) != shard.sha256.lower():
                raise FailedPrecondition(f"shard {shard.index} of {testset} ({shard.key}) no longer matches its "
                                         "sha256: the stored object was altered; register the test set again")
            data = label_bytes(testsets.read_shard(raw)[1])
            self.catalog.put_shard_labels(testset, shard.index, data)
            log.info("stored the labels of shard %d of %s (registered before labels were kept)", shard.index,
                     testset)
        return labels_of(data)

    def FinishEvaluation(self, request: pb.FinishEvaluationRequest, context: grpc.ServicerContext) -> pb.Evaluation:
        """Mark succeeded (every shard committed) or failed with the message to show."""
        return self.evaluations.finish(_validated_key(request.key), failed=request.failed, error=request.error)

    def GetPredictions(self, request: pb.EvaluationKey, context: grpc.ServicerContext) -> Iterator[pb.Predictions]:
        """Stored predictions in sample order."""
        key = pb.EvaluationKey()
        key.CopyFrom(request)
        measured = bool(self.catalog.query("SELECT 1 FROM models WHERE name = ? AND (? = '' OR version = ?)",
                                           [key.model, key.version, key.version]))
        if not measured and self.catalog.imported_model(key.model):
            raise FailedPrecondition(f"{key.model} is an imported result: per-sample predictions are not "
                                     "available for imported results (accuracy only)")
        if not key.version:
            key.version = self.catalog.get_model(key.model)[0].metadata.version
        yield from self.evaluations.predictions(_validated_key(key))

    def GetAccuracy(self, request: pb.GetAccuracyRequest, context: grpc.ServicerContext) -> pb.GetAccuracyResponse:
        """Top-1 accuracy with Clopper-Pearson intervals for each succeeded evaluation (none on a set registered
        without labels; asked for one by name, FAILED_PRECONDITION saying where its estimate is)."""
        if request.testset and self.catalog.is_unlabelled(request.testset):
            raise FailedPrecondition(f"test set {request.testset} was registered without labels: its accuracy is "
                                     f"not measured; `shiftboard leaderboard --shift {request.testset}` shows the "
                                     "estimate (agreement on the line)")
        return pb.GetAccuracyResponse(accuracies=self.evaluations.accuracies(model=request.model,
                                                                            testset=request.testset))
