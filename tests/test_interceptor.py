"""The gateway's edge: the policy table, the interceptor and the composed service.

The standalone servers here are real gRPC servers with the gateway's interceptor and a real catalog
(DuckDB in ``tmp_path``) behind the token checks; only the concern objects are the test's own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent import futures
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from shiftboard.adapters.duckdb.catalog import Catalog
from shiftboard.client import Client
from shiftboard.domain import manifests
from shiftboard.domain.errors import Code, NotFound, PermissionDenied, ShiftboardError, Unauthenticated, error_class
from shiftboard.services.gateway.auth import SUBMITTER, Authenticator
from shiftboard.services.gateway.interceptor import (
    POLICIES,
    SERVICE,
    GatewayInterceptor,
    Policy,
    check_policies,
    current_caller,
)
from shiftboard.services.gateway.limits import StreamLimiter
from shiftboard.services.gateway.servicer import generic_handler
from shiftboard.testsets import INTERPOLATIONS
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.v1 import shiftboard_pb2_grpc as pb_grpc
from shiftboard.wire import vocab
from shiftboard.wire.status import from_status, grpc_code

SECRET = "the text of an unexpected error: /etc/shadow"


def test_the_policy_table_covers_every_method_of_the_service():
    methods = {m.name: m for m in SERVICE.methods}
    assert set(POLICIES) == set(methods)
    for name, method in methods.items():
        assert POLICIES[name].stream_slot == method.server_streaming, name
    check_policies()
    with pytest.raises(RuntimeError, match="no policy for \\['GetModel'\\]"):
        check_policies({k: v for k, v in POLICIES.items() if k != "GetModel"})
    with pytest.raises(RuntimeError, match="stream_slot"):
        check_policies({**POLICIES, "GetOverview": Policy(mutating=False)})
    # Every state-changing method needs a token; every read is open (when reads are).
    assert {n for n, p in POLICIES.items() if p.mutating} == {
        "SubmitModel", "DeleteModel", "CreateTestSetUpload", "RegisterTestSet", "AbortTestSetUpload",
        "DeleteTestSet", "RequestEvaluations",
        "StartEvaluation", "CommitShard", "CommitShards", "FinishEvaluation", "ImportResults", "CreateToken",
        "ListTokens", "RevokeToken"}


def test_every_code_maps_to_its_status_and_back():
    for code in Code:
        status = grpc_code(code)
        assert status.name == code.name
        error = from_status(status, "m")
        assert type(error) is error_class(code) and error.code is code and error.message == "m"
    assert from_status(grpc.StatusCode.DEADLINE_EXCEEDED, "").code is Code.UNAVAILABLE
    assert from_status(grpc.StatusCode.DATA_LOSS, "x").code is Code.INTERNAL
    assert vocab.status_word(vocab.status_value("succeeded")) == vocab.SUCCEEDED


def test_the_domain_names_the_interpolations_ingestion_implements():
    assert tuple(INTERPOLATIONS) == manifests.INTERPOLATIONS


def test_an_unauthenticated_mutating_call_is_refused_before_its_handler(gateway):
    anonymous = Client(gateway.target)
    try:
        with pytest.raises(Unauthenticated, match="needs an API token"):
            anonymous.create_token("never-made")
        with pytest.raises(Unauthenticated, match="needs an API token"):
            anonymous.revoke_token("evaluator")  # the handler would refuse with FAILED_PRECONDITION
        with pytest.raises(NotFound):
            anonymous.get_model("no-such-model")  # reads are open: the handler ran
    finally:
        anonymous.close()
    assert "never-made" not in {t.name for t in gateway.client.list_tokens()}
    channel = grpc.insecure_channel(gateway.target)
    try:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.ShiftboardStub(channel).CreateToken(pb.CreateTokenRequest(name="raw"), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        channel.close()


class _Concerns:
    """Handlers that record their caller, raise an application error, or fail unexpectedly."""

    def __init__(self) -> None:
        self.callers: list[str | None] = []

    def GetServerInfo(self, request: pb.GetServerInfoRequest, context: grpc.ServicerContext) -> pb.ServerInfo:
        caller = current_caller()
        self.callers.append(caller.name if caller is not None else None)
        return pb.ServerInfo(version="test")

    def GetModel(self, request: pb.GetModelRequest, context: grpc.ServicerContext) -> pb.Model:
        raise RuntimeError(SECRET)

    def ListModels(self, request: pb.ListModelsRequest, context: grpc.ServicerContext) -> pb.ListModelsResponse:
        raise PermissionDenied("an application error keeps its code and message")

    def GetOverview(self, request: pb.GetOverviewRequest, context: grpc.ServicerContext) -> Iterator[pb.Leaderboard]:
        yield pb.Leaderboard(shift="first")
        raise RuntimeError(SECRET)


def _everything_else() -> object:
    """A concern for the methods the test does not call (the service needs each one implemented)."""
    mine = {"GetServerInfo", "GetModel", "ListModels", "GetOverview"}

    def unused(request: object, context: grpc.ServicerContext) -> None:
        raise AssertionError("not called")

    rest = type("Rest", (), {})()
    for method in SERVICE.methods:
        if method.name not in mine:
            setattr(rest, method.name, unused)
    return rest


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[tuple[str, _Concerns, str]]:
    catalog = Catalog(tmp_path / "catalog.duckdb")
    auth = Authenticator(catalog, b"k" * 32)
    token = "sbt_interceptor-test"
    auth.register("alice", token, role=SUBMITTER)
    concerns = _Concerns()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[
        GatewayInterceptor(auth, StreamLimiter(4, 2), open_reads=True)])
    server.add_generic_rpc_handlers((generic_handler([concerns, _everything_else()]),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", concerns, token
    finally:
        server.stop(None).wait()
        catalog.close()


def test_unexpected_errors_become_internal_without_their_text(edge, caplog):
    target, concerns, token = edge
    with Client(target, token) as client, caplog.at_level(logging.ERROR):
        with pytest.raises(ShiftboardError) as info:
            client.get_model("m")
        assert info.value.code is Code.INTERNAL and SECRET not in info.value.message
        assert "internal error in the gateway during GetModel" in info.value.message
        with pytest.raises(ShiftboardError) as info:
            client.overview()  # raised while streaming, after a first message
        assert info.value.code is Code.INTERNAL and SECRET not in info.value.message
        with pytest.raises(PermissionDenied, match="keeps its code and message"):
            client.list_models()
    assert any(SECRET in r.getMessage() or (r.exc_info and SECRET in str(r.exc_info[1])) for r in caplog.records)


def test_the_handler_sees_the_caller_of_its_own_call(edge):
    target, concerns, token = edge
    with Client(target, token) as alice, Client(target) as anonymous, Client(target, "sbt_wrong") as wrong:
        assert alice.server_info().version == "test"
        assert anonymous.server_info().version == "test"  # an open read: anonymous
        assert alice.server_info().version == "test"
        assert wrong.server_info().version == "test"  # an invalid token on an open read: anonymous
    assert concerns.callers == ["alice", None, "alice", None]


def test_each_method_must_be_implemented_exactly_once():
    rest = _everything_else()
    with pytest.raises(RuntimeError, match="GetServerInfo is implemented by 0 concerns"):
        generic_handler([rest])
    with pytest.raises(RuntimeError, match="GetModel is implemented by 2 concerns"):
        generic_handler([_Concerns(), _Concerns(), rest])


def test_manifest_rules_work_on_plain_data():
    model = manifests.ModelManifest(name="m", version="1", format="torchscript", category="standard",
                                    num_classes=10, input=manifests.InputSpec(channels=3, height=8, width=8))
    checked = manifests.validate_model(model)
    assert checked.input.value_max == 1.0 and checked.input.mean == (0.0,) * 3 and checked.input.std == (1.0,) * 3
    for word in ("onnx", "torch-export"):
        assert manifests.validate_model(replace(model, format=word)).format == word
    with pytest.raises(ShiftboardError, match="format is not set: use onnx, torch-export or torchscript") as info:
        manifests.validate_model(replace(model, format=""))
    assert info.value.code is Code.INVALID_ARGUMENT
    shard = manifests.ShardEntry(index=0, first_sample=0, num_samples=5)
    shift = manifests.TestSetManifest(name="s", kind="natural", reference="r", num_classes=3, channels=1,
                                      height=8, width=8, num_samples=5, shards=(shard,))

    def lookup(name: str) -> manifests.ReferenceInfo:
        if name != "r":
            raise NotFound(name)
        return manifests.ReferenceInfo("reference", 3)

    assert manifests.validate_testset(shift, lookup, reserved_shards=1).reference == "r"
    with pytest.raises(NotFound, match="reference test set 'q' does not exist"):
        manifests.validate_testset(replace(shift, reference="q"), lookup, reserved_shards=1)
    with pytest.raises(ShiftboardError, match="share one label space"):
        manifests.validate_testset(replace(shift, num_classes=4), lookup, reserved_shards=1)
    reference = replace(shift, name="r", kind="reference", reference="r")
    assert manifests.validate_testset(reference, lookup, reserved_shards=1).reference == ""
