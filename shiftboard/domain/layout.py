"""The compact layout of stored predictions (catalog table ``predictions``, schema version 6 on).

One row per sample: ``(evaluation_id INTEGER, sample BIGINT, top5 BIGINT, top5_hi BIGINT, confidence
INTEGER)``, about 9.4 bytes a prediction with 1,000 classes after DuckDB's compression (measured by
``bench/bench_ingest.py``). What is not stored per row:

* **labels** are the test set's own (``shard_labels``, once per test set);
* **correctness** is one bit per sample, packed per (evaluation, shard) in ``evaluation_shards.correct``
  (numpy ``packbits`` order) beside its count ``correct_count``, written in the commit's transaction;
* **top-1** is the first top-5 class; a row whose top-1 differs (a caller's own tie rule) keeps it in
  ``prediction_top1``. The platform's worker always sends top-1 = top-5[0].

**Top-5.** Class ``c`` of rank ``j`` is stored as ``c + 1`` (0: the ``-1`` pad) in ``b`` bits, ``b``
being ``evaluation_shards.class_bits`` of the row's shard: the bit length of the class count (10 for
1,000 classes). When ``5 * b <= 63`` (up to 4,095 classes) every rank lies in ``top5`` at bits
``[j*b, (j+1)*b)`` and ``top5_hi`` is 0; otherwise ranks 0-2 lie in ``top5`` and ranks 3-4 in ``top5_hi``
(at bits ``[(j-3)*b, (j-2)*b)``), which holds up to :data:`MAX_PACKED_CLASSES` classes (b = 21).

**Confidence** is quantized to 20 bits: ``q = round(p * 1048575)``, read back as ``q / 1048575``, so a
stored confidence is within 4.8e-7 of the float32 that was sent (plus float32 rounding, 3e-8): far
below what calibration or a 1e-5 comparison needs, and 0.25 bytes a prediction less than 22 bits.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: Scale of the stored confidence: 2**20 - 1 steps over [0, 1].
CONFIDENCE_SCALE = (1 << 20) - 1
#: The largest class count whose top-5 the layout packs (3 ranks of 21 bits in one BIGINT).
MAX_PACKED_CLASSES = (1 << 21) - 1
TOP_K = 5


def class_bits(num_classes: int) -> int:
    """Bits per stored class for a model (or class map) of ``num_classes`` classes (values 0..classes)."""
    if not 1 <= num_classes <= MAX_PACKED_CLASSES:
        raise ValueError(f"{num_classes} classes: the prediction layout holds 1 to {MAX_PACKED_CLASSES}")
    return max(1, int(num_classes).bit_length())


def _low_ranks(bits: int) -> int:
    return TOP_K if TOP_K * bits <= 63 else 3


def pack_top5(top5: NDArray[np.integer], bits: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(top5, top5_hi)`` columns of ``top5`` [N, 5] (classes, -1 pads) at ``bits`` bits per class."""
    values = top5.astype(np.int64) + 1
    low = _low_ranks(bits)
    lo = values[:, 0].copy()
    for j in range(1, low):
        lo |= values[:, j] << (j * bits)
    hi = np.zeros(len(values), dtype=np.int64)
    for j in range(low, TOP_K):
        hi |= values[:, j] << ((j - low) * bits)
    return lo, hi


def unpack_top5(lo: NDArray[np.int64], hi: NDArray[np.int64], bits: int) -> NDArray[np.int32]:
    """The inverse of :func:`pack_top5`: ``top5`` [N, 5] int32 with -1 pads."""
    low = _low_ranks(bits)
    mask = (1 << bits) - 1
    out = np.empty((len(lo), TOP_K), dtype=np.int32)
    for j in range(TOP_K):
        column, shift = (lo, j * bits) if j < low else (hi, (j - low) * bits)
        out[:, j] = (column >> shift) & mask
    out -= 1
    return out


def quantize_confidence(confidence: NDArray[np.floating]) -> NDArray[np.int32]:
    """Stored confidences of probabilities in [0, 1] (clipped there)."""
    scaled = np.clip(confidence.astype(np.float64), 0.0, 1.0) * CONFIDENCE_SCALE
    return np.rint(scaled).astype(np.int32)


def confidence_of(stored: NDArray[np.integer]) -> NDArray[np.float32]:
    return (stored.astype(np.float64) / CONFIDENCE_SCALE).astype(np.float32)


def unpack_bits(data: bytes, samples: int) -> NDArray[np.bool_]:
    """One shard's correctness flags from its packed bits."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=samples).astype(bool)
