"""The DuckDB adapter's one translation of DuckDB's errors, against real DuckDB files and processes."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import duckdb
import pytest

from shiftboard.adapters.duckdb import errors
from shiftboard.adapters.duckdb.catalog import SCHEMA_VERSION, Catalog
from shiftboard.domain.errors import AlreadyExists, FailedPrecondition, ResourceExhausted, ShiftboardError, Unavailable


def test_every_duckdb_error_class_is_translated_or_named_a_defect() -> None:
    translated = tuple(cls for cls, _ in errors.TRANSLATIONS)
    classes = [cls for _, cls in inspect.getmembers(duckdb, inspect.isclass) if issubclass(cls, duckdb.Error)]
    assert len(classes) > 20, classes  # the module's classes were found
    unclassified = [cls.__name__ for cls in classes if not issubclass(cls, translated) and cls not in errors.DEFECTS]
    assert not unclassified, f"classify these DuckDB errors in shiftboard/adapters/duckdb/errors.py: {unclassified}"
    both = [cls.__name__ for cls in errors.DEFECTS if issubclass(cls, translated)]
    assert not both, f"listed as defects but translated: {both}"


def test_a_catalog_open_in_another_process_is_unavailable_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "catalog.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from shiftboard.adapters.duckdb.catalog import Catalog
            catalog = Catalog({str(path)!r})
            print("open", flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(Unavailable, match="open in another process") as info:
            Catalog(path)
        assert "SHIFTBOARD_CATALOG_PATH" in info.value.message
        assert isinstance(info.value.__cause__, duckdb.IOException)
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0
    with closing(Catalog(path)) as catalog:  # free again once the other process is gone
        assert catalog.schema_version == SCHEMA_VERSION


def test_a_duplicate_key_is_already_exists_and_the_transaction_is_rolled_back(tmp_path: Path) -> None:
    with closing(Catalog(tmp_path / "catalog.duckdb")) as catalog:
        insert = "INSERT INTO declared_testsets VALUES (?, 'natural', 'ref', [], NULL, '', '', 'src')"
        with catalog.transaction() as cur:
            cur.execute(insert, ["one"])
        with pytest.raises(AlreadyExists, match="holds this row already"), catalog.transaction() as cur:
            cur.execute(insert, ["two"])
            cur.execute(insert, ["one"])
        assert catalog.query("SELECT name FROM declared_testsets ORDER BY name") == [("one",)]


def test_running_out_of_memory_is_resource_exhausted_naming_the_setting(tmp_path: Path) -> None:
    with closing(Catalog(tmp_path / "catalog.duckdb", memory_mb=16)) as catalog:
        with pytest.raises(ResourceExhausted, match="SHIFTBOARD_CATALOG_MEMORY_MB") as info:
            catalog.query("SELECT string_agg(x::VARCHAR, ',') FROM range(20000000) t(x)")
        assert isinstance(info.value.__cause__, duckdb.OutOfMemoryException)
        assert catalog.query("SELECT 1") == [(1,)]  # still usable


def test_a_defect_of_the_adapter_is_not_dressed_up_as_a_request_error(tmp_path: Path) -> None:
    with closing(Catalog(tmp_path / "catalog.duckdb")) as catalog:
        with pytest.raises(duckdb.CatalogException) as info:
            catalog.query("SELECT * FROM no_such_table")
        assert not isinstance(info.value, ShiftboardError)
        with pytest.raises(duckdb.ConstraintException, match="NOT NULL"), catalog.transaction() as cur:
            cur.execute("INSERT INTO uploads VALUES ('u', NULL, 1, 'me', now())")
        assert catalog.query("SELECT count(*) FROM uploads") == [(0,)]


def test_a_catalog_newer_than_the_code_is_refused_and_released(tmp_path: Path) -> None:
    path = tmp_path / "catalog.duckdb"
    with closing(Catalog(path)) as catalog, catalog.transaction() as cur:
        cur.execute("INSERT INTO schema_migrations VALUES (?, now())", [SCHEMA_VERSION + 1])
    with pytest.raises(FailedPrecondition, match=f"schema version {SCHEMA_VERSION + 1}, newer .*upgrade shiftboard") \
            as info:
        Catalog(path)
    # while the error (and the half-built catalog its traceback holds) is alive, another process can open the file
    check = (f"import duckdb; conn = duckdb.connect({str(path)!r}); "
             "print(conn.execute('SELECT max(version) FROM schema_migrations').fetchone()[0])")
    opened = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.strip() == str(SCHEMA_VERSION + 1)
    assert info.value.message.startswith(f"catalog {path}")
