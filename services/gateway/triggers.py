"""Evaluations queued after a write: the write has succeeded whatever happens here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def trigger(schedule: Callable[..., Any], *args: str) -> None:
    """Queue the new evaluations; a failure is logged (the sweep queues them later)."""
    try:
        schedule(*args)
    except Exception:
        log.exception("could not schedule evaluations for %s; the sweep will", args)
