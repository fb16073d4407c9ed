"""The whole platform, as a user meets it: `shiftboard up`, then models and test sets through the
API, evaluations triggered automatically, run by the Prefect worker through Triton, every prediction
stored in DuckDB.

Checks, on the real stack (object store, tritonserver, Prefect server + worker, gateway):
- every stored prediction equals the same TorchScript file run in-process with torch (top-1, top-5,
  confidence), with and without a class sub-list;
- registering a test set evaluates every existing model on it with no further command;
- killing the worker mid-evaluation and requesting the pair again resumes it, leaving exactly one
  row per sample.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from shiftboard import testsets as ts
from shiftboard.client import Client
from shiftboard.services.stack import runfile
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers

pytestmark = pytest.mark.stack

DONE = (pb.EVALUATION_STATUS_SUCCEEDED, pb.EVALUATION_STATUS_FAILED)


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                       torch.nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1))


class Slow(torch.nn.Module):
    """A linear model that burns ~0.1-0.3 s per batch of marked images (:func:`marked`), so an evaluation
    on them lasts long enough to be killed, and runs at full speed on every other test set of the shared
    stack (the demo's among them): a run takes its test sets one after the other, and the slow one would
    otherwise wait behind all of them. tests/test_deletes.py and tests/test_stuck_runs.py mark their sets too."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x.flatten(1))
        if bool(x[:, :, 0, 0].min() > 0.99) and bool(x[:, :, 0, -1].min() > 0.99):
            work = torch.full((768, 768), 0.001)
            w = work
            for _ in range(6):
                w = torch.tanh(w @ work)
            out = out + 0.0 * w.mean()
        return out


def marked(images: np.ndarray) -> np.ndarray:
    """``images`` with both top corners saturated: blank in every digit and in every demo corruption."""
    out = images.copy()
    out[:, 0, 0] = out[:, 0, -1] = 255
    return out


def save(module: torch.nn.Module, path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.5)
    torch.jit.script(module.eval()).save(str(path))
    return path


def expected(path: Path, images: np.ndarray, subset: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """top1, top5 (padded with -1), confidence, computed independently of the platform."""
    with torch.no_grad():
        logits = torch.jit.load(str(path))(torch.from_numpy(np.array(images)).float() / 255.0).double()
    classes = torch.tensor(subset) if subset else torch.arange(logits.shape[1])
    scored = logits[:, classes]
    k = min(5, len(classes))
    order = torch.argsort(-scored, dim=1, stable=True)[:, :k]
    top5 = torch.full((len(images), 5), -1, dtype=torch.long)
    top5[:, :k] = classes[order]
    confidence = scored.softmax(1).gather(1, order[:, :1]).squeeze(1)
    return top5[:, 0].numpy(), top5.numpy(), confidence.numpy()


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(1)


def all_done(client: Client, **filters: str) -> Callable[[], bool]:
    def check() -> bool:
        evaluations = client.list_evaluations(**filters)
        return bool(evaluations) and all(e.status in DONE for e in evaluations)

    return check


def add_testset(client: Client, tmp: Path, name: str, images: np.ndarray, labels: np.ndarray, shard: int,
                **fields: object) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    np.savez(tmp / "set.npz", images=images, labels=labels)
    p = ts.prepare_testset(tmp / "set.npz", out_dir=tmp, shard_samples=shard, num_classes=10,
                           class_subset=fields.pop("class_subset", None))  # type: ignore[arg-type]
    spec = pb.TestSetSpec(name=name, num_classes=10, channels=1, height=8, width=8, num_samples=p.num_samples,
                          class_subset=list(p.class_subset or ()),
                          shards=[pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples,
                                           size_bytes=s.size_bytes, sha256=s.sha256) for s in p.shards],
                          **fields)  # type: ignore[arg-type]
    client.add_testset(spec, [s.path for s in p.shards])


def metadata(name: str) -> pb.ModelMetadata:
    return pb.ModelMetadata(name=name, version="1", format=pb.MODEL_FORMAT_TORCHSCRIPT,
                            input=pb.InputSpec(channels=1, height=8, width=8), num_classes=10,
                            category=pb.MODEL_CATEGORY_STANDARD)


@pytest.fixture(scope="module")
def client(running_stack):
    with Client.from_settings(running_stack.settings) as c:
        yield c


def test_predictions_equal_torch_and_new_testsets_trigger(client, tmp_path):
    images, labels = helpers.digits(400)
    add_testset(client, tmp_path / "ref", "e2e-ref", images, labels, 150, kind=pb.TEST_SET_KIND_REFERENCE)
    paths = {"e2e-linear": save(helpers.Linear(64, 10), tmp_path / "linear.pt", 1),
             "e2e-mlp": save(MLP(), tmp_path / "mlp.pt", 2),
             "e2e-cnn": save(CNN(), tmp_path / "cnn.pt", 3)}
    for name, path in paths.items():
        client.submit_model(path, metadata(name))
    # A test set registered after the models: every model is evaluated on it without another command.
    low = labels < 4
    flipped = np.ascontiguousarray(images[low][:, :, ::-1])
    add_testset(client, tmp_path / "sub", "e2e-sub", flipped, labels[low], 100, kind=pb.TEST_SET_KIND_NATURAL,
                reference="e2e-ref", class_subset=[0, 1, 2, 3])
    sets = {"e2e-ref": (images, []), "e2e-sub": (flipped, [0, 1, 2, 3])}
    for testset in sets:
        wait_for(all_done(client, testset=testset), f"evaluations on {testset}")
    for name, path in paths.items():
        deployment = client.get_model(name).deployment
        assert deployment.triton_name and deployment.state in ("READY", "UNAVAILABLE"), deployment
        for testset, (data, subset) in sets.items():
            [evaluation] = client.list_evaluations(model=name, testset=testset)
            assert evaluation.status == pb.EVALUATION_STATUS_SUCCEEDED, evaluation.error
            stored = client.predictions(name, testset)
            sample = np.concatenate([b.sample for b in stored])
            np.testing.assert_array_equal(sample, np.arange(len(data)))
            top1, top5, confidence = expected(path, data[:, None], subset)
            np.testing.assert_array_equal(np.concatenate([b.top1 for b in stored]), top1)
            np.testing.assert_array_equal(np.concatenate([b.top5 for b in stored]).reshape(-1, 5), top5)
            np.testing.assert_allclose(np.concatenate([b.confidence for b in stored]), confidence, atol=1e-5)


def test_killed_worker_resumes_without_duplicates(client, running_stack, tmp_path):
    images, labels = helpers.digits()
    add_testset(client, tmp_path / "big", "e2e-big", marked(images), labels, 60, kind=pb.TEST_SET_KIND_REFERENCE)
    path = save(Slow(), tmp_path / "slow.pt", 4)
    client.submit_model(path, metadata("e2e-slow"))
    key = pb.EvaluationKey(model="e2e-slow", version="1", testset="e2e-big")

    def progressed() -> bool:
        [e] = client.list_evaluations(model="e2e-slow", testset="e2e-big")
        assert e.status not in DONE, f"the slow evaluation ended before it could be killed: {e}"
        return e.status == pb.EVALUATION_STATUS_RUNNING and e.shards_done >= 2

    wait_for(progressed, "the slow evaluation to commit two shards")
    run = runfile.read_run_file(running_stack.settings)
    assert run is not None, "the running stack has no run file"
    worker = next(s for s in run["services"] if s["name"] == "worker")
    os.killpg(worker["pid"], signal.SIGKILL)  # the worker and its flow-run processes
    [killed] = client.list_evaluations(model="e2e-slow", testset="e2e-big")
    assert killed.shards_done < killed.shards_total

    def worker_back() -> bool:
        services = (runfile.read_run_file(running_stack.settings) or {}).get("services", [])
        return any(s["name"] == "worker" and s["state"] == "running" and s["pid"] != worker["pid"]
                   for s in services)

    wait_for(worker_back, "the supervisor to restart the worker", 120)
    # Asking again never starts a second run of a pair whose run may be alive (a heartbeat within
    # SHIFTBOARD_EVAL_STALE_S); the gateway hands the killed run's pairs out once their heartbeat is stale,
    # asked or not (tests/test_stuck_runs.py). (The slow model is evaluated on every test set of the
    # stack, not only on e2e-big.)
    unfinished = [e.key for e in client.list_evaluations(model="e2e-slow")
                  if e.status != pb.EVALUATION_STATUS_SUCCEEDED]
    assert key in unfinished
    client.request_evaluations(unfinished)
    wait_for(all_done(client, model="e2e-slow"), "the resumed evaluations", 600)
    [evaluation] = client.list_evaluations(model="e2e-slow", testset="e2e-big")
    assert evaluation.status == pb.EVALUATION_STATUS_SUCCEEDED, evaluation.error
    assert evaluation.attempts >= 2
    sample = np.concatenate([b.sample for b in client.predictions("e2e-slow", "e2e-big")])
    np.testing.assert_array_equal(sample, np.arange(len(images)))  # exactly one row per sample
