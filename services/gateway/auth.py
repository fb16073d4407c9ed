"""API tokens: generated, shown once, stored as sha256 hashes, checked on every mutating call."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from shiftboard.errors import PermissionDenied, Unauthenticated
from shiftboard.services.gateway.catalog import Catalog, Token

TOKEN_PREFIX = "sbt_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The token of an ``authorization: Bearer <token>`` metadata entry, if any."""
    for key, value in metadata:
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class Authenticator:
    """Resolves the caller's token against the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]], *, admin: bool = False) -> Token:
        token = bearer(metadata)
        if token is None:
            raise Unauthenticated("this call needs an API token: pass `authorization: Bearer <token>` "
                                  "(the CLI sends SHIFTBOARD_TOKEN; `shiftboard token create NAME` makes one)")
        found = self.catalog.find_token(hash_token(token))
        if found is None:
            raise Unauthenticated("the API token is not valid: check SHIFTBOARD_TOKEN, or make a new one "
                                  "with `shiftboard token create NAME`")
        if admin and not found.admin:
            raise PermissionDenied(f"token {found.name!r} is not an admin token: ask an admin for this call")
        return found
