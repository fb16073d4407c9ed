"""`shiftboard testset ...`: add (read, shard, upload, register), list, show and delete test sets.

Shard bytes go from the CLI straight to object storage through presigned URLs the gateway hands
out; the gateway then verifies every checksum and registers the manifest in one step. Nothing is
registered unless every shard arrived intact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from shiftboard import testsets as ts
from shiftboard.cli._common import (
    cli_errors,
    client_for,
    console,
    err_console,
    print_json,
    settings_of,
)
from shiftboard.client import Client
from shiftboard.domain import manifests
from shiftboard.domain.errors import InvalidArgument, NotFound
from shiftboard.domain.names import validate_name
from shiftboard.uploads import upload_testset
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab
from shiftboard.wire.views import testset_view, transform_text

app = typer.Typer(help="Add and inspect test sets (reference sets and their shifts).", no_args_is_help=True)


def _int_list(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidArgument(f"--{what} {text!r}: give comma-separated class indices, e.g. 1,4,7") from None


def _size(text: str, option: str) -> tuple[int, int]:
    """HxW of ``option``, within the sides a test set may have (checked before any image is resized)."""
    try:
        height, width = ts.parse_size(text)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{option}: {exc.message}") from None
    if max(height, width) > manifests.MAX_SIDE:
        raise InvalidArgument(f"{option} {text!r}: images of at most {manifests.MAX_SIDE} pixels a side, e.g. 224")
    return height, width


def _plain(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


#: Short names of the shipped class protocols for --class-map-preset.
PRESET_ALIASES = {"objectnet": "objectnet-1.0-beta"}


def _class_map(path: Path | None, preset: str) -> tuple[list[list[int]], tuple[str, ...]] | None:
    """The class map of --class-map FILE.json or --class-map-preset NAME (None: neither given)."""
    if path is not None and preset:
        raise InvalidArgument("give --class-map FILE or --class-map-preset NAME, not both")
    if preset:
        from shiftboard.testbed import protocol

        name = PRESET_ALIASES.get(preset, preset)
        if name not in protocol.CLASS_PROTOCOLS:
            raise InvalidArgument(f"unknown --class-map-preset {preset!r}: use "
                                  f"{', '.join([*PRESET_ALIASES, *protocol.CLASS_PROTOCOLS])}")
        groups = protocol.class_map(name)
        return [list(v) for v in groups.values()], tuple(groups)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise InvalidArgument(f"--class-map {path}: cannot be read ({exc.strerror}): give a JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"--class-map {path}: is not JSON ({exc}): give a list of lists of model "
                              "outputs, e.g. [[409, 530], [414]]") from None
    return ts.parse_class_map(data, f"--class-map {path.name}")


def _check_against_catalog(client: Client, name: str, reference: str, class_map: list[list[int]] | None,
                           extra: list[str] | None = None, *, kind: str = "", restricted: bool = False) -> None:
    """Fail fast, before reading and uploading anything, on what the gateway would refuse anyway."""
    try:
        client.get_testset(name)
        raise InvalidArgument(f"test set {name} exists: choose another --name")
    except NotFound:
        pass
    if not reference:
        return

    def lookup(testset: str) -> manifests.ReferenceInfo:
        spec = client.get_testset(testset).spec
        return manifests.ReferenceInfo(vocab.word_or_empty(vocab.KINDS, spec.kind), spec.num_classes)

    info = manifests.find_reference(reference, lookup)
    manifests.check_extra_references(extra or [], name=name, kind=kind, reference=reference,
                                     num_classes=info.num_classes, restricted=restricted, lookup=lookup)
    if class_map is not None:
        manifests.check_class_map(class_map, num_classes=len(class_map), class_subset=(),
                                  num_outputs=info.num_classes, name=name, reference=reference)


def _upload(client: Client, path: Path, mapped: tuple[list[list[int]], tuple[str, ...]] | None, *, quiet: bool,
            **options: Any) -> tuple[ts.PreparedTestSet, pb.TestSet]:
    """Shard, upload and register with progress bars (``options``: :func:`~shiftboard.uploads.upload_testset`'s)."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console, disable=quiet) as progress:
        task = progress.add_task(f"shard {path.name}", total=None)
        upload_task = progress.add_task("upload shards", total=None, visible=False)

        def prepared_hook(prepared: ts.PreparedTestSet) -> None:
            warnings = list(prepared.warnings)
            if mapped is not None and mapped[1] and prepared.class_names and \
                    [_plain(n) for n in prepared.class_names] != [_plain(n) for n in mapped[1]]:
                warnings.append("the source's class names differ from the class map's: class g of the source "
                                f"counts the outputs of the map's class g ({mapped[1][0]!r} first)")
            for warning in warnings:
                progress.console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
            progress.update(upload_task, total=prepared.size_bytes, visible=True,
                            description=f"upload {len(prepared.shards)} shard(s), bytes")

        return upload_testset(
            client, path, **options,
            on_shard=lambda done, total: progress.update(task, completed=done, total=total),
            on_prepared=prepared_hook, on_upload=lambda n: progress.advance(upload_task, n))


@app.command("add")
@cli_errors
def add(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="An .npz (images uint8 NxHxW[xC], labels) or an ImageFolder "
                                          "directory (one sub-folder per class, JPEG/PNG)."),
    name: str = typer.Option(..., "--name", "-n", help="Test-set name: letters, digits, . _ -"),
    kind: str = typer.Option(..., "--kind", help="reference, natural, synthetic or adversarial."),
    references: list[str] = typer.Option(  # noqa: B008 (typer reads the default)
        [], "--reference", "-r",
        help="The reference test set this one shifts from (not for a reference). Repeat it to name several "
             "references (Shi et al.): the first is the primary (its label space, its single-reference fit); "
             "the ER is then also measured against a plane over all of them."),
    group: str = typer.Option("", "--group", "-g", help="Optional group, e.g. corruptions."),
    num_classes: int | None = typer.Option(None, "--num-classes", "-k",
                                           help="Size of the label space (default: from the data)."),
    classes: str = typer.Option("", "--classes",
                                help="Class sub-list, e.g. 1,4,7: only these classes are scored."),
    size: str = typer.Option("", "--size", help="Resize images to HxW (default: keep the source size)."),
    resize: int | None = typer.Option(None, "--resize",
                                      help="Resize the shorter side to this many pixels (keeps the aspect "
                                           "ratio; needs --crop), e.g. 256."),
    crop: str = typer.Option("", "--crop", help="Centre-crop to HxW (or one number), e.g. 224."),
    interpolation: str = typer.Option("bilinear", "--interpolation",
                                      help="Resampling filter of any resize: bilinear, bicubic, nearest, lanczos."),
    border: int = typer.Option(0, "--border", help="Pixels cropped off every side first (ObjectNet: 2)."),
    class_map_file: Path | None = typer.Option(None, "--class-map",
                                               help="JSON list of lists: class g counts the model outputs in "
                                                    "list g (or {name: [outputs]}); scored by the best output "
                                                    "of each class."),
    class_map_preset: str = typer.Option("", "--class-map-preset",
                                         help="A shipped class map: objectnet (113 classes <- 125 ImageNet "
                                              "classes, in the order of their sorted names)."),
    channels: int | None = typer.Option(None, "--channels", help="1 (gray) or 3 (RGB); default: the source's."),
    shard_samples: int | None = typer.Option(None, "--shard-samples",
                                             help="Samples per shard (default: ~SHIFTBOARD_SHARD_BYTES)."),
    description: str = typer.Option("", "--description", "-d", help="Free text."),
    no_labels: bool = typer.Option(False, "--no-labels",
                                   help="Register without labels (an npz may have none; any labels are ignored "
                                        "and not stored): a shift whose accuracy is only estimated, by "
                                        "agreement on the line. --num-classes defaults to the reference's."),
    as_json: bool = typer.Option(False, "--json", help="Print the registered test set as JSON."),
) -> None:
    """Cut a test set into shards, upload them, and register it (all or nothing)."""
    settings = settings_of(ctx)
    validate_name(name, "test set name")
    kind_value = vocab.kind_value(kind)
    if group:
        validate_name(group, "group")
    transform = None
    if resize is not None or crop or border or interpolation != "bilinear":
        transform = ts.Transform(border=border, resize=resize, crop=_size(crop, "--crop") if crop else None,
                                 size=_size(size, "--size") if size else None, interpolation=interpolation)
    mapped = _class_map(class_map_file, class_map_preset)
    # The gateway's rules, before reading and uploading anything.
    reference = manifests.check_kind_rules(vocab.kind_word(kind_value), name, references[0] if references else "",
                                           has_class_map=mapped is not None)
    extra = list(references[1:])
    if extra and kind_value == pb.TEST_SET_KIND_REFERENCE:
        raise InvalidArgument("a reference test set has no references: give further --reference options only to a "
                              "shifted test set")
    if no_labels:
        manifests.check_unlabelled(vocab.kind_word(kind_value), has_classes=bool(classes) or mapped is not None)
    if mapped is not None:
        if classes:
            raise InvalidArgument("give --classes or a class map, not both: a class map already says which "
                                  "model outputs are scored")
        if num_classes is not None and num_classes != len(mapped[0]):
            raise InvalidArgument(f"the class map has {len(mapped[0])} classes but --num-classes is {num_classes}")
        num_classes = len(mapped[0])
    with client_for(ctx) as client:
        _check_against_catalog(client, name, reference, mapped[0] if mapped is not None else None, extra,
                               kind=vocab.kind_word(kind_value), restricted=bool(classes) or mapped is not None)
        if no_labels and num_classes is None:  # no labels to count the classes from: the reference's label space
            num_classes = client.get_testset(reference).spec.num_classes
        prepared, testset = _upload(
            client, path, mapped, quiet=as_json, name=name, kind=kind_value, reference=reference, group=group,
            description=description, num_classes=num_classes,
            class_subset=_int_list(classes, "classes") if classes else None,
            size=_size(size, "--size") if size and transform is None else None, channels=channels,
            shard_samples=shard_samples, shard_bytes=settings.shard_bytes, transform=transform,
            class_map=mapped[0] if mapped is not None else None,
            class_names=mapped[1] if mapped is not None else (), extra_references=extra, unlabelled=no_labels)
    if as_json:
        print_json(testset_view(testset, shards=True))
    else:
        console.print(f"[green]registered[/] test set {name}: {prepared.num_samples:,} samples, "
                      f"{prepared.num_classes} classes, {len(prepared.shards)} shards"
                      + (", no labels (accuracy estimated on the leaderboard)" if no_labels else ""))


@app.command("list")
@cli_errors
def list_testsets(
    ctx: typer.Context,
    kind: str = typer.Option("", "--kind", help="Only test sets of this kind."),
    group: str = typer.Option("", "--group", "-g", help="Only test sets of this group."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list (stable keys)."),
) -> None:
    """List the test sets."""
    with client_for(ctx) as client:
        views = [testset_view(t) for t in client.list_testsets(
            vocab.kind_value(kind) if kind else pb.TEST_SET_KIND_UNSPECIFIED, group)]
    if as_json:
        print_json(views)
        return
    table = Table("name", "kind", "reference", "group", "classes", "samples", "shards", "input")
    for v in views:
        refs = " + ".join([v["reference"], *v["extra_references"]]) if v["reference"] else ""
        kind_text = v["kind"] + (" (no labels)" if v["unlabelled"] else "")
        table.add_row(v["name"], kind_text, refs, v["group"], str(v["num_classes"]),
                      f"{v['num_samples']:,}", str(v["num_shards"]), "x".join(map(str, v["input_shape"])))
    console.print(table if views else "no test sets yet: `shiftboard testset add PATH ...` adds one")


@app.command("show")
@cli_errors
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Test-set name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON, shards included."),
) -> None:
    """Show one test set and its shards."""
    with client_for(ctx) as client:
        view = testset_view(client.get_testset(name), shards=True)
    if as_json:
        print_json(view)
        return
    for key, value in view.items():
        if key == "transform":
            value = transform_text(value)
        elif key == "extra_references":
            value = ", ".join(value) or "none"
        elif key == "class_map":
            value = f"{len(value)} classes <- {sum(map(len, value))} model outputs" if value else "none"
        if key != "shards":
            console.print(f"[bold]{key:>13}[/]  {escape(str(value))}", highlight=False)
    table = Table("shard", "samples", "bytes", "sha256", "key")
    for s in view["shards"]:
        table.add_row(str(s["index"]), f"{s['num_samples']:,}", f"{s['size_bytes']:,}", s["sha256"][:16] + "…",
                      s["key"])
    console.print(table)


@app.command("delete")
@cli_errors
def delete(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Test-set name."),
) -> None:
    """Delete a test set with its shards, evaluations and predictions (its registrant or an admin).

    Refused while other test sets use it as their reference: delete those first."""
    with client_for(ctx) as client:
        evaluations = client.delete_testset(name)
    console.print(f"deleted test set {name} and {evaluations} evaluation(s) on it", markup=False, highlight=False)
