"""The run file's process helpers: a recorded (pid, start) names one process, never a reused pid."""

from __future__ import annotations

import os
import subprocess
import sys

from shiftboard.services.stack import runfile


def test_a_running_process_matches_its_recorded_start() -> None:
    start = runfile.process_start(os.getpid())
    assert start is not None
    assert runfile.pid_alive(os.getpid(), start)
    assert runfile.pid_alive(os.getpid())


def test_a_different_start_means_another_process() -> None:
    """A pid reused after a crash has another start time: it is not ours."""
    start = runfile.process_start(os.getpid())
    assert start is not None
    assert not runfile.pid_alive(os.getpid(), f"{float(start) - 10:.2f}")


def test_finished_processes_are_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # exited and reaped
    assert runfile.process_start(child.pid) is None
    assert not runfile.pid_alive(child.pid)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    try:
        assert runfile.process_start(zombie.pid) is None
        assert not runfile.pid_alive(zombie.pid)
    finally:
        zombie.wait()
    assert not runfile.pid_alive(0) and not runfile.pid_alive(None)
