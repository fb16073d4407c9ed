"""Real servers for the benchmarks: an object store and a tritonserver on free ports, state in a temp dir.

They are started as the tests start them (:func:`tests.helpers.start_service`: the stack's own service
specs, the commands ``shiftboard up`` runs) on ports from :func:`tests.helpers.free_settings`, and
stopped (their whole process group) when the context exits.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from shiftboard import credentials
from shiftboard.services.stack.objectstore_server import object_store_spec
from shiftboard.services.stack.triton import triton_spec
from shiftboard.settings import Settings
from tests.helpers import free_settings, start_service


def group_cpu_seconds(pgids: list[int]) -> float:
    """CPU seconds (user + system) used so far by the live processes of the given process groups."""
    total = 0.0
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) in pgids:
                times = process.cpu_times()
                total += times.user + times.system
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


class MemoryWatch:
    """The resident memory of one process: now, and the largest of the samples taken every ``interval_s``
    while the ``with`` block runs (a lower bound of the kernel's lifetime peak, which psutil does not read)."""

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name=f"memory-{pid}", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.NoSuchProcess:
                return

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def read_mb(self) -> tuple[float, float]:
        """Resident memory now and its sampled peak, MiB."""
        rss = self.process.memory_info().rss
        self.peak = max(self.peak, rss)
        return rss / 2**20, self.peak / 2**20


@contextlib.contextmanager
def object_store_and_triton(state_dir: Path, **overrides: Any) -> Iterator[tuple[Settings, list[int]]]:
    """Both servers running; yields settings with the object store's generated credentials filled
    in, and the process-group ids of the servers (for :func:`group_cpu_seconds`)."""
    settings = free_settings(state_dir, object_store="seaweedfs", **overrides)
    with start_service(object_store_spec(settings, dict(os.environ)), state_dir / "objectstore.log") as store:
        creds = credentials.s3_credentials(settings)
        assert creds is not None
        settings = settings.replace(object_store="external", s3_endpoint=settings.s3_target,
                                    s3_access_key=creds.access_key, s3_secret_key=creds.secret_key)
        with start_service(triton_spec(settings, dict(os.environ)), state_dir / "triton.log") as triton:
            yield settings, [store.pid, triton.pid]
