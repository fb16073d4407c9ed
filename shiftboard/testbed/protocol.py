"""The ImageNet testbed's evaluation settings: kind, reference, groups and sample count of each.

Pure Python: no I/O beyond the shipped ``class_protocols.json``, no gRPC.

Every column of the testbed's grid (``robustness_top1s.csv``) is an evaluation setting, and in
shiftboard a test set of the same name. :func:`describe` says what a setting name means:

* **kind** — ``reference`` (ImageNet's ``val`` and its class-restricted views ``val-on-<x>-classes``,
  ``val_subsampled_class_1_8``), ``natural`` (ImageNetV2, ImageNet-Sketch, ObjectNet, ImageNet-R,
  ImageNet-A, the video sets ImageNet-Vid-Robust and YTBB-Robust), ``synthetic`` (ImageNet-C
  corruptions, greyscale, stylized ImageNet) or ``adversarial`` (PGD attacks);
* **reference** — the setting on the x-axis of its line: ``val`` by default; for a setting scored on a
  class sub-list the reference accuracy on the same classes (``imagenet-r`` → ``val-on-imagenet-r-classes``,
  ``imagenet-a`` → ``val-on-imagenet-a-classes``, ``objectnet-1.0-beta`` → ``val-on-objectnet-classes``);
  for the video sets, the anchor frames (``..._pm0``) shift from ``val-on-<x>-classes`` and the
  perturbed neighbours (``..._pm10``) from the anchors, as the testbed plots them;
* **groups** — the sets of settings a group ranking averages over, first the primary one:
  ImageNet-C by corruption and storage (``imagenet-c.fog_on-disk``), by corruption (``imagenet-c.fog``),
  by severity (``imagenet-c.severity-3``), by storage (``imagenet-c_in-memory``), all of ImageNet-C,
  and ``corruptions`` (ImageNet-C with greyscale and stylized, the testbed's ``avg_corruptions``);
  PGD by norm and all of PGD; the ImageNetV2 variants; each video set's anchors and pm-k;
* **samples** — the sample count the accuracy was measured on (the testbed's registry sizes, checked
  against the grid: every published accuracy times the count is a whole number of samples). ImageNet-C
  and PGD list the full 50,000; for some models the testbed measured a 10% subset of them (its
  ``_10percent`` settings, merged into the same column), so the count is an upper bound there.

Names are understood by rules where the testbed names them systematically (``imagenet-c.*``, ``pgd.*``,
``val-on-*-classes``, ``imagenetv2-*``, ``*_pm<k>``, ``*_subsampled_class_1_8``, ``*_10percent``), so
earlier and later versions of the grid with other columns work; the named natural shifts and the
sample counts come from the table :data:`NAMED`. A name no rule and no table entry knows gives
``None``: :func:`describe_all` reports such columns instead of guessing what they measure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Literal

__all__ = [
    "CLASS_PROTOCOLS", "KINDS", "NAMED", "Kind", "Setting", "class_map", "class_sublist", "describe",
    "describe_all",
]

Kind = Literal["reference", "natural", "synthetic", "adversarial"]
KINDS: tuple[Kind, ...] = ("reference", "natural", "synthetic", "adversarial")
#: Names of the class protocols shipped in ``class_protocols.json``.
CLASS_PROTOCOLS: tuple[str, ...] = ("imagenet-r", "imagenet-a", "objectnet-1.0-beta")


@dataclass(frozen=True, kw_only=True)
class Setting:
    """What one evaluation setting of the testbed is.

    ``reference`` is None for a reference setting. ``groups`` lists the groups it belongs to, the
    primary one first (``group`` is that one, or None). ``samples`` is None when the count is not
    known. ``class_protocol`` names the class sub-list (or ObjectNet's class map) the setting and its
    reference are scored on, a key of ``class_protocols.json`` or None. ``rule`` says how the name
    was understood: ``"table"`` (the named settings) or the rule that matched.
    """

    name: str
    kind: Kind
    reference: str | None
    title: str
    samples: int | None
    groups: tuple[str, ...] = ()
    class_protocol: str | None = None
    rule: str = "table"

    @property
    def group(self) -> str | None:
        """The primary group (the first of ``groups``), or None."""
        return self.groups[0] if self.groups else None

    @property
    def is_shift(self) -> bool:
        """Whether the setting is a shift (has a reference), i.e. has a line and effective robustness."""
        return self.reference is not None


def _ref(name: str, title: str, samples: int | None, protocol: str | None = None) -> Setting:
    return Setting(name=name, kind="reference", reference=None, title=title, samples=samples,
                   class_protocol=protocol)


def _nat(name: str, reference: str, title: str, samples: int | None, *groups: str,
         protocol: str | None = None) -> Setting:
    return Setting(name=name, kind="natural", reference=reference, title=title, samples=samples,
                   groups=tuple(groups), class_protocol=protocol)


_V2 = {
    "imagenetv2-matched-frequency": "ImageNetV2 matched frequency",
    "imagenetv2-matched-frequency-format-val": "ImageNetV2 matched frequency (val format)",
    "imagenetv2-threshold0.7": "ImageNetV2 threshold 0.7",
    "imagenetv2-threshold-0.7-format-val": "ImageNetV2 threshold 0.7 (val format)",
    "imagenetv2-topimages": "ImageNetV2 top images",
    "imagenetv2-top-images-format-val": "ImageNetV2 top images (val format)",
}

#: The named settings: the references and their class-restricted views, and the natural shifts.
NAMED: Mapping[str, Setting] = {s.name: s for s in [
    _ref("val", "ImageNet", 50000),
    _ref("val-on-imagenet-a-classes", "ImageNet on ImageNet-A's classes", 10000, "imagenet-a"),
    _ref("val-on-imagenet-r-classes", "ImageNet on ImageNet-R's classes", 10000, "imagenet-r"),
    _ref("val-on-objectnet-classes", "ImageNet on ObjectNet's classes", 6250, "objectnet-1.0-beta"),
    _ref("val-on-vid-robust-classes", "ImageNet on ImageNet-Vid-Robust's classes", 14400),
    _ref("val-on-ytbb-robust-classes", "ImageNet on YTBB-Robust's classes", 11550),
    _ref("val_subsampled_class_1_8", "ImageNet, 1/8 of the classes", 6250),
    _nat("imagenet-a", "val-on-imagenet-a-classes", "ImageNet-A", 7500, protocol="imagenet-a"),
    _nat("imagenet-r", "val-on-imagenet-r-classes", "ImageNet-R", 30000, protocol="imagenet-r"),
    _nat("imagenet-sketch", "val", "ImageNet-Sketch", 50889),
    _nat("objectnet-1.0-beta", "val-on-objectnet-classes", "ObjectNet", 18514, protocol="objectnet-1.0-beta"),
    _nat("imagenet-vid-robust_pm0", "val-on-vid-robust-classes", "ImageNet-Vid-Robust anchors (pm-0)", 1109,
         "imagenet-vid-robust"),
    _nat("imagenet-vid-robust_pm10", "imagenet-vid-robust_pm0", "ImageNet-Vid-Robust pm-10", 1109,
         "imagenet-vid-robust"),
    _nat("ytbb-robust_pm0", "val-on-ytbb-robust-classes", "YTBB-Robust anchors (pm-0)", 2030, "ytbb-robust"),
    _nat("ytbb-robust_pm10", "ytbb-robust_pm0", "YTBB-Robust pm-10", 2030, "ytbb-robust"),
    *[_nat(name, "val", title, 10000, "imagenetv2",
           "imagenetv2.format-val" if name.endswith("format-val") else "imagenetv2.original")
      for name, title in _V2.items()],
    _nat("imagenetv2-matched-frequency-format-val_subsampled_class_1_8", "val_subsampled_class_1_8",
         "ImageNetV2 matched frequency, 1/8 of the classes", 1250),
    _nat("openimages_test_ilsvrc_subset", "val-on-openimages-classes", "OpenImages (ImageNet classes)", None),
    Setting(name="greyscale", kind="synthetic", reference="val", title="Greyscale", samples=50000,
            groups=("corruptions",)),
    Setting(name="stylized_imagenet", kind="synthetic", reference="val", title="Stylized ImageNet",
            samples=50000, groups=("corruptions",)),
]}

_IMAGENET_C = re.compile(r"^imagenet-c\.(?P<corruption>[a-z_]+)\.(?P<severity>[1-9])_(?P<storage>in-memory|on-disk)$")
_PGD = re.compile(r"^pgd\.(?P<norm>l[0-9a-z]+)\.eps(?P<eps>[0-9.]+)(?P<targeted>\.targeted)?$")
_VAL_ON = re.compile(r"^val-on-(?P<what>.+)-classes$")
_PMK = re.compile(r"^(?P<base>.+)_pm(?P<k>[0-9]+)$")
_SUB_1_8 = "_subsampled_class_1_8"
_TEN_PERCENT = "_10percent"


def _by_rule(name: str) -> Setting | None:
    if m := _IMAGENET_C.match(name):
        corruption, severity, storage = m["corruption"], m["severity"], m["storage"]
        return Setting(
            name=name, kind="synthetic", reference="val", samples=50000, rule="imagenet-c",
            title=f"ImageNet-C {corruption.replace('_', ' ')}, severity {severity} ({storage})",
            groups=(f"imagenet-c.{corruption}_{storage}", f"imagenet-c.{corruption}",
                    f"imagenet-c.severity-{severity}", f"imagenet-c_{storage}", "imagenet-c", "corruptions"))
    if m := _PGD.match(name):
        norm = m["norm"]
        return Setting(name=name, kind="adversarial", reference="val", samples=50000, rule="pgd",
                       title=f"PGD {norm} eps {m['eps']}{' (targeted)' if m['targeted'] else ''}",
                       groups=(f"pgd.{norm}", "pgd"))
    if m := _VAL_ON.match(name):
        what = m["what"]
        return Setting(name=name, kind="reference", reference=None, samples=None, rule="val-on-classes",
                       title=f"ImageNet on {what}'s classes",
                       class_protocol=what if what in CLASS_PROTOCOLS else None)
    for suffix, divisor, rule in ((_SUB_1_8, 8, "subsampled-classes"), (_TEN_PERCENT, 10, "10-percent")):
        if name.endswith(suffix) and (base := describe(name.removesuffix(suffix))) is not None:
            reference = None
            if base.reference is not None:
                reference = base.reference + suffix if rule == "subsampled-classes" else base.reference
            return replace(base, name=name, reference=reference, rule=rule, groups=base.groups if divisor == 10 else (),
                           samples=None if base.samples is None else base.samples // divisor,
                           title=f"{base.title}, {'1/8 of the classes' if divisor == 8 else '10% subset'}")
    if name.startswith("imagenetv2-"):
        form = "imagenetv2.format-val" if name.endswith("-format-val") else "imagenetv2.original"
        return Setting(name=name, kind="natural", reference="val", samples=10000, rule="imagenetv2",
                       title=f"ImageNetV2 {name.removeprefix('imagenetv2-')}", groups=("imagenetv2", form))
    if m := _PMK.match(name):
        if int(m["k"]) == 0:  # anchors are named in the table; no rule invents a reference for them
            return None
        anchors = describe(f"{m['base']}_pm0")
        if anchors is not None:
            return replace(anchors, name=name, reference=anchors.name, rule="pm-k",
                           title=f"{anchors.title.split(' anchors')[0]} pm-{int(m['k'])}")
        return None
    return None


@cache
def describe(name: str) -> Setting | None:
    """What the setting ``name`` is (see the module docstring); None when nothing knows the name."""
    return NAMED.get(name) or _by_rule(name)


@dataclass(frozen=True)
class Described:
    """The outcome of :func:`describe_all`: the settings understood and the names that were not."""

    settings: Mapping[str, Setting]
    unknown: tuple[str, ...] = field(default=())


def describe_all(names: Iterable[str], declared: Mapping[str, Setting] | None = None) -> Described:
    """:func:`describe` for every name, ``declared`` settings taking precedence; unknown names listed."""
    found: dict[str, Setting] = {}
    unknown: list[str] = []
    for name in names:
        setting = (declared or {}).get(name) or describe(name)
        if setting is None:
            unknown.append(name)
        else:
            found[name] = setting
    return Described(settings=found, unknown=tuple(unknown))


_Protocol = list[int] | dict[str, list[int]]


@cache
def _protocols() -> dict[str, _Protocol]:
    text = resources.files("shiftboard.testbed").joinpath("data/class_protocols.json").read_text("utf-8")
    return dict(json.loads(text))


def class_sublist(protocol: str) -> tuple[int, ...]:
    """The ImageNet-1k classes a protocol scores, ascending (for ObjectNet: every mapped class, 125)."""
    value = _lookup(protocol)
    if isinstance(value, dict):
        return tuple(sorted({int(i) for ids in value.values() for i in ids}))
    return tuple(sorted(int(i) for i in value))


def class_map(protocol: str) -> dict[str, tuple[int, ...]]:
    """Each class of the test set → the ImageNet-1k classes that count as it (the file's order).

    For ImageNet-R and ImageNet-A, whose classes are ImageNet classes, each class maps to itself (the
    key is the class index as text).
    """
    value = _lookup(protocol)
    if isinstance(value, dict):
        return {str(k): tuple(int(i) for i in v) for k, v in value.items()}
    return {str(int(i)): (int(i),) for i in value}


def _lookup(protocol: str) -> _Protocol:
    protocols = _protocols()
    if protocol not in protocols:
        raise KeyError(f"unknown class protocol {protocol!r}: use one of {', '.join(sorted(protocols))}")
    return protocols[protocol]
