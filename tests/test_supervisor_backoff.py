"""The supervisor never gives up on a crashing service (exponential backoff, reported in the run file and
``status``), and ``up`` on a running stack starts a dead or backing-off service at once.

The first tests run a :class:`Supervisor` in this process over one tiny real server (Python's HTTP server
on a free port), with short or very long backoffs, so each outcome is certain: with a 1000 s backoff the
only way the service comes back within the test is ``up``'s request. The last tests kill the real Triton
of a whole stack of their own more times than the old limit of 3 restarts and use the CLI on it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shiftboard.cli.app import app
from shiftboard.domain.errors import Unavailable
from shiftboard.services.stack import control, runfile
from shiftboard.services.stack.health import tcp_probe
from shiftboard.services.stack.spec import PortClaim, ServiceSpec
from shiftboard.services.stack.supervisor import Supervisor
from shiftboard.settings import Settings
from tests.helpers import free_port, free_settings
from tests.stack_fixtures import RunningStack, started_stack

WAIT_S = 120.0  # an upper bound for a state to be reached, never a measured duration

#: A tiny server: exits 3 at once while the file argv[2] exists, else serves HTTP on port argv[1].
TINY = ("import http.server, pathlib, sys\n"
        "if pathlib.Path(sys.argv[2]).exists():\n"
        "    sys.exit(3)\n"
        "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), http.server.BaseHTTPRequestHandler)"
        ".serve_forever()\n")


@dataclass
class Tiny:
    """A supervisor running in a thread of this process over one service named ``tiny``."""

    settings: Settings
    supervisor: Supervisor
    broken: Path  # while it exists, the service exits with code 3 when started

    def entry(self) -> dict[str, Any]:
        data = runfile.read_run_file(self.settings) or {}
        return next((s for s in data.get("services", []) if s["name"] == "tiny"), {"state": "not written yet"})

    def wait_for(self, what: str, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while not ok(entry := self.entry()):
            if time.monotonic() > deadline:
                pytest.fail(f"tiny never reached {what}: {entry}")
            time.sleep(0.05)
        return entry

    def kill(self) -> int:
        """SIGKILL the service and wait until it is dead (the supervisor may not have noticed yet)."""
        entry = self.entry()
        os.killpg(entry["pid"], signal.SIGKILL)
        assert runfile.wait_gone(entry["pid"], entry["start"], WAIT_S)
        return int(entry["pid"])


@contextlib.contextmanager
def tiny_stack(state_dir: Path, *, backoff_base_s: float, backoff_cap_s: float) -> Iterator[Tiny]:
    """The supervisor over ``tiny`` (monitoring every 0.1 s), stopped at the end."""
    settings = free_settings(state_dir, start_timeout_s=30.0)
    port, broken = free_port(), state_dir.parent / "broken"
    spec = ServiceSpec(name="tiny", address=f"127.0.0.1:{port}",
                       command=[sys.executable, "-c", TINY, str(port), str(broken)], env=dict(os.environ),
                       check=lambda: tcp_probe(f"127.0.0.1:{port}"),
                       ports=[PortClaim(port, "TINY_PORT", "tiny")], stop_timeout_s=5.0)
    supervisor = Supervisor(settings, [spec], monitor_interval_s=0.1, backoff_base_s=backoff_base_s,
                            backoff_cap_s=backoff_cap_s)
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    tiny = Tiny(settings, supervisor, broken)
    try:
        tiny.wait_for("running", lambda e: e["state"] == "running")
        yield tiny
    finally:
        supervisor.request_stop()
        thread.join(60)
    assert not thread.is_alive()


def _restarted(n: int, old_pid: int) -> Callable[[dict[str, Any]], bool]:
    """A run-file entry that runs again, after restart ``n``, in a process other than ``old_pid``."""
    def ok(entry: dict[str, Any]) -> bool:
        return entry.get("state") == "running" and entry.get("restarts") == n and entry.get("pid") not in (
            None, old_pid)
    return ok


# --------------------------------------------------------------------------- one tiny service


def test_a_crashing_service_is_restarted_with_doubling_backoff_and_never_given_up(tmp_path: Path) -> None:
    with tiny_stack(tmp_path / "state", backoff_base_s=0.05, backoff_cap_s=0.2) as tiny:
        for n in range(1, 7):  # twice the old limit of 3 restarts
            entry = tiny.wait_for(f"restart {n}", _restarted(n, tiny.kill()))
            assert entry["last_exit"] == -signal.SIGKILL
            assert entry["backoff_s"] == pytest.approx(min(0.05 * 2 ** (n - 1), 0.2))
            assert entry["started_by"] == "backoff"
            assert runfile.pid_alive(entry["pid"], entry["start"])
        assert runfile.restart_summary(entry) == "restarted 6x, last exit -9"


def test_up_restarts_a_killed_service_at_once_and_status_says_it_was_backing_off(tmp_path: Path) -> None:
    with tiny_stack(tmp_path / "state", backoff_base_s=1000.0, backoff_cap_s=1000.0) as tiny:
        old = tiny.kill()
        waiting = tiny.wait_for("backing off", lambda e: e["state"] == "restarting")
        assert re.fullmatch(r"restarting \(1 restart, next try in \d+ s, last exit -9\)",
                            runfile.restart_summary(waiting)), waiting
        assert waiting["next_try_at"] > time.time() + 900  # nothing would restart it during this test

        progress: list[str] = []
        result = control.up(tiny.settings, on_progress=progress.append)
        assert result.already_running and result.restarted == ("tiny",)
        entry = tiny.entry()
        assert entry["state"] == "running" and entry["started_by"] == "up"
        assert entry["pid"] != old and runfile.pid_alive(entry["pid"], entry["start"])
        assert tcp_probe(entry["address"]) is None
        assert re.fullmatch(r"tiny: restarting \(1 restart, next try in \d+ s, last exit -9\); starting it now",
                            progress[0]), progress
        assert progress[-1].startswith("tiny: healthy again at "), progress

        # with everything healthy, up changes nothing
        again = control.up(tiny.settings)
        assert again.already_running and again.restarted == () and tiny.entry()["pid"] == entry["pid"]


def test_up_right_after_a_kill_restarts_the_dead_service(tmp_path: Path) -> None:
    with tiny_stack(tmp_path / "state", backoff_base_s=1000.0, backoff_cap_s=1000.0) as tiny:
        old = tiny.kill()  # the supervisor may not have noticed yet: up asks either way
        result = control.up(tiny.settings)
        assert result.restarted == ("tiny",)
        entry = tiny.entry()
        assert entry["state"] == "running" and entry["pid"] != old and entry["restarts"] == 1


def test_up_names_a_service_that_does_not_come_back(tmp_path: Path) -> None:
    with tiny_stack(tmp_path / "state", backoff_base_s=1000.0, backoff_cap_s=1000.0) as tiny:
        tiny.broken.touch()
        tiny.kill()
        with pytest.raises(Unavailable) as err:
            control.up(tiny.settings)
        assert re.fullmatch(r"tiny did not come back: exited with code 3 while starting, restarting \(2 "
                            r"restarts, next try in \d+ s, last exit 3\); see .*/tiny\.log", err.value.message), \
            err.value.message
        tiny.broken.unlink()  # repaired: the next up brings it back
        assert control.up(tiny.settings).restarted == ("tiny",)
        assert tiny.entry()["state"] == "running"


# --------------------------------------------------------------------------- a whole stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """This module's own whole stack (its Triton is killed repeatedly), stopped when the module ends."""
    with started_stack(tmp_path_factory.mktemp("backoff-stack") / "state") as own:
        yield own


def _triton(settings: Settings) -> dict[str, Any]:
    data = runfile.read_run_file(settings) or {}
    return next(s for s in data.get("services", []) if s["name"] == "triton")


def _wait_triton(settings: Settings, what: str, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while not ok(entry := _triton(settings)):
        if time.monotonic() > deadline:
            pytest.fail(f"triton never reached {what}: {entry}")
        time.sleep(0.1)
    return entry


@pytest.mark.stack
def test_triton_killed_five_times_comes_back_and_status_reports_it(stack: RunningStack) -> None:
    settings = stack.settings
    for n in range(1, 6):  # the old supervisor gave up at the fourth death
        old = _triton(settings)["pid"]
        os.killpg(old, signal.SIGKILL)
        if n < 5:
            _wait_triton(settings, f"restart {n}", _restarted(n, old))
    entry = _wait_triton(settings, "backing off", lambda e: e["restarts"] == 5)
    # the fifth backoff is 16 s (1, 2, 4, 8, 16): status sees it waiting or already starting
    triton = next(s for s in control.status(settings) if s.name == "triton")
    assert re.fullmatch(r"restarting \(5 restarts, (next try in \d+ s|starting now), last exit -9\).*",
                        triton.detail), triton.detail
    assert not triton.healthy
    assert entry["backoff_s"] == 16.0

    result = control.up(settings)  # starts it now rather than after the backoff
    assert result.already_running and result.restarted == ("triton",)
    triton = next(s for s in control.status(settings) if s.name == "triton")
    assert triton.healthy and triton.detail == "ok, restarted 5x, last exit -9", triton
    assert all(s.healthy for s in control.status(settings))


@pytest.mark.stack
def test_cli_up_restarts_a_dead_service_and_status_shows_the_restarts(stack: RunningStack) -> None:
    settings = stack.settings
    env = {**{k: v for k, v in settings.as_env().items() if v}, "COLUMNS": "300"}
    runner = CliRunner()
    before = _triton(settings)
    assert before["state"] == "running"
    os.killpg(before["pid"], signal.SIGKILL)
    assert runfile.wait_gone(before["pid"], before["start"], WAIT_S)  # dead, perhaps not yet noticed
    result = runner.invoke(app, ["up"], env=env)
    assert result.exit_code == 0, result.output
    assert "restarted triton, healthy again" in result.output, result.output
    after = _triton(settings)
    assert after["state"] == "running" and after["restarts"] == before["restarts"] + 1
    assert after["pid"] != before["pid"]
    status = runner.invoke(app, ["status"], env=env)
    assert f"restarted {after['restarts']}x, last exit -9" in status.output, status.output
