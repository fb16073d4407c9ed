"""Triton Python-backend model written by shiftboard: uint8 images -> FP32 logits (any model format).

This file is not imported by shiftboard: :func:`shiftboard.adapters.triton.repository.write_python_backend_model`
copies it, byte for byte, into every repository entry as ``1/model.py``, and Triton's backend stub
runs it there (``triton_python_backend_utils`` exists only inside that stub). Everything it needs
comes from the entry's ``config.pbtxt`` parameters: ``sys_path`` (the stub ignores ``PYTHONPATH``,
so the environment's packages, and shiftboard's own source, are put on ``sys.path`` before anything
else is imported), ``model_format`` (``onnx``, ``torch-export``, ``torchscript``), ``artifact_file`` and
its ``sha256``, the input mapping ``u8 * scale + shift`` (one value per channel each, computed by
``shiftboard.domain.normalisation.input_affine``, applied in numpy for every format), ``num_classes``
and ``torch_threads`` (onnxruntime's intra-op threads for ONNX). The artifact is loaded by the same
loader as the gateway's probe uses (:meth:`shiftboard.formats.Format.load`).

One response per request: a failing request gets its own ``TritonError`` while the others in the
same dynamic batch still succeed.

A request may carry a deadline (parameter ``shiftboard_deadline_ms``). The model then runs in a thread
of its own (torch and onnxruntime release the GIL), and when it has not finished a batch by the earliest deadline
of its requests, every request of the batch is answered with an error starting :data:`DEADLINE_ERROR`,
and so is every later one: the instance is hung. Answering is what lets Triton unload the model (a
request still executing keeps it UNLOADING forever, even with the stub process killed); the thread
still spinning dies with the stub process when the model is unloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

import triton_python_backend_utils as pb_utils

if TYPE_CHECKING:
    import numpy as np


#: How a deadline error starts (the flows recognise it).
DEADLINE_ERROR = "shiftboard deadline exceeded"


class TritonPythonModel:
    """The model instance Triton creates: ``initialize`` once, ``execute`` per batch of requests."""

    run: Any
    scale: np.ndarray[Any, Any]
    shift: np.ndarray[Any, Any]
    num_classes: int
    hung: str = ""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        # The stub ignores PYTHONPATH: make the environment's packages (torch, numpy) importable.
        for entry in reversed(json.loads(params["sys_path"])):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        import numpy as np

        from shiftboard import formats

        threads = max(1, int(params.get("torch_threads", "1")))
        path = os.path.join(args["model_repository"], args["model_version"], params["artifact_file"])
        if params.get("sha256"):  # never load an artifact other than the one the catalog names
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != params["sha256"]:
                raise pb_utils.TritonModelException(
                    f"{params['artifact_file']} does not match its sha256 {params['sha256']}: not loaded")
        self.run = formats.get(params.get("model_format") or formats.TORCHSCRIPT).load(path, threads=threads)
        self.scale = np.asarray(json.loads(params["scale"]), dtype=np.float32).reshape(1, -1, 1, 1)
        self.shift = np.asarray(json.loads(params["shift"]), dtype=np.float32).reshape(1, -1, 1, 1)
        self.num_classes = int(params["num_classes"])

    def _forward(self, batch: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        import numpy as np

        assert self.run is not None, "execute after finalize"
        x = batch.astype(np.float32) * self.scale + self.shift
        out = self.run(x)
        if not isinstance(out, np.ndarray):
            raise TypeError(f"model returned {type(out).__name__}, not a tensor of logits")
        out = out.astype(np.float32, copy=False).reshape(batch.shape[0], -1)
        if out.shape[1] != self.num_classes:
            raise ValueError(f"model returned {out.shape[1]} logits per image, expected {self.num_classes}")
        return out

    def _results(self, arrays: list[np.ndarray[Any, Any]]) -> list[Any]:
        """Each request's logits, or the exception its images raised."""
        import numpy as np

        try:
            logits = self._forward(np.concatenate(arrays)) if len(arrays) > 1 else None
        except Exception:  # one bad request must not fail the others: retry them one by one
            logits = None
        results: list[Any] = []
        start = 0
        for array in arrays:
            try:
                results.append(logits[start:start + len(array)] if logits is not None else self._forward(array))
            except Exception as exc:  # noqa: BLE001 - answered as this request's error
                results.append(exc)
            start += len(array)
        return results

    @staticmethod
    def _deadline_s(requests: list[Any]) -> float | None:
        """The earliest deadline of ``requests`` in seconds, None when none has one."""
        found = []
        for r in requests:
            try:
                value = json.loads(r.parameters() or "{}").get("shiftboard_deadline_ms")
            except (AttributeError, ValueError):
                value = None
            if value:
                found.append(float(value) / 1000.0)
        return min(found) if found else None

    def execute(self, requests: list[Any]) -> list[Any]:
        import numpy as np

        arrays = [pb_utils.get_input_tensor_by_name(r, "images").as_numpy() for r in requests]
        deadline = self._deadline_s(requests)
        if self.hung:
            results: list[Any] = [RuntimeError(self.hung) for _ in arrays]
        elif deadline is None:
            results = self._results(arrays)
        else:
            box: list[list[Any]] = []
            worker = threading.Thread(target=lambda: box.append(self._results(arrays)), daemon=True)
            worker.start()
            worker.join(deadline)
            if box:
                results = box[0]
            else:
                self.hung = (f"{DEADLINE_ERROR}: the model did not finish a batch of {sum(len(a) for a in arrays)} "
                             f"images within {deadline:g} s")
                results = [RuntimeError(self.hung) for _ in arrays]
        responses = []
        for result in results:
            if isinstance(result, BaseException):
                message = str(result) if self.hung else f"{type(result).__name__}: {result}"
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message)))
            else:
                tensor = pb_utils.Tensor("logits", np.ascontiguousarray(result, dtype=np.float32))
                responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
        return responses

    def finalize(self) -> None:
        self.run = None
