"""The gateway against a real object store and a real DuckDB catalog: the contract and every bad input.

Each refusal is checked three ways: the gRPC status, a message that names the problem, and that
nothing was stored (no catalog row, no object under models/, testsets/ or staging/).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from shiftboard import testsets as ts
from shiftboard.client import Client
from shiftboard.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from shiftboard.services.gateway.server import create_server
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.v1 import shiftboard_pb2_grpc as pb_grpc
from tests import helpers

pytestmark = pytest.mark.stack


def metadata(name: str = "lin", version: str = "1", classes: int = 10) -> pb.ModelMetadata:
    return pb.ModelMetadata(name=name, version=version, format=pb.MODEL_FORMAT_TORCHSCRIPT,
                            input=pb.InputSpec(channels=1, height=8, width=8), num_classes=classes,
                            category=pb.MODEL_CATEGORY_STANDARD, tags=["linear"])


def assert_nothing_stored(gw, *, models: int, testsets: int) -> None:
    assert len(gw.client.list_models()) == models
    assert len(gw.client.list_testsets()) == testsets
    keys = gw.store.list("")
    assert len([k for k in keys if k.startswith("models/")]) == models
    assert not [k for k in keys if k.startswith("staging/")]


def prepared(tmp_path: Path, n: int = 300, **kwargs) -> ts.PreparedTestSet:
    out = tmp_path / "shards"
    out.mkdir(exist_ok=True)
    return ts.prepare_testset(helpers.digits_npz(tmp_path / "d.npz", n), out_dir=out, shard_samples=128,
                              **kwargs)


def spec_of(name: str, p: ts.PreparedTestSet, *, kind: pb.TestSetKind = pb.TEST_SET_KIND_REFERENCE,
            reference: str = "") -> pb.TestSetSpec:
    return pb.TestSetSpec(
        name=name, kind=kind, reference=reference, num_classes=p.num_classes, channels=p.channels,
        height=p.height, width=p.width, num_samples=p.num_samples,
        shards=[pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples,
                         size_bytes=s.size_bytes, sha256=s.sha256) for s in p.shards])


# ------------------------------------------------------------------------------------------ contract


def test_health_reflection_and_info(gateway):
    assert gateway.client.health()
    assert gateway.client.health("shiftboard.v1.Shiftboard")
    info = gateway.client.server_info()
    assert info.catalog_schema_version >= 2 and info.bucket == gateway.settings.s3_bucket
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(gateway.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for r in replies for s in r.list_services_response.service}
    assert {"shiftboard.v1.Shiftboard", "grpc.health.v1.Health"} <= names


def test_submit_model_stores_artifact_and_row(gateway, tmp_path):
    path = helpers.torchscript_model(tmp_path / "m.pt")
    model = gateway.client.submit_model(path, metadata("contract-model"))
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.metadata.input.value_max == 1.0 and list(model.metadata.input.std) == [1.0]
    key = model.artifact_uri.removeprefix(f"s3://{gateway.settings.s3_bucket}/")
    assert gateway.store.get_bytes(key) == path.read_bytes()
    fetched = gateway.client.get_model("contract-model")
    assert fetched.sha256 == model.sha256 and fetched.created_by == "admin"
    # No Triton in this fixture: the deployment state says so instead of failing the call.
    assert fetched.deployment.state == "UNKNOWN" and "Triton" in fetched.deployment.reason
    gateway.client.delete_model("contract-model", "1")
    with pytest.raises(NotFound):
        gateway.client.get_model("contract-model")
    assert gateway.store.size(key) is None


def test_register_testset_moves_verified_shards(gateway, tmp_path):
    p = prepared(tmp_path, 300)
    testset = gateway.client.add_testset(spec_of("contract-ref", p), [s.path for s in p.shards])
    assert testset.spec.num_samples == 300 and len(testset.spec.shards) == 3
    for shard, local in zip(testset.spec.shards, p.shards, strict=True):
        data = gateway.store.get_bytes(shard.key)
        assert hashlib.sha256(data).hexdigest() == local.sha256
    assert not [k for k in gateway.store.list("staging/")]
    images, labels = ts.read_shard(gateway.store.get_bytes(testset.spec.shards[0].key))
    want_images, want_labels = helpers.digits(128)
    np.testing.assert_array_equal(images[:, 0], want_images)
    np.testing.assert_array_equal(labels, want_labels)


# ------------------------------------------------------------------------------------------ bad models


@pytest.mark.parametrize("maker, words", [
    (helpers.plain_pickle, "pickle"),
    (helpers.eager_pickle, "torch.save"),
    (lambda p: (p.write_bytes(np.random.default_rng(0).bytes(4096)), p)[1], "not a TorchScript"),
])
def test_not_torchscript_is_refused(gateway, tmp_path, maker, words):
    before = len(gateway.client.list_models())
    path = maker(tmp_path / "bad.pt")
    with pytest.raises(InvalidArgument, match=words) as info:
        gateway.client.submit_model(path, metadata("bad-format"))
    assert "torch.jit" in info.value.message
    assert_nothing_stored(gateway, models=before, testsets=len(gateway.client.list_testsets()))


def test_wrong_output_width_and_nan_are_refused(gateway, tmp_path):
    before = len(gateway.client.list_models())
    with pytest.raises(InvalidArgument, match=r"shape \[4, 10\], expected \[4, 12\]"):
        gateway.client.submit_model(helpers.torchscript_model(tmp_path / "m.pt"), metadata("wide", classes=12))
    with pytest.raises(InvalidArgument, match="NaN"):
        gateway.client.submit_model(helpers.nan_model(tmp_path / "nan.pt"), metadata("nan"))
    assert_nothing_stored(gateway, models=before, testsets=len(gateway.client.list_testsets()))


def test_duplicate_name_version_is_refused(gateway, tmp_path):
    path = helpers.torchscript_model(tmp_path / "m.pt")
    gateway.client.submit_model(path, metadata("dup"))
    before = len(gateway.store.list("models/"))
    with pytest.raises(AlreadyExists, match="dup version 1 exists"):
        gateway.client.submit_model(path, metadata("dup"))
    assert len(gateway.store.list("models/")) == before


@pytest.mark.parametrize("name, words", [
    ("a/b", "path separator"), ("..", "'..'"), ("x..y", "'..'"), ("bad\nname", "control"), ("", "empty"),
    ("-lead", "start with"), ("sp ace", "not valid"),
])
def test_bad_names_are_refused(gateway, tmp_path, name, words):
    path = helpers.torchscript_model(tmp_path / "m.pt")
    with pytest.raises(InvalidArgument, match=words):
        gateway.client.submit_model(path, metadata(name))
    with pytest.raises(InvalidArgument, match=words):
        gateway.client.create_upload(name, 1)


def test_upload_above_size_limit(object_store, tmp_path):
    """A gateway of its own with a 4 kB limit; the model file is ~3 kB of header plus 40 kB of weights."""
    settings = object_store.replace(state_dir=str(tmp_path / "state"), max_model_bytes=4096,
                                    s3_bucket="limit-test")
    gw = create_server(settings, port=0)
    try:
        from shiftboard import credentials

        client = Client(f"127.0.0.1:{gw.port}", credentials.admin_token(settings))
        path = helpers.torchscript_model(tmp_path / "big.pt", pixels=64 * 16)
        assert path.stat().st_size > 4096
        with pytest.raises(ResourceExhausted, match="SHIFTBOARD_MAX_MODEL_BYTES"):
            client.submit_model(path, pb.ModelMetadata(
                name="big", version="1", format=pb.MODEL_FORMAT_TORCHSCRIPT,
                input=pb.InputSpec(channels=1, height=32, width=32), num_classes=10,
                category=pb.MODEL_CATEGORY_STANDARD))
        assert client.list_models() == []
        client.close()
    finally:
        gw.stop()


# ------------------------------------------------------------------------------------------ auth


def test_tokens(gateway, tmp_path):
    anonymous = Client(gateway.target)
    wrong = Client(gateway.target, "sbt_not-a-token")
    path = helpers.torchscript_model(tmp_path / "m.pt")
    with pytest.raises(Unauthenticated, match="needs an API token"):
        anonymous.submit_model(path, metadata("anon"))
    with pytest.raises(Unauthenticated, match="not valid"):
        wrong.submit_model(path, metadata("anon"))
    with pytest.raises(Unauthenticated):
        anonymous.create_upload("anon-set", 1)
    assert anonymous.list_models() is not None  # reads are open by default
    user_token = gateway.client.create_token("alice").token
    assert user_token.startswith("sbt_")
    alice = Client(gateway.target, user_token)
    model = alice.submit_model(path, metadata("alice-model"))
    assert model.created_by == "alice"
    with pytest.raises(PermissionDenied, match="not an admin"):
        alice.create_token("mallory")
    with pytest.raises(AlreadyExists):
        gateway.client.create_token("alice")
    # The raw token is nowhere in the catalog file.
    assert user_token.encode() not in Path(gateway.settings.catalog_file).read_bytes()
    for c in (anonymous, wrong, alice):
        c.close()


def test_raw_grpc_status_codes(gateway):
    """What a non-Python client sees: the status codes themselves."""
    with grpc.insecure_channel(gateway.target) as channel:
        stub = pb_grpc.ShiftboardStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.GetModel(pb.GetModelRequest(name="nope"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as info:
            stub.CreateToken(pb.CreateTokenRequest(name="x"))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


# ------------------------------------------------------------------------------------------ bad test sets


def test_shift_with_missing_reference(gateway, tmp_path):
    p = prepared(tmp_path, 100)
    before = len(gateway.client.list_testsets())
    with pytest.raises(NotFound, match="reference test set 'no-such-ref' does not exist"):
        gateway.client.add_testset(spec_of("orphan", p, kind=pb.TEST_SET_KIND_NATURAL, reference="no-such-ref"),
                                   [s.path for s in p.shards])
    assert_nothing_stored(gateway, models=len(gateway.client.list_models()), testsets=before)


def test_corrupted_shard_is_refused_and_staging_cleaned(gateway, tmp_path):
    p = prepared(tmp_path, 200)
    spec = spec_of("corrupt", p)
    spec.shards[1].sha256 = "0" * 64
    before = len(gateway.client.list_testsets())
    with pytest.raises(InvalidArgument, match="shard 1"):
        gateway.client.add_testset(spec, [s.path for s in p.shards])
    assert_nothing_stored(gateway, models=len(gateway.client.list_models()), testsets=before)
    assert not gateway.store.list("testsets/corrupt/")


def test_labels_out_of_range_in_shard_is_refused(gateway, tmp_path):
    """A client that skips the CLI's checks: the gateway reads the shard and refuses it."""
    images, labels = helpers.digits(50)
    labels[3] = 42
    data = ts.encode_shard(images[:, None], labels)
    path = tmp_path / "s.npz"
    path.write_bytes(data)
    spec = pb.TestSetSpec(name="bad-labels", kind=pb.TEST_SET_KIND_REFERENCE, num_classes=10, channels=1,
                          height=8, width=8, num_samples=50,
                          shards=[pb.Shard(index=0, first_sample=0, num_samples=50, size_bytes=len(data),
                                           sha256=hashlib.sha256(data).hexdigest())])
    with pytest.raises(InvalidArgument, match="label"):
        gateway.client.add_testset(spec, [path])
    with pytest.raises(NotFound):
        gateway.client.get_testset("bad-labels")
    assert not gateway.store.list("staging/")


def test_missing_shard_upload(gateway, tmp_path):
    p = prepared(tmp_path, 200)
    upload = gateway.client.create_upload("half", 2)
    httpx.put(upload.shards[0].url, content=p.shards[0].path.read_bytes()).raise_for_status()
    with pytest.raises(FailedPrecondition, match="shard 1 was not uploaded"):
        gateway.client.register_testset(upload.upload_id, spec_of("half", p))
    assert not gateway.store.list("staging/")
    with pytest.raises(FailedPrecondition, match="unknown or expired"):
        gateway.client.register_testset(upload.upload_id, spec_of("half", p))


def test_shift_registers_against_reference(gateway, tmp_path):
    ref = prepared(tmp_path, 100)
    gateway.client.add_testset(spec_of("digits-ref", ref), [s.path for s in ref.shards])
    shifted = gateway.client.add_testset(
        spec_of("digits-shift", ref, kind=pb.TEST_SET_KIND_SYNTHETIC, reference="digits-ref"),
        [s.path for s in ref.shards])
    assert shifted.spec.reference == "digits-ref"
    with pytest.raises(AlreadyExists):
        gateway.client.create_upload("digits-ref", 1)


def test_get_samples(gateway, tmp_path):
    p = prepared(tmp_path, 300)
    gateway.client.add_testset(spec_of("samples-set", p), [s.path for s in p.shards])
    reply = gateway.client.samples("samples-set", [299, 0, 130])
    images, labels = helpers.digits(300)
    assert [s.sample for s in reply.samples] == [299, 0, 130]
    for s in reply.samples:
        got = np.frombuffer(s.image, dtype=np.uint8).reshape(reply.channels, reply.height, reply.width)
        np.testing.assert_array_equal(got[0], images[s.sample])
        assert s.label == labels[s.sample]
    with pytest.raises(InvalidArgument, match="samples 0..299"):
        gateway.client.samples("samples-set", [300])
