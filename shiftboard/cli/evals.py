"""`shiftboard eval ...`, `shiftboard predictions`, `shiftboard accuracy`: progress and results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from shiftboard.cli._common import cli_errors, client_for, console, err_console, print_json
from shiftboard.domain.errors import InvalidArgument
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab

app = typer.Typer(help="Follow and request evaluations of (model, test set) pairs.", no_args_is_help=True)

STATUS = {v: k for k, v in vocab.STATUSES.items()}
STATUS_VALUE = vocab.STATUSES
COLOUR = {vocab.PENDING: "yellow", vocab.RUNNING: "cyan", vocab.SUCCEEDED: "green", vocab.FAILED: "red"}
#: "pending, running, succeeded or failed".
_STATUS_WORDS = ", ".join(list(STATUS_VALUE)[:-1]) + " or " + list(STATUS_VALUE)[-1]


def evaluation_view(e: pb.Evaluation) -> dict[str, Any]:
    return {
        "model": e.key.model, "version": e.key.version, "testset": e.key.testset,
        "status": STATUS.get(e.status, "unknown"), "shards_done": e.shards_done, "shards_total": e.shards_total,
        "samples_done": e.samples_done, "samples_total": e.samples_total,
        "samples_per_second": round(e.samples_per_second, 1), "error": e.error, "attempts": e.attempts,
        "flow_run_id": e.flow_run_id,
    }


@app.command("list")
@cli_errors
def list_evaluations(
    ctx: typer.Context,
    model: str = typer.Option("", "--model", "-m", help="Only this model."),
    testset: str = typer.Option("", "--testset", "-t", help="Only this test set."),
    status: str = typer.Option("", "--status", help=f"{_STATUS_WORDS}."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list (stable keys)."),
) -> None:
    """Each evaluation: status, shards done/total, samples/s, error."""
    if status and status not in STATUS_VALUE:
        raise InvalidArgument(f"--status {status!r}: use {_STATUS_WORDS}")
    with client_for(ctx) as client:
        views = [evaluation_view(e) for e in client.list_evaluations(
            model=model, testset=testset, status=STATUS_VALUE.get(status, 0))]
    if as_json:
        print_json(views)
        return
    table = Table("model", "version", "test set", "status", "shards", "samples/s", "error")
    for v in views:
        table.add_row(v["model"], v["version"], v["testset"], f"[{COLOUR[v['status']]}]{v['status']}[/]",
                      f"{v['shards_done']}/{v['shards_total']}", f"{v['samples_per_second']:,.0f}",
                      v["error"][:80])
    console.print(table if views else "no evaluations yet: they start when models and test sets are added")


@app.command("watch")
@cli_errors
def watch(
    ctx: typer.Context,
    model: str = typer.Option("", "--model", "-m", help="Only this model."),
    testset: str = typer.Option("", "--testset", "-t", help="Only this test set."),
    until_done: bool = typer.Option(False, "--until-done", help="Return when nothing is pending or running."),
) -> None:
    """Live progress bars of the evaluations (Ctrl-C to stop watching)."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[status]}"), TextColumn("{task.fields[rate]}"), console=console)
    tasks: dict[tuple[str, str, str], TaskID] = {}
    states: dict[tuple[str, str, str], pb.EvaluationStatus] = {}
    with client_for(ctx) as client, Live(progress, console=console, refresh_per_second=4):
        stream = client.watch_evaluations(model=model, testset=testset)
        try:
            for e in stream:
                k = (e.key.model, e.key.version, e.key.testset)
                word = STATUS.get(e.status, "?")
                text = f"[{COLOUR.get(word, 'white')}]{word}[/]"
                rate = f"{e.samples_per_second:,.0f}/s" if e.samples_per_second else ""
                if k not in tasks:
                    tasks[k] = progress.add_task(f"{k[0]}:{k[1]} on {k[2]}", total=e.shards_total,
                                                 completed=e.shards_done, status=text, rate=rate)
                else:
                    progress.update(tasks[k], total=e.shards_total, completed=e.shards_done, status=text, rate=rate)
                if e.error and e.status == pb.EVALUATION_STATUS_FAILED:
                    progress.console.print(f"[red]{k[0]}:{k[1]} on {k[2]} failed:[/] {e.error}", highlight=False)
                states[k] = e.status
                if until_done and states and all(
                        STATUS.get(s) in vocab.FINISHED for s in states.values()):
                    break
        except KeyboardInterrupt:
            pass
        finally:
            stream.close()  # type: ignore[attr-defined]


@app.command("request")
@cli_errors
def request(
    ctx: typer.Context,
    model: str = typer.Option("", "--model", "-m", help="With --testset: evaluate this pair."),
    version: str = typer.Option("", "--version", "-v", help="Model version (default: the newest)."),
    testset: str = typer.Option("", "--testset", "-t", help="With --model: evaluate this pair."),
    rerun: bool = typer.Option(False, "--rerun", help="Also re-evaluate pairs that succeeded."),
) -> None:
    """Queue evaluations: one pair, or every missing or failed pair (what the scheduled sweep does)."""
    if bool(model) != bool(testset):
        raise InvalidArgument("give both --model and --testset, or neither (every missing pair)")
    keys = [pb.EvaluationKey(model=model, version=version, testset=testset)] if model else None
    with client_for(ctx) as client:
        queued = client.request_evaluations(keys, rerun=rerun)
    console.print(f"queued {len(queued)} evaluation(s); `shiftboard eval watch` follows them")


@cli_errors
def predictions(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name."),
    testset: str = typer.Argument(..., help="Test-set name."),
    output: Path = typer.Option(..., "--output", "-o", help="File to write: .parquet or .csv."),
    version: str = typer.Option("", "--version", "-v", help="Model version (default: the newest)."),
) -> None:
    """Export every per-sample prediction of one evaluation (sample, label, top1, top5, confidence, correct)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    suffix = output.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InvalidArgument(f"{output}: the output must end in .parquet or .csv")
    with client_for(ctx) as client:
        batches = client.predictions(model, testset, version)
    def column(name: str, dtype: Any) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(b, name), dtype=dtype) for b in batches]) if batches else \
            np.zeros(0, dtype)
    top5 = column("top5", np.int32).reshape(-1, 5)
    table = pa.table({"sample": column("sample", np.int64), "label": column("label", np.int32),
                      "top1": column("top1", np.int32),
                      **{f"top5_{i + 1}": top5[:, i] for i in range(5)},
                      "confidence": column("confidence", np.float32), "correct": column("correct", bool)})
    if suffix == ".parquet":
        pq.write_table(table, output)
    else:
        pa_csv.write_csv(table, output)
    err_console.print(f"wrote {table.num_rows:,} predictions to {output}")


@cli_errors
def accuracy(
    ctx: typer.Context,
    model: str = typer.Option("", "--model", "-m", help="Only this model."),
    testset: str = typer.Option("", "--testset", "-t", help="Only this test set."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list (stable keys)."),
) -> None:
    """Top-1 accuracy per (model, test set), with sample count and Clopper-Pearson 95% interval."""
    with client_for(ctx) as client:
        rows: list[dict[str, Any]] = [
            {"model": a.key.model, "version": a.key.version, "testset": a.key.testset, "samples": a.samples,
             "correct": a.correct, "accuracy": round(a.accuracy, 6), "ci_low": round(a.ci_low, 6),
             "ci_high": round(a.ci_high, 6)} for a in client.accuracy(model=model, testset=testset)]
    if as_json:
        print_json(rows)
        return
    table = Table("model", "version", "test set", "samples", "accuracy", "95% interval")
    for r in rows:
        table.add_row(r["model"], r["version"], r["testset"], f"{r['samples']:,}", f"{100 * r['accuracy']:.2f}%",
                      f"[{100 * r['ci_low']:.2f}, {100 * r['ci_high']:.2f}]")
    console.print(table if rows else "no finished evaluations yet")
