"""Text a submitted model produced, made fit to show: one short printable line, secrets redacted."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from shiftboard.settings import Settings

MODEL_TEXT_LIMIT = 200
REDACTED = "[redacted]"
_MIN_SECRET = 8  # shorter values (ports, flags) are not secrets worth hiding and would mangle text
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]+")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every known secret value (at least 8 characters) replaced by ``[redacted]``."""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def sanitize(text: str, secrets: Iterable[str] = (), limit: int = MODEL_TEXT_LIMIT) -> str:
    """A model's message for a submitter: its last non-empty line (a TorchScript traceback's
    exception), printable ASCII only, secrets redacted, at most ``limit`` characters."""
    secrets = list(secrets)
    lines = [line.strip() for line in redact(text, secrets).splitlines() if line.strip()]
    line = _NOT_PRINTABLE.sub(" ", lines[-1] if lines else "").strip()
    line = redact(line, secrets)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def secret_values(settings: Settings) -> list[str]:
    """Every secret this process can know: secret settings and the files in ``<state>/secrets``."""
    values = list(settings.secrets().values())
    try:
        files = [p for p in Path(settings.secrets_dir).rglob("*") if p.is_file()]
    except OSError:
        files = []
    for path in files:
        try:
            text = path.read_text(errors="ignore").strip()
        except OSError:
            continue
        values.append(text)
        try:
            values.extend(str(v) for v in _leaves(json.loads(text)))
        except ValueError:
            values.extend(text.split())
    return [v for v in values if v]


def _leaves(value: object) -> Iterable[object]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value
