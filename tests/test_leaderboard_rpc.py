"""GetLeaderboard and CompareModels over stored predictions, checked against an independent computation.

Five linear models trained for different numbers of steps on scikit-learn's digits are evaluated
(predictions computed in-process with torch and committed as the worker would) on a reference and
a noisy shift; the gateway's fit and effective robustness must match numpy's least squares in logit
space, and McNemar's counts must match the per-sample comparison.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import expit, logit

from shiftboard import testsets as ts
from shiftboard.errors import InvalidArgument
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers
from tests.test_evaluations import torch_predictions
from tests.test_gateway import metadata

pytestmark = pytest.mark.stack


def train(path, steps: int, seed: int, noise: float = 0.0):
    images, labels = helpers.digits()
    x = torch.from_numpy(images[600:].reshape(-1, 64)).float() / 255.0
    y = torch.from_numpy(labels[600:])
    torch.manual_seed(seed)
    model = helpers.Linear(64, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(steps):
        batch = x + noise * torch.randn_like(x)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(batch), y).backward()
        opt.step()
    torch.jit.script(model).save(str(path))
    return path


def add_set(gateway, tmp_path, name, images, labels, **kw):
    out = tmp_path / name
    out.mkdir()
    np.savez(tmp_path / f"{name}.npz", images=images, labels=labels)
    p = ts.prepare_testset(tmp_path / f"{name}.npz", out_dir=out, shard_samples=200, num_classes=10)
    spec = pb.TestSetSpec(name=name, num_classes=10, channels=1, height=8, width=8, num_samples=p.num_samples,
                          shards=[pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples,
                                           size_bytes=s.size_bytes, sha256=s.sha256) for s in p.shards], **kw)
    gateway.client.add_testset(spec, [s.path for s in p.shards])


def evaluate(gateway, path, name, testset):
    key = pb.EvaluationKey(model=name, version="1", testset=testset)
    plan = gateway.client.start_evaluation(key)
    correct = []
    for shard in plan.testset.spec.shards:
        images, labels = ts.read_shard(gateway.store.get_bytes(shard.key))
        preds = torch_predictions(path, images, labels, shard.first_sample)
        gateway.client.commit_shard(key, shard.index, preds, 0.0)
        correct.append(np.asarray(preds.top1) == labels)
    gateway.client.finish_evaluation(key)
    return np.concatenate(correct)


def test_leaderboard_matches_independent_fit(gateway, tmp_path):
    images, labels = helpers.digits(600)
    rng = np.random.default_rng(0)
    noisy = np.clip(images + rng.normal(0, 60, images.shape), 0, 255).astype(np.uint8)
    add_set(gateway, tmp_path, "lb-ref", images, labels, kind=pb.TEST_SET_KIND_REFERENCE)
    add_set(gateway, tmp_path, "lb-noise", noisy, labels, kind=pb.TEST_SET_KIND_SYNTHETIC, reference="lb-ref",
            group="lb-corruptions")
    acc = {}
    for i, (steps, noise, category) in enumerate([(2, 0, "standard"), (5, 0, "standard"), (12, 0, "standard"),
                                                  (40, 0, "standard"), (40, 0.4, "robustness-intervention")]):
        name = f"lb-m{i}"
        path = train(tmp_path / f"{name}.pt", steps, seed=i, noise=noise)
        md = metadata(name)
        from shiftboard import vocab

        md.category = vocab.category_value(category)
        gateway.client.submit_model(path, md)
        acc[f"{name}:1"] = (evaluate(gateway, path, name, "lb-ref").mean(),
                            evaluate(gateway, path, name, "lb-noise").mean(), category)

    board = gateway.client.leaderboard(shift="lb-noise", resamples=200)
    assert board.fit.ok and board.fit.n == 4 and board.reference == "lb-ref"
    base = [v for v in acc.values() if v[2] == "standard"]
    slope, intercept = np.polyfit(logit([b[0] for b in base]), logit([b[1] for b in base]), 1)
    assert board.fit.slope == pytest.approx(slope, rel=1e-6)
    assert board.fit.intercept == pytest.approx(intercept, rel=1e-6, abs=1e-9)
    rows = {r.model: r for r in board.rows}
    assert set(rows) == set(acc)
    for name, (ref, shift, _) in acc.items():
        expected_er = 100 * (shift - expit(slope * logit(ref) + intercept))
        assert rows[name].er == pytest.approx(expected_er, abs=1e-6)
        assert rows[name].er_ci.low <= rows[name].er <= rows[name].er_ci.high
    assert [r.rank for r in board.rows] == sorted(r.rank for r in board.rows)
    assert len(board.fit.grid) > 0 and all(lo <= hi for lo, hi in zip(board.fit.band_low, board.fit.band_high,
                                                                      strict=True))
    probit = gateway.client.leaderboard(shift="lb-noise", transform="probit", resamples=50)
    assert probit.fit.transform == "probit" and probit.fit.slope != board.fit.slope
    group = gateway.client.leaderboard(group="lb-corruptions", resamples=50)
    assert len(group.shifts) == 1 and {g.model for g in group.group_rows} == set(acc)

    comparison = gateway.client.compare("lb-m3", "lb-m4:1", "lb-noise")
    assert comparison.samples == 600
    assert comparison.acc_a == pytest.approx(acc["lb-m3:1"][1])

    with pytest.raises(InvalidArgument, match="reference test set"):
        gateway.client.leaderboard(shift="lb-ref")

    # The CLI shows the same numbers.
    import json

    from typer.testing import CliRunner

    from shiftboard.cli.app import app

    env = {k: v for k, v in gateway.settings.as_env().items() if v}
    out = CliRunner().invoke(app, ["leaderboard", "--shift", "lb-noise", "--resamples", "50", "--json"], env=env)
    assert out.exit_code == 0, out.output
    view = json.loads(out.stdout)
    assert {r["model"]: r["er"] for r in view["rows"]} == pytest.approx(
        {r.model: round(r.er, 4) for r in board.rows})
    out = CliRunner().invoke(app, ["compare", "lb-m3", "lb-m4", "--testset", "lb-noise"], env=env)
    assert out.exit_code == 0 and "McNemar" in out.output
    out = CliRunner().invoke(app, ["leaderboard"], env=env)
    assert out.exit_code == 1 and "--shift NAME or --group NAME" in out.output


def test_not_enough_baseline_models(gateway, tmp_path):
    images, labels = helpers.digits(200)
    add_set(gateway, tmp_path, "few-ref", images, labels, kind=pb.TEST_SET_KIND_REFERENCE)
    add_set(gateway, tmp_path, "few-shift", images[:, ::-1], labels, kind=pb.TEST_SET_KIND_NATURAL,
            reference="few-ref")
    for i in range(2):
        name = f"few-m{i}"
        path = train(tmp_path / f"{name}.pt", 3 + 5 * i, seed=i)
        gateway.client.submit_model(path, metadata(name))
        evaluate(gateway, path, name, "few-ref")
        evaluate(gateway, path, name, "few-shift")
    board = gateway.client.leaderboard(shift="few-shift")
    assert not board.fit.ok and board.fit.reason == "not enough baseline models (2)"
    assert all(not r.has_er for r in board.rows) and len(board.rows) == 2
