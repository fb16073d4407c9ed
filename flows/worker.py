"""The evaluation worker: serves the Prefect deployments ``evaluate`` and ``sweep``, and starts runs.

``shiftboard serve worker`` calls :func:`serve_worker`, which serves both flows from this process
with ``prefect.serve``: each flow run becomes a child process, at most ``settings.eval_concurrency``
at once; the runner polls the Prefect API every ``settings.worker_poll_s`` seconds, so a run starts
within a few seconds of being created (Prefect's default is 10 s). The sweep runs on
``settings.sweep_cron`` (hourly by default) and asks the gateway to evaluate every missing or failed
pair; the gateway hands each pair to :func:`submit_evaluation`.

Flow runs inherit this process's environment, so ``serve_worker`` exports the settings as
``SHIFTBOARD_*`` variables: the flows build the very same settings. ``PREFECT_API_URL`` points at
the stack's Prefect server, and the ``shiftboard`` loggers are forwarded to the Prefect UI.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, cast

from shiftboard import credentials
from shiftboard.errors import Unavailable
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
        "PREFECT_RUNNER_POLL_FREQUENCY": str(max(1, int(settings.worker_poll_s))),
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
    from prefect import serve
    from prefect.deployments.runner import EntrypointType

    from shiftboard.flows.evaluate import evaluate
    from shiftboard.flows.sweep import sweep

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API poll otherwise
    # Flow runs import the flows by module path, so the worker may run from any directory and
    # from an installed (non-editable) package.
    by_module = EntrypointType.MODULE_PATH

    log.info("evaluation worker: Prefect at %s, %d evaluation(s) at once, sweep on %r",
             settings.prefect_api, settings.eval_concurrency, settings.sweep_cron)
    serve(
        evaluate.to_deployment(name=DEPLOYMENT_NAME, entrypoint_type=by_module,
                               description="Evaluate one model version on one test set."),
        sweep.to_deployment(name=DEPLOYMENT_NAME, cron=settings.sweep_cron, entrypoint_type=by_module,
                            description="Evaluate every missing or failed (model, test set) pair."),
        limit=settings.eval_concurrency,
        query_seconds=max(1, int(settings.worker_poll_s)),
        print_starting_message=False,
        pause_on_shutdown=False,  # one worker stopping must not pause the sweep's schedule for the others
    )
    return 0


def submit_evaluation(settings: Settings, key: pb.EvaluationKey) -> str:
    """One pair: :func:`submit_evaluations` with a single test set."""
    return submit_evaluations(settings, key.model, key.version, [key.testset])


def submit_evaluations(settings: Settings, model: str, version: str, testsets: list[str]) -> str:
    """Create a run of the ``evaluate`` deployment for one model on ``testsets`` without waiting;
    returns its flow-run id.

    Raises :class:`~shiftboard.errors.Unavailable` when Prefect cannot be reached or the worker has
    not registered the deployment yet (the sweep hands the pair out again later).
    """
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    parameters: dict[str, Any] = {"model": model, "version": version, "testsets": list(testsets)}
    prefect_settings: dict[Any, Any] = {PREFECT_API_URL: settings.prefect_api}
    auth = credentials.prefect_auth_string(settings)
    if auth:
        prefect_settings[PREFECT_API_AUTH_STRING] = auth
    try:
        with temporary_settings(prefect_settings):
            run = cast("FlowRun", run_deployment(EVALUATE_DEPLOYMENT, parameters=parameters, timeout=0,
                                                 as_subflow=False, tags=["shiftboard"]))
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
