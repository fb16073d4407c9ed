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
from shiftboard.domain.errors import InvalidArgument
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
        from shiftboard.wire import vocab

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


# ------------------------------------------------------------------------ exact reference accuracy on a sub-list

SUBLIST = [8, 9]


def constructed_logits(labels: np.ndarray, seed: int) -> np.ndarray:
    """Logits whose top 5 never holds a sub-list class for a sample labelled in the sub-list (classes 0-4
    score 10-14, the sub-list 0-1), and whose restricted argmax is right for about 60% of those."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (len(labels), 10))
    inside = np.isin(labels, SUBLIST)
    logits[inside, :5] = 10 + np.arange(5) + rng.uniform(0, 0.5, (int(inside.sum()), 5))
    logits[inside, 5:8] = 5
    right = rng.random(len(labels)) < 0.6
    for i in np.flatnonzero(inside):
        other = SUBLIST[1] if labels[i] == SUBLIST[0] else SUBLIST[0]
        logits[i, labels[i]], logits[i, other] = (1.0, 0.0) if right[i] else (0.0, 1.0)
    return logits


def commit_logits(gateway, key, logits_of, restricted: bool = True):
    """Commit every shard as the worker does (top-5 and restricted top-1 from the logits); returns the
    labels and logits in sample order."""
    from shiftboard.domain.scoring import restricted_top1, score, subset_index
    from shiftboard.flows.inference import decode_shard

    plan = gateway.client.start_evaluation(key)
    index = subset_index(SUBLIST, 10)
    assert index is not None
    all_labels, all_logits = [], []
    for shard in plan.testset.spec.shards:
        _, labels = decode_shard(gateway.store.get_bytes(shard.key), shard, (1, 8, 8))
        logits = logits_of(labels)
        s = score(logits, labels, list(plan.testset.spec.class_subset) or None)
        preds = pb.Predictions(sample=list(range(shard.first_sample, shard.first_sample + len(labels))),
                               top1=s.top1.tolist(), top5=s.top5.ravel().tolist(), confidence=s.confidence.tolist())
        sent = [pb.RestrictedTop1(shift=r.shift, top1=restricted_top1(logits, index).tolist())
                for r in plan.restrictions] if restricted else []
        gateway.client.commit_shard(key, shard.index, preds, 0.0, restricted=sent)
        all_labels.append(labels)
        all_logits.append(logits)
    gateway.client.finish_evaluation(key)
    return np.concatenate(all_labels), np.concatenate(all_logits)


def test_exact_sub_list_reference_accuracy_and_forgery(gateway, tmp_path):
    from shiftboard.domain.errors import NotFound
    from shiftboard.domain.paired import restricted_correct
    from shiftboard.domain.scoring import restricted_top1, score, subset_index

    images, labels = helpers.digits(400)
    add_set(gateway, tmp_path, "sub-ref", images, labels, kind=pb.TEST_SET_KIND_REFERENCE)
    inside = np.isin(labels, SUBLIST)
    add_set(gateway, tmp_path, "sub-shift", images[inside], labels[inside], kind=pb.TEST_SET_KIND_NATURAL,
            reference="sub-ref", class_subset=SUBLIST)
    for name in ("sub-exact", "sub-old"):
        gateway.client.submit_model(helpers.torchscript_model(tmp_path / f"{name}.pt"), metadata(name))

    # Forgery: the restricted top-1 is checked, and what counts as kept and correct is the gateway's.
    assert set(pb.RestrictedTop1.DESCRIPTOR.fields_by_name) == {"shift", "top1"}
    key = pb.EvaluationKey(model="sub-exact", version="1", testset="sub-ref")
    plan = gateway.client.start_evaluation(key)
    assert [r.shift for r in plan.restrictions] == ["sub-shift"] and list(plan.restrictions[0].class_subset) == SUBLIST
    shard = plan.testset.spec.shards[0]
    shard_labels = labels[:shard.num_samples]
    logits = constructed_logits(shard_labels, seed=1)
    s = score(logits, shard_labels)
    preds = pb.Predictions(sample=list(range(shard.num_samples)), top1=s.top1.tolist(), top5=s.top5.ravel().tolist(),
                           confidence=s.confidence.tolist())
    index = subset_index(SUBLIST, 10)
    assert index is not None
    honest = restricted_top1(logits, index)
    in_top5 = np.isin(s.top5, SUBLIST).any(axis=1)
    assert in_top5.any()  # samples outside the sub-list whose top-5 fixes the restricted top-1
    forged = honest.copy()
    forged[in_top5] = np.where(forged[in_top5] == 8, 9, 8)
    for sent, expected in [
        ([pb.RestrictedTop1(shift="sub-shift", top1=forged.tolist())], "contradicts the shard's top-5"),
        ([pb.RestrictedTop1(shift="sub-shift", top1=[3] * len(honest))], "must lie in its class sub-list"),
        ([pb.RestrictedTop1(shift="sub-shift", top1=honest[:-1].tolist())], "send one per sample"),
        ([pb.RestrictedTop1(shift="lb-noise", top1=honest.tolist())], "not a registered shift of sub-ref"),
        ([pb.RestrictedTop1(shift="sub-shift", top1=honest.tolist())] * 2, "sent twice"),
    ]:
        with pytest.raises(InvalidArgument, match=expected):
            gateway.client.commit_shard(key, shard.index, preds, 0.0, restricted=sent)
    assert gateway.client.start_evaluation(key).evaluation.shards_done == 0  # nothing of those was stored

    ref_labels, ref_logits = commit_logits(gateway, key, lambda y: constructed_logits(y, seed=1))
    commit_logits(gateway, pb.EvaluationKey(model="sub-old", version="1", testset="sub-ref"),
                  lambda y: constructed_logits(y, seed=2), restricted=False)
    for name in ("sub-exact", "sub-old"):
        commit_logits(gateway, pb.EvaluationKey(model=name, version="1", testset="sub-shift"),
                      lambda y: constructed_logits(y, seed=3))

    board = gateway.client.leaderboard(shift="sub-shift", resamples=50)
    rows = {r.model: r for r in board.rows}
    kept = np.isin(ref_labels, SUBLIST)
    exact = (np.array(SUBLIST)[ref_logits[kept][:, SUBLIST].argmax(axis=1)] == ref_labels[kept]).mean()
    top5 = np.argsort(-ref_logits, axis=1, kind="stable")[:, :5]
    rebuilt = restricted_correct(ref_labels, top5, SUBLIST).mean()
    assert 0.4 < exact < 0.8 and rebuilt == 0.0  # no sub-list class is ever in a kept sample's top 5
    assert rows["sub-exact:1"].ref_acc == pytest.approx(exact) and rows["sub-exact:1"].n_ref == kept.sum()
    assert rows["sub-old:1"].ref_acc == 0.0 and rows["sub-old:1"].n_ref == kept.sum()
    (note,) = [n for n in board.notes if "rebuilt from stored top-5" in n]
    assert "1 model(s) (sub-old:1)" in note and "--testset sub-ref --rerun" in note

    # A shift registered after the reference evaluation: a re-run recomputes every shard for it.
    add_set(gateway, tmp_path, "sub-late", images[inside], labels[inside], kind=pb.TEST_SET_KIND_NATURAL,
            reference="sub-ref", class_subset=[9, 8])
    plan = gateway.client.start_evaluation(pb.EvaluationKey(model="sub-old", version="1", testset="sub-ref"))
    assert list(plan.pending_shards) == [0, 1] and {r.shift for r in plan.restrictions} == {"sub-shift", "sub-late"}

    # A class map with an output in two classes, or not one list per class: refused, nothing stored.
    np.savez(tmp_path / "sub-mapped.npz", images=images[inside], labels=labels[inside] - 8)
    p = ts.prepare_testset(tmp_path / "sub-mapped.npz", out_dir=tmp_path / "sub-mapped", num_classes=2)
    for class_map, expected in [([[8, 9], [9]], "model output 9 is mapped to classes 0 and 1"),
                                ([[8]], "the class map has 1 classes, the test set 2"),
                                ([[8], [12]], r"outside \[0, 10\)")]:
        spec = pb.TestSetSpec(name="sub-mapped", num_classes=2, channels=1, height=8, width=8,
                              num_samples=p.num_samples, kind=pb.TEST_SET_KIND_NATURAL, reference="sub-ref",
                              class_map=[pb.ClassGroup(outputs=g) for g in class_map],
                              shards=[pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples,
                                               size_bytes=s.size_bytes, sha256=s.sha256) for s in p.shards])
        with pytest.raises(InvalidArgument, match=expected):
            gateway.client.add_testset(spec, [s.path for s in p.shards])
        with pytest.raises(NotFound):
            gateway.client.get_testset("sub-mapped")
