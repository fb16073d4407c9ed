"""The ImageNet testbed (Taori et al., NeurIPS 2020): its published grid, settings and baseline rule.

Pure Python/numpy, no gRPC. The shipped data (``data/``: the grid, the model types, the class
protocols, the MIT licence and the citation) are read through ``importlib.resources``.

* :mod:`.protocol` — what each evaluation setting is (kind, reference, groups, sample count);
* :mod:`.categories` — the testbed's model types as categories, and its baseline rule;
* :mod:`.results` — imported results (points with provenance); :mod:`.grid` reads the testbed's
  layout, :mod:`.long` reads and writes the long format, :mod:`.files` is what both read with;
* :mod:`.lines` — every shift's fit and effective robustness the testbed's way.
"""

from .categories import CATEGORY_WORDS, EXCLUDED_NAME_PARTS, TESTBED_TYPES, baseline_rule
from .grid import read_model_types, read_testbed, shipped_grid
from .lines import ShiftLine, leaderboard_settings, shift_line, shift_lines, shift_table
from .long import read_long, write_long
from .protocol import NAMED, Setting, class_map, class_sublist, describe, describe_all
from .results import TESTBED_SOURCE, TESTBED_URL, ImportedModel, ImportedPoint, ImportedResults, Provenance

__all__ = [
    "CATEGORY_WORDS", "EXCLUDED_NAME_PARTS", "NAMED", "TESTBED_SOURCE", "TESTBED_TYPES", "TESTBED_URL",
    "ImportedModel", "ImportedPoint", "ImportedResults", "Provenance", "Setting", "ShiftLine", "baseline_rule",
    "class_map", "class_sublist", "describe", "describe_all", "leaderboard_settings", "read_long", "read_model_types",
    "read_testbed", "shift_line", "shift_lines", "shift_table", "shipped_grid", "write_long",
]
