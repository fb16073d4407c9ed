"""How evaluations are named, and how a shard's labels are stored (``shard_labels``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shiftboard.v1 import shiftboard_pb2 as pb


@dataclass(frozen=True)
class Pair:
    model: str
    version: str
    testset: str


def key_text(key: pb.EvaluationKey) -> str:
    return f"{key.model}:{key.version} on {key.testset}"


def label_bytes(labels: np.ndarray) -> bytes:
    """A shard's labels as stored in ``shard_labels``: int32 little-endian, in sample order."""
    return np.ascontiguousarray(labels, dtype="<i4").tobytes()


def labels_of(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i4")
