"""The gateway's cache of computed leaderboards, through a real gateway of its own.

A module gateway (in-process, port 0, DuckDB in a temporary directory) over the session's object
store, so that its hit counts and boards see no other test file's data. Four linear models on
digits are evaluated (in-process torch, committed as the worker would) on a reference and a shift.
A repeated request must be answered from the cache (counted by the cache object) with the same
bytes as a freshly computed answer (from the stored aggregates, or with those deleted too); a commit,
a finish, a delete and an import must each make the next answer reflect the change.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from shiftboard.services.gateway.board_cache import BoardCache, Lru
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers
from tests.conftest import GatewayHandle, serving_gateway
from tests.test_evaluations import torch_predictions
from tests.test_gateway import metadata
from tests.test_leaderboard_rpc import add_set, evaluate, train

pytestmark = pytest.mark.stack

SHIFT, REF, GROUP = "bc-noise", "bc-ref", "bc-corruptions"


def _bytes(message: pb.Leaderboard) -> bytes:
    return message.SerializeToString(deterministic=True)


@pytest.fixture(scope="module")
def gw(object_store: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    with serving_gateway(object_store, tmp_path_factory.mktemp("board-cache-gateway"), "board-cache-tests") as handle:
        yield handle


@pytest.fixture(scope="module")
def models(gw: GatewayHandle, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("board-cache-models")
    images, labels = helpers.digits(400)
    rng = np.random.default_rng(0)
    noisy = np.clip(images + rng.normal(0, 60, images.shape), 0, 255).astype(np.uint8)
    add_set(gw, tmp, REF, images, labels, kind=pb.TEST_SET_KIND_REFERENCE)
    add_set(gw, tmp, SHIFT, noisy, labels, kind=pb.TEST_SET_KIND_SYNTHETIC, reference=REF, group=GROUP)
    paths = {}
    for i, steps in enumerate((2, 5, 12, 40)):
        name = f"bc-m{i}"
        paths[name] = train(tmp / f"{name}.pt", steps, seed=i)
        gw.client.submit_model(paths[name], metadata(name))
        evaluate(gw, paths[name], name, REF)
        evaluate(gw, paths[name], name, SHIFT)
    paths["tmp"] = tmp
    return paths


def cache_of(gw: GatewayHandle) -> BoardCache:
    assert gw.server.servicer is not None
    return gw.server.servicer.board_cache


def test_repeated_requests_are_served_from_the_cache_byte_for_byte(gw: GatewayHandle,
                                                                   models: dict[str, object]) -> None:
    cache = cache_of(gw)
    assert gw.server.servicer is not None
    aggregator = gw.server.servicer.aggregator
    cache.boards.clear()
    first = gw.client.leaderboard(shift=SHIFT, resamples=200)
    assert len(first.rows) == 4 and first.fit.ok
    before = cache.boards.stats()
    again = gw.client.leaderboard(shift=SHIFT, resamples=200)
    assert cache.boards.stats().hits == before.hits + 1
    assert _bytes(again) == _bytes(first)

    # Another request field is another entry; the stored aggregates serve it (no resampling pass).
    passes = aggregator.stats().passes
    probit = gw.client.leaderboard(shift=SHIFT, resamples=200, transform="probit")
    assert cache.boards.stats().hits == before.hits + 1 and probit.fit.slope != first.fit.slope
    other = gw.client.leaderboard(shift=SHIFT, resamples=100)
    assert _bytes(other) != _bytes(first)
    assert aggregator.stats().passes == passes

    # Identical to an answer computed with nothing remembered: no board, no aggregates (made again).
    cache.boards.clear()
    assert _bytes(gw.client.leaderboard(shift=SHIFT, resamples=200)) == _bytes(first)
    gw.server.catalog.query("DELETE FROM aggregates")
    cache.boards.clear()
    assert _bytes(gw.client.leaderboard(shift=SHIFT, resamples=200)) == _bytes(first)
    assert aggregator.stats().passes == passes + 2  # the reference's and the shift's sample lists

    group = gw.client.leaderboard(group=GROUP, resamples=50)
    hits = cache.boards.stats().hits
    assert _bytes(gw.client.leaderboard(group=GROUP, resamples=50)) == _bytes(group)
    overview = gw.client.overview()
    assert [b.shift for b in overview] == [SHIFT]
    assert [_bytes(b) for b in gw.client.overview()] == [_bytes(b) for b in overview]
    assert cache.boards.stats().hits == hits + 2


def _rows(board: pb.Leaderboard) -> dict[str, pb.LeaderboardRow]:
    return {r.model: r for r in board.rows}


def test_commit_and_finish_invalidate(gw: GatewayHandle, models: dict[str, object]) -> None:
    cache = cache_of(gw)
    before = _rows(gw.client.leaderboard(shift=SHIFT, resamples=100))
    assert _rows(gw.client.leaderboard(shift=SHIFT, resamples=100)) == before
    # Rerun bc-m3 on the shift with every prediction shifted by one class: all wrong.
    key = pb.EvaluationKey(model="bc-m3", version="1", testset=SHIFT)
    plan = gw.client.start_evaluation(key)
    running = gw.client.leaderboard(shift=SHIFT, resamples=100)
    assert "bc-m3:1" not in _rows(running), "a running evaluation is not on the board"
    stale = cache.boards.stats().stale
    for shard in plan.testset.spec.shards:
        images, labels = _shard(gw, shard)
        preds = torch_predictions(models["bc-m3"], images, labels, shard.first_sample)
        preds.top1[:] = [(int(labels[i]) + 1) % 10 for i in range(len(labels))]
        top5 = np.asarray(preds.top5).reshape(-1, 5)
        top5[:, 0] = np.asarray(preds.top1)
        preds.top5[:] = top5.ravel().tolist()
        gw.client.commit_shard(key, shard.index, preds, 0.0)
        gw.client.leaderboard(shift=SHIFT, resamples=100)
    assert cache.boards.stats().stale == stale + len(plan.testset.spec.shards), "every commit changes the stamp"
    gw.client.finish_evaluation(key)
    after = _rows(gw.client.leaderboard(shift=SHIFT, resamples=100))
    assert after["bc-m3:1"].shift_acc == 0.0 and before["bc-m3:1"].shift_acc > 0.5
    assert after["bc-m0:1"].shift_acc == before["bc-m0:1"].shift_acc


def _shard(gw: GatewayHandle, shard: pb.Shard) -> tuple[np.ndarray, np.ndarray]:
    from shiftboard import testsets as ts

    return ts.read_shard(gw.store.get_bytes(shard.key))


def test_delete_and_import_invalidate(gw: GatewayHandle, models: dict[str, object], tmp_path: Path) -> None:
    path = train(tmp_path / "bc-extra.pt", 20, seed=9)
    gw.client.submit_model(path, metadata("bc-extra"))
    evaluate(gw, path, "bc-extra", REF)
    evaluate(gw, path, "bc-extra", SHIFT)
    board = gw.client.leaderboard(shift=SHIFT, resamples=100)
    group = gw.client.leaderboard(group=GROUP, resamples=50)
    assert "bc-extra:1" in _rows(board) and "bc-extra:1" in {g.model for g in group.group_rows}
    gw.client.delete_model("bc-extra", "1")
    assert "bc-extra:1" not in _rows(gw.client.leaderboard(shift=SHIFT, resamples=100))
    assert "bc-extra:1" not in {g.model for g in gw.client.leaderboard(group=GROUP, resamples=50).group_rows}

    before = gw.client.leaderboard(shift=SHIFT, resamples=100)
    overview = gw.client.overview()
    assert not any(r.imported for r in before.rows)
    csv = tmp_path / "lab.csv"
    csv.write_text("model,testset,accuracy,total,category\n" + "".join(
        f"bc-lab-{i},{t},{a},400,standard\n" for i in range(4) for t, a in ((REF, 0.5 + 0.1 * i),
                                                                         (SHIFT, 0.3 + 0.1 * i))))
    gw.client.import_results(csv, format="long", source="bc-lab")
    after = gw.client.leaderboard(shift=SHIFT, resamples=100)
    assert {r.model for r in after.rows if r.imported} == {f"bc-lab-{i}" for i in range(4)}
    assert after.er_mode == "binomial" and before.er_mode != "binomial"
    assert [_bytes(b) for b in gw.client.overview()] != [_bytes(b) for b in overview]


def test_the_cache_stays_within_its_bounds(gw: GatewayHandle, models: dict[str, object]) -> None:
    assert gw.server.servicer is not None
    servicer = gw.server.servicer
    small = BoardCache(board_entries=2, board_bytes=10**6)
    saved = servicer.__dict__["_board_cache"]
    servicer.__dict__["_board_cache"] = small
    try:
        for resamples in (50, 60, 70, 80):
            gw.client.leaderboard(shift=SHIFT, resamples=resamples)
        stats = small.boards.stats()
        assert stats.entries == 2 and stats.evictions == 2 and stats.bytes <= 10**6
        # The two newest are kept, the oldest gone.
        hits = small.boards.stats().hits
        gw.client.leaderboard(shift=SHIFT, resamples=80)
        gw.client.leaderboard(shift=SHIFT, resamples=50)
        assert small.boards.stats().hits == hits + 1
    finally:
        servicer.__dict__["_board_cache"] = saved

    lru: Lru[bytes] = Lru(10, 100, len)
    for i in range(20):
        lru.put(i, "s", bytes(30))
    assert lru.stats().entries == 3 and lru.stats().bytes == 90
    lru.put("big", "s", bytes(101))
    assert lru.get("big", "s") is None and lru.stats().bytes == 90
    assert lru.get(19, "s") is not None and lru.get(19, "other") is None and lru.get(19, "s") is None
    assert lru.stats().stale == 1
