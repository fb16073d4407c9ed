"""Test sets: read an ``.npz`` or an ImageFolder, bring every image to one shape, cut it into shards.

Two sources are understood:

* **npz** -- ``images`` (uint8, ``N×H×W`` or ``N×H×W×C`` with C = 1 or 3) and ``labels`` (integers,
  ``N``), optionally ``class_names`` (strings, one per class). Loaded with ``allow_pickle=False``;
  ``images`` is streamed from the archive in batches, never loaded whole (unless stored in Fortran
  order, which numpy only writes for transposed arrays).
* **ImageFolder** -- one sub-folder per class; classes are the sorted folder names, indexed 0..K-1.
  Files ending in ``.jpg``, ``.jpeg`` or ``.png`` (any case), searched recursively inside each class
  folder (not following links to folders), in sorted path order. Hidden entries (``.name``) are
  skipped; other files are skipped and reported in ``warnings``. An empty class folder is allowed --
  it keeps its class index, so indices still line up with the model's outputs -- and is reported in
  ``warnings``. Images are decoded one batch at a time. EXIF orientation is not applied (as
  torchvision's ImageFolder does not).

Every image is converted to the target channel count first (Pillow ``convert``: ``L`` to ``RGB``
replicates the gray value; ``RGB`` to ``L`` uses ITU-R 601-2 luma; alpha is dropped, palettes
expanded), then goes through the :class:`Transform`, in the ImageNet testbed's order (its
``inference.py`` composes a setting's own transform, ObjectNet's border crop, before the model's
resize and centre crop):

1. ``border``: that many pixels cropped off every side (``ImageOps.crop``; ObjectNet's is 2);
2. ``resize``: scaled so that the shorter side is ``resize`` pixels, the longer one
   ``int(resize * long / short)`` (torchvision's ``Resize(int)``), aspect ratio kept;
3. ``crop``: the centre ``H×W``, its top-left corner at ``round((side - crop) / 2)`` (torchvision's
   ``CenterCrop``);
4. ``size`` (``--size``): resized straight to ``(height, width)``, aspect ratio not kept.

Every resize uses the named Pillow filter (bilinear by default; nearest, bicubic, lanczos), whose
support widens with the scale factor, so downscaling is antialiased. Images already at the target
shape pass through untouched. The output is uint8 ``N×C×H×W`` (channels first) with int64 labels,
written by :mod:`shiftboard.domain.shards`.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from shiftboard.domain.errors import InvalidArgument

# The shard functions are re-exported (see __all__) so callers such as the gateway need one import.
from shiftboard.domain.shards import (
    Batch,
    ProgressCallback,
    ShardInfo,
    encode_shard,
    read_npy_header,
    read_shard,
    sha256_bytes,
    sha256_file,
    verify_shard,
    write_shards,
)

__all__ = [
    "INTERPOLATIONS", "ImageFolderTestSet", "NpzTestSet", "PreparedTestSet", "ShardInfo", "TestSetSource",
    "Transform", "encode_shard", "parse_class_map", "parse_size", "prepare_testset", "read_image_folder",
    "read_npz", "read_shard", "sha256_bytes", "sha256_file", "verify_shard", "write_shards",
]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
BATCH_SAMPLES = 256
DEFAULT_SHARD_BYTES = 64 * 1024 * 1024  # the default of the shard_bytes setting
_GRAY_MODES = frozenset({"1", "L", "LA"})
_DEEP_MODES = ("I", "F")  # 16/32-bit integer and float; convert("L") would clip, not rescale


#: The resampling filters a transform may name.
INTERPOLATIONS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True, kw_only=True)
class Transform:
    """What ingestion does to each image after converting its channels (see the module docstring).

    ``crop`` and ``size`` are ``(height, width)``. ``resize`` needs ``crop`` (images of different
    shapes would differ in size) and may not be smaller than it; ``size`` replaces resize and crop.
    Raises :class:`InvalidArgument` for any of these.
    """

    border: int = 0
    resize: int | None = None
    crop: tuple[int, int] | None = None
    size: tuple[int, int] | None = None
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if not isinstance(self.border, int | np.integer) or isinstance(self.border, bool) or self.border < 0:
            raise InvalidArgument(f"--border is {self.border!r}: give the pixels to crop off each side, 0 or more")
        if self.resize is not None and not _is_count(self.resize):
            raise InvalidArgument(f"--resize is {self.resize!r}: give the shorter side in pixels, e.g. 256")
        for what, value in (("crop", self.crop), ("size", self.size)):
            if value is not None and (len(value) != 2 or not all(_is_count(v) for v in value)):
                raise InvalidArgument(f"--{what} is {value!r}: give HxW as two positive whole numbers")
        if self.interpolation not in INTERPOLATIONS:
            raise InvalidArgument(f"--interpolation {self.interpolation!r}: use {', '.join(INTERPOLATIONS)}")
        if self.size is not None and (self.resize is not None or self.crop is not None):
            raise InvalidArgument("--size resizes straight to HxW; --resize and --crop keep the aspect ratio and "
                                  "crop the centre: give one or the other")
        if self.resize is not None and self.crop is None:
            raise InvalidArgument(f"--resize {self.resize} keeps the aspect ratio, so images of different shapes "
                                  f"would differ in size: give --crop too (e.g. --resize {self.resize} --crop "
                                  f"{self.resize * 7 // 8})")
        if self.resize is not None and self.crop is not None and max(self.crop) > self.resize:
            raise InvalidArgument(f"--crop {self.crop[0]}x{self.crop[1]} is larger than --resize {self.resize}: the "
                                  "resized shorter side must hold the crop; give a crop of at most the resize")

    @property
    def geometric(self) -> bool:
        """Whether anything but a plain resize to the target shape happens (border, resize or crop)."""
        return bool(self.border) or self.resize is not None or self.crop is not None

    def output_size(self, height: int | None, width: int | None) -> tuple[int, int] | None:
        """``(height, width)`` of every output for sources of that size (None: of mixed sizes)."""
        if self.size is not None:
            return self.size
        if self.crop is not None:
            return self.crop
        if height is None or width is None:
            return None
        return height - 2 * self.border, width - 2 * self.border

    def apply(self, image: Image.Image, height: int, width: int, name: str = "an image") -> Image.Image:
        """Steps 1-4 of the module docstring; the result is ``height×width``."""
        method = INTERPOLATIONS[self.interpolation]
        if self.border:
            if min(image.size) <= 2 * self.border:
                raise InvalidArgument(f"{name} is {image.height}x{image.width}: too small to crop a border of "
                                      f"{self.border} pixels off each side")
            image = ImageOps.crop(image, border=self.border)
        if self.resize is not None:
            w, h = image.size
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(self.resize * long / short)
            new = (self.resize, new_long) if w <= h else (new_long, self.resize)
            if new != image.size:
                image = image.resize(new, method)
        if self.crop is not None:
            crop_h, crop_w = self.crop
            if image.height < crop_h or image.width < crop_w:
                raise InvalidArgument(f"{name} is {image.height}x{image.width} (after the border and resize): "
                                      f"smaller than the crop {crop_h}x{crop_w}; give --resize, or a smaller --crop")
            top = int(round((image.height - crop_h) / 2.0))
            left = int(round((image.width - crop_w) / 2.0))
            image = image.crop((left, top, left + crop_w, top + crop_h))
        if image.size != (width, height):
            image = image.resize((width, height), method)
        return image

    def record(self) -> dict[str, object]:
        """The manifest's record (the fields of ``ImageTransform``)."""
        crop = self.crop or (0, 0)
        return {"border": int(self.border), "resize": int(self.resize or 0), "crop_height": int(crop[0]),
                "crop_width": int(crop[1]), "interpolation": self.interpolation, "stretch": self.size is not None}


_PLAIN = Transform()


def _to_chw(image: Image.Image, height: int, width: int, channels: int, transform: Transform = _PLAIN,
            name: str = "an image") -> NDArray[np.uint8]:
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")  # palette transparency converts cleanly only via RGBA
    target = "L" if channels == 1 else "RGB"
    if image.mode != target:
        image = image.convert(target)
    image = transform.apply(image, height, width, name)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _convert_hwc(images: NDArray[np.uint8], height: int, width: int, channels: int,
                 transform: Transform = _PLAIN, first: int = 0) -> NDArray[np.uint8]:
    """``n×H×W×C`` uint8 to ``n×channels×height×width``, through Pillow unless nothing changes."""
    if images.shape[1:] == (height, width, channels) and not transform.geometric:
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    out = np.empty((len(images), channels, height, width), dtype=np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        out[i] = _to_chw(pil, height, width, channels, transform, f"image {first + i}")
    return out


# ---------------------------------------------------------------------------------------------- npz

def _npz_error(path: Path, problem: str) -> InvalidArgument:
    return InvalidArgument(f"{path.name}: {problem}")


@dataclass(frozen=True)
class NpzTestSet:
    """An ``.npz`` test set whose labels are loaded and checked; images stream on demand."""

    path: Path
    labels: NDArray[np.int64]
    class_names: tuple[str, ...]
    height: int
    width: int
    channels: int
    fortran_order: bool = False
    warnings: tuple[str, ...] = ()
    mixed_sizes: str = ""  # never set: all npz images share one size

    def iter_batches(self, *, height: int, width: int, channels: int, batch_samples: int = BATCH_SAMPLES,
                     transform: Transform = _PLAIN) -> Iterator[Batch]:
        """Yield ``(images uint8 n×C×H×W, labels int64 n)`` converted to the given shape, in order."""
        n = len(self.labels)
        src = (self.height, self.width, self.channels)
        try:
            with zipfile.ZipFile(self.path) as archive, archive.open("images.npy") as f:
                if self.fortran_order:
                    whole = np.lib.format.read_array(f, allow_pickle=False).reshape(n, *src)
                else:
                    read_npy_header(f)
                row = int(np.prod(src))
                for start in range(0, n, batch_samples):
                    count = min(batch_samples, n - start)
                    if self.fortran_order:
                        chunk = whole[start:start + count]
                    else:
                        raw = f.read(count * row)  # ZipExtFile.read loops until n or EOF
                        if len(raw) != count * row:
                            raise _npz_error(self.path, "'images' is truncated: write the file again")
                        chunk = np.frombuffer(raw, dtype=np.uint8).reshape(count, *src)
                    yield (_convert_hwc(chunk, height, width, channels, transform, start),
                           self.labels[start:start + count])
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise _npz_error(self.path, f"'images' cannot be read ({e}): write the file again") from e


def read_npz(path: str | Path) -> NpzTestSet:
    """Open an ``.npz`` test set, checking ``images``' header and loading and checking ``labels``.

    Raises :class:`InvalidArgument` if the file is not a zip archive, lacks ``images`` or ``labels``,
    holds no images, has images that are not uint8 ``N×H×W[×C]`` (C = 1 or 3), or labels that are
    not one non-negative integer per image.
    """
    path = Path(path)
    if not path.is_file():
        raise _npz_error(path, "does not exist or is not a file: give the path of an .npz file")
    if not zipfile.is_zipfile(path):
        raise _npz_error(path, "is not an npz (zip) archive: save it with np.savez(path, images=..., "
                               "labels=...)")
    with zipfile.ZipFile(path) as archive:
        keys = sorted(n[:-4] for n in archive.namelist() if n.endswith(".npy"))
        if "images" not in keys:
            raise _npz_error(path, f"has no 'images' array (found {keys}): "
                                   "save it with np.savez(path, images=..., labels=...)")
        try:
            with archive.open("images.npy") as f:
                shape, fortran, dtype = read_npy_header(f)
                data_bytes = archive.getinfo("images.npy").file_size - f.tell()
        except (ValueError, zipfile.BadZipFile, EOFError) as e:
            raise _npz_error(path, f"'images' is not a valid .npy array ({e}): write the file again") from e
    if dtype != np.uint8:
        raise _npz_error(path, f"'images' has dtype {dtype}: store uint8 pixels 0..255, e.g. "
                               "(images * 255).round().clip(0, 255).astype(np.uint8) for floats in [0, 1]")
    if len(shape) not in (3, 4):
        raise _npz_error(path, f"'images' has shape {shape}: give N×H×W (gray) or N×H×W×C (C = 1 or 3)")
    if len(shape) == 4 and shape[3] not in (1, 3):
        hint = (" (it looks channels-first: use images.transpose(0, 2, 3, 1))" if shape[1] in (1, 3)
                else " (for RGBA drop alpha: images[..., :3])" if shape[3] == 4 else "")
        raise _npz_error(path, f"'images' has shape {shape}: the last axis must be 1 or 3 channels{hint}")
    if shape[0] == 0:
        raise _npz_error(path, "'images' holds zero images: a test set needs at least one")
    if 0 in shape[1:]:
        raise _npz_error(path, f"'images' has shape {shape}: images must be at least 1×1 pixel")
    if data_bytes != int(np.prod(shape)):
        raise _npz_error(path, f"'images' declares shape {shape} but holds {data_bytes} bytes: the file is "
                               "truncated or corrupt; write it again")
    n, height, width = shape[0], shape[1], shape[2]
    channels = shape[3] if len(shape) == 4 else 1

    if "labels" not in keys:
        raise _npz_error(path, f"has no 'labels' array (found {keys}): give one class index per image, "
                               "np.savez(path, images=..., labels=...)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            labels = npz["labels"]
            names = npz["class_names"] if "class_names" in keys else None
    except ValueError as e:  # object arrays, which would need unpickling
        raise _npz_error(path, f"an array cannot be loaded without pickle ({e}): store plain numeric "
                               "labels and str class_names") from e
    if not np.issubdtype(labels.dtype, np.integer):
        raise _npz_error(path, f"'labels' has dtype {labels.dtype}: store integer class indices, "
                               "e.g. labels.astype(np.int64)")
    if labels.ndim != 1:
        raise _npz_error(path, f"'labels' has shape {labels.shape}: give a 1-D array (labels.reshape(-1))")
    if len(labels) != n:
        raise _npz_error(path, f"'labels' has {len(labels)} entries but 'images' has {n}: "
                               "give one label per image")
    if labels.min() < 0:
        raise _npz_error(path, f"'labels' holds {int((labels < 0).sum())} negative values (smallest "
                               f"{int(labels.min())}): class indices start at 0")
    if int(labels.max()) > np.iinfo(np.int64).max:
        raise _npz_error(path, f"'labels' holds {int(labels.max())}: class indices must fit in int64")
    class_names: tuple[str, ...] = ()
    if names is not None:
        if names.dtype.kind != "U" or names.ndim != 1:
            raise _npz_error(path, f"'class_names' is {names.dtype} with shape {names.shape}: "
                                   "give a 1-D array of str, e.g. np.array(['cat', 'dog'])")
        class_names = tuple(str(s) for s in names)
    return NpzTestSet(path=path, labels=labels.astype(np.int64), class_names=class_names, height=height,
                      width=width, channels=channels, fortran_order=fortran)


# -------------------------------------------------------------------------------------- ImageFolder

@dataclass(frozen=True)
class ImageFolderTestSet:
    """An ImageFolder test set: the sorted file list and labels; images are decoded on demand."""

    root: Path
    files: tuple[str, ...]  # relative to root, in sample order
    labels: NDArray[np.int64]
    class_names: tuple[str, ...]
    height: int | None
    width: int | None
    channels: int
    warnings: tuple[str, ...] = ()
    mixed_sizes: str = ""  # when height/width are None: an example of two sizes that differ

    def iter_batches(self, *, height: int, width: int, channels: int, batch_samples: int = BATCH_SAMPLES,
                     transform: Transform = _PLAIN) -> Iterator[Batch]:
        """Yield ``(images uint8 n×C×H×W, labels int64 n)`` decoded and converted, in order."""
        n = len(self.files)
        for start in range(0, n, batch_samples):
            count = min(batch_samples, n - start)
            out = np.empty((count, channels, height, width), dtype=np.uint8)
            for i, rel in enumerate(self.files[start:start + count]):
                with _open_image(self.root, rel) as image:
                    try:
                        out[i] = _to_chw(image, height, width, channels, transform, rel)
                    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
                        raise InvalidArgument(
                            f"{rel}: the image is corrupt ({e}): re-export it as JPEG/PNG or remove it"
                        ) from e
            yield out, self.labels[start:start + count]


def _open_image(root: Path, rel: str) -> Image.Image:
    try:
        return Image.open(root / rel, formats=["JPEG", "PNG"])  # no other decoders: less attack surface
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InvalidArgument(f"{rel}: cannot read the image ({e}): re-export it as JPEG/PNG "
                              "or remove it") from e


def _examples(items: Sequence[str]) -> str:
    shown = ", ".join(repr(s) for s in items[:3])
    return shown + (f" and {len(items) - 3} more" if len(items) > 3 else "")


def read_image_folder(path: str | Path) -> ImageFolderTestSet:
    """List an ImageFolder (one sub-folder per class) and read every image's header.

    The header pass finds each image's size and mode without decoding pixels, so unreadable files
    fail here, before any shard is written. Raises :class:`InvalidArgument` if ``path`` is not a
    directory, has no class sub-folders, holds no images, or holds an unreadable or 16-bit image.
    """
    root = Path(path)
    if not root.is_dir():
        raise InvalidArgument(f"{root}: is not a directory: give an ImageFolder (one sub-folder per class)")
    entries = sorted(e for e in os.listdir(root) if not e.startswith("."))
    classes = [e for e in entries if (root / e).is_dir()]
    if not classes:
        raise InvalidArgument(f"{root}: has no class sub-folders: put each class's images in a folder "
                              f"named after the class, e.g. {root}/cat/1.png")
    stray = [e for e in entries if e not in classes]
    files: list[str] = []
    labels: list[int] = []
    skipped: list[str] = []
    empty: list[str] = []
    for index, name in enumerate(classes):
        found = 0
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel_dir = Path(dirpath).relative_to(root)
            for fn in sorted(f for f in filenames if not f.startswith(".")):
                if os.path.splitext(fn)[1].lower() in IMAGE_EXTENSIONS:
                    files.append((rel_dir / fn).as_posix())
                    labels.append(index)
                    found += 1
                else:
                    skipped.append((rel_dir / fn).as_posix())
        if not found:
            empty.append(name)
    if not files:
        raise InvalidArgument(f"{root}: holds no .jpg/.jpeg/.png images in its {len(classes)} class "
                              "folders: put the images in one sub-folder per class")

    warnings: list[str] = []
    if empty:
        warnings.append(f"{len(empty)} class folder(s) hold no images and keep their class index: "
                        f"{_examples(empty)}")
    if skipped or stray:
        warnings.append(f"{len(skipped) + len(stray)} entries that are not class folders or .jpg/.jpeg/"
                        f".png images were skipped: {_examples(stray + skipped)}")

    first: tuple[str, int, int] | None = None
    mixed = ""
    gray = True
    for rel in files:
        with _open_image(root, rel) as image:
            if image.mode.startswith(_DEEP_MODES):
                raise InvalidArgument(f"{rel}: is a 16-bit or float image (mode {image.mode}): "
                                      "save it as an 8-bit PNG or JPEG")
            gray = gray and image.mode in _GRAY_MODES
            if first is None:
                first = (rel, image.height, image.width)
            elif not mixed and (image.height, image.width) != first[1:]:
                mixed = (f"images differ in size, e.g. {first[0]!r} is {first[1]}x{first[2]} (HxW) and "
                         f"{rel!r} is {image.height}x{image.width}")
    assert first is not None
    return ImageFolderTestSet(root=root, files=tuple(files), labels=np.asarray(labels, dtype=np.int64),
                              class_names=tuple(classes), height=None if mixed else first[1],
                              width=None if mixed else first[2], channels=1 if gray else 3,
                              warnings=tuple(warnings), mixed_sizes=mixed)


# ------------------------------------------------------------------------------------------ prepare

# A reader: labels and class names up front, ``iter_batches`` yields converted images in order.
TestSetSource = NpzTestSet | ImageFolderTestSet


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


def _is_count(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and bool(value >= 1)


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
        raise InvalidArgument(f"class_subset holds {_examples([str(v) for v in bad])}, outside [0, "
                              f"{num_classes}): give class indices below num_classes ({num_classes})")
    dupes = sorted(int(v) for v, n in Counter(values).items() if n > 1)
    if dupes:
        raise InvalidArgument(f"class_subset repeats {_examples([str(v) for v in dupes])}: list each once")
    outside = ~np.isin(labels, np.asarray(values, dtype=np.int64))
    if outside.any():
        first = int(labels[outside][0])
        raise InvalidArgument(
            f"{int(outside.sum())} of {len(labels)} samples have labels outside class_subset (e.g. label "
            f"{first}): add those classes to the subset or remove the samples"
        )
    return tuple(int(v) for v in values)


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
    before writing where it can.
    """
    if shard_samples is not None and not _is_count(shard_samples):
        raise InvalidArgument(f"shard_samples is {shard_samples!r}: give a whole number of at least 1")
    if not _is_count(shard_bytes):
        raise InvalidArgument(f"shard_bytes is {shard_bytes!r}: give a whole number of at least 1")
    if size is not None and (len(size) != 2 or not all(_is_count(v) for v in size)):
        raise InvalidArgument(f"size is {size!r}: give (height, width) as two positive whole numbers")
    if channels not in (None, 1, 3):
        raise InvalidArgument(f"channels is {channels!r}: give 1 (gray) or 3 (RGB)")
    if num_classes is not None and not _is_count(num_classes):
        raise InvalidArgument(f"num_classes is {num_classes!r}: give a whole number of at least 1")
    source_path = Path(path)
    if not source_path.exists():
        raise InvalidArgument(f"{source_path}: does not exist: give an .npz file or an ImageFolder directory")
    folder = source_path.is_dir()
    source: TestSetSource = read_image_folder(source_path) if folder else read_npz(source_path)
    count = _num_classes(source, num_classes, source_path.name, folder)
    subset = None if class_subset is None else _class_subset(class_subset, count, source.labels)
    if transform is not None and size is not None and transform.size not in (None, tuple(size)):
        raise InvalidArgument(f"size {tuple(size)} and the transform's size {transform.size} differ: give one")
    if transform is None and size is not None:
        transform = Transform(size=(int(size[0]), int(size[1])))
    elif transform is not None and size is not None:
        transform = Transform(border=transform.border, resize=transform.resize, crop=transform.crop,
                              size=(int(size[0]), int(size[1])), interpolation=transform.interpolation)
    target = (transform or _PLAIN).output_size(source.height, source.width)
    if target is None:
        raise InvalidArgument(f"{source_path.name}: {source.mixed_sizes}: give one size to resize "
                              "to (--size HxW), or --resize and --crop")
    if min(target) < 1:
        raise InvalidArgument(f"{source_path.name}: images of {source.height}x{source.width} pixels leave nothing "
                              f"after a border of {(transform or _PLAIN).border}: give a smaller --border")
    height, width = int(target[0]), int(target[1])
    channels = channels or source.channels
    per_sample = channels * height * width + 8  # pixels and one int64 label; headers are negligible
    shard_samples = int(shard_samples or max(1, shard_bytes // per_sample))
    shards = write_shards(source.iter_batches(height=height, width=width, channels=channels,
                                              transform=transform or _PLAIN),
                          num_samples=len(source.labels), out_dir=out_dir, shard_samples=shard_samples,
                          on_progress=on_progress)
    return PreparedTestSet(
        source_format="imagefolder" if folder else "npz", num_samples=len(source.labels), num_classes=count,
        channels=channels, height=height, width=width, class_names=source.class_names, class_subset=subset,
        shard_samples=shard_samples, shards=tuple(shards), warnings=source.warnings, transform=transform,
    )
