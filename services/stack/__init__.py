"""The embedded stack: object store, Triton, Prefect, gateway and leaderboard on one machine.

    control      up / down / status (what the CLI calls)
    supervisor   the foreground process that starts, watches and stops the services
    specs        the services in start order; spec: ServiceSpec, PortClaim, port checks
    objectstore_server, triton, prefect_server   how each server is run here
    health       probes; runfile: <state_dir>/run/stack.json and process helpers
"""

from shiftboard.services.stack.control import ServiceStatus, UpResult, down, status, up
from shiftboard.services.stack.supervisor import run_supervisor

__all__ = ["ServiceStatus", "UpResult", "down", "run_supervisor", "status", "up"]
