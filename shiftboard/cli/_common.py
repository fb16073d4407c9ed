"""What every CLI command shares: settings from the context, the client, errors, output."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from shiftboard.client import Client
from shiftboard.domain.errors import ShiftboardError
from shiftboard.settings import Settings

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def settings_of(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings.from_env()
    return root.obj


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``Error: message`` (the message verbatim: brackets in it are not Rich markup)."""
    err_console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def cli_errors(command: F) -> F:
    """Print ``Error: message`` and exit 1 instead of a traceback for expected failures."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ShiftboardError as exc:
            raise fail(exc.message) from None
        except ValueError as exc:  # settings from the environment
            raise fail(str(exc)) from None
        except OSError as exc:  # a file the command reads or writes, where no check named it first
            where = f"{exc.filename}: " if exc.filename else ""
            raise fail(f"{where}{exc.strerror or exc}: check the path and its permissions") from None
        except MemoryError:
            raise fail("not enough memory for this command: give smaller inputs (fewer or smaller images, "
                       "a smaller --size)") from None

    return wrapper  # type: ignore[return-value]


def model_version(client: Client, model: str, version: str = "") -> str:
    """``version``, or the newest version of ``model`` when it is empty (``NotFound`` when there is none)."""
    return version or client.get_model(model).metadata.version


@contextmanager
def client_for(ctx: typer.Context) -> Iterator[Client]:
    client = Client.from_settings(settings_of(ctx))
    try:
        yield client
    finally:
        client.close()


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


def byte_progress(description: str, total: int, *, enabled: bool = True) -> Progress:
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err_console, disable=not enabled, transient=False,
    )
    progress.add_task(description, total=total)
    return progress


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
