#!/usr/bin/env python3
"""Container health checks: exit 0 when the service answers as healthy, 1 otherwise (reason on stderr).

Installed as ``shiftboard-healthcheck`` in the project image and the Triton image, so every
``healthcheck:`` in ``docker-compose.yml`` (and every exec probe in ``deploy/k8s``) is one short
command::

    shiftboard-healthcheck grpc localhost:50051          # grpc.health.v1 Check == SERVING (gateway)
    shiftboard-healthcheck http http://localhost:8501/_stcore/health ok   # 2xx, body "ok" (leaderboard)
    shiftboard-healthcheck tcp localhost:8001            # accepts connections (Triton: its health API
                                                         # needs the key, and the image has no gRPC client)

The probes are the ones the local stack uses (``shiftboard.services.stack.health``), written against
the standard library and ``grpcio-health-checking`` only: the Triton image has neither shiftboard nor
grpc installed, and a health check must not pay for importing the whole package every few seconds.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request

USAGE = """usage: shiftboard-healthcheck grpc HOST:PORT [SERVICE]
       shiftboard-healthcheck http URL [EXPECTED_BODY]
       shiftboard-healthcheck tcp HOST:PORT"""


def check_http(url: str, expect: str | None = None, *, timeout_s: float = 3.0) -> str | None:
    """GET ``url``: None when the answer is 2xx (and, with ``expect``, its stripped body equals it)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (own URL)
            body = response.read(4096).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} from {url}"
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"
    if expect is not None and body != expect:
        return f"unexpected answer from {url}: {body[:80]!r}"
    return None


def check_grpc(target: str, service: str = "", *, timeout_s: float = 3.0) -> str | None:
    """grpc.health.v1 ``Check``: None when the status is SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        return f"{target}: health check failed: {code.name if code else exc}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return f"{target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
    return None


def check_tcp(target: str, *, timeout_s: float = 3.0) -> str | None:
    """None when something accepts TCP connections on ``host:port``."""
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return None
    except (OSError, ValueError) as exc:
        return f"{target}: {exc}"


def main(argv: list[str]) -> int:
    if len(argv) in (2, 3) and argv[0] == "http":
        reason = check_http(argv[1], argv[2] if len(argv) == 3 else None)
    elif len(argv) == 2 and argv[0] == "tcp":
        reason = check_tcp(argv[1])
    elif len(argv) in (2, 3) and argv[0] == "grpc":
        reason = check_grpc(argv[1], argv[2] if len(argv) == 3 else "")
    else:
        print(USAGE, file=sys.stderr)
        return 2
    if reason is not None:
        print(f"unhealthy: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
