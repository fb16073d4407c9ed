"""The evaluation worker: serves the Prefect deployments ``evaluate`` and ``sweep``, and starts runs.

``shiftboard serve worker`` calls :func:`serve_worker`, which serves both flows from this process
with a Prefect ``Runner``: each flow run becomes a child process, at most ``settings.eval_concurrency``
at once, forked from a warm process that has imported the flows already (:func:`warm_starts`); the
runner polls the Prefect API every ``settings.worker_poll_s`` seconds (0.5 by default; Prefect's is
10 s), so a run starts about a second after it is created. The sweep runs on
``settings.sweep_cron`` (hourly by default) and asks the gateway to evaluate every missing or failed
pair; the gateway hands the pairs to :func:`~shiftboard.adapters.prefect.submit_evaluations`.

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
from multiprocessing import forkserver
from typing import Any

from shiftboard.adapters.prefect import (
    DEPLOYMENT_NAME,
    EVALUATE_DEPLOYMENT,
    SWEEP_DEPLOYMENT,
    client_env,
    submit_evaluations,
)
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb

log = logging.getLogger(__name__)

#: The deployments' names and the submission are the Prefect adapter's; importable from here as before.
__all__ = ["DEPLOYMENT_NAME", "EVALUATE_DEPLOYMENT", "SWEEP_DEPLOYMENT", "serve_worker", "submit_evaluation",
           "submit_evaluations"]


def serve_worker(settings: Settings) -> int:
    """Serve ``evaluate`` and ``sweep`` until interrupted; returns the exit status (0)."""
    # Before importing prefect: its settings are read from the environment once.
    os.environ.update(settings.as_env())
    os.environ.update(client_env(settings))
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


def submit_evaluation(settings: Settings, key: pb.EvaluationKey) -> str:
    """One pair: :func:`~shiftboard.adapters.prefect.submit_evaluations` with a single test set."""
    return submit_evaluations(settings, key.model, key.version, [key.testset])
