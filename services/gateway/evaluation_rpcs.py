"""The evaluation RPCs of the gateway: progress, triggers, the worker's commits, and results."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import grpc

from shiftboard.errors import InvalidArgument
from shiftboard.names import validate_name
from shiftboard.services.gateway.catalog import Token
from shiftboard.services.gateway.evaluations import STATUS_OF_VALUE, Pair
from shiftboard.services.gateway.rpc import rpc, stream_rpc
from shiftboard.v1 import shiftboard_pb2 as pb

if TYPE_CHECKING:
    from shiftboard.services.gateway.catalog import Catalog
    from shiftboard.services.gateway.evaluations import Evaluations
    from shiftboard.services.gateway.scheduler import Scheduler
    from shiftboard.services.objectstore import ObjectStore

WATCH_POLL_S = 1.0


def _validated_key(key: pb.EvaluationKey) -> pb.EvaluationKey:
    validate_name(key.model, "model name")
    validate_name(key.version, "model version")
    validate_name(key.testset, "test set name")
    return key


class EvaluationRpcs:
    """Mixed into the servicer; expects ``catalog``, ``evaluations``, ``scheduler`` and ``store``."""

    catalog: Catalog
    evaluations: Evaluations
    scheduler: Scheduler
    store: ObjectStore

    @rpc(mutating=False)
    def ListEvaluations(self, request: pb.ListEvaluationsRequest, context: grpc.ServicerContext,
                        caller: Any) -> pb.ListEvaluationsResponse:
        """Every evaluation, optionally filtered by model, test set or status."""
        return pb.ListEvaluationsResponse(evaluations=self._list(request))

    def _list(self, request: pb.ListEvaluationsRequest) -> list[pb.Evaluation]:
        status = STATUS_OF_VALUE.get(request.status, "")
        return self.evaluations.list(model=request.model, testset=request.testset, status=status)

    @stream_rpc(mutating=False)
    def WatchEvaluations(self, request: pb.ListEvaluationsRequest, context: grpc.ServicerContext,
                         caller: Any) -> Iterator[pb.Evaluation]:
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

    @rpc(mutating=True)
    def RequestEvaluations(self, request: pb.RequestEvaluationsRequest, context: grpc.ServicerContext,
                           caller: Token) -> pb.RequestEvaluationsResponse:
        """Queue the given pairs, or every missing, failed or lost pair when none is given."""
        if request.keys:
            pairs = []
            for key in request.keys:
                _validated_key(key)
                version = key.version or self.catalog.get_model(key.model)[0].metadata.version
                pairs.append(Pair(key.model, version, key.testset))
        else:
            pairs = self.evaluations.missing_pairs(rerun=request.rerun)
        return pb.RequestEvaluationsResponse(evaluations=self.scheduler.request(pairs))

    @rpc(mutating=True)
    def StartEvaluation(self, request: pb.StartEvaluationRequest, context: grpc.ServicerContext,
                        caller: Token) -> pb.EvaluationPlan:
        """Mark the pair running and tell the worker what to do."""
        key = _validated_key(request.key)
        model, artifact_key = self.catalog.get_model(key.model, key.version)
        model.artifact_uri = self.store.uri_prefix + artifact_key
        testset = self.catalog.get_testset(key.testset)
        evaluation, pending = self.evaluations.start(
            key, request.flow_run_id, shards_total=len(testset.spec.shards),
            samples_total=testset.spec.num_samples)
        return pb.EvaluationPlan(evaluation=evaluation, model=model, testset=testset, pending_shards=pending)

    @rpc(mutating=True)
    def CommitShard(self, request: pb.CommitShardRequest, context: grpc.ServicerContext,
                    caller: Token) -> pb.Evaluation:
        """Replace one shard's predictions atomically."""
        key = _validated_key(request.key)
        testset = self.catalog.get_testset(key.testset)
        if request.shard_index >= len(testset.spec.shards):
            raise InvalidArgument(f"test set {key.testset} has {len(testset.spec.shards)} shards, "
                                  f"not a shard {request.shard_index}")
        model, _ = self.catalog.get_model(key.model, key.version)
        return self.evaluations.commit_shard(key, testset.spec.shards[request.shard_index], request.predictions,
                                             request.seconds, model.metadata.num_classes)

    @rpc(mutating=True)
    def FinishEvaluation(self, request: pb.FinishEvaluationRequest, context: grpc.ServicerContext,
                         caller: Token) -> pb.Evaluation:
        """Mark succeeded (every shard committed) or failed with the message to show."""
        return self.evaluations.finish(_validated_key(request.key), failed=request.failed, error=request.error)

    @stream_rpc(mutating=False)
    def GetPredictions(self, request: pb.EvaluationKey, context: grpc.ServicerContext,
                       caller: Any) -> Iterator[pb.Predictions]:
        """Stored predictions in sample order."""
        key = pb.EvaluationKey()
        key.CopyFrom(request)
        if not key.version:
            key.version = self.catalog.get_model(key.model)[0].metadata.version
        yield from self.evaluations.predictions(_validated_key(key))

    @rpc(mutating=False)
    def GetAccuracy(self, request: pb.GetAccuracyRequest, context: grpc.ServicerContext,
                    caller: Any) -> pb.GetAccuracyResponse:
        """Top-1 accuracy with Clopper-Pearson intervals for each succeeded evaluation."""
        return pb.GetAccuracyResponse(accuracies=self.evaluations.accuracies(model=request.model,
                                                                            testset=request.testset))
