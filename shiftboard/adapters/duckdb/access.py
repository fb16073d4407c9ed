"""API tokens (by keyed hash, never the token itself) and test-set uploads in progress."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from shiftboard.adapters.duckdb import database
from shiftboard.adapters.duckdb.database import Database
from shiftboard.domain.errors import AlreadyExists, NotFound

ROLES = ("admin", "submitter", "evaluator")


@dataclass(frozen=True)
class Token:
    name: str
    role: str

    @property
    def admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class TokenRow:
    """A token as ``token list`` shows it (never its hash)."""

    name: str
    role: str
    created_at: dt.datetime
    created_by: str


@dataclass(frozen=True)
class Upload:
    upload_id: str
    testset: str
    num_shards: int
    created_by: str
    expires_at: dt.datetime


class TokenRows(Database):
    """The ``tokens`` table."""

    def put_token(self, name: str, token_hash: str, *, role: str, scheme: str, created_by: str = "",
                  replace: bool = False) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown token role {role!r}")
        with self.transaction() as cur:
            exists = cur.execute("SELECT 1 FROM tokens WHERE name = ?", [name]).fetchone()
            if exists and not replace:
                raise AlreadyExists(f"a token named {name!r} exists: choose another name")
            cur.execute("DELETE FROM tokens WHERE name = ? OR hash = ?", [name, token_hash])
            cur.execute("INSERT INTO tokens (name, hash, scheme, role, created_at, created_by) "
                        "VALUES (?, ?, ?, ?, ?, ?)", [name, token_hash, scheme, role, database.now(), created_by])

    def find_token(self, token_hash: str, scheme: str) -> Token | None:
        rows = self.query("SELECT name, role FROM tokens WHERE hash = ? AND scheme = ?", [token_hash, scheme])
        return Token(rows[0][0], rows[0][1]) if rows else None

    def rehash_token(self, name: str, old_hash: str, token_hash: str, scheme: str) -> None:
        """Replace a token's stored hash (an older scheme's) by one of ``scheme``."""
        with self.transaction() as cur:
            cur.execute("UPDATE tokens SET hash = ?, scheme = ? WHERE name = ? AND hash = ?",
                        [token_hash, scheme, name, old_hash])

    def list_tokens(self) -> list[TokenRow]:
        rows = self.query("SELECT name, role, created_at, created_by FROM tokens ORDER BY name")
        return [TokenRow(*r) for r in rows]

    def delete_token(self, name: str) -> None:
        with self.transaction() as cur:
            if not cur.execute("SELECT 1 FROM tokens WHERE name = ?", [name]).fetchone():
                raise NotFound(f"no token named {name!r}: `shiftboard token list` shows the tokens")
            cur.execute("DELETE FROM tokens WHERE name = ?", [name])


class UploadRows(Database):
    """The ``uploads`` table: test sets whose shards are being uploaded."""

    def add_upload(self, upload: Upload) -> None:
        with self.transaction() as cur:
            cur.execute("INSERT INTO uploads VALUES (?, ?, ?, ?, ?)",
                        [upload.upload_id, upload.testset, upload.num_shards, upload.created_by,
                         upload.expires_at])

    def get_upload(self, upload_id: str) -> Upload | None:
        rows = self.query("SELECT upload_id, testset, num_shards, created_by, expires_at FROM uploads "
                           "WHERE upload_id = ?", [upload_id])
        return Upload(*rows[0]) if rows else None

    def list_uploads(self) -> list[Upload]:
        rows = self.query("SELECT upload_id, testset, num_shards, created_by, expires_at FROM uploads "
                          "ORDER BY expires_at")
        return [Upload(*r) for r in rows]

    def delete_upload(self, upload_id: str) -> None:
        with self.transaction() as cur:
            cur.execute("DELETE FROM uploads WHERE upload_id = ?", [upload_id])

    def expired_uploads(self, now: dt.datetime | None = None) -> list[str]:
        rows = self.query("SELECT upload_id FROM uploads WHERE expires_at < ?", [now or database.now()])
        return [r[0] for r in rows]
