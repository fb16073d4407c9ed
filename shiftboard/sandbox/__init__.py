"""Operating-system sandbox for every process that runs a submitted model (probe, Triton stub).

    SandboxPolicy   what a process may read, write and use (frozen, keyword-only)
    wrap            the command prefix that enters a policy (the launcher ``enter.py``)
    runtime_paths   the interpreter and packages to bind back when they live under a private /tmp
    capabilities    which mechanisms this kernel enforces, tried in a child process
    require         FailedPrecondition when ``sandbox=required`` and a mechanism is missing
    sanitize/redact model text fit for a submitter: one short printable line, no secrets
"""

from shiftboard.sandbox.policy import (
    ENTER,
    MECHANISMS,
    MODES,
    Capabilities,
    SandboxPolicy,
    active,
    capabilities,
    require,
    runtime_paths,
    status_line,
    wrap,
)
from shiftboard.sandbox.text import REDACTED, redact, sanitize, secret_values

__all__ = ["ENTER", "MECHANISMS", "MODES", "REDACTED", "Capabilities", "SandboxPolicy", "active", "capabilities",
           "redact", "require", "runtime_paths", "sanitize", "secret_values", "status_line", "wrap"]
