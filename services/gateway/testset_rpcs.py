"""The test-set RPCs: presigned uploads, registration all or nothing, samples, get and list.

A test set's shards are verified in staging, copied to unique keys, and entered into the catalog in
one transaction; on any failure the copies and the staging area are removed. The manifest's rules
are :func:`shiftboard.domain.manifests.validate_testset`.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc

from shiftboard import testsets
from shiftboard.adapters.duckdb.catalog import Catalog, Upload
from shiftboard.adapters.duckdb.evaluations import label_bytes
from shiftboard.adapters.s3 import ObjectStore
from shiftboard.domain.errors import AlreadyExists, FailedPrecondition, InvalidArgument, ResourceExhausted
from shiftboard.domain.manifests import MAX_SHARDS, ReferenceInfo, validate_testset
from shiftboard.domain.names import validate_name
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


def staging_prefix(upload_id: str) -> str:
    return f"{STAGING}{upload_id}/"


def staging_key(upload_id: str, index: int) -> str:
    return f"{staging_prefix(upload_id)}shard-{index:05d}.npz"


class TestSetRpcs:
    """CreateTestSetUpload, RegisterTestSet, GetSamples, GetTestSet, ListTestSets."""

    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, settings: Settings, catalog: Catalog, store: ObjectStore, scheduler: Scheduler) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.scheduler = scheduler

    def CreateTestSetUpload(self, request: pb.CreateTestSetUploadRequest,
                            context: grpc.ServicerContext) -> pb.TestSetUpload:
        """Presigned PUT URLs for each shard, into a staging prefix of its own."""
        caller = required_caller()
        validate_name(request.name, "test set name")
        if not 1 <= request.num_shards <= MAX_SHARDS:
            raise InvalidArgument(f"num_shards is {request.num_shards}: use 1 to {MAX_SHARDS}")
        if self.catalog.testset_exists(request.name):
            raise AlreadyExists(f"test set {request.name} exists: choose another --name")
        self._sweep_expired_uploads()
        ttl = self.settings.upload_url_ttl_s
        upload_id = uuid.uuid4().hex
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl)
        self.catalog.add_upload(Upload(upload_id, request.name, request.num_shards, caller.name, expires))
        out = pb.TestSetUpload(upload_id=upload_id)
        out.expires_at.FromDatetime(expires.replace(tzinfo=None))
        for index in range(request.num_shards):
            url = self.store.presigned_put(staging_key(upload_id, index), ttl)
            out.shards.append(pb.ShardUpload(index=index, url=url))
        return out

    def RegisterTestSet(self, request: pb.RegisterTestSetRequest, context: grpc.ServicerContext) -> pb.TestSet:
        """Verify every uploaded shard, move them in place and enter the test set, all or nothing."""
        caller = required_caller()
        upload = self.catalog.get_upload(request.upload_id)
        if upload is None:
            raise FailedPrecondition(f"upload {request.upload_id!r} is unknown or expired: start again with "
                                     "CreateTestSetUpload (`shiftboard testset add` does it)")
        if upload.created_by != caller.name and not caller.admin:
            raise FailedPrecondition("this upload was started with another token: register it with that one")
        moved: list[str] = []
        try:
            spec = self._validated_spec(request.spec, upload)
            labels = self._verify_shards(spec, upload)
            for shard in spec.shards:
                key = f"testsets/{spec.name}/{upload.upload_id}/shard-{shard.index:05d}.npz"
                self.store.copy(staging_key(upload.upload_id, shard.index), key)
                moved.append(key)
                shard.key = key
            testset = pb.TestSet(spec=spec, size_bytes=sum(s.size_bytes for s in spec.shards),
                                 created_by=caller.name)
            testset.created_at.GetCurrentTime()
            self.catalog.add_testset(testset, upload.upload_id, labels)
        except BaseException:
            self._discard(upload.upload_id, moved)
            raise
        self.store.delete_prefix(staging_prefix(upload.upload_id))
        log.info("test set %s registered: %d samples in %d shards by %s", spec.name, spec.num_samples,
                 len(spec.shards), caller.name)
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

        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {s.index: pool.submit(verify, s) for s in spec.shards}
            return {index: future.result() for index, future in futures.items()}

    def _discard(self, upload_id: str, moved: list[str]) -> None:
        try:
            self.store.delete(*moved)
            self.store.delete_prefix(staging_prefix(upload_id))
        finally:
            self.catalog.delete_upload(upload_id)

    def _sweep_expired_uploads(self) -> None:
        for upload_id in self.catalog.expired_uploads():
            log.info("discarding expired upload %s", upload_id)
            self._discard(upload_id, [])

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
                found[i] = pb.Sample(sample=i, label=int(labels[j]), image=images[j].tobytes())
        out.samples.extend(found[i] for i in request.samples)
        return out

    def GetTestSet(self, request: pb.GetTestSetRequest, context: grpc.ServicerContext) -> pb.TestSet:
        """One test set with its shards."""
        return self.catalog.get_testset(request.name)

    def ListTestSets(self, request: pb.ListTestSetsRequest, context: grpc.ServicerContext) -> pb.ListTestSetsResponse:
        """Every test set, optionally of one kind or group."""
        kind = vocab.kind_word(request.kind) if request.kind != pb.TEST_SET_KIND_UNSPECIFIED else None
        return pb.ListTestSetsResponse(test_sets=self.catalog.list_testsets(kind, request.group or None))
