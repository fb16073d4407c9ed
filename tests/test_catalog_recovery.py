"""A catalog survives a process killed right after opening it, migrations included.

DuckDB 1.5 cannot replay ``ALTER TABLE ... ADD COLUMN`` from its write-ahead log when the table has a
column whose default calls a function, so a gateway killed (SIGKILL) after a migration and before
the next checkpoint left a catalog that no longer opened ("Failure while replaying WAL file").
The processes here are real and really die with ``os._exit`` (no clean close, no checkpoint).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

from shiftboard.adapters.duckdb.database import Database
from shiftboard.adapters.duckdb.schema import MIGRATIONS, SCHEMA_VERSION


def _open_and_die(path: Path) -> None:
    code = textwrap.dedent(f"""
        import os
        from shiftboard.adapters.duckdb.database import Database
        catalog = Database({str(path)!r})  # kept open: a closed connection would checkpoint
        os._exit(0)  # killed: no close, no checkpoint
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def _version(path: Path) -> int:
    """The schema version, read by a fresh process (as the restarted gateway would: a process that has
    used DuckDB before may replay the log where a fresh one fails)."""
    code = textwrap.dedent(f"""
        import duckdb
        with duckdb.connect({str(path)!r}) as conn:
            print(conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip())


def test_a_new_catalog_opens_after_its_process_was_killed(tmp_path: Path) -> None:
    path = tmp_path / "catalog.duckdb"
    _open_and_die(path)
    assert _version(path) == SCHEMA_VERSION
    Database(path).close()


def test_a_catalog_migrated_by_a_killed_process_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "catalog.duckdb"
    # A catalog of schema version 7, written (and checkpointed) by an earlier release.
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
        for version, sql in enumerate(MIGRATIONS[:7], start=1):
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
    _open_and_die(path)  # migrates 7 -> latest, then dies
    assert _version(path) == SCHEMA_VERSION
    Database(path).close()
