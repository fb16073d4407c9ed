"""ONNX models and format detection: every refusal on a real crafted file, through the real gateway.

Files are built with ``onnx.helper`` (or exported with ``torch.onnx.export``); each refusal is checked
where the submitter meets it: the gateway's answer (INVALID_ARGUMENT, one line naming the fix, nothing
stored) and, for detection, the CLI. The probe runs in the real sandbox (a sandboxed child running
onnxruntime). The opset bound of :mod:`shiftboard.formats.onnx` is checked against the installed
onnxruntime itself.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from shiftboard import formats
from shiftboard.cli.app import app
from shiftboard.domain.errors import Code, InvalidArgument
from shiftboard.formats import onnx as onnx_format
from shiftboard.services.gateway.probe import probe, sniff_format
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers


def linear_onnx(path: Path, *, batch: int | str = "N", classes: int = 10, opset: int = 20,
                custom_domain: str = "", seed: int = 0) -> Path:
    """[N, 1, 8, 8] float32 -> Flatten -> MatMul -> Add: a linear classifier as an ONNX graph."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.normal(size=(64, classes)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(classes,)).astype(np.float32), "b")
    nodes = [helper.make_node("Flatten", ["x"], ["flat"]), helper.make_node("MatMul", ["flat", "W"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["y"])]
    imports = [helper.make_opsetid("", opset)]
    if custom_domain:
        nodes.insert(1, helper.make_node("Exfiltrate", ["flat"], ["flat2"], domain=custom_domain))
        nodes[2].input[0] = "flat2"
        imports.append(helper.make_opsetid(custom_domain, 1))
    graph = helper.make_graph(nodes, "linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                              [batch, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, classes])],
                              initializer=[weight, bias])
    model = helper.make_model(graph, opset_imports=imports, ir_version=10)
    onnx.save_model(model, str(path))
    return path


def save_external(source: Path, path: Path, location: str) -> Path:
    """``source`` saved at ``path`` with every tensor in the file ``location`` beside it."""
    from onnx.external_data_helper import convert_model_to_external_data

    model = onnx.load(str(source))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location=location, size_threshold=0)
    onnx.save_model(model, str(path))
    return path


def metadata(name: str, classes: int = 10) -> pb.ModelMetadata:
    return pb.ModelMetadata(name=name, version="1", format=pb.MODEL_FORMAT_ONNX,
                            input=pb.InputSpec(channels=1, height=8, width=8), num_classes=classes,
                            category=pb.MODEL_CATEGORY_STANDARD)


def assert_nothing_stored(gateway, models: int) -> None:
    assert len(gateway.client.list_models()) == models
    assert len([k for k in gateway.store.list("") if k.startswith("models/")]) == models


# ------------------------------------------------------------------------------------------ detection


def test_formats_are_detected_from_the_bytes(tmp_path):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    torch.jit.script(module).save(str(tmp_path / "m.pt"))  # torch 2.13 warns: TorchScript is deprecated
    program = torch.export.export(module, (torch.rand(2, 1, 8, 8),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    assert formats.sniff(tmp_path / "m.pt") == "torchscript"
    assert formats.sniff(tmp_path / "m.pt2") == "torch-export"
    assert formats.sniff(linear_onnx(tmp_path / "m.onnx")) == "onnx"
    with pytest.raises(InvalidArgument, match="torch.save"):
        formats.sniff(helpers.eager_pickle(tmp_path / "eager.pt"))
    with pytest.raises(InvalidArgument, match="Python pickle"):
        formats.sniff(helpers.plain_pickle(tmp_path / "p.pkl"))
    # a declared format the file is not in is refused, naming the detected one
    with pytest.raises(InvalidArgument, match="is a TorchScript archive, not an ONNX model: submit it with "
                                              "--format torchscript"):
        formats.resolve(tmp_path / "m.pt", "onnx")
    with pytest.raises(InvalidArgument, match="is an ONNX model, not a torch.export archive"):
        formats.resolve(tmp_path / "m.onnx", "torch-export")
    assert formats.resolve(tmp_path / "m.onnx", "") == "onnx"


def test_the_opset_bound_is_what_the_installed_onnxruntime_runs(tmp_path):
    import onnxruntime

    newest = onnx_format.max_opset()
    onnxruntime.InferenceSession(str(linear_onnx(tmp_path / "ok.onnx", opset=newest)),
                                 providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="(?i)opset"):
        onnxruntime.InferenceSession(str(linear_onnx(tmp_path / "new.onnx", opset=newest + 1)),
                                     providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------------------------------ refusals


def test_static_refusals_name_the_problem_and_the_fix(tmp_path):
    """Each static check on a crafted file, without the gateway (the gateway's answer is checked below)."""
    with pytest.raises(InvalidArgument, match="domain 'com.example'.*no custom operators"):
        sniff_format(linear_onnx(tmp_path / "custom.onnx", custom_domain="com.example"), "onnx")
    with pytest.raises(InvalidArgument, match=f"opset 27 of the default domain.*opsets 7 to {onnx_format.MAX_OPSET}"):
        sniff_format(linear_onnx(tmp_path / "new.onnx", opset=27), "onnx")
    with pytest.raises(InvalidArgument, match="fixed batch size of 2: export the batch dimension as dynamic"):
        sniff_format(linear_onnx(tmp_path / "static.onnx", batch=2), "onnx")
    # external data: the weights in a file beside the model
    save_external(linear_onnx(tmp_path / "inline.onnx"), tmp_path / "ext.onnx", "weights.bin")
    assert (tmp_path / "weights.bin").is_file()
    with pytest.raises(InvalidArgument, match="external file \\('weights.bin'\\).*external_data=False"):
        sniff_format(tmp_path / "ext.onnx", "onnx")
    # a model-local function (a new operator defined in the file) is refused too
    model = onnx.load(str(linear_onnx(tmp_path / "f.onnx")))
    model.functions.append(helper.make_function("local.fn", "Twice", ["a"], ["b"],
                                                [helper.make_node("Add", ["a", "a"], ["b"])],
                                                [helper.make_opsetid("", 20)]))
    onnx.save_model(model, str(tmp_path / "f.onnx"))
    with pytest.raises(InvalidArgument, match="function 'Twice'"):
        sniff_format(tmp_path / "f.onnx", "onnx")
    # a file that only starts like a ModelProto
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07" + np.random.default_rng(0).bytes(64))
    with pytest.raises(InvalidArgument, match="not a readable ONNX model"):
        sniff_format(tmp_path / "junk.onnx", "onnx")


@pytest.mark.parametrize("case", ["custom-domain", "external-data", "opset-too-new", "static-batch",
                                  "bad-output-shape", "pickle"])
def test_the_gateway_refuses_each_bad_onnx_file(gateway, tmp_path, case):
    before = len(gateway.client.list_models())
    classes = 10
    if case == "custom-domain":
        path, words = linear_onnx(tmp_path / "m.onnx", custom_domain="com.example"), "custom operators"
    elif case == "external-data":
        path = save_external(linear_onnx(tmp_path / "inline.onnx"), tmp_path / "m.onnx", "m.onnx.data")
        words = "external file"
    elif case == "opset-too-new":
        path, words = linear_onnx(tmp_path / "m.onnx", opset=27), "opset 27"
    elif case == "static-batch":
        path, words = linear_onnx(tmp_path / "m.onnx", batch=1), "fixed batch size of 1.*dynamic_shapes"
    elif case == "bad-output-shape":  # passes every static check: the sandboxed probe runs it
        path, words = linear_onnx(tmp_path / "m.onnx", classes=5), r"shape \[4, 5\], expected \[4, 10\]"
    else:
        path = tmp_path / "m.onnx"
        path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
        words = "not an ONNX model \\(--format onnx\\): the model file is a Python pickle"
    with pytest.raises(InvalidArgument, match=words) as info:
        gateway.client.submit_model(path, metadata(f"bad-{case}", classes))
    assert info.value.code is Code.INVALID_ARGUMENT and "\n" not in info.value.message
    assert_nothing_stored(gateway, before)


def test_a_good_onnx_export_is_probed_in_the_sandbox_and_stored(gateway, tmp_path):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(256, 10)).eval()
    path = tmp_path / "cnn.onnx"
    torch.onnx.export(module, (torch.rand(2, 1, 8, 8),), str(path), external_data=False,
                      dynamic_shapes=({0: torch.export.Dim("batch")},))
    assert not (tmp_path / "cnn.onnx.data").exists()
    seconds = probe(path, channels=1, height=8, width=8, num_classes=10, settings=gateway.settings,
                    model_format="", full_batch=64)
    assert seconds > 0
    stored = gateway.client.submit_model(path, metadata("good-onnx"))
    assert stored.metadata.format == pb.MODEL_FORMAT_ONNX and stored.artifact_uri.endswith(".onnx")
    assert stored.probe_seconds_per_sample > 0


def test_the_cli_detects_the_format_and_refuses_a_wrong_one(gateway, tmp_path):
    runner = CliRunner()
    env = {k: v for k, v in gateway.settings.as_env().items() if v}
    env["SHIFTBOARD_GATEWAY_ADDRESS"] = gateway.target
    env["SHIFTBOARD_TOKEN"] = ""
    path = linear_onnx(tmp_path / "lin.onnx", seed=3)
    args = ["model", "submit", str(path), "--num-classes", "10", "--input-shape", "1,8,8"]
    result = runner.invoke(app, [*args, "--name", "cli-onnx"], env=env)
    assert result.exit_code == 0, result.output
    assert "detected format: onnx" in result.output and "deprecated" not in result.output
    torchscript = helpers.torchscript_model(tmp_path / "lin.pt")
    wrong = runner.invoke(app, ["model", "submit", str(torchscript), "--num-classes", "10", "--input-shape",
                                "1,8,8", "--name", "cli-wrong", "--format", "onnx"], env=env)
    assert wrong.exit_code == 1 and "Traceback" not in wrong.output
    assert "is a TorchScript archive, not an ONNX model: submit it with --format torchscript" in wrong.output
    deprecated = runner.invoke(app, ["model", "submit", str(torchscript), "--num-classes", "10", "--input-shape",
                                     "1,8,8", "--name", "cli-ts"], env=env)
    assert deprecated.exit_code == 0, deprecated.output
    assert "detected format: torchscript" in deprecated.output
    assert "TorchScript is deprecated by torch" in deprecated.output and "--format onnx" in deprecated.output
    assert "cli-wrong" not in {m.metadata.name for m in gateway.client.list_models()}
