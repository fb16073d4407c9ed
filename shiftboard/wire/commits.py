"""Shards' predictions on the wire of ``CommitShards``: numpy arrays <-> packed little-endian bytes.

A worker commits several shards at once (:meth:`shiftboard.client.Client.commit_shards`): each shard's
top-1 (int32), top-5 (5 x int32, -1 pads) and confidence (float32), plus a reference's restricted top-1
per shift (int32), travel as ``bytes`` fields of ``ShardPart`` messages. A part holds consecutive
samples of one shard; a shard larger than one message is split over several parts, in sample order,
so every message stays under the gateway's 8 MiB limit whatever the shard size. Top-1 may be left
out: it is then top-5's first class (what :func:`~shiftboard.domain.scoring.score` gives).

:func:`commit_requests` builds the stream; :class:`Assembler` is the gateway's side, which checks the
parts against the test set's manifest and joins them into one :class:`ShardPredictions` per shard.
Pure numpy and protobuf: no gRPC here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from shiftboard.domain.errors import InvalidArgument, ResourceExhausted
from shiftboard.v1 import shiftboard_pb2 as pb

__all__ = ["COMMIT_SAMPLES", "MAX_STREAM_SAMPLES", "MESSAGE_BYTES", "Assembler", "ShardPredictions", "batches",
           "commit_requests"]

#: Samples a worker gathers before it commits them in one stream (fewer when time is up: see
#: :func:`~shiftboard.flows.evaluate.run_evaluation`); about 3.3 MiB on the wire. It is DuckDB's
#: row-group size, and a batch never goes past it unless one shard does: a transaction of up to one row
#: group appends to the table's open row group, one just past it writes a full row group and leaves a
#: partial one that a later checkpoint rewrites, leaving free blocks (measured on 2 cores, 10^7 rows:
#: 122,549-row transactions 2.4 M rows/s and 9.0 bytes a row; 65,536-row 2.1 M rows/s, 9.5 bytes;
#: 130,000-row 16 bytes, 6 of them free blocks).
COMMIT_SAMPLES = 122_880
#: Target size of one CommitShards message (the gateway accepts up to 8 MiB).
MESSAGE_BYTES = 4 * 1024 * 1024
#: Samples one CommitShards stream may carry, unless it carries a single shard (any shard commits).
MAX_STREAM_SAMPLES = 1 << 23
_I4, _F4 = np.dtype("<i4"), np.dtype("<f4")


@dataclass(frozen=True)
class ShardPredictions:
    """One shard's predictions in sample order: ``top5`` [N, 5], ``confidence`` [N], optional ``top1``
    [N] (None: ``top5[:, 0]``), the seconds spent on it, and a reference's restricted top-1 per shift."""

    index: int
    first_sample: int
    top5: NDArray[np.int32]
    confidence: NDArray[np.float32]
    top1: NDArray[np.int32] | None = None
    seconds: float = 0.0
    restricted: Mapping[str, NDArray[np.int32]] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return len(self.confidence)

    @property
    def top1_or_first(self) -> NDArray[np.int32]:
        return self.top1 if self.top1 is not None else self.top5[:, 0]

    @classmethod
    def from_message(cls, index: int, predictions: pb.Predictions, seconds: float = 0.0,
                     restricted: Sequence[pb.RestrictedTop1] = ()) -> ShardPredictions:
        """From a ``Predictions`` message of consecutive samples (its ``sample`` gives the first)."""
        n = len(predictions.confidence)
        return cls(index=index, first_sample=int(predictions.sample[0]) if len(predictions.sample) else 0,
                   top5=np.asarray(predictions.top5, dtype=np.int32).reshape(n, 5),
                   confidence=np.asarray(predictions.confidence, dtype=np.float32),
                   top1=np.asarray(predictions.top1, dtype=np.int32), seconds=seconds,
                   restricted={r.shift: np.asarray(r.top1, dtype=np.int32) for r in restricted})


def _part(shard: ShardPredictions, start: int, stop: int, seconds: float) -> pb.ShardPart:
    part = pb.ShardPart(
        shard_index=shard.index, first_sample=shard.first_sample + start, samples=stop - start,
        top5=np.ascontiguousarray(shard.top5[start:stop], dtype=_I4).tobytes(),
        confidence=np.ascontiguousarray(shard.confidence[start:stop], dtype=_F4).tobytes(), seconds=seconds)
    if shard.top1 is not None:
        part.top1 = np.ascontiguousarray(shard.top1[start:stop], dtype=_I4).tobytes()
    for shift, top1 in shard.restricted.items():
        part.restricted.add(shift=shift, top1=np.ascontiguousarray(top1[start:stop], dtype=_I4).tobytes())
    return part


def commit_requests(key: pb.EvaluationKey, shards: Iterable[ShardPredictions],
                    message_bytes: int = MESSAGE_BYTES) -> Iterator[pb.CommitShardsRequest]:
    """The messages of one CommitShards stream: the key first, parts of about ``message_bytes`` each."""
    request = pb.CommitShardsRequest(key=key)
    size = 0
    for shard in shards:
        n = shard.samples
        if shard.top5.shape != (n, 5) or (shard.top1 is not None and len(shard.top1) != n) or \
                any(len(t) != n for t in shard.restricted.values()):
            raise InvalidArgument(f"shard {shard.index}: top-5 must be [{n}, 5] and top-1 and restricted top-1 "
                                  f"hold {n} values, one per confidence")
        per_sample = 24 + 4 * (shard.top1 is not None) + 4 * len(shard.restricted)
        start = 0
        while True:
            stop = min(n, start + max(1, (message_bytes - size) // per_sample))
            request.parts.append(_part(shard, start, stop, shard.seconds if start == 0 else 0.0))
            size += (stop - start) * per_sample + 64
            if size >= message_bytes:
                yield request
                request, size = pb.CommitShardsRequest(), 0
            start = stop
            if start >= n:
                break
    if len(request.parts) or request.HasField("key"):
        yield request


class Assembler:
    """The gateway's side of one CommitShards stream: parts checked against the manifest, joined per shard."""

    def __init__(self, firsts: Sequence[int], counts: Sequence[int], testset: str) -> None:
        """``firsts`` and ``counts``: each shard's first sample and sample count, by shard index."""
        self.firsts = firsts
        self.counts = counts
        self.testset = testset
        self._parts: dict[int, list[pb.ShardPart]] = {}
        self._received: dict[int, int] = {}
        self.samples = 0

    def add(self, part: pb.ShardPart) -> None:
        i = part.shard_index
        if i >= len(self.counts):
            raise InvalidArgument(f"test set {self.testset} has {len(self.counts)} shards, not a shard {i}")
        first, count = int(self.firsts[i]), int(self.counts[i])
        have = self._received.get(i, 0)
        if have >= count and i in self._received:
            raise InvalidArgument(f"shard {i} sent twice in one CommitShards stream: send each shard once")
        if part.first_sample != first + have:
            raise InvalidArgument(f"shard {i} covers samples {first}..{first + count - 1}: send its parts in "
                                  f"order, the next from sample {first + have}")
        n = part.samples
        if have + n > count:
            raise InvalidArgument(f"shard {i} has {count} samples; its parts hold more")
        if len(part.top5) != 20 * n or len(part.confidence) != 4 * n or len(part.top1) not in (0, 4 * n) or \
                any(len(r.top1) != 4 * n for r in part.restricted):
            raise InvalidArgument(f"a part of shard {i} with {n} samples must hold {20 * n} bytes of top-5, "
                                  f"{4 * n} of confidences and of each (restricted) top-1 it sends")
        earlier = self._parts.get(i)
        if earlier and ([r.shift for r in earlier[0].restricted] != [r.shift for r in part.restricted]
                        or bool(earlier[0].top1) != bool(part.top1)):
            raise InvalidArgument(f"the parts of shard {i} differ in what they carry: send top-1 and the same "
                                  "restricted top-1 in every part")
        self.samples += n
        if self.samples > MAX_STREAM_SAMPLES and len(self._received) + (i not in self._received) > 1:
            raise ResourceExhausted(f"one CommitShards stream carries at most {MAX_STREAM_SAMPLES:,} samples "
                                    "(or one shard of any size): commit fewer shards per stream")
        self._parts.setdefault(i, []).append(part)
        self._received[i] = have + n

    def shards(self) -> list[ShardPredictions]:
        """Every shard received, in the order first seen; INVALID_ARGUMENT when one is incomplete."""
        out = []
        for i, parts in self._parts.items():
            count = int(self.counts[i])
            if self._received[i] != count:
                raise InvalidArgument(f"shard {i} has {count} samples; the stream sent "
                                      f"{self._received[i]}: send every sample of each shard")
            out.append(_joined(i, int(self.firsts[i]), count, parts))
        return out


def _joined(index: int, first_sample: int, n: int, parts: list[pb.ShardPart]) -> ShardPredictions:
    def column(get: str, dtype: np.dtype) -> NDArray:  # type: ignore[type-arg]
        data = b"".join(getattr(p, get) for p in parts) if len(parts) > 1 else getattr(parts[0], get)
        return np.frombuffer(data, dtype=dtype)

    restricted = {}
    for k, r in enumerate(parts[0].restricted):
        data = b"".join(p.restricted[k].top1 for p in parts)
        restricted[r.shift] = np.frombuffer(data, dtype=_I4).astype(np.int32, copy=False)
    if len(restricted) != len(parts[0].restricted):
        raise InvalidArgument(f"restricted top-1 for one shift sent twice with shard {index}: send "
                              "each shift once")
    return ShardPredictions(
        index=index, first_sample=first_sample,
        top5=column("top5", _I4).astype(np.int32, copy=False).reshape(n, 5),
        confidence=column("confidence", _F4).astype(np.float32, copy=False),
        top1=column("top1", _I4).astype(np.int32, copy=False) if parts[0].top1 else None,
        seconds=sum(p.seconds for p in parts), restricted=restricted)


def batches(shards: Iterable[ShardPredictions], samples: int = COMMIT_SAMPLES) -> Iterator[list[ShardPredictions]]:
    """Consecutive shards grouped as a worker batches them by size: a group holds at most ``samples``
    samples, unless it is one larger shard."""
    group: list[ShardPredictions] = []
    held = 0
    for shard in shards:
        if group and held + shard.samples > samples:
            yield group
            group, held = [], 0
        group.append(shard)
        held += shard.samples
        if held >= samples:
            yield group
            group, held = [], 0
    if group:
        yield group
