"""The deployment files: docker-compose.yml and deploy/ (images, Triton templates, Kubernetes sketch).

No Docker engine runs where these tests run, so they check what can be checked without one
(deploy/README.md, "What was validated"): the compose file parses and, when Debian's
``docker-compose`` is installed, ``docker-compose config`` accepts it; every command a container runs
exists in the CLI and equals what the embedded stack runs; every ``SHIFTBOARD_*`` name is a setting
and the containers' settings parse; health checks, dependencies, ports, paths and volumes agree; the
Dockerfiles run as a non-root user and copy every package; the Triton entries (the worker's Python
backend, deploy/triton's libtorch one) parse back as Triton's ``ModelConfig`` with the flow's contract.

Fast: no stack servers. Two tiny in-process servers (a grpc.health.v1 servicer and an HTTP handler)
give ``shiftboard-healthcheck`` something real to probe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from concurrent import futures
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from typer.testing import CliRunner

from shiftboard.adapters.triton import repository as triton_repository
from shiftboard.adapters.triton.client import KEY_HEADER
from shiftboard.adapters.triton.server import RESTRICTED_PROTOCOLS, triton_command
from shiftboard.cli.app import app
from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.manifests import InputSpec
from shiftboard.services.stack.prefect_server import prefect_command
from shiftboard.services.stack.specs import SERVICE_NAMES, stack_specs
from shiftboard.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
GPU_OVERRIDE = DEPLOY / "compose.gpu.yml"
COMPOSE_ENV_EXAMPLE = DEPLOY / "compose.env.example"
DOCKERFILES = (DEPLOY / "Dockerfile", DEPLOY / "triton" / "Dockerfile")
SETTING_NAMES = {env_name(name) for name in Settings.model_fields}
SHIFTBOARD_SERVICES = ("gateway", "worker", "leaderboard")
#: embedded-stack service -> compose service
STACK_TO_COMPOSE = {"object-store": "minio"}


# ------------------------------------------------------------------------------------------ helpers


def load_module(path: Path) -> ModuleType:
    """A script of deploy/ as a module (deploy/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"deploy_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and torch.jit look the module up
    spec.loader.exec_module(module)
    return module


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (comments and blank lines skipped), as compose reads env files."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=value: {line!r}"
            out[key.strip()] = value.strip()
    return out


_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` (what this repository uses)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg") or ""
        have = env.get(name)
        if op == ":-":
            return have if have else arg
        if op == "-":
            return have if have is not None else arg
        if op in (":?", "?") and not have:
            raise ValueError(f"{name}: {arg}")
        return have or ""

    return _VAR.sub(sub, str(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose_vars() -> dict[str, str]:
    return read_env_file(COMPOSE_ENV_EXAMPLE)


def service_env(compose: dict[str, Any], name: str, variables: Mapping[str, str]) -> dict[str, str]:
    """A service's container environment: its env files, then ``environment`` (which wins)."""
    svc = compose["services"][name]
    env: dict[str, str] = {}
    files = svc.get("env_file", [])
    for file in [files] if isinstance(files, str) else files:
        env.update(read_env_file(ROOT / file))
    environment = svc.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    env.update({k: interpolate(v, variables) for k, v in environment.items()})
    return env


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, doc) for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload name, pod spec, container) for every container of every workload."""
    for _, doc in k8s_documents():
        if doc["kind"] in ("Deployment", "StatefulSet"):
            pod = doc["spec"]["template"]["spec"]
            for container in pod["containers"]:
                yield doc["metadata"]["name"], pod, container


def container_commands(compose: dict[str, Any]) -> list[tuple[str, list[str]]]:
    commands = [(f"compose {name}", svc["command"]) for name, svc in compose["services"].items()
                if "command" in svc]
    commands += [(f"k8s {workload}/{c['name']}", c.get("command") or c.get("args") or [])
                 for workload, _, c in k8s_containers()]
    return commands


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def published_target(port: str) -> int:
    """The container port of a short-syntax ``ports`` entry (``[ip:]host:container``)."""
    return int(port.rsplit(":", 1)[-1])


# ------------------------------------------------------------------------------------------ compose


def test_compose_runs_every_service_of_the_embedded_stack(compose):
    expected = {STACK_TO_COMPOSE.get(name, name) for name in SERVICE_NAMES}
    assert set(compose["services"]) == expected


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="docker-compose is not installed (Debian: apt-get install docker-compose); "
                    "the file is still parsed and checked by the other tests")
def test_docker_compose_config_accepts_the_files(compose, compose_vars, tmp_path):
    def config(*files: Path, env_file: Path | None = COMPOSE_ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
        args = ["docker-compose", "--project-directory", str(ROOT)]
        if env_file is not None:
            args += ["--env-file", str(env_file)]
        for f in files:
            args += ["-f", str(f)]
        # A clean environment: interpolation must come from the env file, not from this shell.
        return subprocess.run([*args, "config"], capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)})

    result = config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    # docker-compose's resolution equals the one the other tests check
    for name in SHIFTBOARD_SERVICES:
        got = {k: str(v) for k, v in resolved["services"][name]["environment"].items()}
        assert got == service_env(compose, name, compose_vars), name

    with_gpu = config(COMPOSE_FILE, GPU_OVERRIDE)
    assert with_gpu.returncode == 0, with_gpu.stderr
    devices = yaml.safe_load(with_gpu.stdout)["services"]["triton"]["deploy"]["resources"]["reservations"]
    assert devices["devices"][0]["capabilities"] == ["gpu"]

    # no built-in secrets: without them compose refuses, naming the variable to set
    (tmp_path / "empty.env").touch()
    refused = config(COMPOSE_FILE, env_file=tmp_path / "empty.env")
    assert refused.returncode != 0
    assert "MINIO_ROOT_USER" in refused.stderr or "SHIFTBOARD_ADMIN_TOKEN" in refused.stderr


def test_secrets_have_no_defaults(compose, compose_vars):
    secrets = ("MINIO_ROOT_PASSWORD", "SHIFTBOARD_ADMIN_TOKEN")
    without = {k: v for k, v in compose_vars.items() if k not in secrets}
    for name in ("minio", "gateway", "worker"):
        with pytest.raises(ValueError, match="set .* in deploy/compose.env"):
            service_env(compose, name, without)
    service_env(compose, "leaderboard", without)  # needs no secret: reads are open
    env = service_env(compose, "gateway", compose_vars)
    assert env["SHIFTBOARD_ADMIN_TOKEN"] == compose_vars["SHIFTBOARD_ADMIN_TOKEN"]
    assert env["SHIFTBOARD_S3_SECRET_KEY"] == compose_vars["MINIO_ROOT_PASSWORD"]


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies(compose):
    services = compose["services"]
    for name, svc in services.items():
        check = svc.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, name
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must name a condition per dependency"
        for dep, condition in depends.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dep}"
    # no cycles: a start order exists
    order: list[str] = []
    pending = {n: set(s.get("depends_on", {})) for n, s in services.items()}
    while pending:
        ready = sorted(n for n, deps in pending.items() if deps <= set(order))
        assert ready, f"dependency cycle among {sorted(pending)}"
        order += ready
        for n in ready:
            del pending[n]
    assert order.index("gateway") < order.index("worker") < len(order)


def test_healthcheck_commands_are_well_formed(compose):
    for name, svc in compose["services"].items():
        test = svc["healthcheck"]["test"][1:]
        if "shiftboard-healthcheck" in " ".join(test[:2]):
            args = test[test.index(next(a for a in test if a.endswith("shiftboard-healthcheck"))) + 1:]
            assert (args[0] in ("grpc", "http") and len(args) in (2, 3)) or (args[0] == "tcp" and len(args) == 2), name
            if args[0] == "http":
                assert urlparse(args[1]).scheme == "http", name


# ------------------------------------------------------------------------------------------ commands


def test_every_container_command_exists_in_the_cli(compose):
    runner = CliRunner()
    checked = 0
    for where, command in container_commands(compose):
        if command and command[0] == "shiftboard":
            result = runner.invoke(app, [*command[1:], "--help"])
            shown = " ".join(command)
            assert result.exit_code == 0, f"{where}: `{shown}` is not a CLI command:\n{result.output}"
            assert "Usage" in result.output
            checked += 1
    assert checked >= 6  # three compose services, three Kubernetes containers


def test_containers_run_the_commands_of_the_embedded_stack(compose, tmp_path):
    settings = Settings(state_dir=str(tmp_path), host="0.0.0.0", prefect_port=4200)
    specs = {spec.name: spec for spec in stack_specs(settings)}
    for name in SHIFTBOARD_SERVICES:
        stack = specs[name].command
        assert stack is not None and stack[1:3] == ["-m", "shiftboard.cli"]
        assert compose["services"][name]["command"] == ["shiftboard", *stack[3:]], name
    assert ["-m", *compose["services"]["prefect"]["command"]] == prefect_command(settings)[1:]


def _key_flag(flag: str) -> str:
    """A ``--grpc-restricted-protocol`` flag with its key replaced (each deployment passes its own)."""
    return flag.rsplit("=", 1)[0] + "=KEY" if flag.startswith("--grpc-restricted-protocol=") else flag


def test_triton_runs_with_the_flags_of_the_embedded_stack(compose, tmp_path):
    stack_flags = {_key_flag(f) for f in triton_command(Settings(state_dir=str(tmp_path)), "key")}
    command = compose["services"]["triton"]["command"]
    assert command[0] == "tritonserver"
    per_container = ("--model-repository=", "--grpc-port=")
    for flag in command[1:]:
        assert flag.startswith(per_container) or _key_flag(flag) in stack_flags, f"{flag} is not what the stack runs"
    assert "--model-control-mode=explicit" in command
    # gRPC only, and every gRPC protocol needs the key, which comes from deploy/compose.env
    assert {"--allow-http=false", "--allow-metrics=false"} <= set(command)
    assert not any(f.startswith(("--http-", "--metrics-")) for f in command)
    restricted = [f for f in command if f.startswith("--grpc-restricted-protocol=")]
    assert restricted == [f"--grpc-restricted-protocol={','.join(RESTRICTED_PROTOCOLS)}:{KEY_HEADER}="
                          "${SHIFTBOARD_TRITON_API_KEY:?set SHIFTBOARD_TRITON_API_KEY in deploy/compose.env}"]
    # the Kubernetes sidecar runs the same, its key from the Secret; the image's default command too,
    # but without the key, which an image cannot hold
    sidecar = next(c for w, _, c in k8s_containers() if c["name"] == "triton")
    assert [_key_flag(f) for f in sidecar["args"]] == [_key_flag(f) for f in command]
    assert sidecar["args"][command.index(restricted[0])].endswith("=$(SHIFTBOARD_TRITON_API_KEY)")
    cmd = next(args for kw, args in dockerfile_instructions(DOCKERFILES[1]) if kw == "CMD")
    assert json.loads(cmd) == [f for f in command if f not in restricted]


def test_prefect_and_its_clients_share_the_auth_string(compose, compose_vars):
    auth = compose_vars["SHIFTBOARD_PREFECT_AUTH_STRING"]
    assert compose["services"]["prefect"]["environment"]["PREFECT_SERVER_API_AUTH_STRING"].startswith(
        "${SHIFTBOARD_PREFECT_AUTH_STRING:?")
    for name in ("gateway", "worker"):
        env = service_env(compose, name, compose_vars)
        assert env["SHIFTBOARD_PREFECT_AUTH_STRING"] == auth, name
        assert env["SHIFTBOARD_TRITON_API_KEY"] == compose_vars["SHIFTBOARD_TRITON_API_KEY"], name
    without = {k: v for k, v in compose_vars.items() if k != "SHIFTBOARD_PREFECT_AUTH_STRING"}
    with pytest.raises(ValueError, match="set SHIFTBOARD_PREFECT_AUTH_STRING in deploy/compose.env"):
        service_env(compose, "worker", without)


# ------------------------------------------------------------------------------------------ settings


def _shiftboard_names() -> list[tuple[str, str]]:
    """(where, name) for every SHIFTBOARD_* name set by a deployment file."""
    names: list[tuple[str, str]] = []
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    for svc_name, svc in compose["services"].items():
        names += [(f"docker-compose.yml {svc_name}", k) for k in svc.get("environment", {})]
    for env_file in (DEPLOY / "shiftboard.env", COMPOSE_ENV_EXAMPLE):
        names += [(env_file.name, k) for k in read_env_file(env_file)]
    for file, doc in k8s_documents():
        if doc["kind"] == "ConfigMap":
            names += [(file, k) for k in doc["data"]]
        if doc["kind"] == "Secret":
            names += [(file, k) for k in doc["stringData"]]
    for workload, _, c in k8s_containers():
        names += [(f"k8s {workload}", e["name"]) for e in c.get("env", [])]
    for path in DOCKERFILES:
        for kw, args in dockerfile_instructions(path):
            if kw == "ENV":
                names += [(path.name, m) for m in re.findall(r"(SHIFTBOARD_[A-Z0-9_]+)=", args)]
    return [(where, name) for where, name in names if name.startswith("SHIFTBOARD_")]


def test_every_shiftboard_variable_is_a_setting():
    names = _shiftboard_names()
    assert len(names) > 20
    unknown = sorted({f"{name} ({where})" for where, name in names if name not in SETTING_NAMES})
    assert not unknown, f"not settings of shiftboard/settings.py: {unknown}"


def test_container_settings_parse_and_point_at_the_compose_services(compose, compose_vars):
    for name in SHIFTBOARD_SERVICES:
        settings = Settings.from_env(service_env(compose, name, compose_vars))
        assert settings.host == "0.0.0.0", f"{name} must listen on all interfaces"
        assert settings.object_store == "external"
        assert settings.s3_target == "minio:9000"
        assert settings.triton_target == "triton:8001"
        assert settings.prefect_api == "http://prefect:4200/api"
        assert settings.gateway_target == "gateway:50051"
    gateway = Settings.from_env(service_env(compose, "gateway", compose_vars))
    worker = Settings.from_env(service_env(compose, "worker", compose_vars))
    assert gateway.s3_access_key and gateway.s3_secret_key and gateway.admin_token
    assert (worker.s3_access_key, worker.s3_secret_key) == (gateway.s3_access_key, gateway.s3_secret_key)
    # the worker commits predictions with the token the gateway registers as evaluator, never the admin token
    assert worker.token == gateway.evaluator_token and worker.token != gateway.admin_token
    assert not worker.admin_token
    assert gateway.s3_public_target == compose_vars["S3_PUBLIC_ENDPOINT"]


def test_ports_paths_and_volumes_agree(compose, compose_vars):
    services = compose["services"]
    env = {name: service_env(compose, name, compose_vars) for name in SHIFTBOARD_SERVICES}
    gateway, leaderboard = Settings.from_env(env["gateway"]), Settings.from_env(env["leaderboard"])

    def ports(name: str) -> list[int]:
        return [published_target(interpolate(p, compose_vars)) for p in services[name].get("ports", [])]

    assert ports("gateway") == [gateway.gateway_port]
    assert services["gateway"]["healthcheck"]["test"][-1] == f"localhost:{gateway.gateway_port}"
    assert ports("leaderboard") == [leaderboard.leaderboard_port]
    assert urlparse(services["leaderboard"]["healthcheck"]["test"][-2]).port == leaderboard.leaderboard_port

    prefect_cmd = services["prefect"]["command"]
    prefect_port = int(prefect_cmd[prefect_cmd.index("--port") + 1])
    assert urlparse(gateway.prefect_api).port == prefect_port
    assert urlparse(services["prefect"]["healthcheck"]["test"][-2]).port == prefect_port

    triton = {f.split("=")[0]: f.split("=", 1)[1] for f in services["triton"]["command"][1:] if "=" in f}
    assert gateway.triton_target.endswith(":" + triton["--grpc-port"])
    assert services["triton"]["healthcheck"]["test"][-1] == f"localhost:{triton['--grpc-port']}"

    def mounts(name: str) -> dict[str, str]:
        """container path -> named volume"""
        out = {}
        for v in services[name].get("volumes", []):
            source, target = v.split(":")[:2]
            out[target] = source
        return out

    declared = set(compose.get("volumes", {}))
    for name in services:
        for source in mounts(name).values():
            assert source in declared, f"{name} mounts undeclared volume {source}"
    # the worker writes the model repository Triton reads
    worker = Settings.from_env(env["worker"])
    repo_volume = mounts("worker")[str(worker.triton_repository)]
    assert mounts("triton")[triton["--model-repository"]] == repo_volume
    assert "ro" in next(v for v in services["triton"]["volumes"] if v.startswith(repo_volume)).split(":")[2:]
    # the catalog lives on the gateway's own volume
    assert str(gateway.catalog_file).startswith(next(t for t in mounts("gateway")) + "/")
    assert "scale" not in services["gateway"] and "replicas" not in services["gateway"].get("deploy", {})


# ------------------------------------------------------------------------------------------ images


def test_dockerfiles_end_as_a_non_root_user():
    for path in DOCKERFILES:
        users = [args for kw, args in dockerfile_instructions(path) if kw == "USER"]
        assert users, f"{path.name} has no USER: the container would run as root"
        user = users[-1].split(":")[0]
        assert user not in ("root", "0"), f"{path.name} ends as {users[-1]}"


def test_the_image_copies_every_package_folder_and_only_existing_files():
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    copies = {}
    for path in DOCKERFILES:
        for kw, args in dockerfile_instructions(path):
            if kw == "COPY" and "--from=" not in args:
                parts = [p for p in args.split() if not p.startswith("--")]
                for source in parts[:-1]:
                    assert (ROOT / source).exists(), f"{path.name} copies missing {source}"
                    copies[source.rstrip("/")] = path
    for folder in package_dirs.values():
        top = folder.split("/")[0]
        assert copies.get(top) == DOCKERFILES[0], f"deploy/Dockerfile does not copy {top}/ (package-dir)"
    assert copies.get("deploy/constraints.txt") == DOCKERFILES[0]


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def test_images_install_the_projects_torch_version():
    torch = next(r for r in _pyproject_requirements() if r.name == "torch")
    pinned = next(s.version for s in torch.specifier if s.operator == "==")
    for path in DOCKERFILES:
        args = [a for kw, a in dockerfile_instructions(path)
                if kw == "ARG" and a.startswith("TORCH_VERSION=")]
        assert args == [f"TORCH_VERSION={pinned}"], f"{path.name}: {args} (pyproject pins torch=={pinned})"


def test_constraints_satisfy_pyproject():
    pins = {}
    for line in (DEPLOY / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: not name==version: {line!r}"
            pins[canonicalize_name(name)] = Version(version)
    for req in _pyproject_requirements():
        have = pins.get(canonicalize_name(req.name))
        assert have is not None, f"constraints.txt has no pin for {req.name}: regenerate it (see its header)"
        assert req.specifier.contains(have, prereleases=True), f"{req} but constraints.txt pins {have}"
    # Prefect 3.8.8's scheduler fails with SQLAlchemy 2.1 (deploy/README.md, "The image").
    assert pins[canonicalize_name("sqlalchemy")] < Version("2.1")


# ------------------------------------------------------------------------------------------ triton


def _parse_model_config(text: str) -> Any:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(text, model_config_pb2.ModelConfig())


def test_python_backend_entry_parses_as_the_model_config_the_worker_means(tmp_path):
    from tritonclient.grpc import model_config_pb2

    from tests.helpers import torchscript_model

    model = torchscript_model(tmp_path / "m.pt", pixels=3 * 8 * 8, classes=7)
    entry = triton_repository.write_python_backend_model(
        tmp_path / "repo", "tiny-1", model,
        InputSpec(channels=3, height=8, width=8, value_min=-1.0, value_max=1.0, mean=(0.5, 0.25, 0.125), std=(0.5,)),
        7, max_batch_size=64, torch_threads=3, instances=2)
    config = _parse_model_config((entry / "config.pbtxt").read_text())
    assert config.backend == "python" and config.instance_group[0].kind == config.instance_group[0].KIND_CPU
    assert (config.name, config.platform, config.max_batch_size) == ("tiny-1", "", 64)
    assert [(g.kind, g.count) for g in config.instance_group] == [(config.instance_group[0].KIND_CPU, 2)]
    (inp,), (out,) = config.input, config.output
    assert (inp.name, inp.data_type, list(inp.dims)) == (
        triton_repository.INPUT_NAME, model_config_pb2.TYPE_UINT8, [3, 8, 8])
    assert (out.name, out.data_type, list(out.dims)) == (
        triton_repository.OUTPUT_NAME, model_config_pb2.TYPE_FP32, [7])
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert params == {
        "sys_path": json.dumps(triton_repository.environment_sys_path()),
        "model_format": "torchscript", "artifact_file": triton_repository.MODEL_FILE, "channels": "3",
        "num_classes": "7",
        # u8 -> -1 + u8 * 2/255, then (x - mean) / 0.5, folded into one map per channel
        "scale": json.dumps([2 / 255 / 0.5] * 3), "shift": json.dumps([(-1.0 - m) / 0.5 for m in (0.5, 0.25, 0.125)]),
        "torch_threads": "3", "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    # the entry's model.py is the adapter's module, byte for byte, and the model file a copy of the artifact
    assert (entry / "1" / "model.py").read_bytes() == triton_repository.PYTHON_MODEL.read_bytes()
    assert (entry / "1" / triton_repository.MODEL_FILE).read_bytes() == model.read_bytes()


def test_onnxruntime_entry_parses_and_normalises_uint8_like_the_python_backend(tmp_path):
    """The container Triton's ONNX entry: onnxruntime platform, KIND_CPU or KIND_GPU, the flow's tensor
    contract, and a uint8 prologue equal to the Python backend's mapping (run here with onnxruntime)."""
    import numpy as np
    import onnx
    import onnxruntime
    import torch
    from tritonclient.grpc import model_config_pb2

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(4 * 8 * 8, 7)).eval()
    source = tmp_path / "m.onnx"
    torch.onnx.export(module, (torch.rand(2, 3, 8, 8),), str(source), external_data=False,
                      dynamic_shapes=({0: torch.export.Dim("batch")},))
    spec = InputSpec(channels=3, height=8, width=8, value_min=-1.0, value_max=1.0, mean=(0.5, 0.25, 0.125),
                     std=(0.5,))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    for gpu, kind in ((False, model_config_pb2.ModelInstanceGroup.KIND_CPU),
                      (True, model_config_pb2.ModelInstanceGroup.KIND_GPU)):
        entry = triton_repository.write_onnxruntime_model(tmp_path / "repo", f"onnx-{gpu}", source, spec, 7,
                                                          max_batch_size=64, gpu=gpu, sha256=digest)
        config = _parse_model_config((entry / "config.pbtxt").read_text())
        assert (config.platform, config.backend, config.max_batch_size) == ("onnxruntime_onnx", "onnxruntime", 64)
        assert [g.kind for g in config.instance_group] == [kind]
        (inp,), (out,) = config.input, config.output
        assert (inp.name, inp.data_type, list(inp.dims)) == (
            triton_repository.INPUT_NAME, model_config_pb2.TYPE_UINT8, [3, 8, 8])
        assert (out.name, out.data_type, list(out.dims)) == (
            triton_repository.OUTPUT_NAME, model_config_pb2.TYPE_FP32, [7])
        assert sorted(p.name for p in (entry / "1").iterdir()) == ["model.onnx"]
    wrapped = onnx.load(str(entry / "1" / "model.onnx"))
    onnx.checker.check_model(wrapped, full_check=True)
    session = onnxruntime.InferenceSession(str(entry / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [(triton_repository.INPUT_NAME, "tensor(uint8)")]
    assert [o.name for o in session.get_outputs()] == [triton_repository.OUTPUT_NAME]
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 8, 8), dtype=np.uint8)
    # The Python backend's mapping, written out independently: [0, 255] -> [-1, 1], then (x - mean) / std.
    mean = np.array([0.5, 0.25, 0.125], dtype=np.float32).reshape(1, 3, 1, 1)
    x = ((-1.0 + images.astype(np.float32) / 255 * 2.0) - mean) / 0.5
    expected = module(torch.from_numpy(x.astype(np.float32))).detach().numpy()
    np.testing.assert_allclose(session.run(None, {"images": images})[0], expected, rtol=1e-5, atol=1e-5)
    # the digest is checked before anything is written
    with pytest.raises(InvalidArgument, match="expected " + "0" * 64):
        triton_repository.write_onnxruntime_model(tmp_path / "repo", "bad", source, spec, 7, sha256="0" * 64)
    assert not (tmp_path / "repo" / "bad").exists()


def test_the_worker_picks_the_onnx_backend_from_its_settings(compose, compose_vars):
    """deploy/shiftboard.env sends ONNX models to Triton's onnxruntime backend, the GPU override puts them
    on GPUs; the embedded stack's default keeps them in the Python backend (its tritonserver has no
    onnxruntime backend)."""
    from shiftboard.adapters.triton.deployer import ModelDeployer
    from shiftboard.v1 import shiftboard_pb2 as pb

    worker = Settings.from_env(service_env(compose, "worker", compose_vars))
    assert (worker.triton_onnx_backend, worker.triton_gpu) == ("onnxruntime", False)
    gpu_worker = yaml.safe_load(GPU_OVERRIDE.read_text())["services"]["worker"]["environment"]
    assert Settings.from_env({**service_env(compose, "worker", compose_vars), **gpu_worker}).triton_gpu
    onnx_model = pb.Model(metadata=pb.ModelMetadata(format=pb.MODEL_FORMAT_ONNX))
    export_model = pb.Model(metadata=pb.ModelMetadata(format=pb.MODEL_FORMAT_TORCH_EXPORT))
    assert ModelDeployer(worker)._entry_backend(onnx_model) == ("onnx", "onnxruntime")
    assert ModelDeployer(worker)._entry_backend(export_model) == ("torch-export", "python")
    assert Settings().triton_onnx_backend == "python"
    embedded = worker.replace(triton_onnx_backend=Settings().triton_onnx_backend)
    assert ModelDeployer(embedded)._entry_backend(onnx_model) == ("onnx", "python")


def test_libtorch_template_parses_with_gpu_instances_and_the_flow_contract():
    from tritonclient.grpc import model_config_pb2

    make_entry = load_module(DEPLOY / "triton" / "pytorch_libtorch" / "make_entry.py")
    config = _parse_model_config(make_entry.render_config("resnet18-v1", input_shape=(3, 224, 224),
                                                          num_classes=1000, instances=2))
    assert config.platform == "pytorch_libtorch"
    assert [(g.kind, g.count) for g in config.instance_group] == [(config.instance_group[0].KIND_GPU, 2)]
    (inp,), (out,) = config.input, config.output
    assert (inp.name, inp.data_type, list(inp.dims)) == (
        triton_repository.INPUT_NAME, model_config_pb2.TYPE_UINT8, [3, 224, 224])
    assert (out.name, out.data_type, list(out.dims)) == (
        triton_repository.OUTPUT_NAME, model_config_pb2.TYPE_FP32, [1000])
    assert (make_entry.INPUT_NAME, make_entry.OUTPUT_NAME, make_entry.MODEL_FILE) == (
        triton_repository.INPUT_NAME, triton_repository.OUTPUT_NAME, triton_repository.MODEL_FILE)


def test_libtorch_wrapper_normalises_uint8_like_the_python_backend(tmp_path):
    import torch

    from tests.helpers import Linear

    make_entry = load_module(DEPLOY / "triton" / "pytorch_libtorch" / "make_entry.py")
    torch.manual_seed(0)
    inner = torch.jit.script(Linear(3 * 4 * 4, 5))
    inner.save(str(tmp_path / "inner.pt"))
    images = torch.randint(0, 256, (6, 3, 4, 4), dtype=torch.uint8)
    low, high, mean, std = -1.0, 2.0, [0.1, 0.2, 0.3], [0.5]
    # The mapping of the Python backend's model.py, written out independently.
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    expected = inner(((low + images.float() / 255 * (high - low)) - mean_t) / std[0])

    wrapped = make_entry.wrap_uint8(inner, InputSpec(channels=3, height=4, width=4, value_min=low, value_max=high,
                                                     mean=tuple(mean), std=tuple(std)))
    torch.testing.assert_close(wrapped(images), expected, rtol=1e-5, atol=1e-5)

    rc = make_entry.main([str(tmp_path / "inner.pt"), "--name", "tiny", "--input-shape", "3,4,4",
                          "--num-classes", "5", f"--value-range={low},{high}", "--mean", "0.1,0.2,0.3",
                          "--std", "0.5", "--repository", str(tmp_path / "repo")])
    assert rc == 0
    loaded = torch.jit.load(str(tmp_path / "repo" / "tiny" / "1" / "model.pt"))
    torch.testing.assert_close(loaded(images), expected, rtol=1e-5, atol=1e-5)
    _parse_model_config((tmp_path / "repo" / "tiny" / "config.pbtxt").read_text())
    # a model whose output does not match --num-classes is refused
    assert make_entry.main([str(tmp_path / "inner.pt"), "--name", "bad", "--input-shape", "3,4,4",
                            "--num-classes", "6", "--repository", str(tmp_path / "repo")]) == 1


# ------------------------------------------------------------------------------------------ health


@pytest.fixture
def healthcheck() -> ModuleType:
    return load_module(DEPLOY / "healthcheck.py")


def test_healthcheck_grpc_against_a_real_health_servicer(healthcheck):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        target = f"127.0.0.1:{port}"
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert healthcheck.main(["grpc", target]) == 0
        servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert healthcheck.main(["grpc", target]) == 1
    finally:
        server.stop(None).wait()
    assert healthcheck.main(["grpc", target]) == 1  # nothing listens any more


def test_healthcheck_http_against_a_real_server(healthcheck):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            status = 200 if self.path == "/health" else 503
            body = b"ok\n"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert healthcheck.main(["http", base + "/health"]) == 0
        assert healthcheck.main(["http", base + "/health", "ok"]) == 0
        assert healthcheck.main(["http", base + "/health", "true"]) == 1
        assert healthcheck.main(["http", base + "/other"]) == 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert healthcheck.main(["http", base + "/health"]) == 1
    assert healthcheck.main(["nonsense"]) == 2


# ------------------------------------------------------------------------------------------ k8s


def test_kubernetes_sketch_is_consistent():
    docs = k8s_documents()
    kustomization = next(d for _, d in docs if d["kind"] == "Kustomization")
    for resource in kustomization["resources"]:
        assert (DEPLOY / "k8s" / resource).is_file(), resource
    config_maps = {d["metadata"]["name"] for _, d in docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: set(d["stringData"]) for _, d in docs if d["kind"] == "Secret"}
    workloads = {d["metadata"]["name"]: d for _, d in docs if d["kind"] in ("Deployment", "StatefulSet")}
    assert set(workloads) >= {"minio", "prefect", "gateway", "evaluator", "leaderboard"}
    # one writer of the catalog
    assert workloads["gateway"]["kind"] == "StatefulSet" and workloads["gateway"]["spec"]["replicas"] == 1
    for workload, pod, container in k8s_containers():
        assert pod.get("securityContext", {}).get("runAsNonRoot") is True, workload
        where = f"{workload}/{container['name']}"
        assert "readinessProbe" in container and "livenessProbe" in container, where
        for ref in container.get("envFrom", []):
            assert ref["configMapRef"]["name"] in config_maps
        for var in container.get("env", []):
            key_ref = var.get("valueFrom", {}).get("secretKeyRef")
            if key_ref:
                assert key_ref["key"] in secrets[key_ref["name"]], var["name"]
    # the settings a pod gets parse, with the secrets filled in
    settings_map = next(d for _, d in docs if d["kind"] == "ConfigMap")["data"]
    worker = next(c for w, _, c in k8s_containers() if c["name"] == "worker")
    env = {**settings_map, **{v["name"]: v.get("value", "secret") for v in worker["env"]}}
    settings = Settings.from_env(env)
    triton = next(c for _, _, c in k8s_containers() if c["name"] == "triton")
    grpc_port = next(a.split("=", 1)[1] for a in triton["args"] if a.startswith("--grpc-port="))
    # the worker reaches the Triton container of its own pod on the port that container serves
    assert settings.triton_target == f"localhost:{grpc_port}" and settings.object_store == "external"


def test_containers_run_submitted_models_sandboxed(compose):
    """The Triton image replaces the Python-backend stub with the sandbox wrapper, and the services that
    run submitted code (Triton's instances, the gateway's probe) may create the sandbox's namespaces."""
    dockerfile = (DEPLOY / "triton" / "Dockerfile").read_text()
    assert "COPY --chmod=0644 shiftboard/sandbox/enter.py /opt/shiftboard/sandbox/enter.py" in dockerfile
    assert 'mv "$stub" "$stub.sandboxed"' in dockerfile
    assert "enter.py --policy-file /opt/shiftboard/sandbox/stub-policy.json --triton-stub --" in dockerfile
    assert (ROOT / "shiftboard" / "sandbox" / "enter.py").is_file()
    # The policy the image writes is one the launcher accepts: every field of SandboxPolicy, no other.
    from shiftboard.sandbox import SandboxPolicy

    fields = set(re.findall(r"'(\w+)': ", dockerfile.split("json.dump(", 1)[1].split("open(", 1)[0]))
    top_level = {f.name for f in dataclasses.fields(SandboxPolicy)}
    assert top_level <= fields and fields - top_level <= {"HOME", "TMPDIR"}
    for service in ("triton", "gateway"):
        assert "seccomp:unconfined" in compose["services"][service].get("security_opt", []), service
