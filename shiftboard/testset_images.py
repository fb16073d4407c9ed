"""How ingestion converts one image: to the target channel count, then through a :class:`Transform`.

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
shape pass through untouched. The output is uint8 ``C×H×W`` (channels first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from shiftboard.domain.errors import InvalidArgument

__all__ = ["GRAY_MODES", "INTERPOLATIONS", "PLAIN", "Transform", "TransformRecord", "convert_hwc", "is_count", "to_chw"]

#: Pillow modes of gray images.
GRAY_MODES = frozenset({"1", "L", "LA"})


class TransformRecord(TypedDict):
    """A transform as the manifest records it (the fields of ``ImageTransform``)."""

    border: int
    resize: int
    crop_height: int
    crop_width: int
    interpolation: str
    stretch: bool


def is_count(value: object) -> bool:
    """Whether ``value`` is a whole number of at least 1 (not a bool)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and bool(value >= 1)


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
        if self.resize is not None and not is_count(self.resize):
            raise InvalidArgument(f"--resize is {self.resize!r}: give the shorter side in pixels, e.g. 256")
        for what, value in (("crop", self.crop), ("size", self.size)):
            if value is not None and (len(value) != 2 or not all(is_count(v) for v in value)):
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

    def record(self) -> TransformRecord:
        """The manifest's record (the fields of ``ImageTransform``)."""
        crop = self.crop or (0, 0)
        return {"border": int(self.border), "resize": int(self.resize or 0), "crop_height": int(crop[0]),
                "crop_width": int(crop[1]), "interpolation": self.interpolation, "stretch": self.size is not None}


#: The transform that changes nothing but the size.
PLAIN = Transform()


def to_chw(image: Image.Image, height: int, width: int, channels: int, transform: Transform = PLAIN,
            name: str = "an image") -> NDArray[np.uint8]:
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")  # palette transparency converts cleanly only via RGBA
    target = "L" if channels == 1 else "RGB"
    if image.mode != target:
        image = image.convert(target)
    image = transform.apply(image, height, width, name)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def convert_hwc(images: NDArray[np.uint8], height: int, width: int, channels: int,
                 transform: Transform = PLAIN, first: int = 0) -> NDArray[np.uint8]:
    """``n×H×W×C`` uint8 to ``n×channels×height×width``, through Pillow unless nothing changes."""
    if images.shape[1:] == (height, width, channels) and not transform.geometric:
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    out = np.empty((len(images), channels, height, width), dtype=np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        out[i] = to_chw(pil, height, width, channels, transform, f"image {first + i}")
    return out
