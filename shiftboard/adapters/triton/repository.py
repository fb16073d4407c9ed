"""Triton model-repository entries for submitted classifiers (Python backend running TorchScript).

``write_python_backend_model`` lays out one model the way tritonserver expects it::

    <repo>/<model>/config.pbtxt      name, backend "python", uint8 ``images`` -> FP32 ``logits``,
                                     dynamic batching, CPU instance, parameters (below)
    <repo>/<model>/1/model.py        the Python-backend model (``MODEL_PY`` below)
    <repo>/<model>/1/model.pt        the TorchScript artifact

The server does the input mapping of :class:`shiftboard.v1.InputSpec`: uint8 [0, 255] ->
[value_min, value_max] -> (x - mean) / std per channel, so clients send compact uint8 batches.

Two facts of the Python backend shape ``model.py`` (checked on this machine, see ARCHITECTURE.md):
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
from collections.abc import Sequence
from pathlib import Path

from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.names import validate_name

log = logging.getLogger(__name__)

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
MODEL_FILE = "model.pt"

# The model.py every entry gets. One response per request; a failing request gets its own
# TritonError while the others in the same dynamic batch still succeed.
MODEL_PY = '''\
"""Triton Python-backend model written by shiftboard: uint8 images -> FP32 logits (TorchScript)."""

import hashlib
import json
import os
import sys

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        # The stub ignores PYTHONPATH: make the environment's packages (torch, numpy) importable.
        for entry in reversed(json.loads(params["sys_path"])):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        import numpy as np
        import torch

        threads = int(params.get("torch_threads", "0"))
        if threads > 0:
            torch.set_num_threads(threads)
        self.np = np
        self.torch = torch
        path = os.path.join(args["model_repository"], args["model_version"], params["torchscript_file"])
        if params.get("sha256"):  # never load an artifact other than the one the catalog names
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != params["sha256"]:
                raise pb_utils.TritonModelException(
                    f"{params['torchscript_file']} does not match its sha256 {params['sha256']}: not loaded")
        self.module = torch.jit.load(path, map_location="cpu").eval()
        low, high = float(params["value_min"]), float(params["value_max"])
        channels = int(params["channels"])
        mean = json.loads(params["mean"]) or [0.0]
        std = json.loads(params["std"]) or [1.0]
        mean = torch.tensor(mean * channels if len(mean) == 1 else mean, dtype=torch.float32)
        std = torch.tensor(std * channels if len(std) == 1 else std, dtype=torch.float32)
        # x = low + u8 / 255 * (high - low); y = (x - mean) / std  ==  u8 * scale + shift
        self.scale = ((high - low) / 255.0 / std).view(1, -1, 1, 1)
        self.shift = ((low - mean) / std).view(1, -1, 1, 1)
        self.num_classes = int(params["num_classes"])

    def _forward(self, batch):
        with self.torch.inference_mode():
            x = self.torch.from_numpy(batch).to(self.torch.float32) * self.scale + self.shift
            out = self.module(x)
            if isinstance(out, (tuple, list)):
                out = out[0]
            out = out.to(self.torch.float32).reshape(batch.shape[0], -1)
        if out.shape[1] != self.num_classes:
            raise ValueError(f"model returned {out.shape[1]} logits per image, expected {self.num_classes}")
        return out.numpy()

    def execute(self, requests):
        arrays = [pb_utils.get_input_tensor_by_name(r, "images").as_numpy() for r in requests]
        try:
            logits = self._forward(self.np.concatenate(arrays)) if len(arrays) > 1 else None
        except Exception:  # one bad request must not fail the others: retry them one by one
            logits = None
        responses = []
        start = 0
        for array in arrays:
            try:
                if logits is not None:
                    part = logits[start:start + len(array)]
                else:
                    part = self._forward(array)
                tensor = pb_utils.Tensor("logits", self.np.ascontiguousarray(part, dtype=self.np.float32))
                responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
            except Exception as exc:
                responses.append(pb_utils.InferenceResponse(
                    output_tensors=[], error=pb_utils.TritonError(f"{type(exc).__name__}: {exc}")))
            start += len(array)
        return responses

    def finalize(self):
        self.module = None
'''


def environment_sys_path() -> list[str]:
    """The running environment's package directories, which ``model.py`` puts on ``sys.path``."""
    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
    out: list[str] = []
    for p in paths:
        if p not in out and os.path.isdir(p):
            out.append(p)
    return out


def _floats(values: Sequence[float], what: str, channels: int) -> list[float]:
    out = [float(v) for v in values]
    if len(out) not in (0, 1, channels):
        raise InvalidArgument(
            f"{what} has {len(out)} values: give none, one, or one per channel ({channels})")
    if what == "std" and any(v == 0 for v in out):
        raise InvalidArgument("std has a zero: every std value must be non-zero")
    return out


def _param(key: str, value: str) -> str:
    return f'parameters: {{ key: "{key}" value: {{ string_value: {json.dumps(value)} }} }}'


def config_pbtxt(model_name: str, *, input_shape: tuple[int, int, int], num_classes: int,
                 max_batch_size: int, parameters: dict[str, str], instances: int = 1,
                 max_queue_delay_us: int = 2000) -> str:
    """The ``config.pbtxt`` of a Python-backend classifier (uint8 ``images`` -> FP32 ``logits``)."""
    c, h, w = input_shape
    lines = [
        f'name: "{model_name}"',
        'backend: "python"',
        f"max_batch_size: {max_batch_size}",
        f'input [ {{ name: "{INPUT_NAME}" data_type: TYPE_UINT8 dims: [ {c}, {h}, {w} ] }} ]',
        f'output [ {{ name: "{OUTPUT_NAME}" data_type: TYPE_FP32 dims: [ {num_classes} ] }} ]',
        f"dynamic_batching {{ max_queue_delay_microseconds: {max_queue_delay_us} }}",
        f"instance_group [ {{ kind: KIND_CPU count: {instances} }} ]",
        *(_param(k, v) for k, v in parameters.items()),
    ]
    return "\n".join(lines) + "\n"


def write_python_backend_model(
    repo_dir: str | os.PathLike[str],
    model_name: str,
    torchscript_path: str | os.PathLike[str],
    input_shape: tuple[int, int, int],
    num_classes: int,
    value_min: float = 0.0,
    value_max: float = 1.0,
    mean: Sequence[float] = (),
    std: Sequence[float] = (),
    max_batch_size: int = 256,
    *,
    torch_threads: int = 1,
    instances: int = 1,
    sha256: str = "",
) -> Path:
    """Write (or replace) the repository entry ``<repo_dir>/<model_name>`` and return its directory.

    The TorchScript file is copied into the entry so the repository is self-contained (another
    Triton replica can serve it from a copy). ``mean``/``std`` take none (0 / 1), one value for all
    channels, or one per channel. ``model.py`` checks the copy against ``sha256`` (given: it must
    match the file; else computed from it) before loading it. Load it afterwards with explicit model control
    (``client.load_model(model_name)``); reloading picks up a replaced entry.
    """
    validate_name(model_name, "Triton model name")
    c, h, w = (int(v) for v in input_shape)
    if min(c, h, w) < 1:
        raise InvalidArgument(f"input shape {input_shape} must be positive (channels, height, width)")
    if num_classes < 1:
        raise InvalidArgument(f"num_classes must be at least 1, got {num_classes}")
    if max_batch_size < 1:
        raise InvalidArgument(f"max_batch_size must be at least 1, got {max_batch_size}")
    if not value_max > value_min:
        raise InvalidArgument(f"input value range [{value_min}, {value_max}] is empty")
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
        "value_min": repr(float(value_min)),
        "value_max": repr(float(value_max)),
        "mean": json.dumps(_floats(mean, "mean", c)),
        "std": json.dumps(_floats(std, "std", c)),
        "torch_threads": str(torch_threads),
        "sha256": digest,
    }
    entry = Path(repo_dir) / model_name
    version_dir = entry / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(version_dir / "model.py", MODEL_PY.encode())
    tmp = version_dir / (MODEL_FILE + ".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, version_dir / MODEL_FILE)
    config = config_pbtxt(model_name, input_shape=(c, h, w), num_classes=num_classes,
                          max_batch_size=max_batch_size, parameters=parameters, instances=instances)
    _write_atomic(entry / "config.pbtxt", config.encode())
    log.info("wrote Triton model %s (%dx%dx%d -> %d classes) in %s", model_name, c, h, w, num_classes, entry)
    return entry


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
