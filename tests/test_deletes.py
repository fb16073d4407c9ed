"""Deleting models and test sets, and uploads that are never registered, against real servers.

- `testset delete` removes the test set's shard objects and every catalog row it owns (shards, labels,
  evaluations on it, predictions, a rerun's staged rows, aggregates) in one step; its boards are gone,
  the evaluations on other test sets stay, and the same name can be registered again;
- only its registrant or an admin may delete it; a test set that is another's reference is refused,
  naming the dependants;
- a failed `testset add` leaves no staging object and no upload row (the client aborts the upload), and
  the gateway's janitor removes an upload past its expiry (and staging objects no upload row names);
- on the real stack, deleting a test set or a model while its evaluation runs cancels the flow run
  (Prefect shows it CANCELLED) and leaves no evaluation behind.

The gateway-level tests play the worker themselves (StartEvaluation, CommitShard, FinishEvaluation with
predictions computed in-process), against gateways of their own (no Prefect: pairs are recorded, not
handed out).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from shiftboard import testsets as ts
from shiftboard.cli.app import app
from shiftboard.client import Client
from shiftboard.domain.errors import FailedPrecondition, NotFound, PermissionDenied
from shiftboard.services.gateway.testset_rpcs import staging_key, staging_prefix
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers
from tests.conftest import GatewayHandle, serving_gateway
from tests.stack_fixtures import RunningStack, started_stack
from tests.test_end_to_end import Slow, add_testset, marked, save, wait_for
from tests.test_end_to_end import metadata as e2e_metadata
from tests.test_evaluations import torch_predictions
from tests.test_gateway import metadata, prepared, spec_of
from tests.test_stuck_runs import _flow_run_state

pytestmark = pytest.mark.stack


def cli(handle: GatewayHandle, *args: str, token: str | None = None):
    env = {k: v for k, v in handle.settings.as_env().items() if v}
    if token is not None:
        env["SHIFTBOARD_TOKEN"] = token
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def own_gateway(object_store: Settings, tmp_path: Path) -> Iterator[GatewayHandle]:
    """A gateway of its own, with a bucket of its own, whose uploads expire after 60 s: far more than a test
    set of these tests takes to upload, even on a loaded machine whose object store is slow to take the first
    object of a new bucket (5 s was seen to be too little)."""
    with serving_gateway(object_store.replace(upload_url_ttl_s=60), tmp_path / "gw",
                         f"deletes-{uuid.uuid4().hex[:12]}") as handle:
        yield handle


@pytest.fixture
def expiring_gateway(object_store: Settings, tmp_path: Path) -> Iterator[GatewayHandle]:
    """The same, with uploads that expire after 5 s (its janitor looks every 2.5 s)."""
    with serving_gateway(object_store.replace(upload_url_ttl_s=5), tmp_path / "gw",
                         f"deletes-{uuid.uuid4().hex[:12]}") as handle:
        yield handle


def _evaluate(gw: GatewayHandle, key: pb.EvaluationKey, model_path: Path, *, finish: bool = True,
              shards: int | None = None) -> None:
    """Play the worker: start, commit the plan's shards (the first ``shards`` of them), finish."""
    plan = gw.client.start_evaluation(key, f"run-{key.model}-{key.testset}")
    spec = gw.client.get_testset(key.testset).spec
    for index in list(plan.pending_shards)[:shards]:
        shard = spec.shards[index]
        images, labels = ts.read_shard(gw.store.get_bytes(shard.key))
        gw.client.commit_shard(key, index, torch_predictions(model_path, images, labels, shard.first_sample), 0.1)
    if finish:
        gw.client.finish_evaluation(key)


def _count(gw: GatewayHandle, sql: str, params: list[object]) -> int:
    return int(gw.server.catalog.query(sql, params)[0][0])


def test_deleting_a_testset_removes_everything_it_owns(own_gateway, tmp_path):
    gw = own_gateway
    p = prepared(tmp_path, 300)
    gw.client.add_testset(spec_of("del-ref", p), [s.path for s in p.shards])
    gw.client.add_testset(spec_of("del-shift", p, kind=pb.TEST_SET_KIND_NATURAL, reference="del-ref"),
                          [s.path for s in p.shards])
    models = {}
    for i, name in enumerate(("del-a", "del-b", "del-c")):
        models[name] = helpers.torchscript_model(tmp_path / f"{name}.pt", seed=i)
        gw.client.submit_model(models[name], metadata(name))
        for testset in ("del-ref", "del-shift"):
            _evaluate(gw, pb.EvaluationKey(model=name, version="1", testset=testset), models[name])
    # A rerun under way on the shift: its rows are staged under the evaluation's negated id.
    key = pb.EvaluationKey(model="del-a", version="1", testset="del-shift")
    result = cli(gw, "eval", "request", "--rerun", "--model", "del-a", "--testset", "del-shift")
    assert result.exit_code == 0, result.output
    _evaluate(gw, key, models["del-a"], finish=False, shards=1)
    ids = [int(r[0]) for r in gw.server.catalog.query("SELECT id FROM evaluations WHERE testset = 'del-shift'")]
    all_ids = ids + [-i for i in ids]
    assert _count(gw, "SELECT count(*) FROM evaluation_shards WHERE evaluation_id < 0", []) == 1
    for testset in ("del-ref", "del-shift"):  # logits the worker stores with SHIFTBOARD_STORE_LOGITS
        gw.store.put_bytes(f"logits/del-a/1/{testset}/shard-000000.parquet", b"logits")
    keys = [s.key for s in gw.client.get_testset("del-shift").spec.shards]
    assert keys and all(gw.store.size(k) for k in keys)
    assert gw.client.leaderboard(shift="del-shift").shift == "del-shift"  # computed: aggregates stored
    assert "del-shift" in {b.shift for b in gw.client.overview()}
    assert _count(gw, "SELECT count(*) FROM aggregates WHERE list_contains(?, evaluation_id)", [all_ids]) > 0

    # The reference of another test set is refused, naming the dependant.
    with pytest.raises(FailedPrecondition, match="del-ref is the reference of del-shift"):
        gw.client.delete_testset("del-ref")
    result = cli(gw, "testset", "delete", "del-ref")
    assert result.exit_code == 1 and "del-shift" in result.output and "Traceback" not in result.output

    result = cli(gw, "testset", "delete", "del-shift")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "deleted test set del-shift and 3 evaluation(s) on it"
    with pytest.raises(NotFound):
        gw.client.get_testset("del-shift")
    assert all(gw.store.size(k) is None for k in keys)
    assert not gw.store.list("testsets/del-shift/")
    assert gw.store.list("logits/") == ["logits/del-a/1/del-ref/shard-000000.parquet"]
    for table_name, column in (("testsets", "name"), ("shards", "testset"), ("shard_labels", "testset"),
                               ("evaluations", "testset"), ("restricted_correct", "shift"),
                               ("aggregates", "variant")):
        assert _count(gw, f"SELECT count(*) FROM {table_name} WHERE {column} = 'del-shift'", []) == 0, table_name
    for table_name in ("predictions", "prediction_top1", "restricted_correct", "evaluation_shards", "aggregates"):
        assert _count(gw, f"SELECT count(*) FROM {table_name} WHERE list_contains(?, evaluation_id)",
                      [all_ids]) == 0, table_name
    assert not gw.client.list_evaluations(testset="del-shift")
    with pytest.raises(NotFound):
        gw.client.leaderboard(shift="del-shift")
    assert "del-shift" not in {b.shift for b in gw.client.overview()}
    # The reference's evaluations are untouched.
    assert {a.key.model for a in gw.client.accuracy(testset="del-ref")} == {"del-a", "del-b", "del-c"}
    assert _count(gw, "SELECT count(*) FROM evaluation_shards s JOIN evaluations e ON e.id = s.evaluation_id "
                      "WHERE e.testset = 'del-ref'", []) == 9

    # The same name can be registered again: its pairs are pending afresh, with nothing of the old rows.
    gw.client.add_testset(spec_of("del-shift", p, kind=pb.TEST_SET_KIND_NATURAL, reference="del-ref"),
                          [s.path for s in p.shards])
    again = gw.client.list_evaluations(testset="del-shift")
    assert {e.key.model for e in again} == {"del-a", "del-b", "del-c"}
    assert all(e.status == pb.EVALUATION_STATUS_PENDING and e.shards_done == 0 for e in again)
    assert gw.client.delete_testset("del-shift") == 3
    assert gw.client.delete_testset("del-ref") == 3  # no dependant left
    assert not gw.store.list("testsets/") and not gw.store.list("logits/")
    assert _count(gw, "SELECT count(*) FROM evaluations", []) == 0
    with pytest.raises(NotFound, match="does not exist"):
        gw.client.delete_testset("del-ref")


def test_only_its_registrant_or_an_admin_deletes_a_testset(own_gateway, tmp_path):
    gw = own_gateway
    tokens = {name: gw.client.create_token(name, role=role).token
              for name, role in (("del-alice", pb.TOKEN_ROLE_SUBMITTER), ("del-bob", pb.TOKEN_ROLE_SUBMITTER),
                                 ("del-eve", pb.TOKEN_ROLE_EVALUATOR))}
    alice, bob, eve = (Client(gw.target, tokens[n]) for n in ("del-alice", "del-bob", "del-eve"))
    try:
        p = prepared(tmp_path, 200)
        alice.add_testset(spec_of("del-alices", p), [s.path for s in p.shards])
        bob.add_testset(spec_of("del-bobs", p), [s.path for s in p.shards])
        with pytest.raises(PermissionDenied, match="registered by another token"):
            bob.delete_testset("del-alices")
        with pytest.raises(PermissionDenied):
            eve.delete_testset("del-alices")  # an evaluator deletes nothing
        result = cli(gw, "testset", "delete", "del-alices", token=tokens["del-bob"])
        assert result.exit_code == 1 and "another token" in result.output and "Traceback" not in result.output
        assert gw.client.get_testset("del-alices").spec.name == "del-alices"  # still there, whole
        assert all(gw.store.size(s.key) for s in gw.client.get_testset("del-alices").spec.shards)
        assert alice.delete_testset("del-alices") == 0
        assert gw.client.delete_testset("del-bobs") == 0  # an admin deletes anyone's
        assert not gw.client.list_testsets()
    finally:
        for c in (alice, bob, eve):
            c.close()


def test_a_failed_upload_leaves_nothing(own_gateway, tmp_path):
    gw = own_gateway
    p = prepared(tmp_path, 300)
    files = [s.path for s in p.shards]
    missing = tmp_path / "gone.npz"
    with pytest.raises(OSError):
        gw.client.add_testset(spec_of("del-failed", p), [*files[:-1], missing])  # the last PUT fails
    assert not gw.store.list("staging/")  # the shards already uploaded were removed with the upload
    assert not gw.server.catalog.list_uploads()
    with pytest.raises(NotFound):
        gw.client.get_testset("del-failed")

    # Another token may not abort someone's upload; an unknown upload is no error.
    token = gw.client.create_token("del-mallory").token
    upload = gw.client.create_upload("del-other", 1)
    with Client(gw.target, token) as mallory, pytest.raises(PermissionDenied):
        mallory.abort_upload(upload.upload_id)
    assert gw.server.catalog.get_upload(upload.upload_id) is not None
    gw.client.abort_upload(upload.upload_id)
    gw.client.abort_upload(upload.upload_id)
    assert gw.server.catalog.get_upload(upload.upload_id) is None


def test_an_expired_upload_is_swept_by_the_janitor(expiring_gateway, tmp_path):
    gw = expiring_gateway
    p = prepared(tmp_path, 128)
    upload = gw.client.create_upload("del-expiring", 1)
    with httpx.Client() as http:
        response = http.put(upload.shards[0].url, content=p.shards[0].path.read_bytes())
    assert response.status_code < 300, response.text
    assert gw.store.size(staging_key(upload.upload_id, 0)) == p.shards[0].size_bytes
    orphan = staging_key("0" * 32, 0)  # a staging object no upload row names
    gw.store.put_bytes(orphan, b"left over")

    def swept() -> bool:
        return gw.server.catalog.get_upload(upload.upload_id) is None and not gw.store.list("staging/")

    wait_for(swept, "the janitor to remove the expired upload and the orphan staging object", 60)
    assert not gw.store.list(staging_prefix(upload.upload_id))
    # Registering it now says what to do.
    with pytest.raises(FailedPrecondition, match="unknown or expired"):
        gw.client.register_testset(upload.upload_id, spec_of("del-expiring", p))


# ------------------------------------------------------------------------------------------ the stack


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of its own with small inference requests, so that a slow model's evaluation lasts long
    enough to be deleted mid-run."""
    with started_stack(tmp_path_factory.mktemp("deletes") / "state", eval_batch_size=16) as stack:
        yield stack


def test_deleting_mid_run_cancels_the_flow_run(slow_stack, tmp_path):
    """A test set deleted while a model's evaluation on it runs, then a model deleted while its evaluation
    runs: each flow run ends CANCELLED in Prefect (the worker's runner stops it), and nothing of the pair
    is left."""
    settings = slow_stack.settings
    with Client.from_settings(settings) as client:
        images, labels = helpers.digits()
        add_testset(client, tmp_path / "a", "del-run-a", marked(images), labels, 60,  # the slow model: slow here
                    kind=pb.TEST_SET_KIND_REFERENCE)
        client.submit_model(save(Slow(), tmp_path / "slow.pt", 5), e2e_metadata("del-slow"))

        def running(model: str, testset: str) -> pb.Evaluation | None:
            found = client.list_evaluations(model=model, testset=testset)
            assert not found or found[0].status != pb.EVALUATION_STATUS_SUCCEEDED, f"{model} on {testset} ended " \
                "before it could be deleted mid-run"
            if found and found[0].status == pb.EVALUATION_STATUS_RUNNING and found[0].shards_done >= 1:
                return found[0]
            return None

        wait_for(lambda: running("del-slow", "del-run-a") is not None, "the slow evaluation to commit a shard")
        evaluation = running("del-slow", "del-run-a")
        assert evaluation is not None and evaluation.shards_done < evaluation.shards_total
        assert client.delete_testset("del-run-a") == 1
        wait_for(lambda: _flow_run_state(settings, evaluation.flow_run_id) == "CANCELLED",
                 "the deleted test set's flow run to be cancelled", 120)
        assert not client.list_evaluations(testset="del-run-a")

        # The model deleted mid-run (its only pair: the new test set's).
        add_testset(client, tmp_path / "b", "del-run-b", marked(images), labels, 60,
                    kind=pb.TEST_SET_KIND_REFERENCE)
        wait_for(lambda: running("del-slow", "del-run-b") is not None, "the second evaluation to commit a shard")
        second = running("del-slow", "del-run-b")
        assert second is not None and second.flow_run_id != evaluation.flow_run_id
        client.delete_model("del-slow", "1")
        wait_for(lambda: _flow_run_state(settings, second.flow_run_id) == "CANCELLED",
                 "the deleted model's flow run to be cancelled", 120)
        assert not client.list_evaluations(model="del-slow")
