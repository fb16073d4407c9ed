"""The model RPCs: submit (validate, probe, store, register), get, list and delete.

The probe's measured seconds per image of a full batch are recorded with the model (its evaluations'
request deadline is derived from them).

The file must be in the format its metadata declares (:mod:`shiftboard.formats`: ONNX, torch.export or
TorchScript); the probe checks it statically, then runs it in the sandbox. A model's bytes go to a unique
object key (``.onnx``, ``.pt2`` or ``.pt``) and are deleted if the catalog insert fails. The manifest's
rules are :func:`shiftboard.domain.manifests.validate_model`.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, cast

import grpc

from shiftboard import formats
from shiftboard.adapters.duckdb.catalog import Catalog
from shiftboard.adapters.duckdb.evaluations import Evaluations
from shiftboard.adapters.s3 import ObjectStore
from shiftboard.domain.errors import (
    AlreadyExists,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    ShiftboardError,
)
from shiftboard.domain.manifests import validate_model
from shiftboard.services.gateway import probe
from shiftboard.services.gateway.cleanup import remove_objects
from shiftboard.services.gateway.interceptor import required_caller
from shiftboard.services.gateway.scheduler import Scheduler
from shiftboard.services.gateway.triggers import trigger
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import manifests as manifest_wire
from shiftboard.wire import vocab

log = logging.getLogger(__name__)


class ModelRpcs:
    """SubmitModel, GetModel, ListModels, DeleteModel over the catalog, the object store and Triton."""

    def __init__(self, settings: Settings, catalog: Catalog, store: ObjectStore, evaluations: Evaluations,
                 scheduler: Scheduler, tmp_dir: Path) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.evaluations = evaluations
        self.scheduler = scheduler
        self.tmp_dir = tmp_dir

    def SubmitModel(self, request_iterator: Iterator[pb.SubmitModelRequest],
                    context: grpc.ServicerContext) -> pb.Model:
        """Receive metadata then chunks, validate, store the artifact, enter the model in the catalog."""
        caller = required_caller()
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("payload") != "metadata":
            raise InvalidArgument("the first SubmitModel message must carry the model's metadata")
        checked = validate_model(manifest_wire.model_manifest(first.metadata))
        metadata = manifest_wire.with_input(first.metadata, checked.input)
        if self.catalog.model_exists(metadata.name, metadata.version):
            raise AlreadyExists(f"model {metadata.name} version {metadata.version} exists: submit under a "
                                "new --version, or delete the old one first")
        digest = hashlib.sha256()
        suffix = formats.get(checked.format).suffix
        with tempfile.NamedTemporaryFile(dir=self.tmp_dir, suffix=suffix) as tmp:
            size = self._receive(request_iterator, cast(IO[bytes], tmp), digest)
            spec = metadata.input
            seconds_per_sample = probe.probe(
                Path(tmp.name), channels=spec.channels, height=spec.height, width=spec.width,
                num_classes=metadata.num_classes, timeout_s=self.settings.probe_timeout_s, settings=self.settings,
                model_format=checked.format)
            key = f"models/{metadata.name}/{metadata.version}/{uuid.uuid4().hex}{suffix}"
            tmp.seek(0)
            self.store.put_stream(key, cast(BinaryIO, tmp), size)
        model = pb.Model(metadata=metadata, size_bytes=size, sha256=digest.hexdigest(),
                         artifact_uri=self.store.uri_prefix + key, created_by=caller.name,
                         probe_seconds_per_sample=seconds_per_sample)
        model.created_at.GetCurrentTime()
        try:
            self.catalog.add_model(model, key)
        except BaseException:
            self.store.delete(key)
            raise
        log.info("model %s version %s stored (%d bytes) by %s", metadata.name, metadata.version, size,
                 caller.name)
        trigger(self.scheduler.for_model, metadata.name, metadata.version)
        return model

    def _receive(self, messages: Iterator[pb.SubmitModelRequest], out: IO[bytes], digest: hashlib._Hash) -> int:
        """Write the chunks to ``out`` (within the size limit); returns their size."""
        limit = self.settings.max_model_bytes
        size = 0
        for message in messages:
            if message.WhichOneof("payload") != "chunk":
                raise InvalidArgument("SubmitModel got metadata twice: send it once, then only chunks")
            size += len(message.chunk)
            if size > limit:
                raise ResourceExhausted(
                    f"the model is larger than the limit of {limit} bytes: shrink it, or raise "
                    "SHIFTBOARD_MAX_MODEL_BYTES on the gateway")
            digest.update(message.chunk)
            out.write(message.chunk)
        out.flush()
        if size == 0:
            raise InvalidArgument("the model file is empty: nothing was uploaded")
        return size

    def GetModel(self, request: pb.GetModelRequest, context: grpc.ServicerContext) -> pb.Model:
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

    def ListModels(self, request: pb.ListModelsRequest, context: grpc.ServicerContext) -> pb.ListModelsResponse:
        """Every model, optionally of one category."""
        category = None
        if request.category != pb.MODEL_CATEGORY_UNSPECIFIED:
            category = vocab.category_word(request.category)
        return pb.ListModelsResponse(models=self.catalog.list_models(category))

    def DeleteModel(self, request: pb.DeleteModelRequest, context: grpc.ServicerContext) -> pb.DeleteModelResponse:
        """Unload the model from Triton, remove it with its evaluations and predictions, cancel its
        unfinished evaluations' flow runs, then delete its artifact.

        Only its submitter or an admin may. When Triton cannot be reached the model is deleted all the
        same (and the failure logged): its Triton entry is named after name, version and artifact
        checksum, so no later model can be served from it, and the deployer's LRU unloads it.
        """
        caller = required_caller()
        if not request.version:
            raise InvalidArgument("give the version to delete (deleting every version needs one call each)")
        model, _ = self.catalog.get_model(request.name, request.version)
        if model.created_by != caller.name and not caller.admin:
            raise PermissionDenied(f"model {request.name}:{request.version} was submitted by another token: only "
                                   "its submitter or an admin may delete it")
        self._undeploy(model)
        deleted = self.catalog.delete_model(request.name, request.version)
        self.evaluations.notify_watchers()
        self.scheduler.cancel_runs(deleted.flow_runs, f"shiftboard: model {request.name}:{request.version} was "
                                                      f"deleted by {caller.name}")
        remove_objects(self.store, deleted, f"model {request.name}:{request.version}")
        log.info("model %s version %s deleted by %s (%d evaluation(s); flow runs cancelled: %s)", request.name,
                 request.version, caller.name, deleted.evaluations, ", ".join(deleted.flow_runs) or "none")
        return pb.DeleteModelResponse()

    def _undeploy(self, model: pb.Model) -> None:
        from shiftboard.adapters.triton.deployer import undeploy

        try:
            undeploy(self.settings, model)
        except ShiftboardError as exc:
            log.warning("could not unload model %s:%s from Triton at %s (deleting it anyway): %s",
                        model.metadata.name, model.metadata.version, self.settings.triton_target, exc.message)
