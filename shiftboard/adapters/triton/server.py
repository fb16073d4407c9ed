"""The embedded Triton Inference Server: ``tritonserver`` from the ``nvidia-pytriton`` wheel, on CPU.

The wheel ships the server binary, its shared libraries (``nvidia_pytriton.libs``), the Python
backend and one backend stub per Python version. Like PyTriton, we prepare a backend directory in
the state dir holding ``backends/python`` with the stub for the running Python next to
``libtriton_python.so`` (behind a wrapper that enters the sandbox, unless it is off), and start the
server with explicit model control: models are loaded and unloaded by the deployment code through
the gRPC API, gRPC only, every protocol restricted to callers with the key.

Facts this relies on (checked with the tritonserver of nvidia-pytriton): the stub links
``libpython3.X.so``, so the running
interpreter's ``LIBDIR`` goes first on ``LD_LIBRARY_PATH`` (else a system libpython of another
patch level can be picked up and crash on import); the stub ignores ``PYTHONPATH``, which the
entries' ``model.py`` (:mod:`shiftboard.adapters.triton.python_model`) works around.

:mod:`shiftboard.services.stack.triton` runs this server as a service of the embedded stack.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import sysconfig
from importlib.util import find_spec
from pathlib import Path

from shiftboard import credentials, sandbox
from shiftboard.adapters.triton.client import KEY_HEADER
from shiftboard.domain.errors import FailedPrecondition
from shiftboard.settings import Settings, env_name

log = logging.getLogger(__name__)

# Shared memory between the server and each Python-backend stub: start small, grow in steps.
SHM_DEFAULT_BYTES = 4 * 1024 * 1024
SHM_GROWTH_BYTES = 4 * 1024 * 1024


def pytriton_root() -> Path:
    """The installed ``pytriton`` package directory (located without importing it)."""
    spec = find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise FailedPrecondition("Triton is not installed: pip install nvidia-pytriton")
    return Path(next(iter(spec.submodule_search_locations)))


def triton_dist_dir() -> Path:
    return pytriton_root() / "tritonserver"


def tritonserver_binary() -> Path:
    """The server binary of the wheel (``FailedPrecondition`` when the wheel is missing)."""
    return triton_dist_dir() / "bin" / "tritonserver"


def triton_library_dirs() -> list[str]:
    """``LD_LIBRARY_PATH`` entries: the interpreter's LIBDIR first, then the wheel's own libraries."""
    dirs = []
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        dirs.append(str(libdir))
    root = pytriton_root()
    for candidate in (root.parent / "nvidia_pytriton.libs", root / "tritonserver" / "external_libs"):
        if candidate.is_dir():
            dirs.append(str(candidate))
    return dirs


def backend_dir(settings: Settings) -> Path:
    return settings.state_path / "triton" / "backends"


def _copy_if_changed(src: Path, dst: Path) -> None:
    if dst.exists():
        have, want = dst.stat(), src.stat()
        if have.st_size == want.st_size and have.st_mtime >= want.st_mtime:
            return
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copy2(src, tmp)
    os.replace(tmp, dst)  # a running server keeps the old inode


def prepare_backends(settings: Settings) -> Path:
    """Lay out ``<state>/triton/backends/python`` with the stub for this Python; return ``backends``."""
    dist = triton_dist_dir()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise FailedPrecondition(f"the nvidia-pytriton wheel has no Python backend stub for Python {version}")
    target = backend_dir(settings) / "python"
    target.mkdir(parents=True, exist_ok=True)
    for item in (dist / "backends" / "python").iterdir():
        if item.is_file():
            _copy_if_changed(item, target / item.name)
    if sandbox.active(settings):
        _copy_if_changed(stub, target / SANDBOXED_STUB)
        os.chmod(target / SANDBOXED_STUB, 0o755)
        _install_stub_wrapper(settings, target)
    else:
        log.warning("%s=off: Triton's model instances run submitted models with the server's rights",
                    env_name("sandbox"))
        _copy_if_changed(stub, target / "triton_python_backend_stub")
        os.chmod(target / "triton_python_backend_stub", 0o755)
    return backend_dir(settings)


#: The real Python-backend stub, exec'd by the wrapper Triton runs as ``triton_python_backend_stub``.
SANDBOXED_STUB = "triton_python_backend_stub.sandboxed"
STUB_POLICY = "sandbox.json"


def stub_policy(settings: Settings) -> sandbox.SandboxPolicy:
    """The sandbox of every model instance: the state directory, repository and catalog hidden (the
    launcher binds back the instance's own entry and the backend directory), private /tmp, no network."""
    hide = (str(settings.state_path), str(settings.triton_repository), str(settings.catalog_file))
    return sandbox.SandboxPolicy(hide=hide, read=sandbox.runtime_paths(), memory_bytes=settings.sandbox_memory_bytes,
                                 cpu_seconds=settings.sandbox_triton_cpu_seconds,
                                 env={"HOME": "/tmp", "TMPDIR": "/tmp"},
                                 model_repository=str(settings.triton_repository))


def _install_stub_wrapper(settings: Settings, target: Path) -> None:
    """Put a wrapper where Triton looks for the stub: it execs the real stub inside the sandbox."""
    policy = target / STUB_POLICY
    tmp = policy.with_name(policy.name + ".tmp")
    tmp.write_text(stub_policy(settings).to_json())
    os.replace(tmp, policy)
    script = "#!/bin/sh\n# Triton's Python-backend stub, run inside the shiftboard sandbox.\nexec " + " ".join(
        shlex.quote(part) for part in (sys.executable, "-I", str(sandbox.ENTER), "--policy-file", str(policy),
                                       "--triton-stub", "--", str(target / SANDBOXED_STUB))) + ' "$@"\n'
    wrapper = target / "triton_python_backend_stub"
    tmp = wrapper.with_name(wrapper.name + ".tmp")
    tmp.write_text(script)
    os.chmod(tmp, 0o755)
    os.replace(tmp, wrapper)


#: Every gRPC protocol Triton can restrict: all of them need the key.
RESTRICTED_PROTOCOLS = ("health", "metadata", "inference", "shared-memory", "model-config",
                        "model-repository", "statistics", "trace", "logging")


def restricted_protocol_flag(key: str) -> str:
    """``--grpc-restricted-protocol``: every protocol needs the header ``KEY_HEADER: key``."""
    return f"--grpc-restricted-protocol={','.join(RESTRICTED_PROTOCOLS)}:{KEY_HEADER}={key}"


def triton_command(settings: Settings, key: str | None = None,
                   tls: credentials.TlsFiles | None = None) -> list[str]:
    """The ``tritonserver`` command line for the stack's ports, repository and backend directory.

    gRPC only (HTTP and metrics off), every protocol restricted to callers with ``key``, and with
    ``tls`` mutual TLS: the key is on the command line, which every local user can read, so on a
    shared machine the certificates (files only the stack's user can read) are what keeps others out.
    """
    host = settings.host or "0.0.0.0"
    python_config = [
        # unique per server, so two Triton instances on one machine keep their /dev/shm apart
        f"shm-region-prefix-name=shiftboard{settings.triton_grpc_port}_",
        f"shm-default-byte-size={SHM_DEFAULT_BYTES}",
        f"shm-growth-byte-size={SHM_GROWTH_BYTES}",
    ]
    tls_flags = [] if tls is None else [
        "--grpc-use-ssl-mutual=true", f"--grpc-server-cert={tls.cert}", f"--grpc-server-key={tls.key}",
        f"--grpc-root-cert={tls.ca}"]
    return [
        str(tritonserver_binary()),
        f"--model-repository={settings.triton_repository}",
        "--model-control-mode=explicit",
        f"--backend-directory={backend_dir(settings)}",
        f"--cache-directory={triton_dist_dir() / 'caches'}",
        "--allow-http=false", "--allow-metrics=false", "--allow-gpu-metrics=false",
        f"--grpc-address={host}", f"--grpc-port={settings.triton_grpc_port}",
        restricted_protocol_flag(key or ""), *tls_flags,
        "--exit-on-error=false",  # a model that fails to load must not take the server down
        # every config.pbtxt is complete: no extra backend stub per load just to ask model.py for a config
        "--disable-auto-complete-config",
        "--exit-timeout-secs=10",  # in-flight requests get 10 s after SIGTERM
        "--log-verbose=0",
        *(f"--backend-config=python,{item}" for item in python_config),
    ]


#: Prefixes of variables that may hold secrets; Triton and its model stubs get none of them.
SECRET_ENV_PREFIXES = ("SHIFTBOARD_", "PREFECT_", "AWS_", "MINIO_", "WEED_", "S3_")


def triton_env(base_env: dict[str, str]) -> dict[str, str]:
    """The server's environment: library path as above; the venv's ``bin`` first on PATH like PyTriton.

    Every setting and credential is dropped: submitted models run in Triton's backend stubs, which
    inherit this environment.
    """
    env = {k: v for k, v in base_env.items() if not k.upper().startswith(SECRET_ENV_PREFIXES)}
    dirs = triton_library_dirs()
    if env.get("LD_LIBRARY_PATH"):
        dirs.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(dirs)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    return env
