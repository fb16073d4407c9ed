"""The words users type for enumerations, and their protobuf values.

``standard`` ↔ ``MODEL_CATEGORY_STANDARD`` and so on: the CLI, the JSON output and the catalog use the
short words; the wire uses the enums.
"""

from __future__ import annotations

from shiftboard.domain.errors import InvalidArgument
from shiftboard.v1 import shiftboard_pb2 as pb

CATEGORIES: dict[str, int] = {
    "standard": pb.MODEL_CATEGORY_STANDARD,
    "robustness-intervention": pb.MODEL_CATEGORY_ROBUSTNESS_INTERVENTION,
    "more-data": pb.MODEL_CATEGORY_MORE_DATA,
    "zero-shot": pb.MODEL_CATEGORY_ZERO_SHOT,
    "other": pb.MODEL_CATEGORY_OTHER,
    # the ImageNet testbed's kinds (imported results; a submitter may use them too)
    "lp-adversarial": pb.MODEL_CATEGORY_LP_ADVERSARIAL,
    "low-accuracy": pb.MODEL_CATEGORY_LOW_ACCURACY,
}
FORMATS: dict[str, int] = {
    "torchscript": pb.MODEL_FORMAT_TORCHSCRIPT,
    "onnx": pb.MODEL_FORMAT_ONNX,
}
KINDS: dict[str, int] = {
    "reference": pb.TEST_SET_KIND_REFERENCE,
    "natural": pb.TEST_SET_KIND_NATURAL,
    "synthetic": pb.TEST_SET_KIND_SYNTHETIC,
    "adversarial": pb.TEST_SET_KIND_ADVERSARIAL,
}


def _lookup(table: dict[str, int], word: str, what: str) -> int:
    try:
        return table[word.strip().lower()]
    except KeyError:
        raise InvalidArgument(f"unknown {what} {word!r}: use one of {', '.join(table)}") from None


def _word(table: dict[str, int], value: int, what: str) -> str:
    for word, v in table.items():
        if v == value:
            return word
    raise InvalidArgument(f"{what} is unspecified or unknown ({value}): use one of {', '.join(table)}")


def category_value(word: str) -> int:
    return _lookup(CATEGORIES, word, "category")


def category_word(value: int) -> str:
    return _word(CATEGORIES, value, "category")


def format_value(word: str) -> int:
    return _lookup(FORMATS, word, "model format")


def format_word(value: int) -> str:
    return _word(FORMATS, value, "model format")


def kind_value(word: str) -> int:
    return _lookup(KINDS, word, "test-set kind")


def kind_word(value: int) -> str:
    return _word(KINDS, value, "test-set kind")
