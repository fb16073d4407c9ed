"""The installed layout of the source tree, as links.

The top-level folders name the deployables, but they install under one namespace (`pyproject.toml`'s
`package-dir`): `services/` is `shiftboard.services`, `flows/` is `shiftboard.flows`, and so on. A type
checker pointed at the checkout sees none of that mapping, so `import shiftboard.flows` resolves to
nothing and everything imported from it becomes `Any`. `link_tree` builds the installed layout out of
symbolic links, so the checker reads every module under its real name while the files stay where they are.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def package_dirs(root: Path = ROOT) -> dict[str, Path]:
    """`package-dir` from pyproject.toml: dotted package name → folder in the checkout."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    return {name: root / folder for name, folder in mapping.items()}


def link_tree(target: Path, root: Path = ROOT) -> Path:
    """Rebuild `target` as the installed layout (links into `root`); return the folder to put on the path."""
    if target.exists():
        shutil.rmtree(target)
    mapping = package_dirs(root)
    # Deepest last, so a mapped sub-package replaces the plain folder its parent would have linked.
    for name in sorted(mapping, key=lambda n: n.count(".")):
        source = mapping[name]
        place = target.joinpath(*name.split("."))
        if place.is_symlink():
            place.unlink()
        place.mkdir(parents=True, exist_ok=True)
        for entry in source.iterdir():
            if entry.name == "__pycache__" or (place / entry.name).exists():
                continue
            child = f"{name}.{entry.name}"
            if entry.is_dir() and child in mapping:
                continue
            (place / entry.name).symlink_to(entry)
    return target
