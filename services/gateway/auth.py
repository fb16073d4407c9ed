"""API tokens and roles: generated, shown once, stored as keyed hashes, checked on every call.

A token has one role (:data:`ROLES`):

* ``admin``: everything, including making and revoking tokens;
* ``submitter``: submit models and test sets, delete its own models, request evaluations, read;
* ``evaluator``: what the worker does: start, commit and finish evaluations, request evaluations
  (the sweep), read.

The catalog keeps ``HMAC-SHA256(key, token)``, with a 32-byte key generated at the gateway's first
start (``<state>/secrets/token-key``, mode 0600): a copy of the catalog alone does not allow testing
guesses offline, and a lookup stays one equality on an indexed column. Rows written before roles
existed hold plain ``sha256(token)``; such a token is accepted once more and its row rehashed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from shiftboard.adapters.duckdb.catalog import ROLES, Catalog, Token
from shiftboard.domain.errors import PermissionDenied, Unauthenticated

TOKEN_PREFIX = "sbt_"
SCHEME = "hmac-sha256"
LEGACY_SCHEME = "sha256"

ADMIN, SUBMITTER, EVALUATOR = "admin", "submitter", "evaluator"
assert (ADMIN, SUBMITTER, EVALUATOR) == ROLES

#: Who may call what (the roles of the interceptor's policies, :data:`.interceptor.POLICIES`).
ADMINS = frozenset({ADMIN})
SUBMITTERS = frozenset({ADMIN, SUBMITTER})
EVALUATORS = frozenset({ADMIN, EVALUATOR})
ANY_ROLE = frozenset(ROLES)

Metadata = Iterable[tuple[str, str | bytes]]


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def legacy_hash(token: str) -> str:
    """The unkeyed hash of catalogs made before keyed hashes (kept to recognise and upgrade them)."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(metadata: Metadata) -> str | None:
    """The token of an ``authorization: Bearer <token>`` metadata entry, if any."""
    for key, value in metadata:
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def describe_roles(roles: frozenset[str]) -> str:
    return " or ".join(r for r in ROLES if r in roles)


class Authenticator:
    """Resolves the caller's token against the catalog and checks its role."""

    def __init__(self, catalog: Catalog, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the token key must be at least 16 bytes")
        self.catalog = catalog
        self._key = key

    def hash(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    def register(self, name: str, token: str, *, role: str, created_by: str = "", replace: bool = False) -> None:
        """Store ``token`` (its keyed hash) under ``name`` with ``role``."""
        self.catalog.put_token(name, self.hash(token), role=role, scheme=SCHEME, created_by=created_by,
                               replace=replace)

    def find(self, token: str) -> Token | None:
        """The token's catalog entry, or None; a legacy sha256 row found here is rehashed."""
        keyed = self.hash(token)
        found = self.catalog.find_token(keyed, SCHEME)
        if found is not None:
            return found
        old = legacy_hash(token)
        found = self.catalog.find_token(old, LEGACY_SCHEME)
        if found is not None:
            self.catalog.rehash_token(found.name, old, keyed, SCHEME)
        return found

    def identify(self, metadata: Metadata) -> Token | None:
        """The caller's valid token, or None (no token, or one that is not valid): for open reads."""
        token = bearer(metadata)
        return self.find(token) if token is not None else None

    def authenticate(self, metadata: Metadata, *, roles: frozenset[str] = ANY_ROLE, call: str = "this call") -> Token:
        token = bearer(metadata)
        if token is None:
            raise Unauthenticated("this call needs an API token: pass `authorization: Bearer <token>` "
                                  "(the CLI sends SHIFTBOARD_TOKEN; `shiftboard token create NAME` makes one)")
        found = self.find(token)
        if found is None:
            raise Unauthenticated("the API token is not valid: check SHIFTBOARD_TOKEN, or make a new one "
                                  "with `shiftboard token create NAME`")
        if found.role not in roles:
            if roles == ADMINS:
                raise PermissionDenied(f"token {found.name!r} is not an admin token (its role is {found.role}): "
                                       f"{call} needs an admin token; ask an admin")
            raise PermissionDenied(f"token {found.name!r} has the role {found.role}, which may not use {call}: "
                                   f"it needs a token with the role {describe_roles(roles)}")
        return found
