"""The shared resampling weights of a sample list, and the correct counts they give.

Pure maths (numpy): no gRPC, no Streamlit, no I/O.

Resample *r* of a *sample list* (a test set's samples, or a reference's samples kept by a shift's
class sub-list: :func:`sample_list_key`) of size *n* is the multinomial count of each sample among *n*
uniform draws (``bincount`` of ``integers(0, n, n)``), drawn from a generator seeded by
``(seed, digest of the list's key, n, r)`` and nothing else (:func:`resample_weights`). So the first
*R* resamples do not depend on how many are asked, on the chunking, on the models or on the baseline,
and a model's resampled correct counts on a list, ``correct @ weights.T`` (:func:`resampled_correct`:
R integers), can be computed once and stored. :data:`WEIGHTS_METHOD` names the algorithm (and numpy's
version, whose generators may change between releases), so that stored counts made another way are
recognised and made again.

Cost: drawing the weights is ~2.5 ms per resample of 200,000 samples on one core (two threads draw
rows in parallel: numpy releases the GIL), the product ~1 ms per resample for 100 models; weights go
in chunks of about :data:`_CHUNK_ENTRIES` entries (32 MB as float32), so memory stays bounded
(:func:`chunk_sizes` cuts the bootstrap's work the same way).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["WEIGHTS_METHOD", "check_seed", "chunk_sizes", "resample_weights", "resampled_correct",
           "sample_list_key"]

#: Entries of one chunk of resampling weights (resamples x samples): ~32 MB as float32.
_CHUNK_ENTRIES = 1 << 23
#: Threads drawing the rows of a chunk of weights.
_THREADS = max(1, min(2, os.cpu_count() or 1))
#: Sums of weights stay exact in float32 up to 2**24; longer lists multiply in float64.
_FLOAT32_SAMPLES = 1 << 24
#: The resampling-weights algorithm: stored counts made under another are made again.
WEIGHTS_METHOD = "multinomial-bincount-pcg64/1 numpy " + ".".join(np.__version__.split(".")[:2])


def sample_list_key(testset: str, variant: str = "") -> str:
    """The key of a sample list: a test set's own samples, or (``variant``: a shift's name) the samples
    of a reference that the shift's class sub-list keeps."""
    return f"{testset}/{variant}" if variant else testset


def _digest(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "little")


def check_seed(seed: int) -> int:
    """The resampling seed as an int; ValueError unless it is an int >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"the resampling seed must be an int >= 0, got {seed!r}")
    return int(seed)


def chunk_sizes(resamples: int, size: int) -> Iterator[int]:
    """Consecutive chunks of ``resamples`` whose (chunk x ``size``) arrays stay within the chunk budget."""
    step = max(1, min(resamples, _CHUNK_ENTRIES // max(1, size)))
    for start in range(0, resamples, step):
        yield min(step, resamples - start)


def _fill_weights(out: NDArray[np.floating[Any]], seed: int, digest: int, n: int, start: int,
                  pool: Executor | None) -> None:
    def row(j: int) -> None:
        rng = np.random.default_rng([seed, digest, n, start + j])
        out[j] = np.bincount(rng.integers(0, n, size=n), minlength=n)

    if pool is None:
        for j in range(len(out)):
            row(j)
    else:
        list(pool.map(row, range(len(out))))


def resample_weights(key: str, n: int, start: int, stop: int, *, seed: int = 0) -> NDArray[np.float32]:
    """Resamples ``start`` .. ``stop - 1`` of the sample list ``key`` of ``n`` samples ((stop - start) x n):
    how often each sample is drawn (see the module docstring), as float32."""
    if n < 1 or not 0 <= start <= stop:
        raise ValueError(f"resample_weights needs n >= 1 and 0 <= start <= stop, got {n}, {start}, {stop}")
    out = np.empty((stop - start, n), dtype=np.float32)
    _fill_weights(out, check_seed(seed), _digest(key), n, start, None)
    return out


def resampled_correct(correct: ArrayLike, key: str, resamples: int, *, seed: int = 0,
                      start: int = 0) -> NDArray[np.int32]:
    """Correct samples of each model in resamples ``start`` .. ``start + resamples - 1`` of the sample
    list ``key`` (models x resamples, int32): ``correct @ weights.T``.

    ``correct`` is (models x samples): booleans, or 0/1 as float32 (used as it is, no copy). Weights
    are drawn in chunks of about ``_CHUNK_ENTRIES`` entries, rows in parallel threads, and each chunk
    multiplies every model at once.
    """
    c = np.asarray(correct)
    if c.ndim != 2 or c.shape[1] == 0:
        raise ValueError(f"correct must be a (models x samples) array with samples, got shape {c.shape}")
    if resamples < 0 or start < 0:
        raise ValueError(f"resamples and start must be >= 0, got {resamples} and {start}")
    seed = check_seed(seed)
    models, n = c.shape
    dtype = np.float32 if n <= _FLOAT32_SAMPLES else np.float64
    matrix: NDArray[np.floating[Any]] = c if c.dtype == dtype else c.astype(dtype)
    out = np.empty((models, resamples), dtype=np.int32)
    if resamples == 0 or models == 0:
        return out
    step = max(1, min(resamples, _CHUNK_ENTRIES // n))
    weights: NDArray[np.floating[Any]] = np.empty((step, n), dtype=dtype)
    digest = _digest(key)
    threads = min(_THREADS, step)
    with ThreadPoolExecutor(threads) if threads > 1 else nullcontext() as pool:
        for lo in range(0, resamples, step):
            k = min(step, resamples - lo)
            _fill_weights(weights[:k], seed, digest, n, start + lo, pool)
            out[:, lo:lo + k] = np.rint(matrix @ weights[:k].T)
    return out
