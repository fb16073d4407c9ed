"""`shiftboard eval ...`, `shiftboard predictions`, `shiftboard accuracy`: progress and results."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from shiftboard.cli._common import cli_errors, client_for, console, err_console, model_version, print_json
from shiftboard.client import Client
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument
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
                      escape(v["error"][:80]))
    if views:
        console.print(table)
        return
    given = [f"{option} {value}" for option, value in (("--model", model), ("--testset", testset),
                                                        ("--status", status)) if value]
    if given:
        console.print(f"no evaluation matches {' '.join(given)}: `shiftboard eval list` shows every evaluation",
                      markup=False, highlight=False, soft_wrap=True)
    else:
        console.print("no evaluations yet: they start when models and test sets are added")


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
                    progress.console.print(f"[red]{k[0]}:{k[1]} on {k[2]} failed:[/] {escape(e.error)}",
                                           highlight=False)
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
    rerun: bool = typer.Option(False, "--rerun", help="Infer every shard again, also of pairs that succeeded (their "
                               "results stay until the rerun has every shard)."),
) -> None:
    """Queue evaluations: one pair, or every missing, failed or stuck pair (what the scheduled sweep does)."""
    if bool(model) != bool(testset):
        raise InvalidArgument("give both --model and --testset, or neither (every missing, failed or stuck pair)")
    if version and not model:
        raise InvalidArgument("--version needs --model and --testset")
    keys = [pb.EvaluationKey(model=model, version=version, testset=testset)] if model else None
    with client_for(ctx) as client:
        evaluations = client.request_evaluations(keys, rerun=rerun)
    under_way = [e for e in evaluations if e.status == pb.EVALUATION_STATUS_RUNNING]
    queued = len(evaluations) - len(under_way)
    if keys and not evaluations:
        raise InvalidArgument(f"{model} on {testset} cannot be evaluated: `shiftboard eval list --model {model}` "
                              "shows why")
    text = f"queued {queued} evaluation(s)"
    if under_way:
        text += f"; {len(under_way)} already running (left as they are)"
    console.print(f"{text}; `shiftboard eval watch` follows them")


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
    _check_writable(output)
    with client_for(ctx) as client:
        key = _finished(client, model, version, testset)
        batches = client.predictions(model, testset, key.version)
    def column(name: str, dtype: Any) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(b, name), dtype=dtype) for b in batches]) if batches else \
            np.zeros(0, dtype)
    top5 = column("top5", np.int32).reshape(-1, 5)
    table = pa.table({"sample": column("sample", np.int64), "label": column("label", np.int32),
                      "top1": column("top1", np.int32),
                      **{f"top5_{i + 1}": top5[:, i] for i in range(5)},
                      "confidence": column("confidence", np.float32), "correct": column("correct", bool)})
    # Written next to the target, then renamed over it: a failure leaves no partial file.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    os.close(fd)
    try:
        if suffix == ".parquet":
            pq.write_table(table, tmp_name)
        else:
            pa_csv.write_csv(table, tmp_name)
        os.replace(tmp_name, output)
    except OSError as exc:
        raise InvalidArgument(f"--output {output}: cannot be written ({exc.strerror or exc}): choose another "
                              "path") from None
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    err_console.print(f"wrote {table.num_rows:,} predictions of {model}:{key.version} on {testset} to {output}",
                      markup=False, highlight=False)


def _check_writable(output: Path) -> None:
    """Refuse, before anything is fetched, an --output that cannot be written."""
    folder = output.parent
    if not folder.is_dir():
        raise InvalidArgument(f"--output {output}: the directory {folder} does not exist: create it "
                              f"(mkdir -p {folder}) or choose another path")
    if output.is_dir():
        raise InvalidArgument(f"--output {output}: is a directory: give a file name ending in .parquet or .csv")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidArgument(f"--output {output}: the directory {folder} is not writable: choose another path")


def _finished(client: Client, model: str, version: str, testset: str) -> pb.EvaluationKey:
    """The key of the succeeded evaluation of (model, version or its newest, test set); refuses any other."""
    evaluations = client.list_evaluations(model=model, testset=testset)
    if not evaluations:
        client.get_testset(testset)  # NotFound names a test set that does not exist
        client.predictions(model, testset, version)  # the gateway's reason: no such model, an imported result
    version = model_version(client, model, version)
    pair = f"{model}:{version} on {testset}"
    found = [e for e in evaluations if e.key.version == version]
    if not found:
        raise FailedPrecondition(f"{pair} has no evaluation: `shiftboard eval request --model {model} --testset "
                                 f"{testset}` queues it")
    e = found[0]
    word = STATUS.get(e.status, "unknown")
    if e.status == pb.EVALUATION_STATUS_SUCCEEDED:
        return e.key
    if e.status == pb.EVALUATION_STATUS_FAILED:
        raise FailedPrecondition(f"{pair} is not finished: it failed ({e.error or 'no reason given'}); "
                                 f"`shiftboard eval request --model {model} --testset {testset}` queues it again")
    raise FailedPrecondition(f"{pair} is not finished: it is {word} ({e.shards_done}/{e.shards_total} shards); "
                             f"`shiftboard eval watch --model {model} --until-done` follows it, then export again")


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
