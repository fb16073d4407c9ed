"""The run file ``<state_dir>/run/stack.json`` and the process helpers around it.

The supervisor writes the file (atomically) whenever something changes::

    {"supervisor_pid": 123, "supervisor_start": "1700000000.12", "state": "starting|running|failed|stopping",
     "error": "", "updated_at": 1700000000.0,
     "services": [{"name": "triton", "pid": 130, "start": "1700000001.57", "address": "127.0.0.1:8001",
                   "state": "pending|starting|running|restarting|failed|stopped|external",
                   "log": ".../logs/triton.log", "restarts": 0, "detail": "",
                   "last_exit": -9, "backoff_s": 8.0, "next_try_at": 1700000100.0,
                   "started_by": "backoff|up"}, ...],
     "handled_requests": ["<id>", ...]}

``restarts`` counts every restart since the supervisor started, ``last_exit`` is the exit code of the
last death (negative: killed by that signal), ``next_try_at`` (epoch seconds) is set while the service
waits out its backoff (state ``restarting``). ``up`` asks the supervisor to start services at once by
writing ``restart-request.json`` next to the run file (:func:`request_restart`); the supervisor takes
it within a second and lists its id in ``handled_requests``.

``start`` is the kernel's start time of the process (psutil's ``create_time``), so a pid reused by an
unrelated process after a crash is never mistaken for ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import psutil

from shiftboard.settings import Settings

RUN_FILE_NAME = "stack.json"
REQUEST_FILE_NAME = "restart-request.json"


def run_file(settings: Settings) -> Path:
    return settings.run_dir / RUN_FILE_NAME


def read_run_file(settings: Settings) -> dict[str, Any] | None:
    """The run file's content, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(run_file(settings).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_run_file(settings: Settings, data: dict[str, Any]) -> None:
    path = run_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**data, "updated_at": time.time()}, indent=2))
    os.replace(tmp, path)


def request_restart(settings: Settings, services: list[str]) -> str:
    """Ask the running supervisor to start ``services`` now (when dead or backing off); the request id."""
    request_id = uuid.uuid4().hex
    path = settings.run_dir / REQUEST_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"id": request_id, "services": services, "at": time.time()}))
    os.replace(tmp, path)
    return request_id


def take_restart_request(settings: Settings) -> dict[str, Any] | None:
    """The pending restart request, removed from disk; None when there is none (or it is unreadable)."""
    path = settings.run_dir / REQUEST_FILE_NAME
    try:
        text = path.read_text()
        path.unlink()
        data = json.loads(text)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def restart_summary(entry: dict[str, Any], now: float | None = None) -> str:
    """How a restarted service stands, e.g. ``restarting (4 restarts, next try in 8 s, last exit -9)``;
    "" for a service that never restarted and is not restarting."""
    restarts, state = int(entry.get("restarts") or 0), entry.get("state", "")
    last_exit = entry.get("last_exit")
    exit_text = f", last exit {last_exit}" if last_exit is not None else ""
    word = "restart" if restarts == 1 else "restarts"
    if state == "restarting":
        next_try = entry.get("next_try_at")
        wait = max(0, round(float(next_try) - (now or time.time()))) if next_try is not None else None
        when = f"next try in {wait} s" if wait is not None else "waiting to restart"
        return f"restarting ({restarts} {word}, {when}{exit_text})"
    if state == "starting" and restarts:
        return f"restarting ({restarts} {word}, starting now{exit_text})"
    if restarts:
        return f"restarted {restarts}x{exit_text}"
    return ""


def open_log(path: Path) -> BinaryIO:
    """Open a service's log for appending: mode 0600 in a 0700 directory (logs may name secret paths)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)  # a log written before (by an older version) keeps no wider mode
    return os.fdopen(fd, "ab")


def remove_run_file(settings: Settings) -> None:
    with contextlib.suppress(FileNotFoundError):
        run_file(settings).unlink()


def process_start(pid: int) -> str | None:
    """When ``pid`` started (seconds since the epoch, as text), or None when it is gone or a zombie."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:  # it has finished
            return None
        return f"{proc.create_time():.2f}"
    except psutil.Error:
        return None


def pid_alive(pid: int | None, start: str | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and, given ``start``, is the same process as recorded."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return start is None  # someone else's process: ours only if we cannot tell
    current = process_start(pid)
    if current is None:
        return False
    return start is None or current == start


def running_supervisor(settings: Settings) -> tuple[int, dict[str, Any]] | None:
    """(pid, run file) of the live supervisor of this state dir, or None."""
    data = read_run_file(settings)
    if not data:
        return None
    pid = data.get("supervisor_pid")
    if isinstance(pid, int) and pid_alive(pid, data.get("supervisor_start")):
        return pid, data
    return None


def kill_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group led by ``pid`` (every child runs in its own group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def wait_gone(pid: int, start: str | None, timeout_s: float) -> bool:
    """Wait until ``pid`` is gone; True when it is."""
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid, start):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def terminate_group(pid: int, start: str | None, timeout_s: float) -> None:
    """SIGTERM the group of ``pid``, wait up to ``timeout_s``, then SIGKILL what is left of it."""
    if pid_alive(pid, start):
        kill_group(pid, signal.SIGTERM)
        wait_gone(pid, start, timeout_s)
    current = process_start(pid)
    if current is None or start is None or current == start:  # gone (or still ours), not reused
        kill_group(pid, signal.SIGKILL)  # stragglers (backend stubs, worker processes)


def service_message(entry: dict[str, Any]) -> str | None:
    """A one-line progress message for a service's state in the run file (None for "pending")."""
    name, state, detail = entry.get("name", "?"), entry.get("state", ""), entry.get("detail") or ""
    if state == "starting":
        return f"{name}: starting (log {entry.get('log')})"
    if state == "running":
        return f"{name}: healthy at {entry.get('address')} ({entry.get('healthy_after_s')} s)"
    if state == "external":
        return f"{name}: reachable at {entry.get('address')} (not started by the stack)"
    if state == "restarting":
        return f"{name}: {detail}; {restart_summary(entry)}" if detail else f"{name}: {restart_summary(entry)}"
    if state == "failed":
        return f"{name}: {state}: {detail}" if detail else f"{name}: {state}"
    if state == "stopped":
        return f"{name}: stopped"
    return None


class ProgressTracker:
    """Turns successive run-file contents into progress messages, one per state change."""

    def __init__(self, on_progress: Callable[[str], None] | None) -> None:
        self._emit = on_progress
        self._seen: dict[str, str] = {}

    def update(self, data: dict[str, Any]) -> None:
        if self._emit is None:
            return
        for entry in data.get("services", []):
            name, state = entry.get("name", "?"), entry.get("state", "")
            if self._seen.get(name) != state:
                self._seen[name] = state
                message = service_message(entry)
                if message:
                    self._emit(message)
        if self._seen.get("") != data.get("state") and data.get("state") == "running":
            self._emit("all services healthy")
        self._seen[""] = str(data.get("state"))
