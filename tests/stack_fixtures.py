"""Fixtures and helpers for tests of the embedded stack (real servers on free ports, state in tmp).

Import what you use into a test module or ``conftest.py``::

    from tests.stack_fixtures import running_stack, stack_settings_for  # noqa: F401
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shiftboard.domain.errors import FailedPrecondition
from shiftboard.services.stack import control, runfile
from shiftboard.services.stack.spec import ServiceSpec, port_is_free, validate_ports
from shiftboard.services.stack.specs import stack_ports
from shiftboard.settings import Settings

# SeaweedFS listens on its ports + 10000 as well: keep the object store's ports below this.
_MAX_BASE = 65535 - 10000 - 3


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _free_port_below(limit: int, taken: set[int]) -> int:
    while True:
        port = free_port()
        if port <= limit and port not in taken:
            return port


def stack_settings_for(state_dir: Path, **overrides: Any) -> Settings:
    """Settings for a whole stack in ``state_dir`` whose every port (derived ones too) is free."""
    for _ in range(100):
        taken: set[int] = set()
        ports: dict[str, int] = {}
        for name in ("s3_port", "s3_internal_port"):
            ports[name] = _free_port_below(_MAX_BASE, taken)
            taken.update(ports[name] + d for d in (0, 1, 2, 10000, 10001, 10002))
        for name in ("triton_http_port", "triton_grpc_port", "triton_metrics_port", "prefect_port",
                     "gateway_port", "leaderboard_port"):
            ports[name] = _free_port_below(65535, taken)
            taken.add(ports[name])
        settings = Settings(state_dir=str(state_dir), **{"start_timeout_s": 120.0, **ports, **overrides})
        claims = stack_ports(settings)
        try:
            validate_ports(claims)
        except FailedPrecondition:
            continue
        if all(port_is_free(settings.host, c.port) for c in claims):
            return settings
    raise RuntimeError("found no free set of ports for a stack")


@dataclass
class RunningStack:
    """A stack started with ``control.up``: its settings, the result and the progress messages."""

    settings: Settings
    result: control.UpResult
    progress: list[str] = field(default_factory=list)

    def service_pids(self) -> dict[str, int]:
        data = runfile.read_run_file(self.settings) or {}
        return {s["name"]: s["pid"] for s in data.get("services", []) if s.get("pid")}


@pytest.fixture(scope="session")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The whole embedded stack, started once per session with ``control.up``; stopped at the end."""
    settings = stack_settings_for(tmp_path_factory.mktemp("stack") / "state")
    progress: list[str] = []
    try:
        result = control.up(settings, on_progress=progress.append)
    except Exception:
        control.down(settings)
        raise
    try:
        yield RunningStack(settings, result, progress)
    finally:
        control.down(settings)


@contextlib.contextmanager
def serving(spec: ServiceSpec, log_path: Path, *, ready: Callable[[], str | None] | None = None,
            timeout_s: float = 90.0, stop_timeout_s: float = 30.0) -> Iterator[subprocess.Popen[bytes]]:
    """Run one service of the stack (its spec's command) until it is healthy; stop it afterwards."""
    env = dict(spec.env)
    if spec.prepare:
        env.update(spec.prepare() or {})
    assert spec.command is not None
    probe = ready or spec.startup_probe
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(spec.command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            while (reason := probe()) is not None:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{spec.name} did not start ({reason}); log: {log_path}")
                time.sleep(0.2)
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
