"""Health probes of the stack's services, each returning ``None`` when healthy, else a short reason.

Probes are cheap (a few seconds at most) and never raise: the supervisor polls them while a
service starts, and ``status`` runs them all at once.
"""

from __future__ import annotations

import base64
import logging
import socket
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shiftboard.adapters.s3 import ObjectStore
from shiftboard.domain.errors import ShiftboardError
from shiftboard.settings import Settings

if TYPE_CHECKING:
    from shiftboard.adapters.triton.client import TritonAuth

log = logging.getLogger(__name__)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def http_probe(url: str, *, expect: str | None = None, timeout_s: float = 3.0) -> str | None:
    """GET ``url``: healthy on 2xx (and, with ``expect``, when the body stripped equals it)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (own URL)
            body = response.read(4096).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} from {url}"
    except (OSError, ValueError) as exc:
        return _reason(exc)
    if expect is not None and body != expect:
        return f"unexpected answer from {url}: {body[:80]!r}"
    return None


def grpc_health_probe(target: str, *, service: str = "", timeout_s: float = 3.0) -> str | None:
    """grpc.health.v1 ``Check``: healthy when the status is SERVING."""
    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        if code == grpc.StatusCode.UNAVAILABLE:
            return "not reachable"
        return f"health check failed: {code.name if code else exc}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return f"health status {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
    return None


def triton_probe(target: str, *, auth: TritonAuth | None = None, timeout_s: float = 3.0) -> str | None:
    """Triton over gRPC: healthy when ``is_server_ready()`` (asked with ``auth``: health is restricted)."""
    from tritonclient.utils import InferenceServerException  # heavy import: only where Triton is probed

    from shiftboard.adapters.triton.client import connect

    try:
        client = connect(target, auth)
    except (InferenceServerException, ValueError, OSError) as exc:
        return _reason(exc)
    try:
        return None if client.is_server_ready(client_timeout=timeout_s) else "not ready"
    except InferenceServerException as exc:
        msg = str(exc.message() if hasattr(exc, "message") else exc)
        if "protocol is restricted" in msg.lower():
            return "Triton refused the key"
        return "not reachable" if "unavailable" in msg.lower() else _reason(exc)
    finally:
        client.close()


def tcp_probe(target: str, *, timeout_s: float = 2.0) -> str | None:
    """Something accepts TCP connections on ``host:port``."""
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return None
    except (OSError, ValueError) as exc:
        return _reason(exc)


def object_store_probe(settings: Settings, *, create_bucket: bool = False) -> str | None:
    """The S3 API answers with our credentials and the bucket exists (created when asked)."""
    # A refused connection is answered here at once; the S3 client would retry it for seconds.
    reason = tcp_probe(settings.s3_target)
    if reason is not None:
        return reason
    try:
        store = ObjectStore.from_settings(settings)
        if create_bucket:
            store.ensure_bucket()
        return None if store.healthy() else f"bucket {settings.s3_bucket!r} is missing or not readable"
    except ShiftboardError as exc:
        return exc.message
    except Exception as exc:  # a probe never raises; say what happened
        log.debug("object store probe failed", exc_info=True)
        return _reason(exc)


def prefect_deployment_probe(api_url: str, deployment: str, *, auth_string: str | None = None,
                             timeout_s: float = 3.0) -> str | None:
    """Healthy when ``flow/deployment`` exists in Prefect and its runner polled recently (READY)."""
    import json

    url = f"{api_url.rstrip('/')}/deployments/name/{deployment}"
    request = urllib.request.Request(url, headers=prefect_auth_headers(auth_string))
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (own URL)
            body = json.loads(response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            return "Prefect refused the auth string"
        return "deployment not registered yet" if exc.code == 404 else f"HTTP {exc.code} from {url}"
    except (OSError, ValueError) as exc:
        return _reason(exc)
    status = str(body.get("status") or "")
    return None if status.upper() == "READY" else f"deployment {deployment} is {status.lower() or 'not ready'}"


def prefect_auth_headers(auth_string: str | None) -> dict[str, str]:
    """The ``Authorization`` header Prefect's server checks (basic auth over the whole auth string)."""
    if not auth_string:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(auth_string.encode("utf-8")).decode("ascii")}
