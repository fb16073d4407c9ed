"""The demo's content, without servers: the small testbed and the small zoo.

Checks shapes, dtypes and labels of every written test set, that the same seed writes the same bytes,
that printed digits are digits (a classifier trained on handwritten digits reads them well above
chance), that the fonts the project's own dependencies ship suffice, and that the zoo's TorchScript
files load and answer ``N×10``.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from shiftboard.demo import (
    CORRUPTIONS_GROUP,
    INPUT_SHAPE,
    NATURAL_NAME,
    REFERENCE_NAME,
    Testbed,
    ZooModel,
    build_testbed,
    discover_fonts,
    load_testbed,
    load_zoo,
    train_zoo,
    zoo_specs,
)
from shiftboard.demo.corruptions import CORRUPTIONS, corrupt
from shiftboard.demo.fonts import PrintStyle, _faces_of, render_digit, to_counts
from shiftboard.demo.testbed import _split, counts_to_uint8, split_fonts
from shiftboard.domain.names import validate_name
from shiftboard.testsets import read_npz

CATEGORIES = {"standard", "robustness-intervention", "more-data"}


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Testbed:
    return build_testbed(tmp_path_factory.mktemp("testbed"), small=True, seed=0)


@pytest.fixture(scope="module")
def zoo(testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> list[ZooModel]:
    return train_zoo(testbed, tmp_path_factory.mktemp("zoo"), small=True, seed=0)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.npz"))}


def test_counts_scale_to_uint8_exactly() -> None:
    assert counts_to_uint8(np.arange(17)).tolist()[:3] == [0, 16, 32]
    assert counts_to_uint8(np.array([8, 16])).tolist() == [128, 255]
    with pytest.raises(ValueError):
        counts_to_uint8(np.array([17]))


def test_small_testbed_parts_and_descriptors(testbed: Testbed) -> None:
    kinds = {t.name: t.kind for t in testbed.testsets}
    assert kinds[REFERENCE_NAME] == "reference" and kinds[NATURAL_NAME] == "natural"
    assert {t.name for t in testbed.synthetic} == {
        "digits-c-noise-1", "digits-c-noise-3", "digits-c-blur-1", "digits-c-blur-3"}
    for t in testbed.testsets:
        validate_name(t.name, "test set")
        assert t.path.is_file() and t.description
        assert t.reference == ("" if t.kind == "reference" else REFERENCE_NAME)
        assert t.group == (CORRUPTIONS_GROUP if t.kind == "synthetic" else "")
        with np.load(t.path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
        assert images.dtype == np.uint8 and images.shape == (t.num_samples, 8, 8)
        assert labels.dtype == np.int64 and labels.shape == (t.num_samples,)
        assert set(labels.tolist()) == set(range(10))
        assert images.max() > 200  # the 0..255 scale, not the digits' 0..16
        # the platform's own reader accepts it
        parsed = read_npz(t.path)
        assert (parsed.height, parsed.width, parsed.channels) == (8, 8, 1)
        assert parsed.class_names == tuple(str(d) for d in range(10))
    ref = testbed.reference
    assert ref.num_samples == 200  # 20 per class in the small testbed
    for t in testbed.synthetic:
        with np.load(t.path) as z, np.load(ref.path) as r:
            assert np.array_equal(z["labels"], r["labels"])


def test_training_data(testbed: Testbed) -> None:
    assert testbed.train_images.dtype == np.uint8 and testbed.train_images.shape[1:] == (8, 8)
    assert testbed.train_labels.dtype == np.int64
    assert len(testbed.train_labels) == 1797 - 500  # the full hold-out is kept out even when small
    assert testbed.extra_train_images.dtype == np.uint8 and testbed.extra_train_images.shape[1:] == (8, 8)
    assert set(testbed.extra_train_labels.tolist()) == set(range(10))
    held, train = _split(np.repeat(np.arange(10), 180), seed=0)
    assert not set(held.tolist()) & set(train.tolist())
    assert len(held) == 500


def test_fonts_of_test_and_extra_training_are_disjoint(testbed: Testbed) -> None:
    assert testbed.test_fonts and testbed.extra_fonts
    assert not set(testbed.test_fonts) & set(testbed.extra_fonts)
    test, extra = split_fonts(discover_fonts(), seed=0)
    assert not {f.family for f in test} & {f.family for f in extra}


def test_same_seed_same_bytes_other_seed_other_split(testbed: Testbed, tmp_path: Path) -> None:
    first = _digests(testbed.reference.path.parent)
    again = build_testbed(tmp_path / "again", small=True, seed=0)
    assert _digests(tmp_path / "again") == first
    assert np.array_equal(again.extra_train_images, testbed.extra_train_images)
    build_testbed(tmp_path / "other", small=True, seed=1)
    other = _digests(tmp_path / "other")
    assert other[f"{REFERENCE_NAME}.npz"] != first[f"{REFERENCE_NAME}.npz"]
    with zipfile.ZipFile(testbed.reference.path) as z:  # fixed timestamps make the bytes reproducible
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_load_testbed_round_trip(testbed: Testbed) -> None:
    loaded = load_testbed(testbed.reference.path.parent)
    assert loaded.testsets == testbed.testsets
    assert np.array_equal(loaded.train_images, testbed.train_images)
    assert loaded.test_fonts == testbed.test_fonts and loaded.small


def test_printed_digits_are_read_as_digits(testbed: Testbed) -> None:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=500)
    clf.fit(testbed.train_images.reshape(-1, 64) / 255.0, testbed.train_labels)
    with np.load(testbed.natural.path) as z:
        printed = clf.score(z["images"].reshape(-1, 64) / 255.0, z["labels"])
    with np.load(testbed.reference.path) as z:
        reference = clf.score(z["images"].reshape(-1, 64) / 255.0, z["labels"])
    assert printed > 0.3  # chance is 0.1; typically ~0.45
    assert printed < reference - 0.2  # and yet a real shift
    extra = clf.score(testbed.extra_train_images.reshape(-1, 64) / 255.0, testbed.extra_train_labels)
    assert extra > 0.3


def test_fonts_shipped_by_dependencies_suffice() -> None:
    """A bare machine has no /usr/share/fonts: the fonts inside streamlit and prefect must do."""
    packaged = discover_fonts(system=False)
    assert len({f.family for f in packaged}) >= 2
    assert all(f.source == "package" for f in packaged)
    test, extra = split_fonts(packaged, seed=0)
    assert test and extra
    pillow = _faces_of("", "pillow")  # the last resort
    bitmap = render_digit(pillow[0], 7, PrintStyle(stroke=3, aspect=0.75))
    assert bitmap.shape == (32, 32) and bitmap.any()
    counts = to_counts(bitmap)
    assert counts.shape == (8, 8) and counts.max() <= 16


def test_corruptions_are_seeded_and_graded() -> None:
    x = np.random.default_rng(0).random((20, 8, 8))
    for name in CORRUPTIONS:
        a = corrupt(x, name, 3, np.random.default_rng(1))
        b = corrupt(x, name, 3, np.random.default_rng(1))
        assert np.array_equal(a, b) and a.shape == x.shape
        assert a.min() >= 0.0 and a.max() <= 1.0
        mild = np.abs(corrupt(x, name, 1, np.random.default_rng(1)) - x).mean()
        harsh = np.abs(corrupt(x, name, 5, np.random.default_rng(1)) - x).mean()
        assert harsh > mild, name
    with pytest.raises(ValueError):
        corrupt(x, "noise", 6, np.random.default_rng(0))


def test_small_zoo_torchscript(zoo: list[ZooModel], testbed: Testbed) -> None:
    assert len(zoo) == len(zoo_specs(small=True))
    assert {m.category for m in zoo} == CATEGORIES
    assert len({m.name for m in zoo}) == len(zoo)
    with np.load(testbed.reference.path) as z:
        x = torch.from_numpy(z["images"].astype(np.float32) / 255.0).unsqueeze(1)
        y = torch.from_numpy(z["labels"])
    assert tuple(x.shape[1:]) == INPUT_SHAPE
    for m in zoo:
        validate_name(m.name, "model")
        for tag in m.tags:
            validate_name(tag, "tag")
        assert m.description
        model = torch.jit.load(str(m.path))
        with torch.no_grad():
            out = model(x)
        assert out.shape == (len(x), 10) and out.dtype == torch.float32
        assert (out.argmax(1) == y).float().mean() > 0.6, m.name


def test_load_zoo_round_trip(zoo: list[ZooModel]) -> None:
    assert load_zoo(zoo[0].path.parent) == zoo


def test_full_zoo_plan() -> None:
    specs = zoo_specs()
    assert len(specs) >= 30
    assert {s.category for s in specs} == CATEGORIES
    assert sum(s.category == "standard" for s in specs) >= 15
    assert {s.arch for s in specs if s.category == "standard"} == {"linear", "mlp", "cnn"}
    assert len({s.name for s in specs}) == len(specs)
    for s in specs:
        validate_name(s.name, "model")


def test_zoo_is_deterministic_and_leaves_torch_state_alone(testbed: Testbed, zoo: list[ZooModel],
                                                           tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    state = torch.get_rng_state()
    again = train_zoo(testbed, tmp_path, specs=[zoo[0].spec, zoo[-1].spec], seed=0)
    for m in again:
        original = next(z for z in zoo if z.name == m.name)
        assert m.path.read_bytes() == original.path.read_bytes()
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), state)
