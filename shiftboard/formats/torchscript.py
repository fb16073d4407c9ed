"""TorchScript archives (``torch.jit.save``): recognised by their entries, loaded with ``torch.jit.load``.

torch 2.13 deprecates ``torch.jit.script`` and ``torch.jit.load`` (DeprecationWarning): TorchScript
still works, and the CLI recommends ONNX or torch.export on every TorchScript submission. The archive
holds code in TorchScript's restricted language; loading runs its ``__setstate__``, which is why it is
loaded only inside the sandbox, and why ``inspect`` then refuses operators that reach files, the
network or the process (:mod:`shiftboard.sandbox.torchscript`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiftboard.formats import Refused, Runner

DEPRECATION = ("TorchScript is deprecated by torch (torch.jit.script and torch.jit.load warn since torch 2.13): "
               "prefer --format onnx (torch.onnx.export) or --format torch-export (torch.export.save)")


def check(path: Path) -> None:
    """Nothing to check without loading: the entries were recognised by :func:`shiftboard.formats.sniff`."""


def as_output(torch: Any, out: Any) -> Any:
    """A model's output as the runners return it: the first of a tuple or list, a tensor as float32
    numpy (anything else unchanged, for the caller to refuse)."""
    if isinstance(out, tuple | list) and out:
        out = out[0]
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    return out


def load(path: str, *, threads: int = 1, inspect: bool = False) -> Runner:
    import torch

    torch.set_num_threads(max(1, threads))
    module = torch.jit.load(path, map_location="cpu")
    if inspect:
        from shiftboard.sandbox.torchscript import forbidden_operators, refusal

        found = forbidden_operators(module)
        if found:
            raise Refused(refusal(found))
    module.eval()

    def run(batch: Any) -> Any:
        x = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(batch)
        with torch.inference_mode():
            return as_output(torch, module(x))

    return run
