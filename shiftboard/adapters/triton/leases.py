"""The deployer's bookkeeping shared by every worker process: last use per model and live leases.

A small JSON file next to the models, ``<repository>/.shiftboard-deployments.json``, read and
written under an exclusive ``flock`` on ``.shiftboard-deployments.lock``; Triton ignores files in
the repository root. A lease belongs to a process: it dies with it (same host: the pid is checked)
or expires after ``LEASE_TTL_S`` without renewal (another host sharing the repository).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["LEASE_TTL_S", "LOCK_FILE", "REGISTRY_FILE", "Lease", "Registry", "lease_alive"]

REGISTRY_FILE = ".shiftboard-deployments.json"
LOCK_FILE = ".shiftboard-deployments.lock"
LEASE_TTL_S = 3600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lease_alive(lease: dict[str, Any], now: float) -> bool:
    """Whether a lease record still holds: not expired, and its process alive when on this host."""
    if float(lease.get("expires", 0)) < now:
        return False
    if lease.get("host") == socket.gethostname():
        return _pid_alive(int(lease.get("pid", 0)))
    return True


class Registry:
    """The JSON bookkeeping of one repository, only touched inside ``locked()``."""

    def __init__(self, repo: Path) -> None:
        self.path = repo / REGISTRY_FILE
        self.lock_path = repo / LOCK_FILE

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """Exclusive access to the registry data; changes are written back atomically on exit."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = self._read()
                before = json.dumps(data, sort_keys=True)
                yield data
                now = time.time()
                data["leases"] = {k: v for k, v in data["leases"].items() if lease_alive(v, now)}
                if json.dumps(data, sort_keys=True) != before:
                    self._write(data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def add_lease(data: dict[str, Any], model_name: str) -> str:
        """Record a lease of this process on ``model_name`` in locked ``data``; return its id."""
        lease_id = uuid.uuid4().hex
        data["leases"][lease_id] = {"model": model_name, "host": socket.gethostname(), "pid": os.getpid(),
                                    "expires": time.time() + LEASE_TTL_S}
        data["last_used"][model_name] = time.time()
        return lease_id

    @staticmethod
    def leased_models(data: dict[str, Any]) -> set[str]:
        """The models of locked ``data`` that a live lease holds."""
        now = time.time()
        return {lease["model"] for lease in data["leases"].values() if lease_alive(lease, now)}

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError):
            log.warning("deployment registry %s is unreadable; starting it afresh", self.path)
            data = {}
        data.setdefault("last_used", {})
        data.setdefault("leases", {})
        return data

    def _write(self, data: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=REGISTRY_FILE, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


class Lease:
    """A claim that a model is being evaluated: the deployer will not unload it meanwhile."""

    def __init__(self, registry: Registry, model_name: str, lease_id: str, max_batch_size: int) -> None:
        self.registry = registry
        self.model_name = model_name
        self.lease_id = lease_id
        self.max_batch_size = max_batch_size
        self._released = False

    def renew(self) -> None:
        """Push the expiry ``LEASE_TTL_S`` ahead (call it now and then during long evaluations)."""
        with self.registry.locked() as data:
            lease = data["leases"].get(self.lease_id)
            if lease is not None:
                lease["expires"] = time.time() + LEASE_TTL_S
            data["last_used"][self.model_name] = time.time()

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        with self.registry.locked() as data:
            data["leases"].pop(self.lease_id, None)
            data["last_used"][self.model_name] = time.time()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
