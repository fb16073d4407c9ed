"""Start the gateway: the gRPC server with the API, grpc.health.v1 and server reflection.

Every call of the API passes the gateway's interceptor (:mod:`.interceptor`) before the concern object
that implements it (:mod:`.servicer`).

``create_server(settings)`` returns ``(server, port)`` so tests bind port 0; ``serve(settings)`` is the
blocking entry point behind ``shiftboard serve gateway``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shiftboard import credentials, sandbox
from shiftboard.adapters.duckdb.catalog import Catalog
from shiftboard.adapters.s3 import ObjectStore
from shiftboard.domain.errors import Unavailable
from shiftboard.services.gateway.auth import ADMIN, EVALUATOR
from shiftboard.services.gateway.servicer import ShiftboardServicer
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Shiftboard"].full_name
#: The largest request the gateway reads (a long manifest comes over a RegisterTestSet stream).
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
#: The largest reply it sends: a test set of MAX_SHARDS shards with their keys (GetTestSet,
#: RegisterTestSet, an evaluation plan) is about 15 MiB; the Python client receives up to 64 MiB.
MAX_REPLY_BYTES = 32 * 1024 * 1024
#: Calls in progress or queued per gateway thread before gRPC answers RESOURCE_EXHAUSTED at once
#: (a flood is refused instead of queued without bound).
QUEUED_CALLS_PER_WORKER = 8


@dataclass
class Gateway:
    server: grpc.Server
    port: int
    catalog: Catalog
    health: health.HealthServicer
    servicer: ShiftboardServicer | None = None

    def stop(self, grace: float | None = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        if self.servicer is not None:
            self.servicer.scheduler.close()
            self.servicer.janitor.close()
            self.servicer.aggregator.close()
        self.catalog.close()


def _wait_for_store(store: ObjectStore, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            store.ensure_bucket()
            return
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def create_server(settings: Settings, *, port: int | None = None, store_timeout_s: float = 60.0) -> Gateway:
    """Open the catalog, reach the object store, and start serving on ``port`` (default from settings)."""
    catalog = Catalog(settings.catalog_file, memory_mb=settings.catalog_memory_mb)
    servicer: ShiftboardServicer | None = None
    try:
        store = ObjectStore.from_settings(settings)
        _wait_for_store(store, store_timeout_s)
        servicer = ShiftboardServicer(settings, catalog, store)
        for name, role, token in (("admin", ADMIN, credentials.admin_token(settings, create=True)),
                                  ("evaluator", EVALUATOR, credentials.evaluator_token(settings, create=True))):
            assert token is not None  # create=True always gives a token
            servicer.auth.register(name, token, role=role, replace=True)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.gateway_workers),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_send_message_length", MAX_REPLY_BYTES)],
            maximum_concurrent_rpcs=settings.gateway_workers * QUEUED_CALLS_PER_WORKER,
            interceptors=[servicer.interceptor()],
        )
        server.add_generic_rpc_handlers((servicer.handler(),))
        health_servicer = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
        bound = server.add_insecure_port(f"{settings.host}:{settings.gateway_port if port is None else port}")
        if bound == 0:
            raise Unavailable(f"the gateway could not bind {settings.host}:{settings.gateway_port}: "
                              "set SHIFTBOARD_GATEWAY_PORT to a free port")
        server.start()
    except BaseException:
        if servicer is not None:
            servicer.scheduler.close()
            servicer.janitor.close()
        catalog.close()
        raise
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gateway serving on %s:%d (catalog %s, bucket %s at %s)", settings.host, bound,
             settings.catalog_file, settings.s3_bucket, settings.s3_target)
    return Gateway(server, bound, catalog, health_servicer, servicer)


def serve(settings: Settings) -> int:
    """Run the gateway until SIGTERM or SIGINT (refused when the model sandbox is required and incomplete)."""
    sandbox.require(settings)
    gateway = create_server(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("gateway stopping")
    gateway.stop()
    return 0
