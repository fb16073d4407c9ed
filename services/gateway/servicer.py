"""The ``shiftboard.v1.Shiftboard`` service: validation, auth, and the all-or-nothing writes.

Every RPC goes through :func:`rpc`, the one place where errors meet gRPC: a
:class:`~shiftboard.domain.errors.ShiftboardError` becomes its status code and message; anything else is
logged with its traceback and becomes INTERNAL with a generic message.

Writes are all or nothing. A model's bytes go to a unique object key and are deleted if the catalog
insert fails; a test set's shards are verified in staging, copied to unique keys, and entered into
the catalog in one transaction; on any failure the copies and the staging area are removed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from shiftboard import __version__, credentials, testsets, vocab
from shiftboard.adapters.duckdb.catalog import Catalog, Token, Upload
from shiftboard.adapters.duckdb.evaluations import Evaluations, label_bytes
from shiftboard.adapters.s3 import ObjectStore
from shiftboard.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    ShiftboardError,
    Unimplemented,
)
from shiftboard.domain.names import validate_name
from shiftboard.services.gateway import probe
from shiftboard.services.gateway.aggregates import Aggregator
from shiftboard.services.gateway.auth import (
    ADMIN,
    ADMINS,
    ANY_ROLE,
    EVALUATOR,
    SUBMITTER,
    SUBMITTERS,
    Authenticator,
    new_token,
)
from shiftboard.services.gateway.evaluation_rpcs import EvaluationRpcs
from shiftboard.services.gateway.leaderboard_rpcs import LeaderboardRpcs
from shiftboard.services.gateway.limits import MAX_SAMPLES_PER_CALL, MAX_SHARDS_PER_SAMPLES_CALL, StreamLimiter
from shiftboard.services.gateway.results_rpcs import ResultsRpcs
from shiftboard.services.gateway.rpc import rpc
from shiftboard.services.gateway.scheduler import Scheduler
from shiftboard.services.gateway.testset_checks import check_class_map, check_transform
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.v1 import shiftboard_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

MAX_SHARDS = 100_000
MAX_CLASSES = 1_000_000
MAX_SIDE = 4096
STAGING = "staging/"
#: The gateway's own tokens, registered again at every start: never revoked through the API.
OWN_TOKENS = {"admin": ADMIN, "evaluator": EVALUATOR}
ROLE_OF_VALUE = {pb.TOKEN_ROLE_ADMIN: ADMIN, pb.TOKEN_ROLE_SUBMITTER: SUBMITTER,
                 pb.TOKEN_ROLE_EVALUATOR: EVALUATOR}
VALUE_OF_ROLE = {v: k for k, v in ROLE_OF_VALUE.items()}


class ShiftboardServicer(EvaluationRpcs, LeaderboardRpcs, ResultsRpcs, pb_grpc.ShiftboardServicer):
    """Implements the API over the catalog and the object store."""

    def __init__(self, settings: Settings, catalog: Catalog, store: ObjectStore) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        key = credentials.token_key(settings, create=True)
        assert key is not None  # create=True always gives a key
        self.auth = Authenticator(catalog, key)
        self.streams = StreamLimiter(settings.stream_limit, settings.max_streams_per_caller)
        self.evaluations = Evaluations(catalog)
        self.aggregator = Aggregator(catalog, self.evaluations, settings)
        self.scheduler = Scheduler(settings, catalog, self.evaluations)
        self.tmp_dir = settings.state_path / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def authorize(self, context: grpc.ServicerContext, *, mutating: bool, roles: frozenset[str] = ANY_ROLE,
                  call: str = "this call") -> Token | None:
        """The caller's token with a role in ``roles``; for an open read, the valid token if any, else None."""
        metadata = context.invocation_metadata() or ()
        if not mutating and roles == ANY_ROLE and self.settings.open_reads:
            return self.auth.identify(metadata)
        return self.auth.authenticate(metadata, roles=roles, call=call)

    # ------------------------------------------------------------------------------------ models

    @rpc(mutating=True, roles=SUBMITTERS)
    def SubmitModel(self, request_iterator: Iterator[pb.SubmitModelRequest], context: grpc.ServicerContext,
                    caller: Token) -> pb.Model:
        """Receive metadata then chunks, validate, store the artifact, enter the model in the catalog."""
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("payload") != "metadata":
            raise InvalidArgument("the first SubmitModel message must carry the model's metadata")
        metadata = self._validated_model_metadata(first.metadata)
        if self.catalog.model_exists(metadata.name, metadata.version):
            raise AlreadyExists(f"model {metadata.name} version {metadata.version} exists: submit under a "
                                "new --version, or delete the old one first")
        limit = self.settings.max_model_bytes
        digest = hashlib.sha256()
        size = 0
        with tempfile.NamedTemporaryFile(dir=self.tmp_dir, suffix=".pt") as tmp:
            for message in request_iterator:
                if message.WhichOneof("payload") != "chunk":
                    raise InvalidArgument("SubmitModel got metadata twice: send it once, then only chunks")
                size += len(message.chunk)
                if size > limit:
                    raise ResourceExhausted(
                        f"the model is larger than the limit of {limit} bytes: shrink it, or raise "
                        "SHIFTBOARD_MAX_MODEL_BYTES on the gateway")
                digest.update(message.chunk)
                tmp.write(message.chunk)
            tmp.flush()
            if size == 0:
                raise InvalidArgument("the model file is empty: nothing was uploaded")
            spec = metadata.input
            probe.probe(Path(tmp.name), channels=spec.channels, height=spec.height, width=spec.width,
                        num_classes=metadata.num_classes, timeout_s=self.settings.probe_timeout_s,
                        settings=self.settings)
            key = f"models/{metadata.name}/{metadata.version}/{uuid.uuid4().hex}.pt"
            tmp.seek(0)
            self.store.put_stream(key, tmp, size)  # type: ignore[arg-type]
        model = pb.Model(metadata=metadata, size_bytes=size, sha256=digest.hexdigest(),
                         artifact_uri=self.store.uri_prefix + key, created_by=caller.name)
        model.created_at.GetCurrentTime()
        try:
            self.catalog.add_model(model, key)
        except BaseException:
            self.store.delete(key)
            raise
        log.info("model %s version %s stored (%d bytes) by %s", metadata.name, metadata.version, size,
                 caller.name)
        self._trigger(self.scheduler.for_model, metadata.name, metadata.version)
        return model

    def _trigger(self, schedule: Callable[..., Any], *args: str) -> None:
        """Queue the new evaluations; the write that caused them has succeeded whatever happens here."""
        try:
            schedule(*args)
        except Exception:
            log.exception("could not schedule evaluations for %s; the sweep will", args)

    def _validated_model_metadata(self, md: pb.ModelMetadata) -> pb.ModelMetadata:
        out = pb.ModelMetadata()
        out.CopyFrom(md)
        validate_name(md.name, "model name")
        validate_name(md.version, "model version")
        if md.format == pb.MODEL_FORMAT_ONNX:
            raise Unimplemented("ONNX models are not served by this gateway yet: submit TorchScript "
                                "(torch.jit.script / torch.jit.trace, then torch.jit.save)")
        if md.format != pb.MODEL_FORMAT_TORCHSCRIPT:
            raise InvalidArgument("the model format is not set: use torchscript")
        if md.category not in pb.ModelCategory.values() or md.category == pb.MODEL_CATEGORY_UNSPECIFIED:
            raise InvalidArgument("the model category is not set: use standard, robustness-intervention, "
                                  "more-data, zero-shot or other")
        if not 2 <= md.num_classes <= MAX_CLASSES:
            raise InvalidArgument(f"num_classes is {md.num_classes}: a classifier needs 2 to {MAX_CLASSES}")
        spec = out.input
        if spec.channels not in (1, 3, 4):
            raise InvalidArgument(f"input channels is {spec.channels}: use 1 (grayscale), 3 (RGB) or 4")
        for side, value in (("height", spec.height), ("width", spec.width)):
            if not 1 <= value <= MAX_SIDE:
                raise InvalidArgument(f"input {side} is {value}: use 1 to {MAX_SIDE} pixels")
        if spec.value_min == 0 and spec.value_max == 0:
            spec.value_max = 1.0
        if not (math.isfinite(spec.value_min) and math.isfinite(spec.value_max)
                and spec.value_max > spec.value_min):
            raise InvalidArgument(f"input value range [{spec.value_min}, {spec.value_max}] is empty: give "
                                  "min < max, e.g. 0,1 or 0,255")
        for name, values, fill in (("mean", spec.mean, 0.0), ("std", spec.std, 1.0)):
            if len(values) == 0:
                values.extend([fill] * spec.channels)
            elif len(values) == 1 and spec.channels > 1:
                values.extend([values[0]] * (spec.channels - 1))
            if len(values) != spec.channels:
                raise InvalidArgument(f"input {name} has {len(values)} values for {spec.channels} channels: "
                                      "give one per channel")
            if not all(math.isfinite(v) for v in values):
                raise InvalidArgument(f"input {name} must be finite numbers")
        if any(v <= 0 for v in spec.std):
            raise InvalidArgument("input std must be positive in every channel")
        for tag in md.tags:
            validate_name(tag, "tag")
        if len(md.description) > 10_000:
            raise InvalidArgument("the description is longer than 10,000 characters")
        return out

    @rpc(mutating=False)
    def GetModel(self, request: pb.GetModelRequest, context: grpc.ServicerContext, caller: Any) -> pb.Model:
        """One model by name (and version)."""
        model, key = self.catalog.get_model(request.name, request.version)
        model.artifact_uri = self.store.uri_prefix + key
        model.deployment.CopyFrom(self._deployment(model))
        return model

    def _deployment(self, model: pb.Model) -> pb.Deployment:
        from shiftboard.adapters.triton.deployer import deployment_state

        try:
            state = deployment_state(self.settings, model)
        except ShiftboardError as exc:
            return pb.Deployment(state="UNKNOWN", reason=f"Triton at {self.settings.triton_target}: {exc.message}")
        return pb.Deployment(triton_name=state.model_name, state=state.state, reason=state.reason)

    @rpc(mutating=False)
    def ListModels(self, request: pb.ListModelsRequest, context: grpc.ServicerContext,
                   caller: Any) -> pb.ListModelsResponse:
        """Every model, optionally of one category."""
        category = None
        if request.category != pb.MODEL_CATEGORY_UNSPECIFIED:
            category = vocab.category_word(request.category)
        return pb.ListModelsResponse(models=self.catalog.list_models(category))

    @rpc(mutating=True, roles=SUBMITTERS)
    def DeleteModel(self, request: pb.DeleteModelRequest, context: grpc.ServicerContext,
                    caller: Token) -> pb.DeleteModelResponse:
        """Unload the model from Triton, remove it with its evaluations and predictions, then its artifact.

        Only its submitter or an admin may. When Triton cannot be reached the model is deleted all the
        same (and the failure logged): its Triton entry is named after name, version and artifact
        checksum, so no later model can be served from it, and the deployer's LRU unloads it.
        """
        if not request.version:
            raise InvalidArgument("give the version to delete (deleting every version needs one call each)")
        model, _ = self.catalog.get_model(request.name, request.version)
        if model.created_by != caller.name and not caller.admin:
            raise PermissionDenied(f"model {request.name}:{request.version} was submitted by another token: only "
                                   "its submitter or an admin may delete it")
        self._undeploy(model)
        key = self.catalog.delete_model(request.name, request.version)
        self.evaluations.notify_watchers()
        self.store.delete(key)
        log.info("model %s version %s deleted by %s", request.name, request.version, caller.name)
        return pb.DeleteModelResponse()

    def _undeploy(self, model: pb.Model) -> None:
        from shiftboard.adapters.triton.deployer import undeploy

        try:
            undeploy(self.settings, model)
        except ShiftboardError as exc:
            log.warning("could not unload model %s:%s from Triton at %s (deleting it anyway): %s",
                        model.metadata.name, model.metadata.version, self.settings.triton_target, exc.message)

    # ------------------------------------------------------------------------------------ test sets

    @rpc(mutating=True, roles=SUBMITTERS)
    def CreateTestSetUpload(self, request: pb.CreateTestSetUploadRequest, context: grpc.ServicerContext,
                            caller: Token) -> pb.TestSetUpload:
        """Presigned PUT URLs for each shard, into a staging prefix of its own."""
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
            url = self.store.presigned_put(self._staging_key(upload_id, index), ttl)
            out.shards.append(pb.ShardUpload(index=index, url=url))
        return out

    @rpc(mutating=True, roles=SUBMITTERS)
    def RegisterTestSet(self, request: pb.RegisterTestSetRequest, context: grpc.ServicerContext,
                        caller: Token) -> pb.TestSet:
        """Verify every uploaded shard, move them in place and enter the test set, all or nothing."""
        upload = self.catalog.get_upload(request.upload_id)
        if upload is None:
            raise FailedPrecondition(f"upload {request.upload_id!r} is unknown or expired: start again with "
                                     "CreateTestSetUpload (`shiftboard testset add` does it)")
        if upload.created_by != caller.name and not caller.admin:
            raise FailedPrecondition("this upload was started with another token: register it with that one")
        moved: list[str] = []
        try:
            spec = self._validated_testset_spec(request.spec, upload)
            labels = self._verify_shards(spec, upload)
            for shard in spec.shards:
                key = f"testsets/{spec.name}/{upload.upload_id}/shard-{shard.index:05d}.npz"
                self.store.copy(self._staging_key(upload.upload_id, shard.index), key)
                moved.append(key)
                shard.key = key
            testset = pb.TestSet(spec=spec, size_bytes=sum(s.size_bytes for s in spec.shards),
                                 created_by=caller.name)
            testset.created_at.GetCurrentTime()
            self.catalog.add_testset(testset, upload.upload_id, labels)
        except BaseException:
            self._discard(upload.upload_id, moved)
            raise
        self.store.delete_prefix(self._staging_prefix(upload.upload_id))
        log.info("test set %s registered: %d samples in %d shards by %s", spec.name, spec.num_samples,
                 len(spec.shards), caller.name)
        self._trigger(self.scheduler.for_testset, spec.name)
        return testset

    def _validated_testset_spec(self, raw: pb.TestSetSpec, upload: Upload) -> pb.TestSetSpec:
        spec = pb.TestSetSpec()
        spec.CopyFrom(raw)
        validate_name(spec.name, "test set name")
        if spec.name != upload.testset:
            raise InvalidArgument(f"the upload was made for test set {upload.testset!r}, not {spec.name!r}")
        self.declared_defaults(spec)  # a name declared by imported results lends its kind and reference
        if spec.kind == pb.TEST_SET_KIND_UNSPECIFIED or spec.kind not in pb.TestSetKind.values():
            raise InvalidArgument("the test-set kind is not set: use reference, natural, synthetic or adversarial")
        if spec.group:
            validate_name(spec.group, "group")
        if not 2 <= spec.num_classes <= MAX_CLASSES:
            raise InvalidArgument(f"num_classes is {spec.num_classes}: use 2 to {MAX_CLASSES}")
        if spec.kind == pb.TEST_SET_KIND_REFERENCE:
            if spec.reference and spec.reference != spec.name:
                raise InvalidArgument("a reference test set does not shift from another: leave --reference empty")
            if spec.class_map:
                raise InvalidArgument("a class map maps a shift's classes onto its reference's label space: give "
                                      "it to a shifted test set (with --reference), not to a reference")
            spec.reference = ""
        else:
            if not spec.reference:
                raise InvalidArgument("a shifted test set needs --reference: the name of the reference "
                                      "(in-distribution) test set it shifts from")
            validate_name(spec.reference, "reference test set name")
            try:
                reference = self.catalog.get_testset(spec.reference)
            except NotFound:
                raise NotFound(f"reference test set {spec.reference!r} does not exist: register it first "
                               "(`shiftboard testset add PATH --kind reference`)") from None
            if reference.spec.kind != pb.TEST_SET_KIND_REFERENCE:
                raise InvalidArgument(f"test set {spec.reference!r} is not of kind reference: name a "
                                      "reference test set")
            if spec.class_map:
                check_class_map(spec, reference.spec.num_classes)
            elif reference.spec.num_classes != spec.num_classes:
                raise InvalidArgument(f"the reference {spec.reference!r} has {reference.spec.num_classes} "
                                      f"classes, this set {spec.num_classes}: they must share one label space")
        subset = list(spec.class_subset)
        if len(set(subset)) != len(subset) or any(c >= spec.num_classes for c in subset):
            raise InvalidArgument(f"the class sub-list must hold distinct classes in [0, {spec.num_classes})")
        if spec.class_names and len(spec.class_names) != spec.num_classes:
            raise InvalidArgument(f"{len(spec.class_names)} class names for {spec.num_classes} classes")
        if spec.HasField("transform"):
            check_transform(spec)
        for side, value in (("channels", spec.channels), ("height", spec.height), ("width", spec.width)):
            if not 1 <= value <= MAX_SIDE:
                raise InvalidArgument(f"{side} is {value}: out of range")
        if len(spec.shards) != upload.num_shards:
            raise InvalidArgument(f"the manifest lists {len(spec.shards)} shards, the upload reserved "
                                  f"{upload.num_shards}")
        expected_first = 0
        for i, shard in enumerate(spec.shards):
            if shard.index != i or shard.first_sample != expected_first or shard.num_samples == 0:
                raise InvalidArgument(f"shard {i} of the manifest is out of order or empty: shards must be "
                                      "numbered from 0 and cover consecutive samples")
            expected_first += shard.num_samples
        if expected_first != spec.num_samples or spec.num_samples == 0:
            raise InvalidArgument(f"the shards hold {expected_first} samples, the manifest says "
                                  f"{spec.num_samples}")
        return spec

    def _verify_shards(self, spec: pb.TestSetSpec, upload: Upload) -> dict[int, bytes]:
        """Check every staged shard; returns each shard's labels (int32 little-endian) for the catalog."""

        def verify(shard: pb.Shard) -> bytes:
            key = self._staging_key(upload.upload_id, shard.index)
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
            self.store.delete_prefix(self._staging_prefix(upload_id))
        finally:
            self.catalog.delete_upload(upload_id)

    def _sweep_expired_uploads(self) -> None:
        for upload_id in self.catalog.expired_uploads():
            log.info("discarding expired upload %s", upload_id)
            self._discard(upload_id, [])

    @staticmethod
    def _staging_prefix(upload_id: str) -> str:
        return f"{STAGING}{upload_id}/"

    def _staging_key(self, upload_id: str, index: int) -> str:
        return f"{self._staging_prefix(upload_id)}shard-{index:05d}.npz"

    @rpc(mutating=False)
    def GetSamples(self, request: pb.GetSamplesRequest, context: grpc.ServicerContext,
                   caller: Any) -> pb.GetSamplesResponse:
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

    @rpc(mutating=False)
    def GetTestSet(self, request: pb.GetTestSetRequest, context: grpc.ServicerContext,
                   caller: Any) -> pb.TestSet:
        """One test set with its shards."""
        return self.catalog.get_testset(request.name)

    @rpc(mutating=False)
    def ListTestSets(self, request: pb.ListTestSetsRequest, context: grpc.ServicerContext,
                     caller: Any) -> pb.ListTestSetsResponse:
        """Every test set, optionally of one kind or group."""
        kind = vocab.kind_word(request.kind) if request.kind != pb.TEST_SET_KIND_UNSPECIFIED else None
        return pb.ListTestSetsResponse(test_sets=self.catalog.list_testsets(kind, request.group or None))

    # ------------------------------------------------------------------------------------ tokens, info

    @rpc(mutating=True, roles=ADMINS)
    def CreateToken(self, request: pb.CreateTokenRequest, context: grpc.ServicerContext,
                    caller: Token) -> pb.CreateTokenResponse:
        """A new token with a role (submitter by default), returned once; the catalog keeps its keyed hash."""
        validate_name(request.name, "token name")
        if request.role not in ROLE_OF_VALUE and request.role != pb.TOKEN_ROLE_UNSPECIFIED:
            raise InvalidArgument(f"unknown token role {request.role}: use admin, submitter or evaluator")
        role = ROLE_OF_VALUE.get(request.role, SUBMITTER)
        if request.admin:
            if request.role not in (pb.TOKEN_ROLE_UNSPECIFIED, pb.TOKEN_ROLE_ADMIN):
                raise InvalidArgument(f"admin=true contradicts role {role}: give one of them")
            role = ADMIN
        if request.name in OWN_TOKENS:
            raise AlreadyExists(f"{request.name!r} is the gateway's own token: choose another name")
        token = new_token()
        self.auth.register(request.name, token, role=role, created_by=caller.name)
        log.info("token %s created by %s (role %s)", request.name, caller.name, role)
        return pb.CreateTokenResponse(name=request.name, token=token, role=VALUE_OF_ROLE[role])

    @rpc(mutating=True, roles=ADMINS)
    def ListTokens(self, request: pb.ListTokensRequest, context: grpc.ServicerContext,
                   caller: Token) -> pb.ListTokensResponse:
        """Every token's name, role and creation; never a hash."""
        out = pb.ListTokensResponse()
        for row in self.catalog.list_tokens():
            info = out.tokens.add(name=row.name, role=VALUE_OF_ROLE.get(row.role, pb.TOKEN_ROLE_UNSPECIFIED),
                                  created_by=row.created_by)
            info.created_at.FromDatetime(row.created_at.astimezone(dt.UTC).replace(tzinfo=None))
        return out

    @rpc(mutating=True, roles=ADMINS)
    def RevokeToken(self, request: pb.RevokeTokenRequest, context: grpc.ServicerContext,
                    caller: Token) -> pb.RevokeTokenResponse:
        """Delete a token: it is refused (UNAUTHENTICATED) from the next call on."""
        validate_name(request.name, "token name")
        if request.name in OWN_TOKENS:
            raise FailedPrecondition(
                f"{request.name!r} is the gateway's own token and is registered again at every start: to "
                f"replace it, change SHIFTBOARD_{request.name.upper()}_TOKEN (or delete "
                f"<state>/secrets/{request.name}-token) and restart the gateway")
        self.catalog.delete_token(request.name)
        log.info("token %s revoked by %s", request.name, caller.name)
        return pb.RevokeTokenResponse()

    @rpc(mutating=False)
    def GetServerInfo(self, request: pb.GetServerInfoRequest, context: grpc.ServicerContext,
                      caller: Any) -> pb.ServerInfo:
        """Versions and the addresses of the platform's parts."""
        s = self.settings
        return pb.ServerInfo(version=__version__, bucket=s.s3_bucket, s3_endpoint=s.s3_public_target,
                             triton_url=s.triton_target, prefect_api_url=s.prefect_api,
                             leaderboard_url=s.leaderboard_url, open_reads=s.open_reads,
                             catalog_schema_version=self.catalog.schema_version)
