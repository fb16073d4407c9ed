"""Shift page: one shift's ranking by effective robustness and its reference-vs-shift scatter plot.

Or, for a group of shifts, the models' mean accuracies and ER with each shift's ranking in a tab.
A page script of ``app.py`` (run by ``st.navigation`` with ``__name__ == "__main__"``); importing it
does nothing. Its selectors are bound to the URL (``?shift=``, ``?group=``, ``?transform=``).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from shiftboard.domain.errors import ShiftboardError
from shiftboard.leaderboard import charts, data, ui
from shiftboard.v1 import shiftboard_pb2 as pb

VIEWS = ("shift", "group")
_RANKING_COLUMNS = ["rank", "tie", "model", "category", "baseline", "ref_acc", "shift_acc", "er",
                    "er_interval", "predicted_shift_acc", "n_ref", "n_shift", "clipped", "origin", "source",
                    "testbed_type", "tags"]
_RANKING_CONFIG = {
    "rank": st.column_config.NumberColumn("rank", format="%d", width="small"),
    "tie": st.column_config.TextColumn("tie", width="small",
                                       help="Its ER interval overlaps the leader's: not told apart from it."),
    "baseline": st.column_config.CheckboxColumn("in fit", help="A baseline model, in the fit.",
                                                width="small"),
    "er": st.column_config.NumberColumn("ER (pp)", format="%+.2f",
                                        help="Shift accuracy minus the fit's prediction, in points."),
    "er_interval": st.column_config.TextColumn("ER interval", help="Bootstrap interval of the ER."),
    "n_ref": st.column_config.NumberColumn("reference samples", format="localized"),
    "n_shift": st.column_config.NumberColumn("shift samples", format="localized"),
    "clipped": st.column_config.CheckboxColumn("clipped", width="small",
                                               help="An accuracy of 0 or 1 was clipped before transforming."),
    "plane_er": st.column_config.NumberColumn("plane ER (pp)", format="%+.2f",
                                              help="Shift accuracy minus the plane fit over every reference."),
    "plane_er_interval": st.column_config.TextColumn("plane ER interval",
                                                     help="Bootstrap interval of the plane ER (accuracies redrawn, "
                                                          "baseline models resampled, the plane refitted)."),
}


_ESTIMATED_CONFIG = {
    **_RANKING_CONFIG,
    "estimated": st.column_config.CheckboxColumn("estimate", width="small",
                                                 help="Shift accuracy estimated without labels (agreement on "
                                                      "the line); its interval covers sampling noise, "
                                                      "not the method's error where the line fits poorly."),
    "shift_acc": st.column_config.NumberColumn("≈ shift acc", format="%.2f%%",
                                               help="Estimated from top-1 agreement (ALine-D)."),
    "er": st.column_config.NumberColumn("≈ ER (pp)", format="%+.2f",
                                        help="The estimate minus the baseline fit through the baseline models' "
                                             "estimates, in points."),
}

#: Groups with more shifts than this show the mean table and heatmap, not one tab per shift.
MAX_GROUP_TABS = 30


def declared_groups(names: set[str]) -> set[str]:
    """The groups of settings declared by imported results (the testbed's protocols name them)."""
    from shiftboard.testbed import describe

    out: set[str] = set()
    for name in names:
        setting = describe(name)
        if setting is not None:
            out.update(setting.groups)
    return out


def render() -> None:
    gateway = ui.Gateway.from_env()
    testsets = {t.spec.name: t for t in ui.client(gateway).list_testsets()}
    shifts, groups = data.shifts_of(testsets.values()), data.groups_of(testsets.values())
    imported = ui.imported_key(gateway)
    if imported:  # settings declared by imported results have boards but no test set here
        declared = ui.overview(gateway, ui.fingerprint(), imported)
        references = {name: b.reference for name, b in declared.items()}
        shifts += sorted(set(declared) - set(shifts))
        groups = sorted(set(groups) | declared_groups(set(declared) - set(testsets)))
    else:
        references = {}
    header = st.container()  # the title names the selection, made below it
    if not shifts:
        header.title("Shift")
        st.info("No shifted test sets yet: add one with `shiftboard testset add PATH --name NAME "
                "--kind natural --reference REF`.")
        return
    controls = st.columns([1, 2, 1])
    # No format_func: a bound widget's URL value is its label, and "?view=group" reads well.
    view = controls[0].radio("View", VIEWS if groups else VIEWS[:1], horizontal=True, key="view",
                             bind="query-params", help="One shift, or the mean over a group of shifts.")
    transform = controls[2].radio("Transform", data.TRANSFORMS, horizontal=True, key="transform",
                                  bind="query-params",
                                  help="Axes and fit in logit (Taori et al.) or probit (Miller et al.) "
                                       "space.")
    if view == "group":
        group = controls[1].selectbox("Group", groups, key="group", bind="query-params")
        header.title(f"Group: {group}")
        members = [t.spec for t in testsets.values() if t.spec.group == group]
        board = ui.leaderboard(gateway, ui.fingerprint(*{n for s in members for n in (s.name, s.reference)})
                               + imported, group=group, transform=transform)
        _group(board, testsets, transform)
        return
    shift = controls[1].selectbox("Shift", shifts, key="shift", bind="query-params")
    header.title(f"Shift: {shift}")
    reference = testsets[shift].spec.reference if shift in testsets else references.get(shift, "")
    board = ui.leaderboard(gateway, ui.fingerprint(shift, reference) + imported, shift=shift, transform=transform)
    shift_board(board, testsets.get(shift), transform, key="one", caption=header)
    if not board.HasField("agreement"):  # an unlabelled shift has no per-sample correctness to compare
        _compare(gateway, board)


def shift_board(board: pb.Leaderboard, testset: pb.TestSet | None, transform: str, *, key: str,
                height: int = 560, caption: DeltaGenerator | None = None) -> None:
    """The ranking, fit, notes and scatter plot of one shift's leaderboard."""
    spec = testset.spec if testset else None
    facts = [f"reference **{board.reference}**"]
    if spec is not None:
        facts += [f"kind {pb.TestSetKind.Name(spec.kind).removeprefix('TEST_SET_KIND_').lower()}",
                  f"{spec.num_samples:,} samples"]
        if spec.group:
            facts.append(f"group {spec.group}")
    if board.class_subset:
        facts.append(f"scored on {len(board.class_subset)} classes (reference restricted to them)")
    estimated = board.HasField("agreement")
    if estimated:
        facts.append(f"no labels: shift accuracy ≈ estimated ({board.estimate_method or 'no estimate'})")
    (caption or st).caption(" · ".join(facts))
    if estimated and board.agreement.warning:
        st.warning(board.agreement.warning, icon=":material/warning:")
    rows = data.ranking_frame(board)
    if rows.empty:
        st.info("No model has finished on both this shift and its reference yet." if not estimated else
                "; ".join(board.notes) or "No estimate yet.")
        return
    fit = data.fit_summary(board)
    _headline(rows, fit)
    plot, side = st.columns([3, 2], gap="large")
    with side:
        _fit_notes(board, rows, fit, transform)
    with plot:
        st.altair_chart(charts.shift_scatter(rows, data.fit_frame(board), transform, shift=board.shift,
                                             reference=board.reference, height=height),
                        width="stretch", key=f"scatter-{key}")
    if estimated:
        _agreement(board, testset, key)
    if (plane := data.plane_summary(board)) is not None:  # several references: the plane beside the line
        rows = data.with_plane(rows, board)
        _plane(board, plane, transform, key)
    ui.table(rows, f"leaderboard-{board.shift}-{transform}", key=f"ranking-{key}",
             percent=("ref_acc", "shift_acc", "predicted_shift_acc", "plane_predicted_shift_acc"),
             config=_ESTIMATED_CONFIG if estimated else _RANKING_CONFIG,
             column_order=_plane_columns(["estimated", *_RANKING_COLUMNS] if estimated else _RANKING_COLUMNS,
                                         rows))


def _plane_columns(columns: list[str], rows: pd.DataFrame) -> list[str]:
    """The plane ER after the ER interval where the rows have it."""
    if "plane_er" not in rows:
        return columns
    at = columns.index("er_interval") + 1
    return [*columns[:at], "plane_er", "plane_er_interval", *columns[at:]]


def _plane(board: pb.Leaderboard, plane: dict[str, Any], transform: str, key: str) -> None:
    """A shift with several references: actual against plane-predicted shift accuracy, with the plane."""
    st.subheader("Against several references", anchor=False)
    frame = data.plane_frame(board)
    plot, side = st.columns([3, 2], gap="large")
    with side:
        refs = plane["references"]
        if plane["ok"]:
            terms = " ".join(f"{c:+.3f} · {transform}({r})" for c, r in zip(plane["coefficients"], refs, strict=True))
            st.markdown(f"**Plane fit** ({plane['n']} baseline models): {transform}(shift acc) = "
                        f"{terms.removeprefix('+')} {plane['intercept']:+.3f}, R² {plane['r2']:.3f}.")
            if not frame.empty:
                leader = frame.sort_values("plane_er", ascending=False).iloc[0]
                st.metric(f"most robust against the plane: {leader['model']}", f"{leader['plane_er']:+.2f} pp")
        else:
            st.warning(f"No plane fit over {', '.join(refs)}: {plane['reason']}", icon=":material/warning:")
        st.caption(f"This shift names {len(refs)} references ({', '.join(refs)}). The plane fits "
                   f"{transform}(shift accuracy) on {transform}(each reference's accuracy) over the baseline models "
                   "with results on all of them (Shi et al., NeurIPS 2023). Each point is a model: the shift "
                   "accuracy the plane predicts (x) against its own (y); the dashed line is y = x, and points above "
                   "it are effectively robust against every reference. The table's plane ER is the vertical "
                   "distance, in points.")
    if plane["ok"] and not frame.empty:
        with plot:
            st.altair_chart(charts.plane_scatter(frame, transform, shift=board.shift), width="stretch",
                            key=f"plane-{key}")


def _agreement(board: pb.Leaderboard, testset: pb.TestSet | None, key: str) -> None:
    """An unlabelled shift: the agreement line its estimates come from, and how to read it."""
    a = board.agreement
    plot, side = st.columns([3, 2], gap="large")
    with plot:
        st.altair_chart(charts.agreement_scatter(data.agreement_frame(board), slope=a.slope if a.ok else math.nan,
                                                 intercept=a.intercept if a.ok else math.nan,
                                                 r2=a.r2 if a.ok else math.nan,
                                                 n_samples=testset.spec.num_samples if testset else None,
                                                 shift=board.shift, reference=board.reference),
                        width="stretch", key=f"agreement-{key}")
    with side:
        if a.ok:
            st.markdown(f"**Agreement line** ({a.n_pairs} model pairs): probit(shift agreement) = {a.slope:.3f} · "
                        f"probit(reference agreement) {a.intercept:+.3f}, R² {a.r2:.3f} (trusted from "
                        f"{a.min_r2:.2f}).")
        else:
            st.markdown(f"**No agreement line**: {a.reason}")
        st.caption("This shift has no labels. Each point is a pair of models: how often their top-1 "
                   "predictions agree on the reference (x) and on the shift (y). Where agreement lies on a "
                   "line, accuracy lies on (nearly) the same line (Baek et al. 2022), which gives each model's "
                   "shift accuracy without labels (ALine-D). The ER of a row marked estimate is the estimate "
                   "minus the baseline fit through the baseline models' estimates; its interval resamples "
                   "both test sets and repeats the whole estimate, so it covers sampling noise, not the "
                   "method's error where agreement is off the line (then trust the R² warning).")


def _headline(rows: pd.DataFrame, fit: dict[str, Any]) -> None:
    """The fit's numbers and the most robust model, as metrics in one row."""
    leader = rows.iloc[0]
    cols = st.columns(5)
    cols[0].metric("baseline models", fit["n"], help="Models of the baseline categories in the fit.")
    if fit["ok"]:
        cols[1].metric("slope", f"{fit['slope']:.3f}")
        cols[2].metric("intercept", f"{fit['intercept']:+.3f}")
        cols[3].metric("R²", f"{fit['r2']:.3f}")
    if pd.notna(leader["er"]):
        cols[4].metric(f"most robust: {leader['model']}", f"{leader['er']:+.2f} pp",
                       help="The highest effective robustness on this shift.")


def _fit_notes(board: pb.Leaderboard, rows: pd.DataFrame, fit: dict[str, Any], transform: str) -> None:
    """Beside the plot: warnings, the fit's equation, the models tied with the leader, how to read the plot."""
    leader = rows.iloc[0]
    for note in board.notes:
        if note == fit["reason"] or "clipped" in note:
            st.warning(note, icon=":material/warning:")
    if fit["ok"]:
        interval = ""
        if fit["slope_ci"]:
            interval = (f" Bootstrap 95% intervals: slope [{fit['slope_ci'][0]:.3f}, "
                        f"{fit['slope_ci'][1]:.3f}], intercept [{fit['intercept_ci'][0]:+.3f}, "
                        f"{fit['intercept_ci'][1]:+.3f}].")
        st.markdown(f"**Baseline fit** ({fit['n']} models): {transform}(shift acc) = "
                    f"{fit['slope']:.3f} · {transform}(reference acc) {fit['intercept']:+.3f}.{interval}")
    tied = [m for m in rows[rows["tied"]]["model"] if m != leader["model"]]
    if pd.notna(leader["er"]) and tied:
        st.markdown(f"**Tied with the leader** (the interval of the paired ER difference contains 0): "
                    f"{', '.join(tied)}")
    if fit["ok"]:
        st.caption("Each point is a model; the dashed line is y = x (no drop), the solid line the "
                   "baseline fit with its bootstrap band. Points above the band are more robust than the "
                   "trend. Hover a point for its numbers.")
    else:
        st.caption("Each point is a model; the dashed line is y = x (no drop). The baseline fit, its "
                   "band and the ER appear once enough baseline models have results here.")
    for note in board.notes:
        if not (note == fit["reason"] or "clipped" in note):
            st.caption(f"Note: {note}")


def _group(board: pb.Leaderboard, testsets: dict[str, pb.TestSet], transform: str) -> None:
    st.caption(f"{len(board.shifts)} shifts: " + ", ".join(b.shift for b in board.shifts)
               + ". Means over the shifts each model has; ER only over shifts with a fit.")
    frame = data.group_frame(board)
    ui.table(frame, f"group-{board.group}-{transform}", key="group-rows",
             percent=("mean_ref_acc", "mean_shift_acc"), config={
                 "mean_er": st.column_config.NumberColumn("mean ER (pp)", format="%+.2f"),
                 "er_shifts": st.column_config.NumberColumn("shifts with ER")})
    long = data.er_long_frame({b.shift: b for b in board.shifts})
    if long["er"].notna().any():
        st.altair_chart(charts.er_heatmap(long, shifts=[b.shift for b in board.shifts],
                                          models=list(frame["model"])), width="stretch")
    if len(board.shifts) > MAX_GROUP_TABS:  # one tab per shift would draw hundreds of plots
        st.caption(f"{len(board.shifts)} shifts: choose one in the shift view for its ranking and plot.")
        return
    tabs = st.tabs([b.shift for b in board.shifts])
    for i, (tab, shift_board_message) in enumerate(zip(tabs, board.shifts, strict=True)):
        with tab:
            shift_board(shift_board_message, testsets.get(shift_board_message.shift), transform,
                        key=f"group-{i}", height=440)


def _compare(gateway: ui.Gateway, board: pb.Leaderboard) -> None:
    models = [r.model for r in board.rows if not r.imported]  # imported rows have no per-sample predictions
    if len(models) < 2:
        return
    with st.expander("Compare two models sample by sample (McNemar's test)"):
        left, right, go = st.columns([2, 2, 1], vertical_alignment="bottom")
        a = left.selectbox("Model A", models, index=0, key="compare-a")
        b = right.selectbox("Model B", models, index=1, key="compare-b")
        if not go.button("Compare", key="compare", disabled=a == b):
            return
        try:
            c = ui.comparison(gateway, ui.fingerprint(board.shift), a, b, board.shift)
        except ShiftboardError as exc:
            st.error(exc.message)
            return
        cols = st.columns(4)
        cols[0].metric(f"{c.model_a}", f"{c.acc_a:.2%}")
        cols[1].metric(f"{c.model_b}", f"{c.acc_b:.2%}", f"{100 * (c.acc_b - c.acc_a):+.2f} pp")
        cols[2].metric("only A right / only B right", f"{c.only_a_correct} / {c.only_b_correct}")
        cols[3].metric("p-value", f"{c.p_value:.3g}",
                       help=f"McNemar's test ({c.method}) on {c.samples:,} samples")


if __name__ == "__main__":
    render()
