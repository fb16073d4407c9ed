"""The embedded stack with real servers: SeaweedFS (or MinIO), tritonserver, Prefect, gateway, leaderboard.

These tests kill a service and stop the stack, so they run against a stack of their own (``own_stack``:
free ports, state in a temporary directory), never the session's ``running_stack`` that other modules
share; a test that finds it stopped starts it again, so any order works. Nothing is mocked. The first
tests need no servers (ports, commands, model-repository layout).
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from minio import Minio
from minio.error import S3Error

from shiftboard import credentials
from shiftboard.adapters.triton.client import TritonAuth, connect
from shiftboard.adapters.triton.repository import write_python_backend_model
from shiftboard.adapters.triton.server import prepare_backends, triton_command, triton_env
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument, Unavailable
from shiftboard.domain.manifests import InputSpec
from shiftboard.services.stack import control, runfile
from shiftboard.services.stack.objectstore_server import object_store_ports
from shiftboard.services.stack.specs import SERVICE_NAMES
from shiftboard.settings import Settings
from tests.helpers import free_port, free_settings
from tests.stack_fixtures import RunningStack, started_stack, up


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """This module's own whole stack, stopped when the module ends."""
    with started_stack(tmp_path_factory.mktemp("own-stack") / "state") as stack:
        yield stack


@pytest.fixture
def own_stack(module_stack: RunningStack) -> RunningStack:
    """The module's stack, running: started again when a test before this one stopped it."""
    if runfile.running_supervisor(module_stack.settings) is None:
        again = up(module_stack.settings)
        module_stack.result, module_stack.progress = again.result, again.progress
    return module_stack


# --------------------------------------------------------------------------- no servers needed


def test_port_in_use_is_refused_naming_the_setting(tmp_path: Path) -> None:
    settings = free_settings(tmp_path / "state")
    with socket.socket() as holder:
        holder.bind((settings.host, settings.triton_grpc_port))
        holder.listen()
        with pytest.raises(FailedPrecondition) as err:
            control.up(settings)
    port = settings.triton_grpc_port
    assert err.value.message == (f"port {port} is in use (SHIFTBOARD_TRITON_GRPC_PORT): stop what holds it "
                                 f"or set SHIFTBOARD_TRITON_GRPC_PORT to a free port")
    assert not runfile.run_file(settings).exists()  # nothing was started
    assert not credentials.s3_credentials_file(settings).exists()


def test_derived_seaweedfs_port_in_use_names_its_setting(tmp_path: Path) -> None:
    settings = free_settings(tmp_path / "state", object_store="seaweedfs")
    with socket.socket() as holder:
        holder.bind((settings.host, settings.s3_port + 10000))
        holder.listen()
        with pytest.raises(FailedPrecondition, match=r"SeaweedFS S3 gRPC, SHIFTBOARD_S3_PORT \+ 10000\).*"
                                                     r"set SHIFTBOARD_S3_PORT to a free port"):
            control.up(settings)


def test_ports_out_of_range_are_refused(tmp_path: Path) -> None:
    settings = Settings(state_dir=str(tmp_path), object_store="seaweedfs", s3_port=60000)
    with pytest.raises(FailedPrecondition, match="not a valid port .*set SHIFTBOARD_S3_PORT lower"):
        control.up(settings)


def test_two_stacks_with_different_s3_ports_share_no_port(tmp_path: Path) -> None:
    a = Settings(state_dir=str(tmp_path / "a"), object_store="seaweedfs", s3_port=9000)
    b = Settings(state_dir=str(tmp_path / "b"), object_store="seaweedfs", s3_port=9100)
    ports_a = {c.port for c in object_store_ports(a)}
    ports_b = {c.port for c in object_store_ports(b)}
    assert len(ports_a) == 8 and not ports_a & ports_b


def test_triton_backend_dir_and_environment(tmp_path: Path) -> None:
    settings = Settings(state_dir=str(tmp_path))
    python_dir = prepare_backends(settings) / "python"
    assert (python_dir / "libtriton_python.so").is_file()
    assert os.access(python_dir / "triton_python_backend_stub", os.X_OK)
    env = triton_env({"LD_LIBRARY_PATH": "/elsewhere"})
    entries = env["LD_LIBRARY_PATH"].split(os.pathsep)
    assert entries[0] == sysconfig.get_config_var("LIBDIR") and entries[-1] == "/elsewhere"
    command = triton_command(settings)
    assert "--model-control-mode=explicit" in command
    assert f"--backend-directory={python_dir.parent}" in command


def test_model_entry_validates_its_input(tmp_path: Path) -> None:
    model = _tiny_torchscript(tmp_path / "m.pt")
    with pytest.raises(InvalidArgument, match="mean has 2 values"):
        write_python_backend_model(tmp_path, "m", model, InputSpec(channels=3, height=8, width=8, mean=(0.5, 0.5)), 10)
    with pytest.raises(InvalidArgument, match="path separator"):
        write_python_backend_model(tmp_path, "../m", model, InputSpec(channels=3, height=8, width=8), 10)


@pytest.mark.stack
def test_a_service_that_stays_unhealthy_fails_up_naming_it(tmp_path: Path) -> None:
    nothing_there = f"127.0.0.1:{free_port()}"
    settings = free_settings(tmp_path / "state", object_store="external", s3_endpoint=nothing_there,
                             start_timeout_s=2.0)
    progress: list[str] = []
    with pytest.raises(Unavailable, match=r"object-store did not become healthy within 2 s "
                                          r"\(connection refused\)"):
        control.up(settings, on_progress=progress.append)
    assert runfile.running_supervisor(settings) is None
    data = runfile.read_run_file(settings)
    assert data is not None and data["state"] == "failed"  # kept for the error, with a dead supervisor
    assert [s["state"] for s in data["services"]] == ["failed"] + ["pending"] * (len(SERVICE_NAMES) - 1)
    assert progress[-1].startswith("object-store: failed")
    assert control.down(settings) is False and not runfile.run_file(settings).exists()


# --------------------------------------------------------------------------- the running stack


@pytest.mark.stack
def test_up_reports_every_service_healthy(own_stack: RunningStack) -> None:
    assert not own_stack.result.already_running
    for name in SERVICE_NAMES:
        assert any(m.startswith(f"{name}: healthy at ") for m in own_stack.progress), \
            own_stack.progress
    services = control.status(own_stack.settings)
    assert tuple(s.name for s in services) == SERVICE_NAMES
    assert all(s.healthy and s.pid for s in services), services
    data = runfile.read_run_file(own_stack.settings)
    assert data is not None and data["state"] == "running"
    assert data["supervisor_pid"] == own_stack.result.pid


@pytest.mark.stack
def test_second_up_changes_nothing(own_stack: RunningStack) -> None:
    before = own_stack.service_pids()
    again = control.up(own_stack.settings)
    assert again.already_running and again.pid == own_stack.result.pid
    assert own_stack.service_pids() == before


@pytest.mark.stack
def test_object_store_enforces_credentials(own_stack: RunningStack) -> None:
    settings = own_stack.settings
    creds = credentials.s3_credentials(settings)
    assert creds is not None
    good = Minio(settings.s3_target, access_key=creds.access_key, secret_key=creds.secret_key, secure=False)
    good.put_object(settings.s3_bucket, "probe/hello.txt", io.BytesIO(b"hello"), 5)
    assert good.get_object(settings.s3_bucket, "probe/hello.txt").read() == b"hello"

    wrong_secret = Minio(settings.s3_target, access_key=creds.access_key, secret_key="not-the-secret",
                         secure=False)
    with pytest.raises(S3Error) as err:
        wrong_secret.get_object(settings.s3_bucket, "probe/hello.txt")
    assert err.value.code in {"SignatureDoesNotMatch", "AccessDenied"}
    unknown_key = Minio(settings.s3_target, access_key="nobody", secret_key="nothing-here", secure=False)
    with pytest.raises(S3Error) as err:
        unknown_key.bucket_exists(settings.s3_bucket)
    assert err.value.code in {"InvalidAccessKeyId", "AccessDenied", "SignatureDoesNotMatch"}

    base = f"http://{settings.s3_target}/{settings.s3_bucket}"
    for request in (urllib.request.Request(f"{base}/probe/hello.txt"),
                    urllib.request.Request(f"{base}?list-type=2"),
                    urllib.request.Request(f"{base}/probe/anonymous.txt", data=b"x", method="PUT")):
        with pytest.raises(urllib.error.HTTPError) as http_err:
            urllib.request.urlopen(request, timeout=10)
        assert http_err.value.code == 403, request.full_url
    assert not any(o.object_name == "probe/anonymous.txt" for o in good.list_objects(settings.s3_bucket,
                                                                                      "probe/"))


@pytest.mark.stack
def test_triton_serves_torchscript_on_uint8_batches(own_stack: RunningStack, tmp_path: Path) -> None:
    import tritonclient.grpc as triton_grpc

    settings = own_stack.settings
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    model_path = _tiny_torchscript(tmp_path / "tiny.pt")
    spec = InputSpec(channels=3, height=8, width=8, value_min=0.0, value_max=1.0, mean=tuple(mean), std=tuple(std))
    write_python_backend_model(settings.triton_repository, "tiny", model_path, spec, 10, max_batch_size=64)
    client = connect(settings.triton_target, TritonAuth.from_settings(settings))
    try:
        started = time.monotonic()
        client.load_model("tiny")
        load_s = time.monotonic() - started
        assert client.is_model_ready("tiny"), f"not ready after {load_s:.1f} s"
        images = np.random.default_rng(0).integers(0, 256, size=(17, 3, 8, 8), dtype=np.uint8)
        request = triton_grpc.InferInput("images", list(images.shape), "UINT8")
        request.set_data_from_numpy(images)
        reply = client.infer("tiny", [request], outputs=[triton_grpc.InferRequestedOutput("logits")])
        logits = reply.as_numpy("logits")
    finally:
        client.close()

    module = torch.jit.load(str(model_path)).eval()
    x = torch.from_numpy(images).float() / 255.0
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = module(x).numpy()
    assert logits.dtype == np.float32 and logits.shape == (17, 10)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.stack
def test_prefect_server_is_healthy(own_stack: RunningStack) -> None:
    api = own_stack.settings.prefect_api
    with urllib.request.urlopen(f"{api}/health", timeout=10) as response:
        assert json.loads(response.read()) is True
    home = own_stack.settings.state_path / "prefect"
    assert (home / "prefect.db").exists()  # the database lives in the state dir


@pytest.mark.stack
def test_a_service_that_dies_is_restarted(own_stack: RunningStack) -> None:
    settings = own_stack.settings
    old_pid = own_stack.service_pids()["gateway"]
    os.killpg(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        gateway = next(s for s in control.status(settings) if s.name == "gateway")
        if gateway.healthy and gateway.pid not in (None, old_pid):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"gateway was not restarted: {gateway}")
    data = runfile.read_run_file(settings)
    assert data is not None
    assert next(s for s in data["services"] if s["name"] == "gateway")["restarts"] == 1
    assert "restarted 1x" in gateway.detail


@pytest.mark.stack
def test_down_stops_everything(own_stack: RunningStack) -> None:
    settings = own_stack.settings
    supervisor = own_stack.result.pid
    assert supervisor is not None
    sessions = {supervisor, *own_stack.service_pids().values()}
    assert _session_members(sessions)
    started = time.monotonic()
    assert control.down(settings) is True
    assert time.monotonic() - started < 60
    assert _session_members(sessions) == set(), "processes left behind"
    assert not runfile.run_file(settings).exists()
    assert all(not s.healthy and s.detail == "not running" for s in control.status(settings))
    assert control.down(settings) is False


# --------------------------------------------------------------------------- helpers


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _tiny_torchscript(path: Path) -> Path:
    torch.manual_seed(0)
    torch.jit.script(_Tiny()).save(str(path))
    return path


def _session_members(sessions: set[int]) -> set[int]:
    """Live (non-zombie) processes whose session is one of ``sessions``."""
    members = set()
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(process.pid) in sessions:
                members.add(process.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members
