"""What a sandboxed process may do (:class:`SandboxPolicy`), what this kernel can enforce
(:func:`capabilities`), and the command prefix that enforces it (:func:`wrap`).

The launcher is :mod:`shiftboard.sandbox.enter` (standard library only), run as
``python -I enter.py --policy JSON -- CMD...``; its docstring lists the mechanisms. A submitted model
runs as root without any capability (or as the caller, mapped to root in a user namespace, when the
caller is not root), not as ``nobody``: Triton's Python-backend stub must open the shared-memory
region that Triton (root) creates with mode 0644, and an interpreter installed under a 0700 home
(pyenv under /root) is unreadable to ``nobody``. The mount namespace therefore carries the file
guarantees: the whole tree is read-only, the state directory (secrets, catalog, every model's
artifacts) is an empty tmpfs but for what is bound back, /tmp, /run and /dev are private.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from shiftboard.domain.errors import FailedPrecondition
from shiftboard.settings import Settings, env_name

ENTER = Path(__file__).with_name("enter.py")
MODES = ("required", "best-effort", "off")
# Variables a model process keeps from its parent; everything else (tokens, S3 keys) is dropped.
ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH", "PYTHONPATH",
            "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")
# The mechanisms :func:`capabilities` tries, in the order the launcher applies them.
MECHANISMS = {
    "namespaces": "mount and network namespaces (and a user namespace when not root)",
    "mounts": "read-only tree, hidden state directory, private /tmp /run /dev (open_tree, mount_setattr)",
    "rlimits": "CPU-time, data-segment, file-size and open-file limits",
    "privileges": "every capability dropped, no_new_privs",
    "seccomp": "seccomp filter (ptrace, mount, namespaces, modules, keyrings, bpf, io_uring, inet sockets)",
}


@dataclass(frozen=True, kw_only=True)
class SandboxPolicy:
    """What one sandboxed process may touch. Paths are absolute; the network is always off.

    ``hide``: directories covered by an empty tmpfs; ``read``: paths bound back read-only (typically
    inside a hidden directory); ``write``: scratch paths bound read-write. ``memory_bytes`` bounds
    the data segment (``RLIMIT_DATA``: torch's allocations, not its virtual reservations),
    ``cpu_seconds`` the CPU time (SIGXCPU, SIGKILL 5 s later), ``file_bytes`` any file written.
    ``uid``/``gid``: drop to them (root only); ``None`` keeps the uid without capabilities.
    """

    hide: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    memory_bytes: int = 0
    cpu_seconds: int = 0
    file_bytes: int = 0
    open_files: int = 1024
    tmp_bytes: int = 64 * 1024 * 1024
    uid: int | None = None
    gid: int | None = None
    seccomp: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    env_keep: tuple[str, ...] = ENV_KEEP
    cwd: str = "/"
    model_repository: str = ""

    def __post_init__(self) -> None:
        for name in ("hide", "read", "write"):
            paths = tuple(os.path.realpath(p) for p in getattr(self, name))
            object.__setattr__(self, name, paths)
        for name in ("memory_bytes", "cpu_seconds", "file_bytes", "open_files", "tmp_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"sandbox {name} must not be negative")
        if (self.uid is None) != (self.gid is None):
            raise ValueError("give both uid and gid, or neither")

    def to_json(self) -> str:
        data = asdict(self)
        data["env"] = dict(self.env)
        return json.dumps(data, separators=(",", ":"))


#: Directories every sandbox covers with a private tmpfs (see ``enter.ALWAYS_HIDDEN``).
PRIVATE_ROOTS = ("/tmp", "/var/tmp", "/run", "/var/run", "/dev/shm")


def runtime_paths() -> tuple[str, ...]:
    """What a sandboxed Python process needs to run that the private ``/tmp`` (``/run``, ...) would
    cover: the interpreter, its standard library and shared library, the environment's packages and
    this package's source tree, each only when it lies under one of :data:`PRIVATE_ROOTS` (a checkout
    or a virtual environment in ``/tmp``). Elsewhere they stay visible, read-only, anyway."""
    import sysconfig

    import shiftboard

    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
                  sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                  str(sysconfig.get_config_var("LIBDIR") or ""),
                  str(Path(shiftboard.__file__).resolve().parent.parent)}
    out: list[str] = []
    for path in sorted(os.path.realpath(c) for c in candidates if c):
        private = any(path == root or path.startswith(root + "/") for root in PRIVATE_ROOTS)
        if private and os.path.exists(path) and not any(path.startswith(kept + "/") for kept in out):
            out.append(path)
    return tuple(out)


def wrap(cmd: list[str], policy: SandboxPolicy, *, python: str | None = None) -> list[str]:
    """``cmd`` prefixed with the launcher that enters ``policy`` first."""
    return [python or sys.executable, "-I", str(ENTER), "--policy", policy.to_json(), "--", *cmd]


@dataclass(frozen=True)
class Capabilities:
    """Which mechanisms work here (``results``: name -> ``None`` when it works, else why not)."""

    results: Mapping[str, str | None]

    @property
    def missing(self) -> list[str]:
        return [name for name, problem in self.results.items() if problem is not None]

    @property
    def complete(self) -> bool:
        return not self.missing

    def describe(self) -> str:
        if self.complete:
            return "all mechanisms in force: " + ", ".join(self.results)
        return "; ".join(f"{name}: {problem}" for name, problem in self.results.items() if problem) + \
            " (in force: " + (", ".join(n for n, p in self.results.items() if p is None) or "none") + ")"


@lru_cache(maxsize=1)
def capabilities() -> Capabilities:
    """Try every mechanism in a child process (``enter.py --check``); cached for the process."""
    try:
        proc = subprocess.run([sys.executable, "-I", str(ENTER), "--check"], capture_output=True, text=True,
                              timeout=30, check=False)
        results = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        return Capabilities({name: f"the check did not run ({exc})" for name in MECHANISMS})
    return Capabilities({name: results.get(name, "not checked") for name in MECHANISMS})


def active(settings: Settings) -> bool:
    """Whether model processes run sandboxed under ``settings`` (raises when required and incomplete)."""
    if settings.sandbox == "off":
        return False
    require(settings)
    return True


def require(settings: Settings) -> Capabilities:
    """Raise :class:`FailedPrecondition` when ``sandbox=required`` and a mechanism is missing."""
    caps = capabilities()
    if settings.sandbox == "required" and not caps.complete:
        raise FailedPrecondition(
            "the kernel lacks sandbox mechanisms for submitted models: " + caps.describe() +
            f". Fix the kernel or its settings, or opt out explicitly with {env_name('sandbox')}=best-effort "
            "(use what works) or off (submitted models run unconfined, with the server's rights)")
    return caps


def status_line(settings: Settings) -> tuple[bool, str]:
    """``(healthy, text)`` for ``shiftboard status``."""
    if settings.sandbox == "off":
        return False, f"OFF ({env_name('sandbox')}=off): submitted models run with the server's rights"
    caps = capabilities()
    if caps.complete:
        return True, caps.describe()
    healthy = settings.sandbox == "best-effort"
    return healthy, ("missing " if healthy else "refusing to start, missing ") + caps.describe()
