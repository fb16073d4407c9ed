"""The catalog: models, test sets, shards, uploads and API tokens in one DuckDB file.

DuckDB allows one read-write process per file and no reader elsewhere while it is open, so the
gateway is the catalog's only owner; everyone else goes through the gRPC API. The schema is
versioned: ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1`` and runs once, in a
transaction, recorded in ``schema_migrations``.

:class:`Catalog` is the one object over the file; its tables are grouped by concern:

* :mod:`.database`: the connection, transactions and queries (DuckDB's errors translated once, in
  :mod:`.errors`); :mod:`.schema`: the migrations;
* :mod:`.access`: API tokens and uploads in progress;
* :mod:`.registry`: models, test sets, their shards and the shards' labels;
* :mod:`.imported`: imported results and the settings they declare.

Evaluations and predictions are kept in the same file by :class:`~.evaluations.Evaluations`.
"""

from __future__ import annotations

from shiftboard.adapters.duckdb.access import ROLES, Token, TokenRow, TokenRows, Upload, UploadRows
from shiftboard.adapters.duckdb.imported import (
    DeclaredTestSet,
    ImportedRow,
    ImportedSourceRow,
    ImportOutcome,
    ImportRows,
)
from shiftboard.adapters.duckdb.registry import ModelRows, TestSetRows
from shiftboard.adapters.duckdb.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "MIGRATIONS", "ROLES", "SCHEMA_VERSION", "Catalog", "DeclaredTestSet", "ImportOutcome", "ImportedRow",
    "ImportedSourceRow", "Token", "TokenRow", "Upload",
]


class Catalog(TokenRows, UploadRows, ModelRows, TestSetRows, ImportRows):
    """Thread-safe access to the catalog file (one connection, one lock: catalog calls are small)."""
