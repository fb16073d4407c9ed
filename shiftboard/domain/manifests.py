"""What a model's manifest and a test set's manifest must satisfy before either enters the catalog.

Plain dataclasses and the rules over them, one definition each: the gateway converts the wire
messages into these and back (``services/gateway/manifest_messages.py``); the CLI calls the same
checks to fail fast, before anything is read or uploaded. Every refusal is an
:class:`~shiftboard.domain.errors.InvalidArgument` (or ``NotFound``) that names the
problem and the fix.

Enumerations are their words (``onnx``, ``torchscript``, ``standard``, ``reference``, ...; see
:mod:`shiftboard.wire.vocab`), and an empty word means the field is not set (or not a value this version
knows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from shiftboard.domain.errors import InvalidArgument, NotFound
from shiftboard.domain.names import validate_name
from shiftboard.domain.scoring import ClassMap

MAX_SHARDS = 100_000
MAX_CLASSES = 1_000_000
MAX_SIDE = 4096
MAX_DESCRIPTION = 10_000
#: The resampling filters ingestion knows (``shiftboard.testsets.INTERPOLATIONS`` implements them).
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos")
REFERENCE = "reference"
#: The model formats (``shiftboard.formats`` recognises, checks and loads each).
MODEL_FORMATS = ("onnx", "torch-export", "torchscript")


# ------------------------------------------------------------------------------------------ models


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """How a model wants its images: shape, the value range uint8 pixels map to, then mean/std."""

    channels: int
    height: int
    width: int
    value_min: float = 0.0
    value_max: float = 0.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ModelManifest:
    name: str
    version: str
    format: str
    category: str
    num_classes: int
    input: InputSpec
    tags: tuple[str, ...] = ()
    description: str = ""


def validate_model(m: ModelManifest) -> ModelManifest:
    """The manifest with its defaults filled (value range 0..1, mean 0, std 1, one value per channel)."""
    validate_name(m.name, "model name")
    validate_name(m.version, "model version")
    if m.format not in MODEL_FORMATS:
        raise InvalidArgument(f"the model format is not set: use {', '.join(MODEL_FORMATS[:-1])} or "
                              f"{MODEL_FORMATS[-1]}")
    if not m.category:
        raise InvalidArgument("the model category is not set: use standard, robustness-intervention, "
                              "more-data, zero-shot or other")
    if not 2 <= m.num_classes <= MAX_CLASSES:
        raise InvalidArgument(f"num_classes is {m.num_classes}: a classifier needs 2 to {MAX_CLASSES}")
    spec = validate_input(m.input)
    for tag in m.tags:
        validate_name(tag, "tag")
    if len(m.description) > MAX_DESCRIPTION:
        raise InvalidArgument("the description is longer than 10,000 characters")
    return replace(m, input=spec)


def validate_input(spec: InputSpec) -> InputSpec:
    if spec.channels not in (1, 3, 4):
        raise InvalidArgument(f"input channels is {spec.channels}: use 1 (grayscale), 3 (RGB) or 4")
    for side, value in (("height", spec.height), ("width", spec.width)):
        if not 1 <= value <= MAX_SIDE:
            raise InvalidArgument(f"input {side} is {value}: use 1 to {MAX_SIDE} pixels")
    value_max = 1.0 if spec.value_min == 0 and spec.value_max == 0 else spec.value_max
    if not (math.isfinite(spec.value_min) and math.isfinite(value_max) and value_max > spec.value_min):
        raise InvalidArgument(f"input value range [{spec.value_min}, {value_max}] is empty: give "
                              "min < max, e.g. 0,1 or 0,255")
    filled = {}
    for name, values, fill in (("mean", spec.mean, 0.0), ("std", spec.std, 1.0)):
        if len(values) == 0:
            values = (fill,) * spec.channels
        elif len(values) == 1 and spec.channels > 1:
            values = (values[0],) * spec.channels
        if len(values) != spec.channels:
            raise InvalidArgument(f"input {name} has {len(values)} values for {spec.channels} channels: "
                                  "give one per channel")
        if not all(math.isfinite(v) for v in values):
            raise InvalidArgument(f"input {name} must be finite numbers")
        filled[name] = tuple(values)
    if any(v <= 0 for v in filled["std"]):
        raise InvalidArgument("input std must be positive in every channel")
    return replace(spec, value_max=value_max, mean=filled["mean"], std=filled["std"])


# ------------------------------------------------------------------------------------------ test sets


@dataclass(frozen=True, kw_only=True)
class TransformSpec:
    """How ingestion brought the images to their stored shape (``shiftboard.testsets.Transform``)."""

    border: int = 0
    resize: int = 0
    crop_height: int = 0
    crop_width: int = 0
    interpolation: str = ""
    stretch: bool = False


@dataclass(frozen=True, kw_only=True)
class ShardEntry:
    index: int
    first_sample: int
    num_samples: int


@dataclass(frozen=True, kw_only=True)
class TestSetManifest:
    name: str
    kind: str
    reference: str = ""
    group: str = ""
    num_classes: int = 0
    channels: int = 0
    height: int = 0
    width: int = 0
    num_samples: int = 0
    class_subset: tuple[int, ...] = ()
    class_names: tuple[str, ...] = ()
    class_map: tuple[tuple[int, ...], ...] = ()
    transform: TransformSpec | None = None
    #: references after ``reference`` (a shift's plane fit, :func:`check_extra_references`)
    extra_references: tuple[str, ...] = ()
    shards: tuple[ShardEntry, ...] = field(default=())
    unlabelled: bool = False  # registered without labels: its accuracy is only estimated


@dataclass(frozen=True)
class ReferenceInfo:
    """What a shift's checks need of its reference test set."""

    kind: str
    num_classes: int


#: Looks up a registered test set by name; raises ``NotFound`` when there is none.
ReferenceLookup = Callable[[str], ReferenceInfo]


def check_kind_rules(kind: str, name: str, reference: str, *, has_class_map: bool) -> str:
    """A reference shifts from nothing and has no class map; a shift names its reference. Returns the
    reference to store ("" for a reference test set)."""
    if kind == REFERENCE:
        if reference and reference != name:
            raise InvalidArgument("a reference test set does not shift from another: leave --reference empty")
        if has_class_map:
            raise InvalidArgument("a class map maps a shift's classes onto its reference's label space: give "
                                  "it to a shifted test set (with --reference), not to a reference")
        return ""
    if not reference:
        raise InvalidArgument("a shifted test set needs --reference: the name of the reference "
                              "(in-distribution) test set it shifts from")
    validate_name(reference, "reference test set name")
    return reference


def check_unlabelled(kind: str, *, has_classes: bool) -> None:
    """A set registered without labels must be a shift scoring every class: a reference's accuracy is the x
    axis of every fit, and a class sub-list or map changes what the reference's top-1 would be compared to."""
    if kind == REFERENCE:
        raise InvalidArgument("a reference test set needs labels (its accuracy is what every shift is measured "
                              "against): register it without --no-labels, or register this set as a shift "
                              "(--kind natural --reference REF)")
    if has_classes:
        raise InvalidArgument("an unlabelled test set cannot have a class sub-list or class map (the agreement "
                              "estimate compares top-1 over every class): leave --classes / --class-map out")


def find_reference(reference: str, lookup: ReferenceLookup) -> ReferenceInfo:
    """The shift's reference, which must exist and be of kind reference."""
    try:
        info = lookup(reference)
    except NotFound:
        raise NotFound(f"reference test set {reference!r} does not exist: register it first "
                       "(`shiftboard testset add PATH --kind reference`)") from None
    if info.kind != REFERENCE:
        raise InvalidArgument(f"test set {reference!r} is not of kind reference: name a reference test set")
    return info


def check_extra_references(extra: Sequence[str], *, name: str, kind: str, reference: str, num_classes: int,
                           restricted: bool, lookup: ReferenceLookup) -> tuple[str, ...]:
    """A shift's further references (its effective robustness is then also a plane over all of them).

    Each must be a registered test set of kind reference, distinct from the primary ``reference`` and from
    the others, with the primary's ``num_classes``: a model's accuracy on each must be a score in the same
    label space. Not with a class sub-list or class map: only the primary reference's accuracy is kept
    restricted to a shift's classes, so the plane would mix restricted and unrestricted accuracies.
    """
    if not extra:
        return ()
    if kind == REFERENCE:
        raise InvalidArgument("a reference test set has no references: give further --reference options only "
                              "to a shifted test set")
    if restricted:
        raise InvalidArgument("a shift with a class sub-list or class map takes one --reference: only the "
                              "primary reference's accuracy is restricted to the shift's classes")
    seen = {reference}
    for other in extra:
        validate_name(other, "reference test set name")
        if other == name:
            raise InvalidArgument(f"{name} cannot be its own reference: name reference test sets in --reference")
        if other in seen:
            raise InvalidArgument(f"reference {other!r} is given twice: name each reference once")
        seen.add(other)
        info = find_reference(other, lookup)
        if info.num_classes != num_classes:
            raise InvalidArgument(f"the reference {other!r} has {info.num_classes} classes, the primary reference "
                                  f"{reference!r} {num_classes}: every reference of a shift must share its label "
                                  "space (same class count)")
    return tuple(extra)


def check_class_map(groups: Sequence[Sequence[int]], *, num_classes: int, class_subset: Sequence[int],
                    num_outputs: int, name: str, reference: str) -> ClassMap:
    """A shift's class map, validated against its reference's label space of ``num_outputs`` classes."""
    if class_subset:
        raise InvalidArgument("a test set has a class sub-list or a class map, not both: a class map already "
                              "says which model outputs are scored")
    if len(groups) != num_classes:
        raise InvalidArgument(f"the class map has {len(groups)} classes, the test set {num_classes}: "
                              "give one list of model outputs per class of the test set")
    try:
        return ClassMap.from_groups([list(g) for g in groups], num_outputs)
    except ValueError as exc:
        raise InvalidArgument(f"the class map of {name} is not valid: {exc} (the reference "
                              f"{reference!r} has {num_outputs} classes)") from None


def check_transform(t: TransformSpec, height: int, width: int) -> None:
    """A recorded transform must be one ingestion can have made, and end at the images' size."""
    resized = bool(t.resize) or t.stretch
    if (resized or t.interpolation) and t.interpolation not in INTERPOLATIONS:
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
    if t.crop_height and (t.crop_height, t.crop_width) != (height, width):
        raise InvalidArgument(f"the transform crops to {t.crop_height}x{t.crop_width}, the images are "
                              f"{height}x{width}")


def check_shards(shards: Sequence[ShardEntry], num_samples: int, reserved: int) -> None:
    """Shards numbered from 0, covering consecutive samples, as many as the upload reserved."""
    if len(shards) != reserved:
        raise InvalidArgument(f"the manifest lists {len(shards)} shards, the upload reserved {reserved}")
    expected_first = 0
    for i, shard in enumerate(shards):
        if shard.index != i or shard.first_sample != expected_first or shard.num_samples == 0:
            raise InvalidArgument(f"shard {i} of the manifest is out of order or empty: shards must be "
                                  "numbered from 0 and cover consecutive samples")
        expected_first += shard.num_samples
    if expected_first != num_samples or num_samples == 0:
        raise InvalidArgument(f"the shards hold {expected_first} samples, the manifest says {num_samples}")


def validate_testset(m: TestSetManifest, lookup: ReferenceLookup, *, reserved_shards: int) -> TestSetManifest:
    """The manifest as it is stored (a reference's ``reference`` emptied); ``lookup`` finds its reference."""
    validate_name(m.name, "test set name")
    if not m.kind:
        raise InvalidArgument("the test-set kind is not set: use reference, natural, synthetic or adversarial")
    if m.group:
        validate_name(m.group, "group")
    if not 2 <= m.num_classes <= MAX_CLASSES:
        raise InvalidArgument(f"num_classes is {m.num_classes}: use 2 to {MAX_CLASSES}")
    reference = check_kind_rules(m.kind, m.name, m.reference, has_class_map=bool(m.class_map))
    if m.unlabelled:
        check_unlabelled(m.kind, has_classes=bool(m.class_subset or m.class_map))
    if reference:
        info = find_reference(reference, lookup)
        if m.class_map:
            check_class_map(m.class_map, num_classes=m.num_classes, class_subset=m.class_subset,
                            num_outputs=info.num_classes, name=m.name, reference=reference)
        elif info.num_classes != m.num_classes:
            raise InvalidArgument(f"the reference {reference!r} has {info.num_classes} "
                                  f"classes, this set {m.num_classes}: they must share one label space")
    extra = check_extra_references(m.extra_references, name=m.name, kind=m.kind, reference=reference,
                                   num_classes=m.num_classes,  # the primary's, once checked above
                                   restricted=bool(m.class_subset or m.class_map), lookup=lookup)
    subset = list(m.class_subset)
    if len(set(subset)) != len(subset) or any(c >= m.num_classes for c in subset):
        raise InvalidArgument(f"the class sub-list must hold distinct classes in [0, {m.num_classes})")
    if m.class_names and len(m.class_names) != m.num_classes:
        raise InvalidArgument(f"{len(m.class_names)} class names for {m.num_classes} classes")
    if m.transform is not None:
        check_transform(m.transform, m.height, m.width)
    for side, value in (("channels", m.channels), ("height", m.height), ("width", m.width)):
        if not 1 <= value <= MAX_SIDE:
            raise InvalidArgument(f"{side} is {value}: out of range")
    check_shards(m.shards, m.num_samples, reserved_shards)
    return replace(m, reference=reference, extra_references=extra)
