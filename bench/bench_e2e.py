"""End to end: one small model on one test set through the whole platform, beside in-process torch.

A real stack (``control.up``: object store, tritonserver, Prefect server + worker, gateway,
leaderboard) runs on free ports in a temporary state directory. The same TorchScript CNN file is
evaluated on the same 5,000 3x32x32 samples two ways, alternating which goes first, ``--pairs`` times:

* **torch**: a fresh ``python`` process imports torch, loads the file and the test set, runs every
  batch and takes the top-5 (what a researcher's own script would do);
* **platform**: ``submit_model`` (upload + the gateway's sandboxed probe) of a new version of the
  same file, until its evaluation has ``succeeded``; every version is a new Triton model, so each run
  pays the Triton load.

Printed per run and as medians: the submit call (probe included), submit -> succeeded, and the
fixed cost "pending -> first inference request" (the worker log's first-request line against the
moment the evaluation turned pending); then ``ratio`` = torch / platform (median and spread over
pairs) and ``over`` = platform - (torch + probe). After the pairs, ``--reruns`` re-evaluations of an
already deployed model measure the fixed cost with no Triton load, split into its stages (hand-off
to Prefect, the runner picking the run up, the flow run's process start, start_evaluation, the
deployment check, the first request).

    python -m bench.bench_e2e [--pairs 3] [--reruns 3] [--samples 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from shiftboard import testsets as ts
from shiftboard.client import Client
from shiftboard.services.stack import control
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb

CLASSES = 10
SHAPE = (3, 32, 32)
DONE = (pb.EVALUATION_STATUS_SUCCEEDED, pb.EVALUATION_STATUS_FAILED)

# What a researcher runs: load the file and the data, infer in batches, top-5. Prints its own seconds.
TORCH_SCRIPT = """
import sys, time
start = time.perf_counter()
import numpy as np, torch
data = np.load(sys.argv[2])
images = torch.from_numpy(data["images"]).permute(0, 3, 1, 2).contiguous()
labels = torch.from_numpy(data["labels"])
model = torch.jit.load(sys.argv[1], map_location="cpu").eval()
torch.set_num_threads(1)
loaded = time.perf_counter()
correct = 0
with torch.inference_mode():
    for i in range(0, len(images), 256):
        logits = model(images[i:i + 256].float() / 255.0)
        top5 = logits.topk(5, dim=1).indices
        correct += int((top5[:, 0] == labels[i:i + 256]).sum())
print(f"{loaded - start:.3f} {time.perf_counter() - loaded:.3f} {correct}")
"""


class SmallCNN(nn.Module):
    """Two 3x3 convolutions with pooling, then a linear layer: a small CIFAR-sized classifier."""

    def __init__(self, classes: int = CLASSES) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 8 * 8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def free_stack_settings(state_dir: Path) -> Settings:
    """Settings for a whole stack in ``state_dir`` whose every port is free (never the default ports)."""
    from tests.helpers import free_settings

    return free_settings(state_dir, start_timeout_s=180.0)


@contextlib.contextmanager
def stack(state_dir: Path) -> Iterator[Settings]:
    settings = free_stack_settings(state_dir)
    try:
        control.up(settings)
        yield settings
    finally:
        control.down(settings)


def add_copy(client: Client, work: Path, name: str) -> float:
    """Register the prepared shards again as test set ``name``; returns when its pairs turned pending."""
    spec, files = _prepared[work]
    copy = pb.TestSetSpec()
    copy.CopyFrom(spec)
    copy.name = name
    client.add_testset(copy, files)
    return time.time()


_prepared: dict[Path, tuple[pb.TestSetSpec, list[Path]]] = {}


def make_testset(client: Client, work: Path, samples: int, seed: int = 0) -> Path:
    """Register ``bench-e2e`` (smooth random images, random labels); returns the .npz torch reads."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, size=(samples, 3, 8, 8), dtype=np.uint8)
    images = np.ascontiguousarray(low.repeat(4, axis=2).repeat(4, axis=3).transpose(0, 2, 3, 1))  # NHWC
    labels = rng.integers(0, CLASSES, size=samples).astype(np.int64)
    path = work / "testset.npz"
    np.savez(path, images=images, labels=labels)
    prepared = ts.prepare_testset(path, out_dir=work / "shards", num_classes=CLASSES)
    spec = pb.TestSetSpec(
        name="bench-e2e", num_classes=CLASSES, channels=3, height=32, width=32, num_samples=prepared.num_samples,
        kind=pb.TEST_SET_KIND_REFERENCE,
        shards=[pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples,
                         size_bytes=s.size_bytes, sha256=s.sha256) for s in prepared.shards])
    files = [s.path for s in prepared.shards]
    client.add_testset(spec, files)
    _prepared[work] = (spec, files)
    return path


def metadata(version: str) -> pb.ModelMetadata:
    return pb.ModelMetadata(name="bench-cnn", version=version, format=pb.MODEL_FORMAT_TORCHSCRIPT,
                            input=pb.InputSpec(channels=3, height=32, width=32), num_classes=CLASSES,
                            category=pb.MODEL_CATEGORY_STANDARD)


def run_torch(model: Path, data: Path) -> tuple[float, float]:
    """Wall seconds of a fresh process doing the evaluation, and its inference seconds alone."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", TORCH_SCRIPT, str(model), str(data)], check=True,
                         capture_output=True, text=True).stdout.split()
    return time.perf_counter() - start, float(out[1])


def wait_done(client: Client, key: pb.EvaluationKey, timeout_s: float = 300.0) -> pb.Evaluation:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = client.list_evaluations(model=key.model, testset=key.testset)
        for e in found:
            if e.key.version == key.version and e.status in DONE:
                if e.status != pb.EVALUATION_STATUS_SUCCEEDED:
                    raise RuntimeError(f"evaluation {key.model}:{key.version} failed: {e.error}")
                return e
        time.sleep(0.02)
    raise RuntimeError(f"evaluation {key.model}:{key.version} did not finish within {timeout_s:.0f} s")


# ------------------------------------------------------------------------------ log timestamps

_ASCTIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")
_PREFECT_TIME = re.compile(r"^(\d\d:\d\d:\d\d)\.(\d{3}) \| ")


def log_lines(path: Path, since: float) -> list[tuple[float, str]]:
    """(epoch seconds, line) of every timestamped line of ``path`` at or after ``since``."""
    out: list[tuple[float, str]] = []
    day = dt.datetime.fromtimestamp(since).date()
    for line in path.read_text(errors="replace").splitlines():
        if m := _ASCTIME.match(line):
            t = dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S").timestamp() + int(m[2]) / 1000
        elif m := _PREFECT_TIME.match(line):
            clock = dt.datetime.strptime(m[1], "%H:%M:%S").time()
            t = dt.datetime.combine(day, clock).timestamp() + int(m[2]) / 1000
        else:
            continue
        if t >= since - 0.001:
            out.append((t, line))
    return out


def first(lines: list[tuple[float, str]], needle: str) -> float | None:
    return next((t for t, line in lines if needle in line), None)


@dataclass
class Stages:
    """Seconds from "pending" to each stage of one evaluation (None where nothing recorded it):
    the flow run created (hand-off), Pending (the runner took it), Running (its process began the
    flow), the model leased (deployment checked or loaded), the first inference request."""

    handed_off: float | None = None
    picked_up: float | None = None
    flow_started: float | None = None
    deployed: float | None = None
    first_request: float | None = None


def flow_run_states(settings: Settings, flow_run_id: str) -> dict[str, float]:
    """Epoch seconds at which the flow run first entered each state (Prefect's state history)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from shiftboard import credentials

    values: dict[Any, Any] = {PREFECT_API_URL: settings.prefect_api}
    if auth := credentials.prefect_auth_string(settings):
        values[PREFECT_API_AUTH_STRING] = auth
    with temporary_settings(values), get_client(sync_client=True) as prefect:
        states = prefect.read_flow_run_states(uuid.UUID(flow_run_id))
    out: dict[str, float] = {}
    for state in sorted(states, key=lambda st: st.timestamp):
        out.setdefault(state.type.value, state.timestamp.timestamp())
    return out


def stages(settings: Settings, client: Client, key: pb.EvaluationKey, pending: float) -> Stages:
    worker = log_lines(settings.logs_dir / "worker.log", pending)
    [evaluation] = [e for e in client.list_evaluations(model=key.model, testset=key.testset)
                    if e.key.version == key.version]
    states = flow_run_states(settings, evaluation.flow_run_id) if evaluation.flow_run_id else {}

    def rel(t: float | None) -> float | None:
        return None if t is None else t - pending

    return Stages(handed_off=rel(states.get("SCHEDULED")), picked_up=rel(states.get("PENDING")),
                  flow_started=rel(states.get("RUNNING")), deployed=rel(first(worker, "leased")),
                  first_request=rel(first(worker, "first inference request")))


def fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.2f}"


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help="paired runs (torch, platform), alternating order")
    parser.add_argument("--reruns", type=int, default=3, help="re-evaluations of an already deployed model")
    parser.add_argument("--samples", type=int, default=5000, help="test-set samples (3x32x32)")
    parser.add_argument("--keep", type=Path, default=None, help="copy the stack's logs into this folder")
    args = parser.parse_args(argv)
    print(f"end to end: a small CNN on {args.samples} samples of 3x32x32, platform vs in-process torch",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="shiftboard-bench-e2e-") as tmp, stack(Path(tmp) / "state") as settings:
        work = Path(tmp)
        try:
            return _measure(args, settings, work)
        finally:
            if args.keep:
                import shutil

                shutil.copytree(settings.logs_dir, args.keep, dirs_exist_ok=True)


def _measure(args: argparse.Namespace, settings: Settings, work: Path) -> int:
    if True:
        with Client.from_settings(settings) as client:
            data = make_testset(client, work, args.samples)
            model = work / "cnn.pt"
            torch.manual_seed(0)
            torch.jit.save(torch.jit.script(SmallCNN().eval()), str(model))
            run_torch(model, data)  # page cache warm for both sides
            rows: list[tuple[float, float, float, float, Stages]] = []
            print(f"{'run':>4} {'torch':>6} {'infer':>6} {'submit':>6} {'->done':>6} {'->1st':>6}  ratio", flush=True)
            for i in range(args.pairs):
                def platform(version: str = f"p{i}") -> tuple[float, float, Stages]:
                    start = time.time()
                    client.submit_model(model, metadata(version))
                    pending = time.time()
                    wait_done(client, pb.EvaluationKey(model="bench-cnn", version=version, testset="bench-e2e"))
                    done = time.time()
                    time.sleep(0.3)  # the worker's last lines reach its log
                    key = pb.EvaluationKey(model="bench-cnn", version=version, testset="bench-e2e")
                    return pending - start, done - start, stages(settings, client, key, pending)

                if i % 2 == 0:
                    torch_s, infer_s = run_torch(model, data)
                    submit_s, total_s, st = platform()
                else:
                    submit_s, total_s, st = platform()
                    torch_s, infer_s = run_torch(model, data)
                rows.append((torch_s, infer_s, submit_s, total_s, st))
                print(f"{i:>4} {torch_s:6.2f} {infer_s:6.2f} {submit_s:6.2f} {total_s:6.2f} "
                      f"{fmt(st.first_request)}  {torch_s / total_s:.2f}", flush=True)
            ratios = [r[0] / r[3] for r in rows]
            over = [r[3] - (r[0] + r[2]) for r in rows]
            print(f"submit -> succeeded: median {statistics.median(r[3] for r in rows):.2f} s; "
                  f"torch {statistics.median(r[0] for r in rows):.2f} s; probe (submit call) "
                  f"{statistics.median(r[2] for r in rows):.2f} s")
            print(f"ratio torch/platform: {spread(ratios)}; platform - (torch + probe): {spread(over)} s")
            if args.reruns:
                # A deployed model meets new test sets: only the last version stays, so each new set
                # makes exactly one pair pending.
                last = f"p{args.pairs - 1}"
                for i in range(args.pairs - 1):
                    client.delete_model("bench-cnn", f"p{i}")
                print("already deployed (new test set, one pending pair), seconds after pending:")
                print(f"{'run':>4} {'handoff':>7} {'pickup':>7} {'flow':>7} {'deploy':>7} {'1st req':>7} {'done':>7}")
                firsts: list[float] = []
                for i in range(args.reruns):
                    name = f"bench-e2e-w{i}"
                    pending = add_copy(client, work, name)
                    key = pb.EvaluationKey(model="bench-cnn", version=last, testset=name)
                    wait_done(client, key)
                    done = time.time()
                    time.sleep(0.3)
                    st = stages(settings, client, key, pending)
                    if st.first_request is not None:
                        firsts.append(st.first_request)
                    print(f"{i:>4} {fmt(st.handed_off):>7} {fmt(st.picked_up):>7} {fmt(st.flow_started):>7} "
                          f"{fmt(st.deployed):>7} {fmt(st.first_request):>7} {done - pending:7.2f}", flush=True)
                if firsts:
                    print(f"fixed cost pending -> first inference (deployed model): {spread(firsts)} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
