"""Shards: the unit in which a test set is stored in the object store and evaluated.

A shard is an **uncompressed** ``.npz`` archive holding exactly two members, in this order:

* ``images.npy`` -- ``uint8``, shape ``(N, C, H, W)`` (channels first), C-order;
* ``labels.npy`` -- ``int64`` little-endian (``<i8``), shape ``(N,)``.

The bytes are what ``np.savez(f, images=..., labels=...)`` writes on Linux today (a test checks this),
but the archive is written here with a fixed :class:`zipfile.ZipInfo` (1980-01-01 timestamp, Unix
attributes, no compression) so that the same samples always give byte-identical shards and therefore
the same sha256, whatever the clock or platform says. A golden-hash test catches any drift that a
numpy or Python upgrade might bring.

Writing streams: :func:`write_shards` consumes batches and writes each sample once, holding one batch
in memory, never a whole shard. Reading (:func:`read_shard`, :func:`verify_shard`,
:func:`map_verified_shard`) is the one parser of the format, for the gateway and the worker alike:
it never unpickles, refuses compressed members (no decompression bombs), checks every key, dtype and
shape before trusting the data, and wraps the members where they lie in the bytes (no copy).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.typing import NDArray

from shiftboard.domain.errors import InvalidArgument

__all__ = [
    "ShardInfo", "encode_shard", "map_verified_shard", "read_npy_header", "read_shard", "sha256_bytes",
    "sha256_file", "shard_file_name", "verify_shard", "write_shards",
]

Batch = tuple[NDArray[np.uint8], NDArray[np.int64]]
ProgressCallback = Callable[[int, int], None]

_IMAGES = "images.npy"
_LABELS = "labels.npy"
_LABEL_DTYPE = np.dtype("<i8")
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say; any constant would do
_CHUNK = 1 << 20
_MAX_HEADER = 1 << 16  # bytes of a member read for its .npy header (numpy allows up to 10,000)


@dataclass(frozen=True)
class ShardInfo:
    """One written shard: where it sits in the test set and how to check its bytes."""

    index: int
    first_sample: int
    num_samples: int
    size_bytes: int
    sha256: str
    path: Path


def sha256_bytes(data: bytes) -> str:
    """The lowercase hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """The lowercase hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def shard_file_name(index: int) -> str:
    """The file name of shard ``index`` (``shard-000000.npz``); names sort in shard order."""
    return f"shard-{index:06d}.npz"


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # Unix, so the bytes do not depend on the writing platform
    info.external_attr = 0o600 << 16  # what zipfile (and so np.savez) sets by default
    return info


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> dict[str, object]:
    return {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}


class _ShardWriter:
    """Writes one shard whose sample count is known up front, batch by batch."""

    def __init__(self, fileobj: IO[bytes], num_samples: int, chw: tuple[int, int, int]) -> None:
        self._zip = zipfile.ZipFile(fileobj, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)
        # force_zip64 as numpy does (gh-10776), which also keeps the bytes equal to np.savez's.
        self._images = self._zip.open(_member(_IMAGES), mode="w", force_zip64=True)
        header = _npy_header((num_samples, *chw), np.dtype(np.uint8))
        np.lib.format.write_array_header_1_0(self._images, header)
        self._labels: list[NDArray[np.int64]] = []
        self._expected = num_samples
        self._written = 0

    def write(self, images: NDArray[np.uint8], labels: NDArray[np.int64]) -> None:
        self._images.write(np.ascontiguousarray(images).data)
        self._labels.append(labels)
        self._written += len(labels)

    def abort(self) -> None:
        """Release the archive after a failure; the caller deletes the partial file."""
        with contextlib.suppress(Exception):  # the partial shard is discarded whatever happens here
            self._images.close()
            self._zip.close()

    def close(self) -> None:
        if self._written != self._expected:
            raise AssertionError(f"shard holds {self._written} samples, expected {self._expected}")
        self._images.close()
        labels = np.concatenate(self._labels).astype(_LABEL_DTYPE, copy=False)
        with self._zip.open(_member(_LABELS), mode="w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, _npy_header(labels.shape, labels.dtype))
            f.write(np.ascontiguousarray(labels).data)
        self._zip.close()


def _check_batch(images: NDArray[np.uint8], labels: NDArray[np.int64]) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise InvalidArgument(
            f"a batch of images is {getattr(images, 'dtype', type(images).__name__)} with shape "
            f"{getattr(images, 'shape', '?')}: give uint8 arrays shaped (N, C, H, W)"
        )
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.shape != images.shape[:1]:
        raise InvalidArgument(
            f"a batch of labels is {getattr(labels, 'dtype', type(labels).__name__)} with shape "
            f"{getattr(labels, 'shape', '?')} for {len(images)} images: give one int64 label per image"
        )


class _ShardCutter:
    """Cuts a stream of batches into shard files in ``out``, one open shard at a time."""

    def __init__(self, out: Path, *, num_samples: int, shard_samples: int) -> None:
        self.out = out
        self.num_samples = num_samples
        self.shard_samples = shard_samples
        self.shards: list[ShardInfo] = []
        self.done = 0  # samples of the stream consumed so far
        self._chw: tuple[int, int, int] | None = None
        self._writer: _ShardWriter | None = None
        self._file: IO[bytes] | None = None
        self._first = self._length = self._written = 0  # the open shard's first sample, size, progress

    def add(self, images: NDArray[np.uint8], labels: NDArray[np.int64]) -> None:
        """Check one batch against the stream so far and write it, across shard boundaries."""
        _check_batch(images, labels)
        chw = (images.shape[1], images.shape[2], images.shape[3])
        if self._chw is None:
            self._chw = chw
        elif chw != self._chw:
            raise InvalidArgument(
                f"a batch has images of shape {images.shape[1:]} after {self.done} samples of shape {self._chw}: "
                "bring every image to one (C, H, W)"
            )
        if self.done + len(labels) > self.num_samples:
            raise InvalidArgument(f"the stream holds more than the declared {self.num_samples} samples")
        pos = 0
        while pos < len(labels):
            writer = self._writer or self._open(self.done + pos)
            take = min(self._length - self._written, len(labels) - pos)
            writer.write(images[pos:pos + take], labels[pos:pos + take])
            pos += take
            self._written += take
            if self._written == self._length:
                self._finish()
        self.done += len(labels)

    def end(self) -> list[ShardInfo]:
        """The shards written, once the stream has ended; it must have held every declared sample."""
        if self.done != self.num_samples:
            raise InvalidArgument(f"the stream ended after {self.done} of the declared {self.num_samples} samples")
        return self.shards

    def abort(self) -> None:
        """Remove a shard left half-written; the finished ones stay."""
        if self._file is None:
            return
        if self._writer is not None:
            self._writer.abort()
        self._file.close()
        self._path().unlink(missing_ok=True)
        self._writer, self._file = None, None

    def _path(self) -> Path:
        return self.out / shard_file_name(len(self.shards))

    def _open(self, first: int) -> _ShardWriter:
        assert self._chw is not None
        self._first, self._written = first, 0
        self._length = min(self.shard_samples, self.num_samples - first)
        self._file = open(self._path(), "wb")  # noqa: SIM115 (closed in _finish or abort)
        self._writer = _ShardWriter(self._file, self._length, self._chw)
        return self._writer

    def _finish(self) -> None:
        assert self._writer is not None and self._file is not None
        self._writer.close()
        self._file.close()
        path = self._path()
        self.shards.append(ShardInfo(index=len(self.shards), first_sample=self._first, num_samples=self._length,
                                     size_bytes=path.stat().st_size, sha256=sha256_file(path), path=path))
        self._writer, self._file = None, None


def write_shards(
    batches: Iterable[Batch],
    *,
    num_samples: int,
    out_dir: str | Path,
    shard_samples: int,
    on_progress: ProgressCallback | None = None,
) -> list[ShardInfo]:
    """Cut a stream of ``(images, labels)`` batches into shard files in ``out_dir``.

    ``images`` are uint8 ``(n, C, H, W)`` and ``labels`` int64 ``(n,)``; batches may be of any size
    and are split across shard boundaries. Shard ``i`` is written to
    ``out_dir / shard_file_name(i)`` (created or overwritten) and holds ``shard_samples`` samples,
    the last one the remainder. ``num_samples`` is the length of the whole stream; a stream that
    turns out longer or shorter raises :class:`InvalidArgument`. ``on_progress(done, total)`` is
    called after each batch. Returns one :class:`ShardInfo` per shard, in order.
    """
    if isinstance(shard_samples, bool) or not isinstance(shard_samples, int) or shard_samples < 1:
        raise InvalidArgument(f"shard_samples is {shard_samples!r}: give a whole number of at least 1")
    if num_samples < 1:
        raise InvalidArgument(f"num_samples is {num_samples!r}: a test set needs at least one sample")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cutter = _ShardCutter(out, num_samples=num_samples, shard_samples=shard_samples)
    try:
        for images, labels in batches:
            cutter.add(images, labels)
            if on_progress is not None:
                on_progress(cutter.done, num_samples)
        return cutter.end()
    except BaseException:
        cutter.abort()
        raise


def encode_shard(images: NDArray[np.uint8], labels: NDArray[np.int64]) -> bytes:
    """The bytes of one shard holding ``images`` (uint8 NCHW) and ``labels`` (int64), as written
    by :func:`write_shards`."""
    _check_batch(images, labels)
    if len(labels) == 0:
        raise InvalidArgument("a shard needs at least one sample")
    buffer = io.BytesIO()
    writer = _ShardWriter(buffer, len(labels), (images.shape[1], images.shape[2], images.shape[3]))
    writer.write(images, labels)
    writer.close()
    return buffer.getvalue()


def read_npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read a ``.npy`` stream's magic and header: ``(shape, fortran_order, dtype)``; the stream is
    left at the first data byte. Raises ``ValueError`` for anything that is not ``.npy`` 1.0/2.0."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)  # type: ignore[no-any-return]
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)  # type: ignore[no-any-return]
    raise ValueError(f"unsupported .npy format version {version}")


def _member_array(data: bytes, info: zipfile.ZipInfo, dtype: np.dtype, ndim: int,
                  check_crc: bool) -> NDArray[np.generic]:
    """The ``.npy`` member ``info`` of the archive ``data`` as a read-only view into ``data``."""
    name = info.filename
    if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
        raise InvalidArgument(
            f"shard member {name!r} is compressed: shards must be uncompressed (np.savez, "
            "not np.savez_compressed)"
        )
    if info.flag_bits & 0x1:
        raise InvalidArgument(f"shard member {name!r} is encrypted: write shards with np.savez")
    local = info.header_offset
    if data[local:local + 4] != b"PK\x03\x04":
        raise InvalidArgument(f"shard member {name!r} is corrupt (no local header): re-upload the shard")
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    start = local + 30 + name_len + extra_len
    if start + info.file_size > len(data):
        raise InvalidArgument(f"shard member {name!r} is truncated: re-upload the shard")
    if check_crc and zlib.crc32(memoryview(data)[start:start + info.file_size]) != info.CRC:
        raise InvalidArgument(f"shard member {name!r} is corrupt (Bad CRC-32): re-upload the shard")
    header = io.BytesIO(data[start:start + min(info.file_size, _MAX_HEADER)])
    try:
        shape, fortran, found = read_npy_header(header)
    except ValueError as e:
        raise InvalidArgument(f"shard member {name!r} is not a valid .npy array ({e}): rewrite the shard") from e
    if found != dtype or len(shape) != ndim:
        raise InvalidArgument(
            f"shard member {name!r} is {found} with {len(shape)} dimensions: "
            f"it must be {dtype} with {ndim} dimensions"
        )
    count = int(np.prod(shape, dtype=np.int64))
    expected = count * dtype.itemsize
    if info.file_size - header.tell() != expected:
        raise InvalidArgument(
            f"shard member {name!r} declares shape {shape} ({expected} bytes) but holds "
            f"{info.file_size - header.tell()} bytes: rewrite the shard"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=start + header.tell())
    return array.reshape(shape, order="F" if fortran else "C")


def read_shard(data: bytes, *, check_crc: bool = True) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Parse a shard's bytes into ``(images, labels)`` without unpickling or copying anything.

    The archive must hold exactly ``images.npy`` (uint8, 4-D, 1 or 3 channels) and ``labels.npy``
    (int64, 1-D, one per image), uncompressed, with at least one sample; anything else raises
    :class:`InvalidArgument`. Each member is located from the zip directory and wrapped where it lies,
    so the arrays are read-only views into ``data``; copy them to modify. ``check_crc`` checks each
    member's CRC-32; bytes whose sha256 was checked already (:func:`map_verified_shard`) need not.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:  # reads the central directory only
            names = sorted(i.filename for i in archive.infolist())
            if names != [_IMAGES, _LABELS]:
                raise InvalidArgument(
                    f"shard holds members {names}: it must hold exactly 'images.npy' and 'labels.npy' "
                    "(np.savez(f, images=..., labels=...))"
                )
            members = archive.getinfo(_IMAGES), archive.getinfo(_LABELS)
        images = _member_array(data, members[0], np.dtype(np.uint8), 4, check_crc)
        labels = _member_array(data, members[1], _LABEL_DTYPE, 1, check_crc)
    # A damaged archive surfaces as any of these; to the uploader they all mean one thing.
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError, ValueError,
            NotImplementedError, struct.error, OverflowError) as e:
        raise InvalidArgument(f"shard is not an npz (zip) archive that can be read ({e}): "
                              "write shards with np.savez and upload them again") from e
    if images.shape[0] == 0:
        raise InvalidArgument("shard holds zero samples: every shard needs at least one")
    if images.shape[1] not in (1, 3):
        raise InvalidArgument(
            f"shard images have shape {images.shape}: give (N, C, H, W) with C = 1 or 3, channels first"
        )
    if labels.shape[0] != images.shape[0]:
        raise InvalidArgument(
            f"shard holds {labels.shape[0]} labels for {images.shape[0]} images: give one label per image"
        )
    return images, labels  # type: ignore[return-value]


def map_verified_shard(data: bytes) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """:func:`read_shard` of bytes whose sha256 already matched the manifest: the same checks and
    views, without the CRC-32 pass over every byte (the worker's path; ~6 us per 3x32x32 sample
    through ``zipfile``, which copies each member and recomputes its CRC)."""
    return read_shard(data, check_crc=False)


def verify_shard(
    data: bytes, *, sha256: str, num_samples: int, channels: int, height: int, width: int, num_classes: int
) -> None:
    """Check an uploaded shard against what the manifest declares; raise :class:`InvalidArgument`
    naming the first mismatch (checksum, structure, shape, or labels outside ``[0, num_classes)``)."""
    actual = sha256_bytes(data)
    if actual != sha256.lower():
        raise InvalidArgument(
            f"shard checksum mismatch: expected sha256 {sha256}, got {actual}: "
            "the upload was altered or truncated; upload the shard again"
        )
    images, labels = read_shard(data)
    declared = (num_samples, channels, height, width)
    if images.shape != declared:
        raise InvalidArgument(
            f"shard images have shape {images.shape} but the manifest declares {declared} (N, C, H, W): "
            "prepare the test set again with the declared size and channels"
        )
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise InvalidArgument(
            f"shard has {int(bad.sum())} labels outside [0, {num_classes}) (min {int(labels.min())}, "
            f"max {int(labels.max())}): labels must be class indices below num_classes"
        )
