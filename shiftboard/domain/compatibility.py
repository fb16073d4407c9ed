"""Which models can be evaluated on which test sets: one rule, for the gateway and the worker.

A pair can run when the model takes the test set's images (channels, height, width) and can be
scored in the test set's label space:

* **class map** (a shift whose classes are groups of its reference's classes): every mapped output
  must be one of the model's, which may have more (the unmapped outputs are ignored);
* **class sub-list** (ImageNet-R / ObjectNet style: the labels are the model's classes, only some
  of them scored): every label and every listed class must be one of the model's, which may have
  more (the prediction is the argmax over the sub-list only);
* **neither**: the model and the test set share one label space (equal class counts): a model with
  more classes would be scored on classes the test set does not have.

Plain values, no protobuf: callers build :class:`ModelShape` and :class:`TestSetShape` from their
own messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ModelShape", "TestSetShape", "incompatibility"]


@dataclass(frozen=True)
class ModelShape:
    """What a model takes and gives: ``label`` names it ("name:version") in messages."""

    label: str
    chw: tuple[int, int, int]
    num_classes: int


@dataclass(frozen=True)
class TestSetShape:
    """What a test set holds and how it is scored: its label space (``num_classes``), its class
    sub-list (model classes), and its class map (per test-set class, the model outputs counted as it)."""

    name: str
    chw: tuple[int, int, int]
    num_classes: int
    class_subset: Sequence[int] = ()
    class_map: Sequence[Sequence[int]] = ()


def _size(chw: tuple[int, int, int]) -> str:
    return "x".join(map(str, chw))


def incompatibility(model: ModelShape, testset: TestSetShape) -> str | None:
    """Why ``model`` cannot be evaluated on ``testset`` (a message naming the fix), or None when it can."""
    m, t = model, testset
    if m.chw != t.chw:
        return (f"model {m.label} takes {_size(m.chw)} images but test set {t.name} holds {_size(t.chw)}: "
                "add the test set at the model's input size (--size, --channels) or submit a model for its size")
    if t.class_map:  # scored through the map: the model needs every mapped output
        top = max(max(group) for group in t.class_map)
        if top >= m.num_classes:
            return (f"model {m.label} has {m.num_classes} classes, but the class map of test set {t.name} "
                    f"counts output {top}: submit a model of its reference's label space")
    elif t.class_subset:  # scored over the sub-list: the model needs every label and listed class
        top = max(t.num_classes - 1, *t.class_subset)
        if top >= m.num_classes:
            return (f"model {m.label} has {m.num_classes} classes, but test set {t.name} has labels and "
                    f"listed classes up to {top}: submit a model of its label space")
    elif m.num_classes != t.num_classes:
        return (f"model {m.label} has {m.num_classes} classes, test set {t.name} {t.num_classes}: "
                "they must share one label space")
    return None
