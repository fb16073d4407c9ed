"""Runs that lose their worker, and reruns.

- a killed worker's pair finishes by itself on the real stack (no command typed): the gateway's watchdog
  sees its heartbeat go quiet, marks its Prefect run crashed and hands the pair out again; the new run
  resumes without duplicating a row;
- `eval request` with no arguments re-requests stuck (running, no heartbeat) and failed pairs and leaves
  live ones alone; a pair's model version defaults to the newest;
- `eval request --rerun` infers every shard again; the earlier predictions stay until the rerun has every
  shard, then are replaced in one transaction; a failed rerun leaves them as they were.

The gateway-level tests play the worker themselves (StartEvaluation, CommitShards, FinishEvaluation with
predictions computed in-process), against a gateway of their own (no Prefect: pairs are recorded, not
handed out).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from shiftboard import credentials
from shiftboard import testsets as ts
from shiftboard.cli.app import app
from shiftboard.client import Client
from shiftboard.services.stack import runfile
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers
from tests.conftest import GatewayHandle, serving_gateway
from tests.stack_fixtures import RunningStack, started_stack
from tests.test_end_to_end import Slow, add_testset, all_done, marked, save, wait_for
from tests.test_end_to_end import metadata as e2e_metadata
from tests.test_evaluations import torch_predictions
from tests.test_gateway import metadata, prepared, spec_of

pytestmark = pytest.mark.stack


def cli(handle: GatewayHandle, *args: str):
    env = {k: v for k, v in handle.settings.as_env().items() if v}
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def quick_gateway(object_store: Settings, tmp_path: Path) -> Iterator[GatewayHandle]:
    """A gateway of its own that deems a run lost after 4 s without a heartbeat."""
    with serving_gateway(object_store.replace(eval_stale_s=4.0, eval_heartbeat_s=1.0), tmp_path / "gw",
                         "stuck-tests") as handle:
        yield handle


def _predictions(handle: GatewayHandle, key: pb.EvaluationKey, model_path: Path) -> list[pb.Predictions]:
    spec = handle.client.get_testset(key.testset).spec
    out = []
    for shard in spec.shards:
        images, labels = ts.read_shard(handle.store.get_bytes(shard.key))
        out.append(torch_predictions(model_path, images, labels, shard.first_sample))
    return out


def _stored_top1(handle: GatewayHandle, key: pb.EvaluationKey) -> tuple[np.ndarray, np.ndarray]:
    stored = handle.client.predictions(key.model, key.testset, key.version)
    sample = np.concatenate([np.asarray(b.sample) for b in stored])
    return sample, np.concatenate([np.asarray(b.top1) for b in stored])


def _status(handle: GatewayHandle, key: pb.EvaluationKey) -> pb.Evaluation:
    [evaluation] = handle.client.list_evaluations(model=key.model, testset=key.testset)
    return evaluation


def test_request_re_requests_stuck_and_failed_pairs_and_defaults_the_version(quick_gateway, tmp_path):
    gw = quick_gateway
    p = prepared(tmp_path, 300)
    gw.client.add_testset(spec_of("stuck-set", p), [s.path for s in p.shards])
    for name in ("stuck-live", "stuck-dead", "stuck-failed"):
        gw.client.submit_model(helpers.torchscript_model(tmp_path / f"{name}.pt"), metadata(name))
    gw.client.submit_model(helpers.torchscript_model(tmp_path / "v2.pt", seed=2), metadata("stuck-live", "2"))
    live, dead, failed = (pb.EvaluationKey(model=m, version="1", testset="stuck-set")
                          for m in ("stuck-live", "stuck-dead", "stuck-failed"))
    for key in (live, dead, failed):
        gw.client.start_evaluation(key, f"run-{key.model}")
    gw.client.finish_evaluation(failed, failed=True, error="Triton at x is unavailable")
    # `live` keeps sending heartbeats (a CommitShards stream of its key alone); `dead` goes quiet.
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 6:
        beat = gw.client.commit_shards(live, [])
        assert beat.status == pb.EVALUATION_STATUS_RUNNING and beat.shards_done == 0  # stores nothing
        time.sleep(0.3)

    gw.client.commit_shards(live, [])
    result = cli(gw, "eval", "request")
    assert result.exit_code == 0, result.output
    assert _status(gw, dead).status == pb.EVALUATION_STATUS_PENDING
    assert _status(gw, failed).status == pb.EVALUATION_STATUS_PENDING
    [live_now] = [e for e in gw.client.list_evaluations(model="stuck-live") if e.key.version == "1"]
    assert live_now.status == pb.EVALUATION_STATUS_RUNNING  # its run is alive: not handed out twice

    # Asking for the live pair by name leaves it alone too, and says so.
    gw.client.commit_shards(live, [])
    result = cli(gw, "eval", "request", "--model", "stuck-live", "--version", "1", "--testset", "stuck-set")
    assert result.exit_code == 0 and "1 already running" in result.output, result.output
    # No --version: the newest version of the model (before, "model version is empty").
    result = cli(gw, "eval", "request", "--model", "stuck-live", "--testset", "stuck-set")
    assert result.exit_code == 0 and "queued 1 evaluation(s)" in result.output, result.output
    assert "already running" not in result.output  # not version 1, which is running
    by_version = {e.key.version: e.status for e in gw.client.list_evaluations(model="stuck-live")}
    assert by_version == {"1": pb.EVALUATION_STATUS_RUNNING, "2": pb.EVALUATION_STATUS_PENDING}
    result = cli(gw, "eval", "request", "--version", "1")
    assert result.exit_code == 1 and "--version needs --model" in result.output, result.output


def test_rerun_infers_every_shard_and_swaps_the_rows_at_once(quick_gateway, tmp_path):
    gw = quick_gateway
    p = prepared(tmp_path, 300)
    gw.client.add_testset(spec_of("rerun-set", p), [s.path for s in p.shards])
    first, second = (helpers.torchscript_model(tmp_path / f"m{seed}.pt", seed=seed) for seed in (1, 7))
    gw.client.submit_model(first, metadata("rerun-model"))
    key = pb.EvaluationKey(model="rerun-model", version="1", testset="rerun-set")
    old, new = _predictions(gw, key, first), _predictions(gw, key, second)
    old_top1 = np.concatenate([np.asarray(x.top1) for x in old])
    new_top1 = np.concatenate([np.asarray(x.top1) for x in new])
    assert (old_top1 != new_top1).any()  # the two runs are told apart by their predictions
    plan = gw.client.start_evaluation(key, "run-1")
    for i in plan.pending_shards:
        gw.client.commit_shard(key, i, old[i], 0.1)
    gw.client.finish_evaluation(key)
    [old_accuracy] = gw.client.accuracy(model="rerun-model")

    result = cli(gw, "eval", "request", "--rerun", "--model", "rerun-model", "--testset", "rerun-set")
    assert result.exit_code == 0 and "queued 1 evaluation(s)" in result.output, result.output
    assert _status(gw, key).status == pb.EVALUATION_STATUS_PENDING
    plan = gw.client.start_evaluation(key, "run-2")
    assert list(plan.pending_shards) == [0, 1, 2]  # every shard again (before: none, all were done)
    for i in (0, 1):
        progress = gw.client.commit_shard(key, i, new[i], 0.1)
    assert progress.shards_done == 2 and progress.status == pb.EVALUATION_STATUS_RUNNING  # the rerun's progress
    # Until the rerun has every shard, the earlier results are what is stored and shown.
    sample, top1 = _stored_top1(gw, key)
    np.testing.assert_array_equal(sample, np.arange(300))
    np.testing.assert_array_equal(top1, old_top1)
    assert gw.client.accuracy(model="rerun-model") == [old_accuracy]

    # A failed rerun leaves them as they were.
    failed = gw.client.finish_evaluation(key, failed=True, error="Triton at x is unavailable")
    assert failed.status == pb.EVALUATION_STATUS_FAILED and "earlier results are kept" in failed.error
    np.testing.assert_array_equal(_stored_top1(gw, key)[1], old_top1)
    assert gw.client.accuracy(model="rerun-model") == [old_accuracy]

    # Asked again (here by `eval request` with no arguments: the pair failed), the rerun goes on from its
    # staged shards; its last shard swaps the whole new set in.
    assert cli(gw, "eval", "request").exit_code == 0
    plan = gw.client.start_evaluation(key, "run-3")
    assert list(plan.pending_shards) == [2]
    gw.client.commit_shard(key, 2, new[2], 0.1)
    np.testing.assert_array_equal(_stored_top1(gw, key)[1], old_top1)
    done = gw.client.finish_evaluation(key)
    assert done.status == pb.EVALUATION_STATUS_SUCCEEDED and done.shards_done == 3 and not done.error
    sample, top1 = _stored_top1(gw, key)
    np.testing.assert_array_equal(sample, np.arange(300))  # exactly one row per sample
    np.testing.assert_array_equal(top1, new_top1)
    [accuracy] = gw.client.accuracy(model="rerun-model")
    labels = np.concatenate([ts.read_shard(gw.store.get_bytes(s.key))[1]
                             for s in gw.client.get_testset("rerun-set").spec.shards])
    assert accuracy.correct == int((new_top1 == labels).sum())

    # A rerun of a model that was deleted meanwhile leaves no staged rows behind (the pair is gone).
    assert cli(gw, "eval", "request", "--rerun", "--model", "rerun-model", "--testset", "rerun-set").exit_code == 0
    gw.client.start_evaluation(key, "run-4")
    gw.client.commit_shard(key, 0, old[0], 0.1)
    gw.client.delete_model("rerun-model", "1")
    assert gw.server.catalog.query("SELECT count(*) FROM predictions")[0][0] == 0


def _flow_run_state(settings: Settings, flow_run_id: str) -> str:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    values = {PREFECT_API_URL: settings.prefect_api}
    auth = credentials.prefect_auth_string(settings)
    if auth:
        values[PREFECT_API_AUTH_STRING] = auth
    with temporary_settings(values), get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run_id)).state
    return state.type.value if state is not None else ""


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of its own: small inference requests, so that the slow model's evaluation lasts long enough
    to be killed mid-run (tens of seconds), and a run deemed lost after 10 s without a heartbeat."""
    with started_stack(tmp_path_factory.mktemp("stuck") / "state", eval_batch_size=16, eval_stale_s=10.0,
                       eval_heartbeat_s=2.0) as stack:
        yield stack


def test_killed_worker_pair_finishes_by_itself(slow_stack, tmp_path):
    """The worker (and its flow-run processes) killed mid-run; the supervisor starts a new worker. Nobody
    types a command: the pair is handed out again once its heartbeat is older than eval_stale_s, resumes,
    and finishes with exactly one row per sample; the killed flow run is marked crashed in Prefect."""
    settings = slow_stack.settings
    with Client.from_settings(settings) as client:
        images, labels = helpers.digits()
        add_testset(client, tmp_path / "big", "stuck-big", marked(images), labels, 60,  # slow on these only
                    kind=pb.TEST_SET_KIND_REFERENCE)
        client.submit_model(save(Slow(), tmp_path / "slow.pt", 5), e2e_metadata("stuck-slow"))

        def progressed() -> bool:
            [e] = client.list_evaluations(model="stuck-slow", testset="stuck-big")
            assert e.status != pb.EVALUATION_STATUS_SUCCEEDED, "the slow evaluation ended before it could be killed"
            return e.status == pb.EVALUATION_STATUS_RUNNING and e.shards_done >= 2

        wait_for(progressed, "the slow evaluation to commit two shards")
        run = runfile.read_run_file(settings)
        assert run is not None, "the running stack has no run file"
        worker = next(s for s in run["services"] if s["name"] == "worker")
        os.killpg(worker["pid"], signal.SIGKILL)  # the worker and its flow-run processes
        [killed] = client.list_evaluations(model="stuck-slow", testset="stuck-big")
        assert killed.shards_done < killed.shards_total and killed.flow_run_id

        wait_for(all_done(client, model="stuck-slow"), "the pairs of the killed run to finish by themselves", 600)
        [evaluation] = client.list_evaluations(model="stuck-slow", testset="stuck-big")
        assert evaluation.status == pb.EVALUATION_STATUS_SUCCEEDED, evaluation.error
        assert evaluation.attempts >= 2 and evaluation.flow_run_id != killed.flow_run_id
        before = client.predictions("stuck-slow", "stuck-big")
        sample = np.concatenate([b.sample for b in before])
        np.testing.assert_array_equal(sample, np.arange(len(images)))  # exactly one row per sample
        assert _flow_run_state(settings, killed.flow_run_id) == "CRASHED"

        # --rerun through the real worker: every shard is inferred again (before, it committed 0 samples).
        result = CliRunner().invoke(app, ["eval", "request", "--rerun", "--model", "stuck-slow", "--testset",
                                          "stuck-big"], env={k: v for k, v in settings.as_env().items() if v})
        assert result.exit_code == 0 and "queued 1 evaluation(s)" in result.output, result.output
        wait_for(all_done(client, model="stuck-slow", testset="stuck-big"), "the rerun", 600)
        [rerun] = client.list_evaluations(model="stuck-slow", testset="stuck-big")
        assert rerun.status == pb.EVALUATION_STATUS_SUCCEEDED, rerun.error
        assert rerun.attempts > evaluation.attempts and rerun.samples_per_second > 0  # samples of its own run
        after = client.predictions("stuck-slow", "stuck-big")
        np.testing.assert_array_equal(np.concatenate([b.sample for b in after]), np.arange(len(images)))
        # the same model again: the same predictions, in place of the earlier ones
        np.testing.assert_array_equal(np.concatenate([b.top1 for b in after]),
                                      np.concatenate([b.top1 for b in before]))
