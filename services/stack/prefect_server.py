"""The stack's Prefect server (API + UI), one for all flow runs.

A temporary server per flow run costs ~10 s; one long-lived server avoids that. Its home, SQLite
database and UI build live in ``<state_dir>/prefect``; analytics and telemetry are off because
these machines are offline (else it logs failed uploads). The API requires the stack's auth string
(``<state_dir>/secrets/prefect-auth``, HTTP basic auth) on every call but ``/health`` and ``/ready``;
the UI asks for it once per browser.
"""

from __future__ import annotations

import sys

from shiftboard import credentials
from shiftboard.services.stack.health import http_probe
from shiftboard.services.stack.spec import PortClaim, ServiceSpec
from shiftboard.settings import Settings, env_name

NAME = "prefect"


def prefect_env(settings: Settings, base_env: dict[str, str]) -> dict[str, str]:
    """Environment of ``prefect server start``: state in the state dir, nothing phoned home."""
    home = settings.state_path / "prefect"
    # Inherited PREFECT_* (a user profile, a test harness's API URL) must not redirect the server.
    env = {k: v for k, v in base_env.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
        "PREFECT_SERVER_UI_ENABLED": "true",
        "PREFECT_UI_API_URL": settings.prefect_api,
        "PREFECT_API_URL": settings.prefect_api,
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    })
    return env


def prefect_command(settings: Settings) -> list[str]:
    return [sys.executable, "-m", "prefect", "server", "start",
            "--host", settings.host or "0.0.0.0", "--port", str(settings.prefect_port), "--analytics-off"]


def prefect_spec(settings: Settings, base_env: dict[str, str]) -> ServiceSpec:
    def check() -> str | None:
        return http_probe(settings.prefect_api.rstrip("/") + "/health", expect="true")

    def prepare() -> dict[str, str]:
        (settings.state_path / "prefect").mkdir(parents=True, exist_ok=True)
        auth = credentials.prefect_auth_string(settings, create=True)
        assert auth is not None  # create=True always gives one
        # The server checks it on every API call but /health and /ready; the UI asks for it.
        return {"PREFECT_SERVER_API_AUTH_STRING": auth, "PREFECT_API_AUTH_STRING": auth}

    return ServiceSpec(name=NAME, address=settings.prefect_api, command=prefect_command(settings),
                       env=prefect_env(settings, base_env), check=check, prepare=prepare,
                       ports=[PortClaim(settings.prefect_port, env_name("prefect_port"), "Prefect API/UI")],
                       stop_timeout_s=15.0)
