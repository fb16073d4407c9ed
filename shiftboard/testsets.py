"""Test sets: read an ``.npz`` or an ImageFolder, bring every image to one shape, cut it into shards.

This module is the face of ingestion; callers import from here only. It is built from:

* :mod:`shiftboard.testset_sources` -- the two sources (an ``.npz`` with ``images``, ``labels`` and
  optionally ``class_names``; an ImageFolder, one sub-folder per class), their checks and batches;
* :mod:`shiftboard.testset_images` -- how each image is converted: the channel count, then the
  :class:`Transform` (border, resize of the shorter side, centre crop, or a plain resize to ``size``)
  with the named Pillow filter;
* :mod:`shiftboard.domain.shards` -- the shard format the output is written in: uint8 ``N×C×H×W``
  (channels first) with int64 labels.

:func:`prepare_testset` checks the arguments and the data, converts every image and writes the shards;
:class:`PreparedTestSet` is everything the manifest needs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from shiftboard.domain.errors import InvalidArgument

# The shard functions are re-exported (see __all__) so callers such as the gateway need one import.
from shiftboard.domain.shards import (
    ProgressCallback,
    ShardInfo,
    encode_shard,
    read_shard,
    sha256_bytes,
    sha256_file,
    verify_shard,
    write_shards,
)
from shiftboard.testset_images import INTERPOLATIONS, PLAIN, Transform, is_count
from shiftboard.testset_sources import (
    BATCH_SAMPLES,
    IMAGE_EXTENSIONS,
    ImageFolderTestSet,
    NpzTestSet,
    TestSetSource,
    examples,
    read_image_folder,
    read_npz,
)

__all__ = [
    "BATCH_SAMPLES", "DEFAULT_SHARD_BYTES", "IMAGE_EXTENSIONS", "INTERPOLATIONS", "ImageFolderTestSet",
    "NpzTestSet", "PreparedTestSet", "ShardInfo", "TestSetSource", "Transform", "encode_shard", "parse_class_map",
    "parse_size", "prepare_testset", "read_image_folder", "read_npz", "read_shard", "sha256_bytes", "sha256_file",
    "verify_shard", "write_shards",
]

DEFAULT_SHARD_BYTES = 64 * 1024 * 1024  # the default of the shard_bytes setting


@dataclass(frozen=True)
class PreparedTestSet:
    """A test set cut into shards: everything the manifest needs. ``class_names`` is empty or
    ``num_classes`` long; ``warnings`` are for the user (empty class folders, skipped files)."""

    source_format: Literal["npz", "imagefolder"]
    num_samples: int
    num_classes: int
    channels: int
    height: int
    width: int
    class_names: tuple[str, ...]
    class_subset: tuple[int, ...] | None
    shard_samples: int
    shards: tuple[ShardInfo, ...]
    warnings: tuple[str, ...] = ()
    transform: Transform | None = None  # None: the images kept their source size
    unlabelled: bool = False  # the shards carry placeholder labels (0), never stored or scored

    @property
    def size_bytes(self) -> int:
        """The bytes of all shards together."""
        return sum(s.size_bytes for s in self.shards)


def parse_class_map(data: object, what: str = "the class map") -> tuple[list[list[int]], tuple[str, ...]]:
    """A class map from JSON: a list of lists of model outputs (class ``g`` <- ``data[g]``), or an object
    ``{class name: [outputs]}`` in class order. Returns the groups and the class names (empty for a list).

    Only the shape is checked here; the outputs' range and that none is in two classes are checked
    against the reference's label space by :class:`~shiftboard.domain.scoring.ClassMap`.
    """
    names: tuple[str, ...] = ()
    if isinstance(data, dict):
        names = tuple(str(k) for k in data)
        items = list(data.values())
    elif isinstance(data, list):
        items = data
    else:
        raise InvalidArgument(f"{what} must be a JSON list of lists of model outputs, e.g. [[409, 530], [414]], "
                              "or an object {class name: [outputs]}")
    if not items:
        raise InvalidArgument(f"{what} is empty: give one list of model outputs per class")
    groups: list[list[int]] = []
    for g, item in enumerate(items):
        label = repr(names[g]) if names else str(g)
        if not isinstance(item, list) or not item or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in item):
            raise InvalidArgument(f"class {label} of {what} is {item!r}: give a non-empty list of model output "
                                  "indices (whole numbers from 0)")
        groups.append([int(v) for v in item])
    return groups, names


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"224"`` or ``"224x192"`` (height x width) into ``(height, width)``."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX×]\s*(\d+)\s*)?", text)
    if not match or int(match[1]) < 1 or (match[2] is not None and int(match[2]) < 1):
        raise InvalidArgument(f"size {text!r} is not valid: give HxW in pixels, e.g. 224x224, or one number")
    return int(match[1]), int(match[2] or match[1])


def _num_classes(source: TestSetSource, given: int | None, name: str, folder: bool) -> int:
    labels, names = source.labels, source.class_names
    if folder and given is not None and given != len(names):
        raise InvalidArgument(
            f"{name}: has {len(names)} class folders but num_classes is {given}: class indices come from "
            "the sorted folder names, so add an empty folder for each class without images, or leave "
            "num_classes out"
        )
    if names and given is not None and given != len(names):
        raise InvalidArgument(f"{name}: 'class_names' has {len(names)} entries but num_classes is {given}: "
                              "give one name per class")
    count = len(names) or given or int(labels.max()) + 1
    outside = labels >= count
    if outside.any():
        raise InvalidArgument(
            f"{name}: {int(outside.sum())} labels are outside [0, {count}) (largest {int(labels.max())}): "
            f"give num_classes above {int(labels.max())} or fix the labels"
        )
    return count


def _class_subset(subset: Sequence[int], num_classes: int, labels: NDArray[np.int64]) -> tuple[int, ...]:
    values = list(subset)
    if not values:
        raise InvalidArgument("class_subset is empty: give the class indices the set covers, or leave it out")
    bad = [v for v in values if not isinstance(v, int | np.integer) or isinstance(v, bool)
           or not 0 <= v < num_classes]
    if bad:
        raise InvalidArgument(f"class_subset holds {examples([str(v) for v in bad])}, outside [0, "
                              f"{num_classes}): give class indices below num_classes ({num_classes})")
    dupes = sorted(int(v) for v, n in Counter(values).items() if n > 1)
    if dupes:
        raise InvalidArgument(f"class_subset repeats {examples([str(v) for v in dupes])}: list each once")
    outside = ~np.isin(labels, np.asarray(values, dtype=np.int64))
    if outside.any():
        first = int(labels[outside][0])
        raise InvalidArgument(
            f"{int(outside.sum())} of {len(labels)} samples have labels outside class_subset (e.g. label "
            f"{first}): add those classes to the subset or remove the samples"
        )
    return tuple(int(v) for v in values)


def _check_arguments(shard_samples: int | None, shard_bytes: int, size: tuple[int, int] | None,
                     channels: int | None, num_classes: int | None) -> None:
    if shard_samples is not None and not is_count(shard_samples):
        raise InvalidArgument(f"shard_samples is {shard_samples!r}: give a whole number of at least 1")
    if not is_count(shard_bytes):
        raise InvalidArgument(f"shard_bytes is {shard_bytes!r}: give a whole number of at least 1")
    if size is not None and (len(size) != 2 or not all(is_count(v) for v in size)):
        raise InvalidArgument(f"size is {size!r}: give (height, width) as two positive whole numbers")
    if channels not in (None, 1, 3):
        raise InvalidArgument(f"channels is {channels!r}: give 1 (gray) or 3 (RGB)")
    if num_classes is not None and not is_count(num_classes):
        raise InvalidArgument(f"num_classes is {num_classes!r}: give a whole number of at least 1")


def _with_size(transform: Transform | None, size: tuple[int, int] | None) -> Transform | None:
    """The transform with ``size`` as its plain resize (they may not name two sizes)."""
    if transform is not None and size is not None and transform.size not in (None, tuple(size)):
        raise InvalidArgument(f"size {tuple(size)} and the transform's size {transform.size} differ: give one")
    if transform is None and size is not None:
        return Transform(size=(int(size[0]), int(size[1])))
    if transform is not None and size is not None:
        return Transform(border=transform.border, resize=transform.resize, crop=transform.crop,
                         size=(int(size[0]), int(size[1])), interpolation=transform.interpolation)
    return transform


def _output_size(source: TestSetSource, transform: Transform | None, name: str) -> tuple[int, int]:
    """``(height, width)`` of every output image."""
    target = (transform or PLAIN).output_size(source.height, source.width)
    if target is None:
        raise InvalidArgument(f"{name}: {source.mixed_sizes}: give one size to resize "
                              "to (--size HxW), or --resize and --crop")
    if min(target) < 1:
        raise InvalidArgument(f"{name}: images of {source.height}x{source.width} pixels leave nothing "
                              f"after a border of {(transform or PLAIN).border}: give a smaller --border")
    return int(target[0]), int(target[1])


def prepare_testset(
    path: str | Path,
    *,
    out_dir: str | Path,
    shard_samples: int | None = None,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
    num_classes: int | None = None,
    class_subset: Sequence[int] | None = None,
    on_progress: ProgressCallback | None = None,
    transform: Transform | None = None,
    labelled: bool = True,
) -> PreparedTestSet:
    """Read the test set at ``path`` (an ``.npz`` file or an ImageFolder directory), check it, and
    write its shards into ``out_dir``.

    Each shard holds ``shard_samples`` samples; left out, as many as fit in ``shard_bytes`` (at least
    one). ``size`` is ``(height, width)``; it defaults to the source's size (for an ImageFolder every
    image must then share one size). ``channels`` (1 or 3) defaults to the source's: 1 for gray npz
    images or an ImageFolder of gray images only, else 3. ``num_classes`` defaults to the number of
    class folders, of ``class_names`` in an npz, or else the largest label + 1. ``class_subset`` lists
    the class indices the set covers (e.g. ImageNet-R's 200 of 1000); every label must be in it.
    ``on_progress(done, total)`` is called as samples are written. ``transform`` crops a border,
    resizes the shorter side and centre-crops (see :class:`Transform`; its ``size`` is ``size``'s
    alternative). Raises :class:`InvalidArgument` for any problem with the arguments or the data,
    before writing where it can. With ``labelled=False`` the source's labels are ignored (an npz may have
    none) and the shards carry the placeholder label 0; ``num_classes`` then comes from it or ``class_names``.
    """
    _check_arguments(shard_samples, shard_bytes, size, channels, num_classes)
    source_path = Path(path)
    if not source_path.exists():
        raise InvalidArgument(f"{source_path}: does not exist: give an .npz file or an ImageFolder directory")
    folder = source_path.is_dir()
    source: TestSetSource = read_image_folder(source_path) if folder else read_npz(source_path, labelled=labelled)
    if not labelled:
        if class_subset is not None:
            raise InvalidArgument("an unlabelled test set cannot have a class sub-list: leave --classes out")
        if folder:
            source = replace(source, labels=np.zeros(len(source.labels), dtype=np.int64))
        if num_classes is None and not source.class_names:
            raise InvalidArgument(f"{source_path.name}: without labels the number of classes is unknown: give "
                                  "--num-classes (the reference's)")
    count = _num_classes(source, num_classes, source_path.name, folder)
    subset = None if class_subset is None else _class_subset(class_subset, count, source.labels)
    transform = _with_size(transform, size)
    height, width = _output_size(source, transform, source_path.name)
    channels = channels or source.channels
    per_sample = channels * height * width + 8  # pixels and one int64 label; headers are negligible
    shard_samples = int(shard_samples or max(1, shard_bytes // per_sample))
    shards = write_shards(source.iter_batches(height=height, width=width, channels=channels,
                                              transform=transform or PLAIN),
                          num_samples=len(source.labels), out_dir=out_dir, shard_samples=shard_samples,
                          on_progress=on_progress)
    return PreparedTestSet(
        source_format="imagefolder" if folder else "npz", num_samples=len(source.labels), num_classes=count,
        channels=channels, height=height, width=width, class_names=source.class_names, class_subset=subset,
        shard_samples=shard_samples, shards=tuple(shards), warnings=source.warnings, transform=transform,
        unlabelled=not labelled,
    )
