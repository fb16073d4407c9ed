"""Type-check every module of the project under the name it is installed as.

    python -m tests.tools.typecheck           # mypy over the whole tree; exit 1 on any error
    python -m tests.tools.typecheck --count   # print only the number of errors
    python -m tests.tools.typecheck -- ARGS   # pass ARGS on to mypy

The package modules are checked through a fresh folder of links in the installed layout under
`build/` (see `tests.tools.layout`), with its own mypy cache, so several checks can run at once;
the tests, benchmarks and deploy scripts import the package from there. Errors are reported with
the checkout's paths, not the links'.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.tools.layout import ROOT, link_tree, package_dirs

OUTSIDE_PACKAGE = ["tests", "bench", "deploy", "protos/generate.py"]


def run_mypy(extra: list[str]) -> tuple[int, str]:
    (ROOT / "build").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="typecheck-", dir=ROOT / "build"))
    try:
        links = link_tree(work / "links")
        env = dict(os.environ, MYPYPATH=str(links))
        targets = [str(links / "shiftboard"), *(str(ROOT / t) for t in OUTSIDE_PACKAGE)]
        command = [sys.executable, "-m", "mypy", "--cache-dir", str(work / "cache"), *extra, *targets]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        return result.returncode, checkout_paths(result.stdout + result.stderr, links)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def checkout_paths(text: str, links: Path) -> str:
    """Rewrite `<links>/shiftboard/flows/x.py` as `flows/x.py`."""
    folders = sorted(package_dirs().items(), key=lambda item: -item[0].count("."))
    prefix = str(links.relative_to(ROOT)) + "/"

    def to_checkout(match: re.Match[str]) -> str:
        dotted = match.group(1).replace("/", ".")
        for name, folder in folders:
            if dotted == name or dotted.startswith(name + "."):
                rest = dotted[len(name):].lstrip(".").replace(".", "/")
                return str((folder / rest).relative_to(ROOT)) + "/" if rest else str(folder.relative_to(ROOT)) + "/"
        return match.group(0)

    return re.sub(re.escape(prefix) + r"((?:[\w]+/)+)", to_checkout, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", action="store_true", help="print only the error count")
    parser.add_argument("mypy_args", nargs="*", help="passed on to mypy (after --)")
    args = parser.parse_args(argv)
    code, output = run_mypy(args.mypy_args)
    if args.count:
        match = re.search(r"Found (\d+) errors?", output)
        print(match.group(1) if match else ("0" if code == 0 else output.strip()))
        return 0
    sys.stdout.write(output)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
