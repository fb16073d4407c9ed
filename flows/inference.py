"""The data path of one evaluation: shards from object storage -> Triton (gRPC) -> scores.

Three things overlap so that the model never waits:

* a fetch thread downloads and decodes the next shards (``prefetch`` of them) while the current one
  is inferring;
* a feeder thread cuts shards into batches of at most ``batch_size`` images and sends them with
  ``async_infer``, keeping ``in_flight`` requests outstanding; it runs ahead into the next shard
  while the caller is still committing the previous one;
* each response is scored (:mod:`shiftboard.domain.scoring`) in the gRPC callback as it arrives:
  through the test set's class map when it has one (predictions in its label space), else over its
  class sub-list or every class; on a reference, the top-1 restricted to each of its shifts' class
  sub-lists (or class maps) is computed from the same logits.

The caller iterates :meth:`InferencePipeline.run` and gets one :class:`ShardResult` per shard, in
shard order. Images travel as uint8 (the server normalises them). Failures surface from the
iterator as shiftboard errors: ``Unavailable`` for what a retry can fix, :class:`ModelFailed` when
the model crashed, returned the wrong shape or non-finite logits, :class:`ModelDeadlineExceeded` when a
request was not answered within ``request_timeout_s`` (the model's deadline, sent with each request
so that the Python-backend model answers at it: permanent, never the transient ``DEADLINE_EXCEEDED``
of an unreachable server), ``InvalidArgument`` for a shard that does not
match its manifest.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tritonclient.grpc as triton_grpc
from numpy.typing import NDArray

from shiftboard.adapters.triton.client import (
    DEADLINE_ERROR,
    DEADLINE_PARAMETER,
    ModelDeadlineExceeded,
    ModelFailed,
    TritonAuth,
    TritonError,
    close_quietly,
    connect,
    status_name,
    translate,
)
from shiftboard.adapters.triton.repository import INPUT_NAME, OUTPUT_NAME
from shiftboard.domain.errors import InvalidArgument, ShiftboardError
from shiftboard.domain.scoring import (
    ClassMap,
    NonFiniteLogits,
    Restriction,
    restricted_top1,
    score,
    score_mapped,
    subset_index,
)
from shiftboard.domain.shards import map_verified_shard, read_shard, sha256_bytes
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire.commits import ShardPredictions

log = logging.getLogger(__name__)

__all__ = ["InferencePipeline", "ShardResult", "decode_shard"]

#: Fetches the bytes of a shard (e.g. ``ObjectStore.get_bytes(shard.key)``).
Fetch = Callable[[pb.Shard], bytes]


@dataclass(frozen=True)
class ShardResult:
    """One shard's predictions; ``seconds`` is the wall time since the previous shard completed.

    ``arrays`` are what CommitShards sends (numpy, no labels: the gateway scores against its own);
    ``labels`` are the shard's, as read here, for what stays on the worker (the logits files).
    """

    shard: pb.Shard
    arrays: ShardPredictions
    seconds: float
    logits: NDArray[np.float32] | None = None
    labels: NDArray[np.int64] | None = None

    @property
    def predictions(self) -> pb.Predictions:
        """The predictions as a ``Predictions`` message (built on demand; the commit sends ``arrays``)."""
        a, first = self.arrays, self.arrays.first_sample
        return pb.Predictions(sample=range(first, first + a.samples), top1=a.top1_or_first.tolist(),
                              top5=a.top5.ravel().tolist(), confidence=a.confidence.tolist())


def decode_shard(data: bytes, shard: pb.Shard, chw: tuple[int, int, int],
                 *, verify: bool = True) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Parse a shard and check it against its manifest entry (checksum, sample count, image shape).

    A shard whose sha256 matches the manifest holds exactly the bytes the gateway checked at
    registration, so its members' CRC-32 need no second pass
    (:func:`~shiftboard.domain.shards.map_verified_shard`); either way the arrays are views into ``data``.
    """
    if verify and shard.sha256:
        if sha256_bytes(data) != shard.sha256.lower():
            raise InvalidArgument(f"shard {shard.index} ({shard.key}) does not match its sha256: the stored "
                                  "object was altered; register the test set again")
        images, labels = map_verified_shard(data)
    else:
        images, labels = read_shard(data)
    if images.shape[0] != shard.num_samples or images.shape[1:] != chw:
        raise InvalidArgument(f"shard {shard.index} holds images of shape {images.shape}; the manifest "
                              f"and the model expect ({shard.num_samples}, {', '.join(map(str, chw))})")
    return images, labels


@dataclass
class _ShardWork:
    """A shard being inferred: its arrays, results filled in by callbacks, and completion."""

    shard: pb.Shard
    images: NDArray[np.uint8]
    labels: NDArray[np.int64]
    top5: NDArray[np.int32]
    confidence: NDArray[np.float32]
    logits: NDArray[np.float32] | None
    pending: int
    done: threading.Event = field(default_factory=threading.Event)
    restricted: list[NDArray[np.int32]] = field(default_factory=list)


class InferencePipeline:
    """Runs shards of one test set through one loaded Triton model (see the module docstring)."""

    def __init__(self, url: str, model_name: str, *, num_classes: int, chw: tuple[int, int, int],
                 class_subset: Sequence[int] | None = None, batch_size: int = 256, in_flight: int = 4,
                 prefetch: int = 2, keep_logits: bool = False, verify: bool = True,
                 request_timeout_s: float = 600.0, label: str = "", auth: TritonAuth | None = None,
                 class_map: ClassMap | None = None, restrictions: Sequence[tuple[str, Restriction]] = ()) -> None:
        """``class_map`` scores through the test set's class map (instead of ``class_subset``);
        ``restrictions`` are (shift, sub-list index or class map) whose restricted top-1 every shard
        result carries."""
        if batch_size < 1 or in_flight < 1 or prefetch < 1:
            raise ValueError("batch_size, in_flight and prefetch must be at least 1")
        self.url = url
        self.auth = auth
        self.model_name = model_name
        self.num_classes = num_classes
        self.chw = chw
        self.subset = subset_index(class_subset, num_classes)
        self.class_map = class_map
        self.restrictions = list(restrictions)
        self.batch_size = batch_size
        self.in_flight = in_flight
        self.prefetch = prefetch
        self.keep_logits = keep_logits
        self.verify = verify
        self.request_timeout_s = request_timeout_s
        self.label = label or model_name  # how errors name the model ("name:version")
        self._outputs = [triton_grpc.InferRequestedOutput(OUTPUT_NAME)]

    # ---------------------------------------------------------------- public

    def run(self, shards: Sequence[pb.Shard], fetch: Fetch) -> Generator[ShardResult, None, None]:
        """Infer ``shards`` in order, yielding each one's predictions as soon as it is complete."""
        if not shards:
            return
        run = _Run(self, list(shards), fetch)
        try:
            yield from run.results()
        finally:
            run.stop()

    # ---------------------------------------------------------------- helpers used by _Run

    def _request(self, images: NDArray[np.uint8]) -> list[triton_grpc.InferInput]:
        tensor = triton_grpc.InferInput(INPUT_NAME, list(images.shape), "UINT8")
        tensor.set_data_from_numpy(images)
        return [tensor]


class _Run:
    """The threads and shared state of one ``InferencePipeline.run`` call."""

    def __init__(self, pipeline: InferencePipeline, shards: list[pb.Shard], fetch: Fetch) -> None:
        self.p = pipeline
        self.shards = shards
        self.fetch = fetch
        self.client = connect(pipeline.url, pipeline.auth)
        self.window = threading.BoundedSemaphore(pipeline.in_flight)
        # shards handed to the feeder but not yet consumed: bounds memory to prefetch + 1 shards
        self.ahead = threading.Semaphore(pipeline.prefetch + 1)
        self.cond = threading.Condition()
        self.works: dict[int, _ShardWork] = {}
        self.error: ShiftboardError | None = None
        self.stopping = threading.Event()
        self.outstanding = 0
        self.sent_any = False
        self.fetcher = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-fetch")
        self.feeder = threading.Thread(target=self._feed, name="triton-feed", daemon=True)
        self.feeder.start()

    # ---------------------------------------------------------------- consumer (caller's thread)

    def results(self) -> Iterator[ShardResult]:
        last = time.perf_counter()
        for position, shard in enumerate(self.shards):
            with self.cond:
                while position not in self.works and self.error is None:
                    self.cond.wait(0.5)
                work = self.works.get(position)
            while work is not None and not work.done.wait(0.5) and self.error is None:
                pass
            if self.error is not None:
                raise self.error
            assert work is not None
            now = time.perf_counter()
            # top-1 is top-5's first class (score's rule), so the commit leaves it out
            arrays = ShardPredictions(
                index=int(shard.index), first_sample=int(shard.first_sample), top5=work.top5,
                confidence=work.confidence, seconds=now - last,
                restricted={shift: top1 for (shift, _), top1 in zip(self.p.restrictions, work.restricted, strict=True)})
            # a copy: the labels are a view into the whole shard's bytes
            result = ShardResult(shard, arrays, now - last, work.logits, np.array(work.labels))
            last = now
            with self.cond:
                del self.works[position]
            self.ahead.release()
            yield result

    # ---------------------------------------------------------------- feeder thread

    def _feed(self) -> None:
        futures: list[cf.Future[tuple[NDArray[np.uint8], NDArray[np.int64]]]] = []
        try:
            for shard in self.shards[: self.p.prefetch]:
                futures.append(self.fetcher.submit(self._fetch, shard))
            for position, shard in enumerate(self.shards):
                if not self._acquire(self.ahead):
                    return
                images, labels = futures[position].result()
                nxt = position + self.p.prefetch
                if nxt < len(self.shards):
                    futures.append(self.fetcher.submit(self._fetch, self.shards[nxt]))
                work = self._start_work(shard, images, labels)
                with self.cond:
                    self.works[position] = work
                    self.cond.notify_all()
                for start in range(0, len(labels), self.p.batch_size):
                    if not self._acquire(self.window):
                        return
                    self._send(work, start, min(start + self.p.batch_size, len(labels)))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._fail(exc, what="read shards or send requests")
        finally:
            for future in futures:
                future.cancel()

    def _fetch(self, shard: pb.Shard) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
        return decode_shard(self.fetch(shard), shard, self.p.chw, verify=self.p.verify)

    def _start_work(self, shard: pb.Shard, images: NDArray[np.uint8],
                    labels: NDArray[np.int64]) -> _ShardWork:
        n = len(labels)
        batches = -(-n // self.p.batch_size)
        logits = np.empty((n, self.p.num_classes), dtype=np.float32) if self.p.keep_logits else None
        return _ShardWork(shard=shard, images=images, labels=labels, top5=np.empty((n, 5), dtype=np.int32),
                          confidence=np.empty(n, dtype=np.float32), logits=logits, pending=batches,
                          restricted=[np.empty(n, dtype=np.int32) for _ in self.p.restrictions])

    def _acquire(self, semaphore: threading.Semaphore) -> bool:
        while not semaphore.acquire(timeout=0.5):
            if self.stopping.is_set() or self.error is not None:
                return False
        if self.stopping.is_set() or self.error is not None:
            semaphore.release()
            return False
        return True

    def _send(self, work: _ShardWork, start: int, stop: int) -> None:
        def done(result: Any, error: Any) -> None:
            self._on_response(work, start, stop, result, error)

        with self.cond:
            self.outstanding += 1
            if not self.sent_any:
                self.sent_any = True
                log.info("first inference request to %s", self.p.model_name)
        try:
            # the model answers at its deadline (so Triton can unload a hung one); the client waits a little longer
            self.client.async_infer(self.p.model_name, self.p._request(work.images[start:stop]), done,
                                    outputs=self.p._outputs, client_timeout=self.p.request_timeout_s + 2.0,
                                    parameters={DEADLINE_PARAMETER: int(self.p.request_timeout_s * 1000)})
        except BaseException:
            with self.cond:
                self.outstanding -= 1
            self.window.release()
            raise

    # ---------------------------------------------------------------- gRPC callback threads

    def _on_response(self, work: _ShardWork, start: int, stop: int, result: Any, error: Any) -> None:
        try:
            if error is not None:
                if isinstance(error, TritonError) and (status_name(error) == "DEADLINE_EXCEEDED"
                                                       or DEADLINE_ERROR in str(error.message() or "")):
                    raise ModelDeadlineExceeded(
                        f"model {self.p.label} did not answer a request of {stop - start} images on shard "
                        f"{work.shard.index} within its deadline of {self.p.request_timeout_s:.0f} s")
                raise error
            logits = result.as_numpy(OUTPUT_NAME)
            if logits is None or logits.shape != (stop - start, self.p.num_classes):
                shape = None if logits is None else list(logits.shape)
                raise ModelFailed(f"model {self.p.label} returned logits of shape {shape} for "
                                  f"{stop - start} images; expected [{stop - start}, {self.p.num_classes}]")
            try:
                if self.p.class_map is not None:
                    scores = score_mapped(logits, work.labels[start:stop], self.p.class_map)
                else:
                    scores = score(logits, work.labels[start:stop], self.p.subset)
            except NonFiniteLogits as exc:
                raise ModelFailed(f"model {self.p.label} on shard {work.shard.index}: {exc}") from exc
            for top1, (_, restriction) in zip(work.restricted, self.p.restrictions, strict=True):
                top1[start:stop] = restricted_top1(logits, restriction)
            work.top5[start:stop] = scores.top5
            work.confidence[start:stop] = scores.confidence
            if work.logits is not None:
                work.logits[start:stop] = logits
            with self.cond:
                work.pending -= 1
                if work.pending == 0:
                    work.done.set()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._fail(exc, what="infer")
        finally:
            with self.cond:
                self.outstanding -= 1
                self.cond.notify_all()
            self.window.release()

    # ---------------------------------------------------------------- errors, teardown

    def _fail(self, exc: BaseException, *, what: str) -> None:
        error = translate(exc, what=what, url=self.p.url, model=self.p.label)
        with self.cond:
            if self.error is None:
                self.error = error
                if not isinstance(exc, ShiftboardError):
                    log.debug("%s failed", what, exc_info=exc)
            self.cond.notify_all()

    def stop(self) -> None:
        """Stop feeding, wait for outstanding requests, release the client (idempotent)."""
        self.stopping.set()
        # a model past its deadline is stopped by the caller: its other requests need not be waited for
        wait_s = 5.0 if isinstance(self.error, ModelDeadlineExceeded) else self.p.request_timeout_s
        self.feeder.join(timeout=wait_s)
        with self.cond:
            deadline = time.monotonic() + wait_s
            while self.outstanding > 0 and time.monotonic() < deadline:
                self.cond.wait(0.5)
        self.fetcher.shutdown(wait=True, cancel_futures=True)
        close_quietly(self.client)
