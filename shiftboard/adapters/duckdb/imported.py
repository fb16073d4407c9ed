"""Imported results: accuracy-only points with provenance, their models, and the settings they declare."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shiftboard.adapters.duckdb.database import Database, now

if TYPE_CHECKING:
    from shiftboard.testbed import ImportedResults, Setting


@dataclass(frozen=True)
class ImportOutcome:
    """What one import changed: points written, already there (same version), removed (older version)."""

    stored: int
    unchanged: int
    replaced: int
    declared: int


@dataclass(frozen=True)
class ImportedSourceRow:
    source: str
    version: str
    url: str
    format: str
    imported_at: dt.datetime
    created_by: str
    models: int
    points: int


@dataclass(frozen=True)
class ImportedRow:
    """One imported point with its model's category and provenance (the latest source's when several
    sources give the same model on the same test set)."""

    model: str
    testset: str
    accuracy: float
    samples: int | None
    category: str
    testbed_type: str
    source: str
    version: str
    url: str


@dataclass(frozen=True)
class DeclaredTestSet:
    name: str
    kind: str
    reference: str
    groups: tuple[str, ...]
    samples: int | None
    class_protocol: str
    title: str
    source: str



class ImportRows(Database):
    """The ``imported_sources``, ``imported_models``, ``imported_points`` and ``declared_testsets`` tables."""

    def import_results(self, results: ImportedResults, declared: Sequence[Setting], created_by: str) -> ImportOutcome:
        """Store a file's points, models and declared settings in one transaction.

        The same version of a source changes nothing; another version replaces the source's models
        and points. A declared setting is kept (not overwritten) when it is declared already.
        """
        import pyarrow as pa

        prov = results.provenance
        with self.transaction() as cur:
            row = cur.execute("SELECT version FROM imported_sources WHERE source = ?", [prov.source]).fetchone()
            if row is not None and row[0] == prov.version:
                count = cur.execute("SELECT count(*) FROM imported_points WHERE source = ?", [prov.source]).fetchone()
                return ImportOutcome(stored=0, unchanged=int(count[0]) if count else 0, replaced=0, declared=0)
            replaced = 0
            if row is not None:
                gone = cur.execute("SELECT count(*) FROM imported_points WHERE source = ?", [prov.source]).fetchone()
                replaced = int(gone[0]) if gone else 0
                for table in ("imported_points", "imported_models", "imported_sources"):
                    cur.execute(f"DELETE FROM {table} WHERE source = ?", [prov.source])
            cur.execute("INSERT INTO imported_sources VALUES (?, ?, ?, ?, ?, ?)",
                        [prov.source, prov.version, prov.url, prov.format, now(), created_by])
            models = list(results.models.values())
            cur.register("incoming_models", pa.table({
                "name": [m.name for m in models], "category": [m.category or "other" for m in models],
                "testbed_type": [m.testbed_type or "" for m in models], "source": [prov.source] * len(models)}))
            points = results.points
            cur.register("incoming_points", pa.table({
                "model": [p.model for p in points], "testset": [p.testset for p in points],
                "accuracy": pa.array([p.accuracy for p in points], pa.float64()),
                "samples": pa.array([p.samples for p in points], pa.int64()),
                "correct": pa.array([p.correct for p in points], pa.int64()),
                "source": [prov.source] * len(points), "version": [prov.version] * len(points),
                "url": [p.url or prov.url for p in points]}))
            try:
                cur.execute("INSERT INTO imported_models SELECT * FROM incoming_models")
                cur.execute("INSERT INTO imported_points SELECT * FROM incoming_points")
            finally:
                cur.unregister("incoming_models")
                cur.unregister("incoming_points")
            known = {r[0] for r in cur.execute("SELECT name FROM declared_testsets").fetchall()}
            fresh = [d for d in declared if d.name not in known]
            if fresh:
                cur.executemany("INSERT INTO declared_testsets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                [[d.name, d.kind, d.reference or "", list(d.groups), d.samples,
                                  d.class_protocol or "", d.title, prov.source] for d in fresh])
            return ImportOutcome(stored=len(points), unchanged=0, replaced=replaced, declared=len(fresh))

    def list_imported_sources(self) -> list[ImportedSourceRow]:
        rows = self.query(
            "SELECT s.source, s.version, s.url, s.format, s.imported_at, s.created_by, "
            "(SELECT count(*) FROM imported_models m WHERE m.source = s.source), "
            "(SELECT count(*) FROM imported_points p WHERE p.source = s.source) "
            "FROM imported_sources s ORDER BY s.source")
        return [ImportedSourceRow(*r) for r in rows]

    def imported_points(self, testsets: Sequence[str] | None = None) -> list[ImportedRow]:
        """Imported points on ``testsets`` (all when None), one per (model, test set): the latest source's."""
        where, params = "", list(testsets or [])
        if testsets is not None:
            if not testsets:
                return []
            where = f"WHERE p.testset IN ({', '.join('?' * len(testsets))})"
        rows = self.query(
            "SELECT p.model, p.testset, p.accuracy, p.samples, m.category, m.testbed_type, p.source, p.version, p.url "
            "FROM imported_points p JOIN imported_models m ON m.name = p.model AND m.source = p.source "
            f"JOIN imported_sources s ON s.source = p.source {where} "
            "QUALIFY row_number() OVER (PARTITION BY p.model, p.testset ORDER BY s.imported_at DESC, p.source) = 1 "
            "ORDER BY p.testset, p.model", params)
        return [ImportedRow(*r) for r in rows]

    def imported_model(self, name: str) -> tuple[str, str] | None:
        """(category, source) of an imported model named ``name`` (the latest source's), or None."""
        rows = self.query("SELECT m.category, m.source FROM imported_models m JOIN imported_sources s "
                          "ON s.source = m.source WHERE m.name = ? ORDER BY s.imported_at DESC LIMIT 1", [name])
        return (rows[0][0], rows[0][1]) if rows else None

    def declared_testsets(self, *, name: str | None = None, group: str | None = None) -> list[DeclaredTestSet]:
        """Declared settings that are not registered test sets, optionally one name or one group."""
        sql = ("SELECT name, kind, reference, groups, samples, class_protocol, title, source FROM declared_testsets d "
               "WHERE NOT EXISTS (SELECT 1 FROM testsets t WHERE t.name = d.name)")
        params: list[object] = []
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        if group is not None:
            sql += " AND list_contains(groups, ?)"
            params.append(group)
        rows = self.query(sql + " ORDER BY name", params)
        return [DeclaredTestSet(r[0], r[1], r[2], tuple(r[3]), r[4], r[5], r[6], r[7]) for r in rows]

    def declared_testset(self, name: str) -> DeclaredTestSet | None:
        """The declared setting ``name`` (even when a test set of that name is registered since), or None."""
        rows = self.query("SELECT name, kind, reference, groups, samples, class_protocol, title, source "
                          "FROM declared_testsets WHERE name = ?", [name])
        if not rows:
            return None
        r = rows[0]
        return DeclaredTestSet(r[0], r[1], r[2], tuple(r[3]), r[4], r[5], r[6], r[7])
