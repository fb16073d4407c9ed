"""The stack supervisor: one foreground process that starts, watches and stops the services.

Start: each service in order (object store and bucket, Triton, Prefect, gateway, leaderboard), its
output in ``<logs_dir>/<name>.log``, waiting until it is healthy (``start_timeout_s`` per service)
before the next. A service that exits or stays unhealthy fails the start with a message naming it
and its log; what was started is stopped again and the run file keeps the error for ``up``.

Run: a child that dies is restarted after a backoff (1, 3, 9 s); after ``MAX_RESTARTS`` deaths
within ``STABLE_AFTER_S`` it is marked failed and left alone.

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

MAX_RESTARTS = 3
RESTART_BACKOFF_S = (1.0, 3.0, 9.0)
STABLE_AFTER_S = 300.0
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
        self.restarts = 0
        self.healthy_since: float | None = None
        self.healthy_after_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.spec.name, "address": self.spec.address, "state": self.state,
                "pid": self.proc.pid if self.proc and self.proc.returncode is None else None,
                "start": self.start, "log": str(self.log_path), "restarts": self.restarts,
                "detail": self.detail, "healthy_after_s": self.healthy_after_s}


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

    def __init__(self, settings: Settings, specs: list[ServiceSpec],
                 on_progress: Progress | None = None) -> None:
        self.settings = settings
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
        while not self._stop.wait(MONITOR_INTERVAL_S):
            for child in self.children:
                if self._stop.is_set():
                    return
                if child.spec.command is None or child.state == "failed":
                    continue
                proc = child.proc
                if proc is not None and not _exited(proc):
                    if child.healthy_since and time.monotonic() - child.healthy_since > STABLE_AFTER_S:
                        child.restarts = 0
                    continue
                self._restart(child, self._reap(child) if proc is not None else -1)

    def _restart(self, child: _Child, code: int) -> None:
        name = child.spec.name
        child.restarts += 1
        if child.restarts > MAX_RESTARTS:
            child.state = "failed"
            child.detail = f"exited with code {code}; gave up after {MAX_RESTARTS} restarts"
            log.error("%s exited with code %d; gave up after %d restarts; see %s",
                      name, code, MAX_RESTARTS, child.log_path)
            self._write()
            return
        backoff = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S)) - 1]
        child.state = "restarting"
        child.detail = f"exited with code {code}; restart {child.restarts}/{MAX_RESTARTS} in {backoff:.0f} s"
        log.warning("%s %s (log %s)", name, child.detail, child.log_path)
        self._write()
        if self._stop.wait(backoff):
            return
        error = self._bring_up(child, self.settings.start_timeout_s)
        if error:
            log.error("restart failed: %s", error)
            child.state = "restarting"  # the next monitor round counts it and tries again or gives up

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
                "error": self.error, "services": [c.as_dict() for c in self.children]}
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
