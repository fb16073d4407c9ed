"""Bounds on the work one call may ask of the gateway, open reads included.

Streaming calls hold a thread of the gateway's pool for as long as the client keeps them open, so
their number is bounded in total (below the pool's size: unary calls and the health check always
find a thread) and per caller (a token's name, or the peer's address for anonymous calls). Every
refusal is a :class:`~shiftboard.domain.errors.ResourceExhausted` naming the limit and what to do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from shiftboard.domain.errors import ResourceExhausted

#: Bootstrap resamples a GetLeaderboard request may ask for.
MAX_RESAMPLES = 10_000
#: Pairs in one RequestEvaluations call.
MAX_KEYS_PER_REQUEST = 1_000
#: Samples and distinct shards one GetSamples call may read.
MAX_SAMPLES_PER_CALL = 1024
MAX_SHARDS_PER_SAMPLES_CALL = 16


def peer_host(peer: str) -> str:
    """``ipv4:127.0.0.1:5555`` -> ``ipv4:127.0.0.1``; ``ipv6:[::1]:5555`` -> ``ipv6:[::1]`` (ports vary per call)."""
    head, sep, tail = peer.rpartition(":")
    return head if sep and tail.isdigit() and head.count(":") >= 1 else peer


class StreamLimiter:
    """Counts open streams in total and per caller; ``acquire`` returns an idempotent release."""

    def __init__(self, total: int, per_caller: int) -> None:
        self.total = total
        self.per_caller = per_caller
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def open_streams(self, caller: str | None = None) -> int:
        with self._lock:
            return self._open.get(caller, 0) if caller is not None else sum(self._open.values())

    def acquire(self, caller: str, call: str) -> Callable[[], None]:
        with self._lock:
            mine = self._open.get(caller, 0)
            if mine >= self.per_caller:
                raise ResourceExhausted(
                    f"{call}: {caller} already holds {mine} open streams, the most one caller may hold "
                    f"(SHIFTBOARD_MAX_STREAMS_PER_CALLER={self.per_caller}): close one and try again")
            if sum(self._open.values()) >= self.total:
                raise ResourceExhausted(
                    f"{call}: the gateway serves {self.total} streams at once (SHIFTBOARD_MAX_STREAMS) and "
                    "all are in use: try again later")
            self._open[caller] = mine + 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                left = self._open.get(caller, 1) - 1
                if left > 0:
                    self._open[caller] = left
                else:
                    self._open.pop(caller, None)

        return release
