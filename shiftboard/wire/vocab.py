"""The words users type for enumerations, and their protobuf values: the one place they are spelled.

``standard`` ↔ ``MODEL_CATEGORY_STANDARD``, ``succeeded`` ↔ ``EVALUATION_STATUS_SUCCEEDED`` and so on:
the CLI, the JSON output and the catalog use the short words; the wire uses the enums.
"""

from __future__ import annotations

from typing import TypeVar

from shiftboard.domain.errors import InvalidArgument
from shiftboard.v1 import shiftboard_pb2 as pb

E = TypeVar("E", bound=int)

CATEGORIES: dict[str, pb.ModelCategory] = {
    "standard": pb.MODEL_CATEGORY_STANDARD,
    "robustness-intervention": pb.MODEL_CATEGORY_ROBUSTNESS_INTERVENTION,
    "more-data": pb.MODEL_CATEGORY_MORE_DATA,
    "zero-shot": pb.MODEL_CATEGORY_ZERO_SHOT,
    "other": pb.MODEL_CATEGORY_OTHER,
    # the ImageNet testbed's kinds (imported results; a submitter may use them too)
    "lp-adversarial": pb.MODEL_CATEGORY_LP_ADVERSARIAL,
    "low-accuracy": pb.MODEL_CATEGORY_LOW_ACCURACY,
}
FORMATS: dict[str, pb.ModelFormat] = {
    "onnx": pb.MODEL_FORMAT_ONNX,
    "torch-export": pb.MODEL_FORMAT_TORCH_EXPORT,
    "torchscript": pb.MODEL_FORMAT_TORCHSCRIPT,
}
KINDS: dict[str, pb.TestSetKind] = {
    "reference": pb.TEST_SET_KIND_REFERENCE,
    "natural": pb.TEST_SET_KIND_NATURAL,
    "synthetic": pb.TEST_SET_KIND_SYNTHETIC,
    "adversarial": pb.TEST_SET_KIND_ADVERSARIAL,
}
#: An evaluation's states, as the catalog stores them.
PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"
STATUSES: dict[str, pb.EvaluationStatus] = {
    PENDING: pb.EVALUATION_STATUS_PENDING,
    RUNNING: pb.EVALUATION_STATUS_RUNNING,
    SUCCEEDED: pb.EVALUATION_STATUS_SUCCEEDED,
    FAILED: pb.EVALUATION_STATUS_FAILED,
}
#: The states an evaluation does not leave by itself.
FINISHED = frozenset({SUCCEEDED, FAILED})


def _lookup(table: dict[str, E], word: str, what: str) -> E:
    try:
        return table[word.strip().lower()]
    except KeyError:
        raise InvalidArgument(f"unknown {what} {word!r}: use one of {', '.join(table)}") from None


def _word(table: dict[str, E], value: int, what: str) -> str:
    for word, v in table.items():
        if v == value:
            return word
    raise InvalidArgument(f"{what} is unspecified or unknown ({value}): use one of {', '.join(table)}")


def category_value(word: str) -> pb.ModelCategory:
    return _lookup(CATEGORIES, word, "category")


def category_word(value: int) -> str:
    return _word(CATEGORIES, value, "category")


def format_value(word: str) -> pb.ModelFormat:
    return _lookup(FORMATS, word, "model format")


def format_word(value: int) -> str:
    return _word(FORMATS, value, "model format")


def kind_value(word: str) -> pb.TestSetKind:
    return _lookup(KINDS, word, "test-set kind")


def kind_word(value: int) -> str:
    return _word(KINDS, value, "test-set kind")


def status_value(word: str) -> pb.EvaluationStatus:
    return _lookup(STATUSES, word, "evaluation status")


def status_word(value: int) -> str:
    return _word(STATUSES, value, "evaluation status")


def word_or_empty(table: dict[str, E], value: int) -> str:
    """The word of ``value`` in ``table``, or "" when it is unspecified or unknown (for validation to name)."""
    return next((word for word, v in table.items() if v == value), "")
