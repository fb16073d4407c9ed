"""The stack supervisor: one foreground process that starts, watches and stops the services.

Start: each service in order (object store and bucket, Triton, Prefect, gateway, leaderboard), its
output in ``<logs_dir>/<name>.log``, waiting until it is healthy (``start_timeout_s`` per service)
before the next. A service that exits or stays unhealthy fails the start with a message naming it
and its log; what was started is stopped again and the run file keeps the error for ``up``.

Run: a child that dies is restarted after an exponential backoff (1 s, doubling up to 60 s); the
backoff starts again from 1 s once the child has stayed up for ``STABLE_AFTER_S``. It never gives up.
A restart that does not become healthy within ``start_timeout_s`` is stopped and counts as one more
death. The run file records per service its restarts, last exit code and when the next try is due;
``up`` on a running stack asks (through :func:`runfile.request_restart`) for dead or backing-off
services to be started at once.

Stop (SIGTERM/SIGINT): children in reverse order, SIGTERM to the child's process group, then
SIGKILL after its stop timeout (SeaweedFS needs ~16 s); the run file is removed. Every child runs
in its own session/process group, so helpers it spawned (Triton's backend stubs) go with it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from shiftboard import credentials
from shiftboard.domain.errors import FailedPrecondition, ShiftboardError
from shiftboard.services.stack import runfile
from shiftboard.services.stack.spec import ServiceSpec, check_ports_free
from shiftboard.services.stack.specs import stack_specs
from shiftboard.settings import Settings

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0
STABLE_AFTER_S = 180.0
MONITOR_INTERVAL_S = 1.0

Progress = Callable[[str], None]


class _Child:
    """A service and its current process."""

    def __init__(self, spec: ServiceSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.start: str | None = None
        self.state = "pending"
        self.detail = ""
        self.restarts = 0  # every restart since the supervisor started
        self.streak = 0  # deaths since the child was last stable: drives the backoff
        self.last_exit: int | None = None
        self.backoff_s: float | None = None  # the backoff before the last restart
        self.next_try: float | None = None  # monotonic time of the next start while backing off
        self.start_deadline = 0.0
        self.began = 0.0
        self.started_by = ""  # "backoff" or "up": what started the current attempt
        self.healthy_since: float | None = None
        self.healthy_after_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        next_try_at = None
        if self.next_try is not None:
            next_try_at = round(time.time() + max(0.0, self.next_try - time.monotonic()), 2)
        return {"name": self.spec.name, "address": self.spec.address, "state": self.state,
                "pid": self.proc.pid if self.proc and self.proc.returncode is None else None,
                "start": self.start, "log": str(self.log_path), "restarts": self.restarts,
                "last_exit": self.last_exit, "backoff_s": self.backoff_s, "next_try_at": next_try_at,
                "started_by": self.started_by, "detail": self.detail,
                "healthy_after_s": self.healthy_after_s}


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """True when ``proc`` has exited; it is not reaped, so its pid still names its process group."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None
    except ChildProcessError:
        return True


#: Command-line flags whose value ends in a secret (Triton's key): logged as ``...=***``.
_SECRET_FLAGS = ("--grpc-restricted-protocol=",)


def _redacted(command: list[str]) -> list[str]:
    return [arg.rsplit("=", 1)[0] + "=***" if arg.startswith(_SECRET_FLAGS) else arg for arg in command]


class Supervisor:
    """Starts ``specs`` in order and supervises them until :meth:`request_stop`."""

    def __init__(self, settings: Settings, specs: list[ServiceSpec], on_progress: Progress | None = None,
                 *, backoff_base_s: float = BACKOFF_BASE_S, backoff_cap_s: float = BACKOFF_CAP_S,
                 stable_after_s: float = STABLE_AFTER_S, monitor_interval_s: float = MONITOR_INTERVAL_S) -> None:
        self.settings = settings
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self.stable_after_s, self.monitor_interval_s = stable_after_s, monitor_interval_s
        self._handled: list[str] = []  # ids of restart requests answered (the last few)
        credentials.private_dir(settings.state_path)
        credentials.private_dir(settings.logs_dir)
        self.children = [_Child(s, settings.logs_dir / f"{s.name}.log") for s in specs]
        self.state = "starting"
        self.error = ""
        self._stop = threading.Event()
        self._tracker = runfile.ProgressTracker(on_progress)
        self._pid_start = runfile.process_start(os.getpid())

    # ------------------------------------------------------------------ public

    def request_stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Start everything, supervise until asked to stop, stop everything; the exit status."""
        try:
            self._preflight()
        except ShiftboardError as exc:
            self.state, self.error = "failed", exc.message
            self._write()
            log.error("%s", exc.message)
            return 1
        self._write()
        failed = False
        try:
            for child in self.children:
                error = self._bring_up(child, self.settings.start_timeout_s)
                if self._stop.is_set():
                    return 0
                if error:
                    failed = True
                    self.state, self.error = "failed", error
                    log.error("%s", error)
                    return 1
            self.state = "running"
            self._write()
            log.info("all services healthy")
            self._monitor()
            return 0
        finally:
            if not failed:
                self.state = "stopping"
            self._write()
            self._stop_all()
            if failed:
                self._write()  # keep the error for `up` to report
            else:
                runfile.remove_run_file(self.settings)
            log.info("supervisor stopped")

    # ------------------------------------------------------------------ start

    def _preflight(self) -> None:
        """Every program is installed and every port is free, else :class:`ShiftboardError`."""
        for child in self.children:
            missing = child.spec.missing_executable()
            if missing:
                raise FailedPrecondition(missing)
        check_ports_free(self.settings.host or "0.0.0.0", [c for ch in self.children for c in ch.spec.ports])

    def _launch(self, child: _Child) -> None:
        spec = child.spec
        assert spec.command is not None
        extra_env = spec.prepare() if spec.prepare else {}
        with runfile.open_log(child.log_path) as out:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"\n=== {stamp} starting: {' '.join(_redacted(spec.command))}\n".encode())
            out.flush()
            child.proc = subprocess.Popen(  # noqa: S603 (our own commands)
                spec.command, env={**spec.env, **extra_env}, cwd=spec.cwd, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        child.start = runfile.process_start(child.proc.pid)
        log.info("started %s (pid %d), log %s", spec.name, child.proc.pid, child.log_path)

    def _bring_up(self, child: _Child, timeout_s: float) -> str | None:
        """Start ``child`` (unless external) and wait until it is healthy; an error message or None."""
        name, began = child.spec.name, time.monotonic()
        see_log = f"; see {child.log_path}" if child.spec.command is not None else ""
        child.state, child.detail, child.healthy_since = "starting", "", None
        if child.spec.command is not None:
            try:
                self._launch(child)
            except (ShiftboardError, OSError) as exc:
                child.state, child.detail = "failed", str(exc)
                self._write()
                return f"{name} could not be started: {exc}{see_log}"
        self._write()
        delay, deadline = 0.2, began + timeout_s
        while not self._stop.is_set():
            if child.proc is not None and _exited(child.proc):
                code = self._reap(child)
                child.state, child.detail = "failed", f"exited with code {code} while starting"
                self._write()
                return f"{name} exited with code {code} while starting{see_log}"
            reason = child.spec.startup_probe()
            if reason is None:
                child.healthy_after_s = round(time.monotonic() - began, 1)
                child.state, child.detail, child.healthy_since = "running", "", time.monotonic()
                if child.spec.command is None:
                    child.state = "external"
                self._write()
                log.info("%s healthy after %.1f s", name, child.healthy_after_s)
                return None
            if reason != child.detail:
                child.detail = reason
                self._write()
            if time.monotonic() >= deadline:
                child.state = "failed"
                self._stop_child(child)
                self._write()
                return f"{name} did not become healthy within {timeout_s:.0f} s ({reason}){see_log}"
            self._stop.wait(delay)
            delay = min(delay * 1.5, 2.0)
        return None

    # ------------------------------------------------------------------ run

    def _monitor(self) -> None:
        runfile.take_restart_request(self.settings)  # one left from before this supervisor is stale
        while not self._stop.wait(self.monitor_interval_s):
            self._answer_request()
            for child in self.children:
                if self._stop.is_set():
                    return
                if child.spec.command is not None:
                    self._watch(child)

    def _watch(self, child: _Child) -> None:
        """One look at ``child``: notice a death, start it when its backoff is over, follow a restart."""
        now = time.monotonic()
        if child.state == "running":
            if child.proc is None or _exited(child.proc):
                self._died(child, self._reap(child) if child.proc is not None else -1)
            elif child.streak and child.healthy_since and now - child.healthy_since > self.stable_after_s:
                child.streak = 0  # stable again: the next death waits the shortest backoff
        elif child.state == "restarting":
            if child.next_try is not None and now >= child.next_try:
                self._relaunch(child, "backoff")
        elif child.state == "starting":
            self._follow_restart(child)

    def _died(self, child: _Child, code: int, why: str = "") -> None:
        """Record a death of ``child`` and schedule its next start after the backoff."""
        child.restarts += 1
        child.streak += 1
        child.last_exit = code
        child.healthy_since = None
        child.backoff_s = min(self.backoff_base_s * 2 ** (child.streak - 1), self.backoff_cap_s)
        child.next_try = time.monotonic() + child.backoff_s
        child.state = "restarting"
        child.detail = why or f"exited with code {code}"
        log.warning("%s %s; restart %d in %.0f s (log %s)", child.spec.name, child.detail, child.restarts,
                    child.backoff_s, child.log_path)
        self._write()

    def _relaunch(self, child: _Child, by: str) -> None:
        child.next_try = None
        child.started_by = by
        child.state, child.healthy_since = "starting", None
        child.began = time.monotonic()
        child.start_deadline = child.began + self.settings.start_timeout_s
        try:
            self._launch(child)
        except (ShiftboardError, OSError) as exc:
            log.error("%s could not be started: %s", child.spec.name, exc)
            child.proc = None
            self._died(child, -1, f"could not be started: {exc}")
            return
        self._write()

    def _follow_restart(self, child: _Child) -> None:
        assert child.proc is not None
        if _exited(child.proc):
            code = self._reap(child)
            self._died(child, code, f"exited with code {code} while starting")
            return
        reason = child.spec.startup_probe()
        if reason is None:
            child.healthy_after_s = round(time.monotonic() - child.began, 1)
            child.state, child.detail, child.healthy_since = "running", "", time.monotonic()
            log.info("%s healthy again after %.1f s (restart %d)", child.spec.name, child.healthy_after_s,
                     child.restarts)
            self._write()
        elif time.monotonic() >= child.start_deadline:
            self._stop_child(child)
            self._died(child, child.proc.returncode if child.proc.returncode is not None else -1,
                       f"not healthy within {self.settings.start_timeout_s:.0f} s ({reason})")
        elif reason != child.detail:
            child.detail = reason
            self._write()

    def _answer_request(self) -> None:
        """Start the services a restart request (from ``up``) names now, when dead or backing off."""
        request = runfile.take_restart_request(self.settings)
        if request is None:
            return
        names = set(request.get("services") or [])
        for child in self.children:
            if child.spec.name not in names or child.spec.command is None:
                continue
            if child.state == "running" and child.proc is not None and _exited(child.proc):
                self._died(child, self._reap(child))
            if child.state in ("restarting", "failed"):
                log.info("restarting %s now, as asked", child.spec.name)
                self._relaunch(child, "up")
        self._handled = [*self._handled, str(request.get("id"))][-10:]
        self._write()

    # ------------------------------------------------------------------ stop

    def _reap(self, child: _Child) -> int:
        assert child.proc is not None
        if child.proc.returncode is not None:  # reaped before: its pid may belong to another process now
            return child.proc.returncode
        runfile.kill_group(child.proc.pid, signal.SIGKILL)  # helpers left behind by the leader
        return child.proc.wait()

    def _stop_child(self, child: _Child) -> None:
        proc = child.proc
        if proc is None or proc.returncode is not None:
            return
        if not _exited(proc):
            log.info("stopping %s (pid %d)", child.spec.name, proc.pid)
            runfile.kill_group(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + child.spec.stop_timeout_s
            while not _exited(proc) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not _exited(proc):
                log.warning("%s did not stop within %.0f s: killing it", child.spec.name,
                            child.spec.stop_timeout_s)
        self._reap(child)

    def _stop_all(self) -> None:
        for child in reversed(self.children):
            if child.proc is not None and child.proc.returncode is None:
                self._stop_child(child)
            if child.state not in ("failed", "pending"):
                child.state = "stopped"
            self._write()

    def _write(self) -> None:
        data = {"supervisor_pid": os.getpid(), "supervisor_start": self._pid_start, "state": self.state,
                "error": self.error, "handled_requests": self._handled,
                "services": [c.as_dict() for c in self.children]}
        runfile.write_run_file(self.settings, data)
        self._tracker.update(data)


def run_supervisor(settings: Settings, *, on_progress: Progress | None = None) -> int:
    """Run the stack in this process until SIGTERM/SIGINT; 0 after a clean stop, 1 when start failed."""
    running = runfile.running_supervisor(settings)
    if running is not None:
        log.error("a supervisor already runs for %s (pid %d)", settings.state_dir, running[0])
        return 1
    credentials.private_dir(settings.state_path)
    credentials.s3_credentials(settings, create=True)
    credentials.admin_token(settings, create=True)
    # Before the specs are built: Triton's command line holds its key and names the certificates.
    credentials.triton_key(settings, create=True)
    credentials.prefect_auth_string(settings, create=True)
    credentials.stack_tls(settings, create=True)
    supervisor = Supervisor(settings, stack_specs(settings), on_progress)

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        supervisor.request_stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return supervisor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
