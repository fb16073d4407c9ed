"""Triton model-repository entries for submitted classifiers: the Python backend (every format) and
Triton's onnxruntime backend (ONNX).

``write_python_backend_model`` lays out one model the way tritonserver expects it::

    <repo>/<model>/config.pbtxt      name, backend "python", uint8 ``images`` -> FP32 ``logits``,
                                     dynamic batching, CPU instance, parameters (below)
    <repo>/<model>/1/model.py        a copy of :mod:`shiftboard.adapters.triton.python_model`
    <repo>/<model>/1/model.<ext>     the artifact: model.pt (TorchScript), model.onnx, model.pt2 (torch.export)

``write_onnxruntime_model`` writes an ONNX model for Triton's own onnxruntime backend (the NGC images;
the embedded tritonserver has none): ``config.pbtxt`` (``platform: "onnxruntime_onnx"``, KIND_CPU, or
KIND_GPU with ``gpu``) and ``1/model.onnx``, the submitted graph behind a uint8 prologue
(:func:`uint8_onnx`), because that backend hands the request tensor to the graph unchanged.

``config.pbtxt`` is Triton's ``ModelConfig`` message (``model_config.proto``, shipped in
``tritonclient``), built by :func:`classifier_config` and printed with protobuf's ``text_format``;
the native-backend entries of ``deploy/triton/pytorch_libtorch/make_entry.py`` use the same builder.

The server does the input mapping of the model's :class:`~shiftboard.domain.manifests.InputSpec`
(uint8 [0, 255] -> [value_min, value_max] -> (x - mean) / std per channel), so clients send compact
uint8 batches; the entry holds it as the one affine map per channel that
:func:`~shiftboard.domain.normalisation.input_affine` computes (parameters ``scale`` and ``shift``).

Two facts of the Python backend shape ``model.py`` (checked with the tritonserver of nvidia-pytriton):
the backend stub ignores ``PYTHONPATH``, so ``model.py`` puts the environment's site-packages on
``sys.path`` itself, from the ``sys_path`` parameter written here; and it runs in its own process
per model instance, so ``torch_threads`` bounds the CPU threads each instance uses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import site
import sysconfig
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.manifests import InputSpec, validate_input
from shiftboard.domain.names import validate_name
from shiftboard.domain.normalisation import input_affine

log = logging.getLogger(__name__)

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
MODEL_FILE = "model.pt"
#: The artifact's file name in an entry, per model format.
MODEL_FILES = {"torchscript": MODEL_FILE, "onnx": "model.onnx", "torch-export": "model.pt2"}
#: The Python-backend model every entry gets, copied unchanged to ``<entry>/1/model.py``.
PYTHON_MODEL = Path(__file__).with_name("python_model.py")


@cache
def python_model_source() -> bytes:
    """The bytes of ``model.py`` as every entry holds it (an entry with other bytes is out of date)."""
    return PYTHON_MODEL.read_bytes()

def environment_sys_path() -> list[str]:
    """The running environment's package directories, which ``model.py`` puts on ``sys.path``, and the
    folder holding the ``shiftboard`` package (an editable install's checkout: the stub does not run
    the ``.pth`` hooks that make it importable elsewhere)."""
    import shiftboard

    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages(),
             str(Path(shiftboard.__file__).resolve().parent.parent)]
    out: list[str] = []
    for p in paths:
        if p not in out and os.path.isdir(p):
            out.append(p)
    return out


def classifier_config(model_name: str, *, input_shape: tuple[int, int, int], num_classes: int,
                      max_batch_size: int, parameters: Mapping[str, str], instances: int = 1,
                      max_queue_delay_us: int = 2000, backend: str = "python", platform: str = "",
                      gpu: bool = False) -> model_config_pb2.ModelConfig:
    """Triton's ``ModelConfig`` of a classifier: uint8 ``images`` [C, H, W] -> FP32 ``logits`` [classes].

    Dynamic batching up to ``max_batch_size``, ``instances`` instances (on CPU, or per GPU with
    ``gpu``), and string ``parameters`` for the backend. Give ``backend`` (``python``) or
    ``platform`` (``pytorch_libtorch``, with ``backend=""``).
    """
    config = model_config_pb2.ModelConfig(name=model_name, backend=backend, platform=platform,
                                          max_batch_size=max_batch_size)
    config.input.add(name=INPUT_NAME, data_type=model_config_pb2.TYPE_UINT8, dims=list(input_shape))
    config.output.add(name=OUTPUT_NAME, data_type=model_config_pb2.TYPE_FP32, dims=[num_classes])
    config.dynamic_batching.max_queue_delay_microseconds = max_queue_delay_us
    group = model_config_pb2.ModelInstanceGroup
    config.instance_group.add(kind=group.KIND_GPU if gpu else group.KIND_CPU, count=instances)
    for key, value in parameters.items():
        config.parameters[key].string_value = value
    return config


def config_text(config: model_config_pb2.ModelConfig) -> str:
    """``config.pbtxt``: the message in protobuf's text format, as Triton reads it."""
    text: str = text_format.MessageToString(config)
    return text


def config_pbtxt(model_name: str, *, input_shape: tuple[int, int, int], num_classes: int,
                 max_batch_size: int, parameters: Mapping[str, str], instances: int = 1,
                 max_queue_delay_us: int = 2000) -> str:
    """The ``config.pbtxt`` of a Python-backend classifier (uint8 ``images`` -> FP32 ``logits``)."""
    return config_text(classifier_config(
        model_name, input_shape=input_shape, num_classes=num_classes, max_batch_size=max_batch_size,
        parameters=parameters, instances=instances, max_queue_delay_us=max_queue_delay_us))


def write_python_backend_model(
    repo_dir: str | os.PathLike[str],
    model_name: str,
    torchscript_path: str | os.PathLike[str],
    spec: InputSpec,
    num_classes: int,
    max_batch_size: int = 256,
    *,
    torch_threads: int = 1,
    instances: int = 1,
    sha256: str = "",
    model_format: str = "torchscript",
) -> Path:
    """Write (or replace) the repository entry ``<repo_dir>/<model_name>`` and return its directory.

    The artifact (in ``model_format``: torchscript, onnx or torch-export) is copied into the entry as
    ``1/`` + :data:`MODEL_FILES` ``[model_format]`` so the repository is self-contained (another
    Triton replica can serve it from a copy). ``spec`` is validated as at submission (its
    ``mean``/``std`` take none (0 / 1), one value for all channels, or one per channel).
    ``model.py`` checks the copy against ``sha256`` (given: it must match the file; else computed
    from it) before loading it. Load it afterwards with explicit model control
    (``client.load_model(model_name)``); reloading picks up a replaced entry.
    """
    validate_name(model_name, "Triton model name")
    _check_sizes(num_classes, max_batch_size)
    if model_format not in MODEL_FILES:
        raise InvalidArgument(f"unknown model format {model_format!r}: use {', '.join(MODEL_FILES)}")
    artifact = MODEL_FILES[model_format]
    scale, shift = input_affine(spec)
    c, h, w = spec.channels, spec.height, spec.width
    source = Path(torchscript_path)
    digest = _checked_source(source, sha256)
    parameters = {
        "sys_path": json.dumps(environment_sys_path()),
        "model_format": model_format,
        "artifact_file": artifact,
        "channels": str(c),
        "num_classes": str(num_classes),
        "scale": json.dumps(scale),
        "shift": json.dumps(shift),
        "torch_threads": str(torch_threads),
        "sha256": digest,
    }
    entry = Path(repo_dir) / model_name
    version_dir = entry / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(version_dir / "model.py", python_model_source())
    tmp = version_dir / (artifact + ".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, version_dir / artifact)
    config = config_pbtxt(model_name, input_shape=(c, h, w), num_classes=num_classes,
                          max_batch_size=max_batch_size, parameters=parameters, instances=instances)
    _write_atomic(entry / "config.pbtxt", config.encode())
    log.info("wrote Triton model %s (%dx%dx%d -> %d classes) in %s", model_name, c, h, w, num_classes, entry)
    return entry


def _checked_source(source: Path, sha256: str) -> str:
    """The sha256 of the artifact at ``source``, which must exist and match ``sha256`` when given."""
    if not source.is_file():
        raise InvalidArgument(f"model file {source} does not exist")
    digest = _sha256_file(source)
    if sha256 and sha256 != digest:
        raise InvalidArgument(f"model file {source} has sha256 {digest}, expected {sha256}")
    return digest


def onnxruntime_config(model_name: str, *, input_shape: tuple[int, int, int], num_classes: int,
                       max_batch_size: int, instances: int = 1, gpu: bool = False,
                       max_queue_delay_us: int = 2000) -> model_config_pb2.ModelConfig:
    """Triton's ``ModelConfig`` of an onnxruntime-backend classifier (``platform: "onnxruntime_onnx"``,
    ``backend: "onnxruntime"``), on CPU or, with ``gpu``, on every GPU."""
    return classifier_config(model_name, input_shape=input_shape, num_classes=num_classes,
                             max_batch_size=max_batch_size, parameters={}, instances=instances,
                             max_queue_delay_us=max_queue_delay_us, backend="onnxruntime",
                             platform="onnxruntime_onnx", gpu=gpu)


def uint8_onnx(model: Any, spec: InputSpec, num_classes: int) -> Any:
    """``model`` (an ONNX ``ModelProto`` taking float32 [N, C, H, W]) behind a prologue taking uint8
    ``images`` and mapping them as the Python-backend model does (``u8 * scale + shift`` per channel,
    :func:`~shiftboard.domain.normalisation.input_affine`), its first output cast to float32 ``logits``.

    The submitted graph's names get the prefix ``model/`` (``onnx.compose.add_prefix``), so that none
    collides with ``images``, ``logits`` or the prologue's. Nothing of the model runs here."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    scale, shift = input_affine(spec)
    inner = onnx.compose.add_prefix(model, "model/")
    graph = inner.graph
    initializers = {t.name for t in graph.initializer}
    [source] = [i for i in graph.input if i.name not in initializers]
    output = graph.output[0]
    c = spec.channels
    graph.initializer.extend([
        numpy_helper.from_array(np.asarray(scale, dtype=np.float32).reshape(1, c, 1, 1), "shiftboard/scale"),
        numpy_helper.from_array(np.asarray(shift, dtype=np.float32).reshape(1, c, 1, 1), "shiftboard/shift"),
    ])
    prologue = [
        helper.make_node("Cast", [INPUT_NAME], ["shiftboard/float"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Mul", ["shiftboard/float", "shiftboard/scale"], ["shiftboard/scaled"]),
        helper.make_node("Add", ["shiftboard/scaled", "shiftboard/shift"], [source.name]),
    ]
    epilogue = helper.make_node("Cast", [output.name], [OUTPUT_NAME], to=onnx.TensorProto.FLOAT)
    nodes = [*prologue, *graph.node, epilogue]
    del graph.node[:]
    graph.node.extend(nodes)
    images = helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.UINT8,
                                           ["batch", spec.channels, spec.height, spec.width])
    logits = helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, ["batch", num_classes])
    kept = [i for i in graph.input if i.name != source.name]
    del graph.input[:]
    graph.input.extend([images, *kept])
    del graph.output[:]
    graph.output.append(logits)
    return inner


def write_onnxruntime_model(
    repo_dir: str | os.PathLike[str],
    model_name: str,
    onnx_path: str | os.PathLike[str],
    spec: InputSpec,
    num_classes: int,
    max_batch_size: int = 256,
    *,
    instances: int = 1,
    gpu: bool = False,
    sha256: str = "",
) -> Path:
    """Write (or replace) the onnxruntime-backend entry ``<repo_dir>/<model_name>`` and return its directory.

    The ONNX file is checked against ``sha256`` (when given) and statically as at submission
    (:func:`shiftboard.formats.onnx.check`), wrapped by :func:`uint8_onnx` and written as
    ``1/model.onnx``, the name the backend loads. Triton's onnxruntime backend does not check digests:
    the check happens here, on the file downloaded from the object store."""
    import onnx

    from shiftboard.formats import onnx as onnx_format

    validate_name(model_name, "Triton model name")
    _check_sizes(num_classes, max_batch_size)
    spec = validate_input(spec)
    source = Path(onnx_path)
    _checked_source(source, sha256)
    onnx_format.check(source)
    wrapped = uint8_onnx(onnx.load(str(source), load_external_data=False), spec, num_classes)
    onnx.checker.check_model(wrapped, full_check=True)
    entry = Path(repo_dir) / model_name
    version_dir = entry / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    (version_dir / "model.py").unlink(missing_ok=True)  # an entry of the Python backend before
    _write_atomic(version_dir / MODEL_FILES["onnx"], wrapped.SerializeToString())
    config = config_text(onnxruntime_config(model_name, input_shape=(spec.channels, spec.height, spec.width),
                                            num_classes=num_classes, max_batch_size=max_batch_size,
                                            instances=instances, gpu=gpu))
    _write_atomic(entry / "config.pbtxt", config.encode())
    log.info("wrote onnxruntime Triton model %s (%s) in %s", model_name, "GPU" if gpu else "CPU", entry)
    return entry


def _check_sizes(num_classes: int, max_batch_size: int) -> None:
    if num_classes < 1:
        raise InvalidArgument(f"num_classes must be at least 1, got {num_classes}")
    if max_batch_size < 1:
        raise InvalidArgument(f"max_batch_size must be at least 1, got {max_batch_size}")


def remove_model(repo_dir: str | os.PathLike[str], model_name: str) -> None:
    """Delete a repository entry (unload it from Triton first)."""
    validate_name(model_name, "Triton model name")
    shutil.rmtree(Path(repo_dir) / model_name, ignore_errors=True)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
