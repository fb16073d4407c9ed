"""Validate a submitted model artifact in a child process before anything is stored.

The artifact must be a TorchScript archive (``torch.jit.save``), never an arbitrary pickle: a pickle
can run code when loaded, a TorchScript archive holds only code in TorchScript's restricted
language and tensors. The probe loads it with ``torch.jit.load`` and runs one small batch of images
of the declared input shape; the output must be a finite float tensor of shape [N, num_classes].

It runs in a separate process with a time limit so that a model that hangs, crashes the
interpreter, or eats memory does not take the gateway with it. Run as
``python -m shiftboard.services.gateway.probe FILE C H W NUM_CLASSES``; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shiftboard.errors import InvalidArgument, Unavailable

PROBE_BATCH = 4
_EXPORT_HINT = ("export the model with torch.jit.script(model) or torch.jit.trace(model, example_input), "
                "then torch.jit.save(scripted, PATH)")


def sniff_format(path: Path) -> None:
    """Reject what is certainly not a TorchScript archive, from its first bytes."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise InvalidArgument("the model file is empty: " + _EXPORT_HINT)
    if head[:1] == b"\x80":
        raise InvalidArgument("the model file is a Python pickle; shiftboard accepts TorchScript archives "
                              "only, never pickles (they can run arbitrary code): " + _EXPORT_HINT)
    if head != b"PK\x03\x04":
        raise InvalidArgument("the model file is not a TorchScript archive (not a zip file): " + _EXPORT_HINT)


def probe(path: Path, *, channels: int, height: int, width: int, num_classes: int,
          timeout_s: float = 120.0) -> None:
    """Raise :class:`InvalidArgument` unless the file is TorchScript giving [N, num_classes] finite outputs."""
    sniff_format(path)
    cmd = [sys.executable, "-m", "shiftboard.services.gateway.probe", str(path), str(channels), str(height),
           str(width), str(num_classes)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise InvalidArgument(f"the model did not load and run a probe batch within {timeout_s:.0f} s: "
                              "submit a smaller or faster model") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        if proc.returncode < 0:
            raise InvalidArgument(f"the model crashed the probe process (signal {-proc.returncode}) "
                                  "while loading or running a probe batch")
        raise Unavailable(f"the model probe failed to run (exit {proc.returncode}): {proc.stderr[-500:]}")
    result = json.loads(lines[-1])
    if not result["ok"]:
        raise InvalidArgument(result["error"])


def _check(path: str, channels: int, height: int, width: int, num_classes: int) -> str | None:
    """The probe itself (child process): None when the model is fine, else the error message."""
    import torch

    torch.set_num_threads(1)
    try:
        model = torch.jit.load(path, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any load failure is the submitter's to fix
        text = str(exc)
        if "constants.pkl" in text or "code/" in text:
            return ("the model file is a torch.save() archive, not TorchScript; shiftboard never loads "
                    "pickled modules: " + _EXPORT_HINT)
        return f"the model file is not a loadable TorchScript archive ({text.splitlines()[0][:200]}): " + \
            _EXPORT_HINT
    model.eval()
    generator = torch.Generator().manual_seed(0)
    batch = torch.rand((PROBE_BATCH, channels, height, width), generator=generator)
    try:
        with torch.no_grad():
            out = model(batch)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()
        return (f"the model failed on a probe batch of shape [{PROBE_BATCH}, {channels}, {height}, {width}] "
                f"(float32): {first[-1][:300] if first else type(exc).__name__}: check --input-shape")
    if isinstance(out, tuple | list) and out:
        out = out[0]
    if not isinstance(out, torch.Tensor):
        return f"the model returned {type(out).__name__}, not a tensor: return logits of shape [N, num_classes]"
    if out.dim() != 2 or out.shape[0] != PROBE_BATCH or out.shape[1] != num_classes:
        return (f"the model's output on a probe batch of {PROBE_BATCH} has shape {list(out.shape)}, expected "
                f"[{PROBE_BATCH}, {num_classes}]: check --num-classes and that the model returns one row "
                "of logits per image")
    if not out.is_floating_point():
        return f"the model's output is {out.dtype}, expected floating-point logits"
    if not bool(torch.isfinite(out).all()):
        return "the model's output on a probe batch contains NaN or infinite values: fix the model"
    return None


def main(argv: list[str]) -> int:
    path, c, h, w, k = argv
    error = _check(path, int(c), int(h), int(w), int(k))
    print(json.dumps({"ok": error is None, "error": error}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
