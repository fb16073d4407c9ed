"""Shifts with several references: registration rules, the plane fit on GetLeaderboard, the CLI and deletes.

Linear models trained on scikit-learn's digits are evaluated in-process (committed as the worker would) on
two reference sets and a noisy shift naming both; the gateway's plane must match numpy's least squares in
logit space over the accuracies read back with GetAccuracy, and each model's plane ER the shift accuracy
minus that plane's prediction.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from shiftboard import testsets as ts
from shiftboard.cli.app import app
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from shiftboard.domain.multiref import bootstrap_plane_er
from shiftboard.domain.plane_board import plane_board
from shiftboard.domain.robustness import LeaderboardSettings, shift_leaderboard
from shiftboard.services.gateway import aggregates
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab
from tests import helpers
from tests.test_gateway import metadata
from tests.test_leaderboard_app import APP
from tests.test_leaderboard_rpc import evaluate, train


def add_set(gateway, tmp_path, name, images, labels, num_classes=10, **kw):
    out = tmp_path / name
    out.mkdir()
    np.savez(tmp_path / f"{name}.npz", images=images, labels=labels)
    p = ts.prepare_testset(tmp_path / f"{name}.npz", out_dir=out, shard_samples=300, num_classes=num_classes)
    spec = pb.TestSetSpec(name=name, num_classes=num_classes, channels=1, height=8, width=8,
                          num_samples=p.num_samples,
                          shards=[pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples,
                                           size_bytes=s.size_bytes, sha256=s.sha256) for s in p.shards], **kw)
    return gateway.client.add_testset(spec, [s.path for s in p.shards])


def noisy(images, sigma, seed):
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).astype(np.uint8)


@pytest.mark.stack
def test_plane_fit_against_two_references(gateway, tmp_path, monkeypatch):
    images, labels = helpers.digits(600)
    add_set(gateway, tmp_path, "mr-ref", images, labels, kind=pb.TEST_SET_KIND_REFERENCE)
    add_set(gateway, tmp_path, "mr-ref2", noisy(images, 35, 1), labels, kind=pb.TEST_SET_KIND_REFERENCE)
    add_set(gateway, tmp_path, "mr-other", images[:300], labels[:300], kind=pb.TEST_SET_KIND_NATURAL,
            reference="mr-ref")
    shift = add_set(gateway, tmp_path, "mr-shift", noisy(images, 70, 2), labels, kind=pb.TEST_SET_KIND_SYNTHETIC,
                    reference="mr-ref", extra_references=["mr-ref2"])
    assert list(shift.spec.extra_references) == ["mr-ref2"]
    assert list(gateway.client.get_testset("mr-shift").spec.extra_references) == ["mr-ref2"]
    listed = {t.spec.name: t for t in gateway.client.list_testsets()}
    assert list(listed["mr-shift"].spec.extra_references) == ["mr-ref2"]
    assert list(listed["mr-other"].spec.extra_references) == []

    # Refused: an unknown extra reference, one not of kind reference, one of another label space.
    with pytest.raises(NotFound, match="reference test set 'mr-nope' does not exist"):
        add_set(gateway, tmp_path, "mr-bad1", images[:60], labels[:60], kind=pb.TEST_SET_KIND_NATURAL,
                reference="mr-ref", extra_references=["mr-nope"])
    with pytest.raises(InvalidArgument, match="'mr-other' is not of kind reference"):
        add_set(gateway, tmp_path, "mr-bad2", images[:60], labels[:60], kind=pb.TEST_SET_KIND_NATURAL,
                reference="mr-ref", extra_references=["mr-other"])
    add_set(gateway, tmp_path, "mr-ref12", images[:60], labels[:60], num_classes=12, kind=pb.TEST_SET_KIND_REFERENCE)
    with pytest.raises(InvalidArgument, match="reference 'mr-ref12' has 12 classes, the primary reference "
                                              "'mr-ref' 10"):
        add_set(gateway, tmp_path, "mr-bad3", images[:60], labels[:60], kind=pb.TEST_SET_KIND_NATURAL,
                reference="mr-ref", extra_references=["mr-ref12"])
    with pytest.raises(InvalidArgument, match="given twice"):
        add_set(gateway, tmp_path, "mr-bad4", images[:60], labels[:60], kind=pb.TEST_SET_KIND_NATURAL,
                reference="mr-ref", extra_references=["mr-ref2", "mr-ref2"])
    with pytest.raises(InvalidArgument, match="class sub-list or class map takes one --reference"):
        add_set(gateway, tmp_path, "mr-bad5", images[:60], labels[:60], kind=pb.TEST_SET_KIND_NATURAL,
                reference="mr-ref", extra_references=["mr-ref2"], class_subset=[1, 2, 3])
    assert not {"mr-bad1", "mr-bad2", "mr-bad3", "mr-bad4", "mr-bad5"} & {
        t.spec.name for t in gateway.client.list_testsets()}

    # Six standard models and one intervention on all three sets; one standard model lacks mr-ref2.
    plan = [(2, 0.0, "standard"), (4, 0.0, "standard"), (8, 0.0, "standard"), (15, 0.0, "standard"),
            (30, 0.0, "standard"), (60, 0.0, "standard"), (40, 0.5, "robustness-intervention"), (20, 0.0, "standard")]
    for i, (steps, noise, category) in enumerate(plan):
        name = f"mr-m{i}"
        path = train(tmp_path / f"{name}.pt", steps, seed=i, noise=noise)
        md = metadata(name)
        md.category = vocab.category_value(category)
        gateway.client.submit_model(path, md)
        for testset in ("mr-ref", "mr-shift") if i == len(plan) - 1 else ("mr-ref", "mr-ref2", "mr-shift"):
            evaluate(gateway, path, name, testset)
    late = f"mr-m{len(plan) - 1}:1"

    # The independent computation: accuracies read back with GetAccuracy, numpy's least squares on logits.
    acc = {t: {f"{a.key.model}:{a.key.version}": a.accuracy for a in gateway.client.accuracy(testset=t)}
           for t in ("mr-ref", "mr-ref2", "mr-shift")}
    assert late not in acc["mr-ref2"]
    base = [f"mr-m{i}:1" for i, p in enumerate(plan[:-1]) if p[2] == "standard"]
    design = np.column_stack([np.ones(len(base)), logit([acc["mr-ref"][m] for m in base]),
                              logit([acc["mr-ref2"][m] for m in base])])
    beta, *_ = np.linalg.lstsq(design, logit([acc["mr-shift"][m] for m in base]), rcond=None)
    y = logit([acc["mr-shift"][m] for m in base])
    r2 = 1 - np.sum((y - design @ beta) ** 2) / np.sum((y - y.mean()) ** 2)

    board = gateway.client.leaderboard(shift="mr-shift", resamples=50)
    assert board.fit.ok and board.fit.n == 7  # the single-reference fit keeps the model without mr-ref2
    plane = board.plane
    assert plane.ok and plane.n == 6 and list(plane.references) == ["mr-ref", "mr-ref2"]
    assert plane.transform == "logit"
    assert plane.intercept == pytest.approx(beta[0], rel=1e-6, abs=1e-9)
    assert list(plane.coefficients) == pytest.approx(list(beta[1:]), rel=1e-6, abs=1e-9)
    assert plane.r2 == pytest.approx(r2, rel=1e-6)
    rows = {r.model: r for r in board.rows}
    for model in rows:
        if model == late:
            assert not rows[model].has_plane_er and rows[model].has_er
            continue
        predicted = expit(beta[0] + beta[1] * logit(acc["mr-ref"][model]) + beta[2] * logit(acc["mr-ref2"][model]))
        assert rows[model].has_plane_er
        assert rows[model].plane_predicted_shift_acc == pytest.approx(predicted, abs=1e-9)
        assert rows[model].plane_er == pytest.approx(100 * (acc["mr-shift"][model] - predicted), abs=1e-6)
    assert any("no plane ER for 1 model(s)" in n and late in n for n in board.notes)
    # The plane ER's interval: the domain's bootstrap (tests/test_plane_bootstrap.py) on these accuracies, in
    # the board's order, with its sample counts, baseline and seed.
    order = [r for r in board.rows if r.model != late]
    accs = np.array([[acc["mr-ref"][r.model], acc["mr-ref2"][r.model]] for r in order])
    n_ref2 = gateway.client.get_testset("mr-ref2").spec.num_samples
    ci, _ = bootstrap_plane_er(accs, np.array([acc["mr-shift"][r.model] for r in order]),
                               np.array([[r.n_ref, n_ref2] for r in order]), np.array([r.n_shift for r in order]),
                               np.array([r.baseline for r in order]), "logit", resamples=50, seed=aggregates.SEED)
    for r, (low, high) in zip(order, ci, strict=True):
        assert r.has_plane_er_ci and (r.plane_er_ci.low, r.plane_er_ci.high) == pytest.approx((low, high), abs=1e-9)
        assert low <= r.plane_er <= high
    assert not rows[late].has_plane_er_ci
    # A shift with one reference has no plane.
    assert not gateway.client.leaderboard(shift="mr-other", resamples=0).HasField("plane")

    # The CLI: JSON rows gain plane_er / plane_predicted_shift_acc and the board its plane; the table a column.
    env = {k: v for k, v in gateway.settings.as_env().items() if v}
    out = CliRunner().invoke(app, ["leaderboard", "--shift", "mr-shift", "--resamples", "50", "--json"], env=env)
    assert out.exit_code == 0, out.output
    view = json.loads(out.stdout)
    assert view["plane"]["references"] == ["mr-ref", "mr-ref2"] and view["plane"]["n_baseline"] == 6
    assert view["plane"]["coefficients"] == pytest.approx(list(beta[1:]), abs=1e-6)
    assert view["plane"]["r2"] == pytest.approx(r2, abs=1e-6)
    by_model = {r["model"]: r for r in view["rows"]}
    assert by_model[late]["plane_er"] is None and by_model[late]["plane_predicted_shift_acc"] is None
    assert by_model["mr-m0:1"]["plane_er"] == pytest.approx(round(rows["mr-m0:1"].plane_er, 4))
    assert by_model["mr-m0:1"]["plane_er_ci"] == pytest.approx([rows["mr-m0:1"].plane_er_ci.low,
                                                               rows["mr-m0:1"].plane_er_ci.high], abs=1e-6)
    assert by_model[late]["plane_er_ci"] is None
    out = CliRunner().invoke(app, ["leaderboard", "--shift", "mr-shift", "--resamples", "50"],
                             env={**env, "COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    assert "plane fit over 6 models (mr-ref, mr-ref2)" in out.output and "plane ER" in out.output
    assert f"logit(shift acc) = {beta[1]:.3f}·logit(mr-ref)" in out.output
    out = CliRunner().invoke(app, ["testset", "show", "mr-shift", "--json"], env=env)
    assert out.exit_code == 0 and json.loads(out.stdout)["extra_references"] == ["mr-ref2"]

    # The CLI refuses a bad extra reference before reading or uploading anything.
    npz = helpers.digits_npz(tmp_path / "cli.npz", 60)
    for extra, message in (("mr-nope", "reference test set 'mr-nope' does not exist"),
                           ("mr-other", "'mr-other' is not of kind reference"),
                           ("mr-ref12", "'mr-ref12' has 12 classes")):
        out = CliRunner().invoke(app, ["testset", "add", str(npz), "--name", "mr-cli", "--kind", "natural",
                                       "--reference", "mr-ref", "--reference", extra], env=env)
        assert out.exit_code == 1 and message in out.output and "Traceback" not in out.output, out.output
    out = CliRunner().invoke(app, ["testset", "add", str(npz), "--name", "mr-cli", "--kind", "natural",
                                   "--reference", "mr-ref", "--reference", "mr-ref2", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["extra_references"] == ["mr-ref2"]

    # The shift page: the plane's scatter (actual vs plane-predicted, y = x), its equation, a plane ER column.
    for key, value in gateway.settings.as_env().items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.query_params.update({"shift": "mr-shift"})
    at.switch_page("shift_page.py").run()
    assert not at.exception, [e.value for e in at.exception]
    ranking = next(df.value for df in at.dataframe if "plane_er" in df.value.columns)
    shown = dict(zip(ranking["model"], ranking["plane_er"], strict=True))
    assert shown["mr-m0:1"] == pytest.approx(rows["mr-m0:1"].plane_er) and pd.isna(shown[late])
    assert any(m.value.startswith("**Plane fit** (6 baseline models)") and f"R² {r2:.3f}" in m.value
               for m in at.markdown)
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert len(specs) == 2 and "predicted by the plane" in json.dumps(specs[1])

    # An extra reference in use cannot be deleted; once its shifts are gone it can.
    with pytest.raises(FailedPrecondition, match="mr-ref2 is the reference of mr-cli, mr-shift"):
        gateway.client.delete_testset("mr-ref2")
    gateway.client.delete_testset("mr-cli")
    gateway.client.delete_testset("mr-shift")
    gateway.client.delete_testset("mr-ref2")
    assert "mr-ref2" not in {t.spec.name for t in gateway.client.list_testsets()}


def _board(models):
    table = [{"model": m, "category": c, "ref_acc": r, "shift_acc": s, "n_ref": 1000, "n_shift": 1000}
             for m, c, r, s in models]
    return shift_leaderboard(table, LeaderboardSettings(resamples=0))


def test_plane_needs_more_models_than_coefficients():
    board = _board([("a", "standard", 0.6, 0.4), ("b", "standard", 0.7, 0.5), ("c", "standard", 0.8, 0.6),
                    ("d", "standard", 0.9, 0.75)])
    extra = {"a": [0.5], "b": [0.62], "c": [0.7], "d": [0.85]}
    full = plane_board(board, ["r1", "r2"], extra, [1000])
    assert full.fit.ok and full.fit.n == 4 and set(full.er) == {"a", "b", "c", "d"}
    # Without d's extra accuracy: 3 models for 3 coefficients, no plane, a note, no plane ER.
    few = plane_board(board, ["r1", "r2"], {k: v for k, v in extra.items() if k != "d"}, [1000])
    assert not few.fit.ok and few.er == {} and few.predicted == {}
    assert any("not enough baseline models (3)" in n for n in few.notes)
    assert any("no plane ER for 1 model(s)" in n and "d" in n for n in few.notes)
    with pytest.raises(InvalidArgument, match="at least one extra reference"):
        plane_board(board, ["r1"], {}, [])
