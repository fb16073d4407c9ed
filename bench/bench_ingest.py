"""Benchmark of prediction ingest into the DuckDB catalog.

Measured side by side in one run, on a catalog file in a temporary directory:

(a) **DuckDB alone**: inserting an Arrow table of predictions (the columns the catalog stores) into
    the ``predictions`` table. Target >= 1M rows/s.
(b) **the gateway's commit path** (``Evaluations.commit_shard``): protobuf ``Predictions`` message ->
    numpy -> checks -> Arrow -> delete+insert+progress row in one transaction, per shard.
(c) **through gRPC**: ``CommitShard`` calls from a client to a gateway in this process (serialisation
    of the message both ways included); needs no object store, so the store endpoint is unused.

    python -m bench.bench_ingest [--rows 2000000] [--shard 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from shiftboard.services.gateway.catalog import Catalog
from shiftboard.services.gateway.evaluations import Evaluations, label_bytes, labels_of
from shiftboard.v1 import shiftboard_pb2 as pb


def _fake_predictions(first: int, n: int, rng: np.random.Generator) -> pb.Predictions:
    top5 = rng.integers(0, 1000, size=(n, 5), dtype=np.int32)
    return pb.Predictions(sample=np.arange(first, first + n).tolist(), top1=top5[:, 0].tolist(),
                          top5=top5.ravel().tolist(), confidence=rng.random(n, dtype=np.float32).tolist())


def _setup(catalog: Catalog, rows: int, shard: int) -> tuple[pb.EvaluationKey, list[pb.Shard]]:
    model = pb.Model(metadata=pb.ModelMetadata(
        name="bench", version="1", format=pb.MODEL_FORMAT_TORCHSCRIPT, num_classes=1000,
        category=pb.MODEL_CATEGORY_STANDARD, input=pb.InputSpec(channels=3, height=8, width=8)),
        sha256="0" * 64, created_by="bench")
    model.created_at.GetCurrentTime()
    catalog.add_model(model, "models/bench")
    shards = [pb.Shard(index=i, first_sample=i * shard, num_samples=min(shard, rows - i * shard), key="k")
              for i in range((rows + shard - 1) // shard)]
    testset = pb.TestSet(spec=pb.TestSetSpec(name="bench-set", kind=pb.TEST_SET_KIND_REFERENCE, num_classes=1000,
                                             channels=3, height=8, width=8, num_samples=rows, shards=shards),
                         created_by="bench")
    testset.created_at.GetCurrentTime()
    rng = np.random.default_rng(2)
    catalog.add_testset(testset, labels={s.index: label_bytes(rng.integers(0, 1000, s.num_samples))
                                         for s in shards})
    return pb.EvaluationKey(model="bench", version="1", testset="bench-set"), shards


def bench_duckdb(path: Path, rows: int) -> float:
    catalog = Catalog(path)
    rng = np.random.default_rng(0)
    top5 = rng.integers(0, 1000, size=(rows, 5), dtype=np.int32)
    table = pa.table({
        "evaluation_id": pa.array(np.ones(rows, np.int32)), "sample": pa.array(np.arange(rows)),
        "label": pa.array(rng.integers(0, 1000, rows, dtype=np.int32)), "top1": pa.array(top5[:, 0]),
        "top5": pa.FixedSizeListArray.from_arrays(pa.array(top5.ravel()), 5),
        "confidence": pa.array(rng.random(rows, dtype=np.float32)), "correct": pa.array(rng.random(rows) < 0.5)})
    start = time.perf_counter()
    with catalog.transaction() as cur:
        cur.register("incoming", table)
        cur.execute("INSERT INTO predictions SELECT * FROM incoming")
    elapsed = time.perf_counter() - start
    catalog.close()
    return rows / elapsed


def bench_commit(path: Path, rows: int, shard: int) -> tuple[float, float]:
    catalog = Catalog(path)
    key, shards = _setup(catalog, rows, shard)
    evaluations = Evaluations(catalog)
    evaluations.start(key, "", shards_total=len(shards), samples_total=rows)
    rng = np.random.default_rng(1)
    messages = [_fake_predictions(s.first_sample, s.num_samples, rng) for s in shards]
    start = time.perf_counter()
    for s, message in zip(shards, messages, strict=True):  # labels read as CommitShard reads them
        labels = catalog.shard_labels("bench-set", s.index)
        assert labels is not None
        evaluations.commit_shard(key, s, message, 0.0, 1000, labels_of(labels))
    elapsed = time.perf_counter() - start
    # Re-committing every shard replaces rows: the count must not change.
    count = catalog.query("SELECT count(*) FROM predictions")[0][0]
    catalog.close()
    assert count == rows, count
    return rows / elapsed, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--shard", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shiftboard-bench-") as tmp:
        raw = bench_duckdb(Path(tmp) / "raw.duckdb", args.rows)
        commit, _ = bench_commit(Path(tmp) / "commit.duckdb", args.rows, args.shard)
    print("\nDuckDB ingest of predictions (catalog file on local disk)")
    print(f"  rows: {args.rows:,}, shard size for the commit path: {args.shard:,}")
    print(f"  (a) DuckDB alone, Arrow insert:        {raw / 1e6:6.2f} M rows/s   target >= 1.0  "
          f"{'OK' if raw >= 1e6 else 'BELOW TARGET'}")
    print(f"  (b) gateway commit path (per shard):   {commit / 1e6:6.2f} M rows/s   "
          f"({commit / raw:.2f} of DuckDB alone; the rest is protobuf -> numpy)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
