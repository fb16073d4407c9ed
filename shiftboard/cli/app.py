"""The `shiftboard` command: the root app, stack control, settings, tokens and `serve` entry points."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from shiftboard import __version__, credentials
from shiftboard.cli import analysis, board, demo, evals, models, results, testsets
from shiftboard.cli._common import (
    cli_errors,
    client_for,
    console,
    err_console,
    fail,
    print_json,
    settings_of,
    setup_logging,
)
from shiftboard.settings import Settings
from shiftboard.v1 import shiftboard_pb2 as pb

if TYPE_CHECKING:  # the stack's control module is loaded by the commands that use it
    from shiftboard.services.stack.control import ServiceStatus

app = typer.Typer(
    help="shiftboard: rank image classifiers by effective robustness under distribution shift.\n\n"
    "Start the embedded stack with `shiftboard up`; every setting is a SHIFTBOARD_* environment "
    "variable (`shiftboard config` lists them).",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
app.add_typer(models.app, name="model")
app.add_typer(testsets.app, name="testset")
app.add_typer(evals.app, name="eval")
app.add_typer(results.app, name="results")
token_app = typer.Typer(help="Manage API tokens and their roles (admin, submitter, evaluator); needs an "
                        "admin token.", no_args_is_help=True)
app.add_typer(token_app, name="token")
serve_app = typer.Typer(help="Run one service in the foreground (what `up` and the containers run).",
                        no_args_is_help=True)
app.add_typer(serve_app, name="serve")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shiftboard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    state_dir: Path | None = typer.Option(None, "--state-dir", envvar="SHIFTBOARD_STATE_DIR",
                                          help="State directory (data, logs, secrets)."),
    verbose: bool = typer.Option(False, "--verbose", help="Log debug messages."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    setup_logging(verbose)
    try:
        ctx.obj = Settings.from_env(state_dir=str(state_dir) if state_dir else None)
    except ValueError as exc:
        raise fail(str(exc)) from None


# ------------------------------------------------------------------------------------------ stack


app.command("demo")(demo.demo)


@app.command()
@cli_errors
def up(
    ctx: typer.Context,
    foreground: bool = typer.Option(False, "--foreground", help="Supervise in this process until Ctrl-C."),
) -> None:
    """Start the embedded stack (object store, Triton, Prefect, gateway, leaderboard) and wait until healthy.

    On a running stack: start every dead or backing-off service now (exit 1 naming any that does not
    come back)."""
    from shiftboard.services.stack import control

    settings = settings_of(ctx)
    result = control.up(settings, foreground=foreground,
                        on_progress=lambda message: err_console.print(f"  {message}", highlight=False))
    if result.already_running and result.restarted:
        console.print(f"shiftboard was running (supervisor pid {result.pid}); restarted "
                      f"{', '.join(result.restarted)}, healthy again.")
        _print_services(control.status(settings))
        return
    if result.already_running:
        console.print(f"shiftboard is already running (supervisor pid {result.pid}); nothing changed. "
                      "`shiftboard status` shows it.")
        return
    _print_services(control.status(settings))
    console.print(f"\nstate in {settings.state_dir}; admin token in "
                  f"{credentials.admin_token_file(settings)}; stop with `shiftboard down`")


@app.command()
@cli_errors
def down(ctx: typer.Context) -> None:
    """Stop the embedded stack cleanly."""
    from shiftboard.services.stack import control

    if control.down(settings_of(ctx)):
        console.print("stopped")
    else:
        console.print("shiftboard is not running")


@app.command()
@cli_errors
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show each service's health; exits 1 when any is unhealthy."""
    from shiftboard.services.stack import control

    services = [*control.status(settings_of(ctx)), control.sandbox_status(settings_of(ctx))]
    if as_json:
        print_json([{"name": s.name, "address": s.address, "healthy": s.healthy, "detail": s.detail,
                     "pid": s.pid} for s in services])
    else:
        _print_services(services)
    if not all(s.healthy for s in services):
        raise typer.Exit(1)


def _print_services(services: list[ServiceStatus]) -> None:
    table = Table("service", "address", "health", "pid", "detail")
    for s in services:
        table.add_row(s.name, s.address, "[green]healthy[/]" if s.healthy else "[red]unhealthy[/]",
                      str(s.pid or ""), s.detail)
    console.print(table)


@app.command()
@cli_errors
def config(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the effective settings (secrets masked) and their environment variables."""
    rows = settings_of(ctx).describe()
    if as_json:
        print_json({name: value for name, value, _ in rows})
        return
    table = Table("variable", "value", "meaning")
    for name, value, description in rows:
        table.add_row(name, value, description)
    console.print(table)


# ------------------------------------------------------------------------------------------ tokens


ROLES = {"admin": pb.TOKEN_ROLE_ADMIN, "submitter": pb.TOKEN_ROLE_SUBMITTER,
         "evaluator": pb.TOKEN_ROLE_EVALUATOR}
ROLE_WORDS = {v: k for k, v in ROLES.items()}


@token_app.command("create")
@cli_errors
def token_create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Token name (who or what uses it)."),
    role: str = typer.Option("submitter", "--role",
                             help="admin: everything, tokens too; submitter: submit models and test sets, "
                             "delete its own models, request evaluations; evaluator: what the worker does "
                             "(start, commit and finish evaluations)."),
    admin: bool = typer.Option(False, "--admin", help="The same as --role admin."),
) -> None:
    """Make an API token with a role (needs an admin token). It is printed once; only its keyed hash is stored."""
    if role not in ROLES:
        raise fail(f"unknown role {role!r}: use admin, submitter or evaluator")
    if admin and role not in ("admin", "submitter"):
        raise fail(f"--admin contradicts --role {role}: give one of them")
    with client_for(ctx) as client:
        reply = client.create_token(name, role=pb.TOKEN_ROLE_ADMIN if admin else ROLES[role])
    err_console.print(f"token {reply.name!r} ({ROLE_WORDS.get(reply.role, role)}) created; store it now, it is "
                      "not shown again. Use it as SHIFTBOARD_TOKEN:")
    typer.echo(reply.token)


@token_app.command("list")
@cli_errors
def token_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the API tokens: names, roles, creation (needs an admin token; never shows hashes)."""
    with client_for(ctx) as client:
        tokens = client.list_tokens()
    rows = [{"name": t.name, "role": ROLE_WORDS.get(t.role, "unknown"),
             "created_at": t.created_at.ToDatetime().isoformat(timespec="seconds") + "Z",
             "created_by": t.created_by} for t in tokens]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "role", "created", "created by")
    for r in rows:
        table.add_row(r["name"], r["role"], r["created_at"], r["created_by"])
    console.print(table)


@token_app.command("revoke")
@cli_errors
def token_revoke(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Name of the token to revoke (`shiftboard token list`)."),
) -> None:
    """Revoke an API token (needs an admin token): every later call with it is refused."""
    with client_for(ctx) as client:
        client.revoke_token(name)
    console.print(f"token {name!r} revoked")


# ------------------------------------------------------------------------------------------ serve


@serve_app.command("gateway")
@cli_errors
def serve_gateway(ctx: typer.Context) -> None:
    """The gRPC gateway (API, health, reflection; the only owner of the catalog)."""
    from shiftboard.services.gateway.server import serve

    setup_logging_info()
    raise typer.Exit(serve(settings_of(ctx)))


@serve_app.command("leaderboard")
@cli_errors
def serve_leaderboard(ctx: typer.Context) -> None:
    """The Streamlit leaderboard (reads through the gateway)."""
    settings = settings_of(ctx)
    app_path = Path(__file__).resolve().parents[2] / "leaderboard" / "app.py"
    if not app_path.exists():  # installed, not editable
        import shiftboard.leaderboard

        app_path = Path(shiftboard.leaderboard.__file__).with_name("app.py")
    env = {**os.environ, **settings.as_env(), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    argv = [sys.executable, "-m", "streamlit", "run", str(app_path), "--server.port",
            str(settings.leaderboard_port), "--server.address", settings.host, "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]
    os.execve(sys.executable, argv, env)


@serve_app.command("worker")
@cli_errors
def serve_worker(ctx: typer.Context) -> None:
    """The evaluation worker: serves the Prefect deployments `evaluate` and `sweep`."""
    from shiftboard.flows.worker import serve_worker as run

    setup_logging_info()
    raise typer.Exit(run(settings_of(ctx)) or 0)


@serve_app.command("stack")
@cli_errors
def serve_stack(ctx: typer.Context) -> None:
    """The supervisor of the embedded stack (what `up` starts in the background)."""
    from shiftboard.services.stack.supervisor import run_supervisor

    setup_logging_info()
    raise typer.Exit(run_supervisor(settings_of(ctx)))


def setup_logging_info() -> None:
    import logging

    logging.getLogger().setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.INFO)


app.command("predictions")(evals.predictions)
app.command("accuracy")(evals.accuracy)
app.command("leaderboard")(board.leaderboard)
app.command("compare")(board.compare)
app.command("calibration")(analysis.calibration)
app.command("consistency")(analysis.consistency)


def main() -> None:
    app()
