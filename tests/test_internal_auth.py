"""The stack's internal services refuse anonymous callers: Triton, Prefect and SeaweedFS, real servers.

Each server runs from the stack's own service spec on free ports with its state in a temporary
directory; each refusal is checked next to the same call made with the stack's credentials, so a
test fails when the refusal comes from anything but the missing credential. Nothing is mocked.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import psutil
import pytest
import tritonclient.grpc as triton_grpc
from minio import Minio
from tritonclient.utils import InferenceServerException

from shiftboard import credentials
from shiftboard.adapters.triton.client import TritonAuth, connect, translate
from shiftboard.domain.errors import PermissionDenied
from shiftboard.services.stack.objectstore_server import object_store_kind, object_store_ports
from shiftboard.services.stack.prefect_server import prefect_spec
from shiftboard.services.stack.spec import port_is_free
from shiftboard.services.stack.triton import triton_spec
from shiftboard.settings import Settings
from tests.helpers import free_settings, start_service

pytestmark = pytest.mark.stack

# A model.py that would leave a file behind if Triton ran it.
EVIL_MODEL_PY = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\n"
EVIL_CONFIG = json.dumps({"backend": "python", "max_batch_size": 0,
                          "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [1]}],
                          "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": [1]}]})


# ------------------------------------------------------------------------------------ Triton


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, int]]:
    """A tritonserver from the stack's spec, started with secrets in its parent's environment."""
    state = tmp_path_factory.mktemp("triton-auth")
    settings = free_settings(state)
    parent_env = {**os.environ, **settings.replace(admin_token="sbt_admin-secret", s3_secret_key="s3-secret",
                                                   prefect_auth_string="prefect-secret").as_env(),
                  "PREFECT_API_AUTH_STRING": "prefect-secret", "AWS_SECRET_ACCESS_KEY": "aws-secret"}
    with start_service(triton_spec(settings, parent_env), state / "triton.log") as triton_server:
        yield settings, triton_server.pid


def _refusal(call: Any) -> str:
    with pytest.raises(InferenceServerException) as err:
        call()
    return str(err.value.message())


def _index(client: triton_grpc.InferenceServerClient) -> set[str]:
    return {m.name for m in client.get_model_repository_index(client_timeout=30).models}


def test_triton_refuses_a_model_py_override_without_the_key(triton, tmp_path):
    settings, _ = triton
    auth = TritonAuth.from_settings(settings)
    assert auth.key and auth.tls is not None
    files = {"file:1/model.py": EVIL_MODEL_PY.format(marker=str(tmp_path / "ran")).encode()}

    anonymous = triton_grpc.InferenceServerClient(settings.triton_target)  # no certificate, no key
    with_certificate_only = connect(settings.triton_target, TritonAuth(key=None, tls=auth.tls))
    wrong_key = connect(settings.triton_target, TritonAuth(key="not-the-key", tls=auth.tls))
    keyed = connect(settings.triton_target, auth)
    try:
        assert "failed to connect" in _refusal(lambda: anonymous.load_model(
            "evil", config=EVIL_CONFIG, files=files, client_timeout=20))
        assert "failed to connect" in _refusal(lambda: anonymous.get_model_repository_index(client_timeout=5))
        for client in (with_certificate_only, wrong_key):
            assert "protocol is restricted" in _refusal(lambda c=client: c.load_model(
                "evil", config=EVIL_CONFIG, files=files, client_timeout=20))
        assert "evil" not in _index(keyed), "Triton took a model sent without the key"

        # The same request with the key and the certificate reaches the model repository: the refusals
        # above were the key's doing. (The file is no Triton model: its load fails, or is still going.)
        with pytest.raises(InferenceServerException) as err:
            keyed.load_model("evil", config=EVIL_CONFIG, files=files, client_timeout=60)
        loading = "DEADLINE_EXCEEDED" in str(err.value.status())  # a stub that is still starting
        assert loading or "load failed for model 'evil'" in str(err.value.message()), err.value
    finally:
        for client in (anonymous, with_certificate_only, wrong_key, keyed):
            client.close()


def test_triton_refuses_index_config_inference_and_health_without_the_key(triton):
    settings, _ = triton
    auth = TritonAuth.from_settings(settings)
    images = triton_grpc.InferInput("x", [1], "FP32")
    images.set_data_from_numpy(np.zeros(1, dtype=np.float32))
    calls = {
        "index": lambda c: c.get_model_repository_index(client_timeout=5),
        "config": lambda c: c.get_model_config("evil", client_timeout=5),
        "metadata": lambda c: c.get_server_metadata(client_timeout=5),
        "statistics": lambda c: c.get_inference_statistics(client_timeout=5),
        "health": lambda c: c.is_server_ready(client_timeout=5),
        "inference": lambda c: c.infer("evil", [images], client_timeout=5),
        "unload": lambda c: c.unload_model("evil", client_timeout=5),
        "log settings": lambda c: c.update_log_settings({"log_verbose_level": 1}, client_timeout=5),
    }
    no_key = connect(settings.triton_target, TritonAuth(key=None, tls=auth.tls))
    keyed = connect(settings.triton_target, auth)
    try:
        for what, call in calls.items():
            assert "protocol is restricted" in _refusal(lambda c=call: c(no_key)), what
        assert keyed.is_server_live(client_timeout=5)
        assert isinstance(keyed.get_model_repository_index(as_json=True, client_timeout=5), dict)
        assert keyed.get_server_metadata(as_json=True, client_timeout=5)["name"] == "triton"
    finally:
        no_key.close()
        keyed.close()


def test_a_wrong_key_is_a_clear_permanent_error(triton):
    settings, _ = triton
    auth = TritonAuth.from_settings(settings)
    client = connect(settings.triton_target, TritonAuth(key="not-the-key", tls=auth.tls))
    try:
        with pytest.raises(InferenceServerException) as err:
            client.get_model_repository_index(client_timeout=5)
    finally:
        client.close()
    error = translate(err.value, what="read the repository index", url=settings.triton_target)
    assert isinstance(error, PermissionDenied) and "SHIFTBOARD_TRITON_API_KEY" in error.message
    assert auth.key is not None and auth.key not in error.message and "not-the-key" not in error.message


def test_triton_listens_on_grpc_only(triton):
    settings, _ = triton
    assert not port_is_free(settings.host, settings.triton_grpc_port)
    assert port_is_free(settings.host, settings.triton_http_port), "Triton's HTTP API listens"
    assert port_is_free(settings.host, settings.triton_metrics_port), "Triton's metrics listen"
    assert [c.what for c in triton_spec(settings, {}).ports] == ["Triton gRPC"]


def test_triton_and_its_models_get_no_secret_in_their_environment(triton):
    settings, pid = triton
    env = psutil.Process(pid).environ()
    assert env.get("LD_LIBRARY_PATH")  # it is the server's environment
    leaked = sorted(k for k in env if k.startswith(("SHIFTBOARD_", "PREFECT_", "AWS_")))
    assert leaked == []
    text = "\0".join(env.values())
    for secret in ("sbt_admin-secret", "s3-secret", "prefect-secret", "aws-secret"):
        assert secret not in text


def test_triton_secrets_are_private_files(triton):
    settings, _ = triton
    tls = credentials.stack_tls(settings)
    assert tls is not None
    for path in (credentials.triton_key_file(settings), tls.ca, tls.cert, tls.key):
        assert path.stat().st_mode & 0o777 == 0o600, path
    for folder in (settings.secrets_dir, credentials.tls_dir(settings)):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


# ------------------------------------------------------------------------------------ Prefect


@pytest.fixture(scope="module")
def prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The stack's Prefect server on a free port: (API URL, auth string)."""
    state = tmp_path_factory.mktemp("prefect-auth")
    settings = free_settings(state)
    with start_service(prefect_spec(settings, dict(os.environ)), state / "prefect.log", timeout_s=120):
        auth = credentials.prefect_auth_string(settings)
        assert auth
        yield settings.prefect_api, auth


def _call(method: str, url: str, body: Any = None, auth: str | None = None) -> tuple[int, Any]:
    """One API call; a 503 (Prefect's SQLite busy on a loaded machine) is tried again a few times."""
    for _ in range(5):
        status, answer = _call_once(method, url, body, auth)
        if status != 503:
            break
        time.sleep(2)
    return status, answer


def _call_once(method: str, url: str, body: Any, auth: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (test server)
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def test_prefect_refuses_anonymous_reads_updates_and_runs(prefect):
    api, auth = prefect
    status, flow = _call("POST", f"{api}/flows/", {"name": "evaluate"}, auth)
    assert status in (200, 201), flow
    status, deployment = _call("POST", f"{api}/deployments/", {
        "name": "shiftboard", "flow_id": flow["id"], "entrypoint": "shiftboard.flows.evaluate:evaluate"}, auth)
    assert status in (200, 201), deployment
    url = f"{api}/deployments/{deployment['id']}"

    for who in (None, "not-the-auth-string"):
        assert _call("POST", f"{api}/deployments/filter", {}, who)[0] == 401
        assert _call("GET", url, auth=who)[0] == 401
        assert _call("PATCH", url, {"entrypoint": "evil.py:run"}, who)[0] == 401
        assert _call("POST", f"{url}/create_flow_run", {}, who)[0] == 401
        assert _call("POST", f"{api}/flow_runs/filter", {}, who)[0] == 401

    status, found = _call("GET", url, auth=auth)
    assert status == 200 and found["entrypoint"] == "shiftboard.flows.evaluate:evaluate"
    status, runs = _call("POST", f"{api}/flow_runs/filter", {}, auth)
    assert status == 200 and runs == []
    # with the auth string the same calls work
    assert _call("PATCH", url, {"description": "checked"}, auth)[0] == 204
    status, run = _call("POST", f"{url}/create_flow_run", {}, auth)
    assert status in (200, 201) and run["deployment_id"] == deployment["id"]


def test_prefect_health_stays_open_for_probes(prefect):
    api, _ = prefect
    assert _call("GET", f"{api}/health") == (200, True)


def test_the_stack_probe_sends_the_auth_string(prefect):
    from shiftboard.services.stack.health import prefect_deployment_probe

    api, auth = prefect
    assert prefect_deployment_probe(api, "nothing/here", auth_string=auth) == "deployment not registered yet"
    assert prefect_deployment_probe(api, "nothing/here") == "Prefect refused the auth string"


# ------------------------------------------------------------------------------------ SeaweedFS


@pytest.fixture(scope="module")
def seaweedfs(object_store: Settings) -> dict[str, int]:
    """The session object store's ports by what they are (SeaweedFS only)."""
    embedded = object_store.replace(object_store=os.environ.get("SHIFTBOARD_TEST_OBJECT_STORE", "auto"))
    if object_store_kind(embedded) != "seaweedfs":
        pytest.skip("the object store under test is not SeaweedFS (MinIO has no filer or master)")
    return {c.what: c.port for c in object_store_ports(embedded)}


@pytest.fixture(scope="module")
def stored(object_store: Settings, seaweedfs: dict[str, int]) -> tuple[Minio, str, str]:
    """An object written through the S3 API with the stack's keys: (client, bucket, key)."""
    creds = credentials.s3_credentials(object_store)
    assert creds is not None
    s3 = Minio(object_store.s3_target, access_key=creds.access_key, secret_key=creds.secret_key, secure=False)
    bucket, key = "internal-auth", "models/m/1/model.pt"
    if not s3.bucket_exists(bucket):
        s3.make_bucket(bucket)
    s3.put_object(bucket, key, io.BytesIO(b"the real model"), 14)
    return s3, bucket, key


def _http(method: str, url: str, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (test server)
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_filer_http_refuses_anonymous_list_read_and_write(object_store, seaweedfs, stored):
    s3, bucket, key = stored
    filer = f"http://{object_store.host}:{seaweedfs['SeaweedFS filer']}"
    for method, path, data in (("GET", f"/buckets/{bucket}/", None), ("GET", f"/buckets/{bucket}/models/m/1/", None),
                               ("GET", f"/buckets/{bucket}/{key}", None), ("GET", "/", None),
                               ("PUT", f"/buckets/{bucket}/{key}", b"swapped"),
                               ("POST", f"/buckets/{bucket}/models/", b"swapped"),
                               ("DELETE", f"/buckets/{bucket}/{key}", None)):
        status, body = _http(method, filer + path, data)
        assert status >= 400, (method, path, status)
        assert b"the real model" not in body and b"model.pt" not in body
    assert s3.get_object(bucket, key).read() == b"the real model"


def test_master_http_admin_endpoints_are_off(object_store, seaweedfs, stored):
    s3, bucket, key = stored
    master = f"http://{object_store.host}:{seaweedfs['SeaweedFS master']}"
    for path in ("/dir/assign", "/dir/lookup?volumeId=1", "/dir/status", "/vol/status", "/vol/grow?count=1",
                 f"/col/delete?collection={bucket}", "/vol/vacuum", "/submit"):
        status, body = _http("GET", master + path)
        assert status == 404, (path, status, body[:100])
    assert s3.get_object(bucket, key).read() == b"the real model"  # the bucket's volumes are still there


def test_volume_http_refuses_reads_and_writes_without_a_jwt(object_store, seaweedfs):
    volume = f"http://{object_store.host}:{seaweedfs['SeaweedFS volume']}"
    for method, data in (("GET", None), ("POST", b"x"), ("DELETE", None)):
        assert _http(method, f"{volume}/1,0123456789", data)[0] == 401, method


def test_what_stays_open_on_seaweedfs_http_is_status_without_object_names(object_store, seaweedfs, stored):
    """Documents what answers anonymously: the master's UI and cluster status and the volume server's
    status (topology, disk use, volume ids and sizes): no object names, keys or contents."""
    _, bucket, key = stored
    host = object_store.host
    for url in (f"http://{host}:{seaweedfs['SeaweedFS master']}/cluster/status",
                f"http://{host}:{seaweedfs['SeaweedFS master']}/",
                f"http://{host}:{seaweedfs['SeaweedFS volume']}/status"):
        status, body = _http("GET", url)
        assert status == 200, url
        assert key.encode() not in body and b"the real model" not in body


GRPC_CALLS = {"SeaweedFS master gRPC": "/master_pb.Seaweed/GetMasterConfiguration",
              "SeaweedFS volume gRPC": "/volume_server_pb.VolumeServer/VolumeServerStatus",
              "SeaweedFS filer gRPC": "/filer_pb.SeaweedFiler/GetFilerConfiguration"}


def test_seaweedfs_grpc_refuses_callers_without_the_stack_certificate(object_store, seaweedfs):
    tls = credentials.stack_tls(object_store)
    assert tls is not None
    ca, cert, key = tls.ca.read_bytes(), tls.cert.read_bytes(), tls.key.read_bytes()
    name = [("grpc.ssl_target_name_override", credentials.TLS_SERVER_NAME)]
    for what, method in GRPC_CALLS.items():
        target = f"{object_store.host}:{seaweedfs[what]}"
        for channel in (grpc.insecure_channel(target),
                        grpc.secure_channel(target, grpc.ssl_channel_credentials(ca), options=name)):
            with channel, pytest.raises(grpc.RpcError) as err:
                channel.unary_unary(method)(b"", timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, what
        trusted = grpc.secure_channel(target, grpc.ssl_channel_credentials(ca, key, cert), options=name)
        with trusted:
            assert trusted.unary_unary(method)(b"", timeout=5) is not None, what
    s3_grpc = f"{object_store.host}:{seaweedfs['SeaweedFS S3 gRPC']}"
    with grpc.insecure_channel(s3_grpc) as channel, pytest.raises(grpc.RpcError) as err:
        channel.unary_unary("/s3_pb.SeaweedS3/Configure")(b"", timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_seaweedfs_secrets_are_private(object_store, seaweedfs):
    from shiftboard.services.stack.objectstore_server import seaweedfs_config_dir

    folder = seaweedfs_config_dir(object_store)
    assert folder.stat().st_mode & 0o777 == 0o700
    toml = folder / "security.toml"
    assert toml.stat().st_mode & 0o777 == 0o600
    keys = credentials.seaweedfs_jwt_keys(object_store)
    assert keys is not None and all(f'key = "{k}"' in toml.read_text() for k in keys.values())
    assert credentials.seaweedfs_jwt_file(object_store).stat().st_mode & 0o777 == 0o600
