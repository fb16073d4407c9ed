"""Structure figures of the source tree: long modules, long functions, repeated blocks, type errors.

    python -m tests.tools.structure            # every figure
    python -m tests.tools.structure --no-mypy  # skip the type check

Long means over 400 lines for a module and over 60 lines for a function (decorators and docstring
included), counted over the project's own Python files (generated gRPC stubs left out). Repeated
blocks are counted by the `duplicates` command where it is installed (pairs of places that share
six or more lines); the type errors by `tests.tools.typecheck`.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.tools.layout import ROOT

MODULE_LINES = 400
FUNCTION_LINES = 60
SOURCE_FOLDERS = ("shiftboard", "services", "flows", "leaderboard", "protos", "deploy", "bench", "tests")


def python_files(root: Path = ROOT) -> list[Path]:
    files: list[Path] = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            if "_pb2" in path.name or "__pycache__" in path.parts:
                continue
            files.append(path)
    return files


def long_functions(path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - first + 1
            if length > FUNCTION_LINES:
                yield f"{node.name}:{node.lineno}", length


def repeated_blocks(root: Path = ROOT) -> int | None:
    """Pairs of places sharing six or more lines, as `duplicates` counts them; None where it is missing."""
    command = shutil.which("duplicates")
    if command is None:
        return None
    out = subprocess.run(
        [command, "--repo", str(root), "--most", "1", "--seconds", "120"],
        capture_output=True, text=True, check=False,
    ).stdout
    match = re.search(r"(\d+) pairs?", out)
    return int(match.group(1)) if match else (0 if "no duplicates" in out else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-mypy", action="store_true", help="skip the type check")
    args = parser.parse_args(argv)
    files = python_files()
    modules = [(p, len(p.read_text().splitlines())) for p in files]
    big = sorted(((n, p) for p, n in modules if n > MODULE_LINES), reverse=True)
    print(f"modules over {MODULE_LINES} lines: {len(big)} of {len(files)}")
    for n, p in big:
        print(f"  {n:5d}  {p.relative_to(ROOT)}")
    funcs = sorted(((n, f"{p.relative_to(ROOT)}:{name}") for p in files for name, n in long_functions(p)), reverse=True)
    print(f"functions over {FUNCTION_LINES} lines: {len(funcs)}")
    for n, where in funcs:
        print(f"  {n:5d}  {where}")
    pairs = repeated_blocks()
    print(f"repeated blocks (pairs sharing >= 6 lines): {'duplicates not installed' if pairs is None else pairs}")
    if not args.no_mypy:
        result = subprocess.run([sys.executable, "-m", "tests.tools.typecheck", "--count"], cwd=ROOT,
                                capture_output=True, text=True, check=False)
        print(f"type errors (mypy, every module): {result.stdout.strip() or result.stderr.strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
