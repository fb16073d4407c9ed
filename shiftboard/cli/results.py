"""`shiftboard results`: import published results (the ImageNet testbed's grid, or a long table) and list them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from shiftboard.cli._common import cli_errors, client_for, console, print_json
from shiftboard.domain.errors import InvalidArgument
from shiftboard.v1 import shiftboard_pb2 as pb

app = typer.Typer(help="Import published results (accuracy-only points with provenance) and list the sources.",
                  no_args_is_help=True)


def import_view(reply: pb.ImportResultsResponse) -> dict[str, object]:
    return {"source": reply.source, "version": reply.version, "url": reply.url, "format": reply.format,
            "models": reply.models, "points": reply.points, "stored": reply.stored, "unchanged": reply.unchanged,
            "replaced": reply.replaced, "unknown_testsets": list(reply.unknown_testsets),
            "declared_testsets": reply.declared_testsets}


@app.command("import")
@cli_errors
def import_results(
    ctx: typer.Context,
    file: Path | None = typer.Argument(None, help="Results file: the testbed's grid CSV, or a long CSV/Parquet."),
    format: str = typer.Option("", "--format", "-f", help="testbed (the testbed's grid layout) or long "
                               "(model, testset, accuracy or correct+total)."),
    preset: str = typer.Option("", "--preset", help="Import a shipped grid instead of a file: imagenet-testbed."),
    model_types: Path | None = typer.Option(None, "--model-types", help="A `model,type` CSV of testbed types "
                                            "(default for --format testbed: the shipped one)."),
    source: str = typer.Option("", "--source", help="Who published the results (default: the file name)."),
    url: str = typer.Option("", "--url", help="Where the results are published."),
    scale: str = typer.Option("", "--scale", help="Long format: accuracy as fraction (default) or percent."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Store published accuracies as imported points; the same file again changes nothing."""
    if (file is None) == (not preset):
        raise InvalidArgument("give a results FILE with --format testbed|long, or --preset imagenet-testbed")
    if file is not None and not format:
        raise InvalidArgument("give --format testbed (the testbed's grid) or --format long (one row per model "
                              "and test set)")
    with client_for(ctx) as client:
        reply = client.import_results(file, format=format, model_types=model_types, source=source, url=url,
                                      scale=scale, preset=preset)
    if as_json:
        print_json(import_view(reply))
        return
    console.print(f"imported [bold]{escape(reply.source)}[/] (version {reply.version[:12]}, {reply.format}): "
                  f"{reply.models} models, {reply.points:,} points", highlight=False)
    console.print(f"stored {reply.stored:,}, unchanged {reply.unchanged:,}, replaced {reply.replaced:,}; "
                  f"{reply.declared_testsets} test sets declared", highlight=False)
    if reply.unknown_testsets:
        console.print(f"[yellow]note:[/] {len(reply.unknown_testsets)} test set(s) are neither registered nor "
                      f"known to the testbed protocol (first: {escape(', '.join(reply.unknown_testsets[:5]))}): their "
                      "points are kept; register the test sets to place them on a line", highlight=False)
    console.print("next: `shiftboard leaderboard --shift imagenetv2-matched-frequency-format-val`, or open the "
                  "leaderboard (`shiftboard status` shows its address)", highlight=False)


@app.command("list")
@cli_errors
def list_sources(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every imported source: version, format, counts, who imported it and when."""
    with client_for(ctx) as client:
        sources = client.imported_sources()
    view = [{"source": s.source, "version": s.version, "url": s.url, "format": s.format, "models": s.models,
             "points": s.points, "imported_at": s.imported_at.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ"),
             "created_by": s.created_by} for s in sources]
    if as_json:
        print_json(view)
        return
    if not view:
        console.print("no imported results: `shiftboard results import --preset imagenet-testbed` imports the "
                      "ImageNet testbed")
        return
    table = Table("source", "version", "format", "models", "points", "imported", "by", "url")
    for v in view:
        table.add_row(str(v["source"]), str(v["version"])[:12], str(v["format"]), str(v["models"]),
                      f"{v['points']:,}", str(v["imported_at"]), str(v["created_by"]), str(v["url"]))
    console.print(table)
