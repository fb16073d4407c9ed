"""Benchmark of the testbed's scale: the leaderboard, storage and memory as stored predictions grow.

For each size, a catalog in the project's own schema is built the way the platform builds it, and
then served by a real gateway process (``shiftboard serve gateway``) on free ports:

1. **build**: the test sets and models are registered in a fresh catalog (no object store upload,
   no probe: only their rows and the test sets' labels), then a gateway in this process receives every
   prediction through ``CommitShards`` with an evaluator token, as a worker sends them, and computes
   the per-evaluation aggregates (what a finished evaluation triggers); the ingest rate is measured;
2. **serve**: that gateway stops and a new gateway process opens the catalog (nothing remembered);
   through its gRPC API, timed one after the other:

   * ``one shift``: ``GetLeaderboard(shift=...)`` with the paired bootstrap (``--resamples``), each
     of the 4 shifts in logit and probit: 8 boards nobody asked for before (the first is "cold");
   * ``repeated``: the same request again, nothing changed (the board cache);
   * ``group``: ``GetLeaderboard(group=...)`` over the 4 shifts, bootstrap included;
   * ``overview``: ``GetOverview`` (every shift's fit and every model's ER);
   * ``accuracy``: ``GetAccuracy`` of every evaluation;

   then the catalog's bytes per prediction (after ``CHECKPOINT``) and the gateway's resident memory
   (now, and its peak sampled every 20 ms while the requests ran) are read.

Each size is ``--models`` models x 5 test sets (a reference and 4 shifts of one group) x samples,
1,000 classes; models' accuracies lie on a line with noise, as in the testbed. The table ends with
the exponent of a power law fitted to each column (1.0: cost grows linearly with the predictions;
0: constant).

    python -m bench.bench_scale                       # 10^6, 10^7, 10^8 (about 5 minutes)
    python -m bench.bench_scale --sizes 1e6,1e7       # quicker
    python -m bench.bench_scale --sizes 1e9 --models 200 --keep /big/disk   # the 10^9 run

``--keep DIR`` builds under DIR and leaves the catalog there (a later run with the same DIR and size
serves it again without rebuilding).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shiftboard import credentials
from shiftboard.adapters.duckdb.catalog import Catalog
from shiftboard.adapters.duckdb.evaluations import label_bytes
from shiftboard.client import Client
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire.commits import ShardPredictions, batches

CLASSES = 1000
REFERENCE = "scale-ref"
GROUP = "scale"
SHIFTS = tuple(f"scale-shift-{i}" for i in range(1, 5))
#: Samples of one shard of the built test sets (the last shard holds the rest).
SHARD_SAMPLES = 50_000
#: Target figures (the issue's), for the verdict column.
TARGETS = {"one shift": 1.0, "group": 2.0, "repeated": 0.05, "overview": 3.0}
BYTES_TARGET = 10.0


@dataclass(frozen=True)
class Size:
    models: int
    samples: int

    @property
    def predictions(self) -> int:
        return self.models * (1 + len(SHIFTS)) * self.samples


@dataclass
class Figures:
    size: Size
    ingest_per_s: float
    build_s: float
    aggregate_s: float
    cold_s: float
    one_shift_s: float
    repeated_s: float
    group_s: float
    overview_s: float
    accuracy_s: float
    bytes_per_prediction: float
    rss_mb: float
    peak_mb: float


# ------------------------------------------------------------------------------ the data


def _accuracies(models: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each model's accuracy on the reference and on each shift: a logit-linear trend with noise
    (the testbed's pattern), a few models above it."""
    ref = np.linspace(0.35, 0.9, models)
    logit = np.log(ref / (1 - ref))
    shifts = np.empty((models, len(SHIFTS)))
    for j in range(len(SHIFTS)):
        z = (0.8 + 0.05 * j) * logit - (0.6 + 0.2 * j) + rng.normal(0, 0.08, models)
        z[:: max(1, models // 10)] += 0.3  # some effectively robust models
        shifts[:, j] = 1 / (1 + np.exp(-z))
    return ref, shifts


def _shards(samples: int) -> list[pb.Shard]:
    shards, first, index = [], 0, 0
    while first < samples:
        n = min(SHARD_SAMPLES, samples - first)
        shards.append(pb.Shard(index=index, first_sample=first, num_samples=n, key=f"bench/{index}"))
        first, index = first + n, index + 1
    return shards


def _register(catalog: Catalog, size: Size, labels: dict[str, np.ndarray]) -> None:
    """Rows of the test sets (with their labels, shard by shard) and of the models."""
    for name in (REFERENCE, *SHIFTS):
        kind, reference = (pb.TEST_SET_KIND_REFERENCE, "") if name == REFERENCE else (pb.TEST_SET_KIND_NATURAL,
                                                                                       REFERENCE)
        shards = _shards(size.samples)
        spec = pb.TestSetSpec(name=name, kind=kind, reference=reference, num_classes=CLASSES, channels=3,
                              height=8, width=8, num_samples=size.samples, shards=shards,
                              group=GROUP if reference else "", groups=[GROUP] if reference else [])
        testset = pb.TestSet(spec=spec, created_by="bench")
        testset.created_at.GetCurrentTime()
        catalog.add_testset(testset, labels={s.index: label_bytes(labels[name][s.first_sample:s.first_sample
                                                                                 + s.num_samples])
                                             for s in shards})
    for i in range(size.models):
        category = pb.MODEL_CATEGORY_STANDARD if i % 7 else pb.MODEL_CATEGORY_ROBUSTNESS_INTERVENTION
        model = pb.Model(metadata=pb.ModelMetadata(
            name=f"scale-m{i:03d}", version="1", format=pb.MODEL_FORMAT_TORCHSCRIPT, num_classes=CLASSES,
            category=category, input=pb.InputSpec(channels=3, height=8, width=8)),
            sha256="0" * 64, created_by="bench")
        model.created_at.GetCurrentTime()
        catalog.add_model(model, f"models/scale-m{i:03d}")


def _predictions(labels: np.ndarray, accuracy: float, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(top5 [N,5] int32, confidence [N] float32) right on a random ``accuracy`` share of the samples."""
    n = len(labels)
    top5 = rng.integers(0, CLASSES, size=(n, 5), dtype=np.int32)
    right = rng.random(n) < accuracy
    top5[right, 0] = labels[right]
    wrong = ~right
    top5[wrong, 0] = (labels[wrong] + 1 + top5[wrong, 0] % (CLASSES - 1)) % CLASSES
    confidence = (0.3 + 0.7 * rng.random(n, dtype=np.float32)).astype(np.float32)
    return top5, confidence


# ------------------------------------------------------------------------------ the servers


@contextlib.contextmanager
def _object_store(state: Path) -> Iterator[Settings]:
    """A real object store (the gateway starts only against one; nothing is uploaded to it)."""
    from shiftboard.services.stack.objectstore_server import object_store_spec
    from tests.helpers import free_settings, start_service

    settings = free_settings(state, object_store="seaweedfs")
    with start_service(object_store_spec(settings, dict(os.environ)), state / "objectstore.log"):
        creds = credentials.s3_credentials(settings)
        assert creds is not None
        yield settings.replace(object_store="external", s3_endpoint=settings.s3_target,
                               s3_access_key=creds.access_key, s3_secret_key=creds.secret_key, auto_evaluate=False)


@contextlib.contextmanager
def _gateway_process(settings: Settings, log_path: Path) -> Iterator[int]:
    """``shiftboard serve gateway`` on the settings' port, as the stack starts it; yields its pid."""
    from shiftboard.services.stack.specs import child_env, gateway_spec
    from tests.helpers import start_service

    with start_service(gateway_spec(settings, child_env(settings)), log_path) as gateway:
        yield gateway.pid


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _serve(settings: Settings, size: Size, state: Path, resamples: int) -> dict[str, float]:
    """Start a gateway process on the built catalog and time the requests (see the module docstring)."""
    out: dict[str, float] = {}
    from bench.servers import MemoryWatch

    with _gateway_process(settings, state / "gateway.log") as pid, MemoryWatch(pid) as memory, \
            Client(settings.gateway_target, credentials.admin_token(settings)) as client:
        boards = []
        for transform in ("logit", "probit"):
            for shift in SHIFTS:
                boards.append(_timed(lambda s=shift, t=transform: client.leaderboard(  # type: ignore[misc]
                    shift=s, transform=t, resamples=resamples)))
        out["cold"] = boards[0]
        out["one shift"] = statistics.median(boards)
        out["repeated"] = statistics.median(
            _timed(lambda: client.leaderboard(shift=SHIFTS[0], resamples=resamples)) for _ in range(5))
        out["group"] = _timed(lambda: client.leaderboard(group=GROUP, resamples=resamples))
        out["overview"] = _timed(lambda: list(client.overview()))
        out["accuracy"] = _timed(lambda: client.accuracy())
        board = client.leaderboard(shift=SHIFTS[0], resamples=resamples)
        if len(board.rows) != size.models or not all(r.has_er_ci for r in board.rows):
            raise RuntimeError(f"the board of {SHIFTS[0]} has {len(board.rows)} rows (want {size.models}, "
                               "each with its ER interval)")
        out["rss"], out["peak"] = memory.read_mb()
    return out


def _catalog_bytes(path: Path) -> int:
    with contextlib.closing(Catalog(path)) as catalog:
        catalog.query("CHECKPOINT")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


# ------------------------------------------------------------------------------ the build


def _commit_all(client: Client, size: Size, labels: dict[str, np.ndarray], seed: int) -> float:
    """Every model on every test set: start, commit its shards (batched as the worker batches them:
    :func:`~shiftboard.wire.commits.batches`), finish; returns the seconds spent in ``CommitShards``."""

    rng = np.random.default_rng(seed)
    ref_acc, shift_acc = _accuracies(size.models, rng)
    shards = _shards(size.samples)
    committing = 0.0
    for i in range(size.models):
        for j, testset in enumerate((REFERENCE, *SHIFTS)):
            key = pb.EvaluationKey(model=f"scale-m{i:03d}", version="1", testset=testset)
            accuracy = ref_acc[i] if j == 0 else shift_acc[i, j - 1]
            top5, confidence = _predictions(labels[testset], float(accuracy), rng)
            client.start_evaluation(key)
            start = time.perf_counter()
            for batch in batches(ShardPredictions(index=s.index, first_sample=s.first_sample,
                                                  top5=top5[s.first_sample:s.first_sample + s.num_samples],
                                                  confidence=confidence[s.first_sample:s.first_sample + s.num_samples])
                                 for s in shards):
                client.commit_shards(key, batch)
            committing += time.perf_counter() - start
            client.finish_evaluation(key)
    return committing


def _build(settings: Settings, size: Size, seed: int) -> tuple[float, float, float]:
    """Register and ingest everything into ``settings``' catalog; (ingest predictions/s while committing,
    build seconds in all, aggregate seconds)."""
    from shiftboard.services.gateway.server import create_server

    rng = np.random.default_rng(seed)
    labels = {name: rng.integers(0, CLASSES, size.samples).astype(np.int32) for name in (REFERENCE, *SHIFTS)}
    start = time.perf_counter()
    server = create_server(settings, port=0)
    try:
        _register(server.catalog, size, labels)
        with Client(f"127.0.0.1:{server.port}", credentials.evaluator_token(settings)) as worker:
            ingest_s = _commit_all(worker, size, labels, seed + 1)
        assert server.servicer is not None
        aggregate_start = time.perf_counter()
        server.servicer.aggregator.flush()
        aggregate_s = time.perf_counter() - aggregate_start
    finally:
        server.stop()
    return size.predictions / ingest_s, time.perf_counter() - start, aggregate_s


def _measure(size: Size, root: Path, resamples: int, seed: int) -> Figures:
    state = root / f"{size.models}x{size.samples}"
    state.mkdir(parents=True, exist_ok=True)
    with _object_store(state) as settings:
        built = state / "built"
        if built.exists():
            ingest, build_s, aggregate_s = (float(v) for v in built.read_text().split())
        else:
            ingest, build_s, aggregate_s = _build(settings, size, seed)
            built.write_text(f"{ingest} {build_s} {aggregate_s}\n")
        stored = _catalog_bytes(settings.catalog_file)
        served = _serve(settings, size, state, resamples)
    return Figures(size=size, ingest_per_s=ingest, build_s=build_s, aggregate_s=aggregate_s, cold_s=served["cold"],
                   one_shift_s=served["one shift"], repeated_s=served["repeated"], group_s=served["group"],
                   overview_s=served["overview"], accuracy_s=served["accuracy"],
                   bytes_per_prediction=stored / size.predictions, rss_mb=served["rss"], peak_mb=served["peak"])


# ------------------------------------------------------------------------------ the report


def exponent(predictions: list[int], values: list[float]) -> float:
    """Slope of log(value) on log(predictions): the power law's exponent (NaN with fewer than 2 sizes)."""
    if len(predictions) < 2:
        return math.nan
    x = np.log(np.asarray(predictions, dtype=float))
    y = np.log(np.maximum(np.asarray(values, dtype=float), 1e-9))
    return float(np.polyfit(x, y, 1)[0])


COLUMNS: tuple[tuple[str, str, Callable[[Figures], float], str], ...] = (
    ("one shift", "s", lambda f: f.one_shift_s, "{:.3f}"),
    ("cold", "s", lambda f: f.cold_s, "{:.3f}"),
    ("group", "s", lambda f: f.group_s, "{:.3f}"),
    ("repeated", "ms", lambda f: f.repeated_s * 1e3, "{:.1f}"),
    ("overview", "s", lambda f: f.overview_s, "{:.3f}"),
    ("accuracy", "s", lambda f: f.accuracy_s, "{:.3f}"),
    ("B/pred", "", lambda f: f.bytes_per_prediction, "{:.2f}"),
    ("RSS", "MiB", lambda f: f.rss_mb, "{:.0f}"),
    ("peak", "MiB", lambda f: f.peak_mb, "{:.0f}"),
    ("ingest", "M/s", lambda f: f.ingest_per_s / 1e6, "{:.2f}"),
    ("aggregates", "s", lambda f: f.aggregate_s, "{:.1f}"),
)


def report(figures: list[Figures], resamples: int) -> str:
    head = ["predictions", *(f"{name} ({unit})" if unit else name for name, unit, _, _ in COLUMNS)]
    rows = [[f"{f.size.predictions:.0e} ({f.size.models}x5x{f.size.samples:,})",
             *(fmt.format(get(f)) for _, _, get, fmt in COLUMNS)] for f in figures]
    preds = [f.size.predictions for f in figures]
    rows.append(["exponent", *(f"{exponent(preds, [get(f) for f in figures]):.2f}" for _, _, get, _ in COLUMNS)])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"\nTestbed scale: a gateway process serving the catalog, {resamples} bootstrap resamples"]
    lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    largest = figures[-1]
    verdicts = [f"{name} {value:.3f} s (target <= {target} s): {'OK' if value <= target else 'ABOVE TARGET'}"
                for name, value, target in (("one shift", largest.one_shift_s, TARGETS["one shift"]),
                                            ("group", largest.group_s, TARGETS["group"]),
                                            ("repeated", largest.repeated_s, TARGETS["repeated"]),
                                            ("overview", largest.overview_s, TARGETS["overview"]))]
    verdicts.append(f"storage {largest.bytes_per_prediction:.2f} B/prediction (target <= {BYTES_TARGET}): "
                    f"{'OK' if largest.bytes_per_prediction <= BYTES_TARGET else 'ABOVE TARGET'}")
    lines.append(f"  at {largest.size.predictions:.0e}: " + "; ".join(verdicts))
    return "\n".join(lines)


def _sizes(text: str, models: int) -> list[Size]:
    sizes = []
    for part in text.split(","):
        total = int(float(part))
        samples = total // (models * (1 + len(SHIFTS)))
        if samples < 10:
            raise SystemExit(f"--sizes {part}: fewer than 10 samples per test set with {models} models")
        sizes.append(Size(models=models, samples=samples))
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e6,1e7,1e8", help="stored predictions, comma separated")
    parser.add_argument("--models", type=int, default=100, help="models per size (default 100)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="build under this directory and keep the catalogs")
    args = parser.parse_args(argv)
    sizes = _sizes(args.sizes, args.models)
    figures = []
    with contextlib.ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-")))
        for size in sizes:
            print(f"  building and serving {size.predictions:.0e} predictions ...", file=sys.stderr, flush=True)
            figures.append(_measure(size, root, args.resamples, args.seed))
    print(report(figures, args.resamples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
