"""The registry: submitted models and registered test sets, with their shards and shards' labels."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from shiftboard.adapters.duckdb.database import Database, timestamp
from shiftboard.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab


def _transform_row(spec: pb.TestSetSpec) -> dict[str, object] | None:
    if not spec.HasField("transform"):
        return None
    t = spec.transform
    return {"border": t.border, "resize": t.resize, "crop_height": t.crop_height, "crop_width": t.crop_width,
            "interpolation": t.interpolation, "stretch": t.stretch}


#: The tables whose rows belong to an evaluation (``evaluation_id``; a rerun under way stages under its negative).
EVALUATION_ROW_TABLES = ("predictions", "prediction_top1", "restricted_correct", "evaluation_shards", "aggregates")


def _state(t: str) -> str:
    """An evaluation's shown state (SQL over ``evaluations`` as ``t``): its rerun's while one is under way."""
    return f"(CASE WHEN coalesce({t}.rerun, '') <> '' THEN {t}.rerun ELSE {t}.status END)"


@dataclass(frozen=True)
class Deleted:
    """What a delete removed from the catalog and leaves to the caller: the object keys to delete, the
    Prefect flow runs of its unfinished evaluations that have nothing else left to do (to cancel), and the
    number of evaluations removed."""

    keys: tuple[str, ...]
    flow_runs: tuple[str, ...]
    evaluations: int
    #: (model, version, test set) of every evaluation removed
    pairs: tuple[tuple[str, str, str], ...] = ()


def _delete_evaluations(cur: duckdb.DuckDBPyConnection, where: str,
                        params: list[object]) -> tuple[tuple[str, ...], tuple[tuple[str, str, str], ...]]:
    """Delete the evaluations matching ``where`` (SQL over ``evaluations`` as ``{t}``) with every row they
    own, a rerun's staged rows included; returns the flow runs to cancel (unfinished ones whose unfinished
    pairs are all among these) and the pairs removed."""
    mine, other = where.format(t="e"), where.format(t="o")
    runs = cur.execute(
        f"SELECT DISTINCT e.flow_run_id FROM evaluations e WHERE {mine} AND e.flow_run_id <> '' "
        f"AND {_state('e')} IN ('pending', 'running') AND NOT EXISTS (SELECT 1 FROM evaluations o "
        f"WHERE o.flow_run_id = e.flow_run_id AND NOT ({other}) AND {_state('o')} IN ('pending', 'running')) "
        "ORDER BY e.flow_run_id", params + params).fetchall()
    ids = f"SELECT e.id FROM evaluations e WHERE {mine} UNION ALL SELECT -e.id FROM evaluations e WHERE {mine}"
    for table_name in EVALUATION_ROW_TABLES:
        cur.execute(f"DELETE FROM {table_name} WHERE evaluation_id IN ({ids})", params + params)
    pairs = cur.execute(f"SELECT e.model, e.version, e.testset FROM evaluations e WHERE {mine} "
                        "ORDER BY e.model, e.version, e.testset", params).fetchall()
    cur.execute(f"DELETE FROM evaluations WHERE id IN (SELECT e.id FROM evaluations e WHERE {mine})", params)
    return tuple(str(r[0]) for r in runs), tuple((str(m), str(v), str(t)) for m, v, t in pairs)


class ModelRows(Database):
    """The ``models`` table; deleting a model deletes its evaluations and their rows."""

    _MODEL_COLUMNS = ("name, version, format, channels, height, width, value_min, value_max, mean, std, "
                      "num_classes, category, description, tags, size_bytes, sha256, artifact_key, "
                      "created_at, created_by, probe_seconds_per_sample")

    def model_exists(self, name: str, version: str) -> bool:
        return bool(self.query("SELECT 1 FROM models WHERE name = ? AND version = ?", [name, version]))

    def add_model(self, model: pb.Model, artifact_key: str) -> None:
        md = model.metadata
        with self.transaction() as cur:
            if cur.execute("SELECT 1 FROM models WHERE name = ? AND version = ?",
                           [md.name, md.version]).fetchone():
                raise AlreadyExists(f"model {md.name} version {md.version} exists: "
                                    "submit under a new --version, or delete the old one first")
            cur.execute(
                f"INSERT INTO models ({self._MODEL_COLUMNS}) VALUES ({', '.join('?' * 20)})",
                [md.name, md.version, vocab.format_word(md.format), md.input.channels, md.input.height,
                 md.input.width, md.input.value_min, md.input.value_max, list(md.input.mean),
                 list(md.input.std), md.num_classes, vocab.category_word(md.category), md.description,
                 list(md.tags), model.size_bytes, model.sha256, artifact_key,
                 model.created_at.ToDatetime(tzinfo=dt.UTC), model.created_by, model.probe_seconds_per_sample],
            )

    def get_model(self, name: str, version: str = "") -> tuple[pb.Model, str]:
        """The model and its artifact key; the newest version when ``version`` is empty."""
        if version:
            rows = self.query(f"SELECT {self._MODEL_COLUMNS} FROM models WHERE name = ? AND version = ?",
                               [name, version])
        else:
            rows = self.query(f"SELECT {self._MODEL_COLUMNS} FROM models WHERE name = ? "
                               "ORDER BY created_at DESC LIMIT 1", [name])
        if not rows:
            what = f"model {name} version {version}" if version else f"model {name}"
            raise NotFound(f"{what} does not exist: `shiftboard model list` shows the models")
        return self._model(rows[0]), rows[0][16]

    def list_models(self, category: str | None = None) -> list[pb.Model]:
        sql = f"SELECT {self._MODEL_COLUMNS} FROM models"
        params: list[object] = []
        if category:
            sql += " WHERE category = ?"
            params.append(category)
        return [self._model(r) for r in self.query(sql + " ORDER BY name, created_at", params)]

    def delete_model(self, name: str, version: str) -> Deleted:
        """Delete a model row with its evaluations and predictions (a rerun's staged rows too) and their
        aggregates, in one transaction; returns its artifact key and its evaluations' live flow runs."""
        with self.transaction() as cur:
            row = cur.execute("SELECT artifact_key FROM models WHERE name = ? AND version = ?",
                              [name, version]).fetchone()
            if not row:
                raise NotFound(f"model {name} version {version} does not exist")
            runs, pairs = _delete_evaluations(cur, "{t}.model = ? AND {t}.version = ?", [name, version])
            cur.execute("DELETE FROM models WHERE name = ? AND version = ?", [name, version])
            return Deleted((str(row[0]),), runs, len(pairs), pairs)

    def _model(self, r: tuple) -> pb.Model:
        model = pb.Model(
            metadata=pb.ModelMetadata(
                name=r[0], version=r[1], format=vocab.format_value(r[2]),
                input=pb.InputSpec(channels=r[3], height=r[4], width=r[5], value_min=r[6], value_max=r[7],
                                   mean=r[8], std=r[9]),
                num_classes=r[10], category=vocab.category_value(r[11]),
                description=r[12], tags=r[13],
            ),
            size_bytes=r[14], sha256=r[15], created_by=r[18], probe_seconds_per_sample=float(r[19] or 0.0),
        )
        model.created_at.CopyFrom(timestamp(r[17]))
        return model


class TestSetRows(Database):
    """The ``testsets``, ``shards`` and ``shard_labels`` tables."""

    _TESTSET_COLUMNS = ("name, kind, reference, grp, num_classes, class_subset, class_names, channels, "
                        "height, width, num_samples, size_bytes, description, created_at, created_by, "
                        "class_map, transform")

    def testset_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM testsets WHERE name = ?", [name]))

    def add_testset(self, testset: pb.TestSet, upload_id: str | None = None,
                    labels: dict[int, bytes] | None = None) -> None:
        """Insert a test set, its shards and their labels in one transaction (and retire its upload).

        ``labels`` maps a shard index to its labels as int32 little-endian bytes.
        """
        s = testset.spec
        with self.transaction() as cur:
            if cur.execute("SELECT 1 FROM testsets WHERE name = ?", [s.name]).fetchone():
                raise AlreadyExists(f"test set {s.name} exists: choose another --name")
            cur.execute(
                f"INSERT INTO testsets ({self._TESTSET_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                [s.name, vocab.kind_word(s.kind), s.reference, s.group, s.num_classes, list(s.class_subset),
                 list(s.class_names), s.channels, s.height, s.width, s.num_samples, testset.size_bytes,
                 s.description, testset.created_at.ToDatetime(tzinfo=dt.UTC), testset.created_by,
                 [list(g.outputs) for g in s.class_map] or None, _transform_row(s)],
            )
            if s.extra_references:  # a shift's further references (migration 11)
                cur.execute("UPDATE testsets SET extra_references = ? WHERE name = ?",
                            [list(s.extra_references), s.name])
            if s.unlabelled:  # registered without labels (migration 10): no shard_labels rows either
                cur.execute("UPDATE testsets SET unlabelled = true WHERE name = ?", [s.name])
            cur.executemany(
                "INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?, ?)",
                [[s.name, sh.index, sh.first_sample, sh.num_samples, sh.size_bytes, sh.sha256, sh.key]
                 for sh in s.shards],
            )
            if labels:
                cur.executemany("INSERT INTO shard_labels VALUES (?, ?, ?)",
                                [[s.name, index, data] for index, data in sorted(labels.items())])
            if upload_id:
                cur.execute("DELETE FROM uploads WHERE upload_id = ?", [upload_id])

    def delete_testset(self, name: str) -> Deleted:
        """Delete a test set with its shards, labels, evaluations, predictions (a rerun's staged rows too),
        aggregates and its scores on reference evaluations, in one transaction; returns its shard keys and
        the flow runs left with nothing else to do. Refused while other test sets use it as their reference
        (primary or extra)."""
        with self.transaction() as cur:
            if not cur.execute("SELECT 1 FROM testsets WHERE name = ?", [name]).fetchone():
                raise NotFound(f"test set {name} does not exist: `shiftboard testset list` shows the test sets")
            dependants = [r[0] for r in cur.execute(
                "SELECT name FROM testsets WHERE (reference = ? OR list_contains(extra_references, ?)) AND name <> ? "
                "ORDER BY name", [name, name, name]).fetchall()]
            if dependants:
                shown = ", ".join(dependants[:10]) + (f" and {len(dependants) - 10} more" if len(dependants) > 10
                                                      else "")
                raise FailedPrecondition(f"test set {name} is the reference of {shown}: delete "
                                         f"{'them' if len(dependants) > 1 else 'it'} first "
                                         "(`shiftboard testset delete NAME`)")
            keys = tuple(str(r[0]) for r in cur.execute("SELECT key FROM shards WHERE testset = ? ORDER BY idx",
                                                        [name]).fetchall())
            runs, pairs = _delete_evaluations(cur, "{t}.testset = ?", [name])
            # its class sub-list's scores kept on its reference's evaluations, and their aggregates
            cur.execute("DELETE FROM restricted_correct WHERE shift = ?", [name])
            cur.execute("DELETE FROM aggregates WHERE variant = ?", [name])
            for table_name, column in (("shard_labels", "testset"), ("shards", "testset"), ("testsets", "name")):
                cur.execute(f"DELETE FROM {table_name} WHERE {column} = ?", [name])
            return Deleted(keys, runs, len(pairs), pairs)

    def is_unlabelled(self, testset: str) -> bool:
        """Whether ``testset`` was registered without labels (its accuracy is never measured)."""
        rows = self.query("SELECT coalesce(unlabelled, false) FROM testsets WHERE name = ?", [testset])
        return bool(rows and rows[0][0])

    def unlabelled_testsets(self) -> set[str]:
        """The names of the test sets registered without labels."""
        return {str(r[0]) for r in self.query("SELECT name FROM testsets WHERE coalesce(unlabelled, false)")}

    def shard_labels(self, testset: str, index: int) -> bytes | None:
        """The stored labels of one shard (int32 little-endian), or None for a set registered without them."""
        rows = self.query("SELECT labels FROM shard_labels WHERE testset = ? AND idx = ?", [testset, index])
        return bytes(rows[0][0]) if rows else None

    def put_shard_labels(self, testset: str, index: int, labels: bytes) -> None:
        with self.transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO shard_labels VALUES (?, ?, ?)", [testset, index, labels])

    def restricted_shifts(self, reference: str) -> list[tuple[str, list[int], list[list[int]]]]:
        """(name, class sub-list, class map) of every shift of ``reference`` that scores fewer classes."""
        rows = self.query("SELECT name, class_subset, class_map FROM testsets WHERE reference = ? AND kind <> "
                          "'reference' AND (len(class_subset) > 0 OR class_map IS NOT NULL) ORDER BY name",
                          [reference])
        return [(r[0], list(r[1]), [list(g) for g in r[2] or []]) for r in rows]

    def get_testset(self, name: str) -> pb.TestSet:
        rows = self.query(f"SELECT {self._TESTSET_COLUMNS} FROM testsets WHERE name = ?", [name])
        if not rows:
            raise NotFound(f"test set {name} does not exist: `shiftboard testset list` shows the test sets")
        return self._testset(rows[0])

    def list_testsets(self, kind: str | None = None, group: str | None = None) -> list[pb.TestSet]:
        sql = f"SELECT {self._TESTSET_COLUMNS} FROM testsets WHERE 1=1"
        params: list[object] = []
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        if group:
            sql += " AND grp = ?"
            params.append(group)
        return [self._testset(r) for r in self.query(sql + " ORDER BY name", params)]

    def _testset(self, r: tuple) -> pb.TestSet:
        shards = self.query("SELECT idx, first_sample, num_samples, size_bytes, sha256, key FROM shards "
                             "WHERE testset = ? ORDER BY idx", [r[0]])
        spec = pb.TestSetSpec(
            name=r[0], kind=vocab.kind_value(r[1]), reference=r[2], group=r[3],
            num_classes=r[4], class_subset=r[5], class_names=r[6], channels=r[7], height=r[8], width=r[9],
            num_samples=r[10], description=r[12],
            shards=[pb.Shard(index=a, first_sample=b, num_samples=c, size_bytes=d, sha256=e, key=f)
                    for a, b, c, d, e, f in shards],
            class_map=[pb.ClassGroup(outputs=g) for g in r[15] or []],
        )
        extra = self.query("SELECT extra_references FROM testsets WHERE name = ?", [r[0]])
        spec.extra_references.extend((extra[0][0] or []) if extra else [])
        spec.unlabelled = self.is_unlabelled(r[0])
        if r[16] is not None:
            spec.transform.CopyFrom(pb.ImageTransform(**{k: v for k, v in r[16].items() if v is not None}))
        out = pb.TestSet(spec=spec, size_bytes=r[11], created_by=r[14])
        out.created_at.CopyFrom(timestamp(r[13]))
        return out
