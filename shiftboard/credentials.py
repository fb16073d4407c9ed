"""Generated secrets of the embedded stack: S3 credentials and the admin API token.

Settings win when they give a value (``SHIFTBOARD_S3_ACCESS_KEY``, ``SHIFTBOARD_ADMIN_TOKEN``, ...);
otherwise the values are generated at first start and kept in ``<state_dir>/secrets`` with mode
0600, so that the CLI on the same machine finds them and nothing secret ever lives in the repository.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from shiftboard.settings import Settings


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def s3_credentials_file(settings: Settings) -> Path:
    return settings.secrets_dir / "s3.json"


def admin_token_file(settings: Settings) -> Path:
    return settings.secrets_dir / "admin-token"


def s3_credentials(settings: Settings, *, create: bool = False) -> S3Credentials | None:
    """The S3 credentials: from settings, else from the state directory (generated if ``create``)."""
    if settings.s3_access_key and settings.s3_secret_key:
        return S3Credentials(settings.s3_access_key, settings.s3_secret_key)
    path = s3_credentials_file(settings)
    if path.exists():
        data = json.loads(path.read_text())
        return S3Credentials(data["access_key"], data["secret_key"])
    if not create:
        return None
    creds = S3Credentials("sb" + secrets.token_hex(9), secrets.token_urlsafe(30))
    _write_private(path, json.dumps({"access_key": creds.access_key, "secret_key": creds.secret_key}))
    return creds


def admin_token(settings: Settings, *, create: bool = False) -> str | None:
    """The admin API token: from settings, else from the state directory (generated if ``create``)."""
    if settings.admin_token:
        return settings.admin_token
    path = admin_token_file(settings)
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    token = "sbt_" + secrets.token_urlsafe(32)
    _write_private(path, token + "\n")
    return token


def client_token(settings: Settings) -> str | None:
    """The token the CLI sends: ``SHIFTBOARD_TOKEN``, else the local admin token when readable."""
    if settings.token:
        return settings.token
    try:
        return admin_token(settings)
    except OSError:
        return None
