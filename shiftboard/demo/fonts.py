"""Printed digits: TrueType faces found on the machine, rendered the way the 8×8 digits set was made.

scikit-learn's digits (UCI "optdigits") were scanned handwriting, normalised to a 32×32 binary
bitmap and reduced to 8×8 by counting the set pixels of each 4×4 block (values 0..16). Printed digits
made the same way -- glyph cropped to its bounding box, longest side scaled to 32 pixels with the
aspect ratio kept, centred, binarised, block-counted -- sit close enough to the handwritten ones for a
digits classifier to read many of them, and far enough to be a real shift (naive rendering without
the bounding-box step falls to chance).

**Where the faces come from** (nothing is downloaded), in this order, all of them used:

1. *system* -- ``*.ttf`` / ``*.otf`` under the usual font folders (Debian's DejaVu and Liberation
   under ``/usr/share/fonts`` when installed). A bare machine may have none.
2. *package* -- fonts shipped inside the project's own dependencies, so always present:
   ``streamlit`` (KaTeX and Adobe Source Sans/Serif/Code, WOFF2, which FreeType reads) and
   ``prefect`` (Geist, Geist Mono). Variable faces are used at several weights.
3. *pillow* -- Pillow's built-in FreeType face (Aileron), the last resort.

A face is kept only if it draws ten distinct digits with lining figures (heights within 20 % of the
median, one exception allowed): this drops faces without digit glyphs (they all draw the same
``.notdef`` box) and old-style figures, which no handwriting resembles.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = [
    "FontFace", "PrintStyle", "discover_fonts", "load_font", "render_digit", "to_counts",
]

log = logging.getLogger(__name__)

Source = Literal["system", "package", "pillow"]

SYSTEM_FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts",
    "/Library/Fonts", "/System/Library/Fonts", "C:/Windows/Fonts",
)
#: (package, folder inside it, file suffixes): fonts the project's dependencies ship.
PACKAGE_FONT_DIRS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("streamlit", "static/static/media", (".woff2", ".woff", ".ttf", ".otf")),
    ("prefect", "server/ui-v2/fonts", (".ttf", ".otf", ".woff2")),
)
_SUFFIXES = (".ttf", ".otf")
#: At most this many system font files are considered (a designer's laptop may hold thousands).
MAX_SYSTEM_FILES = 200
#: Weights at which a variable face (one with a "Weight" axis) is used.
VARIABLE_WEIGHTS: tuple[int, ...] = (300, 500, 800)

RENDER_SIZE = 96  # pixels per em when drawing; the glyph is later scaled to fit 32×32
BITMAP = 32
BLOCK = 4


@dataclass(frozen=True, order=True)
class FontFace:
    """One drawable face: a font file (``path``; empty for Pillow's built-in face) at a weight."""

    family: str
    style: str
    path: str
    source: Source
    weight: int | None = None  # set on a variable face's "Weight" axis; None: the file's default

    @property
    def label(self) -> str:
        """A short human name, e.g. ``DejaVu Sans Bold`` or ``Geist Regular @500``."""
        at = f" @{self.weight}" if self.weight is not None else ""
        return f"{self.family} {self.style}{at}"


@dataclass(frozen=True)
class PrintStyle:
    """How a digit is drawn: stroke thickening (pixels at :data:`RENDER_SIZE`; negative thins it),
    horizontal stretch (width factor before the bounding-box crop) and shear (x shift per unit of
    height, positive leans right)."""

    stroke: int = 0
    aspect: float = 1.0
    shear: float = 0.0

    @property
    def label(self) -> str:
        return f"stroke{self.stroke:+d}/aspect{self.aspect:g}/shear{self.shear:+g}"


# --------------------------------------------------------------------------------------- discovery

def _system_files(dirs: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for d in dirs:
        root = Path(os.path.expanduser(d))
        if root.is_dir():
            found.extend(p for p in root.rglob("*") if p.suffix.lower() in _SUFFIXES and p.is_file())
    return found


def _package_files() -> list[Path]:
    found: list[Path] = []
    for package, folder, suffixes in PACKAGE_FONT_DIRS:
        # find_spec locates the package without importing it (importing streamlit takes seconds).
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            root = Path(location) / folder
            if root.is_dir():
                found.extend(p for p in root.iterdir() if p.name.lower().endswith(suffixes) and p.is_file())
    return found


def load_font(face: FontFace, size: int = RENDER_SIZE) -> ImageFont.FreeTypeFont:
    """The face as a Pillow font of ``size`` pixels per em, at its weight when it has one."""
    return _load_font(face, size)


@lru_cache(maxsize=256)
def _load_font(face: FontFace, size: int) -> ImageFont.FreeTypeFont:
    if face.source == "pillow":
        font = ImageFont.load_default(size)
        if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
            raise OSError("Pillow has no FreeType support: cannot draw printed digits")
        return font
    font = ImageFont.truetype(face.path, size)
    if face.weight is not None:
        axes = font.get_variation_axes()
        values = [float(face.weight) if bytes(a["name"]) == b"Weight" else float(a["default"] or 0)
                  for a in axes]
        font.set_variation_by_axes(values)
    return font


def _faces_of(path: str, source: Source) -> list[FontFace]:
    font = load_font(FontFace("", "", path, source))
    family, style = (str(x) for x in font.getname())
    try:
        axes = font.get_variation_axes()
    except (OSError, AttributeError):  # not a variable font
        axes = []
    weight_axis = [a for a in axes if bytes(a["name"]) == b"Weight"]
    if not weight_axis:
        return [FontFace(family, style, path, source)]
    lo, hi = int(weight_axis[0]["minimum"] or 0), int(weight_axis[0]["maximum"] or 1000)
    weights = sorted({min(max(w, lo), hi) for w in VARIABLE_WEIGHTS})
    return [FontFace(family, style, path, source, w) for w in weights]


def _draws_digits(face: FontFace) -> bool:
    """Ten distinct, lining digit glyphs (see the module docstring)."""
    font = load_font(face)
    masks, heights = [], []
    for digit in range(10):
        left, top, right, bottom = font.getbbox(str(digit))
        if right <= left or bottom <= top:
            return False
        heights.append(bottom - top)
        masks.append(bytes(font.getmask(str(digit))))
    if len(set(masks)) < 10:
        return False
    median = float(np.median(heights))
    off = sum(abs(h - median) > 0.2 * median for h in heights)
    return off <= 1


def discover_fonts(*, system: bool = True, packages: bool = True,
                   system_dirs: Sequence[str] = SYSTEM_FONT_DIRS) -> list[FontFace]:
    """Every usable face, sorted (family, style, path, source, weight) so that the order is stable.

    Pillow's built-in face is used only when nothing else is found. Duplicate files (the same font
    installed twice) are kept once, by content. On a machine with more than
    :data:`MAX_SYSTEM_FILES` system font files, that many are picked by a hash of their names.
    The answer is cached per process.
    """
    return list(_discover(system, packages, tuple(system_dirs)))


@lru_cache(maxsize=8)
def _discover(system: bool, packages: bool, system_dirs: tuple[str, ...]) -> tuple[FontFace, ...]:
    candidates: list[tuple[Path, Source]] = []
    if system:
        files = sorted(_system_files(system_dirs))
        if len(files) > MAX_SYSTEM_FILES:
            files = sorted(files, key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
            files = files[:MAX_SYSTEM_FILES]
        candidates += [(p, "system") for p in sorted(files)]
    if packages:
        candidates += [(p, "package") for p in sorted(_package_files())]
    faces: list[FontFace] = []
    seen: set[str] = set()
    for path, source in candidates:
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            faces.extend(f for f in _faces_of(str(path), source) if _draws_digits(f))
        except OSError as exc:  # unreadable, or not a font FreeType knows
            log.debug("skipping font %s: %s", path, exc)
    if not faces:
        faces = [f for f in _faces_of("", "pillow") if _draws_digits(f)]
    if not faces:
        raise OSError("no font on this machine draws the ten digits")
    log.debug("fonts: %d faces (%d system, %d package)", len(faces),
              sum(f.source == "system" for f in faces), sum(f.source == "package" for f in faces))
    return tuple(sorted(set(faces)))


# --------------------------------------------------------------------------------------- rendering

def render_digit(face: FontFace, digit: int, style: PrintStyle = PrintStyle()) -> NDArray[np.bool_]:
    """The digit as a 32×32 binary bitmap: drawn, styled, cropped to its bounding box, longest side
    scaled to 32 with the aspect ratio kept, centred, thresholded at half intensity."""
    font = load_font(face)
    text = str(digit)
    left, top, right, bottom = (int(v) for v in font.getbbox(text, stroke_width=max(style.stroke, 0)))
    pad = RENDER_SIZE // 4
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), text, font=font, fill=255,
                                stroke_width=max(style.stroke, 0), stroke_fill=255)
    if style.stroke < 0:
        canvas = canvas.filter(ImageFilter.MinFilter(2 * (-style.stroke) + 1))
    if style.shear:
        w, h = canvas.size
        extra = int(abs(style.shear) * h) + 1
        canvas = canvas.transform((w + extra, h), Image.Transform.AFFINE,
                                  (1, style.shear, -extra if style.shear > 0 else 0, 0, 1, 0),
                                  resample=Image.Resampling.BILINEAR)
    if style.aspect != 1.0:
        w, h = canvas.size
        canvas = canvas.resize((max(1, round(w * style.aspect)), h), Image.Resampling.BILINEAR)
    box = canvas.point(lambda v: 255 if v >= 128 else 0).getbbox()
    if box is None:
        return np.zeros((BITMAP, BITMAP), dtype=bool)
    glyph = canvas.crop(box)
    w, h = glyph.size
    scale = BITMAP / max(w, h)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    glyph = glyph.resize((tw, th), Image.Resampling.BOX)
    out = Image.new("L", (BITMAP, BITMAP), 0)
    out.paste(glyph, ((BITMAP - tw) // 2, (BITMAP - th) // 2))
    return np.asarray(out) >= 128


def to_counts(bitmap: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """32×32 binary → 8×8 counts of set pixels per 4×4 block (0..16), as the digits set was made."""
    n = BITMAP // BLOCK
    return bitmap.reshape(n, BLOCK, n, BLOCK).sum(axis=(1, 3)).astype(np.uint8)
