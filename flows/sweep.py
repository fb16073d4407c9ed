"""The Prefect flow ``sweep``: ask the gateway to evaluate every missing or failed pair.

It runs on ``settings.sweep_cron``. The gateway decides which pairs are missing, failed or stale
(a worker died), records them as pending and starts one ``evaluate`` run per pair, so the sweep
itself is one call.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow, task

from shiftboard.client import Client
from shiftboard.flows.evaluate import TRANSIENT_RETRIES
from shiftboard.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["sweep"]


@task(name="request-evaluations", **TRANSIENT_RETRIES)
def request_missing(settings: Settings) -> list[str]:
    """RequestEvaluations with no pairs: every missing or failed pair; returns what was handed out."""
    with Client.from_settings(settings) as client:
        evaluations = client.request_evaluations()
    return [f"{e.key.model}:{e.key.version} on {e.key.testset}" for e in evaluations]


@flow(name="sweep", log_prints=False)
def sweep() -> dict[str, Any]:
    """Evaluate every (model, test set) pair that is missing or failed."""
    settings = Settings.from_env()
    handed_out = request_missing(settings)
    log.info("sweep: %d evaluation(s) requested%s", len(handed_out),
             (": " + ", ".join(handed_out[:20])) if handed_out else "")
    return {"requested": len(handed_out), "pairs": handed_out}
