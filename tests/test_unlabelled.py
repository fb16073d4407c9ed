"""Test sets registered without labels: nothing measured, accuracy estimated by agreement on the line.

One noisy shift of digits is registered twice: labelled (``ul-noise``) and, from an npz without labels,
through ``shiftboard testset add --no-labels`` (``ul-noise-nl``). Six linear models are evaluated on the
reference and both twins (predictions computed in-process and committed as the worker would). The
unlabelled board must equal an independent computation from the models' own top-1 predictions (agreement
and least squares with numpy, the estimate by the domain function, ER by numpy's fit in logit space); the
labelled twin gives the same estimate from its stored top-1, since the method reads no label. No accuracy
of the unlabelled set may be reported anywhere, and a reference without labels is refused.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit, logit, ndtri
from typer.testing import CliRunner

from shiftboard import testsets as ts
from shiftboard.cli.app import app
from shiftboard.domain.agreement import MIN_R2, estimate_shift_accuracy
from shiftboard.domain.agreement_bootstrap import bootstrap_estimates
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument
from shiftboard.services.gateway import aggregates
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab
from tests import helpers
from tests.test_evaluations import torch_predictions
from tests.test_gateway import metadata
from tests.test_leaderboard_rpc import add_set, train

pytestmark = pytest.mark.stack

REF, SHIFT, TWIN = "ul-ref", "ul-noise-nl", "ul-noise"
#: (training steps, input noise, category) of each model: standard ones make the baseline.
MODELS = [(2, 0.0, "standard"), (4, 0.0, "standard"), (8, 0.0, "standard"), (16, 0.0, "standard"),
          (40, 0.0, "standard"), (40, 0.5, "robustness-intervention")]


def evaluate_top1(gateway, path, name: str, testset: str) -> np.ndarray:
    """Commit the model's predictions on every shard of ``testset``; its top-1 per sample."""
    key = pb.EvaluationKey(model=name, version="1", testset=testset)
    plan = gateway.client.start_evaluation(key)
    top1 = []
    for shard in plan.testset.spec.shards:
        images, labels = ts.read_shard(gateway.store.get_bytes(shard.key))
        preds = torch_predictions(path, images, labels, shard.first_sample)
        gateway.client.commit_shard(key, shard.index, preds, 0.0)
        top1.append(np.asarray(preds.top1))
    gateway.client.finish_evaluation(key)
    return np.concatenate(top1)


def cli(gateway, *args: str):
    env = {k: v for k, v in gateway.settings.as_env().items() if v} | {"COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)


def agreement(top1: np.ndarray) -> np.ndarray:
    """Pairwise agreement, upper triangle in row order (numpy directly)."""
    m = len(top1)
    return np.array([(top1[i] == top1[j]).mean() for i in range(m) for j in range(i + 1, m)])


@pytest.fixture(scope="module")
def twins(gateway, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unlabelled")
    images, labels = helpers.digits(600)
    noisy = np.clip(images + np.random.default_rng(1).normal(0, 50, images.shape), 0, 255).astype(np.uint8)
    add_set(gateway, tmp, REF, images, labels, kind=pb.TEST_SET_KIND_REFERENCE)
    add_set(gateway, tmp, TWIN, noisy, labels, kind=pb.TEST_SET_KIND_SYNTHETIC, reference=REF)
    np.savez(tmp / "nolabels.npz", images=noisy)  # no labels array at all
    out = cli(gateway, "testset", "add", str(tmp / "nolabels.npz"), "--name", SHIFT, "--kind", "synthetic",
              "--reference", REF, "--no-labels", "--shard-samples", "200")
    assert out.exit_code == 0, out.output
    assert "no labels" in out.output
    top1: dict[str, dict[str, np.ndarray]] = {REF: {}, TWIN: {}, SHIFT: {}}
    categories = {}
    for i, (steps, noise, category) in enumerate(MODELS):
        name = f"ul-m{i}"
        path = train(tmp / f"{name}.pt", steps, seed=i, noise=noise)
        md = metadata(name)
        md.category = vocab.category_value(category)
        gateway.client.submit_model(path, md)
        for testset in top1:
            top1[testset][f"{name}:1"] = evaluate_top1(gateway, path, name, testset)
        categories[f"{name}:1"] = category
    return {"labels": labels, "top1": top1, "categories": categories}


def test_unlabelled_set_stores_no_labels(gateway, twins):
    spec = gateway.client.get_testset(SHIFT).spec
    assert spec.unlabelled and not gateway.client.get_testset(TWIN).spec.unlabelled
    assert spec.num_classes == 10  # the reference's, as no label can tell
    catalog = gateway.server.catalog
    assert catalog.query("SELECT count(*) FROM shard_labels WHERE testset = ?", [SHIFT])[0][0] == 0
    assert catalog.query("SELECT count(*) FROM shard_labels WHERE testset = ?", [TWIN])[0][0] == len(spec.shards)
    for shard in spec.shards:  # the shards carry the placeholder label only
        _, labels = ts.read_shard(gateway.store.get_bytes(shard.key))
        assert not labels.any()
    sample = gateway.client.samples(SHIFT, [0, 5]).samples
    assert [s.label for s in sample] == [-1, -1]
    predictions = gateway.client.predictions("ul-m0", SHIFT)
    assert all(list(p.label) == [-1] * len(p.sample) and not p.correct for p in predictions)
    assert np.concatenate([p.top1 for p in predictions]).tolist() == twins["top1"][SHIFT]["ul-m0:1"].tolist()


def test_no_accuracy_is_reported(gateway, twins):
    with pytest.raises(FailedPrecondition, match="registered without labels"):
        gateway.client.accuracy(testset=SHIFT)
    measured = {a.key.testset for a in gateway.client.accuracy(model="ul-m0")}
    assert measured == {REF, TWIN}
    assert SHIFT not in {a.key.testset for a in gateway.client.accuracy()}
    out = cli(gateway, "accuracy", "--testset", SHIFT)
    assert out.exit_code == 1 and "registered without labels" in out.output and "Traceback" not in out.output
    out = cli(gateway, "eval", "list", "--testset", SHIFT, "--json")
    assert out.exit_code == 0, out.output
    views = json.loads(out.stdout)
    assert len(views) >= len(MODELS) and not any("accuracy" in v or "correct" in v for v in views)
    with pytest.raises(FailedPrecondition, match="without labels"):
        gateway.client.compare("ul-m0", "ul-m1", SHIFT)
    # no aggregate (correct counts) is kept, and no overview board shows the set
    catalog = gateway.server.catalog
    assert catalog.query("SELECT count(*) FROM aggregates a JOIN evaluations e ON e.id = a.evaluation_id "
                         "WHERE e.testset = ?", [SHIFT])[0][0] == 0
    assert SHIFT not in {b.shift for b in gateway.client.overview()}


def test_estimates_match_independent_computation(gateway, twins):
    board = gateway.client.leaderboard(shift=SHIFT)
    names = sorted(twins["categories"])
    assert {r.model for r in board.rows} == set(names) and all(r.estimated for r in board.rows)
    assert board.estimate_method == "aline-d"
    ref_top1 = np.stack([twins["top1"][REF][n] for n in names])
    shift_top1 = np.stack([twins["top1"][SHIFT][n] for n in names])
    labels = twins["labels"]
    ref_acc = (ref_top1 == labels).mean(axis=1)
    # the agreement line, from numpy directly
    x, y = ndtri(agreement(ref_top1)), ndtri(agreement(shift_top1))
    slope, intercept = np.polyfit(x, y, 1)
    line = board.agreement
    assert line.ok and line.n_pairs == 15 and line.transform == "probit"
    assert line.slope == pytest.approx(slope, rel=1e-9) and line.intercept == pytest.approx(intercept, abs=1e-9)
    r2 = 1 - ((y - (slope * x + intercept)) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert line.r2 == pytest.approx(r2, rel=1e-9)
    assert line.trustworthy == (r2 >= MIN_R2)
    assert any("fits poorly" in n for n in board.notes) == (r2 < MIN_R2)
    assert sorted(zip(line.pair_a, line.pair_b, strict=True)) == [(a, b) for i, a in enumerate(names)
                                                                   for b in names[i + 1:]]
    # the estimates: the domain function on the models' own top-1
    expected = estimate_shift_accuracy(ref_top1, shift_top1, ref_acc, method="aline-d").shift_acc
    rows = {r.model: r for r in board.rows}
    for name, est, acc in zip(names, expected, ref_acc, strict=True):
        assert rows[name].shift_acc == pytest.approx(est, abs=1e-12)
        assert rows[name].ref_acc == pytest.approx(acc, abs=1e-12)
    # ER: the estimate minus the logit fit through the standard models' estimates
    base = [i for i, n in enumerate(names) if twins["categories"][n] == "standard"]
    b_slope, b_intercept = np.polyfit(logit(ref_acc[base]), logit(expected[base]), 1)
    assert board.fit.ok and board.fit.n == len(base)
    assert board.fit.slope == pytest.approx(b_slope, rel=1e-6)
    for name, est, acc in zip(names, expected, ref_acc, strict=True):
        assert rows[name].er == pytest.approx(100 * (est - expit(b_slope * logit(acc) + b_intercept)), abs=1e-6)
    # the intervals: the bootstrap of both test sets (tests/test_agreement_bootstrap.py checks it against
    # resampling the samples themselves), on the models' own top-1, with the board's baseline and seed
    correct_ref = ref_top1 == labels
    er = np.array([rows[n].er for n in names])
    resamples = gateway.settings.bootstrap_resamples
    intervals = bootstrap_estimates(ref_top1, shift_top1, correct_ref, np.isin(np.arange(len(names)), base),
                                    method="aline-d", transform="logit", er=er, resamples=resamples,
                                    ref_key=REF, shift_key=SHIFT, seed=aggregates.SEED)
    assert any(f"{resamples} bootstrap resamples" in n for n in board.notes)
    for i, name in enumerate(names):
        row = rows[name]
        assert (row.shift_ci.low, row.shift_ci.high) == pytest.approx(tuple(intervals.shift_acc_ci[i]), abs=1e-12)
        assert row.has_er_ci and (row.er_ci.low, row.er_ci.high) == pytest.approx(tuple(intervals.er_ci[i]),
                                                                                   abs=1e-9)
        assert row.shift_ci.low <= row.shift_acc <= row.shift_ci.high and row.er_ci.low <= row.er <= row.er_ci.high
        assert row.tied == intervals.tied[i]


def test_labelled_twin_gives_the_same_estimate(gateway, twins):
    """The method reads no shift label: the labelled twin's stored top-1 give the same estimate exactly, and
    its measured accuracies say how far off the estimates are (printed, not asserted: that is the method's
    error on this shift, not a property)."""
    names = sorted(twins["categories"])
    assert all((twins["top1"][TWIN][n] == twins["top1"][SHIFT][n]).all() for n in names)
    board = gateway.client.leaderboard(shift=SHIFT)
    ref_top1 = np.stack([twins["top1"][REF][n] for n in names])
    twin_top1 = np.stack([twins["top1"][TWIN][n] for n in names])
    ref_acc = np.array([r.ref_acc for r in sorted(board.rows, key=lambda r: r.model)])
    from_twin = estimate_shift_accuracy(ref_top1, twin_top1, ref_acc).shift_acc
    estimated = np.array([r.shift_acc for r in sorted(board.rows, key=lambda r: r.model)])
    assert estimated == pytest.approx(from_twin, abs=1e-12)
    true = {r.model: r.shift_acc for r in gateway.client.leaderboard(shift=TWIN, resamples=50).rows}
    error = np.abs(estimated - np.array([true[n] for n in names]))
    print(f"ALine-D on the noisy digits twin: MAE {100 * error.mean():.2f} pp, max {100 * error.max():.2f} pp, "
          f"agreement R² {board.agreement.r2:.3f}")


def test_cli_leaderboard_json_and_table(gateway, twins):
    out = cli(gateway, "leaderboard", "--shift", SHIFT, "--json")
    assert out.exit_code == 0, out.output
    view = json.loads(out.stdout)
    assert view["estimate_method"] == "aline-d"
    assert set(view["agreement"]) >= {"ok", "slope", "intercept", "r2", "n_pairs", "min_r2", "trustworthy",
                                      "warning", "pairs"}
    assert view["agreement"]["n_pairs"] == len(view["agreement"]["pairs"]) == 15
    for row in view["rows"]:
        assert row["estimated"] is True and row["shift_ci"][0] <= row["shift_acc"] <= row["shift_ci"][1]
        assert row["er_ci"][0] <= row["er"] <= row["er_ci"][1]
        assert 0 <= row["shift_acc"] <= 1 and isinstance(row["er"], float)
    labelled = json.loads(cli(gateway, "leaderboard", "--shift", TWIN, "--json").stdout)
    assert labelled["agreement"] is None and not any(r["estimated"] for r in labelled["rows"])
    out = cli(gateway, "leaderboard", "--shift", SHIFT)
    assert out.exit_code == 0 and "≈" in out.output and "agreement line over 15 model pairs" in out.output
    listed = json.loads(cli(gateway, "testset", "list", "--json").stdout)
    assert {v["name"]: v["unlabelled"] for v in listed if v["name"].startswith("ul-")} == {
        REF: False, TWIN: False, SHIFT: True}
    out = cli(gateway, "testset", "list")
    assert "(no labels)" in out.output
    out = cli(gateway, "testset", "show", SHIFT)
    assert out.exit_code == 0 and "unlabelled" in out.output and "True" in out.output


def test_reference_without_labels_is_refused(gateway, twins, tmp_path):
    images, labels = helpers.digits(50)
    np.savez(tmp_path / "ref.npz", images=images, labels=labels)
    out = cli(gateway, "testset", "add", str(tmp_path / "ref.npz"), "--name", "ul-bad-ref", "--kind", "reference",
              "--no-labels", "--num-classes", "10")
    assert out.exit_code == 1 and "a reference test set needs labels" in out.output
    assert "Traceback" not in out.output
    # the gateway refuses it too (a client that skips the CLI's check)
    p = ts.prepare_testset(tmp_path / "ref.npz", out_dir=tmp_path, shard_samples=50, num_classes=10, labelled=False)
    spec = pb.TestSetSpec(name="ul-bad-ref", kind=pb.TEST_SET_KIND_REFERENCE, num_classes=10, channels=1, height=8,
                          width=8, num_samples=p.num_samples, unlabelled=True,
                          shards=[pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples,
                                           size_bytes=s.size_bytes, sha256=s.sha256) for s in p.shards])
    with pytest.raises(InvalidArgument, match="a reference test set needs labels"):
        gateway.client.add_testset(spec, [s.path for s in p.shards])
    np.savez(tmp_path / "nolabels.npz", images=images)
    out = cli(gateway, "testset", "add", str(tmp_path / "nolabels.npz"), "--name", "ul-bad-shift", "--kind",
              "natural", "--reference", REF)
    assert out.exit_code == 1 and "--no-labels" in out.output


def test_shift_page_marks_estimates_and_plots_the_agreement_line(gateway, twins, monkeypatch):
    from tests.test_leaderboard_app import chart_values, charts, run_page, table

    for key, value in gateway.settings.as_env().items():
        monkeypatch.setenv(key, value)
    at = run_page("shift_page.py", shift=SHIFT)
    board = gateway.client.leaderboard(shift=SHIFT)
    ranking = table(at, "estimated", "rank", "model")
    assert list(ranking["model"]) == [r.model for r in board.rows] and ranking["estimated"].all()
    titles = [json.dumps(spec.get("title", ""), ensure_ascii=False) for spec in charts(at)]
    assert any(f"R² = {board.agreement.r2:.3f}" in t for t in titles)
    index = next(i for i, t in enumerate(titles) if "Agreement line" in t)
    assert chart_values(at, "shift_agreement", index) == pytest.approx(list(board.agreement.shift_agreement))
    assert any("no labels" in c.value for c in at.caption)
    assert bool(at.warning) == bool(board.agreement.warning)


def test_too_few_models_gives_a_note_not_numbers(gateway, twins, tmp_path):
    images, _ = helpers.digits(40)
    np.savez(tmp_path / "few.npz", images=images)
    out = cli(gateway, "testset", "add", str(tmp_path / "few.npz"), "--name", "ul-few", "--kind", "natural",
              "--reference", REF, "--no-labels")
    assert out.exit_code == 0, out.output
    board = gateway.client.leaderboard(shift="ul-few")  # no model evaluated on it yet
    assert not board.rows and not board.agreement.ok and "at least 3" in " ".join(board.notes)
