"""Settings: the only module that reads the environment.

Every setting has an environment variable ``SHIFTBOARD_<NAME>`` (upper case), a default and a
description (a pydantic-settings model: ``Field(description=...)``, ``SecretStr`` for secrets,
validation at load time). Settings are built once at an entry point (``Settings.from_env()``) and
passed down; ``Settings(...)`` itself reads no environment. ``shiftboard config`` prints the
effective values with secrets masked. ``deploy/.env.example`` lists every variable, grouped
(``python -m shiftboard.settings`` writes it).

A bad value raises :class:`SettingsError` (a ``ValueError``) with one line that names the variable
and the fix; a secret's value never appears in it, nor in ``repr``/``str`` of the settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from shiftboard.settings_types import ENV_PREFIX, Flag, Port, SettingsError, env_name, env_value, explain, one_of

__all__ = ["ENV_PREFIX", "SECTIONS", "Settings", "SettingsError", "env_example", "env_name", "secret_fields"]


def _default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "shiftboard")


# The groups of deploy/.env.example: the first setting of each, in declaration order.
SECTIONS = {
    "state_dir": "State and addresses",
    "gateway_port": "Gateway",
    "max_model_bytes": "Submitted models and their sandbox",
    "object_store": "Object storage (S3)",
    "triton_http_port": "Triton",
    "prefect_port": "Prefect",
    "eval_concurrency": "Evaluation worker",
    "leaderboard_port": "Leaderboard",
    "shard_bytes": "Test sets",
    "auto_evaluate": "Evaluation scheduling",
    "baseline_categories": "Leaderboard maths",
    "start_timeout_s": "Stack",
}


class Settings(BaseSettings):
    """Effective configuration of a shiftboard process (stack, gateway, CLI, flows, leaderboard)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, extra="forbid")

    state_dir: str = Field(
        default="", description="Directory holding all local state: data, logs, pids, generated secrets. Default: "
        "$XDG_STATE_HOME/shiftboard (~/.local/state/shiftboard).")
    host: str = Field(default="127.0.0.1", description="Address the embedded services bind to.")

    # gateway
    gateway_port: Port = Field(default=50051, description="gRPC port of the gateway.")
    gateway_address: str = Field(
        default="", description="host:port clients use to reach the gateway. Default: <host>:<gateway_port>.")
    gateway_workers: int = Field(default=16, ge=1, description="Threads serving gRPC calls in the gateway.")
    catalog_memory_mb: int = Field(
        default=1024, ge=0, description="Memory the gateway's DuckDB catalog may use for its block cache and queries, "
        "MiB (beyond it DuckDB evicts blocks and spills to disk); 0: DuckDB's default, 80% of the machine's memory.")
    open_reads: Flag = Field(default=True, description="Allow read-only RPCs without a token.")
    token: SecretStr = Field(
        default=SecretStr(""), description="API token the CLI sends (authorization: Bearer ...). Default: the admin "
        "token in the state directory, when readable.")
    admin_token: SecretStr = Field(
        default=SecretStr(""), description="Admin token of the gateway. Default: generated at first start and kept in "
        "<state_dir>/secrets/admin-token.")
    evaluator_token: SecretStr = Field(
        default=SecretStr(""), description="Evaluator token: the gateway registers it with the evaluator role and the "
        "worker sends it. Default: generated at first start and kept in <state_dir>/secrets/evaluator-token.")
    max_streams: int = Field(
        default=0, ge=0, description="Streaming calls (WatchEvaluations, GetPredictions) the gateway serves at once, "
        "below gateway_workers so unary calls always get a thread. Default: half the gateway workers.")
    max_streams_per_caller: int = Field(
        default=4, ge=1, description="Streaming calls one caller (token, or address when anonymous) may hold open at "
        "once.")
    catalog_path: str = Field(default="", description="DuckDB catalog file. Default: <state_dir>/catalog.duckdb.")

    # submitted models
    max_model_bytes: int = Field(default=512 * 1024 * 1024, description="Largest model artifact accepted, in bytes.")
    probe_timeout_s: float = Field(
        default=120.0, description="Seconds a submitted model may take to load and run a probe batch.")
    sandbox: Annotated[str, one_of("required", "best-effort", "off")] = Field(
        default="required", description="Operating-system sandbox of every process running a submitted model (the "
        "probe, Triton's model instances): required (refuse to start when the kernel lacks a mechanism; `shiftboard "
        "status` lists them), best-effort (use what works), or off (models run with the server's rights).")
    sandbox_memory_bytes: int = Field(
        default=2 * 1024 ** 3, ge=0, description="Data-segment limit (RLIMIT_DATA) of the probe and of each Triton "
        "model instance, in bytes.")
    sandbox_cpu_seconds: int = Field(
        default=60, ge=0, description="CPU seconds the probe of a submitted model may use.")
    sandbox_triton_cpu_seconds: int = Field(
        default=6 * 3600, ge=0, description="CPU seconds one Triton model instance may use over its life (it is then "
        "killed; Triton reports its requests failed). 0: no limit.")

    # object storage
    object_store: Annotated[str, one_of("auto", "minio", "seaweedfs", "external")] = Field(
        default="auto", description="Embedded object store: auto (minio when on PATH, else seaweedfs), minio, "
        "seaweedfs, or external (use s3_endpoint and the given credentials, start nothing).")
    s3_port: Port = Field(default=9000, description="S3 port of the embedded object store.")
    s3_endpoint: str = Field(default="", description="host:port of the S3 API. Default: <host>:<s3_port>.")
    s3_public_endpoint: str = Field(
        default="", description="host:port of the S3 API as clients see it (presigned upload URLs). Default: "
        "s3_endpoint.")
    s3_secure: Flag = Field(default=False, description="Use https for the S3 API.")
    s3_region: str = Field(default="us-east-1", description="S3 region used to sign requests.")
    s3_bucket: str = Field(default="shiftboard", description="Bucket holding models and test-set shards.")
    s3_access_key: SecretStr = Field(
        default=SecretStr(""), description="S3 access key. Default: generated at first start, kept in "
        "<state_dir>/secrets/s3.json.")
    s3_secret_key: SecretStr = Field(
        default=SecretStr(""), description="S3 secret key. Default: generated with the access key.")
    upload_url_ttl_s: int = Field(default=3600, description="Lifetime of presigned shard-upload URLs, in seconds.")
    s3_internal_port: int = Field(
        default=0, description="First internal port of the embedded object store: SeaweedFS master, volume and filer "
        "listen on it, +1 and +2 (their gRPC ports, and the S3 gRPC port, are 10000 higher); the MinIO console listens "
        "on it. Default: s3_port + 1.")

    # triton
    triton_http_port: Port = Field(
        default=8000, description="HTTP port of the embedded tritonserver (unused: the stack runs Triton with HTTP "
        "off, gRPC only).")
    triton_grpc_port: Port = Field(default=8001, description="gRPC port of the embedded tritonserver.")
    triton_metrics_port: Port = Field(
        default=8002, description="Metrics port of the embedded tritonserver (unused: the stack runs Triton with "
        "metrics off).")
    triton_api_key: SecretStr = Field(
        default=SecretStr(""), description="Key Triton requires on every gRPC call (header "
        "triton-grpc-protocol-shiftboard-triton-key). Default: generated at first start, kept in "
        "<state_dir>/secrets/triton-key.")
    triton_tls: Flag = Field(
        default=True, description="Call Triton's gRPC API over mutual TLS with the stack's certificates "
        "(<state_dir>/secrets/tls, generated at first start); the embedded Triton requires it. false for a Triton "
        "without TLS (docker-compose), which then relies on the key alone.")
    triton_url: str = Field(
        default="", description="host:port of Triton's gRPC API. Default: <host>:<triton_grpc_port>.")
    triton_model_repository: str = Field(
        default="", description="Triton model repository. Default: <state_dir>/triton/models.")

    # prefect
    prefect_port: Port = Field(default=4200, description="Port of the stack's Prefect server (API and UI).")
    prefect_api_url: str = Field(default="", description="Prefect API URL. Default: http://<host>:<prefect_port>/api.")
    prefect_auth_string: SecretStr = Field(
        default=SecretStr(""), description="Password of the Prefect API (HTTP basic auth; the Prefect UI asks for it). "
        "Default: generated at first start, kept in <state_dir>/secrets/prefect-auth.")

    # evaluation (flows)
    eval_concurrency: int = Field(
        default=2, ge=1, description="Evaluations the worker runs at once (Prefect runner limit).")
    eval_batch_size: int = Field(default=256, ge=1, description="Images per inference request sent to Triton.")
    eval_in_flight: int = Field(
        default=4, ge=1, description="Inference requests an evaluation keeps in flight at once.")
    triton_max_loaded_models: int = Field(
        default=4, ge=1, description="Models kept loaded in Triton; the least recently used ones not being evaluated "
        "are unloaded.")
    triton_preload: Flag = Field(
        default=True, description="Start loading a newly submitted model into Triton as soon as it is stored, while "
        "its evaluation is handed to the worker (the gateway then writes its Triton repository entry, as it removes it "
        "on delete).")
    triton_model_threads: int = Field(
        default=0, description="CPU threads of each deployed model's instance. Default: cores / eval_concurrency (at "
        "least 1).")
    triton_onnx_backend: Annotated[str, one_of("python", "onnxruntime")] = Field(
        default="python", description="Triton backend of ONNX models: python (the Python-backend model runs them with "
        "onnxruntime; the embedded stack's tritonserver has no onnxruntime backend) or onnxruntime (Triton's own "
        "backend, as in the NGC images of docker-compose.yml).")
    triton_gpu: Flag = Field(
        default=False, description="Run the onnxruntime-backend entries on Triton's GPUs (KIND_GPU; "
        "deploy/compose.gpu.yml sets it). Python-backend entries stay on CPU.")
    sweep_cron: str = Field(
        default="0 * * * *", description="Cron schedule of the sweep that evaluates missing or failed pairs.")
    store_logits: Flag = Field(
        default=False, description="Also store every evaluation's full logits in the object store (Parquet, one object "
        "per shard).")
    worker_poll_s: float = Field(
        default=0.5, gt=0, description="Seconds between the evaluation worker's polls for scheduled runs.")
    eval_deadline_min_s: float = Field(
        default=120.0, gt=0, description="Least seconds an inference request may take: a request's deadline is "
        "max(this, eval_deadline_factor x the probe's seconds per image x the batch size). A model that misses it "
        "fails permanently and its Triton instance is stopped and unloaded.")
    eval_deadline_factor: float = Field(
        default=25.0, gt=0, description="How many times the probe's measured time per image an inference request "
        "may take (see eval_deadline_min_s).")

    # leaderboard
    leaderboard_port: Port = Field(default=8501, description="Port of the Streamlit leaderboard.")

    # test sets
    shard_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="Target size of a test-set shard in bytes (`testset add "
        "--shard-samples` overrides it).")

    # evaluation
    auto_evaluate: Flag = Field(
        default=True, description="Evaluate automatically: a new model on every test set, a new test set with every "
        "model (through the Prefect deployment `evaluate`).")
    eval_heartbeat_s: float = Field(
        default=10.0, gt=0, description="Seconds between a running evaluation's heartbeats to the gateway (sent "
        "from a thread of its own, however long an inference batch takes).")
    eval_stale_s: float = Field(
        default=30.0, gt=0, description="A running evaluation without a heartbeat for this many seconds has lost its "
        "worker: the gateway marks its Prefect run crashed and hands the pair out again (it resumes at its first "
        "uncommitted shard).")

    # leaderboard maths
    baseline_categories: str = Field(
        default="standard", description="Comma-separated model categories that form the baseline fit.")
    min_reference_accuracy: float = Field(
        default=0.0, description="Baseline models need at least this reference accuracy (0-1).")
    bootstrap_resamples: int = Field(
        default=1000, description="Bootstrap resamples for the fit band and the ER intervals.")

    # stack
    start_timeout_s: float = Field(default=180.0, description="Seconds `up` waits for every service to become healthy.")

    # ------------------------------------------------------------------ construction

    if not TYPE_CHECKING:  # type checkers check calls against the fields; here errors become one line
        def __init__(self, **values: Any) -> None:
            try:
                super().__init__(**values)
            except ValidationError as exc:
                raise SettingsError(explain(exc, type(self).model_fields)) from None

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """``Settings(...)`` takes its arguments only; ``from_env`` adds the environment."""
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``SHIFTBOARD_*`` variables (empty ones count as unset; other variables
        are ignored), then apply the keyword overrides that are not None."""
        values = _EnvMapping(cls, os.environ if env is None else env)()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @field_validator("state_dir")
    @classmethod
    def _resolve_state_dir(cls, value: str) -> str:
        return str(Path(value or _default_state_dir()).expanduser().resolve())

    @model_validator(mode="after")
    def _check_heartbeat(self) -> Settings:
        if 2 * self.eval_heartbeat_s > self.eval_stale_s:
            raise ValueError(f"{env_name('eval_heartbeat_s')}={self.eval_heartbeat_s:g} must be at most half of "
                             f"{env_name('eval_stale_s')}={self.eval_stale_s:g}: one late heartbeat would make a "
                             "live evaluation look lost")
        return self

    @model_validator(mode="after")
    def _check_streams(self) -> Settings:
        if self.max_streams and self.max_streams >= self.gateway_workers:
            raise ValueError(f"{env_name('max_streams')}={self.max_streams} must be below "
                             f"{env_name('gateway_workers')}={self.gateway_workers}: streams would take every "
                             "thread and starve unary calls and health checks")
        return self

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied, validated like any other settings."""
        return type(self)(**{**{name: getattr(self, name) for name in type(self).model_fields}, **changes})

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

    def secrets(self) -> dict[str, str]:
        """The secret settings' values by field name (empty when not set)."""
        return {name: value.get_secret_value() for name in secret_fields()
                if isinstance(value := getattr(self, name), SecretStr)}

    def describe(self) -> list[tuple[str, str, str]]:
        """(env name, effective value with secrets masked, description) for every setting."""
        rows = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            shown = _mask(value.get_secret_value()) if isinstance(value, SecretStr) else str(value)
            rows.append((env_name(name), shown, info.description or ""))
        return rows

    def as_env(self) -> dict[str, str]:
        """The settings as SHIFTBOARD_* variables (secrets included), to hand to a child process."""
        return {env_name(name): env_value(getattr(self, name)) for name in type(self).model_fields}


class _EnvMapping(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # case-insensitive names and empty values unset, as the model's config says
        return {name.lower(): value for name, value in self._env.items() if value != ""}


def secret_fields() -> tuple[str, ...]:
    """The settings whose values are secrets (typed ``SecretStr``)."""
    return tuple(name for name, info in Settings.model_fields.items() if info.annotation is SecretStr)


def _mask(value: str) -> str:
    if not value:
        return ""
    return value[:2] + "…" + "*" * 6 if len(value) > 8 else "*" * 6


def env_example() -> str:
    """Every setting as a commented ``KEY=default`` line with its description, grouped (deploy/.env.example)."""
    defaults = Settings(state_dir="/var/lib/shiftboard")
    lines = ["# shiftboard settings: every SHIFTBOARD_* variable, its default and what it does.",
             "# Generated by `make env-example` from shiftboard/settings.py; uncomment to change a value.",
             "# Secrets are left empty: never commit real ones.", ""]
    for name, info in Settings.model_fields.items():
        if name in SECTIONS:
            lines += [f"# ---- {SECTIONS[name]}", ""]
        value = "" if info.annotation is SecretStr or name == "state_dir" else env_value(getattr(defaults, name))
        lines.append(f"# {info.description}")
        lines.append(f"# {env_name(name)}={value}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(env_example(), end="")
