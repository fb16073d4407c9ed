"""The layers of docs/architecture.md, checked on the imports of every module.

- the domain (``shiftboard.domain``) imports no gRPC, no protobuf messages, no wire, no adapter and no
  deployable;
- the wire (``shiftboard.wire``, protobuf <-> domain) imports no adapter and no deployable;
- adapters (``shiftboard.adapters``) import no deployable;
- the gateway does not import the worker's flows or the app; the flows reach the catalog only
  through the gateway (no ``shiftboard.adapters.duckdb``); the app (``shiftboard.leaderboard``)
  reads through the gateway's client, never an adapter;
- nothing outside the edges maps errors to gRPC statuses (``shiftboard.wire.status``);
- the model formats (``shiftboard.formats``), shared by the gateway, its sandboxed probe and the Triton
  Python-backend model, import of shiftboard only the domain and the sandbox, and torch, onnx and
  onnxruntime only inside functions (a Triton image holds only what its formats need).

Imports inside functions count as much as those at the top: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.tools.layout import package_dirs

DEPLOYABLES = ("shiftboard.services", "shiftboard.flows", "shiftboard.leaderboard")


def _modules() -> dict[str, Path]:
    """Every module of the package by its installed name."""
    mapping = package_dirs()
    found: dict[str, Path] = {}
    for name, folder in mapping.items():
        for path in folder.rglob("*.py"):
            if "__pycache__" in path.parts or "_pb2" in path.name:
                continue
            parts = path.relative_to(folder).with_suffix("").parts
            dotted = ".".join((name, *parts)).removesuffix(".__init__")
            # A path under a folder that is mapped on its own belongs to that mapping, not this one.
            if not any(other != name and other.startswith(name + ".") and dotted.startswith(other + ".")
                       and folder != mapping[other] for other in mapping):
                found.setdefault(dotted, path)
    return found


MODULES = _modules()


def imports(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{module} imports {name}" for module in MODULES if _under(module, prefix)
                  for name in imports(module) if _under(name, *forbidden))


def test_the_module_list_covers_the_package() -> None:
    assert "shiftboard.domain.robustness" in MODULES
    assert "shiftboard.services.gateway.server" in MODULES
    assert "shiftboard.flows.evaluate" in MODULES
    assert "shiftboard.leaderboard.app" in MODULES
    assert len(MODULES) > 80


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("shiftboard.domain", ("grpc", "shiftboard.v1", "shiftboard.wire", "shiftboard.client",
                           "shiftboard.adapters", *DEPLOYABLES, "duckdb", "minio", "tritonclient", "prefect")),
    ("shiftboard.wire", ("shiftboard.adapters", *DEPLOYABLES)),
    ("shiftboard.adapters", DEPLOYABLES),
    ("shiftboard.services.gateway", ("shiftboard.flows", "shiftboard.leaderboard")),
    ("shiftboard.flows", ("shiftboard.services", "shiftboard.leaderboard", "shiftboard.adapters.duckdb")),
    ("shiftboard.leaderboard", ("shiftboard.adapters", "shiftboard.services", "shiftboard.flows")),
])
def test_layer_imports(layer: str, forbidden: tuple[str, ...]) -> None:
    assert violations(layer, forbidden) == []


def test_only_the_edges_map_errors_to_grpc() -> None:
    users = sorted(m for m in MODULES if "shiftboard.wire.status" in imports(m))
    assert all(_under(m, "shiftboard.client", "shiftboard.services.gateway", "shiftboard.wire.status")
               for m in users), users


HEAVY = ("torch", "onnx", "onnxruntime", "onnxscript", "numpy")


def top_level_imports(module: str) -> set[str]:
    """The names ``module`` imports when it is imported (module level, outside functions and
    ``if TYPE_CHECKING:`` blocks)."""
    names: set[str] = set()
    for node in ast.parse(MODULES[module].read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module or "")
    return names


def test_formats_import_only_the_domain_and_the_sandbox() -> None:
    formats = [m for m in MODULES if _under(m, "shiftboard.formats")]
    assert {"shiftboard.formats", "shiftboard.formats.onnx", "shiftboard.formats.torchscript"} <= set(formats)
    for module in formats:
        ours = {n for n in imports(module) if _under(n, "shiftboard")}
        assert all(_under(n, "shiftboard.domain", "shiftboard.sandbox", "shiftboard.formats") for n in ours), \
            (module, sorted(ours))
        assert not any(_under(n, *HEAVY) for n in top_level_imports(module)), \
            f"{module} imports {sorted(n for n in top_level_imports(module) if _under(n, *HEAVY))} at module level"


def test_a_forbidden_import_is_seen(tmp_path: Path) -> None:
    """The check itself can fail: a module that breaks the rule is reported (relative imports too)."""
    MODULES["shiftboard.domain._probe"] = tmp_path / "_probe.py"
    (tmp_path / "_probe.py").write_text("import grpc\nfrom ..adapters import s3\n")
    try:
        found = violations("shiftboard.domain", ("grpc", "shiftboard.adapters"))
    finally:
        del MODULES["shiftboard.domain._probe"]
    assert found == ["shiftboard.domain._probe imports grpc", "shiftboard.domain._probe imports shiftboard.adapters",
                     "shiftboard.domain._probe imports shiftboard.adapters.s3"]
