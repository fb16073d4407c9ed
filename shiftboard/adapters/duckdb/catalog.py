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
from typing import TYPE_CHECKING

import duckdb
from google.protobuf.timestamp_pb2 import Timestamp

from shiftboard import vocab
from shiftboard.domain.errors import AlreadyExists, NotFound

if TYPE_CHECKING:
    from shiftboard.testbed import ImportedResults, Setting
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
    # 3: token roles and keyed hashes; the platform's own labels of every shard
    """
    CREATE TABLE tokens_v3 (
        name VARCHAR PRIMARY KEY,
        hash VARCHAR NOT NULL UNIQUE,          -- keyed hash of the token; the token itself is never stored
        scheme VARCHAR NOT NULL,               -- hmac-sha256; sha256 for older rows, upgraded on first use
        role VARCHAR NOT NULL,                 -- admin, submitter, evaluator
        created_at TIMESTAMPTZ NOT NULL,
        created_by VARCHAR NOT NULL
    );
    INSERT INTO tokens_v3 SELECT name, hash, 'sha256', CASE WHEN admin THEN 'admin' ELSE 'submitter' END,
        created_at, '' FROM tokens;
    DROP TABLE tokens;
    ALTER TABLE tokens_v3 RENAME TO tokens;
    -- One row per shard: its labels as int32 little-endian bytes in sample order (4 bytes a sample).
    CREATE TABLE shard_labels (
        testset VARCHAR NOT NULL,
        idx INTEGER NOT NULL,
        labels BLOB NOT NULL,
        PRIMARY KEY (testset, idx)
    );
    """,
    # 4: imported results (accuracy-only points with provenance) and the test sets they declare
    """
    CREATE TABLE imported_sources (
        source VARCHAR PRIMARY KEY,
        version VARCHAR NOT NULL,              -- sha256 of the imported file
        url VARCHAR NOT NULL,
        format VARCHAR NOT NULL,               -- testbed or long
        imported_at TIMESTAMPTZ NOT NULL,
        created_by VARCHAR NOT NULL
    );
    CREATE TABLE imported_models (
        name VARCHAR NOT NULL,
        category VARCHAR NOT NULL,
        testbed_type VARCHAR NOT NULL,         -- '' when the file gives none
        source VARCHAR NOT NULL
    );
    -- No primary key: a source's rows are replaced (delete + insert) in one transaction, and the
    -- parser keeps (model, test set) unique within a file.
    CREATE TABLE imported_points (
        model VARCHAR NOT NULL,
        testset VARCHAR NOT NULL,
        accuracy DOUBLE NOT NULL,
        samples BIGINT,                        -- NULL: not known
        correct BIGINT,                        -- NULL: the file gave an accuracy only
        source VARCHAR NOT NULL,
        version VARCHAR NOT NULL,
        url VARCHAR NOT NULL                   -- the row's own url, else the source's
    );
    -- Settings named by imported results that have no data on the platform (yet).
    CREATE TABLE declared_testsets (
        name VARCHAR PRIMARY KEY,
        kind VARCHAR NOT NULL,
        reference VARCHAR NOT NULL,
        groups VARCHAR[] NOT NULL,
        samples BIGINT,
        class_protocol VARCHAR NOT NULL,
        title VARCHAR NOT NULL,
        source VARCHAR NOT NULL
    );
    """,
    # 5: class maps and ingestion transforms of test sets; reference correctness on shifts' class sub-lists
    """
    ALTER TABLE testsets ADD COLUMN class_map INTEGER[][];   -- NULL: no class map
    ALTER TABLE testsets ADD COLUMN transform STRUCT(border INTEGER, resize INTEGER, crop_height INTEGER,
        crop_width INTEGER, interpolation VARCHAR, stretch BOOLEAN);  -- NULL: not recorded
    -- A reference evaluation's correctness restricted to one shift's class sub-list (or class map), one
    -- row per shard: bit i (numpy packbits order) of `kept` is set when sample first_sample + i has a
    -- label in the sub-list, of `correct` when it is kept and its restricted top-1 is right.
    CREATE TABLE restricted_correct (
        evaluation_id INTEGER NOT NULL,
        shift VARCHAR NOT NULL,
        shard INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        kept BLOB NOT NULL,
        correct BLOB NOT NULL,
        PRIMARY KEY (evaluation_id, shift, shard)
    );
    """,
    # 6: compact predictions (services/gateway/layout.py): labels from shard_labels, correctness as bits per
    # shard, top-5 packed in integers, confidence quantized; existing rows converted
    """
    -- Bits per top-5 class of each evaluation's rows: enough for the largest class stored (0 pads).
    CREATE TEMP TABLE v6_bits AS
        SELECT evaluation_id,
            CAST(floor(log2(greatest(max(greatest(top1, list_max(top5))) + 1, 1))) AS INTEGER) + 1 AS b
        FROM predictions GROUP BY evaluation_id;
    -- Each stored row's shard (samples of a shard are contiguous).
    CREATE TEMP TABLE v6_rows AS
        SELECT p.evaluation_id, s.idx AS shard, e.testset, p.sample - s.first_sample AS i, p.label, p.correct
        FROM predictions p JOIN evaluations e ON e.id = p.evaluation_id
        JOIN shards s ON s.testset = e.testset AND p.sample >= s.first_sample
            AND p.sample < s.first_sample + s.num_samples;
    -- Labels of shards registered before labels were kept, from the rows of one evaluation that stored them.
    INSERT INTO shard_labels
        SELECT r.testset, r.shard, from_hex(string_agg(printf('%02x%02x%02x%02x', r.label & 255,
            (r.label >> 8) & 255, (r.label >> 16) & 255, (r.label >> 24) & 255), '' ORDER BY r.i))
        FROM v6_rows r
        JOIN (SELECT testset, shard, min(evaluation_id) AS evaluation_id FROM v6_rows GROUP BY ALL) one
            USING (testset, shard, evaluation_id)
        WHERE NOT EXISTS (SELECT 1 FROM shard_labels l WHERE l.testset = r.testset AND l.idx = r.shard)
        GROUP BY r.testset, r.shard;
    CREATE TEMP TABLE v6_correct AS
        SELECT evaluation_id, shard, sum(c)::BIGINT AS correct_count,
            from_hex(string_agg(printf('%02x', v), '' ORDER BY k)) AS bits
        FROM (SELECT evaluation_id, shard, i // 8 AS k, count_if(correct) AS c,
                  sum(CASE WHEN correct THEN 1 << (7 - i % 8) ELSE 0 END) AS v
              FROM v6_rows GROUP BY ALL)
        GROUP BY ALL;
    CREATE TABLE evaluation_shards_v6 (
        evaluation_id INTEGER NOT NULL,
        shard INTEGER NOT NULL,
        samples BIGINT NOT NULL,
        seconds DOUBLE NOT NULL,
        committed_at TIMESTAMPTZ NOT NULL,
        correct_count BIGINT NOT NULL,         -- samples whose top-1 is their label
        correct BLOB NOT NULL,                 -- bit i (numpy packbits order): sample first_sample + i is right
        class_bits INTEGER NOT NULL,           -- bits per top-5 class in the shard's prediction rows
        PRIMARY KEY (evaluation_id, shard)
    );
    INSERT INTO evaluation_shards_v6
        SELECT s.evaluation_id, s.shard, s.samples, s.seconds, s.committed_at, coalesce(c.correct_count, 0),
            coalesce(c.bits, from_hex(repeat('00', CAST((s.samples + 7) // 8 AS INTEGER)))), coalesce(b.b, 1)
        FROM evaluation_shards s LEFT JOIN v6_correct c USING (evaluation_id, shard)
        LEFT JOIN v6_bits b USING (evaluation_id);
    -- One row per sample (layout: services/gateway/layout.py). No label, correctness or top-1: labels are
    -- shard_labels', correctness the shard's bits, top-1 the first top-5 class (else in prediction_top1).
    -- No primary key on purpose, as before: a shard's rows are replaced in one transaction.
    CREATE TABLE predictions_v6 (
        evaluation_id INTEGER NOT NULL,
        sample BIGINT NOT NULL,
        -- class + 1 of rank j (0: no class) in bits [j*b, (j+1)*b), b = evaluation_shards.class_bits;
        -- ranks 0-4 when 5*b <= 63 (up to 4,095 classes), else ranks 0-2 here and 3-4 in top5_hi
        -- (up to 2,097,151 classes)
        top5 BIGINT NOT NULL,
        top5_hi BIGINT NOT NULL,
        -- round(p * 1048575): 20 bits, p read back as confidence / 1048575 (within 4.8e-7 of the sent value)
        confidence INTEGER NOT NULL
    );
    INSERT INTO predictions_v6
        SELECT p.evaluation_id, p.sample,
            CASE WHEN 5 * b.b <= 63 THEN
                (p.top5[1] + 1)::BIGINT | ((p.top5[2] + 1)::BIGINT << b.b) | ((p.top5[3] + 1)::BIGINT << (2 * b.b))
                | ((p.top5[4] + 1)::BIGINT << (3 * b.b)) | ((p.top5[5] + 1)::BIGINT << (4 * b.b))
            ELSE (p.top5[1] + 1)::BIGINT | ((p.top5[2] + 1)::BIGINT << b.b)
                | ((p.top5[3] + 1)::BIGINT << (2 * b.b)) END,
            CASE WHEN 5 * b.b <= 63 THEN 0
            ELSE (p.top5[4] + 1)::BIGINT | ((p.top5[5] + 1)::BIGINT << b.b) END,
            CAST(round(greatest(0.0, least(1.0, coalesce(p.confidence::DOUBLE, 0.0))) * 1048575) AS INTEGER)
        FROM predictions p JOIN v6_bits b USING (evaluation_id);
    -- A row's top-1 where it is not its first top-5 class (only callers with their own tie rule send that).
    CREATE TABLE prediction_top1 (
        evaluation_id INTEGER NOT NULL,
        sample BIGINT NOT NULL,
        top1 INTEGER NOT NULL
    );
    INSERT INTO prediction_top1
        SELECT evaluation_id, sample, top1 FROM predictions WHERE top1 IS DISTINCT FROM top5[1];
    DROP TABLE predictions;
    ALTER TABLE predictions_v6 RENAME TO predictions;
    DROP TABLE evaluation_shards;
    ALTER TABLE evaluation_shards_v6 RENAME TO evaluation_shards;
    DROP TABLE v6_bits;
    DROP TABLE v6_rows;
    DROP TABLE v6_correct;
    """,
    # 7: leaderboard aggregates: per evaluation and sample list, correct counts and resampled correct counts
    """
    -- One row per (evaluation, sample list): variant '' is the evaluation's own samples, a shift's name
    -- its reference samples kept by that shift's class sub-list (services/gateway/aggregates.py). `counts`
    -- holds the correct samples in each of the first `resamples` resamples of the shared resampling
    -- weights, int32 little-endian. A row is used only while `stamp` equals the evaluation's
    -- updated_at (epoch microseconds) and `method`, `seed` and `list_stamp` are the current ones.
    CREATE TABLE aggregates (
        evaluation_id INTEGER NOT NULL,
        variant VARCHAR NOT NULL,
        stamp BIGINT NOT NULL,
        list_stamp VARCHAR NOT NULL,           -- digest of the shift's classes for a variant, else ''
        method VARCHAR NOT NULL,               -- the resampling-weights algorithm
        seed BIGINT NOT NULL,
        exact BOOLEAN NOT NULL,                -- false: restricted correctness rebuilt from top-5
        samples BIGINT NOT NULL,
        correct BIGINT NOT NULL,
        resamples INTEGER NOT NULL,
        counts BLOB NOT NULL,
        computed_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (evaluation_id, variant)
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


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


@dataclass(frozen=True)
class Upload:
    upload_id: str
    testset: str
    num_shards: int
    created_by: str
    expires_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _transform_row(spec: pb.TestSetSpec) -> dict[str, object] | None:
    if not spec.HasField("transform"):
        return None
    t = spec.transform
    return {"border": t.border, "resize": t.resize, "crop_height": t.crop_height, "crop_width": t.crop_width,
            "interpolation": t.interpolation, "stretch": t.stretch}


def _ts(value: dt.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value.astimezone(dt.UTC).replace(tzinfo=None))
    return out


class Catalog:
    """Thread-safe access to the catalog file (one connection, one lock: catalog calls are small)."""

    def __init__(self, path: Path | str, *, memory_mb: int = 0) -> None:
        """Open (and migrate) the catalog; ``memory_mb`` > 0 bounds DuckDB's memory (block cache and
        queries; larger operations spill to disk), 0 keeps DuckDB's default (80% of the machine)."""
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        config = {"memory_limit": f"{memory_mb}MB"} if memory_mb > 0 else {}
        self._conn = duckdb.connect(self.path, config=config)
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
                        "VALUES (?, ?, ?, ?, ?, ?)", [name, token_hash, scheme, role, _now(), created_by])

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
        """Delete a model row with its evaluations and predictions, in one transaction; returns its artifact key."""
        with self.transaction() as cur:
            row = cur.execute("SELECT artifact_key FROM models WHERE name = ? AND version = ?",
                              [name, version]).fetchone()
            if not row:
                raise NotFound(f"model {name} version {version} does not exist")
            ids = "SELECT id FROM evaluations WHERE model = ? AND version = ?"
            cur.execute(f"DELETE FROM predictions WHERE evaluation_id IN ({ids})", [name, version])
            cur.execute(f"DELETE FROM prediction_top1 WHERE evaluation_id IN ({ids})", [name, version])
            cur.execute(f"DELETE FROM restricted_correct WHERE evaluation_id IN ({ids})", [name, version])
            cur.execute(f"DELETE FROM evaluation_shards WHERE evaluation_id IN ({ids})", [name, version])
            cur.execute("DELETE FROM evaluations WHERE model = ? AND version = ?", [name, version])
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
            name=r[0], kind=vocab.kind_value(r[1]), reference=r[2], group=r[3], num_classes=r[4],
            class_subset=r[5], class_names=r[6], channels=r[7], height=r[8], width=r[9], num_samples=r[10],
            description=r[12],
            shards=[pb.Shard(index=a, first_sample=b, num_samples=c, size_bytes=d, sha256=e, key=f)
                    for a, b, c, d, e, f in shards],
            class_map=[pb.ClassGroup(outputs=g) for g in r[15] or []],
        )
        if r[16] is not None:
            spec.transform.CopyFrom(pb.ImageTransform(**{k: v for k, v in r[16].items() if v is not None}))
        out = pb.TestSet(spec=spec, size_bytes=r[11], created_by=r[14])
        out.created_at.CopyFrom(_ts(r[13]))
        return out

    # ---------------------------------------------------------------- imported results

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
                        [prov.source, prov.version, prov.url, prov.format, _now(), created_by])
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
