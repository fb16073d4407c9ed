"""The catalog: models, test sets, shards, uploads and API tokens in one DuckDB file.

DuckDB allows one read-write process per file and no reader elsewhere while it is open, so the
gateway is the catalog's only owner; everyone else goes through the gRPC API. The schema is
versioned: ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1`` and runs once, in a
transaction, recorded in ``schema_migrations``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
from google.protobuf.timestamp_pb2 import Timestamp

from shiftboard import vocab
from shiftboard.errors import AlreadyExists, NotFound
from shiftboard.v1 import shiftboard_pb2 as pb

MIGRATIONS: list[str] = [
    # 1: the catalog of issue "stack and contract"
    """
    CREATE TABLE tokens (
        name VARCHAR PRIMARY KEY,
        hash VARCHAR NOT NULL UNIQUE,          -- sha256 of the token; the token itself is never stored
        admin BOOLEAN NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE models (
        name VARCHAR NOT NULL,
        version VARCHAR NOT NULL,
        format VARCHAR NOT NULL,
        channels INTEGER NOT NULL,
        height INTEGER NOT NULL,
        width INTEGER NOT NULL,
        value_min DOUBLE NOT NULL,
        value_max DOUBLE NOT NULL,
        mean DOUBLE[] NOT NULL,
        std DOUBLE[] NOT NULL,
        num_classes INTEGER NOT NULL,
        category VARCHAR NOT NULL,
        description VARCHAR NOT NULL,
        tags VARCHAR[] NOT NULL,
        size_bytes BIGINT NOT NULL,
        sha256 VARCHAR NOT NULL,
        artifact_key VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        created_by VARCHAR NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE testsets (
        name VARCHAR PRIMARY KEY,
        kind VARCHAR NOT NULL,
        reference VARCHAR NOT NULL,
        grp VARCHAR NOT NULL,
        num_classes INTEGER NOT NULL,
        class_subset INTEGER[] NOT NULL,
        class_names VARCHAR[] NOT NULL,
        channels INTEGER NOT NULL,
        height INTEGER NOT NULL,
        width INTEGER NOT NULL,
        num_samples BIGINT NOT NULL,
        size_bytes BIGINT NOT NULL,
        description VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        created_by VARCHAR NOT NULL
    );
    CREATE TABLE shards (
        testset VARCHAR NOT NULL,
        idx INTEGER NOT NULL,
        first_sample BIGINT NOT NULL,
        num_samples BIGINT NOT NULL,
        size_bytes BIGINT NOT NULL,
        sha256 VARCHAR NOT NULL,
        key VARCHAR NOT NULL,
        PRIMARY KEY (testset, idx)
    );
    CREATE TABLE uploads (
        upload_id VARCHAR PRIMARY KEY,
        testset VARCHAR NOT NULL,
        num_shards INTEGER NOT NULL,
        created_by VARCHAR NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    """,
    # 2: evaluations and per-sample predictions
    """
    CREATE SEQUENCE evaluation_ids START 1;
    CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY DEFAULT nextval('evaluation_ids'),
        model VARCHAR NOT NULL,
        version VARCHAR NOT NULL,
        testset VARCHAR NOT NULL,
        status VARCHAR NOT NULL,                -- pending, running, succeeded, failed
        shards_total INTEGER NOT NULL,
        samples_total BIGINT NOT NULL,
        error VARCHAR NOT NULL DEFAULT '',
        flow_run_id VARCHAR NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        run_started_at TIMESTAMPTZ,
        run_samples BIGINT NOT NULL DEFAULT 0,  -- samples committed by the latest run
        UNIQUE (model, version, testset)
    );
    CREATE TABLE evaluation_shards (
        evaluation_id INTEGER NOT NULL,
        shard INTEGER NOT NULL,
        samples BIGINT NOT NULL,
        seconds DOUBLE NOT NULL,
        committed_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (evaluation_id, shard)
    );
    -- No primary key on purpose: a shard's rows are replaced (delete + insert) in one transaction,
    -- which keeps (evaluation, sample) unique without the cost of an index over every prediction.
    CREATE TABLE predictions (
        evaluation_id INTEGER NOT NULL,
        sample BIGINT NOT NULL,
        label INTEGER NOT NULL,
        top1 INTEGER NOT NULL,
        top5 INTEGER[5] NOT NULL,
        confidence FLOAT NOT NULL,
        correct BOOLEAN NOT NULL
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class Token:
    name: str
    admin: bool


@dataclass(frozen=True)
class Upload:
    upload_id: str
    testset: str
    num_shards: int
    created_by: str
    expires_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ts(value: dt.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value.astimezone(dt.UTC).replace(tzinfo=None))
    return out


class Catalog:
    """Thread-safe access to the catalog file (one connection, one lock: catalog calls are small)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = duckdb.connect(self.path)
        self._lock = threading.RLock()
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ---------------------------------------------------------------- plumbing

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
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
        with self._lock:
            cur = self._conn.cursor()
            try:
                return cur.execute(sql, list(params)).fetchall()
            finally:
                cur.close()

    def _migrate(self) -> None:
        with self.transaction() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                        "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
            row = cur.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise RuntimeError(f"catalog {self.path} has schema version {current}, newer than this "
                                   f"shiftboard ({SCHEMA_VERSION}): upgrade shiftboard")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                cur.execute(MIGRATIONS[version - 1])
                cur.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, _now()])

    @property
    def schema_version(self) -> int:
        return int(self.query("SELECT max(version) FROM schema_migrations")[0][0])

    # ---------------------------------------------------------------- tokens

    def put_token(self, name: str, token_hash: str, *, admin: bool, replace: bool = False) -> None:
        with self.transaction() as cur:
            exists = cur.execute("SELECT 1 FROM tokens WHERE name = ?", [name]).fetchone()
            if exists and not replace:
                raise AlreadyExists(f"a token named {name!r} exists: choose another name")
            cur.execute("DELETE FROM tokens WHERE name = ? OR hash = ?", [name, token_hash])
            cur.execute("INSERT INTO tokens VALUES (?, ?, ?, ?)", [name, token_hash, admin, _now()])

    def find_token(self, token_hash: str) -> Token | None:
        rows = self.query("SELECT name, admin FROM tokens WHERE hash = ?", [token_hash])
        return Token(rows[0][0], bool(rows[0][1])) if rows else None

    # ---------------------------------------------------------------- models

    _MODEL_COLUMNS = ("name, version, format, channels, height, width, value_min, value_max, mean, std, "
                      "num_classes, category, description, tags, size_bytes, sha256, artifact_key, "
                      "created_at, created_by")

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
                f"INSERT INTO models ({self._MODEL_COLUMNS}) VALUES ({', '.join('?' * 19)})",
                [md.name, md.version, vocab.format_word(md.format), md.input.channels, md.input.height,
                 md.input.width, md.input.value_min, md.input.value_max, list(md.input.mean),
                 list(md.input.std), md.num_classes, vocab.category_word(md.category), md.description,
                 list(md.tags), model.size_bytes, model.sha256, artifact_key,
                 model.created_at.ToDatetime(tzinfo=dt.UTC), model.created_by],
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

    def delete_model(self, name: str, version: str) -> str:
        """Delete a model row; returns its artifact key."""
        with self.transaction() as cur:
            row = cur.execute("SELECT artifact_key FROM models WHERE name = ? AND version = ?",
                              [name, version]).fetchone()
            if not row:
                raise NotFound(f"model {name} version {version} does not exist")
            cur.execute("DELETE FROM models WHERE name = ? AND version = ?", [name, version])
            return str(row[0])

    def _model(self, r: tuple) -> pb.Model:
        model = pb.Model(
            metadata=pb.ModelMetadata(
                name=r[0], version=r[1], format=vocab.format_value(r[2]),
                input=pb.InputSpec(channels=r[3], height=r[4], width=r[5], value_min=r[6], value_max=r[7],
                                   mean=r[8], std=r[9]),
                num_classes=r[10], category=vocab.category_value(r[11]), description=r[12], tags=r[13],
            ),
            size_bytes=r[14], sha256=r[15], created_by=r[18],
        )
        model.created_at.CopyFrom(_ts(r[17]))
        return model

    # ---------------------------------------------------------------- uploads

    def add_upload(self, upload: Upload) -> None:
        with self.transaction() as cur:
            cur.execute("INSERT INTO uploads VALUES (?, ?, ?, ?, ?)",
                        [upload.upload_id, upload.testset, upload.num_shards, upload.created_by,
                         upload.expires_at])

    def get_upload(self, upload_id: str) -> Upload | None:
        rows = self.query("SELECT upload_id, testset, num_shards, created_by, expires_at FROM uploads "
                           "WHERE upload_id = ?", [upload_id])
        return Upload(*rows[0]) if rows else None

    def delete_upload(self, upload_id: str) -> None:
        with self.transaction() as cur:
            cur.execute("DELETE FROM uploads WHERE upload_id = ?", [upload_id])

    def expired_uploads(self, now: dt.datetime | None = None) -> list[str]:
        rows = self.query("SELECT upload_id FROM uploads WHERE expires_at < ?", [now or _now()])
        return [r[0] for r in rows]

    # ---------------------------------------------------------------- test sets

    _TESTSET_COLUMNS = ("name, kind, reference, grp, num_classes, class_subset, class_names, channels, "
                        "height, width, num_samples, size_bytes, description, created_at, created_by")

    def testset_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM testsets WHERE name = ?", [name]))

    def add_testset(self, testset: pb.TestSet, upload_id: str | None = None) -> None:
        """Insert a test set and its shards in one transaction (and retire its upload)."""
        s = testset.spec
        with self.transaction() as cur:
            if cur.execute("SELECT 1 FROM testsets WHERE name = ?", [s.name]).fetchone():
                raise AlreadyExists(f"test set {s.name} exists: choose another --name")
            cur.execute(
                f"INSERT INTO testsets ({self._TESTSET_COLUMNS}) VALUES ({', '.join('?' * 15)})",
                [s.name, vocab.kind_word(s.kind), s.reference, s.group, s.num_classes, list(s.class_subset),
                 list(s.class_names), s.channels, s.height, s.width, s.num_samples, testset.size_bytes,
                 s.description, testset.created_at.ToDatetime(tzinfo=dt.UTC), testset.created_by],
            )
            cur.executemany(
                "INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?, ?)",
                [[s.name, sh.index, sh.first_sample, sh.num_samples, sh.size_bytes, sh.sha256, sh.key]
                 for sh in s.shards],
            )
            if upload_id:
                cur.execute("DELETE FROM uploads WHERE upload_id = ?", [upload_id])

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
            name=r[0], kind=vocab.kind_value(r[1]), reference=r[2], group=r[3], num_classes=r[4],
            class_subset=r[5], class_names=r[6], channels=r[7], height=r[8], width=r[9], num_samples=r[10],
            description=r[12],
            shards=[pb.Shard(index=a, first_sample=b, num_samples=c, size_bytes=d, sha256=e, key=f)
                    for a, b, c, d, e, f in shards],
        )
        out = pb.TestSet(spec=spec, size_bytes=r[11], created_by=r[14])
        out.created_at.CopyFrom(_ts(r[13]))
        return out
