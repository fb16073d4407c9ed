"""Deployment of submitted models to Triton, with a bound on how many stay loaded.

``ModelDeployer.acquire(model)`` makes one model ready to serve and holds a *lease* on it while it
is evaluated:

1. the Triton model name is derived from the model's name, version and artifact checksum
   (:func:`triton_model_name`): valid for Triton, unique, and never serving a stale artifact;
2. unless the repository entry is already written, the artifact is downloaded from the object store,
   checked against the catalog's sha256, and written with
   :func:`~shiftboard.adapters.triton.repository.write_python_backend_model` (Python backend, any
   format, uint8 input normalised on the server, dynamic batching), or, for ONNX when
   ``settings.triton_onnx_backend`` is ``onnxruntime`` (the container Triton), with
   :func:`~shiftboard.adapters.triton.repository.write_onnxruntime_model` (Triton's onnxruntime backend,
   KIND_GPU with ``settings.triton_gpu``);
3. when loading it would exceed ``settings.triton_max_loaded_models``, the least recently used
   loaded models without a live lease are unloaded first (Triton's repository index says what is
   loaded); then the model is loaded with the explicit model-control API and awaited. A load error
   is raised as :class:`~shiftboard.adapters.triton.client.ModelFailed` carrying Triton's message.

A model that hangs in an inference request (past its deadline) is stopped with :meth:`ModelDeployer.stop_hung`:
it is unloaded (its instance answered the request at its deadline), and its Python-backend stub
processes (their command line names the entry's ``model.py``) still running are killed; Triton stays
ready and serves the others.

Several worker processes deploy at once, so the bookkeeping (last use per model, live leases) is
shared through the repository: :mod:`shiftboard.adapters.triton.leases`. Every Triton error is
translated once, by :func:`shiftboard.adapters.triton.client.translate`.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shiftboard.adapters.s3 import ObjectStore
from shiftboard.adapters.triton import repository as triton_repository
from shiftboard.adapters.triton.client import (
    ModelFailed,
    TritonAuth,
    TritonError,
    close_quietly,
    connect,
    is_unknown_model,
    translate,
)
from shiftboard.adapters.triton.leases import Lease, Registry
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import manifests, vocab

#: Held while a repository entry is checked and written (a file: Triton's index lists directories only).
ENTRY_LOCK_FILE = ".shiftboard-entries.lock"

log = logging.getLogger(__name__)

__all__ = ["DeploymentState", "Lease", "ModelDeployer", "deployment_state", "model_threads",
           "triton_model_name", "undeploy"]

READY_TIMEOUT_S = 300.0  # loading a model (a big one on a busy server) may take minutes
CALL_TIMEOUT_S = 30.0
STATE_TIMEOUT_S = 5.0  # deployment_state answers `model show`: never keep the user waiting
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def triton_model_name(name: str, version: str, sha256: str = "") -> str:
    """A Triton model name for a model version: readable prefix, unique 12-hex-digit suffix.

    ``resnet18--v1-3f2a9c0d41b7``: the suffix hashes name, version and artifact checksum, so names
    with separators in odd places never collide, and a re-submitted artifact gets a fresh entry.
    """
    digest = hashlib.sha256(f"{name}\0{version}\0{sha256}".encode()).hexdigest()[:12]
    readable = _UNSAFE.sub("_", f"{name}--{version}").replace("..", "_").lstrip("._-") or "m"
    return f"{readable[:64 - 13]}-{digest}"


def model_threads(settings: Settings) -> int:
    """CPU threads per deployed model instance: the setting, else cores / concurrent evaluations."""
    if settings.triton_model_threads > 0:
        return settings.triton_model_threads
    return max(1, (os.cpu_count() or 1) // settings.eval_concurrency)


@dataclass(frozen=True)
class DeploymentState:
    """A model's state in Triton: ``READY``, ``LOADING``, ``UNLOADING``, ``UNAVAILABLE`` (``reason``
    holds the load error, if any), or ``NOT_DEPLOYED`` when the repository has no entry."""

    model_name: str
    state: str
    reason: str = ""


def deployment_state(settings: Settings, model: pb.Model) -> DeploymentState:
    """Where ``model`` stands in Triton (for ``model show``); raises ``Unavailable`` if Triton is down."""
    name = triton_model_name(model.metadata.name, model.metadata.version, model.sha256)
    client = connect(settings.triton_target, TritonAuth.from_settings(settings))
    try:
        index = client.get_model_repository_index(as_json=True, client_timeout=STATE_TIMEOUT_S)
    except TritonError as exc:
        raise translate(exc, what="read the repository index", url=settings.triton_target) from exc
    finally:
        close_quietly(client)
    for entry in index.get("models", []):
        if entry.get("name") == name:
            return DeploymentState(name, entry.get("state") or "NOT_LOADED", entry.get("reason", ""))
    return DeploymentState(name, "NOT_DEPLOYED")


class ModelDeployer:
    """Loads models into one Triton server and keeps the number loaded bounded (see module doc)."""

    def __init__(self, settings: Settings, *, store: ObjectStore | None = None) -> None:
        self.settings = settings
        self.url = settings.triton_target
        self.auth = TritonAuth.from_settings(settings)
        self.repo = settings.triton_repository
        self.max_loaded = settings.triton_max_loaded_models
        self.registry = Registry(self.repo)
        self._store = store

    # ---------------------------------------------------------------- public

    def _ensure_entry(self, model: pb.Model) -> tuple[str, bool]:
        """The model's Triton name, its repository entry written unless already current (outside the
        registry lock: downloads can be slow), and whether it was (re)written."""
        md = model.metadata
        name = triton_model_name(md.name, md.version, model.sha256)
        self.repo.mkdir(parents=True, exist_ok=True)
        # One writer at a time (across processes): Triton lists an entry as soon as its directory exists,
        # so a second deployer (a preload and an evaluation's acquire) would find it half-written and
        # write it again, and the model would be loaded twice. Not the registry lock: loads hold that.
        with open(self.repo / ENTRY_LOCK_FILE, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                rewritten = not self._entry_current(name, model)
                if rewritten:
                    self._write_entry(name, model)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return name, rewritten

    def acquire(self, model: pb.Model) -> Lease:
        """Deploy ``model`` (if needed), wait until it is ready, and lease it; release the lease after use."""
        md = model.metadata
        start = time.monotonic()
        name, rewritten = self._ensure_entry(model)
        client = connect(self.url, self.auth)
        try:
            with self.registry.locked() as data:
                index = self._index(client)
                if rewritten or index.get(name, {}).get("state") != "READY":
                    self._make_room(client, data, index, keep=name)
                    self._load(client, name, md)
                lease_id = self.registry.add_lease(data, name)
            max_batch = self._max_batch_size(client, name)
        finally:
            close_quietly(client)
        log.info("leased %s for %s:%s in %.2f s", name, md.name, md.version, time.monotonic() - start)
        return Lease(self.registry, name, lease_id, max_batch)

    def preload(self, model: pb.Model) -> str:
        """Write ``model``'s entry and load it into Triton now, without a lease (the evaluation that
        follows leases it through :meth:`acquire`, which waits on the registry lock while this loads).
        Returns its Triton model name; raises as :meth:`acquire` does."""
        md = model.metadata
        start = time.monotonic()
        name, rewritten = self._ensure_entry(model)
        written_at = time.time()
        client = connect(self.url, self.auth)
        try:
            with self.registry.locked() as data:
                index = self._index(client)
                # an evaluation may have taken the lock first and loaded the entry written here
                stale = rewritten and data["last_used"].get(name, 0.0) < written_at
                if stale or index.get(name, {}).get("state") not in ("READY", "LOADING"):
                    self._make_room(client, data, index, keep=name)
                    self._load(client, name, md)
                data["last_used"][name] = time.time()
        finally:
            close_quietly(client)
        log.info("preloaded %s for %s:%s in %.2f s", name, md.name, md.version, time.monotonic() - start)
        return name

    def stop_hung(self, name: str, timeout_s: float = 60.0) -> str:
        """Unload model ``name`` (hung in a request), then kill what is left of its instance; returns what was done.

        The model's instance answered the hung request at its deadline
        (:mod:`~shiftboard.adapters.triton.python_model`), so the unload can complete while its thread
        still spins; the stub processes whose command line names ``<repo>/<name>/1/model.py`` that outlive
        the unload are killed. (Killing a stub while a request executes does not help: Triton keeps
        waiting for that request and the model stays UNLOADING.) Only stubs on this host can be killed.
        """
        client = connect(self.url, self.auth)
        state = ""
        try:
            try:
                client.unload_model(name, client_timeout=CALL_TIMEOUT_S)
            except TritonError as exc:
                if not is_unknown_model(exc):
                    raise translate(exc, what=f"unload {name}", url=self.url) from exc
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                state = self._index(client).get(name, {}).get("state") or ""
                if state not in ("READY", "UNLOADING", "LOADING"):
                    break
                time.sleep(0.2)
        finally:
            close_quietly(client)
        killed = _kill_stubs(name)
        with self.registry.locked() as data:
            data["last_used"].pop(name, None)
        if state in ("READY", "UNLOADING", "LOADING"):
            log.warning("model %s is still %s in Triton %.0f s after it was unloaded", name, state, timeout_s)
            return f"its unload from Triton did not complete (still {state}; {len(killed)} process(es) killed)"
        done = "it was unloaded from Triton"
        if killed:
            done += f" and {len(killed)} leftover process(es) of it killed"
        log.warning("stopped hung model %s: %s", name, done)
        return done

    def loaded_models(self) -> list[str]:
        """Names of the models Triton has loaded (READY) now."""
        client = connect(self.url, self.auth)
        try:
            return sorted(n for n, e in self._index(client).items() if e.get("state") == "READY")
        finally:
            close_quietly(client)

    def unload_idle(self) -> list[str]:
        """Unload every loaded model without a live lease; returns their names."""
        client = connect(self.url, self.auth)
        try:
            with self.registry.locked() as data:
                leased = self.registry.leased_models(data)
                idle = [n for n, e in self._index(client).items()
                        if e.get("state") == "READY" and n not in leased]
                for name in idle:
                    self._unload(client, name)
                return idle
        finally:
            close_quietly(client)

    # ---------------------------------------------------------------- steps

    def _entry_backend(self, model: pb.Model) -> tuple[str, str]:
        """The model's format word and the backend its entry uses: ``onnxruntime`` for ONNX when
        ``settings.triton_onnx_backend`` says so (a container Triton), else ``python``."""
        fmt = _format_word(model.metadata)
        onnxruntime = fmt == "onnx" and self.settings.triton_onnx_backend == "onnxruntime"
        return fmt, "onnxruntime" if onnxruntime else "python"

    def _entry_current(self, name: str, model: pb.Model) -> bool:
        entry = self.repo / name
        fmt, backend = self._entry_backend(model)
        artifact = entry / "1" / triton_repository.MODEL_FILES[fmt]
        if not ((entry / "config.pbtxt").is_file() and artifact.is_file()):
            return False
        if backend == "onnxruntime":
            return not (entry / "1" / "model.py").exists()
        try:
            model_py = (entry / "1" / "model.py").read_bytes()
        except OSError:
            return False
        return model_py == triton_repository.python_model_source()

    def _write_entry(self, name: str, model: pb.Model) -> None:
        md = model.metadata
        fmt, backend = self._entry_backend(model)
        spec = manifests.input_spec(md.input)
        with tempfile.TemporaryDirectory(prefix="shiftboard-model-") as tmp:
            path = Path(tmp) / triton_repository.MODEL_FILES[fmt]
            digest = self._download(model.artifact_uri, path)
            if model.sha256 and digest != model.sha256:
                raise ModelFailed(f"model {md.name}:{md.version}: the downloaded artifact's sha256 {digest} does "
                                  f"not match the catalog's {model.sha256}; nothing was deployed")
            max_batch = max(self.settings.eval_batch_size, 1)
            try:
                if backend == "onnxruntime":
                    triton_repository.write_onnxruntime_model(
                        self.repo, name, path, spec, md.num_classes, max_batch_size=max_batch,
                        gpu=self.settings.triton_gpu, sha256=digest)
                else:
                    triton_repository.write_python_backend_model(
                        self.repo, name, path, spec, md.num_classes, max_batch_size=max_batch,
                        torch_threads=model_threads(self.settings), sha256=digest, model_format=fmt,
                    )
            except InvalidArgument as exc:
                raise ModelFailed(f"model {md.name}:{md.version} cannot be deployed: {exc.message}") from exc
        log.info("wrote Triton entry %s for %s:%s (%s, %s backend)", name, md.name, md.version, fmt, backend)

    def _download(self, uri: str, path: Path) -> str:
        """Write the artifact at ``uri`` to ``path``; return its sha256 (hex)."""
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise FailedPrecondition(f"model artifact URI {uri!r} is not s3://bucket/key")
        bucket, key = uri[5:].split("/", 1)
        store = self._store
        if store is None or store.bucket != bucket:
            store = ObjectStore.from_settings(self.settings.replace(s3_bucket=bucket))
        digest = hashlib.sha256()
        with open(path, "wb") as f:
            for chunk in store.iter_chunks(key):
                digest.update(chunk)
                f.write(chunk)
        return digest.hexdigest()

    def _index(self, client: Any) -> dict[str, dict[str, Any]]:
        try:
            index = client.get_model_repository_index(as_json=True, client_timeout=CALL_TIMEOUT_S)
        except TritonError as exc:
            raise translate(exc, what="read the repository index", url=self.url) from exc
        return {e["name"]: e for e in index.get("models", []) if "name" in e}

    def _make_room(self, client: Any, data: dict[str, Any], index: dict[str, dict[str, Any]],
                   keep: str) -> None:
        loaded = [n for n, e in index.items() if e.get("state") in ("READY", "LOADING") and n != keep]
        excess = len(loaded) + 1 - self.max_loaded
        if excess <= 0:
            return
        leased = self.registry.leased_models(data)
        idle = sorted((n for n in loaded if n not in leased and index[n].get("state") == "READY"),
                      key=lambda n: (float(data["last_used"].get(n, 0.0)), n))
        for name in idle[:excess]:
            self._unload(client, name)
        if excess > len(idle):
            log.warning("Triton will hold %d models (limit %d): the others are being evaluated",
                        len(loaded) + 1 - len(idle[:excess]), self.max_loaded)

    def _unload(self, client: Any, name: str) -> None:
        log.info("unloading %s from Triton (least recently used)", name)
        try:
            client.unload_model(name, client_timeout=CALL_TIMEOUT_S)
        except TritonError as exc:
            raise translate(exc, what=f"unload {name}", url=self.url) from exc

    def _load(self, client: Any, name: str, md: pb.ModelMetadata) -> None:
        start = time.monotonic()
        try:
            client.load_model(name, client_timeout=READY_TIMEOUT_S)
        except TritonError as exc:
            raise translate(exc, what="load", url=self.url, model=f"{md.name}:{md.version}") from exc
        deadline = start + READY_TIMEOUT_S
        while True:
            try:
                if client.is_model_ready(name, client_timeout=CALL_TIMEOUT_S):
                    break
            except TritonError as exc:
                raise translate(exc, what="check readiness", url=self.url, model=name) from exc
            if time.monotonic() > deadline:
                raise ModelFailed(
                    f"model {md.name}:{md.version} was not ready {READY_TIMEOUT_S:.0f} s after loading")
            time.sleep(0.1)
        log.info("loaded %s into Triton in %.1f s", name, time.monotonic() - start)

    def _max_batch_size(self, client: Any, name: str) -> int:
        try:
            reply = client.get_model_config(name, as_json=True, client_timeout=CALL_TIMEOUT_S)
        except TritonError as exc:
            raise translate(exc, what="read the model config", url=self.url, model=name) from exc
        return int(reply.get("config", {}).get("max_batch_size") or 1)


def _format_word(md: pb.ModelMetadata) -> str:
    """The model's format word (a model stored before formats were recorded is TorchScript)."""
    try:
        return vocab.format_word(md.format)
    except InvalidArgument:
        return "torchscript"


def _kill_stubs(name: str) -> set[int]:
    """SIGKILL every Python-backend stub process of entry ``name`` on this host; returns their pids."""
    import psutil

    marker = f"/{name}/1/model.py"  # the name ends in a digest: no other entry's path ends so
    killed: set[int] = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if any(part.endswith(marker) for part in cmdline) \
                and any("triton_python_backend_stub" in part for part in cmdline):
            try:
                os.kill(proc.info["pid"], signal.SIGKILL)
                killed.add(proc.info["pid"])
            except (ProcessLookupError, PermissionError) as exc:
                log.warning("could not kill stub %d of %s: %s", proc.info["pid"], name, exc)
    return killed


def undeploy(settings: Settings, model: pb.Model) -> str:
    """Unload ``model`` from Triton and remove its repository entry and bookkeeping (a model deleted).

    Returns its Triton model name. The entry and the bookkeeping are removed even when Triton cannot
    be reached; that failure is raised afterwards (:class:`~shiftboard.domain.errors.Unavailable`). A model
    Triton does not know is not an error.
    """
    name = triton_model_name(model.metadata.name, model.metadata.version, model.sha256)
    repo = settings.triton_repository
    failure: Exception | None = None
    client = connect(settings.triton_target, TritonAuth.from_settings(settings))
    try:
        client.unload_model(name, client_timeout=CALL_TIMEOUT_S)
    except TritonError as exc:
        if not is_unknown_model(exc):
            failure = translate(exc, what=f"unload {name}", url=settings.triton_target)
    finally:
        close_quietly(client)
    if repo.is_dir():
        with Registry(repo).locked() as data:
            data["last_used"].pop(name, None)
            data["leases"] = {k: v for k, v in data["leases"].items() if v.get("model") != name}
            shutil.rmtree(repo / name, ignore_errors=True)
    log.info("undeployed %s (%s:%s) from Triton", name, model.metadata.name, model.metadata.version)
    if failure is not None:
        raise failure
    return name
