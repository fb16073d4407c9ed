"""The evaluation worker: serves the Prefect deployments ``evaluate`` and ``sweep``, and starts runs.

``shiftboard serve worker`` calls :func:`serve_worker`, which serves both flows from this process
with a Prefect ``Runner``: each flow run becomes a child process, at most ``settings.eval_concurrency``
at once, forked from a warm process that has imported the flows already (:func:`warm_starts`); the
runner polls the Prefect API every ``settings.worker_poll_s`` seconds (0.5 by default; Prefect's is
10 s), so a run starts about a second after it is created. The sweep runs on
``settings.sweep_cron`` (hourly by default) and asks the gateway to evaluate every missing or failed
pair; the gateway hands each pair to :func:`submit_evaluation`.

Flow runs inherit this process's environment, so ``serve_worker`` exports the settings as
``SHIFTBOARD_*`` variables: the flows build the very same settings. ``PREFECT_API_URL`` points at
the stack's Prefect server, and the ``shiftboard`` loggers are forwarded to the Prefect UI.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.context
import os
import socket
import sys
import time
from multiprocessing import forkserver
from typing import TYPE_CHECKING, Any, cast

from shiftboard import credentials
from shiftboard.domain.errors import Unavailable
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

log = logging.getLogger(__name__)

__all__ = ["DEPLOYMENT_NAME", "EVALUATE_DEPLOYMENT", "SWEEP_DEPLOYMENT", "serve_worker", "submit_evaluation",
           "submit_evaluations"]

#: Name of both deployments; Prefect addresses them as "<flow name>/<deployment name>".
DEPLOYMENT_NAME = "shiftboard"
EVALUATE_FLOW = "evaluate"
SWEEP_FLOW = "sweep"
EVALUATE_DEPLOYMENT = f"{EVALUATE_FLOW}/{DEPLOYMENT_NAME}"
SWEEP_DEPLOYMENT = f"{SWEEP_FLOW}/{DEPLOYMENT_NAME}"


def prefect_env(settings: Settings) -> dict[str, str]:
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


def serve_worker(settings: Settings) -> int:
    """Serve ``evaluate`` and ``sweep`` until interrupted; returns the exit status (0)."""
    # Before importing prefect: its settings are read from the environment once.
    os.environ.update(settings.as_env())
    os.environ.update(prefect_env(settings))
    from prefect.deployments.runner import EntrypointType
    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner

    from shiftboard.flows.evaluate import evaluate
    from shiftboard.flows.sweep import sweep

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API poll otherwise
    # Flow runs import the flows by module path, so the worker may run from any directory and
    # from an installed (non-editable) package.
    by_module = EntrypointType.MODULE_PATH

    log.info("evaluation worker: Prefect at %s, %d evaluation(s) at once, sweep on %r",
             settings.prefect_api, settings.eval_concurrency, settings.sweep_cron)
    warm_starts(WARM_MODULES)
    runner = Runner(
        name=f"shiftboard-worker-{socket.gethostname()}-{os.getpid()}",
        limit=settings.eval_concurrency,
        query_seconds=settings.worker_poll_s,
        pause_on_shutdown=False,  # one worker stopping must not pause the sweep's schedule for the others
    )
    # add_flow (not add_deployment): the runner then holds the flow objects and starts each run
    # from them in a child process (see warm_starts) instead of `python -m prefect.engine`.
    runner.add_flow(evaluate, name=DEPLOYMENT_NAME, entrypoint_type=by_module,
                    description="Evaluate one model version on one test set.")
    runner.add_flow(sweep, name=DEPLOYMENT_NAME, cron=settings.sweep_cron, entrypoint_type=by_module,
                    description="Evaluate every missing or failed (model, test set) pair.")
    try:
        asyncio.run(runner.start())
    except (KeyboardInterrupt, TerminationSignal):
        log.info("evaluation worker stopping")
    return 0


#: What every flow-run process needs, imported once by the forkserver (see :func:`warm_starts`).
WARM_MODULES = ("prefect.flow_engine", "shiftboard.flows.evaluate", "shiftboard.flows.sweep")


class _WarmMultiprocessing:
    """Stands in for :mod:`multiprocessing` inside ``prefect.flow_engine`` while it starts a flow run:
    the "spawn" context it asks for is the forkserver context (everything else is passed through)."""

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        self._context = context

    def get_context(self, method: str | None = None) -> multiprocessing.context.BaseContext:
        return self._context

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


def warm_starts(modules: tuple[str, ...] = WARM_MODULES) -> multiprocessing.context.BaseContext:
    """Start flow runs by forking a warm process instead of starting a fresh interpreter.

    The runner starts a run of a flow it holds with ``prefect.flow_engine.run_flow_in_subprocess``: a
    *spawned* process, a new interpreter that imports Prefect, numpy, gRPC and the flows again (about
    3 s here) before the run begins. Here it gets a *forkserver* process instead: Python's forkserver
    is started now, imports ``modules`` once, and forks each flow run from that state (tens of
    milliseconds). The child is still its own process (the runner kills, cancels and waits on it as
    before, a crash stays in it) and runs the same code, with the environment the runner gives it.
    The forkserver imports but starts no threads and opens no connections, so forking it is safe.
    Returns the forkserver context (tests use it).
    """
    import prefect.flow_engine as engine
    from prefect.runner import _starter_direct

    context = multiprocessing.get_context("forkserver")
    main = sys.modules["__main__"]
    main_module = getattr(getattr(main, "__spec__", None), "name", None)
    # A child re-imports the parent's main module unless it is a package's __main__ (multiprocessing's
    # rule); have it imported already. Never a __main__: importing that would run the program.
    rerun_main = [main_module] if main_module and not main_module.endswith("__main__") else []
    context.set_forkserver_preload([*rerun_main, *modules])
    forkserver.ensure_running()
    prefect_start = engine.run_flow_in_subprocess

    def run_flow_in_warm_subprocess(*args: Any, **kwargs: Any) -> Any:
        saved = engine.multiprocessing
        engine.multiprocessing = _WarmMultiprocessing(context)  # type: ignore[assignment]
        try:
            return prefect_start(*args, **kwargs)
        finally:
            engine.multiprocessing = saved

    # The module-level name the runner's direct starter calls (Prefect's documented override point).
    _starter_direct.run_flow_in_subprocess = run_flow_in_warm_subprocess  # type: ignore[assignment]
    return context


#: Pauses between tries of a hand-off Prefect answered "busy" (these statuses) or did not answer (6 s in all).
SUBMIT_RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
RETRY_STATUS = frozenset({429, 502, 503})


def submit_evaluation(settings: Settings, key: pb.EvaluationKey) -> str:
    """One pair: :func:`submit_evaluations` with a single test set."""
    return submit_evaluations(settings, key.model, key.version, [key.testset])


def submit_evaluations(settings: Settings, model: str, version: str, testsets: list[str]) -> str:
    """Create a run of the ``evaluate`` deployment for one model on ``testsets`` without waiting;
    returns its flow-run id.

    Raises :class:`~shiftboard.domain.errors.Unavailable` when Prefect cannot be reached or the worker has
    not registered the deployment yet (the sweep hands the pair out again later).
    """
    import httpx
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_URL,
        PREFECT_CLIENT_MAX_RETRIES,
        temporary_settings,
    )

    parameters: dict[str, Any] = {"model": model, "version": version, "testsets": list(testsets)}
    # Prefect's client waits 2 s, 4 s, ... before retrying a busy server (a 503 when its SQLite database
    # was locked for a moment); a hand-off retries sooner itself.
    prefect_settings: dict[Any, Any] = {PREFECT_API_URL: settings.prefect_api, PREFECT_CLIENT_MAX_RETRIES: 0}
    auth = credentials.prefect_auth_string(settings)
    if auth:
        prefect_settings[PREFECT_API_AUTH_STRING] = auth
    try:
        for delay in (*SUBMIT_RETRY_DELAYS_S, None):
            try:
                with temporary_settings(prefect_settings):
                    run = cast("FlowRun", run_deployment(EVALUATE_DEPLOYMENT, parameters=parameters, timeout=0,
                                                         as_subflow=False, tags=["shiftboard"]))
                break
            except (PrefectHTTPStatusError, httpx.TransportError) as exc:
                busy = not isinstance(exc, PrefectHTTPStatusError) or exc.response.status_code in RETRY_STATUS
                if delay is None or not busy:
                    raise
                time.sleep(delay)
    except ObjectNotFound as exc:
        raise Unavailable(f"Prefect at {settings.prefect_api} has no deployment {EVALUATE_DEPLOYMENT}: is "
                          "the evaluation worker running (`shiftboard serve worker`)?") from exc
    except (PrefectHTTPStatusError, OSError) as exc:
        raise Unavailable(f"Prefect at {settings.prefect_api} is unreachable: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("httpx"):
            raise Unavailable(f"Prefect at {settings.prefect_api} is unreachable: {exc}") from exc
        raise
    log.info("submitted %s:%s on %s as flow run %s", model, version, ", ".join(testsets), run.id)
    return str(run.id)
