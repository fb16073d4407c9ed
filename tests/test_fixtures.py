"""The test helpers themselves: free ports, settings without a default port, and ``start_service``.

Every server a test starts takes its ports from :func:`tests.helpers.free_settings` or
:func:`tests.helpers.free_port`, so the suite runs beside a stack on the default ports; the last test
checks the session's shared fixtures. The services here are real processes (a Python HTTP server).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from shiftboard.services.stack.health import http_probe
from shiftboard.services.stack.spec import ServiceSpec, port_is_free, validate_ports
from shiftboard.settings import Settings
from tests.conftest import GatewayHandle
from tests.helpers import PORT_SETTINGS, free_port, free_settings, service_ports, start_service

#: A web server that first starts a helper which ignores SIGTERM (as a backend stub may), in its group.
HTTP_SERVER = """
import http.server, pathlib, subprocess, sys
helper = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 300"])
pathlib.Path(sys.argv[2]).write_text(str(helper.pid))
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def default_ports() -> set[int]:
    """Every port the stack's services listen on with the default settings (derived ones included)."""
    return {c.port for c in service_ports(Settings(object_store="seaweedfs"))}


def port_of(target: str) -> int:
    return int(target.rstrip("/").removesuffix("/api").rsplit(":", 1)[1])


def test_port_settings_are_every_port_setting() -> None:
    assert {name for name in dir(Settings()) if name.endswith("_port")} == set(PORT_SETTINGS)


def test_free_port_is_free_and_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(40)] + [free_port(below=40000) for _ in range(10)]
    assert len(set(ports)) == len(ports)
    assert all(port_is_free("127.0.0.1", p) for p in ports)
    assert all(p < 40000 for p in ports[40:])


def test_free_settings_use_no_default_port(tmp_path: Path) -> None:
    defaults = Settings()
    for kind in ("seaweedfs", "auto", "external"):
        settings = free_settings(tmp_path / kind, object_store=kind)
        claims = service_ports(settings)
        validate_ports(claims)  # no port wanted twice, derived SeaweedFS ports included
        assert all(port_is_free(settings.host, c.port) for c in claims)
        assert not {c.port for c in claims} & default_ports(), claims
        for name in PORT_SETTINGS:
            assert getattr(settings, name) != getattr(defaults, name), name
        assert settings.state_dir == str(tmp_path / kind)


def test_free_settings_keep_the_base_and_the_overrides(tmp_path: Path) -> None:
    base = Settings(object_store="external", s3_endpoint="127.0.0.1:1", s3_bucket="kept", eval_batch_size=7)
    port = free_port()
    settings = free_settings(tmp_path, base=base, gateway_port=port, auto_evaluate=False)
    assert (settings.s3_target, settings.s3_bucket, settings.eval_batch_size) == ("127.0.0.1:1", "kept", 7)
    assert settings.gateway_port == port and settings.auto_evaluate is False
    assert settings.triton_grpc_port != base.triton_grpc_port


def _http_spec(port: int, pid_file: Path) -> ServiceSpec:
    return ServiceSpec(name="web", address=f"127.0.0.1:{port}",
                       command=[sys.executable, "-c", HTTP_SERVER, str(port), str(pid_file)],
                       env=dict(os.environ), check=lambda: http_probe(f"http://127.0.0.1:{port}/"),
                       stop_timeout_s=2.0)


def _gone(pid: int, timeout_s: float = 5.0) -> bool:
    """True once ``pid`` has died (a zombie counts: its parent, init, reaps it), within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_start_service_waits_until_healthy_and_stops_its_whole_group(tmp_path: Path) -> None:
    port = free_port()
    with start_service(_http_spec(port, tmp_path / "helper.pid"), tmp_path / "web.log") as web:
        assert http_probe(f"http://127.0.0.1:{port}/") is None  # healthy as soon as the block begins
        helper = int((tmp_path / "helper.pid").read_text())
        assert os.getpgid(helper) == web.pid and os.getsid(web.pid) == web.pid  # a session of its own
    assert web.process.returncode is not None
    assert _gone(helper), "a helper that ignores SIGTERM was left behind"
    assert port_is_free("127.0.0.1", port)


def test_start_service_names_a_service_that_exits_and_shows_its_log(tmp_path: Path) -> None:
    spec = ServiceSpec(name="broken", address="nowhere", env=dict(os.environ), check=lambda: "connection refused",
                       command=[sys.executable, "-c", "print('no such config file'); raise SystemExit(3)"])
    with pytest.raises(RuntimeError, match=r"(?s)^broken exited \(3\): connection refused; log .*broken\.log:"
                                           r"\nno such config file"), \
            start_service(spec, tmp_path / "broken.log"):
        pass


def test_start_service_refuses_a_missing_program(tmp_path: Path) -> None:
    spec = ServiceSpec(name="ghost", address="nowhere", env={}, check=lambda: None,
                       command=[str(tmp_path / "no-such-server")], install_hint="install it")
    with pytest.raises(RuntimeError, match="cannot start ghost: .*no-such-server is not installed: install it"), \
            start_service(spec, tmp_path / "ghost.log"):
        pass


@pytest.mark.stack
def test_the_shared_fixtures_use_no_default_port(object_store: Settings, gateway: GatewayHandle) -> None:
    defaults = default_ports() | {getattr(Settings(), name) for name in PORT_SETTINGS}
    for settings in (object_store, gateway.settings):
        assert not {getattr(settings, name) for name in PORT_SETTINGS} & defaults
        targets = (settings.s3_target, settings.triton_target, settings.gateway_target, settings.prefect_api,
                   settings.leaderboard_url)
        assert not {port_of(t) for t in targets} & defaults, targets
