"""Model categories of imported results, and the testbed's baseline rule.

Pure Python, no gRPC. The platform's category words (``shiftboard.wire.vocab``) are those a submitter
chooses; the testbed's published models need two more, ``lp-adversarial`` and ``low-accuracy``
(:data:`CATEGORY_WORDS` lists all of them; the proto's ``ModelCategory`` enum needs the two new values
before imported points can travel over the wire).

The testbed's types map to categories as :data:`TESTBED_TYPES` says; the type itself is kept with
each imported model (``testbed_type``) so that tables can filter by it as the testbed's site does.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["BASELINE_CATEGORY", "CATEGORY_WORDS", "EXCLUDED_NAME_PARTS", "TESTBED_TYPES", "baseline_rule"]

#: Every category word an imported result may carry: the platform's five, then the testbed's two.
CATEGORY_WORDS: tuple[str, ...] = (
    "standard", "robustness-intervention", "more-data", "zero-shot", "other", "lp-adversarial", "low-accuracy",
)

#: The testbed's model types (``model_types.csv``) and the category each becomes.
TESTBED_TYPES: Mapping[str, str] = {
    "STANDARD": "standard",
    "ROBUST_INTV": "robustness-intervention",
    "MORE_DATA": "more-data",
    "LP_ADV": "lp-adversarial",
    "RANDOM_FEATURES": "low-accuracy",
    "LINEAR_PIXELS": "low-accuracy",
    "RANDOM_FORESTS": "low-accuracy",
    "NEAREST_NEIGHBORS": "low-accuracy",
    "LOW_ACCURACY_CNN": "low-accuracy",
}

#: The category of the baseline models.
BASELINE_CATEGORY = "standard"
#: The testbed leaves models whose (lower-cased) name contains one of these out of every line fit.
EXCLUDED_NAME_PARTS: tuple[str, ...] = ("aws", "batch64", "subsample")


def baseline_rule(model: str, category: str) -> bool:
    """The testbed's rule: a standard model whose name contains none of :data:`EXCLUDED_NAME_PARTS`."""
    lowered = model.lower()
    return category == BASELINE_CATEGORY and not any(part in lowered for part in EXCLUDED_NAME_PARTS)
