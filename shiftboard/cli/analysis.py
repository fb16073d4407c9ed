"""`shiftboard calibration` and `shiftboard consistency`: analyses of the stored per-sample predictions.

* ``calibration --testset T``: ECE (15 equal-mass bins, bootstrap interval) of every model on T and,
  for a shift, on its reference, with the baseline trend of shift ECE on reference ECE;
* ``consistency A B --testset T``: error consistency (Cohen's kappa of correctness) of two models;
* ``consistency --testset T --matrix [MODEL ...]``: the kappa of every pair (of the models named, or of
  every model evaluated on T) and each model's unique solves (samples no baseline model gets right).
"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Column, Table

from shiftboard.cli._common import cli_errors, client_for, console, print_json
from shiftboard.domain.errors import InvalidArgument
from shiftboard.wire.analysis import calibration_view, consistency_view, matrix_view

#: The largest value of a uint32 field of the wire messages.
MAX_UINT32 = 2**32 - 1


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def _ci(pair: list[float | None] | None) -> str:
    if not pair or pair[0] is None or pair[1] is None:
        return ""
    return f"[{100 * pair[0]:.2f}, {100 * pair[1]:.2f}]"


def _resamples(resamples: int) -> int:
    if not 0 <= resamples <= MAX_UINT32:
        raise InvalidArgument(f"--resamples {resamples}: give a number of bootstrap resamples, e.g. 200 (0: 200)")
    return resamples


@cli_errors
def calibration(
    ctx: typer.Context,
    testset: str = typer.Option(..., "--testset", "-t", help="A labelled test set (a shift, or a reference)."),
    resamples: int = typer.Option(0, "--resamples", help="Bootstrap resamples of each ECE interval (0: 200)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (stable keys)."),
) -> None:
    """Expected calibration error per model (15 equal-mass bins), on a shift and on its reference."""
    with client_for(ctx) as client:
        view = calibration_view(client.calibration(testset, _resamples(resamples)))
    if as_json:
        print_json(view)
        return
    console.print(f"\n[bold]{escape(view['testset'])}[/]" + (f" (reference {escape(view['reference'])})"
                                                            if view["reference"] else "")
                  + f": ECE over {view['bins']} equal-mass bins, {view['resamples']} bootstrap resamples, in %",
                  highlight=False)
    trend = view["trend"]
    if trend and trend["ok"]:
        slope_ci = trend["slope_ci"]
        console.print(f"baseline trend over {trend['n_baseline']} models: ECE on the shift = {trend['slope']:.3f} "
                      f"x ECE on the reference {trend['intercept']:+.4f}, R² {trend['r2']:.3f}"
                      + (f", slope 95% CI [{slope_ci[0]:.3f}, {slope_ci[1]:.3f}]" if slope_ci else ""),
                      highlight=False)
    for note in view["notes"]:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    table = Table(Column("model", no_wrap=True), "base", "acc %", "ECE % [95% CI]", "ref ECE % [95% CI]",
                  "beyond trend pp [95% CI]")
    for r in view["rows"]:
        table.add_row(r["model"], "yes" if r["baseline"] else "", _pct(r["accuracy"]),
                      f"{_pct(r['ece'])} {_ci(r['ece_ci'])}", f"{_pct(r['ref_ece'])} {_ci(r['ref_ece_ci'])}".strip(),
                      f"{_pct(r['ece_beyond_trend'], signed=True)} {_ci(r['ece_beyond_trend_ci'])}".strip())
    console.print(table)


@cli_errors
def consistency(
    ctx: typer.Context,
    models: list[str] | None = typer.Argument(None, help="MODEL_A MODEL_B (name or name:version); with "
                                              "--matrix, the models of the matrix (default: every model)."),
    testset: str = typer.Option(..., "--testset", "-t", help="A labelled test set the models were evaluated on."),
    matrix: bool = typer.Option(False, "--matrix", help="The kappa of every pair of models, and their unique "
                                "solves (samples no baseline model gets right)."),
    resamples: int = typer.Option(0, "--resamples", help="Bootstrap resamples of the intervals (0: 200)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (stable keys)."),
) -> None:
    """Error consistency: Cohen's kappa of two models' correctness beyond what their accuracies predict."""
    names = list(models or [])
    if matrix:
        with client_for(ctx) as client:
            _matrix(matrix_view(client.consistency_matrix(testset, names, _resamples(resamples))), as_json)
        return
    if len(names) != 2:
        raise InvalidArgument(f"give two models (MODEL_A MODEL_B), not {len(names)}; or --matrix for every pair")
    with client_for(ctx) as client:
        view = consistency_view(client.consistency(names[0], names[1], testset, _resamples(resamples)))
    if as_json:
        print_json(view)
        return
    kappa = "undefined" if view["kappa"] is None else f"{view['kappa']:.3f}"
    low, high = view["kappa_ci"]
    interval = "" if low is None or high is None else f" (95% CI [{low:.3f}, {high:.3f}])"
    console.print(f"{view['model_a']}: {100 * view['acc_a']:.2f}%   {view['model_b']}: {100 * view['acc_b']:.2f}%   "
                  f"on {view['testset']} ({view['samples']:,} samples)", highlight=False)
    console.print(f"agreement in correctness: observed {view['observed']:.4f}, expected from the accuracies "
                  f"{view['expected']:.4f}; kappa {kappa}{interval}", highlight=False)
    if view["note"]:
        console.print(f"[yellow]note:[/] {escape(view['note'])}", highlight=False)


def _matrix(view: dict, as_json: bool) -> None:
    if as_json:
        print_json(view)
        return
    console.print(f"\n[bold]{escape(view['testset'])}[/]: error consistency (kappa) of every pair, "
                  f"{view['samples']:,} samples", highlight=False)
    for note in view["notes"]:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    order = view["order"]
    table = Table(Column("model", no_wrap=True), *(str(i + 1) for i in range(len(order))))
    for i, row in enumerate(view["kappa"]):
        table.add_row(f"{i + 1} {order[i]}", *("" if k is None else f"{k:.2f}" for k in row))
    console.print(table)
    if view["kappa_ci"] is not None:
        console.print(f"95% intervals of each kappa ({view['resamples']} bootstrap resamples): --json, `kappa_ci`",
                      highlight=False)
    solves = Table(Column("model", no_wrap=True), "category", "baseline", "acc %", "unique solves [95% CI]",
                   title="unique solves: samples a model gets right that no (other) baseline model does")
    for m in view["models"]:
        ci = m["unique_solves_ci"]
        solves.add_row(m["model"], m["category"], "yes" if m["baseline"] else "", _pct(m["accuracy"]),
                       f"{m['unique_solves']:,}" + ("" if ci is None else f" [{ci[0]:,.0f}, {ci[1]:,.0f}]"))
    console.print(solves)
