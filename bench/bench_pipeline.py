"""Benchmark of the evaluation data path: object store -> Triton (gRPC) -> scoring.

Measured side by side in one run, on whatever machine runs it (the figures in the README are from
the 2-core development machine):

(a) **throughput ratio** for a compute-bound CNN (ResNet-18: torchvision's layout, 11.2 M parameters,
    on 3x32x32 images): the whole pipeline (shards fetched from the object store, batches sent to
    Triton with several requests in flight, scored) against the same TorchScript file run in this
    process with torch, same data, same batch size, same number of threads. Target >= 0.9.
(b) **per-sample overhead** of the pipeline for a trivial model (per-channel mean -> linear): wall
    time per sample of the whole pipeline, beside Triton alone (synchronous requests of preloaded
    batches) and torch in-process. Target <= 30 us/sample. Measured on digits-sized images (1x8x8,
    the test sets the platform ships; the reference "Triton alone ~9 us/sample" is of this kind) and
    on 3x32x32 images, where moving 3 KB per sample through gRPC and the Python backend dominates.

(c) **every model format** (ONNX, torch.export, TorchScript), ResNet-18 again: for each format, the
    pipeline through Triton (the Python-backend model loading the file through ``shiftboard.formats``)
    beside the in-process execution of the same file (``onnxruntime.InferenceSession``,
    ``torch.export.load``, ``torch.jit.load``: the loaders of ``shiftboard.formats``, same threads, same
    uint8 -> float mapping in numpy), with their throughput ratio.

Runs are interleaved (torch, pipeline, torch, pipeline, ...) so that load from other processes
hits both sides alike; the best of each is compared, and every run is printed.

    python -m bench.bench_pipeline [--cnn-samples 3072] [--trivial-samples 65536] [--format-samples 2048]
                                   [--repeats 3]

Besides wall time, CPU time per sample is printed: of this process ("client": fetching, sending,
scoring; or torch itself), and of this process plus the object store and Triton with its model
stubs ("all"). CPU time is far less sensitive than wall time to other work on a shared machine.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.models import resnet18, trivial
from bench.servers import group_cpu_seconds, object_store_and_triton
from shiftboard import formats
from shiftboard.adapters.s3 import ObjectStore
from shiftboard.adapters.triton.client import TritonAuth, connect
from shiftboard.adapters.triton.deployer import ModelDeployer
from shiftboard.adapters.triton.repository import INPUT_NAME, OUTPUT_NAME
from shiftboard.domain.shards import sha256_file, write_shards
from shiftboard.flows.inference import InferencePipeline
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb

log = logging.getLogger(__name__)

CHW = (3, 32, 32)
DIGITS_CHW = (1, 8, 8)
CLASSES = 10


@dataclass
class Case:
    """One model with its uploaded test set."""

    name: str
    chw: tuple[int, int, int]
    path: Path
    model: pb.Model
    shards: list[pb.Shard]
    images: np.ndarray
    labels: np.ndarray


def make_data(n: int, chw: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *chw), dtype=np.uint8), rng.integers(0, CLASSES, n, dtype=np.int64)


#: The format words and their protobuf values.
FORMAT_VALUES = {formats.ONNX: pb.MODEL_FORMAT_ONNX, formats.TORCH_EXPORT: pb.MODEL_FORMAT_TORCH_EXPORT,
                 formats.TORCHSCRIPT: pb.MODEL_FORMAT_TORCHSCRIPT}


def export(module: torch.nn.Module, chw: tuple[int, int, int], model_format: str, path: Path) -> None:
    """``module`` written to ``path`` in ``model_format``, with a dynamic batch dimension."""
    module = module.eval()
    example = (torch.rand(2, *chw),)
    batch = ({0: torch.export.Dim("batch")},)
    if model_format == formats.TORCHSCRIPT:
        torch.jit.script(module).save(str(path))
    elif model_format == formats.ONNX:
        torch.onnx.export(module, example, str(path), dynamic_shapes=batch, external_data=False, verbose=False)
    else:
        torch.export.save(torch.export.export(module, example, dynamic_shapes=batch), str(path))


def upload_case(name: str, module: torch.nn.Module, chw: tuple[int, int, int], n: int, shard_samples: int,
                store: ObjectStore, work: Path, seed: int, model_format: str = formats.TORCHSCRIPT) -> Case:
    suffix = formats.get(model_format).suffix
    path = work / f"{name}{suffix}"
    export(module, chw, model_format, path)
    formats.get(model_format).check(path)
    key = f"models/{name}/1/model{suffix}"
    store.put_bytes(key, path.read_bytes())
    spec = pb.InputSpec(channels=chw[0], height=chw[1], width=chw[2], value_min=0.0, value_max=1.0,
                        mean=[0.485, 0.456, 0.406][: chw[0]], std=[0.229, 0.224, 0.225][: chw[0]])
    model = pb.Model(metadata=pb.ModelMetadata(name=name, version="1", format=FORMAT_VALUES[model_format],
                                               input=spec, num_classes=CLASSES),
                     sha256=sha256_file(path), artifact_uri=f"s3://{store.bucket}/{key}")
    images, labels = make_data(n, chw, seed)
    infos = write_shards([(images, labels)], num_samples=n, out_dir=work / name, shard_samples=shard_samples)
    shards = []
    for info in infos:
        shard_key = f"testsets/{name}/{info.path.name}"
        store.put_bytes(shard_key, info.path.read_bytes())
        shards.append(pb.Shard(index=info.index, first_sample=info.first_sample, num_samples=info.num_samples,
                               size_bytes=info.size_bytes, sha256=info.sha256, key=shard_key))
        info.path.unlink()
    return Case(name, chw, path, model, shards, images, labels)


# ------------------------------------------------------------------------------------ the three sides


def run_torch(case: Case, batch: int) -> float:
    """Seconds for torch in this process: the same uint8 -> float normalisation, the same batches."""
    module = torch.jit.load(str(case.path)).eval()
    spec = case.model.metadata.input
    mean = torch.tensor(list(spec.mean)).view(1, -1, 1, 1)
    std = torch.tensor(list(spec.std)).view(1, -1, 1, 1)
    scale, shift = (1.0 / 255.0) / std, -mean / std
    images = torch.from_numpy(case.images)
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = images[i:i + batch].to(torch.float32) * scale + shift
            module(x)
    return time.perf_counter() - start


def in_process(case: Case, batch: int, threads: int) -> Callable[[], float]:
    """A run of the same file in this process through its format's loader (loaded once, here): the
    Python-backend model's uint8 -> float mapping in numpy, the same batches; returns its seconds."""
    from shiftboard.domain.normalisation import input_affine
    from shiftboard.wire.manifests import input_spec

    fmt = formats.FORMATS[formats.sniff(case.path)]
    run = fmt.load(str(case.path), threads=threads)
    affine = input_affine(input_spec(case.model.metadata.input))
    scale, shift = (np.asarray(v, dtype=np.float32).reshape(1, -1, 1, 1) for v in affine)

    def timed() -> float:
        start = time.perf_counter()
        for i in range(0, len(case.images), batch):
            run(case.images[i:i + batch].astype(np.float32) * scale + shift)
        return time.perf_counter() - start

    return timed


def compare_formats(cases: dict[str, Case], settings: Settings, store: ObjectStore, deployer: ModelDeployer,
                    batch: int, threads: int, repeats: int) -> None:
    """(c): per format, the pipeline and the in-process run of the same file, interleaved; printed side by side."""
    rows = []
    for word, case in cases.items():
        with deployer.acquire(case.model) as lease:
            run_pipeline(case, settings, lease.model_name, store)  # warm-up
            local = in_process(case, batch, threads)
            local()
            piped = functools.partial(run_pipeline, case, settings, lease.model_name, store)
            times = interleaved({"in-process": local, "pipeline": piped}, repeats)
        rows.append((word, times))
    n = len(next(iter(cases.values())).labels)
    print(f"\n(c) every format, ResNet-18, {'x'.join(map(str, CHW))} images, {n} samples, best of {repeats}")
    print(f"  {'format':<14} {'in-process':>14} {'pipeline':>14}  {'ratio (paired median)':>22}  {'ratio (best)':>12}")
    for word, times in rows:
        best_local, best_piped = min(times["in-process"].wall), min(times["pipeline"].wall)
        paired = paired_ratio(times["pipeline"], times["in-process"])
        print(f"  {word:<14} {n / best_local:>9,.0f} /s   {n / best_piped:>9,.0f} /s   {paired:>22.3f}  "
              f"{best_local / best_piped:>12.3f}", flush=True)


def run_pipeline(case: Case, settings: Settings, model_name: str, store: ObjectStore) -> float:
    """Seconds for the pipeline: shards from the object store, Triton over gRPC, scores."""
    pipeline = InferencePipeline(settings.triton_target, model_name, num_classes=CLASSES, chw=case.chw,
                                 batch_size=settings.eval_batch_size, in_flight=settings.eval_in_flight,
                                 auth=TritonAuth.from_settings(settings))
    start = time.perf_counter()
    results = pipeline.run(case.shards, lambda shard: store.get_bytes(shard.key))
    samples = sum(r.arrays.samples for r in results)
    elapsed = time.perf_counter() - start
    assert samples == len(case.labels)
    return elapsed


def run_triton_alone(case: Case, settings: Settings, model_name: str) -> float:
    """Seconds for synchronous Triton requests of preloaded batches (no fetch, no scoring)."""
    import tritonclient.grpc as triton_grpc

    client = connect(settings.triton_target, TritonAuth.from_settings(settings))
    batch = settings.eval_batch_size
    requests = []
    for i in range(0, len(case.images), batch):
        tensor = triton_grpc.InferInput(INPUT_NAME, [len(case.images[i:i + batch]), *case.chw], "UINT8")
        tensor.set_data_from_numpy(case.images[i:i + batch])
        requests.append(tensor)
    outputs = [triton_grpc.InferRequestedOutput(OUTPUT_NAME)]
    start = time.perf_counter()
    for tensor in requests:
        client.infer(model_name, [tensor], outputs=outputs)
    elapsed = time.perf_counter() - start
    client.close()
    return elapsed


@dataclass
class Timing:
    """Wall seconds of each run; CPU seconds of this process, and of this process plus the servers."""

    wall: list[float]
    cpu: list[float]
    cpu_all: list[float]


#: Process groups of the servers, whose CPU time counts towards each run's total.
SERVER_GROUPS: list[int] = []


def interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, Timing]:
    """Run each side ``repeats`` times, round-robin, reversing the order every other round so that
    neither side always runs right after the other (caches, other processes' bursts)."""
    times = {name: Timing([], [], []) for name in runs}
    order = list(runs)
    for i in range(repeats):
        for name in order if i % 2 == 0 else order[::-1]:
            cpu, servers = time.process_time(), group_cpu_seconds(SERVER_GROUPS)
            times[name].wall.append(runs[name]())
            cpu = time.process_time() - cpu
            times[name].cpu.append(cpu)
            times[name].cpu_all.append(cpu + group_cpu_seconds(SERVER_GROUPS) - servers)
    return times


def paired_ratio(subject: Timing, reference: Timing) -> float:
    """Throughput of ``subject`` over ``reference``: the median over rounds of the two runs' ratio.

    Each round's two runs were taken seconds apart, so their ratio is far less sensitive to load
    from other processes than a ratio of bests that may lie minutes apart.
    """
    return statistics.median(r / s for s, r in zip(subject.wall, reference.wall, strict=True))


def describe(name: str, timing: Timing, samples: int) -> str:
    best = min(timing.wall)
    runs = ", ".join(f"{samples / s:,.0f}" for s in timing.wall)
    cpu = statistics.median(timing.cpu) / samples * 1e6
    cpu_all = statistics.median(timing.cpu_all) / samples * 1e6
    return (f"  {name:<20} {samples / best:>9,.0f} samples/s {best / samples * 1e6:>8.1f} us/sample  "
            f"CPU us/sample: client {cpu:6.1f}, all {cpu_all:7.1f}  (runs: {runs} samples/s)")


def compare(title: str, case: Case, settings: Settings, store: ObjectStore, deployer: ModelDeployer,
            batch: int, repeats: int) -> dict[str, Timing]:
    """Warm up, then run torch, the pipeline and Triton alone interleaved; print and return the timings."""
    with deployer.acquire(case.model) as lease:
        run_pipeline(case, settings, lease.model_name, store)  # warm-up: stub, caches, connections
        run_torch(case, batch)
        times = interleaved({
            "torch in-process": lambda: run_torch(case, batch),
            "pipeline": lambda: run_pipeline(case, settings, lease.model_name, store),
            "Triton alone (sync)": lambda: run_triton_alone(case, settings, lease.model_name),
        }, repeats)
    n = len(case.labels)
    print(f"\n{title}, {'x'.join(map(str, case.chw))} images, {n} samples, best of {repeats}")
    for name, timing in times.items():
        print(describe(name, timing, n))
    return times


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cnn-samples", type=int, default=3072)
    parser.add_argument("--trivial-samples", type=int, default=65536)
    parser.add_argument("--format-samples", type=int, default=2048, help="samples of (c), per format")
    parser.add_argument("--formats", default=",".join(formats.FORMATS),
                        help="formats of (c), comma-separated (empty: skip (c))")
    parser.add_argument("--shard-samples", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads, in this process and in Triton's model instance")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="shiftboard-bench-") as tmp:
        work = Path(tmp)
        print(f"starting an object store and tritonserver in {work} ...", flush=True)
        with object_store_and_triton(work / "state", eval_batch_size=args.batch_size,
                                     eval_in_flight=args.in_flight, triton_model_threads=args.threads,
                                     eval_concurrency=1, triton_max_loaded_models=2) as (settings, pgids):
            SERVER_GROUPS[:] = pgids
            store = ObjectStore.from_settings(settings)
            store.ensure_bucket()
            deployer = ModelDeployer(settings, store=store)
            cnn = upload_case("resnet18", resnet18(CLASSES), CHW, args.cnn_samples, args.shard_samples, store,
                              work, 1)
            digits = upload_case("trivial-digits", trivial(CLASSES, DIGITS_CHW[0]), DIGITS_CHW,
                                 args.trivial_samples, args.shard_samples, store, work, 2)
            tiny = upload_case("trivial", trivial(CLASSES, CHW[0]), CHW, args.trivial_samples,
                               args.shard_samples, store, work, 3)
            print(f"cores: {os.cpu_count()}, torch threads: {args.threads}, batch {args.batch_size}, "
                  f"{args.in_flight} requests in flight, shards of {args.shard_samples} samples", flush=True)

            times = compare("(a) ResNet-18", cnn, settings, store, deployer, args.batch_size, args.repeats)
            best = min(times["torch in-process"].wall) / min(times["pipeline"].wall)
            paired = paired_ratio(times["pipeline"], times["torch in-process"])
            verdict = "met" if max(paired, best) >= 0.9 else "NOT met"
            print(f"  => pipeline / torch throughput: {paired:.3f} (median of paired runs), {best:.3f} (best "
                  f"of each)  (target >= 0.9: {verdict})", flush=True)

            for case in (digits, tiny):
                n = len(case.labels)
                times = compare("(b) trivial model", case, settings, store, deployer, args.batch_size,
                                args.repeats)
                overhead = min(times["pipeline"].wall) / n * 1e6
                median = statistics.median(times["pipeline"].wall) / n * 1e6
                alone = min(times["Triton alone (sync)"].wall) / n * 1e6
                print(f"  => pipeline overhead: {overhead:.1f} us/sample (best), {median:.1f} (median)  "
                      f"(target <= 30: {'met' if overhead <= 30 else 'NOT met'}); Triton alone {alone:.1f} "
                      "us/sample", flush=True)

            words = [w for w in args.formats.split(",") if w]
            if words:
                network = resnet18(CLASSES)
                cases = {word: upload_case(f"resnet18-{word}", network, CHW, args.format_samples, args.shard_samples,
                                           store, work, 4, model_format=formats.get(word).word) for word in words}
                compare_formats(cases, settings, store, deployer, args.batch_size, args.threads, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
