"""Authorisation, trusted results and bounded work, against real gateways and a real object store.

Tokens carry a role (admin, submitter, evaluator); only evaluators and admins write results, and
what is correct comes from the labels the gateway stored at registration, never from the caller.
Streams, resamples and request sizes are bounded so that anonymous callers cannot starve the
gateway. The Triton test starts a real tritonserver (the fixture of tests/test_flows.py).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import hmac
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import grpc
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shiftboard import credentials
from shiftboard import testsets as ts
from shiftboard.adapters.duckdb.catalog import MIGRATIONS, Catalog
from shiftboard.adapters.s3 import ObjectStore
from shiftboard.adapters.triton.deployer import ModelDeployer, deployment_state, triton_model_name
from shiftboard.client import Client
from shiftboard.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from shiftboard.flows.evaluate import RunProgress, logits_key, run_evaluation
from shiftboard.services.gateway.auth import Authenticator, legacy_hash
from shiftboard.services.gateway.limits import MAX_RESAMPLES
from shiftboard.services.gateway.server import Gateway, create_server
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.v1 import shiftboard_pb2_grpc as pb_grpc
from tests import helpers
from tests.conftest import GatewayHandle
from tests.test_flows import triton  # noqa: F401 - module fixture: a real tritonserver
from tests.test_gateway import metadata, prepared, spec_of

pytestmark = pytest.mark.stack


@dataclass
class Users:
    alice: Client  # submitter
    bob: Client  # submitter
    eve: Client  # evaluator
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def users(gateway: GatewayHandle) -> Iterator[Users]:
    tokens = {
        "authz-alice": gateway.client.create_token("authz-alice", role=pb.TOKEN_ROLE_SUBMITTER).token,
        "authz-bob": gateway.client.create_token("authz-bob").token,  # no role: submitter
        "authz-eve": gateway.client.create_token("authz-eve", role=pb.TOKEN_ROLE_EVALUATOR).token,
    }
    alice, bob, eve = (Client(gateway.target, tokens[n]) for n in ("authz-alice", "authz-bob", "authz-eve"))
    clients = Users(alice, bob, eve, tokens=tokens)
    yield clients
    for c in (clients.alice, clients.bob, clients.eve):
        c.close()


@pytest.fixture(scope="module")
def testset(gateway: GatewayHandle, tmp_path_factory: pytest.TempPathFactory) -> pb.TestSet:
    """300 digits in 3 shards, registered by the admin."""
    p = prepared(tmp_path_factory.mktemp("authz-set"), 300)
    return gateway.client.add_testset(spec_of("authz-ref", p), [s.path for s in p.shards])


def true_labels(gateway: GatewayHandle, shard: pb.Shard) -> np.ndarray:
    return ts.read_shard(gateway.store.get_bytes(shard.key))[1]


def predictions(shard: pb.Shard, top1: np.ndarray, *, labels: np.ndarray | None = None) -> pb.Predictions:
    n = int(shard.num_samples)
    top5 = np.stack([top1] + [(top1 + k) % 10 for k in range(1, 5)], axis=1)
    out = pb.Predictions(sample=range(shard.first_sample, shard.first_sample + n), top1=top1.tolist(),
                         top5=top5.ravel().tolist(), confidence=[0.5] * n)
    if labels is not None:
        out.label.extend(labels.tolist())
    return out


def submit(client: Client, tmp_path: Path, name: str) -> pb.Model:
    return client.submit_model(helpers.torchscript_model(tmp_path / f"{name}.pt"), metadata(name))


# ------------------------------------------------------------------------------------------ roles


def test_submitter_is_denied_every_evaluator_and_admin_rpc(gateway, users, testset, tmp_path):
    submit(users.alice, tmp_path, "authz-denied")
    key = pb.EvaluationKey(model="authz-denied", version="1", testset="authz-ref")
    shard = testset.spec.shards[0]
    labels = true_labels(gateway, shard)
    calls = {
        "StartEvaluation": lambda c: c.start_evaluation(key),
        "CommitShard": lambda c: c.commit_shard(key, 0, predictions(shard, labels), 0.1),
        "FinishEvaluation": lambda c: c.finish_evaluation(key, failed=True, error="forged"),
        "CreateToken": lambda c: c.create_token("authz-mallory", role=pb.TOKEN_ROLE_ADMIN),
        "ListTokens": lambda c: c.list_tokens(),
        "RevokeToken": lambda c: c.revoke_token("admin"),
    }
    for name, call in calls.items():
        with pytest.raises(PermissionDenied, match="authz-alice") as info:
            call(users.alice)
        assert "submitter" in info.value.message, name
    # The legacy admin flag does not help either.
    with pytest.raises(PermissionDenied, match="not an admin"):
        users.alice.create_token("authz-mallory", admin=True)
    # Nothing was written: the pair is still pending with no shard, no token was made.
    [evaluation] = gateway.client.list_evaluations(model="authz-denied", testset="authz-ref")
    assert evaluation.status == pb.EVALUATION_STATUS_PENDING and evaluation.shards_done == 0
    assert "authz-mallory" not in {t.name for t in gateway.client.list_tokens()}
    # An evaluator writes results but makes no tokens and submits nothing.
    with pytest.raises(PermissionDenied, match="not an admin"):
        users.eve.create_token("authz-mallory")
    with pytest.raises(PermissionDenied, match="evaluator"):
        submit(users.eve, tmp_path, "authz-by-evaluator")
    with pytest.raises(PermissionDenied, match="evaluator"):
        users.eve.delete_model("authz-denied", "1")


def test_submitter_deletes_only_its_own_models(gateway, users, testset, tmp_path):
    own = submit(users.alice, tmp_path, "authz-own")
    other = submit(users.bob, tmp_path, "authz-other")
    assert (own.created_by, other.created_by) == ("authz-alice", "authz-bob")
    with pytest.raises(PermissionDenied, match="submitted by another token"):
        users.alice.delete_model("authz-other", "1")
    assert gateway.client.get_model("authz-other", "1").sha256 == other.sha256  # still there
    users.alice.delete_model("authz-own", "1")
    with pytest.raises(NotFound):
        gateway.client.get_model("authz-own", "1")
    assert gateway.store.size(own.artifact_uri.split("/", 3)[3]) is None
    gateway.client.delete_model("authz-other", "1")  # an admin deletes anyone's


def test_delete_removes_evaluations_and_predictions(gateway, users, testset, tmp_path):
    submit(users.alice, tmp_path, "authz-gone")
    key = pb.EvaluationKey(model="authz-gone", version="1", testset="authz-ref")
    users.eve.start_evaluation(key)
    for shard in testset.spec.shards:
        users.eve.commit_shard(key, shard.index, predictions(shard, true_labels(gateway, shard)), 0.1)
    users.eve.finish_evaluation(key)
    catalog = gateway.server.catalog
    [(evaluation_id,)] = catalog.query("SELECT id FROM evaluations WHERE model = 'authz-gone' AND "
                                       "testset = 'authz-ref'")
    assert catalog.query("SELECT count(*) FROM predictions WHERE evaluation_id = ?", [evaluation_id]) == [(300,)]
    users.alice.delete_model("authz-gone", "1")
    assert gateway.client.list_evaluations(model="authz-gone") == []
    for table in ("predictions", "evaluation_shards"):
        assert catalog.query(f"SELECT count(*) FROM {table} WHERE evaluation_id = ?", [evaluation_id]) == [(0,)]
    with pytest.raises(NotFound):
        gateway.client.predictions("authz-gone", "authz-ref", "1")


# ------------------------------------------------------------------------------------------ trusted results


def test_correctness_follows_the_platforms_labels(gateway, users, testset, tmp_path):
    """top1 equals the true label for the first 7 samples of each shard, is wrong for the others."""
    submit(users.alice, tmp_path, "authz-scored")
    key = pb.EvaluationKey(model="authz-scored", version="1", testset="authz-ref")
    users.eve.start_evaluation(key)
    want = []
    for shard in testset.spec.shards:
        labels = true_labels(gateway, shard)
        top1 = (labels + 1) % 10
        top1[:7] = labels[:7]
        want.append(np.arange(len(labels)) < 7)
        # Sending labels (here: ones that would make every sample right) is refused, nothing stored.
        with pytest.raises(InvalidArgument, match="platform's own"):
            users.eve.commit_shard(key, shard.index, predictions(shard, top1, labels=top1), 0.1)
        forged = predictions(shard, top1)
        forged.correct.extend([True] * len(top1))
        with pytest.raises(InvalidArgument, match="platform's own"):
            users.eve.commit_shard(key, shard.index, forged, 0.1)
        users.eve.commit_shard(key, shard.index, predictions(shard, top1), 0.1)
    assert users.eve.finish_evaluation(key).status == pb.EVALUATION_STATUS_SUCCEEDED
    stored = gateway.client.predictions("authz-scored", "authz-ref")
    correct = np.concatenate([np.asarray(b.correct) for b in stored])
    np.testing.assert_array_equal(correct, np.concatenate(want))
    label = np.concatenate([np.asarray(b.label) for b in stored])
    np.testing.assert_array_equal(label, np.concatenate([true_labels(gateway, s) for s in testset.spec.shards]))
    [acc] = gateway.client.accuracy(model="authz-scored", testset="authz-ref")
    assert (acc.correct, acc.samples) == (21, 300)


def test_forging_accuracy_with_labels_no_longer_works(gateway, users, testset, tmp_path):
    """The attack of the issue: a model at ~10% raised to 100% by sending labels equal to its top-1."""
    submit(users.alice, tmp_path, "authz-weak")
    key = pb.EvaluationKey(model="authz-weak", version="1", testset="authz-ref")
    constant = {s.index: np.zeros(s.num_samples, dtype=np.int64) for s in testset.spec.shards}  # always "0"
    # With the submitter's token: no write at all.
    with pytest.raises(PermissionDenied):
        users.alice.start_evaluation(key)
    with pytest.raises(PermissionDenied):
        users.alice.commit_shard(key, 0, predictions(testset.spec.shards[0], constant[0], labels=constant[0]), 0)
    # With an evaluator's token: labels are refused; without them the truth is stored.
    users.eve.start_evaluation(key)
    for shard in testset.spec.shards:
        with pytest.raises(InvalidArgument, match="platform's own"):
            users.eve.commit_shard(key, shard.index, predictions(shard, constant[shard.index],
                                                                  labels=constant[shard.index]), 0.1)
        users.eve.commit_shard(key, shard.index, predictions(shard, constant[shard.index]), 0.1)
    users.eve.finish_evaluation(key)
    labels = np.concatenate([true_labels(gateway, s) for s in testset.spec.shards])
    [acc] = gateway.client.accuracy(model="authz-weak", testset="authz-ref")
    assert acc.correct == int((labels == 0).sum()) and acc.accuracy < 0.2
    # A submitter cannot mark another pair failed either.
    with pytest.raises(PermissionDenied):
        users.bob.finish_evaluation(key, failed=True, error="sabotage")
    [evaluation] = gateway.client.list_evaluations(model="authz-weak", testset="authz-ref")
    assert evaluation.status == pb.EVALUATION_STATUS_SUCCEEDED and evaluation.error == ""


def test_labels_of_an_older_test_set_are_loaded_once(gateway, users, testset, tmp_path):
    """A set registered before labels were stored: CommitShard reads them from the shard, then keeps them."""
    catalog = gateway.server.catalog
    stored = catalog.query("SELECT idx, labels FROM shard_labels WHERE testset = 'authz-ref' ORDER BY idx")
    assert [i for i, _ in stored] == [0, 1, 2]
    assert np.frombuffer(stored[1][1], dtype="<i4").tolist() == true_labels(gateway, testset.spec.shards[1]).tolist()
    catalog.query("DELETE FROM shard_labels WHERE testset = 'authz-ref'")
    submit(users.alice, tmp_path, "authz-older")
    key = pb.EvaluationKey(model="authz-older", version="1", testset="authz-ref")
    users.eve.start_evaluation(key)
    shard = testset.spec.shards[1]
    labels = true_labels(gateway, shard)
    users.eve.commit_shard(key, 1, predictions(shard, labels), 0.1)
    assert catalog.query("SELECT idx FROM shard_labels WHERE testset = 'authz-ref'") == [(1,)]
    [batch] = gateway.client.predictions("authz-older", "authz-ref")
    assert all(batch.correct) and list(batch.label) == labels.tolist()
    for s in testset.spec.shards:  # the others too, so later tests see the set as registered
        users.eve.commit_shard(key, s.index, predictions(s, true_labels(gateway, s)), 0.1)
    assert len(catalog.query("SELECT idx FROM shard_labels WHERE testset = 'authz-ref'")) == 3


def test_predictions_outside_a_class_subset_are_refused(gateway, users, tmp_path):
    p = prepared(tmp_path, 100)
    spec = spec_of("authz-subset", p)
    spec.class_subset.extend([1, 3, 5, 7, 9])
    subset_set = gateway.client.add_testset(spec, [s.path for s in p.shards])
    submit(users.alice, tmp_path, "authz-subset-model")
    key = pb.EvaluationKey(model="authz-subset-model", version="1", testset="authz-subset")
    users.eve.start_evaluation(key)
    shard = subset_set.spec.shards[0]
    labels = true_labels(gateway, shard)  # include classes outside the subset
    with pytest.raises(InvalidArgument, match="class sub-list"):
        users.eve.commit_shard(key, 0, predictions(shard, labels), 0.1)


# ------------------------------------------------------------------------------------------ tokens


def test_token_list_revoke_and_keyed_hashes(gateway, users, cli_env):
    temp = gateway.client.create_token("authz-temp", role=pb.TOKEN_ROLE_EVALUATOR)
    assert temp.role == pb.TOKEN_ROLE_EVALUATOR
    listed = {t.name: t for t in gateway.client.list_tokens()}
    assert listed["authz-temp"].role == pb.TOKEN_ROLE_EVALUATOR and listed["authz-temp"].created_by == "admin"
    assert listed["admin"].role == pb.TOKEN_ROLE_ADMIN and listed["evaluator"].role == pb.TOKEN_ROLE_EVALUATOR
    assert listed["authz-alice"].role == pb.TOKEN_ROLE_SUBMITTER
    # The row holds HMAC-SHA256 under the gateway's key, not SHA256(token).
    [(stored, scheme)] = gateway.server.catalog.query("SELECT hash, scheme FROM tokens WHERE name = 'authz-temp'")
    key = credentials.token_key(gateway.settings)
    assert key is not None and scheme == "hmac-sha256"
    assert stored != hashlib.sha256(temp.token.encode()).hexdigest()
    assert stored == hmac.new(key, temp.token.encode(), hashlib.sha256).hexdigest()
    mode = credentials.token_key_file(gateway.settings).stat().st_mode & 0o777
    assert mode == 0o600
    client = Client(gateway.target, temp.token)
    with pytest.raises(NotFound):  # authorised: the model is what is missing
        client.start_evaluation(pb.EvaluationKey(model="nope", version="1", testset="nope"))
    with pytest.raises(PermissionDenied):
        users.alice.revoke_token("authz-temp")
    gateway.client.revoke_token("authz-temp")
    with pytest.raises(Unauthenticated, match="not valid"):
        client.start_evaluation(pb.EvaluationKey(model="nope", version="1", testset="nope"))
    client.close()
    assert "authz-temp" not in {t.name for t in gateway.client.list_tokens()}
    with pytest.raises(NotFound, match="no token named"):
        gateway.client.revoke_token("authz-temp")
    for own in ("admin", "evaluator"):
        with pytest.raises(FailedPrecondition, match="gateway's own token"):
            gateway.client.revoke_token(own)
        with pytest.raises(AlreadyExists):
            gateway.client.create_token(own)
    assert gateway.client.server_info()  # the admin token still works


def test_token_cli(gateway, cli_env):
    from typer.testing import CliRunner

    from shiftboard.cli.app import app

    runner = CliRunner()
    run = lambda *a, env=cli_env: runner.invoke(app, list(a), env=env)  # noqa: E731
    help_text = run("token", "create", "--help").output
    assert "--role" in help_text and "evaluator" in help_text
    assert "revoke" in run("token", "--help").output and "list" in run("token", "--help").output
    made = run("token", "create", "authz-cli", "--role", "evaluator")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    import json

    rows = {r["name"]: r for r in json.loads(run("token", "list", "--json").stdout)}
    assert rows["authz-cli"]["role"] == "evaluator" and "hash" not in rows["authz-cli"]
    assert token not in run("token", "list").stdout
    bad = run("token", "create", "authz-cli2", "--role", "root")
    assert bad.exit_code == 1 and "unknown role 'root'" in bad.output
    as_submitter = {**cli_env, "SHIFTBOARD_TOKEN": users_token(gateway)}
    denied = run("token", "revoke", "authz-cli", env=as_submitter)
    assert denied.exit_code == 1 and "not an admin token" in denied.output and "Traceback" not in denied.output
    assert run("token", "revoke", "authz-cli").exit_code == 0
    gone = run("token", "revoke", "authz-cli")
    assert gone.exit_code == 1 and "no token named 'authz-cli'" in gone.output
    own = run("token", "revoke", "admin")
    assert own.exit_code == 1 and "gateway's own token" in own.output


def users_token(gateway: GatewayHandle) -> str:
    return gateway.client.create_token(f"authz-cli-sub-{time.monotonic_ns()}").token


@pytest.fixture
def cli_env(gateway: GatewayHandle) -> dict[str, str]:
    env = {k: v for k, v in gateway.settings.as_env().items() if v}
    env["SHIFTBOARD_GATEWAY_ADDRESS"] = gateway.target
    env["SHIFTBOARD_TOKEN"] = ""
    return env


def test_older_catalog_migrates_roles_and_rehashes(tmp_path):
    """A schema-2 catalog with sha256 token rows: roles from the admin flag, rows rehashed on first use."""
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
        for version, sql in enumerate(MIGRATIONS[:2], start=1):
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
        conn.execute("INSERT INTO tokens VALUES ('old-admin', ?, true, now()), ('old-user', ?, false, now())",
                     [legacy_hash("sbt_old-admin"), legacy_hash("sbt_old-user")])
    catalog = Catalog(path)
    try:
        assert catalog.schema_version >= 3
        auth = Authenticator(catalog, b"k" * 32)
        assert auth.find("sbt_old-admin").role == "admin"  # type: ignore[union-attr]
        assert auth.find("sbt_old-user").role == "submitter"  # type: ignore[union-attr]
        assert auth.find("sbt_wrong") is None
        rows = dict(catalog.query("SELECT name, hash FROM tokens WHERE scheme = 'hmac-sha256'"))
        assert rows == {"old-admin": auth.hash("sbt_old-admin"), "old-user": auth.hash("sbt_old-user")}
        assert auth.find("sbt_old-user").role == "submitter"  # type: ignore[union-attr]
    finally:
        catalog.close()


# ------------------------------------------------------------------------------------------ bounded work


def _stub_call(channel: grpc.Channel, token: str | None) -> grpc.Future:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    return pb_grpc.ShiftboardStub(channel).WatchEvaluations(pb.ListEvaluationsRequest(), metadata=metadata)


def test_streams_are_bounded_and_unary_calls_stay_responsive(object_store, tmp_path):
    """A gateway of its own with the default 16 threads: at most 8 streams, 4 per caller."""
    settings = object_store.replace(state_dir=str(tmp_path / "state"), s3_bucket="authz-dos", auto_evaluate=False)
    assert (settings.gateway_workers, settings.stream_limit, settings.max_streams_per_caller) == (16, 8, 4)
    gw = create_server(settings, port=0)
    target = f"127.0.0.1:{gw.port}"
    admin = Client(target, credentials.admin_token(settings))
    channel = grpc.insecure_channel(target)
    calls: list[grpc.Future] = []
    try:
        p = prepared(tmp_path, 100)
        admin.add_testset(spec_of("dos-set", p), [s.path for s in p.shards])
        admin.submit_model(helpers.torchscript_model(tmp_path / "m.pt"), metadata("dos-model"))
        alice = admin.create_token("dos-alice").token
        bob = admin.create_token("dos-bob").token

        def open_stream(token: str | None) -> str:
            call = _stub_call(channel, token)
            calls.append(call)
            try:
                first = next(call)  # an accepted stream sends the current evaluations at once
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
                return exc.details()
            assert first.key.model == "dos-model"
            return "open"

        anonymous = [open_stream(None) for _ in range(16)]  # the attack: one per thread
        assert anonymous.count("open") == 4
        assert all("anonymous" in r and "SHIFTBOARD_MAX_STREAMS_PER_CALLER=4" in r for r in anonymous[4:])
        assert [open_stream(alice) for _ in range(5)][4] != "open"
        refused = open_stream(bob)  # 8 open: the gateway's total is reached
        assert "SHIFTBOARD_MAX_STREAMS" in refused and "all are in use" in refused
        assert gw_streams(gw) == 8

        # While they stay open, unary calls and the health check answer at once, also many together.
        health = health_pb2_grpc.HealthStub(channel)
        start = time.monotonic()
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == \
            health_pb2.HealthCheckResponse.SERVING
        with cf.ThreadPoolExecutor(24) as pool:
            results = list(pool.map(lambda _: len(Client(target).list_models()), range(24)))
        assert results == [1] * 24
        assert admin.server_info().version
        assert time.monotonic() - start < 10

        # A closed stream frees its slot.
        calls[0].cancel()
        deadline = time.monotonic() + 10
        while gw_streams(gw) > 7 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert open_stream(bob) == "open"

        # GetPredictions is a stream too and shares the bound.
        with pytest.raises(ResourceExhausted, match="streams"):
            Client(target).predictions("dos-model", "dos-set", "1")
    finally:
        for call in calls:
            call.cancel()
        channel.close()
        admin.close()
        gw.stop(grace=1)


def gw_streams(gw: Gateway) -> int:
    assert gw.servicer is not None
    return gw.servicer.streams.open_streams()


def test_resamples_and_request_sizes_are_capped(gateway, testset):
    anonymous = Client(gateway.target)
    start = time.monotonic()
    with pytest.raises(ResourceExhausted, match=f"at most {MAX_RESAMPLES}"):  # before anything is read
        anonymous.leaderboard(shift=testset.spec.name, resamples=10**9)
    assert time.monotonic() - start < 2
    for ask in (lambda: anonymous.calibration(testset.spec.name, 10**9),
                lambda: anonymous.consistency("m", "n", testset.spec.name, 10**9),
                lambda: anonymous.consistency_matrix(testset.spec.name, resamples=10**9)):
        with pytest.raises(ResourceExhausted, match=f"at most {MAX_RESAMPLES}"):
            ask()
    with pytest.raises(ResourceExhausted, match="at most 1000"):
        Client(gateway.target, credentials.admin_token(gateway.settings)).request_evaluations(
            [pb.EvaluationKey(model="m", version="1", testset="t")] * 1001)
    with pytest.raises(ResourceExhausted, match="at most 1024 samples"):
        anonymous.samples("authz-ref", list(range(1025)))
    anonymous.close()


# ------------------------------------------------------------------------------------------ Triton


def test_worker_path_and_delete_unloads_from_triton(triton, tmp_path, caplog):  # noqa: F811 - the fixture
    """A gateway of its own pointing at a real tritonserver. The worker's path with the evaluator token:
    predictions without labels, correctness equal to torch's in-process; the logits files keep the labels.
    Deleting the deployed model unloads it and removes its repository entry; a model Triton never saw
    deletes cleanly too."""
    # Triton's state directory: its key and certificates are there (this module's Triton only).
    settings = triton.replace(s3_bucket="authz-triton", auto_evaluate=False, gateway_port=0)
    gw = create_server(settings, port=0)
    admin = Client(f"127.0.0.1:{gw.port}", credentials.admin_token(settings))
    try:
        model = admin.submit_model(helpers.torchscript_model(tmp_path / "t.pt", seed=7), metadata("authz-triton"))
        never = admin.submit_model(helpers.torchscript_model(tmp_path / "n.pt", seed=8), metadata("authz-never"))
        p = prepared(tmp_path, 300)
        admin.add_testset(spec_of("authz-triton-set", p), [s.path for s in p.shards])
        key = pb.EvaluationKey(model="authz-triton", version="1", testset="authz-triton-set")
        with Client(f"127.0.0.1:{gw.port}", credentials.evaluator_token(settings)) as worker:
            plan = worker.start_evaluation(key)
            run_evaluation(settings.replace(store_logits=True), worker, plan, RunProgress())
            assert worker.finish_evaluation(key).status == pb.EVALUATION_STATUS_SUCCEEDED
        images, labels = helpers.digits(300)
        with torch.inference_mode():
            want = torch.jit.load(str(tmp_path / "t.pt"))(torch.from_numpy(images[:, None]).float() / 255.0)
        [acc] = admin.accuracy(model="authz-triton", testset="authz-triton-set")
        assert acc.correct == int((want.argmax(1).numpy() == labels).sum()) and acc.samples == 300
        table = pq.read_table(io.BytesIO(ObjectStore.from_settings(settings).get_bytes(logits_key(key, 1))))
        assert table.column("label").to_pylist() == labels[128:256].tolist()
        with ModelDeployer(settings).acquire(admin.get_model("authz-triton", "1")) as lease:
            assert lease.model_name == triton_model_name("authz-triton", "1", model.sha256)
        assert deployment_state(settings, model).state == "READY"
        assert admin.get_model("authz-triton", "1").deployment.state == "READY"
        entry = settings.triton_repository / lease.model_name
        assert entry.is_dir() and lease.model_name in ModelDeployer(settings).loaded_models()
        admin.delete_model("authz-triton", "1")
        assert lease.model_name not in ModelDeployer(settings).loaded_models()
        assert deployment_state(settings, model).state == "NOT_DEPLOYED"
        assert not entry.exists()
        admin.delete_model("authz-never", "1")
        assert deployment_state(settings, never).state == "NOT_DEPLOYED"
        assert admin.list_models() == []
        assert "could not unload" not in caplog.text
    finally:
        admin.close()
        gw.stop(grace=1)


def test_worker_runs_with_the_evaluator_token_only(tmp_path):
    """The stack starts the worker with the evaluator token as SHIFTBOARD_TOKEN and no admin token."""
    from pydantic import SecretStr

    from shiftboard.services.stack.specs import worker_spec
    from shiftboard.settings import Settings

    settings = Settings(state_dir=str(tmp_path), admin_token=SecretStr("sbt_admin-secret"))
    env = worker_spec(settings, {**settings.as_env(), "SHIFTBOARD_TOKEN": "sbt_admin-secret"}).env
    evaluator = credentials.evaluator_token(settings)
    assert evaluator and env["SHIFTBOARD_TOKEN"] == evaluator
    assert "sbt_admin-secret" not in env.values()
    assert credentials.client_token(Settings.from_env(env)) == evaluator
    assert credentials.evaluator_token_file(settings).stat().st_mode & 0o777 == 0o600
