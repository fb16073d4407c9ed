"""Python client of the gateway: what the CLI, the flows and the leaderboard use.

gRPC status codes come back as the same :mod:`shiftboard.domain.errors` classes the gateway raised
(:func:`shiftboard.wire.status.from_status`). Enumeration arguments are the wire values as ints
(``pb.TEST_SET_KIND_*`` or what :mod:`shiftboard.wire.vocab` returns).
Shard bytes go straight to object storage through presigned URLs, never through the gateway.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shiftboard import credentials
from shiftboard.domain.errors import InvalidArgument, ShiftboardError, Unavailable
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.v1 import shiftboard_pb2_grpc as pb_grpc
from shiftboard.wire.status import from_status

if TYPE_CHECKING:
    from shiftboard.wire.commits import ShardPredictions

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
#: Shards uploaded at once (small shards are bound by round trips, not bandwidth).
UPLOAD_THREADS = 4
#: Target size of one RegisterTestSet message (the gateway accepts up to 8 MiB).
REGISTER_MESSAGE_BYTES = 2 * 1024 * 1024
Progress = Callable[[int], None]  # called with the number of bytes just sent

T = TypeVar("T")


def _translate(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self: Client, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            details = exc.details() or ""  # type: ignore[attr-defined]
            if code == grpc.StatusCode.UNAVAILABLE and "failed to connect" in details.lower():
                raise Unavailable(f"the gateway at {self.target} is not reachable: start the stack with "
                                  "`shiftboard up`, or set SHIFTBOARD_GATEWAY_ADDRESS") from None
            raise from_status(code, details) from None

    return wrapper


class Client:
    """A connection to the gateway, with the caller's token."""

    def __init__(self, target: str, token: str | None = None, *, timeout_s: float = 600.0) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ])
        self._stub = pb_grpc.ShiftboardStub(self._channel)

    @classmethod
    def from_settings(cls, settings: Settings) -> Client:
        return cls(settings.gateway_target, credentials.client_token(settings))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Callable[..., T], request: Any) -> T:
        return method(request, metadata=self._metadata, timeout=self.timeout_s)

    # ---------------------------------------------------------------- health, info

    def health(self, service: str = "", timeout_s: float = 2.0) -> bool:
        try:
            reply = health_pb2_grpc.HealthStub(self._channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    @_translate
    def server_info(self) -> pb.ServerInfo:
        return self._call(self._stub.GetServerInfo, pb.GetServerInfoRequest())

    @_translate
    def create_token(self, name: str, *, admin: bool = False,
                     role: int = pb.TOKEN_ROLE_UNSPECIFIED) -> pb.CreateTokenResponse:
        """A new token; ``role`` is a ``pb.TOKEN_ROLE_*`` value (submitter when unset, admin with ``admin``)."""
        request = pb.CreateTokenRequest(name=name, admin=admin, role=cast(pb.TokenRole, role))
        return self._call(self._stub.CreateToken, request)

    @_translate
    def list_tokens(self) -> list[pb.TokenInfo]:
        return list(self._call(self._stub.ListTokens, pb.ListTokensRequest()).tokens)

    @_translate
    def revoke_token(self, name: str) -> None:
        self._call(self._stub.RevokeToken, pb.RevokeTokenRequest(name=name))

    # ---------------------------------------------------------------- models

    @_translate
    def submit_model(self, path: str | os.PathLike[str], metadata: pb.ModelMetadata,
                     on_progress: Progress | None = None) -> pb.Model:
        path = Path(path)
        if not path.is_file():
            raise InvalidArgument(f"{path} is not a file: give the path of an ONNX, torch.export or TorchScript model")

        chunks = _FileChunks(path, "model file", on_progress)

        def requests() -> Iterator[pb.SubmitModelRequest]:
            yield pb.SubmitModelRequest(metadata=metadata)
            for chunk in chunks:
                yield pb.SubmitModelRequest(chunk=chunk)

        with chunks.errors():
            return self._stub.SubmitModel(requests(), metadata=self._metadata, timeout=self.timeout_s)

    @_translate
    def get_model(self, name: str, version: str = "") -> pb.Model:
        return self._call(self._stub.GetModel, pb.GetModelRequest(name=name, version=version))

    @_translate
    def list_models(self, category: int = pb.MODEL_CATEGORY_UNSPECIFIED) -> list[pb.Model]:
        request = pb.ListModelsRequest(category=cast(pb.ModelCategory, category))
        return list(self._call(self._stub.ListModels, request).models)

    @_translate
    def delete_model(self, name: str, version: str) -> None:
        self._call(self._stub.DeleteModel, pb.DeleteModelRequest(name=name, version=version))

    # ---------------------------------------------------------------- test sets

    @_translate
    def get_testset(self, name: str) -> pb.TestSet:
        return self._call(self._stub.GetTestSet, pb.GetTestSetRequest(name=name))

    @_translate
    def samples(self, testset: str, samples: list[int]) -> pb.GetSamplesResponse:
        return self._call(self._stub.GetSamples, pb.GetSamplesRequest(testset=testset, samples=samples))

    @_translate
    def list_testsets(self, kind: int = pb.TEST_SET_KIND_UNSPECIFIED, group: str = "") -> list[pb.TestSet]:
        request = pb.ListTestSetsRequest(kind=cast(pb.TestSetKind, kind), group=group)
        reply = self._call(self._stub.ListTestSets, request)
        return list(reply.test_sets)

    @_translate
    def delete_testset(self, name: str) -> int:
        """Delete a test set with its evaluations and predictions; returns how many evaluations went with it."""
        reply = self._call(self._stub.DeleteTestSet, pb.DeleteTestSetRequest(name=name))
        return int(reply.evaluations_deleted)

    @_translate
    def abort_upload(self, upload_id: str) -> None:
        """Give up an upload: the gateway removes its staging objects and its row."""
        self._call(self._stub.AbortTestSetUpload, pb.AbortTestSetUploadRequest(upload_id=upload_id))

    @_translate
    def create_upload(self, name: str, num_shards: int) -> pb.TestSetUpload:
        """The whole upload plan: every page of presigned URLs gathered into one message."""
        pages = self.upload_pages(name, num_shards)
        plan = next(pages)
        for page in pages:
            plan.shards.extend(page.shards)
        plan.next_shard = 0
        return plan

    def upload_pages(self, name: str, num_shards: int, max_shards: int = 0) -> Iterator[pb.TestSetUpload]:
        """The upload plan page by page (each page asked for when the previous one is consumed, so
        its URLs are fresh); every page carries the upload's id."""
        request = pb.CreateTestSetUploadRequest(name=name, num_shards=num_shards, max_shards=max_shards)
        while True:
            page = self._upload_page(request)
            yield page
            if not page.next_shard:
                return
            request = pb.CreateTestSetUploadRequest(upload_id=page.upload_id, first_shard=page.next_shard,
                                                    max_shards=max_shards)

    @_translate
    def _upload_page(self, request: pb.CreateTestSetUploadRequest) -> pb.TestSetUpload:
        return self._call(self._stub.CreateTestSetUpload, request)

    @_translate
    def register_testset(self, upload_id: str, spec: pb.TestSetSpec) -> pb.TestSet:
        """Register the manifest, its shards sent over as many messages as keep each under
        :data:`REGISTER_MESSAGE_BYTES`."""
        return self._stub.RegisterTestSet(register_requests(upload_id, spec), metadata=self._metadata,
                                          timeout=self.timeout_s)

    # ---------------------------------------------------------------- evaluations

    @_translate
    def list_evaluations(self, *, model: str = "", testset: str = "",
                         status: int = pb.EVALUATION_STATUS_UNSPECIFIED) -> list[pb.Evaluation]:
        request = pb.ListEvaluationsRequest(model=model, testset=testset,
                                           status=cast(pb.EvaluationStatus, status))
        return list(self._call(self._stub.ListEvaluations, request).evaluations)

    def watch_evaluations(self, *, model: str = "", testset: str = "") -> Iterator[pb.Evaluation]:
        """The current evaluations, then each change; cancel by closing the iterator."""
        stream = self._stub.WatchEvaluations(pb.ListEvaluationsRequest(model=model, testset=testset),
                                             metadata=self._metadata)
        try:
            yield from stream
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:  # type: ignore[attr-defined]
                return
            raise from_status(exc.code(), exc.details() or "") from None  # type: ignore[attr-defined]
        finally:
            stream.cancel()

    @_translate
    def request_evaluations(self, keys: list[pb.EvaluationKey] | None = None, *,
                            rerun: bool = False) -> list[pb.Evaluation]:
        reply = self._call(self._stub.RequestEvaluations,
                           pb.RequestEvaluationsRequest(keys=keys or [], rerun=rerun))
        return list(reply.evaluations)

    @_translate
    def start_evaluation(self, key: pb.EvaluationKey, flow_run_id: str = "") -> pb.EvaluationPlan:
        return self._call(self._stub.StartEvaluation, pb.StartEvaluationRequest(key=key, flow_run_id=flow_run_id))

    @_translate
    def commit_shard(self, key: pb.EvaluationKey, shard_index: int, predictions: pb.Predictions,
                     seconds: float, *, restricted: Sequence[pb.RestrictedTop1] = ()) -> pb.Evaluation:
        request = pb.CommitShardRequest(key=key, shard_index=shard_index, predictions=predictions, seconds=seconds,
                                        restricted=list(restricted))
        return self._call(self._stub.CommitShard, request)

    @_translate
    def commit_shards(self, key: pb.EvaluationKey, shards: Iterable[ShardPredictions]) -> pb.Evaluation:
        """Commit several shards' predictions in one CommitShards stream: all of them, or (error) none.

        Shards of any size: each is split over messages under the gateway's message limit.
        """
        from shiftboard.wire.commits import commit_requests

        return self._stub.CommitShards(commit_requests(key, shards), metadata=self._metadata,
                                       timeout=self.timeout_s)

    @_translate
    def finish_evaluation(self, key: pb.EvaluationKey, *, failed: bool = False, error: str = "") -> pb.Evaluation:
        return self._call(self._stub.FinishEvaluation,
                          pb.FinishEvaluationRequest(key=key, failed=failed, error=error))

    @_translate
    def predictions(self, model: str, testset: str, version: str = "") -> list[pb.Predictions]:
        key = pb.EvaluationKey(model=model, version=version, testset=testset)
        return list(self._stub.GetPredictions(key, metadata=self._metadata, timeout=self.timeout_s))

    @_translate
    def accuracy(self, *, model: str = "", testset: str = "") -> list[pb.Accuracy]:
        return list(self._call(self._stub.GetAccuracy,
                               pb.GetAccuracyRequest(model=model, testset=testset)).accuracies)

    # ---------------------------------------------------------------- leaderboard

    @_translate
    def leaderboard(self, *, shift: str = "", group: str = "", transform: str = "logit",
                    resamples: int = 0, extremes: str = "") -> pb.Leaderboard:
        request = pb.GetLeaderboardRequest(shift=shift, group=group, transform=transform, resamples=resamples,
                                           extremes=extremes)
        return self._call(self._stub.GetLeaderboard, request)

    @_translate
    def overview(self, *, transform: str = "logit", kind: int = pb.TEST_SET_KIND_UNSPECIFIED,
                 extremes: str = "") -> list[pb.Leaderboard]:
        """Every shift's board without intervals (one request)."""
        request = pb.GetOverviewRequest(transform=transform, kind=cast(pb.TestSetKind, kind), extremes=extremes)
        return list(self._stub.GetOverview(request, metadata=self._metadata, timeout=self.timeout_s))

    # ---------------------------------------------------------------- imported results

    @_translate
    def import_results(self, path: str | os.PathLike[str] | None = None, *, format: str = "",
                       model_types: str | os.PathLike[str] | None = None, source: str = "", url: str = "",
                       scale: str = "", preset: str = "") -> pb.ImportResultsResponse:
        """Import a results file (``format`` testbed or long) or a ``preset``; sent in chunks."""
        if (path is None) == (not preset):
            raise InvalidArgument("give a results file or --preset (one of them)")
        types = b""
        if model_types is not None:
            types = _read_file(Path(model_types), "model-types file")
        header = pb.ImportResultsHeader(format=format, model_types=types, source=source, url=url, scale=scale,
                                        preset=preset)
        file = None
        if path is not None:
            file = Path(path)
            if not file.is_file():
                raise InvalidArgument(f"{file} is not a file: give the path of a results file (CSV or Parquet)")
            header.filename, header.size_bytes = file.name, file.stat().st_size

        chunks = _FileChunks(file, "results file") if file is not None else None

        def requests() -> Iterator[pb.ImportResultsRequest]:
            yield pb.ImportResultsRequest(header=header)
            for chunk in chunks or ():
                yield pb.ImportResultsRequest(chunk=chunk)

        if chunks is None:
            return self._stub.ImportResults(requests(), metadata=self._metadata, timeout=self.timeout_s)
        with chunks.errors():
            return self._stub.ImportResults(requests(), metadata=self._metadata, timeout=self.timeout_s)

    @_translate
    def imported_sources(self) -> list[pb.ImportedSource]:
        return list(self._call(self._stub.ListImportedSources, pb.ListImportedSourcesRequest()).sources)

    @_translate
    def compare(self, model_a: str, model_b: str, testset: str) -> pb.Comparison:
        return self._call(self._stub.CompareModels,
                          pb.CompareModelsRequest(model_a=model_a, model_b=model_b, testset=testset))

    @_translate
    def calibration(self, testset: str, resamples: int = 0) -> pb.Calibration:
        """ECE (with its interval) and reliability bins per model on ``testset`` (and its reference)."""
        return self._call(self._stub.GetCalibration, pb.GetCalibrationRequest(testset=testset, resamples=resamples))

    @_translate
    def consistency(self, model_a: str, model_b: str, testset: str, resamples: int = 0) -> pb.Consistency:
        """Error consistency (Cohen's kappa of correctness) of two models (name or name:version)."""
        return self._call(self._stub.GetConsistency, pb.GetConsistencyRequest(
            model_a=model_a, model_b=model_b, testset=testset, resamples=resamples))

    @_translate
    def consistency_matrix(self, testset: str, models: list[str] | None = None,
                           resamples: int = 0) -> pb.ConsistencyMatrix:
        """Kappa of every pair of models on ``testset`` (or of ``models``), and their unique solves, with
        bootstrap intervals (``resamples``; 0: the gateway's default)."""
        return self._call(self._stub.GetConsistencyMatrix,
                          pb.GetConsistencyMatrixRequest(testset=testset, models=models or [], resamples=resamples))

    def add_testset(self, spec: pb.TestSetSpec, shard_files: list[Path],
                    on_progress: Progress | None = None) -> pb.TestSet:
        """Upload shard files through presigned URLs, then register the manifest. When the upload fails
        the gateway is asked to abort it (its staging objects removed; else its expiry does it)."""
        if len(shard_files) != len(spec.shards):
            raise InvalidArgument("one shard file per shard of the manifest is needed")
        started: list[str] = []  # the upload's id, once the gateway has created it
        try:
            self._upload_shards(spec, shard_files, on_progress, started)
        except BaseException:
            if started:
                self._abort_quietly(started[0])
            raise
        return self.register_testset(started[0], spec)

    def _abort_quietly(self, upload_id: str) -> None:
        try:
            self.abort_upload(upload_id)
        except Exception as exc:  # noqa: BLE001 - the upload's own failure is what the caller sees
            log.warning("could not abort upload %s (the gateway removes it once it expires): %s", upload_id,
                        getattr(exc, "message", None) or exc)

    def _upload_shards(self, spec: pb.TestSetSpec, shard_files: list[Path], on_progress: Progress | None,
                       started: list[str]) -> None:
        """PUT every shard file to its presigned URL, page by page; the upload's id goes into ``started``
        as soon as the first page names it."""
        limits = httpx.Limits(max_connections=UPLOAD_THREADS)
        with httpx.Client(timeout=httpx.Timeout(300.0, connect=10.0), limits=limits) as http, \
                ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            for page in self.upload_pages(spec.name, len(shard_files)):  # each page's URLs fresh when used
                if not started:
                    started.append(page.upload_id)
                if any(slot.index >= len(shard_files) for slot in page.shards):
                    raise InvalidArgument(f"the gateway's upload plan has more than {len(shard_files)} shards: "
                                          "is it a different version?")
                puts = [pool.submit(_put_file, http, slot.url, shard_files[slot.index], on_progress)
                        for slot in page.shards]
                try:
                    for put in puts:
                        put.result()
                except BaseException:
                    for put in puts:
                        put.cancel()
                    raise


class _FileChunks:
    """A file's bytes in chunks for a request stream, keeping the error that stopped reading.

    gRPC swallows an exception raised while it iterates the requests (the call ends "Exception iterating
    requests!"); :meth:`errors` turns the call's failure back into the reading error that caused it.
    """

    def __init__(self, path: Path, what: str, on_progress: Progress | None = None) -> None:
        self.path, self.what, self.on_progress = path, what, on_progress
        self.error: OSError | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            with open(self.path, "rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    yield chunk
                    if self.on_progress:
                        self.on_progress(len(chunk))
        except OSError as exc:
            self.error = exc
            raise

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        grpc_log = logging.getLogger("grpc._channel")
        grpc_log.addFilter(self._quiet)
        try:
            yield
        except grpc.RpcError:
            if self.error is not None:
                raise InvalidArgument(f"cannot read the {self.what} {str(self.path)!r}: "
                                      f"{self.error.strerror or self.error}") from None
            raise
        finally:
            grpc_log.removeFilter(self._quiet)

    def _quiet(self, record: logging.LogRecord) -> bool:
        """Drop gRPC's own report (with traceback) of this file's reading error: :meth:`errors` names it."""
        return self.error is None or record.getMessage() != "Exception iterating requests!"


def register_requests(upload_id: str, spec: pb.TestSetSpec,
                      message_bytes: int = REGISTER_MESSAGE_BYTES) -> Iterator[pb.RegisterTestSetRequest]:
    """The messages of one RegisterTestSet stream: the id and the manifest without its shards, then the
    shards in order, each message about ``message_bytes`` at most."""
    head = pb.RegisterTestSetRequest(upload_id=upload_id)
    head.spec.CopyFrom(spec)
    del head.spec.shards[:]
    yield head
    more, size = pb.RegisterTestSetRequest(), 0
    for shard in spec.shards:
        entry = shard.ByteSize() + 4  # and its tag and length prefix
        if more.shards and size + entry > message_bytes:
            yield more
            more, size = pb.RegisterTestSetRequest(), 0
        more.shards.append(shard)
        size += entry
    if more.shards:
        yield more


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read the {what} {str(path)!r}: {exc.strerror or exc}") from None


def _put_file(http: httpx.Client, url: str, path: Path, on_progress: Progress | None) -> None:
    size = path.stat().st_size

    def body() -> Iterator[bytes]:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                yield chunk
                if on_progress:
                    on_progress(len(chunk))

    try:
        response = http.put(url, content=body(), headers={"Content-Length": str(size)})
    except httpx.HTTPError as exc:
        raise Unavailable(f"object store unreachable while uploading {path.name}: {exc}") from None
    if response.status_code >= 300:
        raise ShiftboardError(f"object store refused {path.name}: HTTP {response.status_code} "
                              f"{response.text[:300]}")
