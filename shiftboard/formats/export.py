"""torch.export archives (``torch.export.save``, ``.pt2``): checked without running them, then loaded.

Threat model: the file is written by a hostile submitter. ``torch.export.load`` is not a safe loader
(docs/security.md, "What torch.export.load reads"): it unpickles with ``weights_only=False`` (pickled
tensor-subclass weights and constants, the example inputs when the safe unpickler refuses them),
unpickles custom objects (``pickle.loads``, torchbind), ``dlopen``\\s AOTInductor shared objects,
hands symbolic-shape strings to ``sympy.sympify`` (``eval``) and ``exec``\\s the program's
``guards_code`` in ``ep.module()``. :func:`check_archive` therefore reads the zip as data first, runs
and unpickles nothing, and accepts only what a plain ExportedProgram of tensors needs: raw tensor
bytes, JSON, and one example-input pickle whose opcodes name nothing but tensor rebuilders. Only
then does :func:`load_program` call ``torch.export.load`` (inside the probe's sandbox, which is what
holds if this check misses something) and refuse non-aten operators (:func:`forbidden_operators`).
"""

from __future__ import annotations

import ast
import io
import json
import pickletools
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shiftboard.domain.errors import InvalidArgument
from shiftboard.sandbox.torchscript import DENIED_OPERATORS, NAMESPACE_REASON, refusal

if TYPE_CHECKING:
    import torch
    from torch.export import ExportedProgram

__all__ = ["EXPORT_HINT", "check_archive", "forbidden_operators", "load_program"]

EXPORT_HINT = ("export with ep = torch.export.export(model.eval(), (example,), "
               "dynamic_shapes=({0: torch.export.Dim('batch')},)) then torch.export.save(ep, PATH)")

# Size limits (bytes unless said): whole archive (uncompressed), one JSON document, the example inputs.
MAX_ENTRIES = 4096
MAX_TOTAL_BYTES = 4 * 2 ** 30
MAX_JSON_BYTES = 64 * 2 ** 20
MAX_SAMPLE_INPUTS_BYTES = 64 * 2 ** 20
MAX_EXPR_CHARS = 4096

# Entries of one ExportedProgram named "model" (torch/export/pt2_archive/constants.py), under the
# archive's root folder.
_FIXED_ENTRIES = frozenset({
    "archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id",
    "models/model.json", "data/weights/model_weights_config.json",
    "data/constants/model_constants_config.json", "data/sample_inputs/model.pt",
})
_REQUIRED_ENTRIES = _FIXED_ENTRIES - {"byteorder", ".data/version", ".data/serialization_id"}
_WEIGHT = re.compile(r"data/weights/(weight_[0-9]+)")
_CONSTANT = re.compile(r"data/constants/(tensor_[0-9]+)")
_NATIVE_SUFFIXES = (".so", ".dylib", ".dll", ".pyd", ".o", ".a", ".cpp", ".cc", ".c", ".h", ".cu", ".cubin",
                    ".hsaco", ".ptx", ".fatbin", ".spv", ".py", ".pyc")
# The inner torch.save archive of the example inputs.
_PICKLE_ENTRIES = frozenset({"data.pkl", "version", ".format_version", ".storage_alignment", "byteorder",
                             ".data/version", ".data/serialization_id"})
_STORAGE_RECORD = re.compile(r"data/[0-9]+")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FQN = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")  # nn.Sequential names its children 0, 1, ...
_SYMBOL = re.compile(r"[a-z]+[0-9]+")

# What torch's weights_only unpickler allows for plain tensors (torch/_weights_only_unpickler.py,
# _get_allowed_globals), narrowed to what torch.save writes for tensors, tuples and dicts of them.
# torch.export writes example inputs marked dynamic through _rebuild_from_type_v2(_rebuild_tensor_v2,
# torch.Tensor, args, {"_specialize_on": {...}}): the type can only be one of these names.
_STORAGES = ("Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
             "ComplexFloat", "ComplexDouble")
ALLOWED_GLOBALS = frozenset({
    "collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
    "torch._tensor _rebuild_from_type_v2", "torch Tensor",
    *(f"torch {kind}Storage" for kind in _STORAGES),
})
_PICKLE_OPCODES = frozenset({
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP", "NONE", "NEWTRUE", "NEWFALSE",
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
    "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_LIST", "LIST", "APPEND", "APPENDS",
    "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET",
    "LONG_BINGET", "GLOBAL", "STACK_GLOBAL", "REDUCE", "BINPERSID",
})
_STRING_OPCODES = frozenset({"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE",
                             "SHORT_BINUNICODE", "BINUNICODE8"})

# Operator targets the graph JSON may name (torch/_export/serde/serialize.py, deserialize_operator
# resolves them by getattr on torch, operator and math).
HIGHER_ORDER_OPS = frozenset({"cond", "while_loop", "map_impl", "scan", "wrap_with_set_grad_enabled",
                              "wrap_with_autocast", "invoke_subgraph"})
_SYM_FUNCTIONS = frozenset({
    "_operator.eq", "_operator.ne", "_operator.le", "_operator.ge", "_operator.lt", "_operator.gt",
    "_operator.neg", "_operator.pos", "_operator.mul", "_operator.add", "_operator.sub",
    "_operator.floordiv", "_operator.mod", "_operator.pow", "_operator.truediv", "_operator.and_",
    "_operator.or_", "_operator.lshift", "_operator.rshift", "_operator.getitem", "math.trunc",
    "torch.sym_not", "torch.sym_int", "torch.sym_float", "torch.sym_ite", "torch.sym_max", "torch.sym_min",
    "torch.sym_sqrt",
})
_OP_TARGET = re.compile(r"torch\.ops\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")
_HOP_TARGET = re.compile(r"torch\.ops\.higher_order\.([A-Za-z_][A-Za-z0-9_]*)")
ALLOWED_OP_NAMESPACES = frozenset({"aten", "prims"})

# Names a symbolic-shape expression (``expr_str``, given to sympy.sympify) may use: sympy's
# constructors as torch prints them (srepr) and torch.utils._sympy.functions.
_SYMPY_NAMES = frozenset({
    "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Mod", "Max", "Min", "Abs", "Eq", "Ne", "Lt",
    "Le", "Gt", "Ge", "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan", "Equality",
    "Unequality", "And", "Or", "Not", "floor", "ceiling", "true", "false", "oo", "zoo", "nan", "S", "Half",
    "One", "Zero", "NegativeOne", "Infinity", "NegativeInfinity", "BooleanTrue", "BooleanFalse", "Piecewise",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal",
    "ToFloat", "Identity", "True", "False",
})
_SYMPY_ASSUMPTIONS = frozenset({"positive", "integer", "nonnegative", "negative", "nonpositive", "real",
                                "finite", "nonzero", "evaluate", "commutative", "extended_real"})
_EXPR_NODES = (ast.Expression, ast.Call, ast.Name, ast.Load, ast.Constant, ast.keyword, ast.BinOp,
               ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv,
               ast.Mod, ast.Pow, ast.USub, ast.UAdd, ast.Not, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt,
               ast.GtE, ast.And, ast.Or, ast.BitAnd, ast.BitOr, ast.BitXor, ast.Invert, ast.Tuple)
# Pytree node types a model's input and output structure may use (module_call_graph in_spec/out_spec).
_TREESPEC_TYPES = frozenset({None, "builtins.tuple", "builtins.list", "builtins.dict", "collections.OrderedDict"})


def _refuse(problem: str, fix: str = EXPORT_HINT) -> InvalidArgument:
    return InvalidArgument(f"{problem}: {fix}")


# --- the static check ------------------------------------------------------------------------------


def check_archive(path: Path) -> None:
    """Raise :class:`InvalidArgument` unless ``path`` is a plain ExportedProgram archive.

    Reads the zip as data only: nothing is unpickled, imported, compiled or loaded.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise InvalidArgument(f"the model file cannot be read ({exc.strerror}): submit a readable file") from None
    if size == 0:
        raise _refuse("the model file is empty")
    if head[:1] == b"\x80":
        raise _refuse("the model file is a Python pickle (torch.save), not a torch.export archive; shiftboard "
                      "never loads pickles (they can run arbitrary code)")
    if head != b"PK\x03\x04":
        raise _refuse("the model file is not a torch.export archive (not a zip file)")
    try:
        with zipfile.ZipFile(path) as archive:
            _check_zip(archive)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise _refuse(f"the model file is not a readable zip archive ({exc})") from None


def _check_zip(archive: zipfile.ZipFile) -> None:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise _refuse(f"the model archive has {len(infos)} entries, more than the {MAX_ENTRIES} shiftboard "
                      "accepts", "submit a smaller model")
    total = sum(i.file_size for i in infos)
    if total > MAX_TOTAL_BYTES:
        raise _refuse(f"the model archive holds {total} bytes uncompressed, more than the {MAX_TOTAL_BYTES} "
                      "shiftboard accepts", "submit a smaller model")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise _refuse(f"the model archive holds the entry {duplicate!r} twice (readers disagree on which "
                      "one counts)", "save it again with torch.export.save, do not edit the zip")
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1 or any("/" not in n for n in names):
        raise _refuse("the model archive is not one torch.export archive (its entries are not all under one "
                      "folder)")
    root = roots.pop()
    if not root or root in (".", ".."):
        raise _refuse(f"the model archive's root folder {root!r} is not a folder name")
    entries = {i.filename[len(root) + 1:]: i for i in infos}
    if "data.pkl" in entries:
        raise _refuse("the model file is a torch.save archive (a pickle, which can run arbitrary code when "
                      "loaded), not a torch.export archive; shiftboard never loads pickles")
    for rel, info in entries.items():
        _check_entry(rel, info)
        try:  # reads the entry's local header: its name must be the central directory's
            with archive.open(info):
                pass
        except (zipfile.BadZipFile, NotImplementedError, OSError) as exc:
            raise _refuse(f"the model archive's entry {rel} is malformed ({exc})",
                          "save it again with torch.export.save, do not edit the zip") from None
    missing = sorted(_REQUIRED_ENTRIES - set(entries))
    if missing:
        raise _refuse(f"the model archive lacks {', '.join(missing)}: it is not an archive of one "
                      "ExportedProgram saved by torch.export.save")
    if _text(archive, entries["archive_format"]) != "pt2":
        raise _refuse("the model archive's archive_format is not 'pt2'")
    if _text(archive, entries["archive_version"]) != "0":
        raise _refuse("the model archive's archive_version is not 0 (saved by another torch version)",
                      "save it with torch 2.13's torch.export.save")
    if "byteorder" in entries and _text(archive, entries["byteorder"]) != "little":
        raise _refuse("the model archive is big-endian", "save it on a little-endian machine")
    referenced = _check_payload_config(archive, entries, "data/weights/model_weights_config.json", _WEIGHT,
                                       "data/weights/")
    referenced |= _check_payload_config(archive, entries, "data/constants/model_constants_config.json", _CONSTANT,
                                        "data/constants/")
    for rel in entries:
        if (_WEIGHT.fullmatch(rel) or _CONSTANT.fullmatch(rel)) and rel not in referenced:
            raise _refuse(f"the model archive holds {rel}, which no weight or constant refers to",
                          "save it again with torch.export.save, do not edit the zip")
    _check_sample_inputs(_read(archive, entries["data/sample_inputs/model.pt"], MAX_SAMPLE_INPUTS_BYTES))
    _check_program(_json(archive, entries["models/model.json"]))


def _check_entry(rel: str, info: zipfile.ZipInfo) -> None:
    lowered = rel.lower()
    if lowered.startswith("data/aotinductor/") or "aotinductor" in lowered or lowered.endswith(_NATIVE_SUFFIXES):
        raise _refuse(f"the model archive holds {rel}: it is an AOTInductor package (compiled native code, "
                      "which torch loads into the process) or holds other code; shiftboard accepts "
                      "ExportedProgram archives only, not torch._inductor.aoti_compile_and_package output")
    if lowered.startswith(("data/executorch/", "data/mtia", "xl_model_weights/")):
        raise _refuse(f"the model archive holds {rel} (a compiled backend's payload); shiftboard accepts "
                      "ExportedProgram archives only")
    if rel.startswith("data/constants/custom_obj_") or rel.startswith("data/constants/opaque_obj_"):
        raise _refuse(f"the model archive holds a custom object ({rel}: a torchbind or opaque Python object, "
                      "which loading unpickles); shiftboard accepts programs of tensors only",
                      "keep only tensors as module attributes, then " + EXPORT_HINT)
    if rel in ("data/weights/model.pt", "data/constants/model.pt") or rel.startswith("serialized_"):
        raise _refuse(f"the model archive is in torch's legacy export layout ({rel}, pickled weights)",
                      "save it again with torch 2.13's torch.export.save")
    if rel.startswith("extra/"):
        raise _refuse(f"the model archive holds the extra file {rel}", "save it without extra_files")
    if rel.startswith("models/") and rel != "models/model.json":
        raise _refuse(f"the model archive holds another program ({rel}); shiftboard accepts one ExportedProgram "
                      "saved under the name 'model'")
    if rel not in _FIXED_ENTRIES and not _WEIGHT.fullmatch(rel) and not _CONSTANT.fullmatch(rel):
        raise _refuse(f"the model archive holds {rel!r}, which is no part of an ExportedProgram archive",
                      "save it again with torch.export.save, do not edit the zip")
    if info.flag_bits & 0x1:
        raise _refuse(f"the model archive's entry {rel} is encrypted", "save it with torch.export.save")
    if info.compress_type != zipfile.ZIP_STORED:
        raise _refuse(f"the model archive's entry {rel} is compressed (torch.export.save stores entries "
                      "uncompressed)", "save it with torch.export.save and do not recompress it")


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    if info.file_size > limit:
        raise _refuse(f"the model archive's {info.filename} is {info.file_size} bytes, more than the {limit} "
                      "shiftboard accepts", "submit a smaller model")
    with archive.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise _refuse(f"the model archive's {info.filename} is larger than it says", "save it again")
    return data


def _text(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    return _read(archive, info, 64).decode("utf-8", errors="replace").strip()


def _json(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
    try:
        return json.loads(_read(archive, info, MAX_JSON_BYTES))
    except (ValueError, RecursionError):
        raise _refuse(f"the model archive's {info.filename} is not valid JSON") from None


def _check_payload_config(archive: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo], name: str,
                          pattern: re.Pattern[str], folder: str) -> set[str]:
    """The payload entries the weights or constants config refers to; refuses pickled payloads."""
    doc = _json(archive, entries[name])
    config = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        raise _refuse(f"the model archive's {name} is not a payload config")
    referenced: set[str] = set()
    for fqn, meta in config.items():
        if not isinstance(fqn, str) or not _FQN.fullmatch(fqn):
            raise _refuse(f"the model archive's {name} names a tensor {str(fqn)[:80]!r} that is not a Python "
                          "attribute path")
        if not isinstance(meta, dict) or not isinstance(meta.get("path_name"), str):
            raise _refuse(f"the model archive's {name} entry {fqn} is malformed")
        if meta.get("use_pickle") is not False:
            raise _refuse(f"the model archive stores {fqn} as a pickle (a tensor subclass or custom object, which "
                          "torch.export.load unpickles with weights_only=False); shiftboard accepts plain tensors "
                          "only", "convert it to a plain torch.Tensor (or nn.Parameter), then " + EXPORT_HINT)
        rel = folder + meta["path_name"]
        if not pattern.fullmatch(rel) or rel not in entries:
            raise _refuse(f"the model archive's {name} refers {fqn} to {meta['path_name']!r}, which is not one "
                          "of its tensor entries")
        if not isinstance(meta.get("tensor_meta"), dict):
            raise _refuse(f"the model archive's {name} entry {fqn} has no tensor metadata")
        referenced.add(rel)
    return referenced


def _check_sample_inputs(data: bytes) -> None:
    """The example inputs: a torch.save zip whose pickle rebuilds tensors and nothing else."""
    where = "data/sample_inputs/model.pt (the example inputs)"
    if data[:4] != b"PK\x03\x04":
        raise _refuse(f"the model archive's {where} is not a torch.save archive of tensors")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            infos = inner.infolist()
            roots = {i.filename.split("/", 1)[0] for i in infos}
            if len(roots) != 1 or any("/" not in i.filename for i in infos) or len(infos) > MAX_ENTRIES:
                raise _refuse(f"the model archive's {where} is not one torch.save archive")
            root = roots.pop()
            pickles = []
            for info in infos:
                rel = info.filename[len(root) + 1:]
                if rel not in _PICKLE_ENTRIES and not _STORAGE_RECORD.fullmatch(rel):
                    raise _refuse(f"the model archive's {where} holds {rel!r}, which is not part of a torch.save "
                                  "archive of tensors")
                if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                    raise _refuse(f"the model archive's {where} has a compressed or encrypted entry")
                if rel == "data.pkl":
                    pickles.append(_read(inner, info, MAX_JSON_BYTES))
            if len(pickles) != 1:
                raise _refuse(f"the model archive's {where} has no data.pkl")
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise _refuse(f"the model archive's {where} is not a readable zip archive") from None
    check_tensor_pickle(pickles[0], where)


def check_tensor_pickle(data: bytes, where: str) -> None:
    """Refuse a pickle unless its opcodes only build tuples, lists, dicts and tensors from storages.

    Walks the opcodes with :func:`pickletools.genops` (which executes nothing): every imported name
    (``GLOBAL``, ``STACK_GLOBAL``) must be in :data:`ALLOWED_GLOBALS`; opcodes that build arbitrary
    objects (``INST``, ``OBJ``, ``NEWOBJ``, ``BUILD``, ``EXT*``, ``PERSID``...) are refused.
    """
    recent: list[str | None] = []
    try:
        for opcode, arg, _ in pickletools.genops(data):
            name = opcode.name
            if name not in _PICKLE_OPCODES:
                raise _refuse(f"the model archive's {where} is a pickle that uses the {name} opcode (it can build "
                              "arbitrary objects, run code); shiftboard accepts pickled tensors only")
            imported: str | None = None
            if name == "GLOBAL":
                imported = str(arg)
            elif name == "STACK_GLOBAL":
                strings = [s for s in recent[-2:] if s is not None]
                imported = " ".join(strings) if len(strings) == 2 else "(a name built on the stack)"
            if imported is not None and imported not in ALLOWED_GLOBALS:
                raise _refuse(f"the model archive's {where} is a pickle that imports {imported.replace(' ', '.')} "
                              "(it would run when loaded); shiftboard accepts pickled plain tensors only")
            if name in _STRING_OPCODES:
                recent.append(arg if isinstance(arg, str) else str(arg))
            elif name not in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
                recent.append(None)
    except ValueError as exc:
        raise _refuse(f"the model archive's {where} is not a valid pickle ({exc})") from None


def _walk(node: Any) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """Every (key, value, owner) of a JSON document, depth first (iteratively: documents may be deep)."""
    stack: list[Any] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                yield str(key), value, item
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _check_program(doc: Any) -> None:
    """The serialised program (models/model.json): operators, names, shape expressions, guards."""
    if not isinstance(doc, dict) or not isinstance(doc.get("graph_module"), dict):
        raise _refuse("the model archive's models/model.json is not a serialised ExportedProgram")
    guards = doc.get("guards_code", [])
    if guards != []:
        raise _refuse("the model archive's program carries guards_code (Python source that ep.module() runs with "
                      "exec); shiftboard accepts programs without it", "export with torch.export.export (not a "
                      "hand-edited archive): " + EXPORT_HINT)
    ranges = doc.get("range_constraints", {})
    if not isinstance(ranges, dict):
        raise _refuse("the model archive's range_constraints are malformed")
    for symbol, bounds in ranges.items():
        if not _SYMBOL.fullmatch(str(symbol)) or not isinstance(bounds, dict) or any(
                not (v is None or (isinstance(v, int) and not isinstance(v, bool))) for v in bounds.values()):
            raise _refuse(f"the model archive's range constraint {str(symbol)[:80]!r} is malformed")
    for key, value, owner in _walk(doc["graph_module"]):
        if key == "expr_str":
            _check_sym_expr(value)
        elif key == "hint" and value is not None and not (
                isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values())):
            raise _refuse("the model archive's program has a malformed symbolic-shape hint")
        elif key in ("as_custom_obj", "custom_obj", "as_opaque", "opaque_obj") or (
                key == "custom_obj_values" and value):
            raise _refuse("the model archive's program uses a custom object (torchbind, opaque Python object); "
                          "shiftboard accepts programs of tensors only",
                          "keep only tensors as module attributes, then " + EXPORT_HINT)
        elif key == "as_operator":
            _check_target(value)
        elif key == "nodes" and isinstance(value, list):
            for node in value:
                if not isinstance(node, dict):
                    raise _refuse("the model archive's graph is malformed")
                _check_target(node.get("target"))
                _check_name(node.get("name"), "node")
        elif key in ("name", "as_name") and value != "":
            # Values, arguments and subgraphs: the deserialiser sets these names on FX nodes unchecked,
            # and FX writes them into the Python source of ep.module().
            _check_name(value, "value or argument")
        elif key in ("parameter_name", "buffer_name", "tensor_constant_name", "custom_obj_name", "fqn") and not (
                isinstance(value, str) and (_FQN.fullmatch(value) or (key == "fqn" and value == ""))):
            raise _refuse(f"the model archive's program names an attribute {str(value)[:80]!r} that is not a "
                          "Python attribute path")
        elif key == "treespec_namedtuple_fields" and value:
            raise _refuse("the model's inputs or outputs use named tuples; shiftboard accepts tensors and tuples, "
                          "lists or dicts of them", "make forward(x) take one image tensor and return logits, "
                          "then " + EXPORT_HINT)
        elif key == "forward_arg_names" and not (isinstance(value, list) and all(
                isinstance(v, str) and _IDENT.fullmatch(v) for v in value)):
            raise _refuse("the model archive's program has argument names that are not Python identifiers")
        elif key in ("in_spec", "out_spec") and "forward_arg_names" in owner:
            _check_treespec(value)


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not _IDENT.fullmatch(name):
        raise _refuse(f"the model archive's graph has a {what} named {str(name)[:80]!r}, not a Python identifier")


def _check_target(target: Any) -> None:
    """An operator the graph JSON names: aten/prims overloads, standard higher-order ops, symbolic arithmetic."""
    if not isinstance(target, str):
        raise _refuse("the model archive's graph has a node without an operator")
    op = _OP_TARGET.fullmatch(target)
    hop = _HOP_TARGET.fullmatch(target)
    if (op and op.group(1) in ALLOWED_OP_NAMESPACES and f"{op.group(1)}::{op.group(2)}" not in DENIED_OPERATORS) \
            or (hop and hop.group(1) in HIGHER_ORDER_OPS) or target in _SYM_FUNCTIONS:
        return
    if op:
        name = f"{op.group(1)}::{op.group(2)}"
        reason = DENIED_OPERATORS.get(name, NAMESPACE_REASON)
    elif hop:
        name, reason = f"higher_order::{hop.group(1)}", "is a higher-order operator shiftboard does not run"
    else:
        name, reason = target[:120], "is not a tensor operator (a Python function the loader would resolve)"
    raise _refuse(f"the model uses {name}, which {reason}: shiftboard refuses it",
                  "use only built-in torch tensor operations (no custom ops, torch.library, AOTInductor or "
                  "Triton kernels), then " + EXPORT_HINT)


def _check_treespec(spec: Any) -> None:
    """A pytree spec string (torch.utils._pytree.treespec_loads): only tuples, lists, dicts and leaves."""
    try:
        doc = json.loads(spec) if isinstance(spec, str) else None
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, list) or len(doc) != 2:
        raise _refuse("the model archive's input or output structure (treespec) is malformed")
    for key, value, _ in _walk(doc[1]):
        if key == "type" and value not in _TREESPEC_TYPES:
            raise _refuse(f"the model's inputs or outputs use the Python type {str(value)[:80]!r}; shiftboard "
                          "accepts tensors and tuples, lists or dicts of them", "make forward(x) take one image "
                          "tensor and return logits, then " + EXPORT_HINT)


def _check_sym_expr(expr: Any) -> None:
    """A symbolic-shape expression, which the loader evaluates with ``sympy.sympify`` (``eval``)."""
    problem = "the model archive's program has a symbolic-shape expression that is not plain sympy arithmetic " \
              "(the loader evaluates it as Python)"
    fix = "export with torch.export.export (not a hand-edited archive): " + EXPORT_HINT
    if not isinstance(expr, str) or len(expr) > MAX_EXPR_CHARS:
        raise _refuse(problem, fix)
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _refuse(problem, fix) from None
    for node in ast.walk(tree):
        ok = isinstance(node, _EXPR_NODES)
        if isinstance(node, ast.Name):
            ok = node.id in _SYMPY_NAMES or bool(_SYMBOL.fullmatch(node.id))
        elif isinstance(node, ast.Call):
            ok = isinstance(node.func, ast.Name) and node.func.id in _SYMPY_NAMES
        elif isinstance(node, ast.keyword):
            ok = node.arg in _SYMPY_ASSUMPTIONS and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, bool)
        elif isinstance(node, ast.Constant):
            value = node.value
            ok = isinstance(value, bool | int | float) or (isinstance(value, str) and bool(_SYMBOL.fullmatch(value)))
        if not ok:
            raise _refuse(f"{problem}: {expr[:80]!r}", fix)


# --- the loaded program ----------------------------------------------------------------------------


def _target_name(target: Any) -> str:
    module = getattr(target, "__module__", None) or type(target).__module__
    return f"{module}.{getattr(target, '__name__', repr(target))}"


def _allowed_functions() -> dict[Any, str]:
    import math
    import operator

    import torch

    found: dict[Any, str] = {}
    for qualified in _SYM_FUNCTIONS:
        module_name, _, attr = qualified.rpartition(".")
        base: Any = {"_operator": operator, "math": math, "torch": torch}[module_name]
        value = getattr(base, attr, None)
        if value is not None:
            found[value] = qualified
    return found


def forbidden_operators(program: ExportedProgram) -> dict[str, str]:
    """Refused operator -> reason, over every graph of ``program`` (higher-order subgraphs included).

    Allowed: aten and prims operators (less :data:`~shiftboard.sandbox.torchscript.DENIED_OPERATORS`),
    the standard higher-order operators (:data:`HIGHER_ORDER_OPS`) and symbolic-size arithmetic.
    """
    import torch

    allowed = _allowed_functions()
    found: dict[str, str] = {}

    def visit(target: Any) -> None:
        if isinstance(target, torch._ops.OpOverload | torch._ops.OpOverloadPacket):
            name = target._schema.name if isinstance(target, torch._ops.OpOverload) else target._qualified_op_name
            namespace = name.split("::", 1)[0]
            if name in DENIED_OPERATORS:
                found[name] = DENIED_OPERATORS[name]
            elif namespace not in ALLOWED_OP_NAMESPACES:
                found[name] = NAMESPACE_REASON
        elif isinstance(target, torch._ops.HigherOrderOperator):
            if target.name() not in HIGHER_ORDER_OPS:
                found[f"higher_order::{target.name()}"] = "is a higher-order operator shiftboard does not run"
        elif callable(target) and not isinstance(target, torch.nn.Module):
            try:
                known = target in allowed
            except TypeError:  # unhashable
                known = False
            if not known:
                found[_target_name(target)] = "is not a tensor operator (a Python function)"
        elif isinstance(target, str):
            found[target[:120]] = "is not a tensor operator (an unresolved name)"

    def visit_args(value: Any) -> None:
        if isinstance(value, list | tuple):
            for v in value:
                visit_args(v)
        elif isinstance(value, dict):
            for v in value.values():
                visit_args(v)
        elif not isinstance(value, torch.fx.Node) and (
                isinstance(value, torch._ops.OperatorBase) or (callable(value) and not isinstance(value, type))):
            visit(value)

    for module in program.graph_module.modules():
        graph = getattr(module, "graph", None)
        if not isinstance(graph, torch.fx.Graph):
            continue
        for node in graph.nodes:
            if node.op == "call_function":
                visit(node.target)
                visit_args((node.args, node.kwargs))
            elif node.op in ("call_method", "call_module"):
                found[f"{node.op} {node.target}"] = "is not a tensor operator"
    return found


def _batch_dimension(program: ExportedProgram) -> None:
    """Refuse a program whose one image input does not have a dynamic batch dimension."""
    import torch

    user_inputs = set(program.graph_signature.user_inputs)
    images = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in user_inputs]
    if len(images) != 1:
        raise _refuse(f"the exported program takes {len(images)} inputs; shiftboard sends one image batch "
                      "[N, C, H, W]", "make forward(x) take one tensor, then " + EXPORT_HINT)
    val = images[0].meta.get("val")
    shape = getattr(val, "shape", None)
    if shape is None or len(shape) != 4:
        raise _refuse("the exported program's input is not a 4-dimensional tensor [N, C, H, W]",
                      "export it with an example batch of images, then " + EXPORT_HINT)
    if not isinstance(shape[0], torch.SymInt):
        raise _refuse(f"the exported program has a static batch size of {int(shape[0])} (it runs on batches of "
                      "exactly that size only); shiftboard sends batches of any size",
                      "export the batch dimension as dynamic: torch.export.export(model.eval(), (example,), "
                      "dynamic_shapes=({0: torch.export.Dim('batch')},)), then torch.export.save(ep, PATH)")


def load_program(path: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ExportedProgram at ``path`` as a function of a float32 batch [N, C, H, W].

    Runs :func:`check_archive` first; then ``torch.export.load``; refuses forbidden operators
    (:class:`shiftboard.formats.Refused`) and a static batch dimension. Run it inside the sandbox.
    """
    check_archive(Path(path))
    import torch

    from shiftboard.formats import Refused

    try:
        program = torch.export.load(path)
    except Exception as exc:  # a malformed archive fails in many ways inside torch
        line = " ".join(str(exc).split())[:200]
        raise _refuse(f"torch.export.load could not load the model archive ({type(exc).__name__}: {line})",
                      "save it with torch 2.13's torch.export.save") from None
    found = forbidden_operators(program)
    if found:
        raise Refused(refusal(found))
    _batch_dimension(program)
    module = program.module()

    def run(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out: torch.Tensor = module(batch)
        return out

    return run
