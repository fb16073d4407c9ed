"""Tests of test-set reading, conversion, sharding and shard verification, on real data:
scikit-learn's bundled 8×8 digits, saved as an ``.npz`` and as an ImageFolder of PNGs."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image
from sklearn.datasets import load_digits  # type: ignore[import-untyped]

from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.shards import encode_shard, read_shard, sha256_bytes, sha256_file, verify_shard, write_shards
from shiftboard.testsets import (
    INTERPOLATIONS,
    PreparedTestSet,
    Transform,
    parse_class_map,
    parse_size,
    prepare_testset,
    read_image_folder,
    read_npz,
)

# ------------------------------------------------------------------------------------------- data

@pytest.fixture(scope="module")
def digits() -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """All 1797 digits as uint8 (values 0..16 scaled to 0..255) with their labels."""
    data = load_digits()
    images = np.round(data.images * (255 / 16)).astype(np.uint8)
    return images, data.target.astype(np.int64)


@pytest.fixture
def digits_npz(tmp_path: Path, digits: tuple[NDArray[np.uint8], NDArray[np.int64]]) -> Path:
    path = tmp_path / "digits.npz"
    np.savez(path, images=digits[0], labels=digits[1])
    return path


FOLDER_PER_CLASS = 6


def _write_folder(root: Path, images: NDArray[np.uint8], labels: NDArray[np.int64]) -> tuple[
        NDArray[np.uint8], NDArray[np.int64]]:
    """Write the first FOLDER_PER_CLASS digits of each class as PNGs; return them in ImageFolder order."""
    kept_images, kept_labels = [], []
    for label in range(10):
        folder = root / f"digit-{label}"
        folder.mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(labels == label)[:FOLDER_PER_CLASS]):
            Image.fromarray(images[index]).save(folder / f"{i:03d}.png")
            kept_images.append(images[index])
            kept_labels.append(label)
    return np.stack(kept_images), np.asarray(kept_labels, dtype=np.int64)


@pytest.fixture
def digits_folder(tmp_path: Path, digits: tuple[NDArray[np.uint8], NDArray[np.int64]]) -> tuple[
        Path, NDArray[np.uint8], NDArray[np.int64]]:
    root = tmp_path / "digits"
    images, labels = _write_folder(root, *digits)
    return root, images, labels


def read_back(prepared: PreparedTestSet) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    parts = [read_shard(s.path.read_bytes()) for s in prepared.shards]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


# ------------------------------------------------------------------------------------- round trips

def test_npz_round_trip_in_shards(tmp_path: Path, digits_npz: Path,
                                  digits: tuple[NDArray[np.uint8], NDArray[np.int64]]) -> None:
    progress: list[tuple[int, int]] = []
    prepared = prepare_testset(digits_npz, out_dir=tmp_path / "out", shard_samples=500,
                               on_progress=lambda done, total: progress.append((done, total)))
    assert (prepared.num_samples, prepared.num_classes, prepared.channels) == (1797, 10, 1)
    assert (prepared.height, prepared.width, prepared.class_names) == (8, 8, ())
    assert [(s.index, s.first_sample, s.num_samples) for s in prepared.shards] == [
        (0, 0, 500), (1, 500, 500), (2, 1000, 500), (3, 1500, 297)]
    for shard in prepared.shards:
        assert shard.path.name == f"shard-{shard.index:06d}.npz"
        assert shard.size_bytes == shard.path.stat().st_size
        assert shard.sha256 == sha256_file(shard.path) == sha256_bytes(shard.path.read_bytes())
        verify_shard(shard.path.read_bytes(), sha256=shard.sha256, num_samples=shard.num_samples,
                     channels=1, height=8, width=8, num_classes=10)
        with np.load(shard.path, allow_pickle=False) as npz:  # a plain npz to any numpy reader
            assert npz.files == ["images", "labels"]
            assert npz["labels"].dtype == np.int64
    images, labels = read_back(prepared)
    np.testing.assert_array_equal(images, digits[0][:, None])
    np.testing.assert_array_equal(labels, digits[1])
    assert progress[-1] == (1797, 1797)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert prepared.size_bytes == sum(s.size_bytes for s in prepared.shards)


def test_shard_samples_from_shard_bytes(tmp_path: Path, digits_npz: Path) -> None:
    prepared = prepare_testset(digits_npz, out_dir=tmp_path / "out", shard_bytes=72 * 100, channels=1)
    assert prepared.shard_samples == 100  # 64 pixels + 8 label bytes per sample
    assert [s.num_samples for s in prepared.shards] == [100] * 17 + [97]
    assert max(s.size_bytes for s in prepared.shards) < 72 * 100 + 1024  # plus npy and zip headers
    tiny = tmp_path / "tiny.npz"
    np.savez(tiny, images=IMAGES[:3], labels=LABELS[:3])
    assert prepare_testset(tiny, out_dir=tmp_path / "one", shard_bytes=1).shard_samples == 1  # at least one


def test_shards_are_deterministic(tmp_path: Path, digits_npz: Path) -> None:
    first = prepare_testset(digits_npz, out_dir=tmp_path / "a", shard_samples=700)
    second = prepare_testset(digits_npz, out_dir=tmp_path / "b", shard_samples=700)
    assert [s.sha256 for s in first.shards] == [s.sha256 for s in second.shards]
    for s, t in zip(first.shards, second.shards, strict=True):
        assert s.path.read_bytes() == t.path.read_bytes()


def test_shard_format_is_pinned_and_equal_to_np_savez() -> None:
    """A golden hash: if a numpy or Python upgrade changes shard bytes, stored checksums drift."""
    images = np.arange(18, dtype=np.uint8).reshape(2, 1, 3, 3)
    labels = np.array([0, 1], dtype=np.int64)
    data = encode_shard(images, labels)
    assert sha256_bytes(data) == "024205373e8da18247eb793834122ea72e1453d0a92272e8c3316d0c884fa26e"
    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels)
    assert buffer.getvalue() == data
    assert all(i.compress_type == zipfile.ZIP_STORED for i in zipfile.ZipFile(io.BytesIO(data)).infolist())


def test_image_folder_round_trip(tmp_path: Path,
                                 digits_folder: tuple[Path, NDArray[np.uint8], NDArray[np.int64]]) -> None:
    root, images, labels = digits_folder
    prepared = prepare_testset(root, out_dir=tmp_path / "out", shard_samples=25)
    assert prepared.source_format == "imagefolder"
    assert prepared.class_names == tuple(f"digit-{i}" for i in range(10))
    assert (prepared.num_samples, prepared.num_classes, prepared.channels) == (60, 10, 1)
    assert [s.num_samples for s in prepared.shards] == [25, 25, 10]
    assert prepared.warnings == ()
    got_images, got_labels = read_back(prepared)
    np.testing.assert_array_equal(got_images, images[:, None])  # PNG is lossless
    np.testing.assert_array_equal(got_labels, labels)


def test_resize_to_16_and_gray_to_rgb(tmp_path: Path, digits_npz: Path,
                                      digits: tuple[NDArray[np.uint8], NDArray[np.int64]]) -> None:
    prepared = prepare_testset(digits_npz, out_dir=tmp_path / "out", shard_samples=1000,
                               size=(16, 16), channels=3)
    assert (prepared.channels, prepared.height, prepared.width) == (3, 16, 16)
    images, labels = read_back(prepared)
    assert images.shape == (1797, 3, 16, 16)
    np.testing.assert_array_equal(images[:, 0], images[:, 1])
    np.testing.assert_array_equal(images[:, 0], images[:, 2])
    expected = np.asarray(Image.fromarray(digits[0][5]).resize((16, 16), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(images[5, 0], expected)
    # Bilinear upsampling keeps the overall brightness.
    assert abs(float(images.mean()) - float(digits[0].mean())) < 2.0
    np.testing.assert_array_equal(labels, digits[1])


def test_image_folder_resize_rgb_to_gray_and_mixed_sizes(tmp_path: Path) -> None:
    root = tmp_path / "colours"
    for name, size, colour in [("blue", (10, 6), (0, 0, 255)), ("red", (7, 9), (255, 0, 0))]:
        (root / name).mkdir(parents=True)
        Image.new("RGB", size, colour).save(root / name / "a.PNG")
        Image.new("RGB", size, colour).save(root / name / "b.JPG", quality=95)
    prepared = prepare_testset(root, out_dir=tmp_path / "out", shard_samples=10, size=(4, 5), channels=1)
    images, labels = read_back(prepared)
    assert images.shape == (4, 1, 4, 5)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    luma_blue, luma_red = round(255 * 114 / 1000), round(255 * 299 / 1000)  # ITU-R 601-2
    assert np.abs(images[:2].astype(int) - luma_blue).max() <= 3
    assert np.abs(images[2:].astype(int) - luma_red).max() <= 3


def test_rgb_npz_channels_last_and_default_channels(
        tmp_path: Path, digits: tuple[NDArray[np.uint8], NDArray[np.int64]]) -> None:
    images = np.stack([digits[0][:50], 255 - digits[0][:50], digits[0][:50] // 2], axis=-1)
    path = tmp_path / "rgb.npz"
    np.savez_compressed(path, images=images, labels=digits[1][:50])  # deflated input streams too
    prepared = prepare_testset(path, out_dir=tmp_path / "out", shard_samples=64)
    assert prepared.channels == 3
    got, _ = read_back(prepared)
    np.testing.assert_array_equal(got, images.transpose(0, 3, 1, 2))


def test_npz_single_channel_axis_fortran_order_and_class_names(
        tmp_path: Path, digits: tuple[NDArray[np.uint8], NDArray[np.int64]]) -> None:
    images = np.asfortranarray(digits[0][:40, :, :, None])
    path = tmp_path / "f.npz"
    np.savez(path, images=images, labels=digits[1][:40], class_names=np.array([str(i) for i in range(10)]))
    assert read_npz(path).fortran_order
    prepared = prepare_testset(path, out_dir=tmp_path / "out", shard_samples=16)
    assert prepared.class_names == tuple(str(i) for i in range(10))
    got, _ = read_back(prepared)
    np.testing.assert_array_equal(got, digits[0][:40, None])


def test_class_subset_and_larger_num_classes(tmp_path: Path,
                                             digits: tuple[NDArray[np.uint8], NDArray[np.int64]]) -> None:
    keep = digits[1] < 5
    path = tmp_path / "low.npz"
    np.savez(path, images=digits[0][keep], labels=digits[1][keep])
    prepared = prepare_testset(path, out_dir=tmp_path / "out", shard_samples=1000, num_classes=1000,
                               class_subset=[4, 3, 2, 1, 0])
    assert (prepared.num_classes, prepared.class_subset) == (1000, (4, 3, 2, 1, 0))
    assert prepare_testset(path, out_dir=tmp_path / "o2", shard_samples=1000).num_classes == 5


def test_empty_class_folder_keeps_its_index_and_stray_files_are_reported(
        tmp_path: Path, digits_folder: tuple[Path, NDArray[np.uint8], NDArray[np.int64]]) -> None:
    root, _, labels = digits_folder
    (root / "digit-0a-empty").mkdir()
    (root / "digit-1" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("stray")
    (root / ".hidden").mkdir()
    testset = read_image_folder(root)
    assert testset.class_names[1] == "digit-0a-empty"
    assert len(testset.class_names) == 11
    np.testing.assert_array_equal(testset.labels, np.where(labels >= 1, labels + 1, labels))
    assert any("digit-0a-empty" in w and "keep their class index" in w for w in testset.warnings)
    assert any("2 entries" in w and "notes.txt" in w and "README.md" in w for w in testset.warnings)


def test_parse_size() -> None:
    assert parse_size("224") == (224, 224)
    assert parse_size("32x24") == (32, 24)
    for bad in ("", "0", "32x", "a", "-3", "3x0"):
        with pytest.raises(InvalidArgument, match="HxW"):
            parse_size(bad)


# ------------------------------------------------------------------------------------- npz errors

IMAGES = np.zeros((4, 8, 8), np.uint8)
LABELS = np.array([0, 1, 2, 3])

NPZ_ERRORS: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("no-images", {"pixels": IMAGES, "labels": LABELS}, {}, ["no 'images'", "found ['labels', 'pixels']"]),
    ("zero-images", {"images": IMAGES[:0], "labels": LABELS[:0]}, {}, ["zero images"]),
    ("float-images", {"images": IMAGES.astype(np.float32), "labels": LABELS}, {},
     ["dtype float32", "astype(np.uint8)"]),
    ("2d-images", {"images": IMAGES[:, 0], "labels": LABELS}, {}, ["shape (4, 8)", "N×H×W"]),
    ("channels-first", {"images": np.zeros((4, 3, 8, 8), np.uint8), "labels": LABELS}, {},
     ["shape (4, 3, 8, 8)", "transpose(0, 2, 3, 1)"]),
    ("rgba", {"images": np.zeros((4, 8, 8, 4), np.uint8), "labels": LABELS}, {}, ["images[..., :3]"]),
    ("no-labels", {"images": IMAGES}, {}, ["no 'labels'", "one class index per image"]),
    ("short-labels", {"images": IMAGES, "labels": LABELS[:3]}, {},
     ["'labels' has 3 entries but 'images' has 4", "one label per image"]),
    ("2d-labels", {"images": IMAGES, "labels": LABELS[:, None]}, {}, ["shape (4, 1)", "reshape(-1)"]),
    ("float-labels", {"images": IMAGES, "labels": LABELS.astype(float)}, {},
     ["dtype float64", "integer class indices"]),
    ("object-labels", {"images": IMAGES, "labels": np.array([0, "a", None, 1], dtype=object)}, {},
     ["without pickle"]),
    ("negative-labels", {"images": IMAGES, "labels": np.array([0, -1, 2, -3])}, {},
     ["2 negative values", "smallest -3", "start at 0"]),
    ("labels-out-of-range", {"images": IMAGES, "labels": np.array([0, 1, 7, 9])}, {"num_classes": 5},
     ["2 labels are outside [0, 5)", "largest 9", "num_classes above 9"]),
    ("bad-class-names", {"images": IMAGES, "labels": LABELS, "class_names": np.arange(4)}, {},
     ["'class_names'", "1-D array of str"]),
    ("class-names-vs-num-classes",
     {"images": IMAGES, "labels": LABELS, "class_names": np.array(list("abcd"))}, {"num_classes": 10},
     ["'class_names' has 4 entries but num_classes is 10"]),
]


@pytest.mark.parametrize(("arrays", "kwargs", "expected"), [c[1:] for c in NPZ_ERRORS],
                         ids=[c[0] for c in NPZ_ERRORS])
def test_npz_errors(tmp_path: Path, arrays: dict[str, Any], kwargs: dict[str, Any],
                    expected: list[str]) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(InvalidArgument) as caught:
        prepare_testset(path, out_dir=tmp_path / "out", shard_samples=2, **kwargs)
    for text in expected:
        assert text in caught.value.message
    assert caught.value.message.startswith("bad.npz: ")
    assert not (tmp_path / "out").exists()  # checked before any shard is written


def test_npz_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "labels.npz"
    path.write_text("images,labels\n")
    with pytest.raises(InvalidArgument, match=r"labels.npz: is not an npz \(zip\) archive: save it with"):
        prepare_testset(path, out_dir=tmp_path / "out", shard_samples=2)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="does not exist: give an .npz file or an ImageFolder"):
        prepare_testset(tmp_path / "nope", out_dir=tmp_path / "out", shard_samples=2)
    with pytest.raises(InvalidArgument, match="does not exist or is not a file"):
        read_npz(tmp_path / "nope.npz")


# ----------------------------------------------------------------------------- ImageFolder errors

def test_image_folder_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(InvalidArgument, match="is not a directory: give an ImageFolder"):
        read_image_folder(tmp_path / "x.png")


def test_image_folder_without_class_folders(tmp_path: Path) -> None:
    Image.new("L", (4, 4)).save(tmp_path / "a.png")
    with pytest.raises(InvalidArgument, match="has no class sub-folders: put each class's images in a"):
        prepare_testset(tmp_path, out_dir=tmp_path / "out", shard_samples=2)


def test_image_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "a.bmp").write_bytes(b"BM")
    with pytest.raises(InvalidArgument, match="holds no .jpg/.jpeg/.png images in its 2 class folders"):
        prepare_testset(tmp_path, out_dir=tmp_path / "out", shard_samples=2)


def _folder(tmp_path: Path, write: Callable[[Path], object]) -> Path:
    root = tmp_path / "set"
    (root / "a").mkdir(parents=True)
    Image.new("L", (8, 8), 10).save(root / "a" / "good.png")
    write(root / "a")
    return root


def test_image_folder_unreadable_file_is_named(tmp_path: Path) -> None:
    root = _folder(tmp_path, lambda d: (d / "zz-bad.jpg").write_bytes(b"definitely not a jpeg"))
    with pytest.raises(InvalidArgument, match=r"a/zz-bad.jpg: cannot read the image .*re-export it"):
        prepare_testset(root, out_dir=tmp_path / "out", shard_samples=2)


def test_image_folder_truncated_file_is_named(tmp_path: Path) -> None:
    def truncated(d: Path) -> None:
        buffer = io.BytesIO()
        noise = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
        Image.fromarray(noise).save(buffer, "PNG")
        (d / "zz-cut.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    root = _folder(tmp_path, truncated)
    with pytest.raises(InvalidArgument, match=r"a/zz-cut.png: the image is corrupt .*re-export it"):
        prepare_testset(root, out_dir=tmp_path / "out", shard_samples=2, size=(8, 8))


def test_image_folder_sixteen_bit_image(tmp_path: Path) -> None:
    root = _folder(tmp_path, lambda d: Image.fromarray(np.full((8, 8), 4000, np.uint16)).save(d / "deep.png"))
    with pytest.raises(InvalidArgument, match=r"a/deep.png: is a 16-bit or float image .*8-bit PNG"):
        prepare_testset(root, out_dir=tmp_path / "out", shard_samples=2)


def test_image_folder_mixed_sizes_need_a_size(tmp_path: Path) -> None:
    root = _folder(tmp_path, lambda d: Image.new("L", (5, 7), 10).save(d / "small.png"))
    with pytest.raises(InvalidArgument, match=r"'a/good.png' is 8x8 .*'a/small.png' is 7x5.*--size HxW"):
        prepare_testset(root, out_dir=tmp_path / "out", shard_samples=2)
    assert prepare_testset(root, out_dir=tmp_path / "out", shard_samples=2, size=(6, 6)).height == 6


def test_image_folder_num_classes_must_match_folders(
        tmp_path: Path, digits_folder: tuple[Path, NDArray[np.uint8], NDArray[np.int64]]) -> None:
    with pytest.raises(InvalidArgument, match="has 10 class folders but num_classes is 12: .*empty folder"):
        prepare_testset(digits_folder[0], out_dir=tmp_path / "out", shard_samples=2, num_classes=12)


# ---------------------------------------------------------------------------- argument errors

@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"shard_samples": 0}, "shard_samples is 0: give a whole number of at least 1"),
    ({"shard_samples": True}, "shard_samples is True"),
    ({"shard_bytes": 0}, "shard_bytes is 0: give a whole number of at least 1"),
    ({"size": (8, 0)}, "size is (8, 0): give (height, width)"),
    ({"channels": 2}, "channels is 2: give 1 (gray) or 3 (RGB)"),
    ({"num_classes": 0}, "num_classes is 0: give a whole number"),
    ({"class_subset": []}, "class_subset is empty"),
    ({"class_subset": [0, 10, -1]}, "class_subset holds '10', '-1', outside [0, 10)"),
    ({"class_subset": [1, 2, 1, 2, 3]}, "class_subset repeats '1', '2': list each once"),
    ({"class_subset": list(range(9))}, "180 of 1797 samples have labels outside class_subset (e.g. label 9)"),
])
def test_argument_errors(tmp_path: Path, digits_npz: Path, kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        prepare_testset(digits_npz, out_dir=tmp_path / "out", **{"shard_samples": 100, **kwargs})
    assert expected in caught.value.message


# ------------------------------------------------------------------------------------ shard reading

def _shard(images: NDArray[Any] | None = None, labels: NDArray[Any] | None = None, *,
           compressed: bool = False, **extra: NDArray[Any]) -> bytes:
    arrays: dict[str, NDArray[Any]] = {**extra}
    if images is not None:
        arrays["images"] = images
    if labels is not None:
        arrays["labels"] = labels
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


GOOD_IMAGES = np.zeros((3, 1, 8, 8), np.uint8)
GOOD_LABELS = np.array([0, 1, 9], np.int64)


@pytest.mark.parametrize(("data", "expected"), [
    (b"PK\x03\x04 not really", "shard is not an npz (zip) archive"),
    (_shard(GOOD_IMAGES), "members ['images.npy']: it must hold exactly 'images.npy' and 'labels.npy'"),
    (_shard(GOOD_IMAGES, GOOD_LABELS, extra=GOOD_LABELS), "['extra.npy', 'images.npy', 'labels.npy']"),
    (_shard(GOOD_IMAGES, GOOD_LABELS, compressed=True), "is compressed: shards must be uncompressed"),
    (_shard(GOOD_IMAGES.astype(np.float32), GOOD_LABELS), "'images.npy' is float32 with 4 dimensions: "
                                                          "it must be uint8 with 4 dimensions"),
    (_shard(GOOD_IMAGES, GOOD_LABELS.astype(np.int32)), "'labels.npy' is int32"),
    (_shard(GOOD_IMAGES[:, 0], GOOD_LABELS), "uint8 with 3 dimensions"),
    (_shard(GOOD_IMAGES, GOOD_LABELS[:2]), "holds 2 labels for 3 images"),
    (_shard(GOOD_IMAGES[:0], GOOD_LABELS[:0]), "zero samples"),
    (_shard(np.zeros((3, 2, 8, 8), np.uint8), GOOD_LABELS), "C = 1 or 3"),
    (_shard(GOOD_IMAGES, np.array([0, "x", None], dtype=object)), "'labels.npy' is object"),
], ids=["not-zip", "missing-labels", "extra-key", "compressed", "float-images", "int32-labels", "3d",
        "label-count", "empty", "two-channels", "object-labels"])
def test_read_shard_errors(data: bytes, expected: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        read_shard(data)
    assert expected in caught.value.message


def test_verify_shard() -> None:
    data = encode_shard(GOOD_IMAGES, GOOD_LABELS)
    digest = sha256_bytes(data)
    good: dict[str, Any] = {"sha256": digest, "num_samples": 3, "channels": 1, "height": 8, "width": 8,
            "num_classes": 10}
    verify_shard(data, **good)
    verify_shard(data, **{**good, "sha256": digest.upper()})

    with pytest.raises(InvalidArgument) as caught:
        verify_shard(data[:-1], **good)
    assert f"checksum mismatch: expected sha256 {good['sha256']}, got {sha256_bytes(data[:-1])}" in (
        caught.value.message)
    with pytest.raises(InvalidArgument, match=r"\(3, 1, 8, 8\) but the manifest declares \(3, 3, 8, 8\)"):
        verify_shard(data, **{**good, "channels": 3})
    with pytest.raises(InvalidArgument, match=r"1 labels outside \[0, 5\) \(min 0, max 9\)"):
        verify_shard(data, **{**good, "num_classes": 5})


def test_write_shards_checks_the_stream(tmp_path: Path) -> None:
    batch = (GOOD_IMAGES, GOOD_LABELS)
    with pytest.raises(InvalidArgument, match="ended after 3 of the declared 5 samples"):
        write_shards([batch], num_samples=5, out_dir=tmp_path, shard_samples=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-000000.npz"]  # the partial one is gone
    with pytest.raises(InvalidArgument, match="more than the declared 4 samples"):
        write_shards([batch, batch], num_samples=4, out_dir=tmp_path, shard_samples=2)
    with pytest.raises(InvalidArgument, match="give one int64 label per image"):
        write_shards([(GOOD_IMAGES, GOOD_LABELS.astype(np.int32))], num_samples=3, out_dir=tmp_path,
                     shard_samples=2)
    with pytest.raises(InvalidArgument, match=r"shape \(1, 4, 4\) after 3 samples of shape \(1, 8, 8\)"):
        write_shards([batch, (GOOD_IMAGES[:, :, :4, :4], GOOD_LABELS)], num_samples=6, out_dir=tmp_path,
                     shard_samples=2)
    shards = write_shards([batch, batch], num_samples=6, out_dir=tmp_path, shard_samples=4)
    assert [(s.first_sample, s.num_samples) for s in shards] == [(0, 4), (4, 2)]
    images, labels = read_shard(shards[1].path.read_bytes())
    np.testing.assert_array_equal(labels, GOOD_LABELS[1:])


def test_damaged_shards_always_raise_invalid_argument() -> None:
    """Whatever an upload does to the bytes, the server sees InvalidArgument, never a crash."""
    data = encode_shard(GOOD_IMAGES, GOOD_LABELS)
    rng = np.random.default_rng(7)
    damaged = [data[:cut] for cut in range(0, len(data), 7)]
    for _ in range(300):
        mutated = bytearray(data)
        for position in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            mutated[position] = int(rng.integers(0, 256))
        damaged.append(bytes(mutated))
    for bad in damaged:
        if bad == data:
            continue
        try:
            images, labels = read_shard(bad)
        except InvalidArgument:
            continue
        # Some flips land in pixel or label bytes and go unnoticed by the parser: that is what the
        # sha256 in verify_shard is for.
        with pytest.raises(InvalidArgument, match="checksum mismatch"):
            verify_shard(bad, sha256=sha256_bytes(data), num_samples=3, channels=1, height=8, width=8,
                         num_classes=10)


def test_npz_images_shorter_than_declared(tmp_path: Path) -> None:
    path = tmp_path / "cut.npz"
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("images.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                     "shape": (10, 8, 8)})
            f.write(bytes(64))
        with archive.open("labels.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros(10, np.int64))
    with pytest.raises(InvalidArgument, match=r"declares shape \(10, 8, 8\) but holds 64 bytes: .*write it"):
        prepare_testset(path, out_dir=tmp_path / "out", shard_samples=4)


# ------------------------------------------------------------------------------- ingestion transforms

def _photo(rng: np.random.Generator, height: int, width: int) -> NDArray[np.uint8]:
    """A smooth RGB picture with detail (gradients plus noise), so that every filter gives different pixels."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    return np.clip(base + rng.normal(0, 40, (height, width, 3)), 0, 255).astype(np.uint8)


def _independent(array: NDArray[np.uint8], border: int, resize: int, crop: int, method: Image.Resampling,
                 ) -> NDArray[np.uint8]:
    """The testbed's pipeline written out with PIL and numpy: border, shorter side, centre crop."""
    h, w = array.shape[:2]
    image = Image.fromarray(array[border:h - border, border:w - border])
    w, h = image.size
    size = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    resized = np.asarray(image.resize(size, method))
    top = int(round((resized.shape[0] - crop) / 2.0))
    left = int(round((resized.shape[1] - crop) / 2.0))
    return resized[top:top + crop, left:left + crop].transpose(2, 0, 1)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest", "lanczos"])
def test_border_resize_and_centre_crop_equal_an_independent_pil_computation(tmp_path: Path,
                                                                            interpolation: str) -> None:
    rng = np.random.default_rng(7)
    sizes = [(60, 90), (97, 53), (48, 48), (71, 120)]  # landscape, portrait, square; odd margins
    root = tmp_path / "photos"
    pictures = []
    for i, (h, w) in enumerate(sizes):
        picture = _photo(rng, h, w)
        pictures.append(picture)
        (root / f"class_{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture).save(root / f"class_{i % 2}" / f"{i}.png")
    transform = Transform(border=2, resize=40, crop=(33, 33), interpolation=interpolation)
    prepared = prepare_testset(root, out_dir=tmp_path / "out", transform=transform)
    assert (prepared.channels, prepared.height, prepared.width) == (3, 33, 33)
    assert prepared.transform == transform
    images = np.concatenate([read_shard(s.path.read_bytes())[0] for s in prepared.shards])
    # ImageFolder order: class_0 holds pictures 0 and 2, class_1 pictures 1 and 3
    for got, i in zip(images, [0, 2, 1, 3], strict=True):
        want = _independent(pictures[i], 2, 40, 33, INTERPOLATIONS[interpolation])
        assert np.array_equal(got, want), (interpolation, sizes[i])
    # the same from an npz of one size, which streams through the same transform
    np.savez(tmp_path / "one.npz", images=np.stack([pictures[0]] * 3), labels=np.array([0, 1, 1]))
    from_npz = prepare_testset(tmp_path / "one.npz", out_dir=tmp_path / "npz", transform=transform)
    stored = read_shard(from_npz.shards[0].path.read_bytes())[0]
    assert all(np.array_equal(image, _independent(pictures[0], 2, 40, 33, INTERPOLATIONS[interpolation]))
               for image in stored)


def test_border_only_and_size_keep_working(tmp_path: Path, digits_npz: Path) -> None:
    bordered = prepare_testset(digits_npz, out_dir=tmp_path / "b", transform=Transform(border=1))
    images = read_shard(bordered.shards[0].path.read_bytes())[0]
    source = np.load(digits_npz)["images"]
    assert (bordered.height, bordered.width) == (6, 6)
    assert np.array_equal(images[:, 0], source[: len(images), 1:7, 1:7])
    sized = prepare_testset(digits_npz, out_dir=tmp_path / "s", size=(16, 12))
    assert (sized.height, sized.width) == (16, 12) and sized.transform == Transform(size=(16, 12))
    want = np.asarray(Image.fromarray(source[0]).resize((12, 16), Image.Resampling.BILINEAR))
    assert np.array_equal(read_shard(sized.shards[0].path.read_bytes())[0][0, 0], want)
    assert prepare_testset(digits_npz, out_dir=tmp_path / "n").transform is None


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"resize": 32, "crop": (40, 40)}, "--crop 40x40 is larger than --resize 32"),
    ({"resize": 32}, "give --crop too"),
    ({"resize": 32, "crop": (24, 24), "size": (24, 24)}, "give one or the other"),
    ({"border": -1}, "--border is -1"),
    ({"crop": (24, 24), "interpolation": "cubic"}, "--interpolation 'cubic'"),
])
def test_bad_transforms_are_clear_errors(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(expected)):
        Transform(**kwargs)


def test_images_too_small_for_the_transform_write_nothing(tmp_path: Path, digits_npz: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(InvalidArgument, match="leave nothing after a border of 4"):
        prepare_testset(digits_npz, out_dir=out, transform=Transform(border=4))
    with pytest.raises(InvalidArgument, match=r"image 0 is 8x8 .*smaller than the crop 10x10"):
        prepare_testset(digits_npz, out_dir=out, transform=Transform(crop=(10, 10)))


def test_parse_class_map() -> None:
    assert parse_class_map([[409, 530], [414]]) == ([[409, 530], [414]], ())
    assert parse_class_map({"Alarm clock": [409, 530], "Backpack": [414]}) == (
        [[409, 530], [414]], ("Alarm clock", "Backpack"))
    for bad, expected in (([], "is empty"), ([[1], []], "class 1 of the class map is []"),
                          ([[1], ["x"]], "class 1"), ({"a": [True]}, "class 'a'"), ("x", "JSON list of lists")):
        with pytest.raises(InvalidArgument, match=re.escape(expected)):
            parse_class_map(bad)
