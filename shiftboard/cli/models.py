"""`shiftboard model ...`: submit, list, show and delete models."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from shiftboard import formats
from shiftboard.cli._common import (
    byte_progress,
    cli_errors,
    client_for,
    console,
    err_console,
    model_version,
    print_json,
)
from shiftboard.domain import manifests
from shiftboard.domain.errors import InvalidArgument
from shiftboard.formats.torchscript import DEPRECATION
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import manifests as manifest_wire
from shiftboard.wire import vocab
from shiftboard.wire.views import deployment_view, model_view

app = typer.Typer(help="Submit and inspect models (ONNX, torch.export or TorchScript classifiers).",
                  no_args_is_help=True)


def _floats(text: str | None, what: str) -> list[float]:
    if not text:
        return []
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidArgument(f"--{what} {text!r}: give comma-separated numbers, e.g. 0.5,0.5,0.5") from None


def _shape(text: str) -> tuple[int, int, int]:
    try:
        parts = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3:
        raise InvalidArgument(f"--input-shape {text!r}: give C,H,W, e.g. 3,32,32")
    return parts[0], parts[1], parts[2]


def _checked_input(option: str, text: str, spec: manifests.InputSpec) -> None:
    """The domain's input rules on ``spec``, a refusal naming the ``option`` (as given) that broke them."""
    try:
        manifests.validate_input(spec)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{option} {text!r}: {exc.message}") from None


def _input_spec(input_shape: str, value_range: str, mean: str, std: str) -> manifests.InputSpec:
    """The input spec of the options, each checked in turn so that a refusal names its option."""
    c, h, w = _shape(input_shape)
    shape = manifests.InputSpec(channels=c, height=h, width=w)
    _checked_input("--input-shape", input_shape, shape)
    low_high = _floats(value_range, "value-range")
    if len(low_high) != 2:
        raise InvalidArgument(f"--value-range {value_range!r}: give MIN,MAX, e.g. 0,1")
    ranged = replace(shape, value_min=low_high[0], value_max=low_high[1])
    _checked_input("--value-range", value_range, ranged)
    spec = replace(ranged, mean=tuple(_floats(mean, "mean")))
    _checked_input("--mean", mean, spec)
    spec = replace(spec, std=tuple(_floats(std, "std")))
    _checked_input("--std", std, spec)
    return spec


@app.command("submit")
@cli_errors
def submit(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="The classifier's file: ONNX (torch.onnx.export), torch.export "
                                "(torch.export.save, .pt2) or TorchScript (torch.jit.save)."),
    name: str = typer.Option(..., "--name", "-n", help="Model name: letters, digits, . _ -"),
    version: str = typer.Option("1", "--version", "-v", help="Version; name+version must be new."),
    num_classes: int = typer.Option(..., "--num-classes", "-k", help="Number of output classes (logits)."),
    input_shape: str = typer.Option(..., "--input-shape", help="C,H,W of the input images, e.g. 3,32,32."),
    value_range: str = typer.Option("0,1", "--value-range",
                                    help="MIN,MAX that uint8 pixels 0..255 are mapped to before mean/std."),
    mean: str = typer.Option("", "--mean", help="Per-channel mean subtracted after scaling (default 0)."),
    std: str = typer.Option("", "--std", help="Per-channel std divided by after scaling (default 1)."),
    category: str = typer.Option("standard", "--category", "-c",
                                 help="standard, robustness-intervention, more-data, zero-shot or other."),
    description: str = typer.Option("", "--description", "-d", help="Free text shown on the leaderboard."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="A tag (repeatable)."),
    model_format: str = typer.Option("", "--format", help="onnx, torch-export or torchscript (default: "
                                     "detected from the file)."),
    as_json: bool = typer.Option(False, "--json", help="Print the stored model as JSON."),
) -> None:
    """Upload a model: it is validated (format, static checks, probe batch) before anything is stored."""
    # The gateway's checks, before anything is uploaded.
    spec = _input_spec(input_shape, value_range, mean, std)
    declared = vocab.format_word(vocab.format_value(model_format)) if model_format else ""
    if not path.is_file():
        raise InvalidArgument(f"{path} is not a file: give the path of an ONNX, torch.export or TorchScript model")
    try:
        found = formats.resolve(path, declared)
    except OSError as exc:
        raise InvalidArgument(f"cannot read the model file {str(path)!r}: {exc.strerror or exc}") from None
    manifest = manifests.validate_model(manifests.ModelManifest(
        name=name, version=version, format=found,
        category=vocab.category_word(vocab.category_value(category)), input=spec,
        num_classes=num_classes, description=description, tags=tuple(tag)))
    metadata = manifest_wire.model_metadata(manifest)
    # On stderr, so that --json output stays one document.
    if not declared:
        err_console.print(f"detected format: {found} ({formats.get(found).title})", markup=False, highlight=False)
    if found == formats.TORCHSCRIPT:
        err_console.print(f"note: {DEPRECATION}", markup=False, highlight=False, soft_wrap=True)
    with client_for(ctx) as client, byte_progress(f"upload {path.name}", path.stat().st_size,
                                                  enabled=not as_json) as progress:
        task = progress.task_ids[0]
        model = client.submit_model(path, metadata, on_progress=lambda n: progress.advance(task, n))
    if as_json:
        print_json(model_view(model))
    else:
        console.print(f"[green]stored[/] model {model.metadata.name} version {model.metadata.version} "
                      f"({model.size_bytes:,} bytes, sha256 {model.sha256[:12]}…)")


@app.command("list")
@cli_errors
def list_models(
    ctx: typer.Context,
    category: str = typer.Option("", "--category", "-c", help="Only models of this category."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list (stable keys)."),
) -> None:
    """List the models."""
    value = vocab.category_value(category) if category else pb.MODEL_CATEGORY_UNSPECIFIED
    with client_for(ctx) as client:
        models = [model_view(m) for m in client.list_models(value)]
    if as_json:
        print_json(models)
        return
    table = Table("name", "version", "category", "classes", "input", "size", "created")
    for m in models:
        table.add_row(m["name"], m["version"], m["category"], str(m["num_classes"]),
                      "x".join(map(str, m["input_shape"])), f"{m['size_bytes']:,}", m["created_at"])
    console.print(table if models else "no models yet: `shiftboard model submit PATH ...` adds one")


@app.command("show")
@cli_errors
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Option("", "--version", "-v", help="Version (default: the newest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one model."""
    with client_for(ctx) as client:
        model = client.get_model(name, version)
        view = {**model_view(model), "deployment": deployment_view(model)}
    if as_json:
        print_json(view)
        return
    for key, value in view.items():
        console.print(f"[bold]{key:>13}[/]  {escape(str(value))}", highlight=False)


@app.command("delete")
@cli_errors
def delete(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Option("", "--version", "-v", help="Version to delete (default: the newest)."),
) -> None:
    """Delete one version of a model and its artifact."""
    with client_for(ctx) as client:
        version = model_version(client, name, version)
        client.delete_model(name, version)
        left = sorted(m.metadata.version for m in client.list_models() if m.metadata.name == name)
    console.print(f"deleted model {name} version {version}" +
                  (f"; versions left: {', '.join(left)}" if left else ""), markup=False, highlight=False)
