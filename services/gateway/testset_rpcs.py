"""The test-set RPCs: presigned uploads, registration all or nothing, samples, get, list and delete.

A test set's shards are verified in staging, copied to unique keys, and entered into the catalog in
one transaction; on any failure the copies and the staging area are removed. The manifest's rules
are :func:`shiftboard.domain.manifests.validate_testset`.

An upload that is never registered leaves nothing: the client aborts it when its upload fails
(AbortTestSetUpload), and the gateway's janitor (:class:`~.cleanup.UploadJanitor`) removes every upload
row past its expiry with its staging objects, and staging objects no upload row names. A presigned URL
never outlives its upload's row.

Deleting a test set removes its catalog rows in one transaction, then its shard objects; objects that
could not be deleted are logged (the catalog never names them again).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import grpc

from shiftboard import testsets
from shiftboard.adapters.duckdb.catalog import Catalog, Upload
from shiftboard.adapters.duckdb.database import timestamp
from shiftboard.adapters.duckdb.evaluations import Evaluations, label_bytes
from shiftboard.adapters.s3 import ObjectStore
from shiftboard.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
)
from shiftboard.domain.manifests import MAX_SHARDS, ReferenceInfo, validate_testset
from shiftboard.domain.names import validate_name
from shiftboard.services.gateway.cleanup import remove_objects
from shiftboard.services.gateway.interceptor import required_caller
from shiftboard.services.gateway.limits import MAX_SAMPLES_PER_CALL, MAX_SHARDS_PER_SAMPLES_CALL
from shiftboard.services.gateway.results_rpcs import declared_defaults
from shiftboard.services.gateway.scheduler import Scheduler
from shiftboard.services.gateway.triggers import trigger
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import manifests as manifest_wire
from shiftboard.wire import vocab

log = logging.getLogger(__name__)

STAGING = "staging/"


#: The most bytes of one CreateTestSetUpload reply: under gRPC's default 4 MiB receive limit of any
#: client, and under the gateway's send limit.
UPLOAD_PAGE_BYTES = 3 * 1024 * 1024
_ENTRY_OVERHEAD = 4  # a repeated entry's tag and length prefix, at most
#: Object-store calls in flight while shards are checked and moved.
STORE_THREADS = 8

T = TypeVar("T")


def staging_prefix(upload_id: str) -> str:
    return f"{STAGING}{upload_id}/"


def staging_key(upload_id: str, index: int) -> str:
    return f"{staging_prefix(upload_id)}shard-{index:05d}.npz"


def _joined_registration(requests: Iterator[pb.RegisterTestSetRequest]) -> pb.RegisterTestSetRequest:
    """The stream's messages as one request: the first one's id and manifest, every message's
    ``shards`` appended to the manifest's in order."""
    first = next(requests, None)
    if first is None or not first.upload_id:
        raise InvalidArgument("RegisterTestSet: the first message must carry the upload_id and the manifest")
    joined = pb.RegisterTestSetRequest(upload_id=first.upload_id)
    joined.spec.CopyFrom(first.spec)
    joined.spec.shards.extend(first.shards)
    for more in requests:
        if more.upload_id or more.HasField("spec"):
            raise InvalidArgument("RegisterTestSet: only the first message carries the upload_id and the "
                                  "manifest; the following ones carry shards only")
        joined.spec.shards.extend(more.shards)
        if len(joined.spec.shards) > MAX_SHARDS:
            raise InvalidArgument(f"the manifest lists more than {MAX_SHARDS} shards, the most a test set "
                                  "may have: use larger shards")
    return joined


def _in_parallel(work: Callable[[pb.Shard], T], shards: Sequence[pb.Shard]) -> list[T]:
    """``work`` for each shard on a few threads (object-store calls), results in order; the first
    failure cancels what has not started, waits for what has, and is raised."""
    with ThreadPoolExecutor(max_workers=STORE_THREADS) as pool:
        futures = [pool.submit(work, s) for s in shards]
        try:
            return [future.result() for future in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


class TestSetRpcs:
    """CreateTestSetUpload, RegisterTestSet, AbortTestSetUpload, GetSamples, GetTestSet, ListTestSets,
    DeleteTestSet."""

    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, settings: Settings, catalog: Catalog, store: ObjectStore, scheduler: Scheduler,
                 evaluations: Evaluations | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.scheduler = scheduler
        self.evaluations = evaluations
        self._registering: set[str] = set()  # uploads being registered: never swept meanwhile
        self._lock = threading.Lock()

    def CreateTestSetUpload(self, request: pb.CreateTestSetUploadRequest,
                            context: grpc.ServicerContext) -> pb.TestSetUpload:
        """Presigned PUT URLs for the shards, into a staging prefix of its own, one page per call.

        A call without ``upload_id`` creates the upload and returns its first page; a call with it
        returns the page from ``first_shard``. Each page holds at most ``max_shards`` URLs and stays
        under :data:`UPLOAD_PAGE_BYTES`; ``next_shard`` (0 at the end) says where the next one starts.
        """
        caller = required_caller()
        upload = self._new_upload(request, caller.name) if not request.upload_id else self._upload_page_of(request)
        if upload.created_by != caller.name and not caller.admin:
            raise FailedPrecondition("this upload was started with another token: ask for its URLs with that one")
        first = request.first_shard if request.upload_id else 0
        if first >= upload.num_shards:
            raise InvalidArgument(f"first_shard is {first}: upload {upload.upload_id} has shards "
                                  f"0..{upload.num_shards - 1}")
        # a URL never outlives the upload's row (the janitor removes the staging area once it has expired)
        left = (upload.expires_at - dt.datetime.now(dt.UTC)).total_seconds()
        if left <= 0:
            raise FailedPrecondition(f"upload {upload.upload_id} has expired: start again with "
                                     "CreateTestSetUpload (`shiftboard testset add` does it)")
        ttl = max(1, min(self.settings.upload_url_ttl_s, math.ceil(left)))
        out = pb.TestSetUpload(upload_id=upload.upload_id, num_shards=upload.num_shards)
        out.expires_at.CopyFrom(timestamp(upload.expires_at))
        limit = request.max_shards or upload.num_shards
        size = out.ByteSize()
        index = first
        while index < upload.num_shards and len(out.shards) < limit:
            slot = pb.ShardUpload(index=index, url=self.store.presigned_put(staging_key(upload.upload_id, index), ttl))
            size += slot.ByteSize() + _ENTRY_OVERHEAD
            if size > UPLOAD_PAGE_BYTES and out.shards:
                break
            out.shards.append(slot)
            index += 1
        out.next_shard = index if index < upload.num_shards else 0
        return out

    def _new_upload(self, request: pb.CreateTestSetUploadRequest, caller: str) -> Upload:
        validate_name(request.name, "test set name")
        if not 1 <= request.num_shards <= MAX_SHARDS:
            raise InvalidArgument(f"num_shards is {request.num_shards}: use 1 to {MAX_SHARDS}")
        if request.first_shard:
            raise InvalidArgument("first_shard needs the upload_id of the upload it continues")
        if self.catalog.testset_exists(request.name):
            raise AlreadyExists(f"test set {request.name} exists: choose another --name")
        self._sweep_expired_uploads()
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.settings.upload_url_ttl_s)
        upload = Upload(uuid.uuid4().hex, request.name, request.num_shards, caller, expires)
        self.catalog.add_upload(upload)
        return upload

    def _upload_page_of(self, request: pb.CreateTestSetUploadRequest) -> Upload:
        upload = self.catalog.get_upload(request.upload_id)
        if upload is None:
            raise FailedPrecondition(f"upload {request.upload_id!r} is unknown or expired: start again with "
                                     "CreateTestSetUpload (`shiftboard testset add` does it)")
        if request.name and request.name != upload.testset:
            raise InvalidArgument(f"upload {upload.upload_id} was made for test set {upload.testset!r}, "
                                  f"not {request.name!r}")
        if request.num_shards and request.num_shards != upload.num_shards:
            raise InvalidArgument(f"upload {upload.upload_id} has {upload.num_shards} shards, not "
                                  f"{request.num_shards}: leave num_shards empty for a further page")
        return upload

    def RegisterTestSet(self, requests: Iterator[pb.RegisterTestSetRequest],
                        context: grpc.ServicerContext) -> pb.TestSet:
        """Verify every uploaded shard, move them in place and enter the test set, all or nothing."""
        caller = required_caller()
        request = _joined_registration(requests)
        upload = self.catalog.get_upload(request.upload_id)
        if upload is None:
            raise FailedPrecondition(f"upload {request.upload_id!r} is unknown or expired: start again with "
                                     "CreateTestSetUpload (`shiftboard testset add` does it)")
        if upload.created_by != caller.name and not caller.admin:
            raise FailedPrecondition("this upload was started with another token: register it with that one")
        with self._lock:
            if upload.upload_id in self._registering:
                raise FailedPrecondition(f"upload {upload.upload_id} is being registered by another call")
            self._registering.add(upload.upload_id)
        try:
            return self._register(request, upload, caller.name)
        finally:
            with self._lock:
                self._registering.discard(upload.upload_id)

    def _register(self, request: pb.RegisterTestSetRequest, upload: Upload, caller: str) -> pb.TestSet:
        moved: list[str] = []
        try:
            spec = self._validated_spec(request.spec, upload)
            labels = self._verify_shards(spec, upload)
            if spec.unlabelled:
                labels = {}  # the shards' placeholder labels are never stored: nothing is scored against them

            def move(shard: pb.Shard) -> str:
                key = f"testsets/{spec.name}/{upload.upload_id}/shard-{shard.index:05d}.npz"
                self.store.copy(staging_key(upload.upload_id, shard.index), key)
                moved.append(key)  # (a list append is atomic) what _discard removes if a later step fails
                return key

            for shard, key in zip(spec.shards, _in_parallel(move, spec.shards), strict=True):
                shard.key = key  # set here: messages are not changed from several threads
            testset = pb.TestSet(spec=spec, size_bytes=sum(s.size_bytes for s in spec.shards),
                                 created_by=caller)
            testset.created_at.GetCurrentTime()
            self.catalog.add_testset(testset, upload.upload_id, labels)
        except BaseException:
            self._discard(upload.upload_id, moved)
            raise
        self.store.delete_prefix(staging_prefix(upload.upload_id))
        log.info("test set %s registered: %d samples in %d shards by %s", spec.name, spec.num_samples,
                 len(spec.shards), caller)
        trigger(self.scheduler.for_testset, spec.name)
        return testset

    def _validated_spec(self, raw: pb.TestSetSpec, upload: Upload) -> pb.TestSetSpec:
        spec = pb.TestSetSpec()
        spec.CopyFrom(raw)
        validate_name(spec.name, "test set name")
        if spec.name != upload.testset:
            raise InvalidArgument(f"the upload was made for test set {upload.testset!r}, not {spec.name!r}")
        declared_defaults(self.catalog, spec)  # a name declared by imported results lends its kind and reference
        checked = validate_testset(manifest_wire.testset_manifest(spec), self._reference,
                                   reserved_shards=upload.num_shards)
        spec.reference = checked.reference
        return spec

    def _reference(self, name: str) -> ReferenceInfo:
        spec = self.catalog.get_testset(name).spec
        return ReferenceInfo(kind=vocab.word_or_empty(vocab.KINDS, spec.kind), num_classes=spec.num_classes)

    def _verify_shards(self, spec: pb.TestSetSpec, upload: Upload) -> dict[int, bytes]:
        """Check every staged shard; returns each shard's labels (int32 little-endian) for the catalog."""

        def verify(shard: pb.Shard) -> bytes:
            key = staging_key(upload.upload_id, shard.index)
            size = self.store.size(key)
            if size is None:
                raise FailedPrecondition(f"shard {shard.index} was not uploaded: upload every shard before "
                                         "registering (re-run `shiftboard testset add`)")
            if size != shard.size_bytes:
                raise InvalidArgument(f"shard {shard.index} has {size} bytes in storage, the manifest says "
                                      f"{shard.size_bytes}: the upload was corrupted, re-run the command")
            data = self.store.get_bytes(key)
            try:
                testsets.verify_shard(data, sha256=shard.sha256,
                                      num_samples=shard.num_samples, channels=spec.channels,
                                      height=spec.height, width=spec.width, num_classes=spec.num_classes)
            except InvalidArgument as exc:
                raise InvalidArgument(f"shard {shard.index}: {exc.message}") from None
            return label_bytes(testsets.read_shard(data)[1])

        return dict(zip((s.index for s in spec.shards), _in_parallel(verify, spec.shards), strict=True))

    def _discard(self, upload_id: str, moved: list[str]) -> None:
        try:
            self.store.delete(*moved)
            self.store.delete_prefix(staging_prefix(upload_id))
        finally:
            self.catalog.delete_upload(upload_id)

    def _sweep_expired_uploads(self) -> None:
        self.sweep_uploads()

    def sweep_uploads(self) -> list[str]:
        """Remove every upload past its expiry (row and staging objects), unless it is being registered, and
        staging objects of uploads no row names (a client that kept uploading after its row was removed);
        returns the upload ids removed."""
        with self._lock:
            busy = set(self._registering)
        swept = []
        for upload_id in self.catalog.expired_uploads():
            if upload_id in busy:
                continue
            log.info("discarding expired upload %s", upload_id)
            self._discard(upload_id, [])
            swept.append(upload_id)
        known = {u.upload_id for u in self.catalog.list_uploads()} | busy
        orphans = sorted({key[len(STAGING):].split("/", 1)[0] for key in self.store.list(STAGING)} - known)
        for upload_id in orphans:
            if upload_id and self.catalog.get_upload(upload_id) is None:  # not created since the listing
                log.info("discarding staging objects of upload %s (it has no upload row)", upload_id)
                self.store.delete_prefix(staging_prefix(upload_id))
                swept.append(upload_id)
        return swept

    def AbortTestSetUpload(self, request: pb.AbortTestSetUploadRequest,
                           context: grpc.ServicerContext) -> pb.AbortTestSetUploadResponse:
        """Remove an upload's staging objects and row (its creator or an admin); an unknown one is no error."""
        caller = required_caller()
        if not request.upload_id:
            raise InvalidArgument("AbortTestSetUpload needs the upload_id that CreateTestSetUpload returned")
        upload = self.catalog.get_upload(request.upload_id)
        if upload is None:
            return pb.AbortTestSetUploadResponse()
        if upload.created_by != caller.name and not caller.admin:
            raise PermissionDenied("this upload was started with another token: only its creator or an admin "
                                   "may abort it")
        with self._lock:
            if upload.upload_id in self._registering:
                raise FailedPrecondition(f"upload {upload.upload_id} is being registered: it cannot be aborted "
                                         "now (a failed registration removes it itself)")
        self._discard(upload.upload_id, [])
        log.info("upload %s of test set %s aborted by %s", upload.upload_id, upload.testset, caller.name)
        return pb.AbortTestSetUploadResponse()

    def DeleteTestSet(self, request: pb.DeleteTestSetRequest,
                      context: grpc.ServicerContext) -> pb.DeleteTestSetResponse:
        """Remove a test set with its evaluations, predictions and aggregates (one catalog transaction), cancel
        the flow runs left with nothing to do, then delete its shard objects. Only its registrant or an admin
        may; refused while other test sets name it as their reference."""
        caller = required_caller()
        testset = self.catalog.get_testset(request.name)
        if testset.created_by != caller.name and not caller.admin:
            raise PermissionDenied(f"test set {request.name} was registered by another token: only its "
                                   "registrant or an admin may delete it")
        deleted = self.catalog.delete_testset(request.name)
        if self.evaluations is not None:
            self.evaluations.notify_watchers()
        self.scheduler.cancel_runs(deleted.flow_runs, f"shiftboard: test set {request.name} was deleted by "
                                                      f"{caller.name}")
        remove_objects(self.store, deleted, f"test set {request.name}")
        log.info("test set %s deleted by %s (%d evaluation(s); flow runs cancelled: %s)", request.name,
                 caller.name, deleted.evaluations, ", ".join(deleted.flow_runs) or "none")
        return pb.DeleteTestSetResponse(evaluations_deleted=deleted.evaluations)

    def GetSamples(self, request: pb.GetSamplesRequest, context: grpc.ServicerContext) -> pb.GetSamplesResponse:
        """Images and labels of some samples, read from their shards."""
        if len(request.samples) > MAX_SAMPLES_PER_CALL:
            raise ResourceExhausted(f"ask for at most {MAX_SAMPLES_PER_CALL} samples per call "
                                    f"({len(request.samples)} asked): split the request")
        spec = self.catalog.get_testset(request.testset).spec
        out = pb.GetSamplesResponse(channels=spec.channels, height=spec.height, width=spec.width)
        wanted = sorted(set(request.samples))
        if wanted and wanted[-1] >= spec.num_samples:
            raise InvalidArgument(f"test set {spec.name} has samples 0..{spec.num_samples - 1}")
        found: dict[int, pb.Sample] = {}
        touched = [s for s in spec.shards
                   if any(s.first_sample <= i < s.first_sample + s.num_samples for i in wanted)]
        if len(touched) > MAX_SHARDS_PER_SAMPLES_CALL:
            raise ResourceExhausted(f"these samples lie in {len(touched)} shards; one call reads at most "
                                    f"{MAX_SHARDS_PER_SAMPLES_CALL}: ask for fewer samples per call")
        for shard in touched:
            inside = [i for i in wanted if shard.first_sample <= i < shard.first_sample + shard.num_samples]
            images, labels = testsets.read_shard(self.store.get_bytes(shard.key))
            for i in inside:
                j = i - shard.first_sample
                label = -1 if spec.unlabelled else int(labels[j])  # -1: registered without labels
                found[i] = pb.Sample(sample=i, label=label, image=images[j].tobytes())
        out.samples.extend(found[i] for i in request.samples)
        return out

    def GetTestSet(self, request: pb.GetTestSetRequest, context: grpc.ServicerContext) -> pb.TestSet:
        """One test set with its shards."""
        return self.catalog.get_testset(request.name)

    def ListTestSets(self, request: pb.ListTestSetsRequest, context: grpc.ServicerContext) -> pb.ListTestSetsResponse:
        """Every test set, optionally of one kind or group."""
        kind = vocab.kind_word(request.kind) if request.kind != pb.TEST_SET_KIND_UNSPECIFIED else None
        return pb.ListTestSetsResponse(test_sets=self.catalog.list_testsets(kind, request.group or None))

