"""Inference deadlines, against real servers (a gateway, tritonserver, the object store).

- the submission probe runs a full-size batch (the evaluation batch size): a model that hangs only on
  batches of more than 8 images is refused at submission, with a message naming the full batch;
- the probe's time per image is recorded with the model, and every inference request gets a deadline
  derived from it (at least ``eval_deadline_min_s``, small here): a model that passes the probe but hangs
  on some test-set images (an all-black one, which the probe's random batches never hold) fails
  permanently with the deadline in its message, the model is unloaded and no process of it is left, while
  another model's evaluation on the same Triton completes, and Triton is ready afterwards.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from shiftboard import testsets as ts
from shiftboard.adapters.triton.client import ModelDeadlineExceeded, TritonAuth, connect
from shiftboard.adapters.triton.deployer import deployment_state, triton_model_name
from shiftboard.domain.errors import InvalidArgument
from shiftboard.flows.evaluate import RunProgress, is_transient, request_deadline_s, run_evaluation
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers
from tests.conftest import GatewayHandle, serving_gateway
from tests.test_flows import _gateway_settings, triton  # noqa: F401 - triton: the module's tritonserver

pytestmark = pytest.mark.stack


class HangsOnLargeBatches(torch.nn.Module):
    """Spins forever on a batch of more than 8 images."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 8:
            i = 0
            while i >= 0:
                i = i + 1
        return self.fc(x.flatten(1))


class HangsOnBlackImages(torch.nn.Module):
    """Spins forever on a batch holding an all-black image (the probe's random images never are)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x.flatten(1).amax(dim=1) == 0.0).any()):
            i = 0
            while i >= 0:
                i = i + 1
        return self.fc(x.flatten(1))


def _save(module: torch.nn.Module, path: Path) -> Path:
    torch.manual_seed(0)
    torch.jit.script(module).save(str(path))
    return path


def _metadata(name: str) -> pb.ModelMetadata:
    return pb.ModelMetadata(name=name, version="1", format=pb.MODEL_FORMAT_TORCHSCRIPT,
                            input=pb.InputSpec(channels=1, height=8, width=8), num_classes=10,
                            category=pb.MODEL_CATEGORY_STANDARD)


@pytest.fixture(scope="module")
def deadline_gateway(object_store: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    """A gateway whose probe runs a full batch of 64 images within 30 s."""
    settings = object_store.replace(probe_timeout_s=30.0, eval_batch_size=64)
    with serving_gateway(settings, tmp_path_factory.mktemp("deadline-gw"), "deadline-tests") as handle:
        yield handle


def test_probe_refuses_a_model_that_hangs_on_full_batches(deadline_gateway, tmp_path):
    path = _save(HangsOnLargeBatches(), tmp_path / "large.pt")
    with pytest.raises(InvalidArgument, match="ran a probe batch of 4 images but not a full batch of 64 images "
                                              r"\(the evaluation batch size\).*hangs or is too slow on large batches"):
        deadline_gateway.client.submit_model(path, _metadata("hangs-large"))
    assert not deadline_gateway.client.list_models()  # nothing stored


def _register(gateway: GatewayHandle, tmp_path: Path, name: str, *, black: int | None = None) -> None:
    images, labels = helpers.digits(300)
    if black is not None:
        images = images.copy()
        images[black] = 0
    npz = tmp_path / f"{name}.npz"
    np.savez(npz, images=images, labels=labels)
    p = ts.prepare_testset(npz, out_dir=tmp_path / name, shard_samples=100)
    spec = pb.TestSetSpec(
        name=name, kind=pb.TEST_SET_KIND_REFERENCE, num_classes=10, channels=1, height=8, width=8,
        num_samples=p.num_samples,
        shards=[pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples,
                         size_bytes=s.size_bytes, sha256=s.sha256) for s in p.shards])
    gateway.client.add_testset(spec, [s.path for s in p.shards])


def test_a_model_hanging_on_test_images_fails_permanently_and_others_are_served(deadline_gateway, triton,  # noqa: F811
                                                                                 tmp_path):
    gateway = deadline_gateway
    client = gateway.client
    settings = _gateway_settings(gateway, triton).replace(eval_deadline_min_s=5.0)
    hung = client.submit_model(_save(HangsOnBlackImages(), tmp_path / "black.pt"), _metadata("hangs-black"))
    client.submit_model(helpers.torchscript_model(tmp_path / "good.pt", seed=3), _metadata("served"))
    # the probe measured the model, and the gateway hands that on with the model
    assert hung.probe_seconds_per_sample > 0
    assert client.get_model("hangs-black", "1").probe_seconds_per_sample == hung.probe_seconds_per_sample
    assert request_deadline_s(settings, hung, 64) == 5.0  # a tiny model: the minimum applies
    _register(gateway, tmp_path, "deadline-black", black=150)  # in shard 1
    _register(gateway, tmp_path, "deadline-plain")

    failure: list[BaseException] = []

    def evaluate_hung() -> None:
        plan = client.start_evaluation(pb.EvaluationKey(model="hangs-black", version="1",
                                                        testset="deadline-black"), "run-hung")
        try:
            run_evaluation(settings, client, plan, RunProgress())
        except BaseException as exc:  # noqa: BLE001 - checked below
            failure.append(exc)

    thread = threading.Thread(target=evaluate_hung)
    thread.start()
    # meanwhile, another model on the same Triton
    key = pb.EvaluationKey(model="served", version="1", testset="deadline-plain")
    progress = run_evaluation(settings, client, client.start_evaluation(key, "run-good"), RunProgress())
    assert progress.samples == 300
    thread.join(timeout=120)
    assert not thread.is_alive()

    assert len(failure) == 1 and isinstance(failure[0], ModelDeadlineExceeded), failure
    exc = failure[0]
    assert not is_transient(exc)  # a flow fails the pair at once, no retry
    assert re.search(r"hangs-black:1 did not answer a request of \d+ images on shard \d+ within its deadline of 5 s",
                     exc.message), exc.message
    assert "SHIFTBOARD_EVAL_DEADLINE_MIN_S=5 s" in exc.message
    assert "it failed permanently and it was unloaded from Triton" in exc.message, exc.message
    # no process of its instance is left spinning
    marker = f"/{triton_model_name('hangs-black', '1', hung.sha256)}/1/model.py"
    assert not [p for p in psutil.process_iter(["cmdline"]) if any(a.endswith(marker) for a in p.info["cmdline"] or [])]
    # the hung model is no longer loaded nor stuck unloading; Triton is ready and still serves
    assert deployment_state(settings, hung).state not in ("READY", "UNLOADING", "LOADING")
    triton_client = connect(settings.triton_target, TritonAuth.from_settings(settings))
    try:
        assert triton_client.is_server_ready()
    finally:
        triton_client.close()
    key2 = pb.EvaluationKey(model="served", version="1", testset="deadline-black")
    assert run_evaluation(settings, client, client.start_evaluation(key2, "run-good-2"),
                          RunProgress()).samples == 300
    assert client.finish_evaluation(key2).status == pb.EVALUATION_STATUS_SUCCEEDED
