"""Fixtures for tests of the embedded stack: real servers on free ports, state in a temporary directory.

``running_stack`` is the session's stack, shared by every test that asks for it: such tests must leave
it running (a test that stops or breaks a stack starts its own with :func:`started_stack`). Single
services are started with :func:`tests.helpers.start_service`, settings come from
:func:`tests.helpers.free_settings`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shiftboard.services.stack import control, runfile
from shiftboard.settings import Settings
from tests.helpers import free_settings


@dataclass
class RunningStack:
    """A stack started with ``control.up``: its settings, the result and the progress messages."""

    settings: Settings
    result: control.UpResult
    progress: list[str] = field(default_factory=list)

    def service_pids(self) -> dict[str, int]:
        data = runfile.read_run_file(self.settings) or {}
        return {s["name"]: s["pid"] for s in data.get("services", []) if s.get("pid")}


def up(settings: Settings) -> RunningStack:
    """``control.up`` with the progress messages kept; what was started is stopped again when it fails."""
    progress: list[str] = []
    try:
        result = control.up(settings, on_progress=progress.append)
    except BaseException:
        control.down(settings)
        raise
    return RunningStack(settings, result, progress)


@contextlib.contextmanager
def started_stack(state_dir: Path, **overrides: Any) -> Iterator[RunningStack]:
    """A whole stack of its own in ``state_dir`` on free ports, stopped (``control.down``) at the end."""
    settings = free_settings(state_dir, **{"start_timeout_s": 120.0, **overrides})
    stack = up(settings)
    try:
        yield stack
    finally:
        control.down(settings)


@pytest.fixture(scope="session")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The session's embedded stack (see the module docstring); stopped when the session ends."""
    with started_stack(tmp_path_factory.mktemp("stack") / "state") as stack:
        yield stack
