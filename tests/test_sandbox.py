"""The sandbox of submitted models, against hostile TorchScript and real processes (no mocks).

Each hostile model tries what a submitted model once did: read ``<state>/secrets/admin-token`` and
raise it as its error, write files outside its scratch directory, allocate more memory than its
limit, burn CPU. In the probe they are refused by the operator check, and with the check bypassed
(``inspect=False``) stopped or contained by the operating system; in a real tritonserver (entries
written directly, past the gateway's check) they fail without the secret, and a normal model still
serves. The secret never appears in an error, a log or a prediction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from shiftboard import credentials
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument
from shiftboard.domain.manifests import InputSpec
from shiftboard.sandbox import SandboxPolicy, capabilities, redact, require, sanitize, secret_values, wrap
from shiftboard.sandbox.enter import seccomp_program
from shiftboard.services.gateway.probe import probe
from shiftboard.settings import Settings
from tests.helpers import free_settings, start_service

TOKEN_NAME = "admin-token"


@pytest.fixture
def state(tmp_path: Path) -> tuple[Settings, str]:
    """A state directory with a random admin token in ``secrets/`` (mode 0600, as generated)."""
    settings = Settings(state_dir=str(tmp_path / "state"), sandbox_memory_bytes=1 << 30, sandbox_cpu_seconds=4)
    settings.secrets_dir.mkdir(parents=True, mode=0o700)
    token = "tok-" + secrets.token_hex(16)
    (settings.secrets_dir / TOKEN_NAME).write_text(token)
    os.chmod(settings.secrets_dir / TOKEN_NAME, 0o600)
    return settings, token


def script(module: torch.nn.Module, path: Path) -> Path:
    torch.jit.save(torch.jit.script(module), str(path))  # torch 2.13 warns: TorchScript is deprecated
    return path


class ReadsFile(torch.nn.Module):
    """Reads ``path`` with torch.from_file and raises its bytes as the error."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        data = torch.from_file(self.path, shared=False, size=36, dtype=torch.uint8)
        text = ""
        for i in range(data.numel()):
            text += chr(int(data[i].item()))
        raise RuntimeError("stolen: " + text)


class EncodesFile(torch.nn.Module):
    """Reads ``path`` and returns its bytes as logits (the top-1 predictions would spell it)."""

    def __init__(self, path: str, classes: int = 10) -> None:
        super().__init__()
        self.path = path
        self.classes = classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        data = torch.from_file(self.path, shared=False, size=self.classes, dtype=torch.uint8)
        return data.to(torch.float32).unsqueeze(0).repeat(x.shape[0], 1)


class WritesFile(torch.nn.Module):
    """Creates ``path`` (torch.from_file with shared=True creates and maps it), then answers normally."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        data = torch.from_file(self.path, shared=True, size=16, dtype=torch.uint8)
        data.fill_(65)
        return x.flatten(1)[:, :10] + data[0].to(torch.float32) * 0


class AllocatesMemory(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        big = torch.ones([3 * 1024 * 1024 * 1024], dtype=torch.uint8)
        return x.flatten(1)[:, :10] + big[0].to(torch.float32)


class BurnsCpu(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for _ in range(1000000000):
            y = y * 1.0000001
        return y.flatten(1)[:, :10]


class Plain(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :10] * 2.0


def run_probe(settings: Settings, path: Path, *, inspect: bool = True) -> None:
    probe(path, channels=1, height=4, width=4, num_classes=10, settings=settings, inspect=inspect,
          timeout_s=60)


# ------------------------------------------------------------------------------ launcher


def sandboxed(cmd: list[str], policy: SandboxPolicy) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` under ``policy``; like the platform's own policies, it also reads the interpreter and
    its packages when they live under a private root (a checkout or virtual environment in /tmp)."""
    from shiftboard.sandbox import runtime_paths

    policy = dataclasses.replace(policy, read=(*policy.read, *runtime_paths()))
    return subprocess.run(wrap(cmd, policy), capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "SHIFTBOARD_ADMIN_TOKEN": "env-secret-123456"})


def test_every_mechanism_works_here() -> None:
    caps = capabilities()
    assert caps.complete, caps.describe()
    assert require(Settings(sandbox="required")) is caps


def test_a_missing_mechanism_refuses_to_start_unless_opted_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from shiftboard.sandbox import policy as policy_module

    broken = policy_module.Capabilities({**capabilities().results, "seccomp": "EINVAL"})
    monkeypatch.setattr(policy_module, "capabilities", lambda: broken)
    with pytest.raises(FailedPrecondition, match=r"seccomp: EINVAL.*SHIFTBOARD_SANDBOX=best-effort"):
        policy_module.require(Settings(sandbox="required"))
    assert policy_module.require(Settings(sandbox="best-effort")) is broken
    healthy, text = policy_module.status_line(Settings(sandbox="required"))
    assert not healthy and "refusing to start" in text and "seccomp" in text
    healthy, text = policy_module.status_line(Settings(sandbox="off"))
    assert not healthy and "OFF" in text


def test_gateway_and_status_report_a_missing_mechanism(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from shiftboard.sandbox import policy as policy_module
    from shiftboard.services.gateway.server import serve
    from shiftboard.services.stack import control

    assert control.sandbox_status(Settings(state_dir=str(tmp_path))).healthy
    broken = policy_module.Capabilities({**capabilities().results, "namespaces": "unshare: EPERM"})
    monkeypatch.setattr(policy_module, "capabilities", lambda: broken)
    settings = Settings(state_dir=str(tmp_path))
    with pytest.raises(FailedPrecondition, match="namespaces: unshare: EPERM"):
        serve(settings)  # before opening anything
    assert not settings.catalog_file.exists()
    row = control.sandbox_status(settings)
    assert not row.healthy and "namespaces" in row.detail


def test_launcher_hides_state_confines_writes_and_cuts_the_network(state: tuple[Settings, str],
                                                                  tmp_path: Path) -> None:
    settings, token = state
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    kept = settings.state_path / "models" / "mine"
    kept.mkdir(parents=True)
    (kept / "weights").write_text("w")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    code = f"""
import os, socket, json
out = {{}}
def attempt(name, fn):
    try:
        fn(); out[name] = "ok"
    except OSError as exc:
        out[name] = exc.__class__.__name__
attempt("read_secret", lambda: open({str(settings.secrets_dir / TOKEN_NAME)!r}).read())
attempt("read_kept", lambda: open({str(kept / "weights")!r}).read())
attempt("write_kept", lambda: open({str(kept / "new")!r}, "w").close())
attempt("write_scratch", lambda: open({str(scratch / "new")!r}, "w").close())
attempt("write_project", lambda: open({str(Path.cwd() / "sandbox-probe")!r}, "w").close())
attempt("connect", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
attempt("unix_socket", lambda: socket.socket(socket.AF_UNIX).close())
out["env"] = sorted(k for k in os.environ if "SHIFTBOARD" in k)
out["uid"] = os.getuid()
out["status"] = {{line.split(":")[0]: line.split(":")[1].strip() for line in open("/proc/self/status")
                 if line.startswith(("CapEff", "CapBnd", "NoNewPrivs", "Seccomp:"))}}
out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps(out))
"""
    policy = SandboxPolicy(hide=(str(settings.state_path),), read=(str(kept),), write=(str(scratch),))
    proc = sandboxed([sys.executable, "-I", "-c", code], policy)
    listener.close()
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["read_secret"] == "FileNotFoundError" and out["read_kept"] == "ok"
    assert out["write_kept"] == "OSError" and out["write_project"] == "OSError"  # EROFS
    assert out["write_scratch"] == "ok" and (scratch / "new").exists()
    assert out["connect"] in ("OSError", "PermissionError", "ConnectionRefusedError")
    assert out["unix_socket"] == "ok"
    assert out["env"] == []
    assert out["status"] == {"CapEff": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1",
                             "Seccomp": "2"}
    if os.getuid() == 0:  # a fresh /proc lists only what the sandbox may ptrace: its own processes
        assert os.getpid() not in out["pids"] and 1 not in out["pids"]
    assert not (Path.cwd() / "sandbox-probe").exists()
    assert token not in proc.stdout + proc.stderr


def test_a_program_under_tmp_runs_when_bound_back(tmp_path: Path) -> None:
    """A checkout or a virtual environment in /tmp (a CI clone) stays usable under the private /tmp:
    what the policy reads is bound back into it, read-only; nothing else of the host's /tmp is."""
    assert str(tmp_path).startswith("/tmp/")  # pytest's base temporary directory
    program = tmp_path / "env" / "program.py"
    program.parent.mkdir()
    program.write_text("import os, sys\nprint(sorted(os.listdir(sys.argv[1])))\n")
    (tmp_path / "neighbour").write_text("not for the sandbox")
    policy = SandboxPolicy(read=(str(program.parent),))
    proc = sandboxed([sys.executable, "-I", str(program), str(tmp_path)], policy)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['env']"  # the bound-back directory, not the neighbour
    hidden = sandboxed([sys.executable, "-I", str(program), str(tmp_path)], SandboxPolicy())
    # not listed in the policy: the private /tmp does not have it (the interpreter itself still runs)
    assert hidden.returncode == 2 and "No such file" in hidden.stderr, hidden.stderr


def test_runtime_paths_bind_back_an_environment_under_private_roots() -> None:
    from shiftboard.sandbox import runtime_paths
    from shiftboard.sandbox.policy import PRIVATE_ROOTS

    paths = runtime_paths()
    assert all(any(p == r or p.startswith(r + "/") for r in PRIVATE_ROOTS) for p in paths)
    root = str(Path(__file__).resolve().parents[1])
    if any(root.startswith(r + "/") for r in PRIVATE_ROOTS):  # this checkout lives in /tmp (a CI clone)
        assert any(root == p or root.startswith(p + "/") for p in paths)


def test_launcher_limits_cpu_and_memory() -> None:
    spin = sandboxed([sys.executable, "-I", "-c", "while True: pass"], SandboxPolicy(cpu_seconds=1))
    assert spin.returncode in (-24, -9)  # SIGXCPU, then SIGKILL
    alloc = sandboxed([sys.executable, "-I", "-c", "b = bytearray(2 << 30)"],
                      SandboxPolicy(memory_bytes=512 << 20))
    assert alloc.returncode == 1 and "MemoryError" in alloc.stderr


def test_launcher_fails_closed_with_one_line() -> None:
    proc = subprocess.run([sys.executable, "-I", str(Path(wrap([], SandboxPolicy())[2])), "--policy", "{",
                           "--", "true"], capture_output=True, text=True, check=False)
    assert proc.returncode == 126 and proc.stderr.startswith("sandbox: ")


def test_seccomp_program_is_well_formed() -> None:
    for arch in ("x86_64", "aarch64"):
        program = seccomp_program(arch)
        assert len(program) % 8 == 0 and 0 < len(program) // 8 < 4096


# ------------------------------------------------------------------------------ text


def test_sanitize_keeps_one_short_printable_line_without_secrets() -> None:
    secret = "s3cr3t-value-42"
    text = "Traceback (most recent call last):\n  ...\nRuntimeError: boom \x1b[31m" + secret + "\x00" + "x" * 500
    line = sanitize(text, [secret])
    assert secret not in line and "[redacted]" in line and "\n" not in line and len(line) <= 200
    assert all(32 <= ord(c) < 127 for c in line)
    assert redact("a short b", ["short"]) == "a short b"  # under 8 characters: not a secret


def test_secret_values_cover_settings_and_secret_files(state: tuple[Settings, str]) -> None:
    settings, token = state
    (settings.secrets_dir / "s3.json").write_text(json.dumps({"access_key": "AKIA12345678", "secret_key": "sk-9" * 4}))
    values = secret_values(settings.replace(admin_token="from-settings-1234"))
    assert {token, "AKIA12345678", "sk-9" * 4, "from-settings-1234"} <= set(values)


# ------------------------------------------------------------------------------ probe


def test_probe_refuses_file_operators_by_name(state: tuple[Settings, str], tmp_path: Path) -> None:
    settings, token = state
    path = script(ReadsFile(str(settings.secrets_dir / TOKEN_NAME)), tmp_path / "reads.pt")
    with pytest.raises(InvalidArgument, match="aten::from_file, which reads and maps files on the server"):
        run_probe(settings, path)


def test_probe_os_layer_stops_a_secret_read(state: tuple[Settings, str], tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture,
                                            capfd: pytest.CaptureFixture[str]) -> None:
    settings, token = state
    secret = str(settings.secrets_dir / TOKEN_NAME)
    for module in (ReadsFile(secret), EncodesFile(secret)):
        path = script(module, tmp_path / "m.pt")
        with pytest.raises(InvalidArgument) as info:
            run_probe(settings, path, inspect=False)
        assert "No such file" in info.value.message and token not in info.value.message
    captured = capfd.readouterr()
    assert token not in caplog.text + captured.out + captured.err


def test_probe_off_still_redacts_what_the_model_says(state: tuple[Settings, str], tmp_path: Path) -> None:
    settings, token = state
    path = script(ReadsFile(str(settings.secrets_dir / TOKEN_NAME)), tmp_path / "reads.pt")
    with pytest.raises(InvalidArgument) as info:
        run_probe(settings.replace(sandbox="off"), path, inspect=False)
    assert "stolen: [redacted]" in info.value.message and token not in info.value.message


def test_probe_contains_file_writes(state: tuple[Settings, str], tmp_path: Path) -> None:
    settings, _ = state
    inside_state = settings.state_path / "pwned"
    with pytest.raises(InvalidArgument, match="aten::from_file"):
        run_probe(settings, script(WritesFile(str(inside_state)), tmp_path / "w.pt"))
    with pytest.raises(InvalidArgument, match="unable to open shared memory|Read-only file system"):
        run_probe(settings, script(WritesFile(str(inside_state)), tmp_path / "w.pt"), inspect=False)
    outside = tmp_path / "outside" / "pwned"
    outside.parent.mkdir()
    with contextlib.suppress(InvalidArgument):  # the directory is not in the sandbox's private /tmp
        run_probe(settings, script(WritesFile(str(outside)), tmp_path / "w2.pt"), inspect=False)
    assert not inside_state.exists() and not outside.exists()


def test_probe_memory_and_cpu_limits_give_clear_errors(state: tuple[Settings, str], tmp_path: Path) -> None:
    settings, _ = state
    with pytest.raises(InvalidArgument, match="ran out of its memory limit of 1.00 GiB"):
        run_probe(settings, script(AllocatesMemory(), tmp_path / "mem.pt"))
    start = time.monotonic()
    with pytest.raises(InvalidArgument, match="more than its CPU-time limit of 4 s"):
        run_probe(settings, script(BurnsCpu(), tmp_path / "cpu.pt"))
    assert time.monotonic() - start < 30


def test_probe_passes_a_plain_model_in_the_sandbox(state: tuple[Settings, str], tmp_path: Path) -> None:
    settings, _ = state
    run_probe(settings, script(Plain(), tmp_path / "plain.pt"))


# ------------------------------------------------------------------------------ Triton


@pytest.fixture(scope="module")
def sandboxed_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    """A tritonserver on free ports whose model instances run in the sandbox; a token in its state."""
    from shiftboard.services.stack.triton import triton_spec

    state = tmp_path_factory.mktemp("sandboxed-triton")
    settings = free_settings(state, sandbox_memory_bytes=1 << 30)
    token = credentials.admin_token(settings, create=True)
    assert token
    with start_service(triton_spec(settings, dict(os.environ)), state / "triton.log"):
        yield settings, token


def _client(settings: Settings):  # type: ignore[no-untyped-def]
    from shiftboard.adapters.triton.client import TritonAuth, connect

    return connect(settings.triton_target, TritonAuth.from_settings(settings))


def _deploy_and_infer(settings: Settings, name: str, module: torch.nn.Module, tmp_path: Path) -> tuple[str, object]:
    """Write the entry directly (no probe), load, infer one batch: ('ok', logits) or ('error', message)."""
    import tritonclient.grpc as triton_grpc

    from shiftboard.adapters.triton.client import TritonError
    from shiftboard.adapters.triton.repository import write_python_backend_model

    write_python_backend_model(settings.triton_repository, name, script(module, tmp_path / f"{name}.pt"),
                               InputSpec(channels=1, height=4, width=4), 10)
    client = _client(settings)
    try:
        try:
            client.load_model(name)
        except TritonError as exc:
            return "error", exc.message()
        images = triton_grpc.InferInput("images", [2, 1, 4, 4], "UINT8")
        images.set_data_from_numpy(np.full((2, 1, 4, 4), 255, np.uint8))
        try:
            reply = client.infer(name, [images], client_timeout=60)
        except TritonError as exc:
            return "error", exc.message()
        return "ok", reply.as_numpy("logits")
    finally:
        client.close()


@pytest.mark.stack
def test_triton_instances_cannot_read_secrets_or_other_models(sandboxed_triton: tuple[Settings, str],
                                                              tmp_path: Path) -> None:
    settings, token = sandboxed_triton
    start = time.monotonic()
    kind, logits = _deploy_and_infer(settings, "plain", Plain(), tmp_path)
    load_s = time.monotonic() - start
    assert kind == "ok" and np.allclose(logits, 2.0), logits  # type: ignore[arg-type]
    print(f"sandboxed Triton: load + first inference of a plain model {load_s:.2f} s")
    secret = str(settings.secrets_dir / TOKEN_NAME)
    other = str(settings.triton_repository / "plain" / "1" / "model.pt")
    for name, module in (("reads", ReadsFile(secret)), ("encodes", EncodesFile(secret)),
                         ("steals", ReadsFile(other))):
        kind, result = _deploy_and_infer(settings, name, module, tmp_path)
        assert kind == "error" and "No such file" in str(result), result
        assert token not in str(result)
    log = (settings.state_path / "triton.log").read_text(errors="replace")
    assert token not in log


@pytest.mark.stack
def test_triton_instances_cannot_write_outside_scratch(sandboxed_triton: tuple[Settings, str],
                                                       tmp_path: Path) -> None:
    settings, _ = sandboxed_triton
    inside_state = settings.state_path / "pwned"
    kind, result = _deploy_and_infer(settings, "writes-state", WritesFile(str(inside_state)), tmp_path)
    assert kind == "error", result
    outside = tmp_path / "pwned"
    _deploy_and_infer(settings, "writes-tmp", WritesFile(str(outside)), tmp_path)  # lands in a private /tmp
    entry = settings.triton_repository / "writes-tmp" / "1" / "pwned"
    assert not inside_state.exists() and not outside.exists() and not entry.exists()


@pytest.mark.stack
def test_triton_refuses_an_artifact_that_does_not_match_its_sha256(sandboxed_triton: tuple[Settings, str],
                                                                   tmp_path: Path) -> None:
    from shiftboard.adapters.triton.client import TritonError
    from shiftboard.adapters.triton.repository import write_python_backend_model

    settings, _ = sandboxed_triton
    entry = write_python_backend_model(settings.triton_repository, "tampered",
                                       script(Plain(), tmp_path / "t.pt"), InputSpec(channels=1, height=4, width=4), 10)
    script(EncodesFile("/etc/hostname"), entry / "1" / "model.pt")
    client = _client(settings)
    try:
        with pytest.raises(TritonError, match="does not match its sha256"):
            client.load_model("tampered")
    finally:
        client.close()


@pytest.mark.stack
def test_triton_instances_hit_their_memory_limit(sandboxed_triton: tuple[Settings, str], tmp_path: Path) -> None:
    settings, _ = sandboxed_triton
    kind, result = _deploy_and_infer(settings, "allocates", AllocatesMemory(), tmp_path)
    assert kind == "error" and "can't allocate memory" in str(result), result


@pytest.mark.stack
def test_deploy_refuses_an_artifact_whose_sha256_differs(object_store: Settings, tmp_path: Path) -> None:
    from shiftboard.adapters.s3 import ObjectStore
    from shiftboard.adapters.triton.client import ModelFailed
    from shiftboard.adapters.triton.deployer import ModelDeployer, triton_model_name
    from shiftboard.v1 import shiftboard_pb2 as pb

    settings = object_store.replace(state_dir=str(tmp_path / "state"), s3_bucket="sandbox-tests", triton_tls=False)
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    store.put_bytes("models/swapped/1/model.pt", script(Plain(), tmp_path / "p.pt").read_bytes())
    model = pb.Model(metadata=pb.ModelMetadata(name="swapped", version="1", format=pb.MODEL_FORMAT_TORCHSCRIPT,
                                               num_classes=10, input=pb.InputSpec(channels=1, height=4, width=4)),
                     sha256="0" * 64, artifact_uri=f"s3://{store.bucket}/models/swapped/1/model.pt")
    with pytest.raises(ModelFailed, match="does not match the catalog's 0000"):
        ModelDeployer(settings, store=store).acquire(model)
    assert not (settings.triton_repository / triton_model_name("swapped", "1", "0" * 64)).exists()
