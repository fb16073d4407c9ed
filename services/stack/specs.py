"""The services of the embedded stack, in start order, with their ports.

    object-store  S3 API (SeaweedFS or MinIO; or external: only waited for)
    triton        tritonserver, explicit model control
    prefect       Prefect API + UI
    gateway       ``shiftboard serve gateway`` (gRPC; owns the catalog; needs the object store)
    worker        ``shiftboard serve worker`` (Prefect deployments `evaluate` and `sweep`)
    leaderboard   ``shiftboard serve leaderboard`` (Streamlit; reads through the gateway)

The gateway and the leaderboard are started through the CLI with the settings passed as
``SHIFTBOARD_*`` variables, so a container runs exactly what the local stack runs.
"""

from __future__ import annotations

import os
import sys

from shiftboard import credentials
from shiftboard.services.stack.health import grpc_health_probe, http_probe, prefect_deployment_probe
from shiftboard.services.stack.objectstore_server import object_store_spec
from shiftboard.services.stack.prefect_server import prefect_spec
from shiftboard.services.stack.spec import PortClaim, ServiceSpec
from shiftboard.services.stack.triton import triton_spec
from shiftboard.settings import Settings, env_name

SERVICE_NAMES = ("object-store", "triton", "prefect", "gateway", "worker", "leaderboard")


def child_env(settings: Settings) -> dict[str, str]:
    """The environment every child starts from: ours, the settings as variables, unbuffered output."""
    return {**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"}


def cli_command(*args: str) -> list[str]:
    """``python -m shiftboard.cli ARGS`` with the running interpreter."""
    return [sys.executable, "-m", "shiftboard.cli", *args]


def gateway_spec(settings: Settings, base_env: dict[str, str]) -> ServiceSpec:
    def check() -> str | None:
        return grpc_health_probe(settings.gateway_target)

    return ServiceSpec(name="gateway", address=settings.gateway_target,
                       command=cli_command("serve", "gateway"), env=dict(base_env), check=check,
                       ports=[PortClaim(settings.gateway_port, env_name("gateway_port"), "gateway gRPC")],
                       stop_timeout_s=10.0)


def worker_env(settings: Settings, base_env: dict[str, str]) -> dict[str, str]:
    """The worker's environment: it calls the gateway with the evaluator token, and never sees the admin
    token (generates the evaluator token if it does not exist yet)."""
    token = credentials.evaluator_token(settings, create=True)
    assert token is not None  # create=True always gives a token
    return {**base_env, env_name("token"): token, env_name("admin_token"): ""}


def worker_spec(settings: Settings, base_env: dict[str, str]) -> ServiceSpec:
    """The evaluation worker; healthy once its `evaluate` deployment is registered and polled."""
    from shiftboard.adapters.prefect import EVALUATE_DEPLOYMENT

    def check() -> str | None:
        return prefect_deployment_probe(settings.prefect_api, EVALUATE_DEPLOYMENT,
                                        auth_string=credentials.prefect_auth_string(settings))

    return ServiceSpec(name="worker", address=f"{settings.prefect_api} ({EVALUATE_DEPLOYMENT})",
                       command=cli_command("serve", "worker"), env=worker_env(settings, base_env), check=check,
                       stop_timeout_s=20.0)


def leaderboard_spec(settings: Settings, base_env: dict[str, str]) -> ServiceSpec:
    def check() -> str | None:
        return http_probe(settings.leaderboard_url + "/_stcore/health", expect="ok")

    env = {**base_env, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    return ServiceSpec(name="leaderboard", address=settings.leaderboard_url,
                       command=cli_command("serve", "leaderboard"), env=env, check=check,
                       ports=[PortClaim(settings.leaderboard_port, env_name("leaderboard_port"),
                                        "leaderboard")],
                       stop_timeout_s=10.0)


def stack_specs(settings: Settings) -> list[ServiceSpec]:
    """Every service in start order; programs may be missing (see ``missing_executable``). The only side
    effect: the evaluator token is generated if it does not exist yet (the worker's environment holds it)."""
    env = child_env(settings)
    return [object_store_spec(settings, env), triton_spec(settings, env), prefect_spec(settings, env),
            gateway_spec(settings, env), worker_spec(settings, env), leaderboard_spec(settings, env)]


def stack_ports(settings: Settings) -> list[PortClaim]:
    """Every port the stack listens on, with the setting that chooses it."""
    return [claim for spec in stack_specs(settings) for claim in spec.ports]
