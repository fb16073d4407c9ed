"""Checks of a test-set manifest's class map and ingestion transform, before it enters the catalog.

A class map names, for each class of a shifted test set, the outputs of its reference's label space
that count as it (:class:`~shiftboard.domain.scoring.ClassMap`); the transform says how the images
were brought to their stored shape (:class:`~shiftboard.testsets.Transform`).
"""

from __future__ import annotations

from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.scoring import ClassMap
from shiftboard.testsets import INTERPOLATIONS
from shiftboard.v1 import shiftboard_pb2 as pb


def check_class_map(spec: pb.TestSetSpec, num_outputs: int) -> ClassMap:
    """The spec's class map, validated against a reference label space of ``num_outputs`` classes."""
    if spec.class_subset:
        raise InvalidArgument("a test set has a class sub-list or a class map, not both: a class map already "
                              "says which model outputs are scored")
    if len(spec.class_map) != spec.num_classes:
        raise InvalidArgument(f"the class map has {len(spec.class_map)} classes, the test set {spec.num_classes}: "
                              "give one list of model outputs per class of the test set")
    try:
        return ClassMap.from_groups([list(g.outputs) for g in spec.class_map], num_outputs)
    except ValueError as exc:
        raise InvalidArgument(f"the class map of {spec.name} is not valid: {exc} (the reference "
                              f"{spec.reference!r} has {num_outputs} classes)") from None


def check_transform(spec: pb.TestSetSpec) -> None:
    """A recorded transform must be one ingestion can have made, and end at the spec's image size."""
    t = spec.transform
    resized = bool(t.resize) or t.stretch
    if resized and t.interpolation not in INTERPOLATIONS:
        raise InvalidArgument(f"transform interpolation {t.interpolation!r}: use {', '.join(INTERPOLATIONS)}")
    if t.interpolation and t.interpolation not in INTERPOLATIONS:
        raise InvalidArgument(f"transform interpolation {t.interpolation!r}: use {', '.join(INTERPOLATIONS)}")
    if bool(t.crop_height) != bool(t.crop_width):
        raise InvalidArgument("the transform's crop needs both a height and a width")
    if t.stretch and (t.resize or t.crop_height):
        raise InvalidArgument("the transform resizes straight to the set's size (stretch) or resizes the shorter "
                              "side and centre-crops, not both")
    if t.resize and not t.crop_height:
        raise InvalidArgument("the transform's shorter-side resize needs a centre crop")
    if t.resize and max(t.crop_height, t.crop_width) > t.resize:
        raise InvalidArgument(f"the transform's crop {t.crop_height}x{t.crop_width} is larger than its resize "
                              f"{t.resize}")
    if t.crop_height and (t.crop_height, t.crop_width) != (spec.height, spec.width):
        raise InvalidArgument(f"the transform crops to {t.crop_height}x{t.crop_width}, the images are "
                              f"{spec.height}x{spec.width}")
