"""Shard decoding on the evaluation path and the naming of Triton models (no servers needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from shiftboard.adapters.triton.deployer import triton_model_name
from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.names import validate_name
from shiftboard.domain.shards import map_verified_shard, read_shard, sha256_bytes, write_shards
from shiftboard.flows.inference import decode_shard
from shiftboard.v1 import shiftboard_pb2 as pb


def _shard_bytes(tmp_path: Path, n: int = 50,
                 chw: tuple[int, int, int] = (3, 4, 5)) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, *chw), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.int64)
    info = write_shards([(images, labels)], num_samples=n, out_dir=tmp_path, shard_samples=n)[0]
    return info.path.read_bytes(), images, labels


def test_mapping_a_verified_shard_equals_read_shard_without_copying(tmp_path: Path) -> None:
    data, images, labels = _shard_bytes(tmp_path)
    got_images, got_labels = map_verified_shard(data)
    want_images, want_labels = read_shard(data)
    for got, want in ((got_images, want_images), (got_labels, want_labels)):
        assert got.dtype == want.dtype and got.shape == want.shape and (got == want).all()
    assert (got_images == images).all() and (got_labels == labels).all()
    assert np.shares_memory(got_images, np.frombuffer(data, dtype=np.uint8))


def test_np_savez_archives_map_too(tmp_path: Path) -> None:
    images = np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 1, 8, 8)
    labels = np.array([3, 4], dtype=np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels)
    got_images, got_labels = map_verified_shard(buffer.getvalue())
    assert (got_images == images).all() and got_labels.tolist() == [3, 4]


def test_anything_unusual_falls_back_to_read_shards_checks(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=np.zeros((2, 1, 8, 8), np.uint8), labels=np.zeros(2, np.int64))
    with pytest.raises(InvalidArgument, match="compressed"):
        map_verified_shard(buffer.getvalue())
    with pytest.raises(InvalidArgument, match="not an npz"):
        map_verified_shard(b"not a zip at all")
    buffer = io.BytesIO()
    np.savez(buffer, images=np.zeros((2, 1, 8, 8), np.float32), labels=np.zeros(2, np.int64))
    with pytest.raises(InvalidArgument, match="uint8"):
        map_verified_shard(buffer.getvalue())


def test_decode_shard_checks_checksum_count_and_shape(tmp_path: Path) -> None:
    data, images, _ = _shard_bytes(tmp_path)
    shard = pb.Shard(index=2, first_sample=100, num_samples=50, sha256=sha256_bytes(data), key="k")
    got, _ = decode_shard(data, shard, (3, 4, 5))
    assert (got == images).all()
    with pytest.raises(InvalidArgument, match="does not match its sha256"):
        decode_shard(data, pb.Shard(index=2, num_samples=50, sha256="0" * 64), (3, 4, 5))
    with pytest.raises(InvalidArgument, match=r"the model expect \(50, 1, 4, 5\)"):
        decode_shard(data, shard, (1, 4, 5))
    with pytest.raises(InvalidArgument, match=r"expect \(49, 3, 4, 5\)"):
        decode_shard(data, pb.Shard(index=2, num_samples=49), (3, 4, 5))  # no checksum: read_shard


@pytest.mark.parametrize(("name", "version"), [
    ("resnet18", "v1"), ("a.b", "c"), ("a", "b.c"), ("x" * 64, "y" * 64), ("-odd", "..1"),
])
def test_triton_model_names_are_valid_and_unique(name: str, version: str) -> None:
    model_name = triton_model_name(name, version, "abc")
    assert validate_name(model_name) == model_name
    assert model_name != triton_model_name(name, version, "abd")
    others = {triton_model_name(n, v) for n, v in [("a.b", "c"), ("a", "b.c"), ("a", "b"), ("ab", "")]}
    assert len(others) == 4
