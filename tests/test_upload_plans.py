"""Upload plans of any size, against a real gateway and object store.

A test set's plan is one presigned URL per shard, and its manifest one entry per shard: with up to
``MAX_SHARDS`` shards neither fits one gRPC message. CreateTestSetUpload answers in pages, each under
``UPLOAD_PAGE_BYTES`` (below gRPC's default 4 MiB receive limit), RegisterTestSet takes the manifest
over a client stream, and a registered test set of ``MAX_SHARDS`` shards fits the gateway's replies.
"""

from __future__ import annotations

import hashlib

import grpc
import httpx
import numpy as np
import pytest

from shiftboard import credentials
from shiftboard import testsets as ts
from shiftboard.client import REGISTER_MESSAGE_BYTES, Client, register_requests
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument
from shiftboard.domain.manifests import MAX_SHARDS
from shiftboard.services.gateway.server import MAX_MESSAGE_BYTES, MAX_REPLY_BYTES
from shiftboard.services.gateway.testset_rpcs import UPLOAD_PAGE_BYTES
from shiftboard.uploads import upload_testset
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.v1 import shiftboard_pb2_grpc as pb_grpc
from tests import helpers

DEFAULT_GRPC_RECEIVE = 4 * 1024 * 1024  # what a client receives unless it says otherwise


def test_a_plan_of_max_shards_comes_in_pages_under_the_limit(gateway):
    pages = list(gateway.client.upload_pages("plan-max", MAX_SHARDS))
    assert len(pages) > 1
    assert len({p.upload_id for p in pages}) == 1 and all(p.num_shards == MAX_SHARDS for p in pages)
    indices = [s.index for p in pages for s in p.shards]
    assert indices == list(range(MAX_SHARDS))
    for page, following in zip(pages, pages[1:], strict=False):
        assert page.next_shard == following.shards[0].index
    assert pages[-1].next_shard == 0
    assert max(p.ByteSize() for p in pages) <= UPLOAD_PAGE_BYTES < DEFAULT_GRPC_RECEIVE
    urls = [s.url for p in pages for s in p.shards]
    assert len(set(urls)) == MAX_SHARDS and f"shard-{MAX_SHARDS - 1:05d}" in urls[-1]


def test_a_client_with_grpc_defaults_gets_a_page(gateway):
    """An older client (no page fields, 4 MiB receive limit) gets the first page and where the next starts."""
    token = gateway.client.create_token("plans-raw").token
    with grpc.insecure_channel(gateway.target) as channel:
        reply = pb_grpc.ShiftboardStub(channel).CreateTestSetUpload(
            pb.CreateTestSetUploadRequest(name="plan-raw", num_shards=50_000),
            metadata=(("authorization", f"Bearer {token}"),), timeout=120)
    assert 0 < len(reply.shards) == reply.next_shard < 50_000
    small = gateway.client.create_upload("plan-small", 3)  # a plan of one page, as before
    assert [s.index for s in small.shards] == [0, 1, 2] and small.next_shard == 0


def test_page_requests_are_checked(gateway):
    client = gateway.client
    first = next(client.upload_pages("plan-checked", 100, max_shards=10))
    assert [s.index for s in first.shards] == list(range(10)) and first.next_shard == 10

    def page(**fields) -> pb.TestSetUpload:
        return client._upload_page(pb.CreateTestSetUploadRequest(**fields))

    last = page(upload_id=first.upload_id, first_shard=95, max_shards=10)
    assert [s.index for s in last.shards] == list(range(95, 100)) and last.next_shard == 0
    with pytest.raises(InvalidArgument, match="first_shard is 100: upload .* has shards 0..99"):
        page(upload_id=first.upload_id, first_shard=100)
    with pytest.raises(InvalidArgument, match="made for test set 'plan-checked', not 'other'"):
        page(upload_id=first.upload_id, name="other", first_shard=10)
    with pytest.raises(InvalidArgument, match="has 100 shards, not 7"):
        page(upload_id=first.upload_id, num_shards=7, first_shard=10)
    with pytest.raises(InvalidArgument, match="first_shard needs the upload_id"):
        page(name="plan-checked-2", num_shards=10, first_shard=3)
    with pytest.raises(FailedPrecondition, match="unknown or expired"):
        page(upload_id="0" * 32, first_shard=1)
    with Client(gateway.target, client.create_token("plans-other").token) as other, \
            pytest.raises(FailedPrecondition, match="started with another token"):
        other._upload_page(pb.CreateTestSetUploadRequest(upload_id=first.upload_id, first_shard=10))


def test_25000_one_sample_shards_end_to_end(gateway, tmp_path):
    n = 25_000
    images, labels = helpers.digits()
    take = np.arange(n) % len(labels)
    np.savez(tmp_path / "big.npz", images=images[take], labels=labels[take])
    prepared, testset = upload_testset(gateway.client, tmp_path / "big.npz", name="plan-25k",
                                       kind=pb.TEST_SET_KIND_REFERENCE, shard_samples=1)
    assert len(prepared.shards) == n and len(testset.spec.shards) == n and testset.spec.num_samples == n
    assert testset.ByteSize() <= MAX_REPLY_BYTES
    stored = gateway.client.get_testset("plan-25k")
    assert [s.index for s in stored.spec.shards] == list(range(n))
    wanted = [0, 12_345, n - 1]
    got = gateway.client.samples("plan-25k", wanted)
    for sample, i in zip(got.samples, wanted, strict=True):
        assert sample.label == labels[take[i]]
        assert sample.image == images[take[i]].tobytes()
    last = stored.spec.shards[-1]
    assert hashlib.sha256(gateway.store.get_bytes(last.key)).hexdigest() == prepared.shards[-1].sha256
    assert not gateway.store.list("staging/")
    # More than one page and more than one manifest message were needed, each under the limits.
    spec = pb.TestSetSpec()
    spec.CopyFrom(stored.spec)
    for s in spec.shards:
        s.ClearField("key")
    messages = list(register_requests("0" * 32, spec))
    assert max(m.ByteSize() for m in messages) <= REGISTER_MESSAGE_BYTES + 1024
    assert sum(len(m.shards) for m in messages) == n and not messages[0].spec.shards
    small = list(register_requests("0" * 32, spec, message_bytes=64 * 1024))
    assert len(small) > 10 and [s.index for m in small for s in m.shards] == list(range(n))


def test_register_takes_a_manifest_of_max_shards(gateway):
    """MAX_SHARDS entries reach the gateway over the stream (more than one message holds), and are
    checked: the first shard was never uploaded, so nothing is registered."""
    upload = next(gateway.client.upload_pages("plan-max-register", MAX_SHARDS, max_shards=1))
    spec = pb.TestSetSpec(
        name="plan-max-register", kind=pb.TEST_SET_KIND_REFERENCE, num_classes=10, channels=1, height=8,
        width=8, num_samples=MAX_SHARDS,
        shards=[pb.Shard(index=i, first_sample=i, num_samples=1, size_bytes=1000, sha256="ab" * 32)
                for i in range(MAX_SHARDS)])
    assert pb.RegisterTestSetRequest(upload_id=upload.upload_id, spec=spec).ByteSize() > MAX_MESSAGE_BYTES / 2
    with pytest.raises(FailedPrecondition, match="shard 0 was not uploaded"):
        gateway.client.register_testset(upload.upload_id, spec)
    assert not [t for t in gateway.client.list_testsets() if t.spec.name == "plan-max-register"]
    # One shard too many is refused by name, before anything is checked.
    spec.shards.add(index=MAX_SHARDS, first_sample=MAX_SHARDS, num_samples=1, size_bytes=1000, sha256="ab" * 32)
    with pytest.raises(InvalidArgument, match=f"more than {MAX_SHARDS} shards"):
        gateway.client.register_testset(upload.upload_id, spec)


def test_a_registered_test_set_of_max_shards_fits_a_reply():
    """The reply of RegisterTestSet and GetTestSet for the largest test set, with the largest numbers
    and names, stays under the gateway's send limit (and the client's 64 MiB receive limit)."""
    name = "n" * 64
    spec = pb.TestSetSpec(name=name, num_samples=2**40, shards=[
        pb.Shard(index=i, first_sample=2**40, num_samples=2**32, size_bytes=2**40, sha256="ab" * 32,
                 key=f"testsets/{name}/{'0' * 32}/shard-{i:05d}.npz") for i in range(MAX_SHARDS)])
    assert pb.TestSet(spec=spec, created_by=name).ByteSize() < MAX_REPLY_BYTES


def test_an_older_unary_register_still_works(gateway, tmp_path):
    """RegisterTestSet became a client stream; a single message sent as a unary call, as older clients
    do, is still a complete request (the wire is the same)."""
    out = tmp_path / "shards"
    out.mkdir()
    p = ts.prepare_testset(helpers.digits_npz(tmp_path / "d.npz", 200), out_dir=out, shard_samples=100)
    spec = pb.TestSetSpec(name="plan-unary", kind=pb.TEST_SET_KIND_REFERENCE, num_classes=p.num_classes,
                          channels=p.channels, height=p.height, width=p.width, num_samples=p.num_samples,
                          shards=[pb.Shard(index=s.index, first_sample=s.first_sample, num_samples=s.num_samples,
                                           size_bytes=s.size_bytes, sha256=s.sha256) for s in p.shards])
    upload = gateway.client.create_upload("plan-unary", len(p.shards))
    for slot, shard in zip(upload.shards, p.shards, strict=True):
        assert httpx.put(slot.url, content=shard.path.read_bytes()).status_code == 200
    token = credentials.admin_token(gateway.settings)
    with grpc.insecure_channel(gateway.target) as channel:
        unary = channel.unary_unary("/shiftboard.v1.Shiftboard/RegisterTestSet",
                                    request_serializer=pb.RegisterTestSetRequest.SerializeToString,
                                    response_deserializer=pb.TestSet.FromString)
        testset = unary(pb.RegisterTestSetRequest(upload_id=upload.upload_id, spec=spec),
                        metadata=(("authorization", f"Bearer {token}"),), timeout=120)
    assert testset.spec.num_samples == 200 and all(s.key for s in testset.spec.shards)
    assert gateway.client.get_testset("plan-unary").spec.num_samples == 200
