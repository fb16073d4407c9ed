"""The worker's warm flow-run starts, against a real Prefect server, Triton, object store and gateway.

`shiftboard serve worker` runs a forkserver that has imported the flows; each flow run is forked
from it instead of a fresh interpreter importing Prefect, numpy and gRPC again (about 3 s here).
Checked: the forkserver is there before any run, submitted pairs succeed through it with Prefect's
states recorded as before, and a run's process is a child of the forkserver, not of the worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from shiftboard.v1 import shiftboard_pb2 as pb
from tests import helpers
from tests.test_flows import (  # noqa: F401 - module fixtures: a Prefect server, Triton
    _gateway_settings,
    _register,
    _submit_when_served,
    _wait_for,
    prefect_api,
    prefect_auth,
    store,
    triton,
    upload_model,
)

pytestmark = pytest.mark.stack


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of every live child of ``pid``."""
    out: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out[int(entry.name)] = cmdline
    return out


def _states(api: str, auth: str, flow_run_id: str) -> dict[str, float]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api, PREFECT_API_AUTH_STRING: auth}), \
            get_client(sync_client=True) as client:
        states = client.read_flow_run_states(uuid.UUID(flow_run_id))
        run = client.read_flow_run(uuid.UUID(flow_run_id))
    out: dict[str, float] = {"pid": float(run.infrastructure_pid or 0)}
    for state in sorted(states, key=lambda s: s.timestamp):
        out.setdefault(state.type.value, state.timestamp.timestamp())
    return out


def test_flow_runs_fork_from_a_warm_process(gateway, triton, prefect_api, prefect_auth, tmp_path):  # noqa: F811
    from shiftboard.flows.worker import submit_evaluation

    client = gateway.client
    settings = _gateway_settings(gateway, triton).replace(prefect_api_url=prefect_api, eval_concurrency=1,
                                                          prefect_auth_string=prefect_auth)
    model = helpers.torchscript_model(tmp_path / "warm.pt", seed=3)
    client.submit_model(model, pb.ModelMetadata(
        name="warm-model", version="1", input=pb.InputSpec(channels=1, height=8, width=8),
        format=pb.MODEL_FORMAT_TORCHSCRIPT, num_classes=10, category=pb.MODEL_CATEGORY_STANDARD))
    _register(gateway, tmp_path, "warm-digits")
    env = {**os.environ, **settings.as_env(), "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "PREFECT_API_URL": prefect_api}
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen([sys.executable, "-m", "shiftboard.cli", "serve", "worker"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        key = pb.EvaluationKey(model="warm-model", version="1", testset="warm-digits")
        [run_id] = _submit_when_served(settings, [key], worker, timeout_s=90)
        servers = [pid for pid, cmd in _children(worker.pid).items() if "multiprocessing.forkserver" in cmd]
        assert len(servers) == 1, _children(worker.pid)
        done = _wait_for(client, key, {pb.EVALUATION_STATUS_SUCCEEDED, pb.EVALUATION_STATUS_FAILED})
        assert done.status == pb.EVALUATION_STATUS_SUCCEEDED, done.error
        assert done.samples_done == 500 and done.flow_run_id == run_id
        states = _states(prefect_api, prefect_auth, run_id)
        assert {"PENDING", "RUNNING", "COMPLETED"} <= set(states), states  # the UI shows the run as before
        assert worker.poll() is None
        # The same worker keeps serving: a second pair runs in a process forked by the same forkserver.
        _register(gateway, tmp_path, "warm-digits-2")
        second_key = pb.EvaluationKey(model="warm-model", version="1", testset="warm-digits-2")
        second = submit_evaluation(settings, second_key)
        forked: set[int] = set()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            forked |= set(_children(servers[0]))
            [e] = client.list_evaluations(model="warm-model", testset="warm-digits-2")
            if e.status in (pb.EVALUATION_STATUS_SUCCEEDED, pb.EVALUATION_STATUS_FAILED):
                break
            time.sleep(0.05)
        done = _wait_for(client, second_key, {pb.EVALUATION_STATUS_SUCCEEDED, pb.EVALUATION_STATUS_FAILED})
        assert done.status == pb.EVALUATION_STATUS_SUCCEEDED, done.error
        assert done.flow_run_id == second
        assert forked, "the flow run was not forked from the worker's forkserver"
        assert not set(_children(worker.pid)) & forked  # children of the forkserver, not of the worker
        assert [pid for pid, cmd in _children(worker.pid).items() if "multiprocessing.forkserver" in cmd] == servers
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        log.close()


def test_a_preloaded_model_is_leased_without_a_second_load(triton, store, tmp_path, caplog):  # noqa: F811
    """The gateway's preload (a new model) and the evaluation's acquire meet on the registry lock: the
    acquire waits for the load under way and leases the model; Triton loads it once."""
    import logging
    import threading

    from shiftboard.adapters.triton.deployer import ModelDeployer, deployment_state, triton_model_name

    model = upload_model(store, helpers.torchscript_model(tmp_path / "pre.pt", seed=31), "preloaded")
    name = triton_model_name("preloaded", "1", model.sha256)
    assert deployment_state(triton, model).state == "NOT_DEPLOYED"
    caplog.set_level(logging.INFO, logger="shiftboard.adapters.triton.deployer")
    preloaded: list[str] = []
    worker = threading.Thread(target=lambda: preloaded.append(ModelDeployer(triton, store=store).preload(model)))
    worker.start()
    deadline = time.monotonic() + 30
    while deployment_state(triton, model).state == "NOT_DEPLOYED":  # the entry is written, the load begun
        assert time.monotonic() < deadline, "the preload never wrote the Triton entry"
        time.sleep(0.02)
    with ModelDeployer(triton, store=store).acquire(model) as lease:
        assert lease.model_name == name
        assert deployment_state(triton, model).state == "READY"
    worker.join(60)
    assert preloaded == [name]
    loads = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"loaded {name} into Triton")]
    assert len(loads) == 1, loads

