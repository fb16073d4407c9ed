"""torch.export archives (shiftboard/formats/export.py): genuine exports pass, attacks are refused unrun.

Every attack is a real archive saved by ``torch.export.save`` with one entry rewritten. Each one is
first shown to be live: ``torch.export.load`` (and ``ep.module()``), in a child process, runs its
payload, which creates a canary file. Then ``check_archive`` and ``load_program`` refuse the same
file, naming the problem, and the canary does not appear.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from shiftboard.domain.errors import InvalidArgument
from shiftboard.formats.export import EXPORT_HINT, check_archive, check_tensor_pickle, forbidden_operators, load_program

ROOT = Path(__file__).resolve().parents[1]


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1))
        self.mean: torch.Tensor
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x - self.mean)
        return self.fc(x.view(x.size(0), -1))


def _model() -> SmallCNN:
    torch.manual_seed(0)
    model = SmallCNN().eval()
    norm = model.features[1]
    assert isinstance(norm, torch.nn.BatchNorm2d) and norm.running_mean is not None and norm.running_var is not None
    with torch.no_grad():  # non-trivial batch-norm statistics
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
    return model


def _export(path: Path, *, dynamic: Any = "batch", model: torch.nn.Module | None = None) -> Path:
    example = torch.randn(4, 3, 16, 16)
    shapes = None
    if dynamic == "batch":
        shapes = ({0: torch.export.Dim("batch")},)
    elif dynamic is not None:
        shapes = ({0: dynamic},)
    program = torch.export.export(model or _model(), (example,), dynamic_shapes=shapes)
    torch.export.save(program, path)
    return path


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory.mktemp("export") / "model.pt2")


def _rewrite(src: Path, dst: Path, change: Callable[[str, bytes], bytes | None],
             add: dict[str, bytes] | None = None) -> Path:
    """Copy the archive, passing each entry (its path under the root folder) through ``change``
    (None drops it), then add ``add``; entries stay uncompressed, like torch's."""
    with zipfile.ZipFile(src) as archive, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as out:
        root = archive.namelist()[0].split("/", 1)[0]
        for info in archive.infolist():
            rel = info.filename.split("/", 1)[1]
            data = change(rel, archive.read(info))
            if data is not None:
                out.writestr(info.filename, data)
        for rel, data in (add or {}).items():
            out.writestr(f"{root}/{rel}", data)
    return dst


def _exec_pickle(code: str) -> bytes:
    """A protocol-2 pickle that calls builtins.exec(code) when loaded (what a hostile file holds)."""
    text = code.encode()
    return (b"\x80\x02cbuiltins\nexec\nX" + len(text).to_bytes(4, "little") + text + b"\x85R.")


def _system_pickle(command: str) -> bytes:
    """A protocol-4 pickle that calls os.system(command), its names pushed for STACK_GLOBAL."""

    class System:
        def __reduce__(self) -> tuple[Any, ...]:
            return os.system, (command,)

    return pickle.dumps(System(), protocol=4)


def _touch(canary: Path) -> str:
    return f"open({str(canary)!r}, 'w').write('ran')"


def _edit_json(rel_name: str, edit: Callable[[Any], None]) -> Callable[[str, bytes], bytes | None]:
    def change(rel: str, data: bytes) -> bytes:
        if rel != rel_name:
            return data
        doc = json.loads(data)
        edit(doc)
        return json.dumps(doc).encode()
    return change


def _runs_when_loaded(path: Path, canary: Path, *, call: bool = False) -> None:
    """torch.export.load (then ep.module() on a batch when ``call``) in a child: the payload creates ``canary``."""
    code = ("import sys, torch\nep = torch.export.load(sys.argv[1])\n"
            + ("ep.module()(torch.randn(2, 3, 16, 16))\n" if call else ""))
    subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=300, check=False,
                   cwd=path.parent)
    assert canary.exists(), "the attack did not run under torch.export.load: the test proves nothing"
    canary.unlink()


def _refused_unrun(path: Path, canary: Path, *expected: str) -> str:
    """check_archive and load_program refuse ``path`` naming ``expected``, and the canary stays absent."""
    with pytest.raises(InvalidArgument) as caught:
        check_archive(path)
    message = caught.value.message
    for part in expected:
        assert part in message, message
    with pytest.raises(InvalidArgument):
        load_program(str(path))
    assert not canary.exists(), "the payload ran"
    return message


# --- genuine archives --------------------------------------------------------------------------------


def test_a_genuine_cnn_with_a_dynamic_batch_loads_and_matches_the_eager_module(genuine: Path) -> None:
    check_archive(genuine)
    run = load_program(str(genuine))
    model = _model()
    for n in (1, 3, 17):
        x = torch.randn(n, 3, 16, 16)
        with torch.no_grad():
            expected = model(x)
        got = run(x)
        assert got.shape == (n, 10)
        assert torch.allclose(got, expected, atol=1e-5, rtol=0), (got - expected).abs().max()


@pytest.mark.parametrize("dim", [torch.export.Dim.AUTO, torch.export.Dim.DYNAMIC,
                                 torch.export.Dim("batch", min=1, max=4096)], ids=["auto", "dynamic", "bounded"])
def test_other_ways_to_declare_a_dynamic_batch_are_accepted(tmp_path: Path, dim: Any) -> None:
    path = _export(tmp_path / "model.pt2", dynamic=dim)
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        expected = _model()(x)
    assert torch.allclose(load_program(str(path))(x), expected, atol=1e-5, rtol=0)


def test_an_nn_sequential_export_whose_weights_are_named_by_index_is_accepted(tmp_path: Path) -> None:
    """nn.Sequential names its children 0, 1, ...: its weights are "0.weight", the most common layout."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 14 * 14, 10)).eval()
    path = _export(tmp_path / "model.pt2", model=model)
    check_archive(path)
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
    assert torch.allclose(torch.as_tensor(load_program(str(path))(x)), expected, atol=1e-5, rtol=0)


def test_a_static_batch_export_is_refused_naming_the_fix(tmp_path: Path) -> None:
    path = _export(tmp_path / "static.pt2", dynamic=None)
    check_archive(path)  # a well-formed archive: the batch size is what is wrong
    with pytest.raises(InvalidArgument) as caught:
        load_program(str(path))
    assert "static batch size of 4" in caught.value.message
    assert "dynamic_shapes=({0: torch.export.Dim('batch')},)" in caught.value.message


# --- pickles inside the archive ------------------------------------------------------------------------


def test_a_code_running_pickle_as_the_example_inputs_is_refused_unrun(genuine: Path, tmp_path: Path) -> None:
    canary = tmp_path / "canary"

    def change(rel: str, data: bytes) -> bytes:
        if rel != "data/sample_inputs/model.pt":
            return data
        inner_out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as inner, zipfile.ZipFile(inner_out, "w", zipfile.ZIP_STORED) as out:
            for info in inner.infolist():
                body = _exec_pickle(_touch(canary)) if info.filename.endswith("/data.pkl") else inner.read(info)
                out.writestr(info.filename, body)
        return inner_out.getvalue()

    path = _rewrite(genuine, tmp_path / "evil.pt2", change)
    # torch tries weights_only=True, fails, and falls back to weights_only=False: the payload runs.
    _runs_when_loaded(path, canary)
    message = _refused_unrun(path, canary, "data/sample_inputs/model.pt", "imports builtins.exec")
    assert EXPORT_HINT in message


def test_a_pickled_weight_is_refused_unrun(genuine: Path, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    edit = _edit_json("data/weights/model_weights_config.json",
                      lambda doc: doc["config"]["fc.weight"].update(use_pickle=True))
    target = json.loads(zipfile.ZipFile(genuine).read(
        next(n for n in zipfile.ZipFile(genuine).namelist() if n.endswith("model_weights_config.json"))
    ))["config"]["fc.weight"]["path_name"]

    def change(rel: str, data: bytes) -> bytes | None:
        if rel == f"data/weights/{target}":
            return _exec_pickle(_touch(canary))
        return edit(rel, data)

    path = _rewrite(genuine, tmp_path / "evil.pt2", change)
    _runs_when_loaded(path, canary)  # torch.load(..., weights_only=False)
    _refused_unrun(path, canary, "fc.weight", "pickle", "weights_only=False")


def test_an_opaque_python_object_constant_is_refused_unrun(genuine: Path, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    edit = _edit_json("data/constants/model_constants_config.json", lambda doc: doc["config"].update(
        evil={"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}))
    path = _rewrite(genuine, tmp_path / "evil.pt2", edit,
                    add={"data/constants/opaque_obj_0": _exec_pickle(_touch(canary))})
    _runs_when_loaded(path, canary)  # pickle.loads
    _refused_unrun(path, canary, "custom object", "data/constants/opaque_obj_0")


def test_a_torchbind_custom_object_is_refused(genuine: Path, tmp_path: Path) -> None:
    path = _rewrite(genuine, tmp_path / "evil.pt2", lambda rel, data: data,
                    add={"data/constants/custom_obj_0": b"PK\x03\x04"})
    _refused_unrun(path, tmp_path / "canary", "custom object", "torchbind")


# --- Python source inside the program JSON --------------------------------------------------------------


def test_a_shape_expression_that_is_python_is_refused_unrun(genuine: Path, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    payload = f"__import__('builtins').exec({_touch(canary)!r})"

    def edit(doc: dict[str, Any]) -> None:
        for value in doc["graph_module"]["graph"]["tensor_values"].values():
            for size in value["sizes"]:
                if "as_expr" in size:
                    size["as_expr"]["expr_str"] = payload

    path = _rewrite(genuine, tmp_path / "evil.pt2", _edit_json("models/model.json", edit))
    _runs_when_loaded(path, canary)  # sympy.sympify -> eval
    _refused_unrun(path, canary, "symbolic-shape expression", "__import__")


def test_guards_code_is_refused_unrun(genuine: Path, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    guard = f"__import__('os').system('touch {canary}') == 0"
    path = _rewrite(genuine, tmp_path / "evil.pt2",
                    _edit_json("models/model.json", lambda doc: doc.update(guards_code=[guard])))
    _runs_when_loaded(path, canary, call=True)  # ep.module() exec()s the guards
    _refused_unrun(path, canary, "guards_code", "exec")


def test_names_that_are_not_identifiers_are_refused(genuine: Path, tmp_path: Path) -> None:
    # The deserialiser sets node names on FX nodes unchecked, and FX writes them into ep.module()'s source.
    def rename(doc: dict[str, Any]) -> None:
        doc["graph_module"]["graph"]["nodes"][0]["name"] = "conv2d = __import__('os').system('true'); y"

    path = _rewrite(genuine, tmp_path / "evil.pt2", _edit_json("models/model.json", rename))
    _refused_unrun(path, tmp_path / "canary", "not a Python identifier")

    def attribute(doc: dict[str, Any]) -> None:
        doc["graph_module"]["signature"]["input_specs"][0]["parameter"]["parameter_name"] = 'a")or print("x'

    path = _rewrite(genuine, tmp_path / "evil.pt2", _edit_json("models/model.json", attribute))
    _refused_unrun(path, tmp_path / "canary", "not a Python attribute path")


# --- native code, other layouts ----------------------------------------------------------------------


def test_an_aotinductor_package_is_refused(genuine: Path, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    for rel in ("data/aotinductor/model/model.so", "data/aotinductor/model/model.wrapper.cpp",
                "data/aotinductor/model/model_metadata.json", "data/weights/kernel.so"):
        path = _rewrite(genuine, tmp_path / "aoti.pt2", lambda r, data: data, add={rel: b"\x7fELF" + bytes(64)})
        _refused_unrun(path, canary, rel)
    message = _refused_unrun(path, canary, "native code")
    assert "aoti_compile_and_package" in message


def test_a_torch_save_pickle_renamed_pt2_is_refused(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    zipped, legacy = tmp_path / "zipped.pt2", tmp_path / "legacy.pt2"
    torch.save(_model(), zipped)
    torch.save(_model().state_dict(), legacy, _use_new_zipfile_serialization=False)
    assert "torch.save archive" in _refused_unrun(zipped, canary, "pickle")
    assert "Python pickle" in _refused_unrun(legacy, canary, "never loads pickles")


def test_the_legacy_export_layout_is_refused(genuine: Path, tmp_path: Path) -> None:
    path = _rewrite(genuine, tmp_path / "legacy.pt2", lambda rel, data: data,
                    add={"data/weights/model.pt": _exec_pickle("pass")})
    _refused_unrun(path, tmp_path / "canary", "legacy", "data/weights/model.pt")
    with zipfile.ZipFile(tmp_path / "old.pt2", "w") as old:
        old.writestr("old/serialized_exported_program.json", "{}")
        old.writestr("old/serialized_state_dict.pt", _exec_pickle("pass"))
    _refused_unrun(tmp_path / "old.pt2", tmp_path / "canary", "serialized_")


@pytest.mark.parametrize("content", [b"", b"garbage that is no zip", b"PK\x03\x04 truncated"],
                         ids=["empty", "garbage", "truncated-zip"])
def test_empty_and_garbage_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.pt2"
    path.write_bytes(content)
    message = _refused_unrun(path, tmp_path / "canary", "the model file")
    assert EXPORT_HINT in message


def test_unexpected_compressed_and_duplicate_entries_are_refused(genuine: Path, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    extra = _rewrite(genuine, tmp_path / "extra.pt2", lambda rel, data: data, add={"notes.txt": b"hi"})
    _refused_unrun(extra, canary, "notes.txt")
    extra_files = _rewrite(genuine, tmp_path / "extra_files.pt2", lambda rel, data: data, add={"extra/a.txt": b"x"})
    _refused_unrun(extra_files, canary, "extra_files")
    compressed = tmp_path / "compressed.pt2"
    with zipfile.ZipFile(genuine) as src, zipfile.ZipFile(compressed, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info))
    _refused_unrun(compressed, canary, "compressed")
    duplicate = tmp_path / "duplicate.pt2"
    with zipfile.ZipFile(genuine) as src, zipfile.ZipFile(duplicate, "w") as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info))
        first = src.infolist()[0]
        with pytest.warns(UserWarning, match="Duplicate name"):
            out.writestr(first.filename, src.read(first))
    _refused_unrun(duplicate, canary, "twice")
    # A local header naming another file than the central directory (zip readers may disagree).
    data = genuine.read_bytes()
    at = data.index(b"archive_format")  # the first occurrence is the local header's
    forged = tmp_path / "forged.pt2"
    forged.write_bytes(data[:at] + b"archive_formaX" + data[at + len(b"archive_format"):])
    _refused_unrun(forged, canary, "malformed")


def test_the_pickle_check_allows_tensors_and_refuses_any_other_import() -> None:
    buffer = io.BytesIO()
    torch.save(((torch.randn(2, 3), torch.zeros(1, dtype=torch.int64)), {}), buffer)
    with zipfile.ZipFile(buffer) as archive:
        check_tensor_pickle(archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl"))), "x")
    with pytest.raises(InvalidArgument, match=r"imports posix\.system|imports os\.system"):
        check_tensor_pickle(_system_pickle("true"), "x")  # protocol 4: STACK_GLOBAL
    with pytest.raises(InvalidArgument, match="BUILD"):
        check_tensor_pickle(b"\x80\x02ccollections\nOrderedDict\n)R}b.", "x")
    with pytest.raises(InvalidArgument, match="not a valid pickle"):
        check_tensor_pickle(b"\x80\x02", "x")


# --- operators ----------------------------------------------------------------------------------------


@torch.library.custom_op("shiftboard_test::leak", mutates_args=())
def _leak(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@_leak.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class WithCustomOp(SmallCNN):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.ops.shiftboard_test.leak(x))


def test_a_custom_operator_is_refused_by_name(tmp_path: Path) -> None:
    model = WithCustomOp().eval()
    program = torch.export.export(model, (torch.randn(2, 3, 16, 16),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    assert forbidden_operators(program) == {
        "shiftboard_test::leak": "is not a built-in tensor operator (it may reach the network, other processes "
                                 "or files)"}
    path = tmp_path / "custom.pt2"
    torch.export.save(program, path)
    _refused_unrun(path, tmp_path / "canary", "shiftboard_test::leak")


def test_a_denied_aten_operator_is_refused_by_name(genuine: Path, tmp_path: Path) -> None:
    program = torch.export.load(genuine)
    assert forbidden_operators(program) == {}
    node = next(n for n in program.graph.nodes if n.op == "call_function")
    node.target = torch.ops.aten.from_file.default
    assert forbidden_operators(program) == {"aten::from_file": "reads and maps files on the server"}
    node.target = os.system
    assert "posix.system" in forbidden_operators(program)

    def edit(doc: dict[str, Any]) -> None:
        doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.ops.aten.from_file.default"

    path = _rewrite(genuine, tmp_path / "from_file.pt2", _edit_json("models/model.json", edit))
    _refused_unrun(path, tmp_path / "canary", "aten::from_file", "reads and maps files")
    path = _rewrite(genuine, tmp_path / "save.pt2", _edit_json(
        "models/model.json", lambda doc: doc["graph_module"]["graph"]["nodes"][0].update(target="torch.save")))
    _refused_unrun(path, tmp_path / "canary", "torch.save", "not a tensor operator")


def test_the_module_imports_without_torch() -> None:
    code = ("import sys\nimport shiftboard.formats.export\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
