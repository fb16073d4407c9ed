"""Stack control for the CLI: ``up``, ``down`` and ``status``.

``up`` checks everything it can before starting anything (programs installed, every port free,
secrets generated), then spawns the supervisor (``shiftboard serve stack``) in its own session and
follows the run file until every service is healthy. On a running stack, ``up`` asks the supervisor
to start every dead or backing-off service now and waits until each is healthy again. ``down`` asks
the supervisor to stop and falls back to killing what the run file names. ``status`` really probes each service.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from shiftboard import credentials, sandbox
from shiftboard.domain.errors import FailedPrecondition, Unavailable
from shiftboard.services.stack import runfile
from shiftboard.services.stack.spec import ServiceSpec, check_ports_free
from shiftboard.services.stack.specs import child_env, cli_command, stack_specs
from shiftboard.services.stack.supervisor import Progress, run_supervisor
from shiftboard.settings import Settings, env_name

log = logging.getLogger(__name__)

SUPERVISOR_LOG = "supervisor.log"


@dataclass(frozen=True)
class UpResult:
    """What ``up`` did: ``already_running`` (nothing changed), the supervisor's pid, the addresses."""

    already_running: bool
    pid: int | None
    services: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None  # foreground only: the supervisor's exit status
    restarted: tuple[str, ...] = ()  # on a running stack: the services started again (now healthy)


@dataclass(frozen=True)
class ServiceStatus:
    """One service as probed now."""

    name: str
    address: str
    healthy: bool
    detail: str
    pid: int | None


def supervisor_command() -> list[str]:
    return cli_command("serve", "stack")


def _preflight(settings: Settings, specs: list[ServiceSpec]) -> None:
    for spec in specs:
        missing = spec.missing_executable()
        if missing:
            raise FailedPrecondition(missing)
    check_ports_free(settings.host or "0.0.0.0", [claim for spec in specs for claim in spec.ports])
    sandbox.require(settings)  # submitted models never run unconfined unless the operator opted out


def up(settings: Settings, *, foreground: bool = False, on_progress: Progress | None = None) -> UpResult:
    """Start the stack and wait until every service is healthy (see the module docstring).

    Raises :class:`FailedPrecondition` before starting anything when a program is missing or a
    port is taken, and :class:`Unavailable` when a service fails to start (naming its log).
    With ``foreground`` the supervisor runs in this process until SIGINT/SIGTERM.
    """
    running = runfile.running_supervisor(settings)
    if running is not None:
        return _heal(settings, *running, on_progress=on_progress)
    _kill_leftovers(settings, runfile.read_run_file(settings))  # of a supervisor that was killed
    specs = stack_specs(settings)
    _preflight(settings, specs)
    credentials.private_dir(settings.state_path)
    credentials.s3_credentials(settings, create=True)
    credentials.admin_token(settings, create=True)
    credentials.private_dir(settings.logs_dir)
    addresses = {spec.name: spec.address for spec in specs}
    if foreground:
        code = run_supervisor(settings, on_progress=on_progress)
        if code != 0:
            data = runfile.read_run_file(settings) or {}
            raise Unavailable(data.get("error") or f"the stack supervisor exited with code {code}")
        return UpResult(False, os.getpid(), addresses, exit_code=code)

    log_path = settings.logs_dir / SUPERVISOR_LOG
    with runfile.open_log(log_path) as out:
        proc = subprocess.Popen(  # noqa: S603 (our own command)
            supervisor_command(), env=child_env(settings), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    log.info("started the stack supervisor (pid %d), log %s", proc.pid, log_path)
    _follow_start(settings, proc, len(specs), on_progress)
    return UpResult(False, proc.pid, addresses)


#: How long ``up`` waits for the supervisor to take its restart request (it looks every second).
REQUEST_TIMEOUT_S = 15.0


def _needs_restart(entry: dict[str, Any]) -> bool:
    """A service the supervisor started that is dead, backing off or failed."""
    state = entry.get("state")
    if state in ("restarting", "failed"):
        return True
    return state == "running" and isinstance(entry.get("pid"), int) and not runfile.pid_alive(
        entry["pid"], entry.get("start"))


def _heal(settings: Settings, pid: int, data: dict[str, Any], *, on_progress: Progress | None) -> UpResult:
    """``up`` on a running stack: start its dead or backing-off services now, wait until they are healthy.

    Raises :class:`Unavailable` naming each service that did not come back (and its log)."""
    say = on_progress or (lambda message: None)
    addresses = {s["name"]: s["address"] for s in data.get("services", [])}
    if data.get("state") != "running":  # still starting (another `up`) or stopping: leave it alone
        return UpResult(True, pid, addresses)
    entries = {e.get("name"): e for e in data.get("services", [])}
    waiting = [name for name, e in entries.items() if e.get("state") == "starting"]  # a restart under way
    wanted = [name for name, e in entries.items() if _needs_restart(e)]
    if not wanted and not waiting:
        return UpResult(True, pid, addresses)
    for name in wanted:
        entry = entries[name]
        said = runfile.restart_summary(entry) or "not running"
        say(f"{name}: {said if entry.get('state') != 'running' else 'died'}; starting it now")
    for name in waiting:
        say(f"{name}: {runfile.restart_summary(entries[name]) or 'starting'}; waiting for it")
    log_path = settings.logs_dir / SUPERVISOR_LOG
    if wanted:
        request = runfile.request_restart(settings, wanted)
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        while request not in (runfile.read_run_file(settings) or {}).get("handled_requests", []):
            if runfile.running_supervisor(settings) is None:
                raise Unavailable(f"the stack supervisor (pid {pid}) stopped; `shiftboard up` starts the "
                                  f"stack again (see {log_path})")
            if time.monotonic() > deadline:
                raise Unavailable(f"the stack supervisor (pid {pid}) did not take the restart request within "
                                  f"{REQUEST_TIMEOUT_S:.0f} s: `shiftboard down` then `shiftboard up` (see "
                                  f"{log_path})")
            time.sleep(0.2)
    names = wanted + waiting
    deadline = time.monotonic() + settings.start_timeout_s + 30.0
    outcome: dict[str, dict[str, Any]] = {}
    while True:
        current = {e.get("name"): e for e in (runfile.read_run_file(settings) or {}).get("services", [])}
        for name in names:
            entry = current.get(name, {})
            if name not in outcome and entry.get("state") in ("running", "restarting", "failed"):
                outcome[name] = entry
                if entry.get("state") == "running":
                    say(f"{name}: healthy again at {entry.get('address')} ({entry.get('healthy_after_s')} s)")
        if len(outcome) == len(names):
            break
        if runfile.running_supervisor(settings) is None:
            raise Unavailable(f"the stack supervisor (pid {pid}) stopped while restarting {', '.join(names)}; "
                              f"`shiftboard up` starts the stack again (see {log_path})")
        if time.monotonic() > deadline:
            late = [n for n in names if n not in outcome]
            raise Unavailable(f"{', '.join(late)} did not become healthy in time; see "
                              + ", ".join(str(current.get(n, {}).get("log", log_path)) for n in late))
        time.sleep(0.25)
    failed = [(n, e) for n, e in outcome.items() if e.get("state") != "running"]
    if failed:
        raise Unavailable("; ".join(
            f"{n} did not come back: {e.get('detail') or 'it exited'}, {runfile.restart_summary(e)}; see "
            f"{e.get('log')}" for n, e in failed))
    return UpResult(True, pid, addresses, restarted=tuple(names))


def _follow_start(settings: Settings, proc: subprocess.Popen[bytes], n_services: int,
                  on_progress: Progress | None) -> None:
    tracker = runfile.ProgressTracker(on_progress)
    log_path = settings.logs_dir / SUPERVISOR_LOG
    deadline = time.monotonic() + settings.start_timeout_s * n_services + 30.0
    while True:
        data = runfile.read_run_file(settings)
        ours = data is not None and data.get("supervisor_pid") == proc.pid
        if ours:
            assert data is not None
            tracker.update(data)
            if data.get("state") == "running":
                return
        code = proc.poll()
        if code is not None or (ours and data and data.get("state") == "failed"):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=120.0)  # it stops what it started before exiting
            data = runfile.read_run_file(settings)
            error = data.get("error") if data and data.get("supervisor_pid") == proc.pid else ""
            raise Unavailable(error or f"the stack supervisor exited with code {proc.returncode}; "
                              f"see {log_path}")
        if time.monotonic() > deadline:
            down(settings)
            raise Unavailable(f"the stack did not become healthy in time; see {log_path}")
        time.sleep(0.25)


def down(settings: Settings, timeout_s: float = 60.0) -> bool:
    """Stop the stack; False when nothing was running. Waits up to ``timeout_s``, then kills."""
    running = runfile.running_supervisor(settings)
    if running is None:
        return _kill_leftovers(settings, runfile.read_run_file(settings))
    pid, data = running
    start = data.get("supervisor_start")
    log.info("stopping the stack supervisor (pid %d)", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not runfile.wait_gone(pid, start, timeout_s):
        log.warning("the supervisor did not stop within %.0f s: killing it and its services", timeout_s)
        data = runfile.read_run_file(settings) or data
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        runfile.wait_gone(pid, start, 5.0)
        _kill_leftovers(settings, data)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it when we started it
    runfile.remove_run_file(settings)
    return True


def _kill_leftovers(settings: Settings, data: dict[str, Any] | None) -> bool:
    """Stop services a dead supervisor left behind (as recorded in its run file)."""
    if not data:
        return False
    killed = False
    for entry in reversed(data.get("services", [])):
        pid = entry.get("pid")
        if isinstance(pid, int) and runfile.pid_alive(pid, entry.get("start")):
            log.warning("stopping %s (pid %d) left behind by a dead supervisor", entry.get("name"), pid)
            runfile.terminate_group(pid, entry.get("start"), 20.0)
            killed = True
    runfile.remove_run_file(settings)
    return killed


def status(settings: Settings) -> list[ServiceStatus]:
    """Probe every service now (in parallel). Without a supervisor, a dead service reads "not running"."""
    specs = stack_specs(settings)
    running = runfile.running_supervisor(settings)
    data = running[1] if running else (runfile.read_run_file(settings) or {})
    entries = {e.get("name"): e for e in data.get("services", [])}
    with ThreadPoolExecutor(max_workers=len(specs)) as pool:
        reasons = list(pool.map(lambda spec: spec.check(), specs))
    out = []
    for spec, reason in zip(specs, reasons, strict=True):
        entry = entries.get(spec.name, {})
        pid = entry.get("pid")
        state = entry.get("state", "")
        orphan = not running and isinstance(pid, int) and runfile.pid_alive(pid, entry.get("start"))
        if not running and not orphan:
            pid = None
        if orphan:
            detail = f"{reason or 'ok'}, but its supervisor is gone: `shiftboard down` stops it"
        elif reason is None:
            detail = "ok" if running else "ok (not started by this stack)"
            # healthy: it answers, whatever the supervisor last wrote (it may not have seen it pass yet)
            summary = runfile.restart_summary({**entry, "state": "running"}) if running else ""
            if summary:
                detail += f", {summary}"
        elif not running:
            detail = "not running"
        elif state in ("restarting", "starting") and entry.get("restarts"):
            detail = runfile.restart_summary(entry)
            if entry.get("detail"):
                detail += f": {entry['detail']}"
        elif state in ("failed", "starting") and entry.get("detail"):
            detail = f"{state}: {entry['detail']}"
        else:
            detail = reason
        out.append(ServiceStatus(spec.name, spec.address, reason is None, detail, pid))
    return out


def sandbox_status(settings: Settings) -> ServiceStatus:
    """The sandbox of submitted models as a status row: the mechanisms in force, or what is missing."""
    healthy, detail = sandbox.status_line(settings)
    return ServiceStatus("sandbox", f"{env_name('sandbox')}={settings.sandbox}", healthy, detail, None)
