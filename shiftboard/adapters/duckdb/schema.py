"""The catalog's schema: ``MIGRATIONS[i]`` takes it from version ``i`` to ``i + 1``.

Each migration runs once, in a transaction, and is recorded in ``schema_migrations`` (:func:`migrate`).
A migration is never edited once released: a change to the schema is a new entry at the end.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from shiftboard.domain.errors import FailedPrecondition

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
    # 8: evaluation heartbeats (a run whose worker died is noticed and handed out again); reruns staged
    # beside the results they replace
    """
    -- The last sign of life of the evaluation's run: StartEvaluation, a commit, a heartbeat (a CommitShards
    -- stream without parts), FinishEvaluation. NULL: no run has started since the pair was queued.
    ALTER TABLE evaluations ADD COLUMN heartbeat_at TIMESTAMPTZ;
    -- '' or the state of a rerun (pending, running, failed). While a rerun is under way, `status` and the
    -- rows under `id` stay those of the earlier results; the rerun's rows are staged under evaluation_id
    -- -id and replace them in one transaction once every shard is in.
    ALTER TABLE evaluations ADD COLUMN rerun VARCHAR DEFAULT '';
    """,
    # 9: the submission probe's measured time per image (the evaluation's request deadline is derived from it)
    """
    -- seconds per image of the probe's full-size batch; 0: not measured (models submitted before)
    ALTER TABLE models ADD COLUMN probe_seconds_per_sample DOUBLE DEFAULT 0;
    """,
    # 10: test sets registered without labels (their accuracy is estimated, never measured)
    """
    ALTER TABLE testsets ADD COLUMN unlabelled BOOLEAN DEFAULT false;
    """,
    # 11: shifts with several references (the effective-robustness fit is a plane over them)
    """
    -- references after the primary one (`reference`, the label space), in the order given
    ALTER TABLE testsets ADD COLUMN extra_references VARCHAR[] DEFAULT [];
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

def migrate(cur: duckdb.DuckDBPyConnection, path: str, *, limit: int | None = None) -> int:
    """Apply the migrations the catalog at ``path`` lacks (at most ``limit`` of them), inside the caller's
    transaction ``cur``; the number applied.

    Give each migration its own transaction (``limit=1`` in a loop, as
    :class:`~shiftboard.adapters.duckdb.database.Database` does): DuckDB 1.5 fails the commit of a
    transaction that adds two columns to a table holding rows ("another transaction has altered this
    table"), as migrations 10 and 11 do to ``testsets``.

    Checkpoint after a migration has committed (:class:`~shiftboard.adapters.duckdb.database.Database`
    does): DuckDB 1.5 cannot replay an ``ALTER TABLE ... ADD COLUMN`` from its write-ahead log when the
    table has a column whose default calls a function ("Calling DatabaseManager::GetDefaultDatabase
    with no default database set"), so a process killed before the next checkpoint would leave a
    catalog that no longer opens."""
    cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
    row = cur.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    current = int(row[0]) if row else 0
    if current > SCHEMA_VERSION:
        raise FailedPrecondition(f"catalog {path} has schema version {current}, newer than this "
                                 f"shiftboard ({SCHEMA_VERSION}): upgrade shiftboard")
    last = SCHEMA_VERSION if limit is None else min(SCHEMA_VERSION, current + limit)
    for version in range(current + 1, last + 1):
        cur.execute(MIGRATIONS[version - 1])
        cur.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, dt.datetime.now(dt.UTC)])
    return last - current
