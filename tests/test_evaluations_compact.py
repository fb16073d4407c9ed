"""Compact prediction storage and batched commits (CommitShards), against a real gateway and DuckDB.

Test sets and models are registered in this module's own gateway's catalog directly (rows and labels: no
shard upload, no probe, so no model object: the session gateway, whose tests count stored objects, is
left alone), so that shards of any size cost nothing to set up; every prediction goes in
through the gRPC API with an evaluator token, as a worker sends it, and comes back out through it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb
import grpc
import numpy as np
import pytest

from shiftboard.adapters.duckdb.catalog import MIGRATIONS, Catalog
from shiftboard.adapters.duckdb.evaluations import Evaluations, label_bytes
from shiftboard.client import Client
from shiftboard.domain import layout
from shiftboard.domain.errors import InvalidArgument, PermissionDenied, ResourceExhausted, Unauthenticated
from shiftboard.services.gateway.servicer import MAX_CLASSES
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.v1 import shiftboard_pb2_grpc as pb_grpc
from shiftboard.wire.commits import Assembler, ShardPredictions, commit_requests
from tests.conftest import GatewayHandle, serving_gateway

pytestmark = pytest.mark.stack

CLASSES = 1000


def _register(catalog: Catalog, name: str, sizes: list[int], rng: np.random.Generator,
              classes: int = CLASSES) -> dict[int, np.ndarray]:
    """A test set of shards of ``sizes`` samples, with random labels (returned by shard index)."""
    firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    shards = [pb.Shard(index=i, first_sample=int(f), num_samples=n, key=f"testsets/{name}/{i}")
              for i, (f, n) in enumerate(zip(firsts, sizes, strict=True))]
    testset = pb.TestSet(spec=pb.TestSetSpec(name=name, kind=pb.TEST_SET_KIND_REFERENCE, num_classes=classes,
                                             channels=1, height=8, width=8, num_samples=sum(sizes), shards=shards),
                         created_by="test")
    testset.created_at.GetCurrentTime()
    labels = {s.index: rng.integers(0, classes, s.num_samples).astype(np.int32) for s in shards}
    catalog.add_testset(testset, labels={i: label_bytes(v) for i, v in labels.items()})
    return labels


def _model(catalog: Catalog, name: str, classes: int = CLASSES) -> None:
    model = pb.Model(metadata=pb.ModelMetadata(
        name=name, version="1", format=pb.MODEL_FORMAT_TORCHSCRIPT, num_classes=classes,
        category=pb.MODEL_CATEGORY_STANDARD, input=pb.InputSpec(channels=1, height=8, width=8)),
        sha256="0" * 64, created_by="test")
    model.created_at.GetCurrentTime()
    catalog.add_model(model, f"models/{name}")


def _predictions(labels: dict[int, np.ndarray], rng: np.random.Generator, classes: int = CLASSES,
                 accuracy: float = 0.6) -> list[ShardPredictions]:
    out = []
    first = 0
    for index in sorted(labels):
        y = labels[index]
        n = len(y)
        top5 = rng.integers(0, classes, size=(n, 5)).astype(np.int32)
        right = rng.random(n) < accuracy
        top5[right, 0] = y[right]
        top5[: n // 7, 4] = -1  # padded rankings
        out.append(ShardPredictions(index=index, first_sample=first, top5=top5,
                                    confidence=rng.random(n, dtype=np.float32), seconds=0.25))
        first += n
    return out


@pytest.fixture(scope="module")
def gateway(object_store: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    with serving_gateway(object_store, tmp_path_factory.mktemp("compact-gateway"), "compact-tests") as handle:
        yield handle


@pytest.fixture(scope="module")
def evaluator(gateway: GatewayHandle) -> Iterator[Client]:
    token = gateway.client.create_token("compact-evaluator", role=pb.TOKEN_ROLE_EVALUATOR).token
    with Client(gateway.target, token) as client:
        yield client


def _stored(gateway: GatewayHandle, model: str, testset: str) -> dict[str, np.ndarray]:
    batches = gateway.client.predictions(model, testset, "1")
    return {f: np.concatenate([np.asarray(getattr(b, f)) for b in batches])
            for f in ("sample", "label", "top1", "top5", "confidence", "correct")}


def _evaluation_id(gateway: GatewayHandle, model: str, testset: str) -> int:
    return int(gateway.server.catalog.query("SELECT id FROM evaluations WHERE model = ? AND testset = ?",
                                            [model, testset])[0][0])


def test_layout_round_trips_every_class_count() -> None:
    rng = np.random.default_rng(0)
    assert MAX_CLASSES <= layout.MAX_PACKED_CLASSES  # every model the gateway accepts can be stored
    for classes in (2, 10, 1000, 4095, 4096, 21_843, MAX_CLASSES, layout.MAX_PACKED_CLASSES):
        top5 = rng.integers(-1, classes, size=(1000, 5)).astype(np.int32)
        top5[0] = classes - 1
        bits = layout.class_bits(classes)
        lo, hi = layout.pack_top5(top5, bits)
        assert (lo >= 0).all() and (hi >= 0).all() and (hi == 0).all() == (5 * bits <= 63)
        np.testing.assert_array_equal(layout.unpack_top5(lo, hi, bits), top5)
    with pytest.raises(ValueError, match="holds 1 to"):
        layout.class_bits(layout.MAX_PACKED_CLASSES + 1)
    p = np.array([0.0, 1.0, 1e-9, 0.5, 0.123456789, np.nextafter(np.float32(1), np.float32(0))], np.float32)
    back = layout.confidence_of(layout.quantize_confidence(p))
    assert np.abs(back - p).max() < 5.1e-7 and back[0] == 0.0 and back[1] == 1.0


def test_commit_shards_stores_what_was_sent(gateway: GatewayHandle, evaluator: Client) -> None:
    rng = np.random.default_rng(1)
    catalog = gateway.server.catalog
    labels = _register(catalog, "compact-set", [1000, 1000, 437], rng)
    _model(catalog, "compact-m")
    key = pb.EvaluationKey(model="compact-m", version="1", testset="compact-set")
    sent = _predictions(labels, rng)
    # a caller's own top-1 that differs from top-5[0] (its tie rule) is kept as sent
    own = sent[1].top5[:, 0].copy()
    own[[3, 500]] = (own[[3, 500]] + 1) % CLASSES
    sent[1] = ShardPredictions(index=1, first_sample=1000, top5=sent[1].top5, confidence=sent[1].confidence,
                               top1=own, seconds=0.5)
    plan = evaluator.start_evaluation(key)
    assert list(plan.pending_shards) == [0, 1, 2]
    evaluator.commit_shards(key, sent[:2])
    assert list(evaluator.start_evaluation(key).pending_shards) == [2]  # resumes at the uncommitted shard
    evaluation = evaluator.commit_shards(key, sent[1:])  # shard 1 again: replaced, never duplicated
    assert (evaluation.shards_done, evaluation.samples_done) == (3, 2437)
    evaluator.finish_evaluation(key)

    label = np.concatenate([labels[i] for i in range(3)])
    top1 = np.concatenate([s.top1_or_first for s in sent])
    top5 = np.concatenate([s.top5 for s in sent])
    stored = _stored(gateway, "compact-m", "compact-set")
    np.testing.assert_array_equal(stored["sample"], np.arange(2437))
    np.testing.assert_array_equal(stored["label"], label)
    np.testing.assert_array_equal(stored["top1"], top1)
    np.testing.assert_array_equal(stored["top5"].reshape(-1, 5), top5)
    np.testing.assert_allclose(stored["confidence"], np.concatenate([s.confidence for s in sent]), atol=5.1e-7)
    np.testing.assert_array_equal(stored["correct"], top1 == label)
    evaluations: Evaluations = gateway.server.servicer.evaluations  # type: ignore[union-attr]
    evaluation_id = _evaluation_id(gateway, "compact-m", "compact-set")
    np.testing.assert_array_equal(evaluations.correctness(evaluation_id), top1 == label)
    got_labels, got_top5, got_correct = evaluations.columns(evaluation_id)
    assert (got_labels.dtype, got_top5.dtype, got_correct.dtype) == (np.int32, np.int32, np.bool_)
    np.testing.assert_array_equal(got_labels, label)
    np.testing.assert_array_equal(got_top5, top5)
    np.testing.assert_array_equal(got_correct, top1 == label)
    [accuracy] = gateway.client.accuracy(model="compact-m", testset="compact-set")
    assert (accuracy.samples, accuracy.correct) == (2437, int((top1 == label).sum()))
    assert catalog.query("SELECT count(*) FROM predictions WHERE evaluation_id = ?", [evaluation_id]) == [(2437,)]


def test_a_failed_stream_stores_nothing(gateway: GatewayHandle, evaluator: Client) -> None:
    rng = np.random.default_rng(2)
    catalog = gateway.server.catalog
    labels = _register(catalog, "compact-atomic", [300, 300, 300], rng)
    _model(catalog, "compact-atomic-m")
    key = pb.EvaluationKey(model="compact-atomic-m", version="1", testset="compact-atomic")
    sent = _predictions(labels, rng)
    bad_top5 = sent[2].top5.copy()
    bad_top5[-1, 0] = CLASSES  # a class the model does not have, in the last shard
    bad = ShardPredictions(index=2, first_sample=600, top5=bad_top5, confidence=sent[2].confidence)
    evaluator.start_evaluation(key)
    with pytest.raises(InvalidArgument, match=r"predicted classes must lie in \[0, 1000\)"):
        evaluator.commit_shards(key, [sent[0], sent[1], bad])
    evaluation_id = _evaluation_id(gateway, "compact-atomic-m", "compact-atomic")
    for table in ("predictions", "evaluation_shards"):
        assert catalog.query(f"SELECT count(*) FROM {table} WHERE evaluation_id = ?", [evaluation_id]) == [(0,)]
    [evaluation] = gateway.client.list_evaluations(model="compact-atomic-m")
    assert evaluation.shards_done == 0
    # committed shards survive a later failed stream that re-sends them
    evaluator.commit_shards(key, [sent[0]])
    worse = ShardPredictions(index=1, first_sample=300, top5=sent[1].top5, confidence=sent[1].confidence * 3)
    with pytest.raises(InvalidArgument, match="probabilities"):
        evaluator.commit_shards(key, [sent[0], worse])
    with pytest.raises(InvalidArgument, match="covers samples 300..599"):
        evaluator.commit_shards(key, [ShardPredictions(index=1, first_sample=0, top5=sent[1].top5,
                                                       confidence=sent[1].confidence)])
    assert catalog.query("SELECT count(*) FROM predictions WHERE evaluation_id = ?", [evaluation_id]) == [(300,)]
    stored = _stored(gateway, "compact-atomic-m", "compact-atomic")
    np.testing.assert_array_equal(stored["top5"].reshape(-1, 5), sent[0].top5)


def test_a_700k_sample_shard_commits(gateway: GatewayHandle, evaluator: Client) -> None:
    rng = np.random.default_rng(3)
    catalog = gateway.server.catalog
    labels = _register(catalog, "compact-big", [700_000], rng)
    _model(catalog, "compact-big-m")
    key = pb.EvaluationKey(model="compact-big-m", version="1", testset="compact-big")
    [sent] = _predictions(labels, rng)
    assert len(list(commit_requests(key, [sent]))) > 3  # split over messages under the 8 MiB limit
    evaluator.start_evaluation(key)
    evaluation = evaluator.commit_shards(key, [sent])
    assert (evaluation.shards_done, evaluation.samples_done) == (1, 700_000)
    evaluations: Evaluations = gateway.server.servicer.evaluations  # type: ignore[union-attr]
    correct = sent.top5[:, 0] == labels[0]
    np.testing.assert_array_equal(evaluations.correctness(_evaluation_id(gateway, "compact-big-m", "compact-big")),
                                  correct)
    evaluator.finish_evaluation(key)
    [accuracy] = gateway.client.accuracy(model="compact-big-m", testset="compact-big")
    assert (accuracy.samples, accuracy.correct) == (700_000, int(correct.sum()))


def test_only_evaluators_and_admins_commit(gateway: GatewayHandle, evaluator: Client) -> None:
    rng = np.random.default_rng(4)
    catalog = gateway.server.catalog
    labels = _register(catalog, "compact-roles", [50], rng)
    _model(catalog, "compact-roles-m")
    key = pb.EvaluationKey(model="compact-roles-m", version="1", testset="compact-roles")
    sent = _predictions(labels, rng)
    evaluator.start_evaluation(key)
    token = gateway.client.create_token("compact-submitter", role=pb.TOKEN_ROLE_SUBMITTER).token
    with Client(gateway.target, token) as submitter, pytest.raises(PermissionDenied, match="evaluator"):
        submitter.commit_shards(key, sent)
    with Client(gateway.target) as anonymous, pytest.raises(Unauthenticated):
        anonymous.commit_shards(key, sent)
    assert gateway.client.list_evaluations(model="compact-roles-m")[0].shards_done == 0
    assert gateway.client.commit_shards(key, sent).shards_done == 1  # an admin may


def test_stream_parts_are_checked(gateway: GatewayHandle, evaluator: Client) -> None:
    rng = np.random.default_rng(5)
    catalog = gateway.server.catalog
    labels = _register(catalog, "compact-parts", [100, 100], rng)
    _model(catalog, "compact-parts-m")
    key = pb.EvaluationKey(model="compact-parts-m", version="1", testset="compact-parts")
    sent = _predictions(labels, rng)
    evaluator.start_evaluation(key)
    stub = pb_grpc.ShiftboardStub(grpc.insecure_channel(gateway.target))
    metadata = evaluator._metadata
    messages = list(commit_requests(key, sent, message_bytes=1000))  # many parts per shard
    cases = [
        (messages[:1], "send every sample of each shard"),            # a shard cut short
        (messages[:1] + messages[2:], "send its parts in order"),     # a part missing
        ([pb.CommitShardsRequest(parts=messages[0].parts)], "must carry the evaluation's key"),
        (messages + messages[-1:], "sent twice"),
        ([], "an empty CommitShards stream"),
    ]
    for requests, match in cases:
        with pytest.raises(grpc.RpcError) as info:
            stub.CommitShards(iter(requests), metadata=metadata)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and match in info.value.details()
    assert stub.CommitShards(iter(messages), metadata=metadata).shards_done == 2


def test_assembler_bounds_a_stream() -> None:
    assembler = Assembler([0, 10], [10, 10], "t")
    assembler.samples = 1 << 30  # as if a huge first shard had been received: one shard of any size is fine
    part = pb.ShardPart(shard_index=0, first_sample=0, samples=10, top5=b"\0" * 200, confidence=b"\0" * 40)
    assembler.add(part)
    with pytest.raises(ResourceExhausted, match="commit fewer shards per stream"):
        assembler.add(pb.ShardPart(shard_index=1, first_sample=10, samples=10, top5=b"\0" * 200,
                                   confidence=b"\0" * 40))


def _old_catalog(path: Path, rng: np.random.Generator) -> dict[str, list[tuple]]:
    """A catalog at schema version 5 with predictions in the old layout: one evaluation on a set whose
    labels are stored, one on a set registered before labels were kept, a running one with a shard
    missing; rows with -1 pads and a top-1 that is not top-5[0]."""
    now = dt.datetime.now(dt.UTC)
    rows: dict[str, list[tuple]] = {}
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
        for version, sql in enumerate(MIGRATIONS[:5], start=1):
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
        for name, classes in (("old-m", 1000), ("old-wide", 5000)):
            conn.execute("INSERT INTO models VALUES (?, '1', 'torchscript', 1, 8, 8, 0, 1, [0.0], [1.0], ?, "
                         "'standard', '', [], 0, '', ?, ?, 'test')", [name, classes, f"models/{name}", now])
        sets = {"old-labelled": [40, 25], "old-unlabelled": [30, 30, 7]}
        for name, sizes in sets.items():
            conn.execute("INSERT INTO testsets VALUES (?, 'reference', '', '', 5000, [], [], 1, 8, 8, ?, 0, '', ?, "
                         "'test', NULL, NULL)", [name, sum(sizes), now])
            first = 0
            for i, n in enumerate(sizes):
                conn.execute("INSERT INTO shards VALUES (?, ?, ?, ?, 0, '', ?)", [name, i, first, n, f"k/{name}/{i}"])
                first += n
        labels = {name: rng.integers(0, 1000, sum(sizes)).astype(np.int32) for name, sizes in sets.items()}
        first = 0
        for i, n in enumerate(sets["old-labelled"]):
            conn.execute("INSERT INTO shard_labels VALUES ('old-labelled', ?, ?)",
                         [i, label_bytes(labels["old-labelled"][first:first + n])])
            first += n
        evaluations = [("old-m", "old-labelled", "succeeded", [0, 1]),
                       ("old-wide", "old-unlabelled", "running", [0, 2])]
        for evaluation_id, (model, testset, status, done) in enumerate(evaluations, start=1):
            sizes = sets[testset]
            conn.execute("INSERT INTO evaluations (model, version, testset, status, shards_total, samples_total, "
                         "created_at, updated_at) VALUES (?, '1', ?, ?, ?, ?, ?, ?)",
                         [model, testset, status, len(sizes), sum(sizes), now, now])
            classes = 1000 if model == "old-m" else 5000
            firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            for shard in done:
                conn.execute("INSERT INTO evaluation_shards VALUES (?, ?, ?, 0.5, ?)",
                             [evaluation_id, shard, sizes[shard], now])
                for sample in range(int(firsts[shard]), int(firsts[shard]) + sizes[shard]):
                    top5 = rng.integers(0, classes, 5).tolist()
                    if sample % 5 == 0:
                        top5[3:] = [-1, -1]
                    top1 = int(labels[testset][sample]) if sample % 2 else top5[0]
                    if sample % 3 == 0:
                        top5[0] = top1
                    label = int(labels[testset][sample])
                    conn.execute("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 [evaluation_id, sample, label, top1, top5, float(rng.random()), top1 == label])
        for evaluation_id in (1, 2):
            rows[str(evaluation_id)] = conn.execute(
                "SELECT sample, label, top1, top5, confidence, correct FROM predictions WHERE evaluation_id = ? "
                "ORDER BY sample", [evaluation_id]).fetchall()
    return rows


def test_migration_converts_old_rows_exactly(object_store: Settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    state = tmp_path / "state"
    state.mkdir()
    old = _old_catalog(state / "catalog.duckdb", rng)
    with serving_gateway(object_store, state, "compact-migration") as gw:
        catalog = gw.server.catalog
        assert catalog.schema_version == len(MIGRATIONS)
        evaluations: Evaluations = gw.server.servicer.evaluations  # type: ignore[union-attr]
        for evaluation_id, (model, testset) in ((1, ("old-m", "old-labelled")), (2, ("old-wide", "old-unlabelled"))):
            want = old[str(evaluation_id)]
            got = _stored(gw, model, testset)
            np.testing.assert_array_equal(got["sample"], [r[0] for r in want])
            np.testing.assert_array_equal(got["label"], [r[1] for r in want])
            np.testing.assert_array_equal(got["top1"], [r[2] for r in want])
            np.testing.assert_array_equal(got["top5"].reshape(-1, 5), [r[3] for r in want])
            np.testing.assert_allclose(got["confidence"], [r[4] for r in want], atol=5.1e-7)
            np.testing.assert_array_equal(got["correct"], [r[5] for r in want])
            np.testing.assert_array_equal(evaluations.correctness(evaluation_id), [r[5] for r in want])
            labels, top5, correct = evaluations.columns(evaluation_id)
            np.testing.assert_array_equal(labels, [r[1] for r in want])
            np.testing.assert_array_equal(top5, [r[3] for r in want])
        [accuracy] = gw.client.accuracy(model="old-m")
        assert (accuracy.samples, accuracy.correct) == (65, sum(r[5] for r in old["1"]))
        # the set registered before labels were kept got them from the old rows of its committed shards
        assert [r[0] for r in catalog.query("SELECT idx FROM shard_labels WHERE testset = 'old-unlabelled' "
                                            "ORDER BY idx")] == [0, 2]
        # the running evaluation resumes at its missing shard
        key = pb.EvaluationKey(model="old-wide", version="1", testset="old-unlabelled")
        assert list(gw.client.start_evaluation(key).pending_shards) == [1]
        gw.client.delete_model("old-wide", "1")
        for table in ("predictions", "prediction_top1", "evaluation_shards"):
            assert catalog.query(f"SELECT count(*) FROM {table} WHERE evaluation_id = 2") == [(0,)]
