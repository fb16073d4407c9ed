"""The demo's robustness testbed: scikit-learn's 8×8 digits, printed digits, and corruptions of them.

Everything is made on this machine from data that ships with the project's dependencies (the 1,797
digits bundled with scikit-learn and the fonts found by :mod:`shiftboard.demo.fonts`); nothing is
downloaded. Pixel values are stored as uint8 0..255; the digits' 0..16 counts are scaled by
:func:`counts_to_uint8` (``round(v · 255 / 16)``) everywhere, printed digits included.

Parts, each written as an ``.npz`` (``images`` uint8 ``N×8×8``, ``labels`` int64, ``class_names``):

* ``digits`` (reference): a seeded, class-stratified hold-out of the digits; the rest is the
  training set (:attr:`Testbed.train_images`).
* ``digits-printed`` (natural shift): digits drawn with the *test* fonts in several stroke widths,
  aspect ratios and slants, made like the digits set (see :mod:`shiftboard.demo.fonts`). The font
  families are split in two by the seed; the other half prints :attr:`Testbed.extra_train_images`,
  the extra data of the "more data" models, so no test font is ever trained on.
* ``digits-printed-train-fonts`` (a second reference): printed digits in the fonts of the extra
  training data, in styles it never drew. ``digits-printed`` names it as an extra reference, so its
  board also fits the plane of Shi et al. (NeurIPS 2023) over both references' accuracies: the
  "more data" models were trained on these fonts, and the plane credits what that explains.
* ``digits-c-<corruption>-<severity>`` (synthetic, group ``corruptions``): the reference images under
  each corruption of :mod:`shiftboard.demo.corruptions` at severities 1..5.

``build_testbed`` is deterministic: the same seed, fonts and ``small`` flag write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from shiftboard.demo.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from shiftboard.demo.fonts import FontFace, PrintStyle, discover_fonts, render_digit, to_counts

__all__ = [
    "CLASS_NAMES", "CORRUPTIONS_GROUP", "NATURAL_NAME", "PRINT_STYLES", "REFERENCE_NAME", "TRAIN_FONTS_NAME",
    "TestSetFile",
    "Testbed", "build_testbed", "corruption_name", "counts_to_uint8", "load_testbed", "split_fonts",
]

log = logging.getLogger(__name__)

Kind = Literal["reference", "natural", "synthetic"]

REFERENCE_NAME = "digits"
NATURAL_NAME = "digits-printed"
TRAIN_FONTS_NAME = "digits-printed-train-fonts"
CORRUPTIONS_GROUP = "corruptions"
CLASS_NAMES = tuple(str(d) for d in range(10))
MANIFEST = "testbed.json"

#: Styles printed digits are drawn in: stroke thickening × width factor × slant.
PRINT_STYLES: tuple[PrintStyle, ...] = tuple(
    PrintStyle(stroke, aspect, shear)
    for stroke in (0, 3, 6) for aspect in (0.75, 1.0, 1.25) for shear in (0.0, 0.2)
)


@dataclass(frozen=True)
class _Size:
    test_per_class: int        # reference hold-out per class (the split itself never changes)
    max_faces: int             # at most this many faces on each side of the font split
    test_styles: int           # styles drawn per (test face, digit)
    extra_styles: int          # styles drawn per (extra face, digit)
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]


_HOLDOUT_PER_CLASS = 50
_FULL = _Size(_HOLDOUT_PER_CLASS, 48, 4, 4, tuple(CORRUPTIONS), SEVERITIES)
_SMALL = _Size(20, 8, 1, 2, ("noise", "blur"), (1, 3))


@dataclass(frozen=True)
class TestSetFile:
    """One written test set and what to register it as."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    kind: Kind
    reference: str      # the reference it shifts from; empty for the reference itself
    group: str          # e.g. "corruptions"; empty when none
    path: Path
    description: str
    num_samples: int
    extra_references: tuple[str, ...] = ()   # references after ``reference`` (a multi-reference fit)


@dataclass(frozen=True)
class Testbed:
    """The written test sets and the training data the zoo learns from (uint8 0..255, ``N×8×8``)."""

    __test__ = False  # not a pytest test class, despite the name

    testsets: tuple[TestSetFile, ...]
    train_images: NDArray[np.uint8] = field(repr=False)
    train_labels: NDArray[np.int64] = field(repr=False)
    extra_train_images: NDArray[np.uint8] = field(repr=False)
    extra_train_labels: NDArray[np.int64] = field(repr=False)
    test_fonts: tuple[str, ...]     # face labels printing digits-printed
    extra_fonts: tuple[str, ...]    # face labels printing the extra training data
    seed: int
    small: bool

    def get(self, name: str) -> TestSetFile:
        for t in self.testsets:
            if t.name == name:
                return t
        raise KeyError(f"no test set {name!r} in the testbed")

    @property
    def reference(self) -> TestSetFile:
        return self.get(REFERENCE_NAME)

    @property
    def natural(self) -> TestSetFile:
        return self.get(NATURAL_NAME)

    @property
    def synthetic(self) -> tuple[TestSetFile, ...]:
        return tuple(t for t in self.testsets if t.kind == "synthetic")


def counts_to_uint8(counts: NDArray[np.integer]) -> NDArray[np.uint8]:
    """Digits-style counts 0..16 to uint8 0..255: ``round(v · 255 / 16)`` in exact integer maths."""
    v = np.asarray(counts, dtype=np.int64)
    if v.size and (v.min() < 0 or v.max() > 16):
        raise ValueError("counts must lie in 0..16")
    return ((v * 255 + 8) // 16).astype(np.uint8)


def _to_uint8(x: NDArray[np.float64]) -> NDArray[np.uint8]:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def corruption_name(corruption: str, severity: int) -> str:
    """``digits-c-noise-3`` and so on."""
    return f"{REFERENCE_NAME}-c-{corruption}-{severity}"


def _stable_key(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def split_fonts(faces: Sequence[FontFace], seed: int) -> tuple[list[FontFace], list[FontFace]]:
    """(test faces, extra-training faces). Whole families go to one side, so that no test typeface
    is trained on: in an order the seed shuffles, each family joins the side with fewer faces so far.
    With a single family its faces are split instead."""
    families = sorted({f.family for f in faces}, key=lambda fam: _stable_key(seed, fam))
    if len(families) < 2:
        ordered = sorted(faces, key=lambda f: _stable_key(seed, f.label))
        if len(ordered) < 2:
            raise ValueError("printed digits need at least two font faces (one to test, one to train on)")
        return sorted(ordered[0::2]), sorted(ordered[1::2])
    test: list[FontFace] = []
    extra: list[FontFace] = []
    for family in families:
        members = [f for f in faces if f.family == family]
        (test if len(test) <= len(extra) else extra).extend(members)
    return sorted(test), sorted(extra)


def _print(faces: Sequence[FontFace], styles_per_digit: int,
           rng: np.random.Generator) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    images, labels = [], []
    for face in faces:
        for digit in range(10):
            for s in rng.choice(len(PRINT_STYLES), size=styles_per_digit, replace=False):
                images.append(to_counts(render_digit(face, digit, PRINT_STYLES[int(s)])))
                labels.append(digit)
    return counts_to_uint8(np.stack(images)), np.asarray(labels, dtype=np.int64)


def _print_held_out(faces: Sequence[FontFace], train_styles: int, styles_per_digit: int, train_seed: list[int],
                    rng: np.random.Generator) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Printed digits of ``faces`` in styles that :func:`_print` with ``train_styles`` and the generator
    seeded ``train_seed`` did not draw (its draws are replayed), ``styles_per_digit`` per (face, digit)."""
    train_rng = np.random.default_rng(train_seed)
    images, labels = [], []
    for face in faces:
        for digit in range(10):
            used = set(train_rng.choice(len(PRINT_STYLES), size=train_styles, replace=False).tolist())
            free = [s for s in range(len(PRINT_STYLES)) if s not in used]
            for s in rng.choice(free, size=min(styles_per_digit, len(free)), replace=False):
                images.append(to_counts(render_digit(face, digit, PRINT_STYLES[int(s)])))
                labels.append(digit)
    return counts_to_uint8(np.stack(images)), np.asarray(labels, dtype=np.int64)


def _write(path: Path, images: NDArray[np.uint8], labels: NDArray[np.int64]) -> None:
    """An ``.npz`` as ``np.savez`` writes it, but with fixed zip timestamps (``np.savez`` stamps the
    current time), so that equal arrays give equal bytes."""
    arrays = {"images": images, "labels": labels, "class_names": np.asarray(CLASS_NAMES)}
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(value), allow_pickle=False)
    tmp.replace(path)


def _digits() -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return counts_to_uint8(data.images.astype(np.int64)), data.target.astype(np.int64)


def _split(labels: NDArray[np.int64], seed: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Class-stratified hold-out of ``_HOLDOUT_PER_CLASS`` per class: (held-out, train) indices."""
    rng = np.random.default_rng([seed, 0])
    held: list[NDArray[np.intp]] = []
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        held.append(np.sort(rng.permutation(idx)[:_HOLDOUT_PER_CLASS]))
    held_out = np.sort(np.concatenate(held))
    train = np.setdiff1d(np.arange(len(labels)), held_out)
    return held_out, train


def build_testbed(out_dir: Path, *, small: bool = False, seed: int = 0,
                  fonts: Sequence[FontFace] | None = None) -> Testbed:
    """Write the testbed's ``.npz`` files and ``testbed.json`` into ``out_dir``; return descriptors.

    ``small`` writes a subset for quick runs: 200 reference images (a class-balanced part of the
    same hold-out; the training split is unchanged), 80 printed digits from 8 faces, and only the
    noise and blur corruptions at severities 1 and 3. ``fonts`` overrides
    :func:`~shiftboard.demo.fonts.discover_fonts` (e.g. ``discover_fonts(system=False)`` gives the
    same testbed on every machine with the same dependencies).
    """
    size = _SMALL if small else _FULL
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    faces = sorted(set(discover_fonts() if fonts is None else fonts))
    test_faces, extra_faces = (
        sorted(sorted(side, key=lambda f: _stable_key(seed, f.label))[:size.max_faces])
        for side in split_fonts(faces, seed))

    images, labels = _digits()
    held_out, train = _split(labels, seed)
    # small keeps a class-balanced prefix of the same hold-out
    keep = np.concatenate([held_out[labels[held_out] == c][:size.test_per_class] for c in range(10)])
    ref_idx = np.sort(keep)
    sets = _write_testsets(out_dir, size, seed, test_faces, extra_faces, images[ref_idx], labels[ref_idx])
    extra, extra_labels = _print(extra_faces, size.extra_styles, np.random.default_rng(_extra_seed(seed)))
    testbed = Testbed(
        testsets=tuple(sets),
        train_images=images[train], train_labels=labels[train],
        extra_train_images=extra, extra_train_labels=extra_labels,
        test_fonts=tuple(f.label for f in test_faces), extra_fonts=tuple(f.label for f in extra_faces),
        seed=seed, small=small,
    )
    _write(out_dir / "train.npz", testbed.train_images, testbed.train_labels)
    _write(out_dir / "extra-train.npz", testbed.extra_train_images, testbed.extra_train_labels)
    _write_manifest(out_dir, testbed)
    log.info("testbed: %d test sets, %d train + %d extra images, fonts %d test / %d extra",
             len(sets), len(train), len(extra_labels), len(test_faces), len(extra_faces))
    return testbed


def _extra_seed(seed: int) -> list[int]:
    """The seed of the generator drawing the extra training data's print styles."""
    return [seed, 3]


def _write_testsets(out_dir: Path, size: _Size, seed: int, test_faces: Sequence[FontFace],
                    extra_faces: Sequence[FontFace], ref_images: NDArray[np.uint8],
                    ref_labels: NDArray[np.int64]) -> list[TestSetFile]:
    """Write the references, the printed digits and every corruption of the reference; return their files
    (references first, the order they are registered in)."""
    sets: list[TestSetFile] = []

    def add(name: str, kind: Kind, group: str, description: str,
            x: NDArray[np.uint8], y: NDArray[np.int64], extra_references: tuple[str, ...] = ()) -> None:
        path = out_dir / f"{name}.npz"
        _write(path, x, y)
        sets.append(TestSetFile(name, kind, "" if kind == "reference" else REFERENCE_NAME, group, path,
                                description, len(y), extra_references))

    add(REFERENCE_NAME, "reference", "",
        f"scikit-learn 8x8 digits, held out ({len(ref_labels)} images, seed {seed})", ref_images, ref_labels)
    held, held_labels = _print_held_out(extra_faces, size.extra_styles, size.test_styles, _extra_seed(seed),
                                        np.random.default_rng([seed, 5]))
    add(TRAIN_FONTS_NAME, "reference", "",
        f"printed digits from the {len(extra_faces)} font faces of the extra training data, in styles it "
        "does not hold: a second reference of digits-printed", held, held_labels)

    printed, printed_labels = _print(test_faces, size.test_styles, np.random.default_rng([seed, 1]))
    families = sorted({f.family for f in test_faces})
    add(NATURAL_NAME, "natural", "",
        f"printed digits from {len(test_faces)} font faces ({', '.join(families)}) in varied stroke, "
        f"width and slant, made like the digits set (bounding box, 32x32 binary, 4x4 counts)",
        printed, printed_labels, (TRAIN_FONTS_NAME,))

    ref_float = ref_images.astype(np.float64) / 255.0
    for cname in size.corruptions:
        corruption = CORRUPTIONS[cname]
        for severity in size.severities:
            rng = np.random.default_rng([seed, 2, list(CORRUPTIONS).index(cname), severity])
            x = _to_uint8(corrupt(ref_float, cname, severity, rng))
            level = corruption.levels[severity - 1]
            add(corruption_name(cname, severity), "synthetic", CORRUPTIONS_GROUP,
                f"digits held-out, {corruption.description}, severity {severity} "
                f"({corruption.parameter} = {level:g})", x, ref_labels)
    return sets


def _write_manifest(out_dir: Path, testbed: Testbed) -> None:
    doc = {
        "seed": testbed.seed, "small": testbed.small,
        "test_fonts": list(testbed.test_fonts), "extra_fonts": list(testbed.extra_fonts),
        "testsets": [{**asdict(t), "path": t.path.name} for t in testbed.testsets],
    }
    (out_dir / MANIFEST).write_text(json.dumps(doc, indent=2) + "\n")


def load_testbed(out_dir: Path) -> Testbed:
    """A testbed that :func:`build_testbed` wrote earlier into ``out_dir``.

    Raises :class:`FileNotFoundError` when a file is missing (then build it again).
    """
    out_dir = Path(out_dir)
    doc = json.loads((out_dir / MANIFEST).read_text())

    def read(name: str) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
        with np.load(out_dir / name, allow_pickle=False) as z:
            return z["images"], z["labels"]

    sets = []
    for t in doc["testsets"]:
        path = out_dir / t["path"]
        if not path.is_file():
            raise FileNotFoundError(path)
        sets.append(TestSetFile(**{**t, "path": path, "extra_references": tuple(t.get("extra_references", ()))}))
    train_x, train_y = read("train.npz")
    extra_x, extra_y = read("extra-train.npz")
    return Testbed(tuple(sets), train_x, train_y, extra_x, extra_y, tuple(doc["test_fonts"]),
                   tuple(doc["extra_fonts"]), int(doc["seed"]), bool(doc["small"]))
