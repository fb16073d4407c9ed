"""Model file formats: which ones shiftboard accepts, how each is recognised, checked and run.

    torchscript    ``torch.jit.save`` (a zip with ``code/`` and ``constants.pkl``); deprecated by torch
    onnx           an ONNX ``ModelProto`` (``torch.onnx.export``), run with onnxruntime
    torch-export   ``torch.export.save`` (``.pt2``, a zip with ``models/*.json``), an ExportedProgram

One registry, :data:`FORMATS`, used by the CLI (detection), the gateway (static check before the
sandbox), the sandboxed probe child and the Triton Python-backend model (loading):

* :func:`sniff` names a file's format from its bytes (zip entry names, the protobuf's first tag),
  running nothing;
* :func:`resolve` returns the declared format, or the detected one when none is declared, and refuses a
  declared format the file is not in, naming the detected one;
* :meth:`Format.check` is the static check of the file (runs no code of the model);
* :meth:`Format.load` returns a :data:`Runner`: float32 ``[N, C, H, W]`` images (numpy or torch) -> the
  model's first output as a numpy array (a non-tensor output is returned as it is, for the caller to
  refuse).

This package imports ``shiftboard.domain`` and ``shiftboard.sandbox`` only; torch, onnx and onnxruntime
are imported inside functions, so that the Triton model (and a Triton image holding only torch, or
only onnxruntime) imports what its format needs.
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shiftboard.domain.errors import InvalidArgument

__all__ = ["FORMATS", "ONNX", "TORCH_EXPORT", "TORCHSCRIPT", "Format", "Refused", "Runner", "get", "resolve",
           "sniff"]

#: A loaded model: float32 [N, C, H, W] batch -> its first output (numpy when it is a tensor).
Runner = Callable[[Any], Any]

TORCHSCRIPT, ONNX, TORCH_EXPORT = "torchscript", "onnx", "torch-export"


class Refused(InvalidArgument):
    """A loaded model uses what shiftboard refuses (an operator that reaches files, the network...)."""


@dataclass(frozen=True)
class Format:
    """One accepted format: its word, what it is called, its file suffix and how to export to it."""

    word: str
    title: str
    suffix: str
    hint: str
    module: str

    def check(self, path: Path) -> None:
        """Static check of the file (no code of the model runs); raises :class:`InvalidArgument`."""
        implementation = importlib.import_module(self.module)
        (implementation.check_archive if self.word == TORCH_EXPORT else implementation.check)(Path(path))

    def load(self, path: str, *, threads: int = 1, inspect: bool = False) -> Runner:
        """The model as a :data:`Runner` on CPU with ``threads`` threads. ``inspect`` refuses (raises
        :class:`Refused`) operators that reach files, the network or the process, after loading."""
        implementation = importlib.import_module(self.module)
        if self.word == TORCH_EXPORT:
            return _export_runner(implementation, path, threads=threads, inspect=inspect)
        runner: Runner = implementation.load(path, threads=threads, inspect=inspect)
        return runner


FORMATS: dict[str, Format] = {f.word: f for f in (
    Format(ONNX, "ONNX model", ".onnx",
           "export with torch.onnx.export(model, (example,), PATH, dynamic_shapes=({0: torch.export.Dim('batch')},))",
           "shiftboard.formats.onnx"),
    Format(TORCH_EXPORT, "torch.export archive (ExportedProgram)", ".pt2",
           "export with torch.export.save(torch.export.export(model, (example,), "
           "dynamic_shapes=({0: torch.export.Dim('batch')},)), PATH)",
           "shiftboard.formats.export"),
    Format(TORCHSCRIPT, "TorchScript archive", ".pt",
           "save with torch.jit.save(torch.jit.script(model), PATH) (deprecated by torch: prefer ONNX or "
           "torch.export)",
           "shiftboard.formats.torchscript"),
)}
_CHOICES = "onnx, torch-export or torchscript"


def get(word: str) -> Format:
    """The format named ``word``; :class:`InvalidArgument` for any other word."""
    try:
        return FORMATS[word]
    except KeyError:
        raise InvalidArgument(f"unknown model format {word!r}: use {_CHOICES}") from None


class _NotAModel(Exception):
    """What a file is when it is in no accepted format (the start of the submitter's error)."""


def sniff(path: Path) -> str:
    """The format of the file at ``path`` from its bytes; :class:`InvalidArgument` naming what it is
    when it is in none (empty, a pickle, a ``torch.save`` archive, another zip, anything else)."""
    try:
        return _sniff(path)
    except _NotAModel as exc:
        raise InvalidArgument(f"{exc}: {_export_advice()}") from None


def _sniff(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise _NotAModel("the model file is empty")
    if head[:1] == b"\x80":
        raise _NotAModel("the model file is a Python pickle; shiftboard never loads pickles (they can run "
                         "arbitrary code)")
    if head == b"PK\x03\x04":
        return _sniff_zip(path)
    # A serialised ONNX ModelProto starts with its field 1, ir_version (tag 0x08, a small varint):
    # protobuf writes fields in number order and every exporter sets it.
    if len(head) >= 2 and head[0] == 0x08 and 1 <= head[1] <= 0x7F:
        return ONNX
    raise _NotAModel(f"the model file is in no format shiftboard knows ({_CHOICES})")


def _sniff_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _NotAModel("the model file starts like a zip archive but is not a readable one") from None
    # Entries are "<archive name>/<path>": compare what follows the first folder.
    inner = {n.split("/", 1)[1] for n in names if "/" in n}
    if "archive_format" in inner or any(n.startswith("models/") and n.endswith(".json") for n in inner):
        return TORCH_EXPORT
    if "constants.pkl" in inner and any(n.startswith("code/") for n in inner):
        return TORCHSCRIPT
    if "data.pkl" in inner:
        raise _NotAModel("the model file is a torch.save() archive (a pickle), not a model export; shiftboard "
                         "never loads pickled modules")
    raise _NotAModel("the model file is a zip archive of no format shiftboard knows")


def resolve(path: Path, declared: str = "") -> str:
    """``declared`` when the file is in that format, the detected format when ``declared`` is empty;
    :class:`InvalidArgument` naming the detected format when they differ."""
    if not declared:
        return sniff(path)
    wanted = get(declared)
    try:
        found = _sniff(path)
    except _NotAModel as exc:
        raise InvalidArgument(f"the model file is not {_article(wanted.title)} (--format {declared}): {exc}; "
                              f"{wanted.hint}") from None
    if found != declared:
        raise InvalidArgument(f"the model file is {_article(FORMATS[found].title)}, not "
                              f"{_article(wanted.title)}: submit it with --format {found} (or leave --format "
                              "out to detect it)")
    return found


def _article(title: str) -> str:
    return ("an " if title[0] in "AEIOU" else "a ") + title


def _export_advice() -> str:
    return (f"{FORMATS[ONNX].hint}; or {FORMATS[TORCH_EXPORT].hint}")


def _export_runner(implementation: Any, path: str, *, threads: int, inspect: bool) -> Runner:
    """torch.export's loader (:mod:`shiftboard.formats.export`) as a :data:`Runner`."""
    import torch

    from shiftboard.formats.torchscript import as_output

    torch.set_num_threads(max(1, threads))
    program = implementation.load_program(path)

    def run(batch: Any) -> Any:
        x = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(batch)
        with torch.inference_mode():
            return as_output(torch, program(x))

    return run
