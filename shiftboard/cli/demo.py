"""`shiftboard demo`: the papers' findings reproduced on one machine, through the platform like any user.

Starts the embedded stack if it is not up, builds the digits testbed and trains the model zoo (both
kept in the state directory, so a re-run reuses them), registers every test set and submits every
model through the gRPC API, lets the worker evaluate them through Triton, then prints a summary and
the leaderboard's address. Everything that already exists is skipped: re-running is safe.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shiftboard.cli._common import cli_errors, client_for, console, err_console, settings_of
from shiftboard.client import Client
from shiftboard.domain.errors import FailedPrecondition, NotFound, Unavailable
from shiftboard.uploads import upload_testset
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab

if TYPE_CHECKING:  # shiftboard.demo imports torch: the command loads it only when it runs
    from shiftboard.demo.testbed import Testbed
    from shiftboard.demo.zoo import ZooModel

DONE = (pb.EVALUATION_STATUS_SUCCEEDED, pb.EVALUATION_STATUS_FAILED)
#: The demo's unlabelled shift: the natural shift's images registered again without labels, so that the
#: estimates of its board (agreement on the line) can be read beside the natural shift's measured accuracies.
UNLABELLED_NAME = "digits-printed-unlabelled"


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[note]}"), console=err_console)


@cli_errors
def demo(
    ctx: typer.Context,
    small: bool = typer.Option(False, "--small", help="A few models on a subset of the testbed (about a minute)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data split, the renderings and the training."),
    timeout_s: float = typer.Option(1200.0, "--timeout", help="Seconds to wait for the evaluations."),
) -> None:
    """Build a robustness testbed from digits, train a model zoo, evaluate everything, summarise."""
    from shiftboard.demo import build_testbed, load_testbed, load_zoo, train_zoo
    from shiftboard.services.stack import control

    settings = settings_of(ctx)
    started = time.monotonic()
    console.rule("[bold]shiftboard demo")
    result = control.up(settings, on_progress=lambda m: err_console.print(f"  {m}", highlight=False))
    console.print("stack: " + ("already running" if result.already_running else "started"))

    work = settings.state_path / "demo" / f"{'small' if small else 'full'}-seed{seed}"
    try:
        testbed = load_testbed(work / "testbed")
        console.print(f"testbed: reusing {work / 'testbed'}")
    except FileNotFoundError:
        with console.status("building the testbed (digits, printed digits, corruptions)"):
            testbed = build_testbed(work / "testbed", small=small, seed=seed)
    try:
        zoo = load_zoo(work / "zoo")
        console.print(f"zoo: reusing {len(zoo)} models in {work / 'zoo'}")
    except FileNotFoundError:
        with _progress() as progress:
            task = progress.add_task("training the zoo", total=None, note="")
            zoo = train_zoo(testbed, work / "zoo", small=small, seed=seed,
                            on_progress=lambda done, total, m: progress.update(task, completed=done, total=total,
                                                                               note=m.name))
    console.print(f"testbed: {len(testbed.testsets)} test sets; zoo: {len(zoo)} models "
                  f"({', '.join(f'{n} {c}' for c, n in Counter(m.category for m in zoo).items())})")

    with client_for(ctx) as client:
        _register(client, testbed, settings.shard_bytes)
        _submit(client, zoo)
        client.request_evaluations()  # a re-run: anything missing or failed is queued again
        _wait(client, {m.name for m in zoo}, {t.name for t in testbed.testsets} | {UNLABELLED_NAME}, timeout_s)
        _summary(client, testbed)
    console.print(f"\ndone in {time.monotonic() - started:.0f} s. Leaderboard: [bold]{settings.leaderboard_url}[/]"
                  f"   Prefect UI: {settings.prefect_api.removesuffix('/api')}")


def _register(client: Client, testbed: Testbed, shard_bytes: int) -> None:
    existing = {t.spec.name: t.spec.num_samples for t in client.list_testsets()}
    for t in testbed.testsets:
        if t.name in existing and existing[t.name] != t.num_samples:
            raise FailedPrecondition(
                f"this stack already holds a test set {t.name} of {existing[t.name]} samples, not this testbed's "
                f"{t.num_samples} (another --small/--seed): run the demo with another --state-dir")
    todo = [t for t in testbed.testsets if t.name not in existing]
    with _progress() as progress:
        task = progress.add_task("registering test sets", total=len(testbed.testsets),
                                 completed=len(testbed.testsets) - len(todo), note="")
        for t in todo:  # the reference comes first in the testbed's order
            progress.update(task, note=t.name)
            upload_testset(client, t.path, name=t.name, kind=vocab.kind_value(t.kind), reference=t.reference,
                           group=t.group, description=t.description, num_classes=10, shard_bytes=shard_bytes,
                           extra_references=t.extra_references)
            progress.advance(task)
    if UNLABELLED_NAME not in existing:
        from shiftboard.demo import NATURAL_NAME

        natural = next(t for t in testbed.testsets if t.name == NATURAL_NAME)
        upload_testset(client, natural.path, name=UNLABELLED_NAME, kind=vocab.kind_value(natural.kind),
                       reference=natural.reference, num_classes=10, shard_bytes=shard_bytes, unlabelled=True,
                       description=f"the images of {NATURAL_NAME} without labels: its accuracy is estimated")


def _submit(client: Client, zoo: list[ZooModel]) -> None:
    from shiftboard.demo import INPUT_SHAPE, NUM_CLASSES, VALUE_RANGE

    existing = {(m.metadata.name, m.metadata.version) for m in client.list_models()}
    with _progress() as progress:
        task = progress.add_task("submitting models", total=len(zoo), note="")
        for m in zoo:
            progress.update(task, note=m.name)
            if (m.name, "1") not in existing:
                c, h, w = INPUT_SHAPE
                client.submit_model(m.path, pb.ModelMetadata(
                    name=m.name, version="1", format=pb.MODEL_FORMAT_TORCHSCRIPT,
                    input=pb.InputSpec(channels=c, height=h, width=w, value_min=VALUE_RANGE[0],
                                       value_max=VALUE_RANGE[1]),
                    num_classes=NUM_CLASSES, category=vocab.category_value(m.category), description=m.description,
                    tags=list(m.tags)))
            progress.advance(task)


def _wait(client: Client, models: set[str], testsets: set[str], timeout_s: float) -> None:
    total = len(models) * len(testsets)
    deadline = time.monotonic() + timeout_s
    with _progress() as progress:
        task = progress.add_task("evaluating through Triton", total=total, note="")
        while True:
            mine = [e for e in client.list_evaluations() if e.key.model in models and e.key.testset in testsets]
            done = [e for e in mine if e.status in DONE]
            failed = sum(e.status == pb.EVALUATION_STATUS_FAILED for e in mine)
            rate = sum(e.samples_per_second for e in mine if e.status == pb.EVALUATION_STATUS_RUNNING)
            progress.update(task, completed=len(done),
                            note=f"{failed} failed" if failed else (f"{rate:,.0f} samples/s" if rate else ""))
            if len(done) >= total:
                break
            if time.monotonic() > deadline:
                raise Unavailable(f"{total - len(done)} of {total} evaluations unfinished after {timeout_s:.0f} s: "
                                  "`shiftboard eval watch` follows them; re-run `shiftboard demo` to summarise")
            time.sleep(2)
    if failed:
        err_console.print(f"[yellow]{failed} evaluation(s) failed:[/] `shiftboard eval list --status failed`")


def _mean(values: list[float]) -> str:
    return f"{statistics.fmean(values):+.1f}" if values else "n/a"


def _estimates(client: Client, natural: pb.Leaderboard) -> None:
    """The unlabelled twin's estimates against the natural shift's measured accuracies (same images)."""
    try:
        board = client.leaderboard(shift=UNLABELLED_NAME)
    except NotFound:
        return
    measured = {r.model: r.shift_acc for r in natural.rows}
    errors = [abs(r.shift_acc - measured[r.model]) for r in board.rows if r.model in measured]
    if not board.agreement.ok or not errors:
        console.print(f"unlabelled shift {UNLABELLED_NAME}: no estimate ({board.agreement.reason or 'no models'})")
        return
    console.print(f"unlabelled shift [bold]{UNLABELLED_NAME}[/] (the same images, no labels): agreement line "
                  f"R² = {board.agreement.r2:.3f} over {board.agreement.n_pairs} model pairs; "
                  f"{board.estimate_method} estimates within {100 * statistics.fmean(errors):.1f} pp of the measured "
                  f"accuracy on average (max {100 * max(errors):.1f} pp, {len(errors)} models)")
    if board.agreement.warning:
        console.print(f"[yellow]warning:[/] {board.agreement.warning}")


def _plane(natural: pb.Leaderboard) -> None:
    """The natural shift's fit over both its references, beside the single-reference one."""
    plane = natural.plane
    if not plane.ok:
        if plane.reason:
            console.print(f"no plane over {natural.shift}'s references: {plane.reason}", markup=False)
        return
    rows = [r for r in natural.rows if r.has_plane_er and r.has_er]
    by_category: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        by_category.setdefault(r.category, []).append((r.er, r.plane_er))
    means = "; ".join(f"{category} {_mean([a for a, _ in pairs])} -> {_mean([b for _, b in pairs])}"
                      for category, pairs in sorted(by_category.items()))
    console.print(f"plane over {', '.join(plane.references)} (R² = {plane.r2:.3f}, {plane.n} baseline models): "
                  f"mean ER pp, one reference -> both: {means}", markup=False)


def _summary(client: Client, testbed: Testbed) -> None:
    from shiftboard.demo import CORRUPTIONS_GROUP, NATURAL_NAME

    console.rule("[bold]what the testbed shows")
    fits = {}
    for transform in ("logit", "probit"):
        fits[transform] = client.leaderboard(shift=NATURAL_NAME, transform=transform)
    natural = fits["logit"]
    if not natural.fit.ok:
        console.print(f"natural shift: {natural.fit.reason}")
        return
    console.print(f"natural shift [bold]{NATURAL_NAME}[/]: standard models lie on a line, "
                  f"R² = {natural.fit.r2:.3f} (logit), {fits['probit'].fit.r2:.3f} (probit), "
                  f"over {natural.fit.n} baseline models")
    try:
        group = client.leaderboard(group=CORRUPTIONS_GROUP)
    except NotFound:
        group = pb.Leaderboard()
    categories = ("standard", "robustness-intervention", "more-data")
    table = Table("category", "models", f"mean ER on {NATURAL_NAME} (pp)", "mean ER on noise shifts (pp)",
                  "mean ER on all corruptions (pp)", title="effective robustness by category (logit fit)")
    for category in categories:
        natural_er = [r.er for r in natural.rows if r.category == category and r.has_er]
        noise_er = [r.er for b in group.shifts if "noise" in b.shift for r in b.rows
                    if r.category == category and r.has_er]
        all_er = [g.mean_er for g in group.group_rows if g.category == category and g.has_er]
        table.add_row(category, str(sum(r.category == category for r in natural.rows)), _mean(natural_er),
                      _mean(noise_er), _mean(all_er))
    console.print(table)
    _estimates(client, natural)
    _plane(natural)
    top = [r for r in natural.rows if r.has_er][:3]
    console.print("most robust on the natural shift: " + ", ".join(
        f"{r.model} ({r.category}, {r.er:+.1f} pp)" for r in top))
