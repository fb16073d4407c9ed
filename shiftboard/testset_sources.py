"""The two test-set sources ingestion reads: an ``.npz`` archive and an ImageFolder.

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

Both readers check labels and image headers up front and yield converted batches on demand
(:mod:`shiftboard.testset_images`).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.shards import Batch, read_npy_header
from shiftboard.testset_images import GRAY_MODES, PLAIN, Transform, convert_hwc, to_chw

__all__ = ["BATCH_SAMPLES", "IMAGE_EXTENSIONS", "ImageFolderTestSet", "NpzTestSet", "TestSetSource", "examples",
           "read_image_folder", "read_npz"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
BATCH_SAMPLES = 256
_DEEP_MODES = ("I", "F")  # 16/32-bit integer and float; convert("L") would clip, not rescale


def examples(items: Sequence[str]) -> str:
    """The first three items (quoted) and how many more."""
    shown = ", ".join(repr(s) for s in items[:3])
    return shown + (f" and {len(items) - 3} more" if len(items) > 3 else "")


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
                     transform: Transform = PLAIN) -> Iterator[Batch]:
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
                    yield (convert_hwc(chunk, height, width, channels, transform, start),
                           self.labels[start:start + count])
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise _npz_error(self.path, f"'images' cannot be read ({e}): write the file again") from e


def read_npz(path: str | Path, *, labelled: bool = True) -> NpzTestSet:
    """Open an ``.npz`` test set, checking ``images``' header and loading and checking ``labels``.

    With ``labelled=False`` any ``labels`` array is ignored (not even read) and every label is 0, a
    placeholder the shards carry (the format has a label per sample) and the gateway never stores.

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
    keys, shape, fortran = _images_header(path)
    n, height, width = shape[0], shape[1], shape[2]
    channels = shape[3] if len(shape) == 4 else 1
    labels, class_names = _labels(path, keys, n) if labelled else (np.zeros(n, dtype=np.int64),
                                                                     _class_names(path, keys))
    return NpzTestSet(path=path, labels=labels, class_names=class_names, height=height,
                      width=width, channels=channels, fortran_order=fortran)


def _images_header(path: Path) -> tuple[list[str], tuple[int, ...], bool]:
    """(the archive's array names, the shape of ``images``, whether it is in Fortran order), checked."""
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
    return keys, shape, fortran


def _labels(path: Path, keys: list[str], n: int) -> tuple[NDArray[np.int64], tuple[str, ...]]:
    """``labels`` (one non-negative integer per image) and ``class_names`` (empty when absent), checked."""
    if "labels" not in keys:
        raise _npz_error(path, f"has no 'labels' array (found {keys}): give one class index per image, "
                               "np.savez(path, images=..., labels=...), or register it as an unlabelled "
                               "shift with --no-labels")
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
    return labels.astype(np.int64), _checked_names(path, names)


def _class_names(path: Path, keys: list[str]) -> tuple[str, ...]:
    """``class_names`` alone (an unlabelled set), checked; empty when absent."""
    if "class_names" not in keys:
        return ()
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = npz["class_names"]
    except ValueError as e:
        raise _npz_error(path, f"'class_names' cannot be loaded without pickle ({e}): store str class names") from e
    return _checked_names(path, names)


def _checked_names(path: Path, names: np.ndarray | None) -> tuple[str, ...]:
    class_names: tuple[str, ...] = ()
    if names is not None:
        if names.dtype.kind != "U" or names.ndim != 1:
            raise _npz_error(path, f"'class_names' is {names.dtype} with shape {names.shape}: "
                                   "give a 1-D array of str, e.g. np.array(['cat', 'dog'])")
        class_names = tuple(str(s) for s in names)
    return class_names


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
                     transform: Transform = PLAIN) -> Iterator[Batch]:
        """Yield ``(images uint8 n×C×H×W, labels int64 n)`` decoded and converted, in order."""
        n = len(self.files)
        for start in range(0, n, batch_samples):
            count = min(batch_samples, n - start)
            out = np.empty((count, channels, height, width), dtype=np.uint8)
            for i, rel in enumerate(self.files[start:start + count]):
                with _open_image(self.root, rel) as image:
                    try:
                        out[i] = to_chw(image, height, width, channels, transform, rel)
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
    files, labels, skipped, empty = _list_classes(root, classes)
    if not files:
        raise InvalidArgument(f"{root}: holds no .jpg/.jpeg/.png images in its {len(classes)} class "
                              "folders: put the images in one sub-folder per class")

    warnings: list[str] = []
    if empty:
        warnings.append(f"{len(empty)} class folder(s) hold no images and keep their class index: "
                        f"{examples(empty)}")
    if skipped or stray:
        warnings.append(f"{len(skipped) + len(stray)} entries that are not class folders or .jpg/.jpeg/"
                        f".png images were skipped: {examples(stray + skipped)}")
    size, gray, mixed = _image_headers(root, files)
    return ImageFolderTestSet(root=root, files=tuple(files), labels=np.asarray(labels, dtype=np.int64),
                              class_names=tuple(classes), height=None if mixed else size[0],
                              width=None if mixed else size[1], channels=1 if gray else 3,
                              warnings=tuple(warnings), mixed_sizes=mixed)


def _list_classes(root: Path, classes: list[str]) -> tuple[list[str], list[int], list[str], list[str]]:
    """(image files relative to ``root``, their labels, skipped files, class folders without images)."""
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
    return files, labels, skipped, empty


def _image_headers(root: Path, files: Sequence[str]) -> tuple[tuple[int, int], bool, str]:
    """(the first image's height and width, whether every image is gray, an example of two sizes that
    differ or ""), from the headers of ``files`` (at least one)."""
    first: tuple[str, int, int] | None = None
    mixed = ""
    gray = True
    for rel in files:
        with _open_image(root, rel) as image:
            if image.mode.startswith(_DEEP_MODES):
                raise InvalidArgument(f"{rel}: is a 16-bit or float image (mode {image.mode}): "
                                      "save it as an 8-bit PNG or JPEG")
            gray = gray and image.mode in GRAY_MODES
            if first is None:
                first = (rel, image.height, image.width)
            elif not mixed and (image.height, image.width) != first[1:]:
                mixed = (f"images differ in size, e.g. {first[0]!r} is {first[1]}x{first[2]} (HxW) and "
                         f"{rel!r} is {image.height}x{image.width}")
    assert first is not None
    return (first[1], first[2]), gray, mixed


# A reader: labels and class names up front, ``iter_batches`` yields converted images in order.
TestSetSource = NpzTestSet | ImageFolderTestSet
