"""Leaderboards from stored per-evaluation aggregates, through a real gateway of its own.

A module gateway (in-process, port 0, DuckDB in a temporary directory) over the session's object
store. Six models with constructed logits are committed as the worker commits them on a reference,
a shift of the same images, and a shift scoring a class sub-list (one model's reference evaluation
carries no exact restricted scores, so it is rebuilt from top-5). Checked:

* every number of a board (points, ER intervals, paired differences, ties, the fit's band) equals
  the domain's from-scratch computation from the per-sample correctness the test itself knows;
* the background thread computes the aggregates after the finishes, and a board then makes no pass
  of resampling weights; a request with more resamples than stored extends them (same first ones);
* a re-commit makes an aggregate stale and it is recomputed; deleting a model removes its rows;
* a group's per-shift boards equal the single-shift boards, and the overview's points match.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from shiftboard.domain.bootstrap import WEIGHTS_METHOD, resampled_correct, sample_list_key
from shiftboard.domain.paired import restricted_correct
from shiftboard.domain.robustness import LeaderboardSettings, ModelResult, shift_leaderboard
from shiftboard.services.gateway.aggregates import Aggregator
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers
from tests.conftest import GatewayHandle, serving_gateway
from tests.test_gateway import metadata
from tests.test_leaderboard_rpc import SUBLIST, add_set, commit_logits

pytestmark = pytest.mark.stack

REF, SHIFT, SUB, GROUP = "ag-ref", "ag-noise", "ag-sub", "ag-group"
#: (name, boost of the right class on the reference, on the shifts); the last two are above the line.
MODELS = [("ag-m0", 0.4, 0.2), ("ag-m1", 1.0, 0.6), ("ag-m2", 1.6, 1.0), ("ag-m3", 2.2, 1.5),
          ("ag-r4", 1.2, 1.4), ("ag-old", 1.8, 1.3)]
ROBUST = {"ag-r4"}


def _logits(boost: float, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    def make(labels: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng([seed, int(labels.sum()), len(labels)])
        logits = rng.normal(0, 1, (len(labels), 10))
        logits[np.arange(len(labels)), labels] += boost
        return logits
    return make


class Truth:
    """What the test committed: per model and test set, the correctness the gateway must use."""

    def __init__(self) -> None:
        self.correct: dict[tuple[str, str], np.ndarray] = {}
        self.sub_ref: dict[str, np.ndarray] = {}  # reference correctness on the sub-list's samples

    def record(self, name: str, testset: str, labels: np.ndarray, logits: np.ndarray, exact: bool) -> None:
        if testset == SUB:
            self.correct[(name, testset)] = np.array(SUBLIST)[logits[:, SUBLIST].argmax(axis=1)] == labels
            return
        self.correct[(name, testset)] = logits.argmax(axis=1) == labels
        if testset == REF:
            kept = np.isin(labels, SUBLIST)
            if exact:
                self.sub_ref[name] = np.array(SUBLIST)[logits[kept][:, SUBLIST].argmax(axis=1)] == labels[kept]
            else:
                top5 = np.argsort(-logits, axis=1, kind="stable")[:, :5]
                self.sub_ref[name] = restricted_correct(labels, top5, SUBLIST)


def _commit(gw: GatewayHandle, truth: Truth, name: str, testset: str, boost: float, seed: int) -> None:
    exact = name != "ag-old"
    key = pb.EvaluationKey(model=name, version="1", testset=testset)
    labels, logits = commit_logits(gw, key, _logits(boost, seed), restricted=exact)
    truth.record(name, testset, labels, logits, exact)


@pytest.fixture(scope="module")
def gw(object_store: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    with serving_gateway(object_store, tmp_path_factory.mktemp("aggregates-gateway"), "aggregates-tests") as handle:
        yield handle


@pytest.fixture(scope="module")
def truth(gw: GatewayHandle, tmp_path_factory: pytest.TempPathFactory) -> Truth:
    from shiftboard.wire import vocab

    tmp = tmp_path_factory.mktemp("aggregates-sets")
    images, labels = helpers.digits(600)
    rng = np.random.default_rng(0)
    noisy = np.clip(images + rng.normal(0, 60, images.shape), 0, 255).astype(np.uint8)
    inside = np.isin(labels, SUBLIST)
    add_set(gw, tmp, REF, images, labels, kind=pb.TEST_SET_KIND_REFERENCE)
    add_set(gw, tmp, SHIFT, noisy, labels, kind=pb.TEST_SET_KIND_SYNTHETIC, reference=REF, group=GROUP)
    add_set(gw, tmp, SUB, images[inside], labels[inside], kind=pb.TEST_SET_KIND_NATURAL, reference=REF,
            class_subset=SUBLIST, group=GROUP)
    out = Truth()
    for i, (name, ref_boost, shift_boost) in enumerate(MODELS):
        md = metadata(name)
        md.category = vocab.category_value("robustness-intervention" if name in ROBUST else "standard")
        gw.client.submit_model(helpers.torchscript_model(tmp / f"{name}.pt"), md)
        _commit(gw, out, name, REF, ref_boost, seed=10 * i)
        _commit(gw, out, name, SHIFT, shift_boost, seed=10 * i + 1)
        _commit(gw, out, name, SUB, shift_boost, seed=10 * i + 2)
    return out


def aggregator_of(gw: GatewayHandle) -> Aggregator:
    assert gw.server.servicer is not None
    return gw.server.servicer.aggregator


def _wait_for_background(gw: GatewayHandle, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while aggregator_of(gw).pending():
        assert time.monotonic() < deadline, "the background thread did not compute the aggregates"
        time.sleep(0.2)


def scratch(truth: Truth, shift: str, resamples: int, transform: str = "logit"):
    """The board computed by the domain from per-sample correctness, as the gateway must compute it."""
    restricted = shift == SUB
    table = [ModelResult(model=f"{name}:1", category="robustness-intervention" if name in ROBUST else "standard",
                         ref_correct=truth.sub_ref[name] if restricted else truth.correct[(name, REF)],
                         shift_correct=truth.correct[(name, shift)]) for name, _, _ in MODELS]
    cfg = LeaderboardSettings(transform=transform, resamples=resamples)  # type: ignore[arg-type]
    return shift_leaderboard(table, cfg, shift=shift, ref_key=sample_list_key(REF, shift if restricted else ""),
                             shift_key=sample_list_key(shift))


def assert_same_board(message: pb.Leaderboard, board) -> None:
    rows = {r.model: r for r in message.rows}
    assert [r.model for r in message.rows] == [r.model for r in board.rows]
    for mine in board.rows:
        theirs = rows[mine.model]
        assert (theirs.ref_acc, theirs.n_ref, theirs.shift_acc, theirs.n_shift) == \
            (mine.ref_acc, mine.n_ref, mine.shift_acc, mine.n_shift)
        assert (theirs.er, theirs.rank, theirs.tied) == (mine.er, mine.rank, mine.tied)
        assert (theirs.er_ci.low, theirs.er_ci.high) == mine.er_ci  # exact, not approximately
        assert (theirs.diff_ci.low, theirs.diff_ci.high) == mine.diff_ci
    assert list(message.fit.band_low) == list(board.band.low) and list(message.fit.band_high) == list(board.band.high)
    assert message.er_mode == "paired"


def test_boards_from_aggregates_equal_the_domain_from_scratch(gw, truth):
    _wait_for_background(gw)
    aggregator = aggregator_of(gw)
    stored = gw.server.catalog.query("SELECT count(*), min(resamples), min(method) FROM aggregates")[0]
    # 6 models x 3 sets, plus each reference evaluation on the sub-list's samples.
    assert stored == (3 * len(MODELS) + len(MODELS), gw.settings.bootstrap_resamples, WEIGHTS_METHOD)
    passes = aggregator.stats().passes
    for shift in (SHIFT, SUB):
        for transform in ("logit", "probit"):
            message = gw.client.leaderboard(shift=shift, resamples=300, transform=transform)
            assert_same_board(message, scratch(truth, shift, 300, transform))
    assert aggregator.stats().passes == passes, "boards were made from stored aggregates, no weights drawn"
    sub = gw.client.leaderboard(shift=SUB, resamples=300)
    assert any("rebuilt from stored top-5 for 1 model(s) (ag-old:1)" in n for n in sub.notes)
    assert {r.model: r.n_ref for r in sub.rows}["ag-m0:1"] == len(truth.sub_ref["ag-m0"])

    # A group's per-shift boards are the single-shift boards; the overview has the same points.
    group = gw.client.leaderboard(group=GROUP, resamples=300)
    for message in group.shifts:
        single = gw.client.leaderboard(shift=message.shift, resamples=300)
        assert message.SerializeToString(deterministic=True) == single.SerializeToString(deterministic=True)
    for message in gw.client.overview():
        rows = {r.model: r.er for r in scratch(truth, message.shift, 300).rows}
        assert {r.model: r.er for r in message.rows} == rows and not message.er_mode


def test_more_resamples_than_stored_extend_the_aggregates(gw, truth):
    _wait_for_background(gw)
    ref_id = gw.server.catalog.query("SELECT id FROM evaluations WHERE model = 'ag-m1' AND testset = ?", [REF])[0][0]

    def counts() -> np.ndarray:
        blob = gw.server.catalog.query("SELECT counts FROM aggregates WHERE evaluation_id = ? AND variant = ''",
                                       [ref_id])[0][0]
        return np.frombuffer(blob, dtype="<i4")

    before = counts()
    assert len(before) == gw.settings.bootstrap_resamples
    assert np.array_equal(before, resampled_correct(truth.correct[("ag-m1", REF)][None], REF, len(before))[0])
    message = gw.client.leaderboard(shift=SHIFT, resamples=1500)
    assert_same_board(message, scratch(truth, SHIFT, 1500))
    after = counts()
    assert len(after) == 1500 and np.array_equal(after[:len(before)], before)


def test_a_recommit_recomputes_and_a_delete_removes(gw, truth, tmp_path):
    _wait_for_background(gw)
    catalog = gw.server.catalog
    (shift_id,) = catalog.query("SELECT id FROM evaluations WHERE model = 'ag-m2' AND testset = ?", [SHIFT])[0]
    old_stamp = catalog.query("SELECT stamp FROM aggregates WHERE evaluation_id = ? AND variant = ''", [shift_id])
    # Re-run ag-m2 on the shift with other logits: its aggregate goes stale, then is made again.
    _commit(gw, truth, "ag-m2", SHIFT, 3.0, seed=99)
    _wait_for_background(gw)
    stamp, current = catalog.query("SELECT a.stamp, epoch_us(e.updated_at) FROM aggregates a JOIN evaluations e "
                                   "ON e.id = a.evaluation_id WHERE a.evaluation_id = ? AND a.variant = ''",
                                   [shift_id])[0]
    assert stamp == current and [(stamp,)] != old_stamp
    message = gw.client.leaderboard(shift=SHIFT, resamples=200)
    assert_same_board(message, scratch(truth, SHIFT, 200))
    assert {r.model: r.shift_acc for r in message.rows}["ag-m2:1"] == truth.correct[("ag-m2", SHIFT)].mean()

    # A stale or missing row is also recomputed on a request (and stored), with the same numbers.
    catalog.query("DELETE FROM aggregates")
    assert_same_board(gw.client.leaderboard(shift=SUB, resamples=200, transform="probit"),
                      scratch(truth, SUB, 200, "probit"))
    assert catalog.query("SELECT count(*) FROM aggregates")[0][0] == 2 * len(MODELS)  # the board's two lists

    # A deleted model's rows go.
    gw.client.submit_model(helpers.torchscript_model(tmp_path / "ag-gone.pt"), metadata("ag-gone"))
    _commit(gw, truth, "ag-gone", REF, 1.0, seed=7)
    _wait_for_background(gw)
    (gone,) = catalog.query("SELECT id FROM evaluations WHERE model = 'ag-gone' AND testset = ?", [REF])[0]
    assert catalog.query("SELECT count(*) FROM aggregates WHERE evaluation_id = ?", [gone])[0][0] == 2
    gw.client.delete_model("ag-gone", "1")
    deadline = time.monotonic() + 60
    while catalog.query("SELECT count(*) FROM aggregates WHERE evaluation_id = ?", [gone])[0][0]:
        assert time.monotonic() < deadline, "a deleted evaluation's aggregates stayed"
        time.sleep(0.2)
    assert aggregator_of(gw).flush().computed > 0
