"""Triton Python-backend model written by shiftboard: uint8 images -> FP32 logits (TorchScript).

This file is not imported by shiftboard: :func:`shiftboard.adapters.triton.repository.write_python_backend_model`
copies it, byte for byte, into every repository entry as ``1/model.py``, and Triton's backend stub
runs it there (``triton_python_backend_utils`` exists only inside that stub). Everything it needs
comes from the entry's ``config.pbtxt`` parameters: ``sys_path`` (the stub ignores ``PYTHONPATH``,
so the environment's packages are put on ``sys.path`` before torch and numpy are imported),
``torchscript_file`` and its ``sha256``, the input mapping ``u8 * scale + shift`` (one value per
channel each, computed by ``shiftboard.domain.normalisation.input_affine``), ``num_classes`` and
``torch_threads``.

One response per request: a failing request gets its own ``TritonError`` while the others in the
same dynamic batch still succeed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import TYPE_CHECKING, Any

import triton_python_backend_utils as pb_utils

if TYPE_CHECKING:
    import numpy as np
    import torch


class TritonPythonModel:
    """The model instance Triton creates: ``initialize`` once, ``execute`` per batch of requests."""

    module: torch.jit.ScriptModule | None
    scale: torch.Tensor
    shift: torch.Tensor
    num_classes: int

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        # The stub ignores PYTHONPATH: make the environment's packages (torch, numpy) importable.
        for entry in reversed(json.loads(params["sys_path"])):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        import torch

        threads = int(params.get("torch_threads", "0"))
        if threads > 0:
            torch.set_num_threads(threads)
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
        self.scale = torch.tensor(json.loads(params["scale"]), dtype=torch.float32).view(1, -1, 1, 1)
        self.shift = torch.tensor(json.loads(params["shift"]), dtype=torch.float32).view(1, -1, 1, 1)
        self.num_classes = int(params["num_classes"])

    def _forward(self, batch: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        import torch

        assert self.module is not None, "execute after finalize"
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(torch.float32) * self.scale + self.shift
            out = self.module(x)
            if isinstance(out, (tuple, list)):
                out = out[0]
            out = out.to(torch.float32).reshape(batch.shape[0], -1)
        if out.shape[1] != self.num_classes:
            raise ValueError(f"model returned {out.shape[1]} logits per image, expected {self.num_classes}")
        result: np.ndarray[Any, Any] = out.numpy()
        return result

    def execute(self, requests: list[Any]) -> list[Any]:
        import numpy as np

        arrays = [pb_utils.get_input_tensor_by_name(r, "images").as_numpy() for r in requests]
        try:
            logits = self._forward(np.concatenate(arrays)) if len(arrays) > 1 else None
        except Exception:  # one bad request must not fail the others: retry them one by one
            logits = None
        responses = []
        start = 0
        for array in arrays:
            try:
                part = logits[start:start + len(array)] if logits is not None else self._forward(array)
                tensor = pb_utils.Tensor("logits", np.ascontiguousarray(part, dtype=np.float32))
                responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
            except Exception as exc:
                responses.append(pb_utils.InferenceResponse(
                    output_tensors=[], error=pb_utils.TritonError(f"{type(exc).__name__}: {exc}")))
            start += len(array)
        return responses

    def finalize(self) -> None:
        self.module = None
