"""Triton model-repository entries for submitted classifiers (Python backend running TorchScript).

``write_python_backend_model`` lays out one model the way tritonserver expects it::

    <repo>/<model>/config.pbtxt      name, backend "python", uint8 ``images`` -> FP32 ``logits``,
                                     dynamic batching, CPU instance, parameters (below)
    <repo>/<model>/1/model.py        a copy of :mod:`shiftboard.adapters.triton.python_model`
    <repo>/<model>/1/model.pt        the TorchScript artifact

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

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.manifests import InputSpec
from shiftboard.domain.names import validate_name
from shiftboard.domain.normalisation import input_affine

log = logging.getLogger(__name__)

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
MODEL_FILE = "model.pt"
#: The Python-backend model every entry gets, copied unchanged to ``<entry>/1/model.py``.
PYTHON_MODEL = Path(__file__).with_name("python_model.py")


@cache
def python_model_source() -> bytes:
    """The bytes of ``model.py`` as every entry holds it (an entry with other bytes is out of date)."""
    return PYTHON_MODEL.read_bytes()

def environment_sys_path() -> list[str]:
    """The running environment's package directories, which ``model.py`` puts on ``sys.path``."""
    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
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
) -> Path:
    """Write (or replace) the repository entry ``<repo_dir>/<model_name>`` and return its directory.

    The TorchScript file is copied into the entry so the repository is self-contained (another
    Triton replica can serve it from a copy). ``spec`` is validated as at submission (its
    ``mean``/``std`` take none (0 / 1), one value for all channels, or one per channel).
    ``model.py`` checks the copy against ``sha256`` (given: it must match the file; else computed
    from it) before loading it. Load it afterwards with explicit model control
    (``client.load_model(model_name)``); reloading picks up a replaced entry.
    """
    validate_name(model_name, "Triton model name")
    _check_sizes(num_classes, max_batch_size)
    scale, shift = input_affine(spec)
    c, h, w = spec.channels, spec.height, spec.width
    source = Path(torchscript_path)
    if not source.is_file():
        raise InvalidArgument(f"TorchScript file {source} does not exist")
    digest = _sha256_file(source)
    if sha256 and sha256 != digest:
        raise InvalidArgument(f"TorchScript file {source} has sha256 {digest}, expected {sha256}")
    parameters = {
        "sys_path": json.dumps(environment_sys_path()),
        "torchscript_file": MODEL_FILE,
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
    tmp = version_dir / (MODEL_FILE + ".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, version_dir / MODEL_FILE)
    config = config_pbtxt(model_name, input_shape=(c, h, w), num_classes=num_classes,
                          max_batch_size=max_batch_size, parameters=parameters, instances=instances)
    _write_atomic(entry / "config.pbtxt", config.encode())
    log.info("wrote Triton model %s (%dx%dx%d -> %d classes) in %s", model_name, c, h, w, num_classes, entry)
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
