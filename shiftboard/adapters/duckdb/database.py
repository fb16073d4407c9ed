"""The catalog file: one DuckDB connection, one lock, transactions and queries, errors translated.

DuckDB allows one read-write process per file and no reader elsewhere while it is open, so the
gateway is the file's only owner; everyone else goes through the gRPC API. Catalog calls are small,
so one connection serialised by a lock serves every thread of the gateway.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
from google.protobuf.timestamp_pb2 import Timestamp

from shiftboard.adapters.duckdb.errors import translated
from shiftboard.adapters.duckdb.schema import migrate


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def timestamp(value: dt.datetime) -> Timestamp:
    """A stored TIMESTAMPTZ as a protobuf ``Timestamp``."""
    out = Timestamp()
    out.FromDatetime(value.astimezone(dt.UTC).replace(tzinfo=None))
    return out


class Database:
    """Thread-safe access to the catalog file (opened and migrated on construction)."""

    def __init__(self, path: Path | str, *, memory_mb: int = 0) -> None:
        """Open (and migrate) the catalog; ``memory_mb`` > 0 bounds DuckDB's memory (block cache and
        queries; larger operations spill to disk), 0 keeps DuckDB's default (80% of the machine)."""
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = (
            {"memory_limit": f"{memory_mb}MB"} if memory_mb > 0 else {})
        with translated(self.path):
            self._conn = duckdb.connect(self.path, config=config)
        self._lock = threading.RLock()
        try:
            while True:  # one transaction per migration (see migrate)
                with self.transaction() as cur:
                    applied = migrate(cur, self.path, limit=1)
                if not applied:
                    break
                with self._lock, translated(self.path):  # the change out of the write-ahead log (see migrate)
                    self._conn.execute("CHECKPOINT")
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor in a transaction: committed when the block ends, rolled back when it raises."""
        with self._lock, translated(self.path):
            cur = self._conn.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._lock, translated(self.path):
            cur = self._conn.cursor()
            try:
                return cur.execute(sql, list(params)).fetchall()
            finally:
                cur.close()

    @property
    def schema_version(self) -> int:
        return int(self.query("SELECT max(version) FROM schema_migrations")[0][0])
