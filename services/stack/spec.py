"""What the supervisor needs to know about one service: command, environment, ports, health.

A :class:`ServiceSpec` is plain data plus two probes. Building one has no side effects (``status``
builds them too); whatever must exist on disk before the process starts is done by ``prepare``.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shiftboard.domain.errors import FailedPrecondition

MAX_PORT = 65535

#: A health probe: ``None`` when healthy, else a short reason ("connection refused", ...).
Probe = Callable[[], str | None]


@dataclass(frozen=True)
class PortClaim:
    """A port a service listens on, and the setting that chooses it.

    ``offset`` is non-zero for derived ports (SeaweedFS's gRPC ports are 10000 above the HTTP ones),
    so the message can say which setting to change.
    """

    port: int
    setting: str
    what: str
    offset: int = 0

    def _origin(self) -> str:
        if self.offset:
            return f"{self.what}, {self.setting} + {self.offset}"
        return self.setting

    def in_use_message(self) -> str:
        return (f"port {self.port} is in use ({self._origin()}): stop what holds it or set "
                f"{self.setting} to a free port")

    def invalid_message(self) -> str:
        return (f"port {self.port} ({self._origin()}) is not a valid port (1-{MAX_PORT}): "
                f"set {self.setting} lower")


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the stack.

    ``command`` is None for a service the stack does not start (an external object store): the
    supervisor then only waits for it to be healthy. ``ready`` is the start-up probe and may do
    idempotent set-up (create the bucket); ``check`` is a pure probe (``status`` uses it).
    ``prepare`` runs before every start (write config files) and returns extra environment
    variables (secrets that must not sit in a spec that ``status`` builds).
    """

    name: str
    address: str
    command: list[str] | None
    env: dict[str, str]
    check: Probe
    ready: Probe | None = None
    prepare: Callable[[], dict[str, str]] | None = None
    ports: list[PortClaim] = field(default_factory=list)
    stop_timeout_s: float = 10.0
    cwd: str | None = None
    install_hint: str = ""

    def missing_executable(self) -> str | None:
        """A message when the command's program is not installed, else None."""
        if not self.command:
            return None
        program = self.command[0]
        found = shutil.which(program) if os.sep not in program else (
            program if os.path.isfile(program) and os.access(program, os.X_OK) else None)
        if found:
            return None
        hint = f": {self.install_hint}" if self.install_hint else ""
        return f"cannot start {self.name}: {program} is not installed{hint}"

    def startup_probe(self) -> str | None:
        return (self.ready or self.check)()


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (bound the way servers bind: SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def validate_ports(claims: Iterable[PortClaim]) -> None:
    """Raise :class:`FailedPrecondition` for a port out of range or claimed twice."""
    seen: dict[int, PortClaim] = {}
    for claim in claims:
        if not 1 <= claim.port <= MAX_PORT:
            raise FailedPrecondition(claim.invalid_message())
        other = seen.get(claim.port)
        if other is not None:
            raise FailedPrecondition(
                f"port {claim.port} is wanted twice: by {other.what} ({other.setting}) and by "
                f"{claim.what} ({claim.setting}): give them different ports"
            )
        seen[claim.port] = claim


def check_ports_free(host: str, claims: Iterable[PortClaim]) -> None:
    """Raise :class:`FailedPrecondition` naming the first port in use and the setting to change."""
    claims = list(claims)
    validate_ports(claims)
    for claim in claims:
        if not port_is_free(host, claim.port):
            raise FailedPrecondition(claim.in_use_message())
