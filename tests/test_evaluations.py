"""Evaluation bookkeeping in the gateway: triggers, per-shard commits, resumption, results.

The worker's side is played here by the test itself (predictions computed in-process with torch), so
these tests check the gateway's contract with a real DuckDB and object store; the flows' own tests
run the real worker through Triton.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shiftboard import testsets as ts
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument
from shiftboard.domain.stats import clopper_pearson
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers
from tests.test_gateway import metadata, prepared, spec_of

pytestmark = pytest.mark.stack


def torch_predictions(model_path, images: np.ndarray, labels: np.ndarray, first: int) -> pb.Predictions:
    model = torch.jit.load(str(model_path))
    with torch.no_grad():
        logits = model(torch.from_numpy(np.array(images)).float() / 255.0)
    probs = logits.softmax(1)
    top5 = logits.topk(5, dim=1).indices
    # No labels: the gateway scores against the labels it stored at registration.
    return pb.Predictions(sample=list(range(first, first + len(labels))),
                          top1=top5[:, 0].tolist(), top5=top5.flatten().tolist(),
                          confidence=probs.gather(1, top5[:, :1]).flatten().tolist())


def test_commit_resume_and_results(gateway, tmp_path):
    p = prepared(tmp_path, 300)
    gateway.client.add_testset(spec_of("eval-ref", p), [s.path for s in p.shards])
    path = helpers.torchscript_model(tmp_path / "m.pt", seed=3)
    gateway.client.submit_model(path, metadata("eval-model"))
    # The submission triggered an evaluation on every test set (pending: no worker in this fixture).
    pending = gateway.client.list_evaluations(model="eval-model")
    by_testset = {e.key.testset: e for e in pending}
    assert by_testset["eval-ref"].status == pb.EVALUATION_STATUS_PENDING
    # Test sets other test files left in the session's gateway: pending, or failed at once with the
    # reason when they can never run with this model (another input shape or label space).
    assert all(e.status == pb.EVALUATION_STATUS_PENDING or (e.status == pb.EVALUATION_STATUS_FAILED and e.error)
               for e in pending), [(e.key.testset, e.status, e.error) for e in pending]

    key = pb.EvaluationKey(model="eval-model", version="1", testset="eval-ref")
    plan = gateway.client.start_evaluation(key, "run-1")
    assert list(plan.pending_shards) == [0, 1, 2]
    assert plan.model.artifact_uri.startswith("s3://") and plan.testset.spec.num_samples == 300
    shards = [ts.read_shard(gateway.store.get_bytes(s.key)) for s in plan.testset.spec.shards]
    firsts = [s.first_sample for s in plan.testset.spec.shards]
    preds = [torch_predictions(path, im, lb, f) for (im, lb), f in zip(shards, firsts, strict=True)]

    gateway.client.commit_shard(key, 0, preds[0], 0.1)
    gateway.client.commit_shard(key, 0, preds[0], 0.1)  # re-sent: replaces, never duplicates
    with pytest.raises(FailedPrecondition, match="1 of 3 shards"):
        gateway.client.finish_evaluation(key)
    # The worker dies; a new run resumes at the first missing shard.
    plan = gateway.client.start_evaluation(key, "run-2")
    assert list(plan.pending_shards) == [1, 2] and plan.evaluation.attempts == 2
    bad = pb.Predictions()
    bad.CopyFrom(preds[1])
    del bad.top1[-1]
    with pytest.raises(InvalidArgument, match="must hold"):
        gateway.client.commit_shard(key, 1, bad, 0.1)
    for i in (1, 2):
        evaluation = gateway.client.commit_shard(key, i, preds[i], 0.1)
    assert evaluation.shards_done == 3 and evaluation.samples_done == 300
    done = gateway.client.finish_evaluation(key)
    assert done.status == pb.EVALUATION_STATUS_SUCCEEDED

    stored = gateway.client.predictions("eval-model", "eval-ref")
    samples = np.concatenate([np.asarray(b.sample) for b in stored])
    np.testing.assert_array_equal(samples, np.arange(300))  # exactly one row per sample
    top1 = np.concatenate([np.asarray(b.top1) for b in stored])
    np.testing.assert_array_equal(top1, np.concatenate([np.asarray(p.top1) for p in preds]))
    labels = np.concatenate([lb for _, lb in shards])
    correct = int((top1 == labels).sum())
    [acc] = gateway.client.accuracy(model="eval-model", testset="eval-ref")
    assert acc.samples == 300 and acc.correct == correct
    assert (acc.ci_low, acc.ci_high) == pytest.approx(clopper_pearson(correct, 300))


def test_incompatible_pair_is_failed_with_reason(gateway, tmp_path):
    p = prepared(tmp_path, 100)
    gateway.client.add_testset(spec_of("eval-small", p), [s.path for s in p.shards])
    path = helpers.torchscript_model(tmp_path / "m.pt", pixels=3 * 32 * 32)
    md = metadata("rgb-model")
    md.input.CopyFrom(pb.InputSpec(channels=3, height=32, width=32))
    gateway.client.submit_model(path, md)
    [evaluation] = gateway.client.list_evaluations(model="rgb-model", testset="eval-small")
    assert evaluation.status == pb.EVALUATION_STATUS_FAILED
    assert "takes 3x32x32 images" in evaluation.error and "1x8x8" in evaluation.error


def test_clopper_pearson_known_values():
    # Reference values: scipy.stats.binomtest(k, n).proportion_ci(method="exact").
    low, high = clopper_pearson(7, 10)
    assert low == pytest.approx(0.34754, abs=1e-5) and high == pytest.approx(0.93326, abs=1e-5)
    assert clopper_pearson(0, 10)[0] == 0.0 and clopper_pearson(10, 10)[1] == 1.0
    with pytest.raises(ValueError):
        clopper_pearson(11, 10)


def test_cli_results(gateway, tmp_path):
    """`eval list`, `accuracy` and `predictions` read back what test_commit_resume_and_results stored."""
    import json

    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from shiftboard.cli.app import app

    env = {k: v for k, v in gateway.settings.as_env().items() if v}
    runner = CliRunner()
    run = lambda *a: runner.invoke(app, list(a), env=env)  # noqa: E731
    result = run("eval", "list", "--model", "eval-model", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["testset"]: r for r in json.loads(result.stdout)}
    if "eval-ref" not in rows or rows["eval-ref"]["status"] != "succeeded":
        pytest.skip("needs test_commit_resume_and_results to have run first")
    assert rows["eval-ref"]["shards_done"] == 3
    acc = json.loads(run("accuracy", "--model", "eval-model", "--testset", "eval-ref", "--json").stdout)
    assert acc[0]["samples"] == 300
    out = tmp_path / "p.parquet"
    assert run("predictions", "eval-model", "eval-ref", "-o", str(out)).exit_code == 0
    table = pq.read_table(out)
    assert table.num_rows == 300 and sum(table.column("correct").to_pylist()) == acc[0]["correct"]
    assert run("predictions", "eval-model", "eval-ref", "-o", str(tmp_path / "p.csv")).exit_code == 0
    assert pa_csv.read_csv(tmp_path / "p.csv").num_rows == 300
    bad = run("predictions", "eval-model", "eval-ref", "-o", str(tmp_path / "p.txt"))
    assert bad.exit_code == 1 and ".parquet or .csv" in bad.output
