"""Small real artefacts for tests, and the one way tests and benchmarks start servers.

- :func:`free_port`: a free port, never the same one twice in a process;
- :func:`free_settings`: settings whose every port (the derived ones too) is free, never a default;
- :func:`start_service`: one service of the stack, from its :class:`ServiceSpec` (the command,
  environment and health probe that ``shiftboard up`` uses), until the ``with`` block ends;
- TorchScript models and digits test sets.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits

from shiftboard.domain.errors import FailedPrecondition
from shiftboard.services.stack import runfile
from shiftboard.services.stack.objectstore_server import object_store_spec
from shiftboard.services.stack.prefect_server import prefect_spec
from shiftboard.services.stack.spec import MAX_PORT, PortClaim, ServiceSpec, port_is_free, validate_ports
from shiftboard.services.stack.specs import gateway_spec, leaderboard_spec
from shiftboard.services.stack.triton import triton_spec
from shiftboard.settings import Settings

# --------------------------------------------------------------------------- ports

#: Every setting that chooses a port a service listens on.
PORT_SETTINGS = ("s3_port", "s3_internal_port", "triton_http_port", "triton_grpc_port", "triton_metrics_port",
                 "prefect_port", "gateway_port", "leaderboard_port")
#: SeaweedFS listens on the object store's ports + 1, + 2 and + 10000 too: keep them valid ports.
_OBJECT_STORE_PORTS = {"s3_port": MAX_PORT - 10000, "s3_internal_port": MAX_PORT - 10002}

_handed_out: set[int] = set()


def free_port(*, below: int = MAX_PORT + 1) -> int:
    """A port nothing listens on now (the kernel's choice), below ``below``, and never one this process
    was given before: two fixtures never get the same port, even when the first has not bound it yet."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < below and port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError(f"the kernel offered no new free port below {below}")


def service_ports(settings: Settings) -> list[PortClaim]:
    """Every port the stack's services would listen on with ``settings`` (derived ones included), and
    every port setting besides (unused ones too: they must not be a default either)."""
    claims = [claim for spec in (object_store_spec(settings, {}), triton_spec(settings, {}),
                                 prefect_spec(settings, {}), gateway_spec(settings, {}),
                                 leaderboard_spec(settings, {}))
              for claim in spec.ports]
    claimed = {c.port for c in claims if c.offset == 0}
    return claims + [PortClaim(getattr(settings, name), name, name) for name in PORT_SETTINGS
                     if getattr(settings, name) not in claimed]


def free_settings(state_dir: Path | str, *, base: Settings | None = None, **overrides: Any) -> Settings:
    """``base`` (default: the defaults) with its state in ``state_dir``, ``overrides`` applied, and every
    port setting not in ``overrides`` on a free port: no default port, no port shared by two services,
    SeaweedFS's derived ports free as well.

    An external object store is reached through ``s3_endpoint``, so its settings can be a ``base``."""
    for _ in range(100):
        ports = {name: free_port(below=_OBJECT_STORE_PORTS.get(name, MAX_PORT + 1))
                 for name in PORT_SETTINGS if name not in overrides}
        fields: dict[str, Any] = {"state_dir": str(state_dir), **ports, **overrides}
        settings = base.replace(**fields) if base is not None else Settings(**fields)
        claims = service_ports(settings)
        try:
            validate_ports(claims)
        except FailedPrecondition:
            continue
        if all(port_is_free(settings.host, c.port) for c in claims):
            _handed_out.update(c.port for c in claims)  # the derived ones too
            return settings
    raise RuntimeError("found no free set of ports for the stack's services")


# --------------------------------------------------------------------------- services


@dataclass(frozen=True)
class Service:
    """A service started by :func:`start_service`: its spec, its process (the leader of its own process
    group) and its log."""

    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def _exit_status(process: subprocess.Popen[bytes]) -> int | None:
    """The exit status (or killing signal) once ``process`` has exited, else None; the process is not
    reaped, so its pid keeps naming its process group until :func:`_stop`."""
    if process.returncode is not None:
        return process.returncode
    try:
        info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
    except ChildProcessError:
        return -1
    return None if info is None else info.si_status


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def start_service(spec: ServiceSpec, log_path: Path, *, timeout_s: float = 120.0) -> Iterator[Service]:
    """Run ``spec``'s command as the stack's supervisor does (its environment plus what ``prepare``
    returns, in a session of its own, output to ``log_path``) until its start-up probe passes; when the
    block ends, stop its whole process group: SIGTERM, SIGKILL after the spec's stop timeout, and SIGKILL
    for helpers the leader left behind."""
    missing = spec.missing_executable()
    if missing:
        raise RuntimeError(missing)
    assert spec.command is not None  # an external service has no program, so missing_executable is None
    env = {**spec.env, **(spec.prepare() if spec.prepare else {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(spec.command, env=env, cwd=spec.cwd, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    try:
        deadline = time.monotonic() + timeout_s
        while (reason := spec.startup_probe()) is not None:
            status = _exit_status(process)
            if status is not None or time.monotonic() > deadline:
                state = f"exited ({status})" if status is not None else f"was not healthy within {timeout_s:.0f} s"
                raise RuntimeError(f"{spec.name} {state}: {reason}; log {log_path}:\n{_log_tail(log_path)}")
            time.sleep(0.2)
        yield Service(spec, process, log_path)
    finally:
        _stop(spec, process)


def _stop(spec: ServiceSpec, process: subprocess.Popen[bytes]) -> None:
    if process.returncode is not None:
        return
    runfile.kill_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + spec.stop_timeout_s + 5
    while _exit_status(process) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    runfile.kill_group(process.pid, signal.SIGKILL)  # the rest of the group (or the leader, when slow)
    process.wait()


# --------------------------------------------------------------------------- artefacts


class Linear(torch.nn.Module):
    def __init__(self, pixels: int, classes: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(pixels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class NaNModel(torch.nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], self.classes), float("nan"))


def torchscript_model(path: Path, *, pixels: int = 64, classes: int = 10, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    torch.jit.script(Linear(pixels, classes)).save(str(path))
    return path


def nan_model(path: Path, classes: int = 10) -> Path:
    torch.jit.script(NaNModel(classes)).save(str(path))
    return path


def eager_pickle(path: Path) -> Path:
    """A model saved with torch.save: a pickle inside a zip, which must be refused."""
    torch.save(Linear(64, 10), str(path))
    return path


def plain_pickle(path: Path) -> Path:
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    return path


def digits(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as uint8 images (0..16 scaled to 0..255) and labels."""
    data = load_digits()
    images = (data.images * (255.0 / 16.0)).round().astype(np.uint8)
    labels = data.target.astype(np.int64)
    return (images[:n], labels[:n]) if n else (images, labels)


def digits_npz(path: Path, n: int = 300) -> Path:
    images, labels = digits(n)
    np.savez(path, images=images, labels=labels)
    return path


def digits_folder(root: Path, n: int = 60) -> Path:
    images, labels = digits(n)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"{i:04d}.png")
    return root
