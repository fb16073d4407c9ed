"""The Prefect adapter: the deployments' names, the client's settings, flow-run submission, and the
one translation of Prefect's errors into shiftboard errors.

Prefect is imported inside the functions (it takes seconds): the gateway imports this module at
start and pays for Prefect only when it first hands out work (:func:`preload`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

from shiftboard import credentials
from shiftboard.domain.errors import Unavailable
from shiftboard.settings import Settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

log = logging.getLogger(__name__)

__all__ = ["DEPLOYMENT_NAME", "EVALUATE_DEPLOYMENT", "EVALUATE_FLOW", "RETRY_STATUS", "SUBMIT_RETRY_DELAYS_S",
           "SWEEP_DEPLOYMENT", "SWEEP_FLOW", "cancel_flow_run", "client_env", "crash_flow_run", "preload",
           "submit_evaluations", "translate"]

#: Name of both deployments; Prefect addresses them as "<flow name>/<deployment name>".
DEPLOYMENT_NAME = "shiftboard"
EVALUATE_FLOW = "evaluate"
SWEEP_FLOW = "sweep"
EVALUATE_DEPLOYMENT = f"{EVALUATE_FLOW}/{DEPLOYMENT_NAME}"
SWEEP_DEPLOYMENT = f"{SWEEP_FLOW}/{DEPLOYMENT_NAME}"

#: Pauses between tries of a hand-off Prefect answered "busy" (these statuses) or did not answer (6 s in all).
SUBMIT_RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
RETRY_STATUS = frozenset({429, 502, 503})


def client_env(settings: Settings) -> dict[str, str]:
    """The Prefect variables a worker (and its flow runs) need: API and its auth string, poll interval,
    log forwarding."""
    env = {
        "PREFECT_API_URL": settings.prefect_api,
        # Prefect's setting is whole seconds; the runner itself is given settings.worker_poll_s.
        "PREFECT_RUNNER_POLL_FREQUENCY": str(max(1, round(settings.worker_poll_s))),
        "PREFECT_LOGGING_EXTRA_LOGGERS": "shiftboard",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",  # the worker's own lines stay local
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    auth = credentials.prefect_auth_string(settings)
    if auth:
        env["PREFECT_API_AUTH_STRING"] = auth
    return env


def preload() -> None:
    """Import Prefect's deployment client now (seconds), so that the first hand-off does not wait on it."""
    import prefect.deployments  # noqa: F401


def translate(exc: BaseException, settings: Settings, deployment: str = EVALUATE_DEPLOYMENT) -> BaseException:
    """A Prefect client failure as a shiftboard error (``exc`` itself when it is none of Prefect's):
    :class:`~shiftboard.domain.errors.Unavailable` for a server that cannot be reached, is busy or
    has no such deployment (the worker has not registered it yet)."""
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    if isinstance(exc, ObjectNotFound):
        return Unavailable(f"Prefect at {settings.prefect_api} has no deployment {deployment}: is the "
                           "evaluation worker running (`shiftboard serve worker`)?")
    if isinstance(exc, PrefectHTTPStatusError | OSError) or type(exc).__module__.startswith("httpx"):
        return Unavailable(f"Prefect at {settings.prefect_api} is unreachable: {exc}")
    return exc


def _busy(exc: BaseException) -> bool:
    """Whether a failed call may succeed when tried again at once (no answer, or a busy answer)."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    if isinstance(exc, PrefectHTTPStatusError):
        return exc.response.status_code in RETRY_STATUS
    return isinstance(exc, httpx.TransportError)


def _client_settings(settings: Settings) -> dict[Any, Any]:
    """Prefect's client settings for a call from the gateway: the stack's API and its auth string."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES

    # Prefect's client waits 2 s, 4 s, ... before retrying a busy server (a 503 when its SQLite database
    # was locked for a moment); a hand-off retries sooner itself.
    out: dict[Any, Any] = {PREFECT_API_URL: settings.prefect_api, PREFECT_CLIENT_MAX_RETRIES: 0}
    auth = credentials.prefect_auth_string(settings)
    if auth:
        out[PREFECT_API_AUTH_STRING] = auth
    return out


def crash_flow_run(settings: Settings, flow_run_id: str, message: str) -> bool:
    """Mark a flow run whose process died as crashed (Prefect itself never learns when a worker is killed),
    unless it has ended already; returns whether its state was changed.

    Raises :class:`~shiftboard.domain.errors.Unavailable` when Prefect cannot be reached.
    """
    from prefect.states import Crashed

    changed = _set_state(settings, flow_run_id, Crashed(message=message), force=True)
    if changed:
        log.info("marked flow run %s crashed: %s", flow_run_id, message)
    return changed


def cancel_flow_run(settings: Settings, flow_run_id: str, message: str) -> bool:
    """Cancel a flow run that has not ended (its model or test set was deleted); returns whether its state
    was changed.

    The run is set Cancelling, as ``prefect flow-run cancel`` does: the worker's runner then kills its
    process and marks it Cancelled; a run no worker has picked up yet goes to Cancelled at once (Prefect's
    own rule for a scheduled run without a process). Raises
    :class:`~shiftboard.domain.errors.Unavailable` when Prefect cannot be reached.
    """
    from prefect.states import Cancelling

    changed = _set_state(settings, flow_run_id, Cancelling(message=message), skip_cancelling=True)
    if changed:
        log.info("cancelled flow run %s: %s", flow_run_id, message)
    return changed


def _set_state(settings: Settings, flow_run_id: str, state: Any, *, force: bool = False,
               skip_cancelling: bool = False) -> bool:
    """Set a flow run's state unless it has ended (or, with ``skip_cancelling``, is being cancelled);
    whether it was set. Prefect's errors are translated (:func:`translate`)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.settings import temporary_settings

    try:
        with temporary_settings(_client_settings(settings)), get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
            if run.state is not None and (run.state.is_final() or (skip_cancelling and run.state.is_cancelling())):
                return False
            client.set_flow_run_state(flow_run_id, state, force=force)
    except Exception as exc:
        translated = translate(exc, settings)
        if translated is exc:
            raise
        raise translated from exc
    return True


def submit_evaluations(settings: Settings, model: str, version: str, testsets: list[str]) -> str:
    """Create a run of the ``evaluate`` deployment for one model on ``testsets`` without waiting;
    returns its flow-run id.

    Raises :class:`~shiftboard.domain.errors.Unavailable` when Prefect cannot be reached or the worker has
    not registered the deployment yet (the sweep hands the pair out again later).
    """
    from prefect.deployments import run_deployment
    from prefect.settings import temporary_settings

    parameters: dict[str, Any] = {"model": model, "version": version, "testsets": list(testsets)}
    prefect_settings = _client_settings(settings)
    try:
        for delay in (*SUBMIT_RETRY_DELAYS_S, None):
            try:
                with temporary_settings(prefect_settings):
                    run = cast("FlowRun", run_deployment(EVALUATE_DEPLOYMENT, parameters=parameters, timeout=0,
                                                         as_subflow=False, tags=["shiftboard"]))
                break
            except Exception as exc:
                if delay is None or not _busy(exc):
                    raise
                time.sleep(delay)
    except Exception as exc:
        translated = translate(exc, settings)
        if translated is exc:
            raise
        raise translated from exc
    log.info("submitted %s:%s on %s as flow run %s", model, version, ", ".join(testsets), run.id)
    return str(run.id)
