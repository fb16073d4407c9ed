"""Validate a submitted model artifact in a child process before anything is stored.

The artifact is in one of the formats of :mod:`shiftboard.formats` (TorchScript, ONNX, torch.export),
never an arbitrary pickle: a pickle can run code when loaded. :func:`probe` first resolves the format
from the file's bytes (a declared format the file is not in is refused, naming the detected one) and
runs the format's static check in this process (:meth:`shiftboard.formats.Format.check`: for ONNX the
graph, opsets, domains and external data, without running anything). The child then loads the file with
the format's loader and runs one small batch of images of the declared input shape, then one full-size
batch (``settings.eval_batch_size`` images, what an evaluation sends per request); each output must be
a finite float array of shape [N, num_classes]. The full batch's time per image is returned: the
evaluation's per-request deadline is derived from it
(:func:`shiftboard.flows.evaluate.request_deadline_s`), and a model that hangs on large batches is
refused here, at submission, rather than at its first evaluation.

It runs in a separate process with a time limit so that a model that hangs, crashes the
interpreter, or eats memory does not take the gateway with it, and inside the operating-system
sandbox (:mod:`shiftboard.sandbox`): the state directory hidden, the uploaded file bound back
read-only, an empty scratch directory the only writable place, no network, CPU-time and memory
limits. After loading (``__setstate__`` has run by then, inside the sandbox) the child refuses
TorchScript operators that reach files, the network or the process, naming the operator. Text the
model produced reaches the submitter only as one short sanitised line with secrets redacted. Run
as ``python -m shiftboard.services.gateway.probe FILE FORMAT C H W NUM_CLASSES FULL_BATCH [--no-inspect]``;
prints a JSON line once the small batch passed, then the verdict's (model output printed meanwhile
goes to stderr).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from shiftboard import formats
from shiftboard.domain.errors import InvalidArgument, Unavailable
from shiftboard.sandbox import SandboxPolicy, active, runtime_paths, sanitize, secret_values, wrap
from shiftboard.settings import Settings

PROBE_BATCH = 4


def sniff_format(path: Path, declared: str = "") -> str:
    """The file's format (``declared``, or the detected one when empty) after its static check; raises
    :class:`InvalidArgument` for a file in no accepted format or in another than ``declared``."""
    found = formats.resolve(path, declared)
    formats.get(found).check(path)
    return found


def probe_policy(settings: Settings, path: Path, scratch: Path) -> SandboxPolicy:
    """The probe's sandbox: state (and repository, catalog) hidden, ``path`` readable, ``scratch`` writable."""
    hide = [str(settings.state_path), str(settings.triton_repository), str(settings.catalog_file)]
    return SandboxPolicy(hide=tuple(hide), read=(str(path), *runtime_paths()), write=(str(scratch),),
                         memory_bytes=settings.sandbox_memory_bytes, cpu_seconds=settings.sandbox_cpu_seconds,
                         file_bytes=64 * 1024 * 1024,
                         env={"OMP_NUM_THREADS": "1", "HOME": str(scratch), "TMPDIR": str(scratch)},
                         cwd=str(scratch))


def probe(path: Path, *, channels: int, height: int, width: int, num_classes: int,
          timeout_s: float = 120.0, settings: Settings | None = None, inspect: bool = True,
          full_batch: int | None = None, model_format: str = formats.TORCHSCRIPT) -> float:
    """Raise :class:`InvalidArgument` unless the file is in ``model_format`` ("" detects it) and gives
    [N, num_classes] finite outputs on a small batch and on a full one of ``full_batch`` images (default
    ``settings.eval_batch_size``); return the full batch's seconds per image.

    ``inspect=False`` skips the operator check (tests of the operating-system layer use it).
    """
    settings = settings or Settings.from_env()
    full = max(1, full_batch if full_batch is not None else settings.eval_batch_size)
    model_format = sniff_format(path, model_format)
    path = Path(path).resolve()
    cmd = [sys.executable, "-m", "shiftboard.services.gateway.probe", str(path), model_format, str(channels),
           str(height),
           str(width), str(num_classes), str(full), *([] if inspect else ["--no-inspect"])]
    secrets = secret_values(settings)
    scratch = Path(tempfile.mkdtemp(prefix="shiftboard-probe-"))
    try:
        if active(settings):
            cmd = wrap(cmd, probe_policy(settings, path, scratch))
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, check=False,
                                  cwd=scratch)
        except subprocess.TimeoutExpired as exc:
            if _small_passed(exc.stdout):
                raise InvalidArgument(
                    f"the model ran a probe batch of {PROBE_BATCH} images but not a full batch of {full} images "
                    f"(the evaluation batch size) within the probe's limit of {timeout_s:.0f} s: it hangs or is "
                    "too slow on large batches; fix the model (or the gateway may raise SHIFTBOARD_PROBE_TIMEOUT_S)"
                ) from None
            raise InvalidArgument(f"the model did not load and run a probe batch within {timeout_s:.0f} s: "
                                  "submit a smaller or faster model") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _verdict(proc, settings, secrets, full)


def _small_passed(stdout: str | bytes | None) -> bool:
    """Whether the child's output says its small batch passed (it then ran the full one)."""
    text = stdout.decode(errors="replace") if isinstance(stdout, bytes) else (stdout or "")
    return any(ln.startswith('{"stage": "small-ok"') for ln in text.splitlines())


def _verdict(proc: subprocess.CompletedProcess[str], settings: Settings, secrets: Iterable[str],
             full: int) -> float:
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{"ok"')]
    if lines:
        result = json.loads(lines[-1])
        if result["ok"]:
            return float(result.get("seconds_per_sample") or 0.0)
        raise InvalidArgument(result["error"].replace("{model}", sanitize(result.get("model") or "", secrets)))
    code = proc.returncode
    if code in (-signal.SIGXCPU, -signal.SIGKILL) and settings.sandbox != "off":
        where = (f"on a full probe batch of {full} images (the evaluation batch size), after a batch of "
                 f"{PROBE_BATCH} passed: it hangs or is too slow on large batches"
                 if _small_passed(proc.stdout) else "while loading or running a probe batch")
        raise InvalidArgument(f"the model used more than its CPU-time limit of {settings.sandbox_cpu_seconds} s "
                              f"{where}: submit a smaller or faster model")
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
           inspect: bool = True, full: int = PROBE_BATCH, passed: Callable[[], None] = lambda: None,
           timing: list[float] | None = None, model_format: str = formats.TORCHSCRIPT) -> tuple[str, str] | None:
    """The probe itself (child process): None when the model is fine, else the error message (with
    ``{model}`` where the model's own text goes) and that text. ``passed`` is called once the small
    batch passed; the full batch's seconds per image are appended to ``timing``."""
    import numpy as np

    fmt = formats.get(model_format)
    try:
        run = fmt.load(path, threads=1, inspect=inspect)
    except InvalidArgument as exc:  # formats.Refused, or a loader's own refusal (torch.export's checks)
        return exc.message, ""
    except Exception as exc:  # noqa: BLE001 - any load failure is the submitter's to fix
        if (memory := _memory_error(exc)) is not None:
            return memory, ""
        first = str(exc).strip().splitlines()
        return f"the model file is not a loadable {fmt.title} ({{model}}): {fmt.hint}", \
            first[0] if first else type(exc).__name__
    generator = np.random.default_rng(0)
    sizes = [PROBE_BATCH] + ([full] if full > PROBE_BATCH else [])
    for n in sizes:
        batch = generator.random((n, channels, height, width), dtype=np.float32)
        start = time.perf_counter()
        try:
            out = run(batch)
        except Exception as exc:  # noqa: BLE001
            if (memory := _memory_error(exc)) is not None:
                return memory, ""
            return (f"the model failed on a probe batch of shape [{n}, {channels}, {height}, {width}] "
                    "(float32): {model}: check --input-shape" + _batch_hint(fmt, exc)), \
                str(exc) or type(exc).__name__
        seconds = time.perf_counter() - start
        if (error := _check_output(out, n, num_classes)) is not None:
            return error, ""
        if n == PROBE_BATCH:
            passed()
        if timing is not None and n == sizes[-1]:
            timing.append(seconds / n)
    return None


def _batch_hint(fmt: formats.Format, exc: BaseException) -> str:
    """For exported programs whose batch dimension was traced static, how to export it dynamic."""
    if fmt.word != formats.TORCHSCRIPT and ("batch" in str(exc).lower() or "shape" in str(exc).lower()
                                            or "dimension" in str(exc).lower()):
        return " and that the batch dimension was exported as dynamic (dynamic_shapes={0: torch.export.Dim('batch')})"
    return ""


def _check_output(out: Any, n: int, num_classes: int) -> str | None:
    """The error of a probe batch's output of ``n`` images, or None when it is [n, num_classes] finite floats."""
    import numpy as np

    if not isinstance(out, np.ndarray):
        return f"the model returned {type(out).__name__}, not a tensor: return logits of shape [N, num_classes]"
    if out.ndim != 2 or out.shape[0] != n or out.shape[1] != num_classes:
        return (f"the model's output on a probe batch of {n} has shape {list(out.shape)}, expected "
                f"[{n}, {num_classes}]: check --num-classes and that the model returns one row "
                "of logits per image")
    if out.dtype.kind != "f":
        return f"the model's output is {out.dtype}, expected floating-point logits"
    if not bool(np.isfinite(out).all()):
        return "the model's output on a probe batch contains NaN or infinite values: fix the model"
    return None


def main(argv: list[str]) -> int:
    inspect = "--no-inspect" not in argv
    path, model_format, c, h, w, k, full = [a for a in argv if a != "--no-inspect"]
    result = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the model prints goes to stderr, never where the verdict goes

    def passed() -> None:
        result.write(json.dumps({"stage": "small-ok"}) + "\n")
        result.flush()

    timing: list[float] = []
    verdict = _check(path, int(c), int(h), int(w), int(k), inspect, int(full), passed, timing, model_format)
    error, model_text = verdict if verdict is not None else (None, "")
    result.write(json.dumps({"ok": verdict is None, "error": error, "model": model_text[-4000:],
                             "seconds_per_sample": timing[-1] if timing else 0.0}) + "\n")
    result.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
