"""Settings: the only module that reads the environment.

Every setting has an environment variable ``SHIFTBOARD_<NAME>`` (upper case), a default and a
description. Settings are built once at an entry point (``Settings.from_env()``) and passed down;
``shiftboard config`` prints the effective values with secrets masked. ``deploy/.env.example`` lists
every variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "SHIFTBOARD_"


def _setting(default: Any, description: str, *, secret: bool = False) -> Any:
    return field(default=default, metadata={"description": description, "secret": secret})


def _default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "shiftboard")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Effective configuration of a shiftboard process (stack, gateway, CLI, flows, leaderboard)."""

    state_dir: str = _setting(
        "", "Directory holding all local state: data, logs, pids, generated secrets. "
        "Default: $XDG_STATE_HOME/shiftboard (~/.local/state/shiftboard)."
    )
    host: str = _setting("127.0.0.1", "Address the embedded services bind to.")

    # gateway
    gateway_port: int = _setting(50051, "gRPC port of the gateway.")
    gateway_address: str = _setting(
        "", "host:port clients use to reach the gateway. Default: <host>:<gateway_port>."
    )
    gateway_workers: int = _setting(16, "Threads serving gRPC calls in the gateway.")
    catalog_memory_mb: int = _setting(1024, "Memory the gateway's DuckDB catalog may use for its block cache and "
                                      "queries, MiB (beyond it DuckDB evicts blocks and spills to disk); 0: "
                                      "DuckDB's default, 80% of the machine's memory.")
    open_reads: bool = _setting(True, "Allow read-only RPCs without a token.")
    token: str = _setting("", "API token the CLI sends (authorization: Bearer ...). "
                          "Default: the admin token in the state directory, when readable.", secret=True)
    admin_token: str = _setting("", "Admin token of the gateway. Default: generated at first start "
                                "and kept in <state_dir>/secrets/admin-token.", secret=True)
    evaluator_token: str = _setting("", "Evaluator token: the gateway registers it with the evaluator role and "
                                    "the worker sends it. Default: generated at first start and kept in "
                                    "<state_dir>/secrets/evaluator-token.", secret=True)
    max_streams: int = _setting(0, "Streaming calls (WatchEvaluations, GetPredictions) the gateway serves at "
                                "once, below gateway_workers so unary calls always get a thread. "
                                "Default: half the gateway workers.")
    max_streams_per_caller: int = _setting(4, "Streaming calls one caller (token, or address when anonymous) "
                                           "may hold open at once.")
    catalog_path: str = _setting("", "DuckDB catalog file. Default: <state_dir>/catalog.duckdb.")
    max_model_bytes: int = _setting(512 * 1024 * 1024, "Largest model artifact accepted, in bytes.")
    probe_timeout_s: float = _setting(120.0, "Seconds a submitted model may take to load and run a probe batch.")
    sandbox: str = _setting(
        "required", "Operating-system sandbox of every process running a submitted model (the probe, "
        "Triton's model instances): required (refuse to start when the kernel lacks a mechanism; "
        "`shiftboard status` lists them), best-effort (use what works), or off (models run with the "
        "server's rights)."
    )
    sandbox_memory_bytes: int = _setting(
        2 * 1024 ** 3, "Data-segment limit (RLIMIT_DATA) of the probe and of each Triton model instance, in bytes."
    )
    sandbox_cpu_seconds: int = _setting(60, "CPU seconds the probe of a submitted model may use.")
    sandbox_triton_cpu_seconds: int = _setting(
        6 * 3600, "CPU seconds one Triton model instance may use over its life (it is then killed; "
        "Triton reports its requests failed). 0: no limit."
    )

    # object storage
    object_store: str = _setting(
        "auto", "Embedded object store: auto (minio when on PATH, else seaweedfs), minio, seaweedfs, "
        "or external (use s3_endpoint and the given credentials, start nothing)."
    )
    s3_port: int = _setting(9000, "S3 port of the embedded object store.")
    s3_endpoint: str = _setting("", "host:port of the S3 API. Default: <host>:<s3_port>.")
    s3_public_endpoint: str = _setting(
        "", "host:port of the S3 API as clients see it (presigned upload URLs). Default: s3_endpoint."
    )
    s3_secure: bool = _setting(False, "Use https for the S3 API.")
    s3_region: str = _setting("us-east-1", "S3 region used to sign requests.")
    s3_bucket: str = _setting("shiftboard", "Bucket holding models and test-set shards.")
    s3_access_key: str = _setting("", "S3 access key. Default: generated at first start, "
                                  "kept in <state_dir>/secrets/s3.json.", secret=True)
    s3_secret_key: str = _setting("", "S3 secret key. Default: generated with the access key.", secret=True)
    upload_url_ttl_s: int = _setting(3600, "Lifetime of presigned shard-upload URLs, in seconds.")
    s3_internal_port: int = _setting(
        0, "First internal port of the embedded object store: SeaweedFS master, volume and filer listen "
        "on it, +1 and +2 (their gRPC ports, and the S3 gRPC port, are 10000 higher); the MinIO "
        "console listens on it. Default: s3_port + 1."
    )

    # triton
    triton_http_port: int = _setting(8000, "HTTP port of the embedded tritonserver (unused: the stack runs "
                                     "Triton with HTTP off, gRPC only).")
    triton_grpc_port: int = _setting(8001, "gRPC port of the embedded tritonserver.")
    triton_metrics_port: int = _setting(8002, "Metrics port of the embedded tritonserver (unused: the stack "
                                        "runs Triton with metrics off).")
    triton_api_key: str = _setting(
        "", "Key Triton requires on every gRPC call (header triton-grpc-protocol-shiftboard-triton-key). "
        "Default: generated at first start, kept in <state_dir>/secrets/triton-key.", secret=True)
    triton_tls: bool = _setting(
        True, "Call Triton's gRPC API over mutual TLS with the stack's certificates (<state_dir>/secrets/tls, "
        "generated at first start); the embedded Triton requires it. false for a Triton without TLS "
        "(docker-compose), which then relies on the key alone.")
    triton_url: str = _setting("", "host:port of Triton's gRPC API. Default: <host>:<triton_grpc_port>.")
    triton_model_repository: str = _setting(
        "", "Triton model repository. Default: <state_dir>/triton/models."
    )

    # prefect
    prefect_port: int = _setting(4200, "Port of the stack's Prefect server (API and UI).")
    prefect_api_url: str = _setting(
        "", "Prefect API URL. Default: http://<host>:<prefect_port>/api."
    )
    prefect_auth_string: str = _setting(
        "", "Password of the Prefect API (HTTP basic auth; the Prefect UI asks for it). Default: generated at "
        "first start, kept in <state_dir>/secrets/prefect-auth.", secret=True)

    # evaluation (flows)
    eval_concurrency: int = _setting(2, "Evaluations the worker runs at once (Prefect runner limit).")
    eval_batch_size: int = _setting(256, "Images per inference request sent to Triton.")
    eval_in_flight: int = _setting(4, "Inference requests an evaluation keeps in flight at once.")
    triton_max_loaded_models: int = _setting(
        4, "Models kept loaded in Triton; the least recently used ones not being evaluated are unloaded."
    )
    triton_preload: bool = _setting(
        True, "Start loading a newly submitted model into Triton as soon as it is stored, while its evaluation "
        "is handed to the worker (the gateway then writes its Triton repository entry, as it removes it on delete)."
    )
    triton_model_threads: int = _setting(
        0, "CPU threads of each deployed model's instance. Default: cores / eval_concurrency (at least 1)."
    )
    sweep_cron: str = _setting("0 * * * *", "Cron schedule of the sweep that evaluates missing or failed pairs.")
    store_logits: bool = _setting(False, "Also store every evaluation's full logits in the object store "
                                  "(Parquet, one object per shard).")
    worker_poll_s: float = _setting(0.5, "Seconds between the evaluation worker's polls for scheduled runs.")

    # leaderboard
    leaderboard_port: int = _setting(8501, "Port of the Streamlit leaderboard.")

    # test sets
    shard_bytes: int = _setting(64 * 1024 * 1024, "Target size of a test-set shard in bytes "
                                "(`testset add --shard-samples` overrides it).")

    # evaluation
    auto_evaluate: bool = _setting(True, "Evaluate automatically: a new model on every test set, a new test "
                                   "set with every model (through the Prefect deployment `evaluate`).")

    # leaderboard maths
    baseline_categories: str = _setting("standard", "Comma-separated model categories that form the baseline fit.")
    min_reference_accuracy: float = _setting(0.0, "Baseline models need at least this reference accuracy (0-1).")
    bootstrap_resamples: int = _setting(1000, "Bootstrap resamples for the fit band and the ER intervals.")

    # stack
    start_timeout_s: float = _setting(180.0, "Seconds `up` waits for every service to become healthy.")

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``SHIFTBOARD_*`` variables, then apply keyword overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        if not self.state_dir:
            object.__setattr__(self, "state_dir", _default_state_dir())
        object.__setattr__(self, "state_dir", str(Path(self.state_dir).expanduser().resolve()))
        for name in ("gateway_port", "s3_port", "triton_http_port", "triton_grpc_port",
                     "triton_metrics_port", "prefect_port", "leaderboard_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"{env_name(name)}={port} is not a valid port (0-65535)")
        if self.sandbox not in {"required", "best-effort", "off"}:
            raise ValueError(f"{env_name('sandbox')}={self.sandbox!r}: use required, best-effort or off")
        if min(self.sandbox_memory_bytes, self.sandbox_cpu_seconds, self.sandbox_triton_cpu_seconds) < 0:
            raise ValueError(f"{env_name('sandbox_memory_bytes')}, {env_name('sandbox_cpu_seconds')} and "
                             f"{env_name('sandbox_triton_cpu_seconds')} must not be negative")
        if self.object_store not in {"auto", "minio", "seaweedfs", "external"}:
            raise ValueError(f"{env_name('object_store')}={self.object_store!r}: "
                             "use auto, minio, seaweedfs or external")
        if self.shard_bytes < 1:
            raise ValueError(f"{env_name('shard_bytes')} must be at least 1")
        for name in ("eval_concurrency", "eval_batch_size", "eval_in_flight", "triton_max_loaded_models"):
            if getattr(self, name) < 1:
                raise ValueError(f"{env_name(name)} must be at least 1")
        if self.max_streams < 0 or self.max_streams_per_caller < 1:
            raise ValueError(f"{env_name('max_streams')} must be 0 (default) or more and "
                             f"{env_name('max_streams_per_caller')} at least 1")
        if self.catalog_memory_mb < 0:
            raise ValueError(f"{env_name('catalog_memory_mb')} must be 0 (DuckDB's default) or a number of MiB")
        if self.max_streams and self.max_streams >= self.gateway_workers:
            raise ValueError(f"{env_name('max_streams')}={self.max_streams} must be below "
                             f"{env_name('gateway_workers')}={self.gateway_workers}: streams would take every "
                             "thread and starve unary calls and health checks")
        if self.worker_poll_s <= 0:
            raise ValueError(f"{env_name('worker_poll_s')} must be positive")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ derived values

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    @property
    def secrets_dir(self) -> Path:
        return self.state_path / "secrets"

    @property
    def logs_dir(self) -> Path:
        return self.state_path / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_path / "run"

    @property
    def catalog_file(self) -> Path:
        return Path(self.catalog_path) if self.catalog_path else self.state_path / "catalog.duckdb"

    @property
    def stream_limit(self) -> int:
        """Streaming calls served at once: the setting, else half the gateway workers (at least 1)."""
        return self.max_streams or max(1, self.gateway_workers // 2)

    @property
    def gateway_target(self) -> str:
        return self.gateway_address or f"{self.host}:{self.gateway_port}"

    @property
    def s3_target(self) -> str:
        return self.s3_endpoint or f"{self.host}:{self.s3_port}"

    @property
    def s3_public_target(self) -> str:
        return self.s3_public_endpoint or self.s3_target

    @property
    def triton_target(self) -> str:
        return self.triton_url or f"{self.host}:{self.triton_grpc_port}"

    @property
    def triton_repository(self) -> Path:
        return Path(self.triton_model_repository) if self.triton_model_repository else (
            self.state_path / "triton" / "models")

    @property
    def prefect_api(self) -> str:
        return self.prefect_api_url or f"http://{self.host}:{self.prefect_port}/api"

    @property
    def leaderboard_url(self) -> str:
        return f"http://{self.host}:{self.leaderboard_port}"

    def describe(self) -> list[tuple[str, str, str]]:
        """(env name, effective value with secrets masked, description) for every setting."""
        rows = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            shown = _mask(str(value)) if f.metadata.get("secret") else str(value)
            rows.append((env_name(f.name), shown, f.metadata.get("description", "")))
        return rows

    def as_env(self) -> dict[str, str]:
        """The settings as SHIFTBOARD_* variables, to hand to a child process."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[env_name(f.name)] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out


def env_name(field_name: str) -> str:
    """The environment variable of a setting, e.g. ``gateway_port`` -> ``SHIFTBOARD_GATEWAY_PORT``."""
    return ENV_PREFIX + field_name.upper()


def _mask(value: str) -> str:
    if not value:
        return ""
    return value[:2] + "…" + "*" * 6 if len(value) > 8 else "*" * 6


def _parse(name: str, raw: str, type_: Any) -> Any:
    type_name = type_ if isinstance(type_, str) else getattr(type_, "__name__", str(type_))
    try:
        if type_name == "bool":
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
    except ValueError:
        raise ValueError(f"{env_name(name)}={raw!r} is not a valid {type_name}") from None
    return raw


def env_example() -> str:
    """Every setting as a commented ``KEY=default`` line with its description (deploy/.env.example)."""
    defaults = Settings(state_dir="/var/lib/shiftboard")
    lines = ["# shiftboard settings: every SHIFTBOARD_* variable, its default and what it does.",
             "# Generated by `make env-example` from shiftboard/settings.py; uncomment to change a value.",
             "# Secrets are left empty: never commit real ones.", ""]
    for f in dataclasses.fields(Settings):
        value = "" if f.metadata.get("secret") else getattr(defaults, f.name)
        if f.name == "state_dir":
            value = ""
        if isinstance(value, bool):
            value = "true" if value else "false"
        lines.append(f"# {f.metadata.get('description', '')}")
        lines.append(f"# {env_name(f.name)}={value}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(env_example(), end="")
