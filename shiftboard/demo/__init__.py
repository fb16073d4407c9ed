"""The demo's content: a robustness testbed made from scikit-learn's digits and the machine's fonts,
and a zoo of small TorchScript classifiers trained on it -- pure library code; ``shiftboard demo``
submits both through the API like any user.

Public API (imported lazily, so that importing this package does not import torch):

* :func:`build_testbed` / :func:`load_testbed` → :class:`Testbed` of :class:`TestSetFile`
  (reference ``digits``, natural shift ``digits-printed``, synthetic ``digits-c-<corruption>-<1..5>``
  in group ``corruptions``), plus the training data of the zoo;
* :func:`train_zoo` / :func:`load_zoo` → list of :class:`ZooModel` (categories ``standard``,
  ``robustness-intervention``, ``more-data``), specified by :func:`zoo_specs`; every model takes
  ``N×1×8×8`` floats in [0, 1] (:data:`INPUT_SHAPE`, :data:`VALUE_RANGE`) and returns ``N×10`` logits;
* :func:`discover_fonts` → the :class:`FontFace` s printed digits are drawn with.

``python -m shiftboard.demo.findings`` checks the findings offline (in-process torch, no servers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shiftboard.demo.fonts import FontFace, discover_fonts
    from shiftboard.demo.testbed import (
        CORRUPTIONS_GROUP,
        NATURAL_NAME,
        REFERENCE_NAME,
        Testbed,
        TestSetFile,
        build_testbed,
        load_testbed,
    )
    from shiftboard.demo.zoo import (
        INPUT_SHAPE,
        NUM_CLASSES,
        VALUE_RANGE,
        ModelSpec,
        ZooModel,
        load_zoo,
        train_zoo,
        zoo_specs,
    )

_EXPORTS: dict[str, str] = {
    "FontFace": "fonts", "discover_fonts": "fonts",
    "CORRUPTIONS_GROUP": "testbed", "NATURAL_NAME": "testbed", "REFERENCE_NAME": "testbed",
    "TestSetFile": "testbed", "Testbed": "testbed", "build_testbed": "testbed", "load_testbed": "testbed",
    "INPUT_SHAPE": "zoo", "NUM_CLASSES": "zoo", "VALUE_RANGE": "zoo", "ModelSpec": "zoo", "ZooModel": "zoo",
    "load_zoo": "zoo", "train_zoo": "zoo", "zoo_specs": "zoo",
}
__all__ = [
    "CORRUPTIONS_GROUP", "INPUT_SHAPE", "NATURAL_NAME", "NUM_CLASSES", "REFERENCE_NAME", "VALUE_RANGE",
    "FontFace", "ModelSpec", "TestSetFile", "Testbed", "ZooModel", "build_testbed", "discover_fonts",
    "load_testbed", "load_zoo", "train_zoo", "zoo_specs",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return __all__
