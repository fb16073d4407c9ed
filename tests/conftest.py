"""Shared fixtures: a real S3 object store (SeaweedFS, or MinIO when installed) and a real gateway.

The object store runs as a subprocess on free ports with its data in a temporary directory; the
gateway runs in-process on port 0 with its DuckDB catalog in a temporary directory. Nothing here is
mocked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shiftboard import credentials
from shiftboard.adapters.s3 import ObjectStore
from shiftboard.client import Client
from shiftboard.services.gateway.server import Gateway, create_server
from shiftboard.services.stack.objectstore_server import object_store_spec
from shiftboard.settings import Settings
from tests.helpers import free_settings, start_service
from tests.stack_fixtures import running_stack  # noqa: F401 - a session fixture: the whole stack

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a running object store with generated, enforced credentials.

    The store is ``external`` to these settings (reached through ``s3_endpoint``), and every other port
    in them is free, never a default: a gateway built from them reaches no stack running on this
    machine (Triton on 8001, Prefect on 4200, ...)."""
    state = tmp_path_factory.mktemp("objectstore")
    settings = free_settings(state, object_store=os.environ.get("SHIFTBOARD_TEST_OBJECT_STORE", "auto"))
    with start_service(object_store_spec(settings, dict(os.environ)), state / "objectstore.log"):
        creds = credentials.s3_credentials(settings)
        assert creds is not None
        yield settings.replace(object_store="external", s3_endpoint=settings.s3_target,
                               s3_access_key=creds.access_key, s3_secret_key=creds.secret_key)


@dataclass
class GatewayHandle:
    settings: Settings
    target: str
    client: Client
    store: ObjectStore
    server: Gateway


@contextlib.contextmanager
def serving_gateway(object_store: Settings, state: Path, bucket: str) -> Iterator[GatewayHandle]:
    """A gateway in this process on a free port, its catalog in ``state``, its objects in ``bucket``.
    No Prefect: evaluations are recorded as pending but not handed to a worker."""
    settings = object_store.replace(state_dir=str(state), s3_bucket=bucket, auto_evaluate=False)
    server = create_server(settings, port=0)
    target = f"127.0.0.1:{server.port}"
    settings = settings.replace(gateway_address=target)
    client = Client(target, credentials.admin_token(settings))
    try:
        yield GatewayHandle(settings, target, client, ObjectStore.from_settings(settings), server)
    finally:
        client.close()
        server.stop()


@pytest.fixture(scope="session")
def gateway(object_store: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    """The session's gateway (see :func:`serving_gateway`)."""
    with serving_gateway(object_store, tmp_path_factory.mktemp("gateway"), "gateway-tests") as handle:
        yield handle
