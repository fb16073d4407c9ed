"""Benchmark of prediction ingest: a worker's commits into the catalog, end to end, and its storage.

The test sets and the 1,000-class models are registered in a fresh catalog file directly (their rows
and the test sets' labels, as ``bench.bench_scale`` builds one), before a gateway process
(``shiftboard serve gateway``, started from the stack's own spec, against a real object store) opens
it. This process is the worker: it holds each shard's predictions as numpy arrays and commits them
with the evaluator token through ``CommitShards``, batched as
:func:`~shiftboard.flows.evaluate.run_evaluation` batches them
(:func:`~shiftboard.wire.commits.batches`: :data:`~shiftboard.wire.commits.COMMIT_SAMPLES` samples
a stream), so packing and gRPC on the worker's side and the gateway's checks, encoding and DuckDB
transaction run in two processes, as they do in production. Printed side by side, for each shard size
(427 samples: a 64 MiB shard of 3x224x224 images; 10,000; 100,000; and one shard of 700,000 samples,
beyond one 8 MiB message):

(a) **end to end**: predictions/s from the worker's numpy arrays to committed rows, commits only
    (start and finish not counted; the gateway is idle when each run starts);
(b) **DuckDB alone**: inserting the same rows, already encoded, into the same table in a fresh file,
    one transaction per batch as the gateway does; and the ratio (a) / (b);

with the machine's load average (1 minute) after each run, since the figures depend on it.

Then the catalog's bytes per prediction after ``CHECKPOINT`` (file size / stored predictions, with
everything else the catalog holds), with at least ``--storage`` predictions stored the same way.

    python -m bench.bench_ingest [--samples 1000000] [--storage 10000000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from bench.bench_scale import _gateway_process, _object_store
from bench.servers import group_cpu_seconds
from shiftboard import credentials
from shiftboard.adapters.duckdb.catalog import Catalog
from shiftboard.adapters.duckdb.evaluations import label_bytes
from shiftboard.client import Client
from shiftboard.domain import layout
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire.commits import ShardPredictions, batches

CLASSES = 1000
TARGET = 1e6


def _register(catalog: Catalog, name: str, samples: int, shard_samples: int, rng: np.random.Generator) -> None:
    shards = [pb.Shard(index=i, first_sample=first, num_samples=min(shard_samples, samples - first),
                       key=f"testsets/{name}/{i}")
              for i, first in enumerate(range(0, samples, shard_samples))]
    testset = pb.TestSet(spec=pb.TestSetSpec(name=name, kind=pb.TEST_SET_KIND_REFERENCE, num_classes=CLASSES,
                                             channels=3, height=8, width=8, num_samples=samples, shards=shards),
                         created_by="bench")
    testset.created_at.GetCurrentTime()
    catalog.add_testset(testset, labels={s.index: label_bytes(rng.integers(0, CLASSES, s.num_samples))
                                         for s in shards})


def _add_model(catalog: Catalog, name: str) -> None:
    model = pb.Model(metadata=pb.ModelMetadata(
        name=name, version="1", format=pb.MODEL_FORMAT_TORCHSCRIPT, num_classes=CLASSES,
        category=pb.MODEL_CATEGORY_STANDARD, input=pb.InputSpec(channels=3, height=8, width=8)),
        sha256="0" * 64, created_by="bench")
    model.created_at.GetCurrentTime()
    catalog.add_model(model, f"models/{name}")


def _shards(samples: int, shard_samples: int, rng: np.random.Generator) -> list[ShardPredictions]:
    """Predictions as a worker holds them: top-5 by logit (top-1 first), softmax confidences."""
    top5 = rng.integers(0, CLASSES, size=(samples, 5), dtype=np.int32)
    confidence = rng.random(samples, dtype=np.float32)
    return [ShardPredictions(index=i, first_sample=first, top5=top5[first:first + shard_samples],
                             confidence=confidence[first:first + shard_samples])
            for i, first in enumerate(range(0, samples, shard_samples))]


def _settle(pid: int, timeout_s: float = 60.0) -> None:
    """Wait until the gateway process is idle (its background aggregates of a finished evaluation done)."""
    deadline = time.monotonic() + timeout_s
    used = group_cpu_seconds([pid])
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = group_cpu_seconds([pid])
        if now - used < 0.05:
            return
        used = now


def _ingest(worker: Client, model: str, testset: str, shards: list[ShardPredictions]) -> float:
    """Seconds spent in the commits of one evaluation (start and finish not counted)."""
    key = pb.EvaluationKey(model=model, version="1", testset=testset)
    worker.start_evaluation(key)
    start = time.perf_counter()
    for group in batches(shards):
        worker.commit_shards(key, group)
    elapsed = time.perf_counter() - start
    done = worker.finish_evaluation(key)
    assert done.status == pb.EVALUATION_STATUS_SUCCEEDED, done
    return elapsed


def _raw_insert(path: Path, shards: list[ShardPredictions]) -> float:
    """Seconds to insert the same rows, encoded as the gateway stores them, one transaction per batch."""
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE predictions (evaluation_id INTEGER NOT NULL, sample BIGINT NOT NULL, "
                 "top5 BIGINT NOT NULL, top5_hi BIGINT NOT NULL, confidence INTEGER NOT NULL)")
    tables = []
    bits = layout.class_bits(CLASSES)
    for group in batches(shards):
        top5 = np.concatenate([s.top5 for s in group])
        lo, hi = layout.pack_top5(top5, bits)
        sample = np.concatenate([np.arange(s.first_sample, s.first_sample + s.samples) for s in group])
        tables.append(pa.table({"evaluation_id": pa.array(np.ones(len(lo), np.int32)), "sample": pa.array(sample),
                                "top5": pa.array(lo), "top5_hi": pa.array(hi), "confidence": pa.array(
                                    layout.quantize_confidence(np.concatenate([s.confidence for s in group])))}))
    start = time.perf_counter()
    for table in tables:
        conn.execute("BEGIN TRANSACTION")
        conn.register("incoming", table)
        conn.execute("INSERT INTO predictions SELECT * FROM incoming")
        conn.unregister("incoming")
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def _storage(settings: Settings, predictions: int, samples: int, shard_samples: int, state: Path,
             rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A fresh catalog holding ``predictions`` on one test set (as many models as that takes), ingested
    as above by a gateway process; (predictions, catalog bytes, bytes of its free blocks, bytes of the
    predictions table's blocks) after CHECKPOINT, once that gateway has stopped."""
    models = -(-predictions // samples)
    with contextlib.closing(Catalog(settings.catalog_file)) as catalog:
        _register(catalog, "bench-store", samples, shard_samples, rng)
        for i in range(models):
            _add_model(catalog, f"bench-store-m{i}")
    token = credentials.evaluator_token(settings, create=True)
    assert token is not None
    with _gateway_process(settings, state / "gateway-storage.log"), Client(settings.gateway_target, token) as worker:
        for i in range(models):
            _ingest(worker, f"bench-store-m{i}", "bench-store", _shards(samples, shard_samples, rng))
    with contextlib.closing(Catalog(settings.catalog_file)) as catalog:
        catalog.query("CHECKPOINT")
        stored = int(catalog.query("SELECT count(*) FROM predictions")[0][0])
        blocks = int(catalog.query("SELECT count(DISTINCT block_id) FROM pragma_storage_info('predictions') "
                                   "WHERE persistent")[0][0])
        block_size, free = catalog.query("SELECT block_size, free_blocks FROM pragma_database_size()")[0]
    return stored, os.path.getsize(settings.catalog_file), int(free) * int(block_size), blocks * int(block_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1_000_000, help="samples of each shard size's test set")
    parser.add_argument("--sizes", default="427,10000,100000", help="shard sizes, comma separated")
    parser.add_argument("--big", type=int, default=700_000, help="samples of the one-shard test set (0: none)")
    parser.add_argument("--storage", type=int, default=10_000_000,
                        help="predictions stored (models x --samples on one set) to measure bytes (0: skip)")
    parser.add_argument("--storage-shard", type=int, default=10_000, help="shard size of that set")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x]
    runs = [(f"bench-s{size}", args.samples, size) for size in sizes]
    if args.big:
        runs.append((f"bench-one{args.big}", args.big, args.big))
    rng = np.random.default_rng(0)
    rows: list[tuple[str, int, float, float, float]] = []
    stored = 0
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, _object_store(Path(tmp)) as settings:
        with contextlib.closing(Catalog(settings.catalog_file)) as catalog:
            for name, samples, shard_samples in runs:
                _register(catalog, name, samples, shard_samples, rng)
            _add_model(catalog, "bench-m0")
        token = credentials.evaluator_token(settings, create=True)
        assert token is not None
        with _gateway_process(settings, Path(tmp) / "gateway.log") as pid, \
                Client(settings.gateway_target, token) as worker:
            for name, samples, shard_samples in runs:
                shards = _shards(samples, shard_samples, rng)
                _settle(pid)
                e2e = _ingest(worker, "bench-m0", name, shards)
                load = os.getloadavg()[0]
                _settle(pid)
                raw = _raw_insert(Path(tmp) / f"raw-{name}.duckdb", shards)
                rows.append((f"{shard_samples:,}" + (" (one shard)" if samples == shard_samples else ""),
                             samples, samples / e2e, samples / raw, load))
        if args.storage:
            store = settings.replace(state_dir=str(Path(tmp) / "storage"))
            stored, size, free, table = _storage(store, args.storage, args.samples, args.storage_shard,
                                                 Path(tmp), rng)
    print("\nPrediction ingest: worker (this process) -> CommitShards -> gateway process -> DuckDB file "
          "(1,000 classes)")
    print(f"  {'shard size':<22}{'samples':>11}{'(a) end to end':>18}{'(b) DuckDB alone':>19}{'(a)/(b)':>9}"
          f"{'load 1m':>9}")
    ok = True
    for label, samples, e2e, raw, load in rows:
        ok &= e2e >= TARGET
        print(f"  {label:<22}{samples:>11,}{e2e / 1e6:>12.2f} M/s{raw / 1e6:>13.2f} M/s{e2e / raw:>9.2f}"
              f"{load:>9.1f}")
    if rows:
        print(f"  target (a) >= {TARGET / 1e6:.0f} M predictions/s at every shard size: "
              f"{'OK' if ok else 'BELOW TARGET'}  (load average now "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} cores)")
    if stored:
        per = size / stored
        print(f"  storage, {stored:,} predictions on one set of {args.samples:,} samples "
              f"({args.storage_shard:,}-sample shards), after CHECKPOINT:\n    catalog file {size / 1e6:,.1f} MB "
              f"= {per:.2f} bytes a prediction "
              f"(target <= 10: {'OK' if per <= 10 else 'ABOVE TARGET'}), of which free blocks "
              f"{free / stored:.2f}; the predictions table's blocks {table / stored:.2f} bytes a prediction")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
