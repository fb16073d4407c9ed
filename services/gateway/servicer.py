"""The ``shiftboard.v1.Shiftboard`` service, composed of one object per concern.

:class:`ShiftboardServicer` builds what the RPCs share (catalog, object store, token checks, stream
limits, evaluations, aggregates, the scheduler, the board cache) and the concern objects over them:

* :class:`~.model_rpcs.ModelRpcs`: submit, get, list, delete models;
* :class:`~.testset_rpcs.TestSetRpcs`: uploads, registration, samples, get, list and delete test sets (the
  :class:`~.cleanup.UploadJanitor` thread removes expired uploads);
* :class:`~.evaluation_rpcs.EvaluationRpcs`: progress, triggers, the worker's commits, results;
* :class:`~.leaderboard_rpcs.LeaderboardRpcs`: leaderboards, the overview, paired comparisons;
* :class:`~.results_rpcs.ResultsRpcs`: imported results;
* :class:`~.analysis_rpcs.AnalysisRpcs`: calibration and error consistency from per-sample predictions;
* :class:`~.admin_rpcs.TokenRpcs` and :class:`~.admin_rpcs.ServerInfoRpcs`: tokens, server info.

:meth:`ShiftboardServicer.handler` serves them as the one service, from its descriptor: each method of
the service must be implemented by exactly one concern (checked when the gateway starts). Handlers
keep gRPC's ``(self, request, context)`` signature; authorisation, the caller, stream slots and the
translation of errors to statuses are the interceptor's (:mod:`~.interceptor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import message_factory

from shiftboard import credentials
from shiftboard.adapters.duckdb.catalog import Catalog
from shiftboard.adapters.duckdb.evaluations import Evaluations
from shiftboard.adapters.s3 import ObjectStore
from shiftboard.domain.manifests import MAX_CLASSES, MAX_SHARDS, MAX_SIDE
from shiftboard.services.gateway.admin_rpcs import OWN_TOKENS, ServerInfoRpcs, TokenRpcs
from shiftboard.services.gateway.aggregates import Aggregator
from shiftboard.services.gateway.analysis_rpcs import AnalysisRpcs
from shiftboard.services.gateway.auth import Authenticator
from shiftboard.services.gateway.board_cache import BoardCache
from shiftboard.services.gateway.cleanup import UploadJanitor
from shiftboard.services.gateway.evaluation_rpcs import EvaluationRpcs
from shiftboard.services.gateway.interceptor import SERVICE, GatewayInterceptor
from shiftboard.services.gateway.leaderboard_rpcs import LeaderboardRpcs
from shiftboard.services.gateway.limits import StreamLimiter
from shiftboard.services.gateway.model_rpcs import ModelRpcs
from shiftboard.services.gateway.results_rpcs import ResultsRpcs
from shiftboard.services.gateway.scheduler import Scheduler
from shiftboard.services.gateway.testset_rpcs import TestSetRpcs
from shiftboard.settings import Settings

__all__ = ["MAX_CLASSES", "MAX_SHARDS", "MAX_SIDE", "OWN_TOKENS", "ShiftboardServicer", "generic_handler"]


class ShiftboardServicer:
    """The gateway's shared state and its concern objects; :meth:`handler` serves them."""

    def __init__(self, settings: Settings, catalog: Catalog, store: ObjectStore) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        key = credentials.token_key(settings, create=True)
        assert key is not None  # create=True always gives a key
        self.auth = Authenticator(catalog, key)
        self.streams = StreamLimiter(settings.stream_limit, settings.max_streams_per_caller)
        self.evaluations = Evaluations(catalog)
        self.aggregator = Aggregator(catalog, self.evaluations, settings)
        self.scheduler = Scheduler(settings, catalog, self.evaluations)
        self._board_cache = BoardCache()
        self.tmp_dir = settings.state_path / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.models = ModelRpcs(settings, catalog, store, self.evaluations, self.scheduler, self.tmp_dir)
        self.testsets = TestSetRpcs(settings, catalog, store, self.scheduler, self.evaluations)
        self.janitor = UploadJanitor(self.testsets.sweep_uploads, settings)
        self.evaluation_rpcs = EvaluationRpcs(catalog, self.evaluations, self.scheduler, store)
        self.leaderboard = LeaderboardRpcs(catalog, self.evaluations, settings, self.aggregator,
                                           lambda: self.board_cache)
        self.results = ResultsRpcs(catalog, settings)
        self.analyses = AnalysisRpcs(catalog, settings)
        self.tokens = TokenRpcs(self.auth, catalog)
        self.info = ServerInfoRpcs(settings, catalog)

    @property
    def board_cache(self) -> BoardCache:
        """This gateway's computed boards."""
        return self._board_cache

    def concerns(self) -> list[object]:
        return [self.models, self.testsets, self.evaluation_rpcs, self.leaderboard, self.results, self.analyses,
                self.tokens, self.info]

    def handler(self) -> grpc.GenericRpcHandler:
        """The service's handler over every concern."""
        return generic_handler(self.concerns())

    def interceptor(self) -> GatewayInterceptor:
        """The edge every call of the service passes (authorisation, caller, stream slots, statuses)."""
        return GatewayInterceptor(self.auth, self.streams, open_reads=self.settings.open_reads)


def generic_handler(concerns: Sequence[object]) -> grpc.GenericRpcHandler:
    """The ``shiftboard.v1.Shiftboard`` handler: each method of the service from the one concern that
    implements it, with the generated messages' (de)serialisers. Raises when a method is implemented
    by no concern or by several."""
    handlers: dict[str, Any] = {}
    problems = []
    for method in SERVICE.methods:
        owners = [c for c in concerns if callable(getattr(c, method.name, None))]
        if len(owners) != 1:
            problems.append(f"{method.name} is implemented by {len(owners)} concerns "
                            f"({', '.join(type(c).__name__ for c in owners) or 'none'})")
            continue
        behaviour = getattr(owners[0], method.name)
        request = message_factory.GetMessageClass(method.input_type)
        response = message_factory.GetMessageClass(method.output_type)
        make = _HANDLER_KINDS[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(behaviour, request_deserializer=request.FromString,
                                     response_serializer=response.SerializeToString)
    if problems:
        raise RuntimeError(f"{SERVICE.full_name} must have each method implemented exactly once: "
                           + "; ".join(problems))
    return grpc.method_handlers_generic_handler(SERVICE.full_name, handlers)


_HANDLER_KINDS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}
