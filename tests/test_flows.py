"""The evaluation data path against real servers: tritonserver, the object store and the gateway.

A ``tritonserver`` from the nvidia-pytriton wheel runs on free ports for this module (explicit
model control, CPU); the object store and the gateway come from ``conftest.py``. Every prediction
that comes back through Triton is compared with the same TorchScript file run in-process with torch
on the same samples. Nothing is mocked.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from shiftboard import credentials
from shiftboard import testsets as ts
from shiftboard.adapters.s3 import ObjectStore
from shiftboard.adapters.triton.client import ModelFailed, TritonAuth
from shiftboard.adapters.triton.deployer import ModelDeployer, deployment_state, triton_model_name
from shiftboard.domain.errors import InvalidArgument, NotFound, Unavailable
from shiftboard.domain.shards import sha256_file
from shiftboard.flows.evaluate import RunProgress, logits_key, run_evaluation
from shiftboard.flows.inference import InferencePipeline
from shiftboard.flows.worker import submit_evaluation
from shiftboard.services.stack.triton import triton_spec
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers
from tests.conftest import GatewayHandle
from tests.helpers import free_settings, start_service

pytestmark = pytest.mark.stack

SUBSET = [1, 3, 5, 7, 9]


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def triton(object_store: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A tritonserver on free ports; settings that also point at the object store (bucket flows-tests)."""
    state = tmp_path_factory.mktemp("triton")
    settings = free_settings(state, base=object_store, s3_bucket="flows-tests", triton_max_loaded_models=2,
                             eval_batch_size=64, eval_in_flight=3)
    with start_service(triton_spec(settings, dict(os.environ)), state / "triton.log"):
        ObjectStore.from_settings(settings).ensure_bucket()
        yield settings


@pytest.fixture(scope="module")
def store(triton: Settings) -> ObjectStore:
    return ObjectStore.from_settings(triton)


def upload_model(store: ObjectStore, path: Path, name: str, *, classes: int = 10, mean: float | None = None,
                 std: float | None = None, version: str = "1") -> pb.Model:
    key = f"models/{name}/{version}/model.pt"
    store.put_bytes(key, path.read_bytes())
    spec = pb.InputSpec(channels=1, height=8, width=8, value_min=0.0, value_max=1.0,
                        mean=[] if mean is None else [mean], std=[] if std is None else [std])
    return pb.Model(metadata=pb.ModelMetadata(name=name, version=version, format=pb.MODEL_FORMAT_TORCHSCRIPT,
                                              input=spec, num_classes=classes),
                    sha256=sha256_file(path), artifact_uri=f"s3://{store.bucket}/{key}")


def upload_shards(store: ObjectStore, tmp_path: Path, name: str, n: int = 700,
                  shard_samples: int = 200) -> tuple[list[pb.Shard], np.ndarray, np.ndarray]:
    images, labels = helpers.digits(n)
    p = ts.prepare_testset(helpers.digits_npz(tmp_path / f"{name}.npz", n), out_dir=tmp_path / name,
                           shard_samples=shard_samples)
    shards = []
    for s in p.shards:
        key = f"testsets/{name}/{s.path.name}"
        store.put_bytes(key, s.path.read_bytes())
        shards.append(pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples,
                               size_bytes=s.size_bytes, sha256=s.sha256, key=key))
    return shards, images[:, None], labels


def torch_reference(path: Path, images: np.ndarray, spec: pb.InputSpec,
                    subset: list[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """top1, top5 (padded with -1) and confidence from the TorchScript file run here, in-process."""
    module = torch.jit.load(str(path)).eval()
    x = torch.from_numpy(images).float()
    x = spec.value_min + x / 255.0 * (spec.value_max - spec.value_min)
    if spec.mean:
        x = x - spec.mean[0]
    if spec.std:
        x = x / spec.std[0]
    with torch.inference_mode():
        logits = module(x)
    classes = torch.arange(logits.shape[1])
    if subset:
        classes = torch.tensor(subset)
        logits = logits[:, classes]
    k = min(5, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    top5 = np.full((len(images), 5), -1)
    top5[:, :k] = classes[top].numpy()
    confidence = logits.softmax(dim=1).max(dim=1).values.numpy()
    return classes[logits.argmax(dim=1)].numpy(), top5, confidence


def assert_matches_torch(batches: list[pb.Predictions], path: Path, images: np.ndarray, labels: np.ndarray,
                         spec: pb.InputSpec, subset: list[int] | None = None) -> None:
    """Every prediction equals torch in-process: top-1, top-5 exactly, confidence to 1e-5."""
    sample = np.concatenate([np.asarray(b.sample) for b in batches])
    assert sample.tolist() == list(range(len(images)))
    top1 = np.concatenate([np.asarray(b.top1) for b in batches])
    top5 = np.concatenate([np.asarray(b.top5) for b in batches]).reshape(-1, 5)
    confidence = np.concatenate([np.asarray(b.confidence) for b in batches])
    label = np.concatenate([np.asarray(b.label) for b in batches])
    # From the pipeline: no labels (the gateway scores with its own); read back from the gateway: those.
    assert (len(label) == 0 and not any(len(b.correct) for b in batches)) or label.tolist() == labels.tolist()
    want_top1, want_top5, want_confidence = torch_reference(path, images, spec, subset)
    assert (top1 == want_top1).all()
    assert (top5 == want_top5).all()
    np.testing.assert_allclose(confidence, want_confidence, atol=1e-5, rtol=0)


def fetch(store: ObjectStore) -> Callable[[pb.Shard], bytes]:
    return lambda shard: store.get_bytes(shard.key)


def pipeline(settings: Settings, model_name: str, *, subset: list[int] | None = None, classes: int = 10,
             **kwargs: object) -> InferencePipeline:
    return InferencePipeline(settings.triton_target, model_name, num_classes=classes, chw=(1, 8, 8),
                             class_subset=subset, batch_size=settings.eval_batch_size,
                             in_flight=settings.eval_in_flight, auth=TritonAuth.from_settings(settings),
                             **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ inference


def test_two_models_through_triton_equal_torch_in_process(triton, store, tmp_path):
    shards, images, labels = upload_shards(store, tmp_path, "digits-a")
    plain = helpers.torchscript_model(tmp_path / "a.pt", seed=1)
    normalised = helpers.torchscript_model(tmp_path / "b.pt", seed=2)
    models = [(plain, upload_model(store, plain, "plain")),
              (normalised, upload_model(store, normalised, "normalised", mean=0.5, std=0.25))]
    deployer = ModelDeployer(triton, store=store)
    for path, model in models:
        with deployer.acquire(model) as lease:
            assert lease.model_name == triton_model_name("plain" if path == plain else "normalised", "1",
                                                         model.sha256)
            for subset in (None, SUBSET):
                results = list(pipeline(triton, lease.model_name, subset=subset, keep_logits=True)
                               .run(shards, fetch(store)))
                assert [r.shard.index for r in results] == [0, 1, 2, 3]
                assert [len(r.predictions.top1) for r in results] == [200, 200, 200, 100]
                assert all(r.logits is not None and r.logits.shape == (len(r.predictions.top1), 10)
                           for r in results)
                assert_matches_torch([r.predictions for r in results], path, images, labels,
                                     model.metadata.input, subset)
                assert np.concatenate([r.labels for r in results]).tolist() == labels.tolist()
    assert deployment_state(triton, models[0][1]).state == "READY"


def test_resuming_runs_only_the_given_shards(triton, store, tmp_path):
    shards, images, labels = upload_shards(store, tmp_path, "digits-b", n=500, shard_samples=100)
    path = helpers.torchscript_model(tmp_path / "c.pt", seed=3)
    model = upload_model(store, path, "resumed")
    with ModelDeployer(triton, store=store).acquire(model) as lease:
        results = list(pipeline(triton, lease.model_name).run([shards[1], shards[3]],
                                                              fetch(store)))
    assert [r.shard.index for r in results] == [1, 3]
    assert list(results[1].predictions.sample) == list(range(300, 400))


def test_fewer_than_five_classes_pad_top5(triton, store, tmp_path):
    shards, images, _ = upload_shards(store, tmp_path, "digits-c", n=300)
    path = helpers.torchscript_model(tmp_path / "three.pt", classes=3, seed=4)
    model = upload_model(store, path, "three-classes", classes=3)
    with ModelDeployer(triton, store=store).acquire(model) as lease:
        results = list(pipeline(triton, lease.model_name, classes=3).run(shards, fetch(store)))
    top5 = np.concatenate([np.asarray(r.predictions.top5) for r in results]).reshape(-1, 5)
    assert (top5[:, 3:] == -1).all() and (top5[:, :3] >= 0).all()
    want_top1, want_top5, _ = torch_reference(path, images, model.metadata.input)
    assert (top5 == want_top5).all()
    assert (top5[:, 0] == want_top1).all()


# ------------------------------------------------------------------------------------ deployment


def test_lru_unload_keeps_at_most_n_loaded(triton, store, tmp_path):
    deployer = ModelDeployer(triton, store=store)
    deployer.unload_idle()
    models = [upload_model(store, helpers.torchscript_model(tmp_path / f"lru{i}.pt", seed=10 + i), f"lru{i}")
              for i in range(4)]
    names = [triton_model_name(m.metadata.name, "1", m.sha256) for m in models]

    def wait_loaded() -> list[str]:
        time.sleep(0.2)  # unloading is asynchronous in Triton
        deadline = time.monotonic() + 30
        while True:
            loaded = deployer.loaded_models()
            if len(loaded) <= triton.triton_max_loaded_models or time.monotonic() > deadline:
                return loaded
            time.sleep(0.2)

    for i in (0, 1):
        deployer.acquire(models[i]).release()
    assert set(wait_loaded()) == {names[0], names[1]}
    deployer.acquire(models[0]).release()  # 0 is now more recently used than 1
    deployer.acquire(models[2]).release()  # evicts 1
    assert set(wait_loaded()) == {names[0], names[2]}
    # a leased model is never unloaded, even when it is the least recently used
    with deployer.acquire(models[0]):
        deployer.acquire(models[3]).release()  # evicts 2, not the leased 0
        assert set(wait_loaded()) == {names[0], names[3]}
        deployer.acquire(models[1]).release()  # evicts 3
        assert set(wait_loaded()) == {names[0], names[1]}


def test_load_error_carries_tritons_message(triton, store, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a TorchScript archive")
    model = upload_model(store, bad, "broken")
    with pytest.raises(ModelFailed, match="Triton could not load model broken:1") as info:
        ModelDeployer(triton, store=store).acquire(model)
    state = deployment_state(triton, model)
    assert state.state == "UNAVAILABLE"
    assert state.reason and state.reason.split(":")[0] in str(info.value)


def test_model_failing_at_inference_is_permanent(triton, store, tmp_path):
    shards, _, _ = upload_shards(store, tmp_path, "digits-d", n=200)
    nan = upload_model(store, helpers.nan_model(tmp_path / "nan.pt"), "nan")
    # declared 12 classes, returns 10: the server-side model refuses its own output
    wide = upload_model(store, helpers.torchscript_model(tmp_path / "w.pt"), "wide", classes=12)
    deployer = ModelDeployer(triton, store=store)
    with deployer.acquire(nan) as lease, pytest.raises(ModelFailed, match="NaN or infinite"):
        list(pipeline(triton, lease.model_name).run(shards, fetch(store)))
    with deployer.acquire(wide) as lease, \
            pytest.raises(ModelFailed, match="returned 10 logits per image, expected 12"):
        list(pipeline(triton, lease.model_name, classes=12).run(shards, fetch(store)))


def test_corrupted_shard_and_unreachable_servers(triton, store, tmp_path):
    shards, _, _ = upload_shards(store, tmp_path, "digits-e", n=200, shard_samples=100)
    model = upload_model(store, helpers.torchscript_model(tmp_path / "e.pt"), "plain-e")
    with ModelDeployer(triton, store=store).acquire(model) as lease:
        tampered = [pb.Shard(**{**{f.name: getattr(shards[1], f.name) for f in pb.Shard.DESCRIPTOR.fields},
                                "sha256": "0" * 64})]
        with pytest.raises(InvalidArgument, match="does not match its sha256"):
            list(pipeline(triton, lease.model_name).run(tampered, fetch(store)))
        unreachable = triton.replace(triton_grpc_port=helpers.free_port())
        with pytest.raises(Unavailable, match="Triton"):
            list(pipeline(unreachable, lease.model_name).run(shards, fetch(store)))

        def store_down(shard: pb.Shard) -> bytes:
            raise Unavailable("object store at 127.0.0.1:1 is unreachable")

        with pytest.raises(Unavailable, match="object store"):
            list(pipeline(triton, lease.model_name).run(shards, store_down))
    with pytest.raises(Unavailable):
        ModelDeployer(triton.replace(triton_grpc_port=helpers.free_port()), store=store).acquire(model)


def test_stopping_early_releases_everything(triton, store, tmp_path):
    shards, _, _ = upload_shards(store, tmp_path, "digits-f", n=600, shard_samples=100)
    model = upload_model(store, helpers.torchscript_model(tmp_path / "f.pt"), "plain-f")
    with ModelDeployer(triton, store=store).acquire(model) as lease:
        results = pipeline(triton, lease.model_name).run(shards, fetch(store))
        first = next(results)
        results.close()  # e.g. the commit of the first shard failed
    assert first.shard.index == 0


# ------------------------------------------------------------------------------------ through the gateway


def _gateway_settings(gateway: GatewayHandle, triton: Settings) -> Settings:
    """The gateway's settings pointed at the module's Triton, with its key and (as in one stack's
    state directory) its TLS files."""
    import shutil

    shutil.copytree(credentials.tls_dir(triton), credentials.tls_dir(gateway.settings), dirs_exist_ok=True)
    return gateway.settings.replace(
        triton_http_port=triton.triton_http_port, triton_grpc_port=triton.triton_grpc_port,
        triton_metrics_port=triton.triton_metrics_port, triton_model_repository=str(triton.triton_repository),
        triton_max_loaded_models=triton.triton_max_loaded_models, eval_batch_size=64,
        triton_api_key=credentials.triton_key(triton) or "")


def _register(gateway: GatewayHandle, tmp_path: Path, name: str,
              subset: list[int] | None = None) -> pb.TestSet:
    out = tmp_path / f"{name}-shards"
    p = ts.prepare_testset(helpers.digits_npz(tmp_path / f"{name}.npz", 500), out_dir=out, shard_samples=128)
    spec = pb.TestSetSpec(
        name=name, kind=pb.TEST_SET_KIND_REFERENCE, num_classes=10, channels=1, height=8, width=8,
        num_samples=p.num_samples, class_subset=subset or [],
        shards=[pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples,
                         size_bytes=s.size_bytes, sha256=s.sha256) for s in p.shards])
    return gateway.client.add_testset(spec, [s.path for s in p.shards])


def test_run_evaluation_commits_every_shard_once_and_resumes(gateway, triton, tmp_path):
    client = gateway.client
    if not hasattr(client, "start_evaluation"):
        pytest.skip("the gateway has no evaluation RPCs yet")
    settings = _gateway_settings(gateway, triton)
    path = helpers.torchscript_model(tmp_path / "g.pt", seed=5)
    model = client.submit_model(path, pb.ModelMetadata(
        name="flows-gw", version="1", format=pb.MODEL_FORMAT_TORCHSCRIPT,
        input=pb.InputSpec(channels=1, height=8, width=8), num_classes=10,
        category=pb.MODEL_CATEGORY_STANDARD))
    images, labels = helpers.digits(500)
    for name, subset in (("flows-gw-all", None), ("flows-gw-odd", SUBSET)):
        _register(gateway, tmp_path, name, subset)
        key = pb.EvaluationKey(model="flows-gw", version="1", testset=name)

        class Killed(Exception):
            pass

        def die_after_two(evaluation: pb.Evaluation) -> None:
            if evaluation.shards_done == 2:
                raise Killed

        plan = client.start_evaluation(key, "run-1")
        assert list(plan.pending_shards) == [0, 1, 2, 3]
        with pytest.raises(Killed):
            run_evaluation(settings, client, plan, RunProgress(), on_shard=die_after_two)
        plan = client.start_evaluation(key, "run-2")
        assert list(plan.pending_shards) == [2, 3]
        progress = run_evaluation(settings.replace(store_logits=True), client, plan, RunProgress())
        assert progress.committed == {2, 3} and progress.samples == 500 - 256
        done = client.finish_evaluation(key)
        assert done.status == pb.EVALUATION_STATUS_SUCCEEDED and done.samples_done == 500
        batches = client.predictions("flows-gw", name, "1")
        sample = np.concatenate([np.asarray(b.sample) for b in batches])
        assert sample.tolist() == list(range(500))  # exactly one row per sample
        assert_matches_torch(batches, path, images[:, None], labels, model.metadata.input, subset)
        # the resumed run also stored its shards' full logits (a setting), as Parquet
        table = pq.read_table(io.BytesIO(gateway.store.get_bytes(logits_key(key, 3))))
        assert table.column("sample").to_pylist() == list(range(384, 500))
        logits = np.stack(table.column("logits").to_numpy(zero_copy_only=False))
        with torch.inference_mode():
            want = torch.jit.load(str(path))(torch.from_numpy(images[384:500, None]).float() / 255).numpy()
        np.testing.assert_allclose(logits, want, atol=1e-5)
        with pytest.raises(NotFound):
            gateway.store.get_bytes(logits_key(key, 0))  # shard 0 ran without the setting


# ------------------------------------------------------------------------------------ Prefect worker


def test_only_transient_failures_are_retried():
    from prefect.states import Failed

    from shiftboard.flows.evaluate import _retry_transient

    def retried(exc: Exception) -> bool:
        return _retry_transient(None, None, Failed(data=exc))  # type: ignore[arg-type]

    assert retried(Unavailable("Triton at x is unavailable"))
    assert not retried(ModelFailed("model m failed in Triton"))
    assert not retried(InvalidArgument("shard 0 does not match its sha256"))
    assert not retried(RuntimeError("anything else"))


class RaisesOnBrightImages(torch.nn.Module):
    """Fine on the gateway's probe batch (values in [0, 1]), raises on images mapped to [0, 255]."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.max() > 1.5):
            raise RuntimeError("input out of range")
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def prefect_auth() -> str:
    """The auth string of the module's Prefect server."""
    import secrets

    return secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory, prefect_auth: str) -> Iterator[str]:
    """A Prefect server (the stack's service spec, requiring ``prefect_auth``) on a free port; yields its API URL."""
    from shiftboard.services.stack.prefect_server import prefect_spec

    state = tmp_path_factory.mktemp("prefect")
    settings = free_settings(state, prefect_auth_string=prefect_auth)
    with start_service(prefect_spec(settings, dict(os.environ)), state / "prefect.log"):
        yield settings.prefect_api


def _submit_when_served(settings: Settings, keys: list[pb.EvaluationKey], worker: subprocess.Popen[bytes], *,
                        timeout_s: float) -> list[str]:
    """Submit ``keys`` once the worker has registered its deployments (seconds after it starts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return [submit_evaluation(settings, key) for key in keys]
        except Unavailable:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise
            time.sleep(0.5)


def _wait_for(client, key: pb.EvaluationKey, statuses: set[int], timeout_s: float = 180) -> pb.Evaluation:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [e for e in client.list_evaluations(model=key.model, testset=key.testset)
                 if e.key.version == key.version]
        if found and found[0].status in statuses:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"evaluation of {key} did not reach {statuses}: {found}")
        time.sleep(0.5)


def test_worker_runs_submitted_evaluations(gateway, triton, prefect_api, prefect_auth, tmp_path):
    """`shiftboard serve worker` against a real Prefect server: one pair succeeds, one fails for good."""
    client = gateway.client
    if not hasattr(client, "start_evaluation"):
        pytest.skip("the gateway has no evaluation RPCs yet")
    settings = _gateway_settings(gateway, triton).replace(prefect_api_url=prefect_api, eval_concurrency=2,
                                                          prefect_auth_string=prefect_auth)
    good = helpers.torchscript_model(tmp_path / "good.pt", seed=7)
    bright = tmp_path / "bright.pt"
    torch.jit.script(RaisesOnBrightImages()).save(str(bright))
    meta: dict[str, Any] = {"format": pb.MODEL_FORMAT_TORCHSCRIPT, "num_classes": 10,
                            "category": pb.MODEL_CATEGORY_STANDARD}
    good_model = client.submit_model(good, pb.ModelMetadata(
        name="worker-good", version="1", input=pb.InputSpec(channels=1, height=8, width=8), **meta))
    client.submit_model(bright, pb.ModelMetadata(
        name="worker-bright", version="1", input=pb.InputSpec(channels=1, height=8, width=8, value_max=255),
        **meta))
    _register(gateway, tmp_path, "worker-digits")

    env = {**os.environ, **settings.as_env(), "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "PREFECT_API_URL": prefect_api}
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen([sys.executable, "-m", "shiftboard.cli", "serve", "worker"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        good_key = pb.EvaluationKey(model="worker-good", version="1", testset="worker-digits")
        bright_key = pb.EvaluationKey(model="worker-bright", version="1", testset="worker-digits")
        runs = _submit_when_served(settings, [good_key, bright_key], worker, timeout_s=60)
        assert all(len(r) == 36 for r in runs)  # flow-run UUIDs
        done = _wait_for(client, good_key, {pb.EVALUATION_STATUS_SUCCEEDED, pb.EVALUATION_STATUS_FAILED})
        assert done.status == pb.EVALUATION_STATUS_SUCCEEDED, done.error
        assert done.samples_done == 500 and done.flow_run_id == runs[0]
        images, labels = helpers.digits(500)
        assert_matches_torch(client.predictions("worker-good", "worker-digits", "1"), good, images[:, None],
                             labels, good_model.metadata.input)
        failed = _wait_for(client, bright_key, {pb.EVALUATION_STATUS_SUCCEEDED, pb.EVALUATION_STATUS_FAILED})
        assert failed.status == pb.EVALUATION_STATUS_FAILED
        assert failed.error.startswith("model worker-bright:1 failed in Triton (infer): "
                                       "builtins.RuntimeError: input out of range"), failed.error
        assert failed.attempts == 1  # a broken model is not retried
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        log.close()


def test_sweep_requests_failed_pairs_again(gateway, triton, prefect_api, prefect_auth, monkeypatch, tmp_path):
    """The `sweep` flow, run in this process against the Prefect server, asks the gateway for every
    missing or failed pair."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from shiftboard.flows.sweep import sweep

    client = gateway.client
    if not hasattr(client, "request_evaluations"):
        pytest.skip("the gateway has no evaluation RPCs yet")
    client.submit_model(helpers.torchscript_model(tmp_path / "s.pt"), pb.ModelMetadata(
        name="sweep-model", version="1", format=pb.MODEL_FORMAT_TORCHSCRIPT,
        input=pb.InputSpec(channels=1, height=8, width=8), num_classes=10,
        category=pb.MODEL_CATEGORY_STANDARD))
    _register(gateway, tmp_path, "sweep-digits")
    key = pb.EvaluationKey(model="sweep-model", version="1", testset="sweep-digits")
    client.start_evaluation(key)
    client.finish_evaluation(key, failed=True, error="Triton at x is unavailable")
    settings = _gateway_settings(gateway, triton).replace(prefect_api_url=prefect_api, prefect_auth_string=prefect_auth)
    for name, value in settings.as_env().items():
        monkeypatch.setenv(name, value)
    with temporary_settings({PREFECT_API_URL: prefect_api, PREFECT_API_AUTH_STRING: prefect_auth}):
        result = sweep()
    assert result["requested"] == len(result["pairs"]) >= 1
    assert "sweep-model:1 on sweep-digits" in result["pairs"]


# ------------------------------------------------------------------------------------ class maps, sub-lists

CLASS_MAP = [[0, 1], [2, 5], [3], [7, 8, 9]]  # outputs 4 and 6 count for no class of the mapped set


def _register_shift(gateway: GatewayHandle, tmp_path: Path, name: str, images: np.ndarray, labels: np.ndarray,
                    reference: str, **fields: object) -> pb.TestSet:
    np.savez(tmp_path / f"{name}.npz", images=images, labels=labels)
    p = ts.prepare_testset(tmp_path / f"{name}.npz", out_dir=tmp_path / f"{name}-shards", shard_samples=64)
    spec = pb.TestSetSpec(
        name=name, kind=pb.TEST_SET_KIND_NATURAL, reference=reference, channels=1, height=8, width=8,
        num_samples=p.num_samples, shards=[pb.Shard(index=s.index, first_sample=s.first_sample,
                                                    num_samples=s.num_samples, size_bytes=s.size_bytes,
                                                    sha256=s.sha256) for s in p.shards], **fields)  # type: ignore[arg-type]
    return gateway.client.add_testset(spec, [s.path for s in p.shards])


def test_class_map_set_and_exact_reference_sub_lists_through_triton(gateway, triton, tmp_path):
    """A class-map set evaluated through real Triton gives numpy's max-within-group top-1; the same
    model's reference evaluation stores the exact restricted correctness of every restricted shift."""
    client = gateway.client
    settings = _gateway_settings(gateway, triton)
    path = helpers.torchscript_model(tmp_path / "cm.pt", seed=21)
    client.submit_model(path, pb.ModelMetadata(
        name="flows-cm", version="1", format=pb.MODEL_FORMAT_TORCHSCRIPT,
        input=pb.InputSpec(channels=1, height=8, width=8), num_classes=10, category=pb.MODEL_CATEGORY_STANDARD))
    images, labels = helpers.digits(500)
    _register(gateway, tmp_path, "flows-cm-ref")
    group_of = {o: g for g, outputs in enumerate(CLASS_MAP) for o in outputs}
    mapped = np.isin(labels, list(group_of))
    mapped_labels = np.array([group_of[int(y)] for y in labels[mapped]])
    _register_shift(gateway, tmp_path, "flows-cm-mapped", images[mapped], mapped_labels, "flows-cm-ref",
                    num_classes=len(CLASS_MAP), class_map=[pb.ClassGroup(outputs=g) for g in CLASS_MAP])
    sub = np.isin(labels, [6, 7])
    _register_shift(gateway, tmp_path, "flows-cm-sub", images[sub], labels[sub], "flows-cm-ref", num_classes=10,
                    class_subset=[6, 7])
    for testset in ("flows-cm-ref", "flows-cm-mapped", "flows-cm-sub"):
        key = pb.EvaluationKey(model="flows-cm", version="1", testset=testset)
        plan = client.start_evaluation(key, "run-cm")
        want = {"flows-cm-mapped", "flows-cm-sub"} if testset == "flows-cm-ref" else set()
        assert {r.shift for r in plan.restrictions} == want
        run_evaluation(settings, client, plan, RunProgress())
        assert client.finish_evaluation(key).status == pb.EVALUATION_STATUS_SUCCEEDED

    with torch.inference_mode():  # the same file in-process: the independent computation
        logits = torch.jit.load(str(path))(torch.from_numpy(images[:, None]).float() / 255.0).numpy()
    maxima = np.stack([logits[:, g].max(axis=1) for g in CLASS_MAP], axis=1)

    batches = client.predictions("flows-cm", "flows-cm-mapped", "1")
    top1 = np.concatenate([np.asarray(b.top1) for b in batches])
    assert np.concatenate([np.asarray(b.label) for b in batches]).tolist() == mapped_labels.tolist()
    assert top1.tolist() == maxima[mapped].argmax(axis=1).tolist()  # predictions in the set's label space
    accuracy = client.accuracy(model="flows-cm", testset="flows-cm-mapped")[0]
    assert accuracy.accuracy == pytest.approx(float((top1 == mapped_labels).mean()))
    assert 0 < accuracy.accuracy < 1

    # Reference accuracy on each shift's classes: exact, from the logits, not from top-5.
    mapped_board = client.leaderboard(shift="flows-cm-mapped", resamples=50)
    (row,) = [r for r in mapped_board.rows if r.model == "flows-cm:1"]
    assert row.n_ref == int(mapped.sum())
    assert row.ref_acc == pytest.approx(float((maxima[mapped].argmax(axis=1) == mapped_labels).mean()))
    sub_board = client.leaderboard(shift="flows-cm-sub", resamples=50)
    (row,) = [r for r in sub_board.rows if r.model == "flows-cm:1"]
    restricted = np.array([6, 7])[logits[sub][:, [6, 7]].argmax(axis=1)]
    assert row.n_ref == int(sub.sum()) and row.ref_acc == pytest.approx(float((restricted == labels[sub]).mean()))
    assert not any("rebuilt" in note for note in [*mapped_board.notes, *sub_board.notes])
