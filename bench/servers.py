"""Real servers for the benchmarks: an object store and a tritonserver on free ports, state in a temp dir.

They are started from the stack's own service specs (the same commands ``shiftboard up`` runs) and
stopped (their whole process group) when the context exits.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from shiftboard import credentials
from shiftboard.services.stack.objectstore_server import object_store_spec
from shiftboard.services.stack.spec import ServiceSpec, port_is_free
from shiftboard.services.stack.triton import triton_spec
from shiftboard.settings import Settings


def free_settings(state_dir: Path, **overrides: object) -> Settings:
    """Settings whose object store (ports +0..+2, +10000..) and Triton ports (+4..+6) are free."""
    for _ in range(200):
        base = random.randrange(20000, 50000, 10)
        settings = Settings(state_dir=str(state_dir), s3_port=base, s3_internal_port=base + 1,
                            triton_http_port=base + 4, triton_grpc_port=base + 5,
                            triton_metrics_port=base + 6,
                            object_store="seaweedfs", **overrides)  # type: ignore[arg-type]
        claims = object_store_spec(settings, {}).ports + triton_spec(settings, {}).ports
        if all(port_is_free(settings.host, c.port) for c in claims):
            return settings
    raise RuntimeError("no free block of ports found")


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgids: list[int]) -> float:
    """CPU seconds (user + system) used so far by the live processes of the given process groups."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLOCK_TICKS


@contextlib.contextmanager
def running(spec: ServiceSpec, log_path: Path, timeout_s: float = 120.0) -> Iterator[int]:
    """Start ``spec``'s command in a new process group, wait for its start-up probe, yield the group
    id, and stop the whole group on exit."""
    env = dict(spec.env)
    if spec.prepare:
        env.update(spec.prepare() or {})
    assert spec.command is not None
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(spec.command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            while (reason := spec.startup_probe()) is not None:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{spec.name} did not start ({reason}); see {log_path}")
                time.sleep(0.2)
            yield proc.pid
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=spec.stop_timeout_s + 5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextlib.contextmanager
def object_store_and_triton(state_dir: Path, **overrides: object) -> Iterator[tuple[Settings, list[int]]]:
    """Both servers running; yields settings with the object store's generated credentials filled
    in, and the process-group ids of the servers (for :func:`group_cpu_seconds`)."""
    settings = free_settings(state_dir, **overrides)
    with running(object_store_spec(settings, dict(os.environ)), state_dir / "objectstore.log") as store_pgid:
        creds = credentials.s3_credentials(settings)
        assert creds is not None
        settings = settings.replace(object_store="external", s3_access_key=creds.access_key,
                                    s3_secret_key=creds.secret_key)
        with running(triton_spec(settings, dict(os.environ)), state_dir / "triton.log") as triton_pgid:
            yield settings, [store_pgid, triton_pgid]
