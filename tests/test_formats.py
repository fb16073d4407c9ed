"""The same weights give the same predictions whatever the model format, through the real stack.

One small CNN is exported three ways — TorchScript (``torch.jit.script``), ONNX (``torch.onnx.export``
with a dynamic batch) and an ExportedProgram (``torch.export.export`` with ``Dim`` for the batch,
``torch.export.save``) — submitted through the gateway, probed in the sandbox, evaluated by the Prefect
worker through Triton (the Python-backend model loading each through :mod:`shiftboard.formats`) on one
test set, and read back with GetPredictions: top-1 identical, confidences within 1e-5, and both equal to
the network run in this process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from shiftboard.client import Client
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers
from tests.test_end_to_end import add_testset, all_done, wait_for

pytestmark = pytest.mark.stack

FORMATS = {"torchscript": pb.MODEL_FORMAT_TORCHSCRIPT, "onnx": pb.MODEL_FORMAT_ONNX,
           "torch-export": pb.MODEL_FORMAT_TORCH_EXPORT}


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


def network() -> torch.nn.Module:
    torch.manual_seed(7)
    module = SmallCNN()
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.5)
    assert module.bn.running_mean is not None and module.bn.running_var is not None
    module.bn.running_mean.normal_(0, 0.1)
    module.bn.running_var.uniform_(0.5, 1.5)
    return module.eval()


def export_all(module: torch.nn.Module, out: Path) -> dict[str, Path]:
    example = (torch.rand(2, 1, 8, 8),)
    batch = ({0: torch.export.Dim("batch")},)
    paths = {"torchscript": out / "cnn.pt", "onnx": out / "cnn.onnx", "torch-export": out / "cnn.pt2"}
    torch.jit.script(module).save(str(paths["torchscript"]))  # torch 2.13 warns: TorchScript is deprecated
    torch.onnx.export(module, example, str(paths["onnx"]), dynamic_shapes=batch, external_data=False)
    torch.export.save(torch.export.export(module, example, dynamic_shapes=batch), str(paths["torch-export"]))
    return paths


@pytest.fixture(scope="module")
def client(running_stack):
    with Client.from_settings(running_stack.settings) as c:
        yield c


def test_every_format_predicts_the_same_through_triton(client, tmp_path):
    images, labels = helpers.digits(500)
    add_testset(client, tmp_path / "set", "formats-ref", images, labels, 200, kind=pb.TEST_SET_KIND_REFERENCE)
    module = network()
    paths = export_all(module, tmp_path)
    for word, path in paths.items():
        stored = client.submit_model(path, pb.ModelMetadata(
            name=f"formats-{word}", version="1", format=FORMATS[word], num_classes=10,
            input=pb.InputSpec(channels=1, height=8, width=8), category=pb.MODEL_CATEGORY_STANDARD))
        assert stored.metadata.format == FORMATS[word]
    wait_for(all_done(client, testset="formats-ref"), "the evaluations of every format", 600)
    with torch.no_grad():
        logits = module(torch.from_numpy(images[:, None].astype(np.float32) / 255.0)).double()
    want_top1 = logits.argmax(1).numpy()
    want_confidence = logits.softmax(1).max(1).values.numpy()
    results = {}
    for word in paths:
        [evaluation] = client.list_evaluations(model=f"formats-{word}", testset="formats-ref")
        assert evaluation.status == pb.EVALUATION_STATUS_SUCCEEDED, (word, evaluation.error)
        stored = client.predictions(f"formats-{word}", "formats-ref")
        np.testing.assert_array_equal(np.concatenate([b.sample for b in stored]), np.arange(len(images)))
        results[word] = (np.concatenate([b.top1 for b in stored]), np.concatenate([b.confidence for b in stored]))
    top1, confidence = results["torchscript"]
    for word, (other_top1, other_confidence) in results.items():
        np.testing.assert_array_equal(other_top1, top1, err_msg=f"{word} vs torchscript")
        np.testing.assert_allclose(other_confidence, confidence, atol=1e-5, rtol=0, err_msg=f"{word} vs torchscript")
        np.testing.assert_array_equal(other_top1, want_top1, err_msg=f"{word} vs torch in-process")
        np.testing.assert_allclose(other_confidence, want_confidence, atol=1e-5, rtol=0)
    assert len(set(top1.tolist())) > 1  # the network is not a constant: equal top-1 means something
