"""`shiftboard leaderboard` and `shiftboard compare`: effective robustness from the command line."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from shiftboard.cli._common import cli_errors, client_for, console, print_json
from shiftboard.domain.errors import InvalidArgument
from shiftboard.wire.views import leaderboard_view, plane_equation

#: The largest value of a uint32 field of the wire messages.
MAX_UINT32 = 2**32 - 1


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def _print_agreement(agreement: dict, method: str) -> None:
    """An unlabelled shift's agreement line and, when it fits poorly, the warning (≈ marks estimates)."""
    if agreement["ok"]:
        console.print(f"no labels: ≈ shift accuracy estimated by agreement on the line ({method or 'none'}); "
                      f"agreement line over {agreement['n_pairs']} model pairs (probit): slope "
                      f"{agreement['slope']:.3f}, intercept {agreement['intercept']:.3f}, R² {agreement['r2']:.3f}",
                      highlight=False)
    if agreement["warning"]:
        console.print(f"[bold red]warning:[/] {escape(agreement['warning'])}", highlight=False)


@cli_errors
def leaderboard(
    ctx: typer.Context,
    shift: str = typer.Option("", "--shift", "-s", help="A shifted test set."),
    group: str = typer.Option("", "--group", "-g", help="Or a group of shifts (mean accuracy and ER)."),
    transform: str = typer.Option("logit", "--transform", help="logit (Taori et al.) or probit (Miller et al.)."),
    resamples: int = typer.Option(0, "--resamples", help="Bootstrap resamples (default: the gateway's)."),
    extremes: str = typer.Option("", "--extremes", help="Accuracies of 0 or 1 in the fit: exclude (left out, "
                                 "listed) or clip (by half a sample); default: exclude with imported results."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (stable keys)."),
) -> None:
    """Models ranked by effective robustness: accuracy beyond the standard models' trend."""
    if bool(shift) == bool(group):
        raise InvalidArgument("give --shift NAME or --group NAME")
    if not 0 <= resamples <= MAX_UINT32:
        raise InvalidArgument(f"--resamples {resamples}: give a number of bootstrap resamples, e.g. 1000 (0: the "
                              "gateway's default)")
    with client_for(ctx) as client:
        view = leaderboard_view(client.leaderboard(shift=shift, group=group, transform=transform,
                                                   resamples=resamples, extremes=extremes))
    if as_json:
        print_json(view)
        return
    for board in view.get("shifts", [view]):
        fit = board["fit"]
        console.print(f"\n[bold]{board['shift']}[/] (reference {board['reference']}), {fit['transform']} axes")
        if fit["ok"]:
            console.print(f"baseline fit over {fit['n_baseline']} models: slope {fit['slope']:.3f}, "
                          f"intercept {fit['intercept']:.3f}, R² {fit['r2']:.3f}")
        plane = board.get("plane")
        if plane is not None and plane["ok"]:
            console.print(f"plane fit over {plane['n_baseline']} models ({', '.join(plane['references'])}): "
                          f"{escape(plane_equation(plane))}, R² {plane['r2']:.3f}", highlight=False)
        agreement = board.get("agreement")
        if agreement is not None:
            _print_agreement(agreement, board.get("estimate_method") or "")
        for note in board["notes"]:
            if agreement is None or note != agreement["warning"]:
                console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
        columns = ["#", "model", "category", "src", "ref acc %", "shift acc %", "ER pp", "ER 95% CI", ""]
        if plane is not None:
            columns.insert(8, "plane ER pp")
        table = Table(*columns)
        for r in board["rows"]:
            ci = r["er_ci"]
            cells = [str(r["rank"] or ""), r["model"], r["category"], "imported" if r["imported"] else "measured",
                     _pct(r["ref_acc"]), ("≈" if r.get("estimated") else "") + _pct(r["shift_acc"]),
                     "" if r["er"] is None else ("≈" if r.get("estimated") else "") + f"{r['er']:+.2f}",
                     "" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]", "tied" if r["tied"] else ""]
            if plane is not None:
                pci = r.get("plane_er_ci")
                cells.insert(8, "" if r["plane_er"] is None else f"{r['plane_er']:+.2f}"
                             + ("" if pci is None else f" [{pci[0]:+.2f}, {pci[1]:+.2f}]"))
            table.add_row(*cells)
        console.print(table)
        sources = sorted({(r["source"], r["version"]) for r in board["rows"] if r["imported"]})
        for source, version in sources:
            console.print(f"imported: {source} (version {str(version)[:12]}), accuracy only", highlight=False)
    if view.get("group_rows"):
        table = Table("#", "model", "category", "src", "shifts", "mean ref %", "mean shift %", "mean ER pp",
                      "95% CI", "", title=f"group {view['group']}")
        for g in view["group_rows"]:
            ci = g["mean_er_ci"]
            table.add_row(str(g["rank"] or ""), g["model"], g["category"], "imported" if g["imported"] else "measured",
                          f"{g['shifts']}/{g['of']}", _pct(g["mean_ref_acc"]), _pct(g["mean_shift_acc"]),
                          "" if g["mean_er"] is None else f"{g['mean_er']:+.2f}",
                          "" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]",
                          "tied" if g["tied"] else ("" if g["complete"] else "partial"))
        console.print(table)


@cli_errors
def compare(
    ctx: typer.Context,
    model_a: str = typer.Argument(..., help="Model name or name:version."),
    model_b: str = typer.Argument(..., help="Model name or name:version."),
    testset: str = typer.Option(..., "--testset", "-t", help="Test set both were evaluated on."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """McNemar's paired test: do two models differ on the same samples?"""
    with client_for(ctx) as client:
        c = client.compare(model_a, model_b, testset)
    view = {"model_a": c.model_a, "model_b": c.model_b, "testset": c.testset, "samples": c.samples,
            "acc_a": round(c.acc_a, 6), "acc_b": round(c.acc_b, 6), "only_a_correct": c.only_a_correct,
            "only_b_correct": c.only_b_correct, "statistic": round(c.statistic, 6), "p_value": c.p_value,
            "method": c.method}
    if as_json:
        print_json(view)
        return
    console.print(f"{c.model_a}: {100 * c.acc_a:.2f}%   {c.model_b}: {100 * c.acc_b:.2f}%   on {c.testset} "
                  f"({c.samples:,} samples)")
    console.print(f"only {c.model_a} right: {c.only_a_correct:,}; only {c.model_b} right: {c.only_b_correct:,}; "
                  f"McNemar ({c.method}) p = {c.p_value:.4g}")
