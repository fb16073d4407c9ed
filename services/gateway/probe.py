"""Validate a submitted model artifact in a child process before anything is stored.

The artifact must be a TorchScript archive (``torch.jit.save``), never an arbitrary pickle: a pickle
can run code when loaded, a TorchScript archive holds only code in TorchScript's restricted
language and tensors. The probe loads it with ``torch.jit.load`` and runs one small batch of images
of the declared input shape; the output must be a finite float tensor of shape [N, num_classes].

It runs in a separate process with a time limit so that a model that hangs, crashes the
interpreter, or eats memory does not take the gateway with it, and inside the operating-system
sandbox (:mod:`shiftboard.sandbox`): the state directory hidden, the uploaded file bound back
read-only, an empty scratch directory the only writable place, no network, CPU-time and memory
limits. After loading (``__setstate__`` has run by then, inside the sandbox) the child refuses
TorchScript operators that reach files, the network or the process, naming the operator. Text the
model produced reaches the submitter only as one short sanitised line with secrets redacted. Run
as ``python -m shiftboard.services.gateway.probe FILE C H W NUM_CLASSES [--no-inspect]``; prints
one JSON line (model output printed meanwhile goes to stderr).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from shiftboard.domain.errors import InvalidArgument, Unavailable
from shiftboard.sandbox import SandboxPolicy, active, runtime_paths, sanitize, secret_values, wrap
from shiftboard.settings import Settings

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


def probe_policy(settings: Settings, path: Path, scratch: Path) -> SandboxPolicy:
    """The probe's sandbox: state (and repository, catalog) hidden, ``path`` readable, ``scratch`` writable."""
    hide = [str(settings.state_path), str(settings.triton_repository), str(settings.catalog_file)]
    return SandboxPolicy(hide=tuple(hide), read=(str(path), *runtime_paths()), write=(str(scratch),),
                         memory_bytes=settings.sandbox_memory_bytes, cpu_seconds=settings.sandbox_cpu_seconds,
                         file_bytes=64 * 1024 * 1024,
                         env={"OMP_NUM_THREADS": "1", "HOME": str(scratch), "TMPDIR": str(scratch)},
                         cwd=str(scratch))


def probe(path: Path, *, channels: int, height: int, width: int, num_classes: int,
          timeout_s: float = 120.0, settings: Settings | None = None, inspect: bool = True) -> None:
    """Raise :class:`InvalidArgument` unless the file is TorchScript giving [N, num_classes] finite outputs.

    ``inspect=False`` skips the operator check (tests of the operating-system layer use it).
    """
    settings = settings or Settings.from_env()
    sniff_format(path)
    path = Path(path).resolve()
    cmd = [sys.executable, "-m", "shiftboard.services.gateway.probe", str(path), str(channels), str(height),
           str(width), str(num_classes), *([] if inspect else ["--no-inspect"])]
    secrets = secret_values(settings)
    scratch = Path(tempfile.mkdtemp(prefix="shiftboard-probe-"))
    try:
        if active(settings):
            cmd = wrap(cmd, probe_policy(settings, path, scratch))
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, check=False,
                                  cwd=scratch)
        except subprocess.TimeoutExpired:
            raise InvalidArgument(f"the model did not load and run a probe batch within {timeout_s:.0f} s: "
                                  "submit a smaller or faster model") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _verdict(proc, settings, secrets)


def _verdict(proc: subprocess.CompletedProcess[str], settings: Settings, secrets: Iterable[str]) -> None:
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if lines:
        result = json.loads(lines[-1])
        if result["ok"]:
            return
        raise InvalidArgument(result["error"].replace("{model}", sanitize(result.get("model") or "", secrets)))
    code = proc.returncode
    if code in (-signal.SIGXCPU, -signal.SIGKILL) and settings.sandbox != "off":
        raise InvalidArgument(f"the model used more than its CPU-time limit of {settings.sandbox_cpu_seconds} s "
                              "while loading or running a probe batch: submit a smaller or faster model")
    if code < 0:
        raise InvalidArgument(f"the model crashed the probe process ({signal.Signals(-code).name}) while "
                              "loading or running a probe batch")
    last = sanitize(proc.stderr, secrets)
    if code == 126 and last.startswith("sandbox:"):
        raise Unavailable(f"the model sandbox failed to start: {last}. `shiftboard status` lists the "
                          "sandbox mechanisms")
    raise Unavailable(f"the model probe failed to run (exit {code}): {last}")


def _memory_error(exc: BaseException) -> str | None:
    """The submitter's error when ``exc`` is an allocation failure, else None."""
    import resource

    if not isinstance(exc, MemoryError) and "can't allocate memory" not in str(exc) \
            and "std::bad_alloc" not in str(exc):
        return None
    limit = resource.getrlimit(resource.RLIMIT_DATA)[0]
    where = f"its memory limit of {limit / 2 ** 30:.2f} GiB" if limit != resource.RLIM_INFINITY else "memory"
    return f"the model ran out of {where} while loading or running a probe batch: submit a smaller model"


def _check(path: str, channels: int, height: int, width: int, num_classes: int,
           inspect: bool = True) -> tuple[str, str] | None:
    """The probe itself (child process): None when the model is fine, else the error message (with
    ``{model}`` where the model's own text goes) and that text."""
    import torch

    torch.set_num_threads(1)
    try:
        model = torch.jit.load(path, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any load failure is the submitter's to fix
        text = str(exc)
        if (memory := _memory_error(exc)) is not None:
            return memory, ""
        if "constants.pkl" in text or "code/" in text:
            return ("the model file is a torch.save() archive, not TorchScript; shiftboard never loads "
                    "pickled modules: " + _EXPORT_HINT), ""
        first = text.strip().splitlines()
        return "the model file is not a loadable TorchScript archive ({model}): " + _EXPORT_HINT, \
            first[0] if first else type(exc).__name__
    if inspect:
        from shiftboard.sandbox.torchscript import forbidden_operators, refusal

        found = forbidden_operators(model)
        if found:
            return refusal(found), ""
    model.eval()
    generator = torch.Generator().manual_seed(0)
    batch = torch.rand((PROBE_BATCH, channels, height, width), generator=generator)
    try:
        with torch.no_grad():
            out = model(batch)
    except Exception as exc:  # noqa: BLE001
        if (memory := _memory_error(exc)) is not None:
            return memory, ""
        return (f"the model failed on a probe batch of shape [{PROBE_BATCH}, {channels}, {height}, {width}] "
                "(float32): {model}: check --input-shape"), str(exc) or type(exc).__name__
    if isinstance(out, tuple | list) and out:
        out = out[0]
    if not isinstance(out, torch.Tensor):
        return f"the model returned {type(out).__name__}, not a tensor: return logits of shape [N, num_classes]", ""
    if out.dim() != 2 or out.shape[0] != PROBE_BATCH or out.shape[1] != num_classes:
        return (f"the model's output on a probe batch of {PROBE_BATCH} has shape {list(out.shape)}, expected "
                f"[{PROBE_BATCH}, {num_classes}]: check --num-classes and that the model returns one row "
                "of logits per image"), ""
    if not out.is_floating_point():
        return f"the model's output is {out.dtype}, expected floating-point logits", ""
    if not bool(torch.isfinite(out).all()):
        return "the model's output on a probe batch contains NaN or infinite values: fix the model", ""
    return None


def main(argv: list[str]) -> int:
    inspect = "--no-inspect" not in argv
    path, c, h, w, k = [a for a in argv if a != "--no-inspect"]
    result = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the model prints goes to stderr, never where the verdict goes
    verdict = _check(path, int(c), int(h), int(w), int(k), inspect)
    error, model_text = verdict if verdict is not None else (None, "")
    result.write(json.dumps({"ok": verdict is None, "error": error, "model": model_text[-4000:]}) + "\n")
    result.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
