"""Overview page: effective robustness of every model on every shift, evaluation progress, the catalog.

A page script of ``app.py`` (run by ``st.navigation`` with ``__name__ == "__main__"``); importing it
does nothing.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from shiftboard.leaderboard import charts, data, ui
from shiftboard.v1 import shiftboard_pb2 as pb

#: Cells (models x shifts) the heatmap draws at most; above it the page asks which shifts to show.
MAX_HEATMAP_CELLS = 12_000


def render() -> None:
    gateway = ui.Gateway.from_env()
    client = ui.client(gateway)
    st.title("shiftboard")
    st.caption("Effective robustness (ER) of image classifiers under distribution shift: a model's accuracy "
               "on a shift minus the accuracy the trend of standard models predicts from its reference "
               "accuracy, in percentage points. Above zero: more robust than that trend.")
    models = client.list_models()
    testsets = client.list_testsets()
    sources = client.imported_sources()
    registered = data.shifts_of(testsets)
    cols = st.columns(5)
    cols[0].metric("models", len(models))
    cols[1].metric("imported models", sum(s.models for s in sources))
    cols[2].metric("test sets", len(testsets))
    groups = data.groups_of(testsets)
    cols[4].metric("groups of shifts", len(groups))
    if sources:
        st.caption("Imported results (accuracy only; squares and triangles on the scatter): " + "; ".join(
            f"{s.source} ({s.models} models, {s.points:,} points, version {s.version[:12]})" for s in sources))

    st.subheader("Evaluation progress")
    ui.progress_panel(gateway, detailed=True)

    st.subheader("Effective robustness by shift")
    filters = st.columns([2, 2, 1])
    transform = filters[2].radio("Transform", data.TRANSFORMS, horizontal=True, key="transform",
                                 bind="query-params",
                                 help="The scale on which the baseline trend is a straight line: logit "
                                      "(Taori et al.) or probit (Miller et al.).")
    # One request for every shift (no bootstrap): the intervals are on each shift's page.
    boards = ui.overview(gateway, ui.fingerprint(), ui.imported_key(gateway), transform)
    shifts = [*[s for s in registered if s in boards], *sorted(set(boards) - set(registered))]
    cols[3].metric("shifts", len(shifts))
    long = data.er_long_frame(boards)
    if long.empty:
        st.info("No shift has results on both itself and its reference yet. Add a shifted test set "
                "(`shiftboard testset add PATH --name NAME --kind natural --reference REF`) and let the "
                "evaluations finish.")
    else:
        _grid(long, shifts, boards, filters)
    _catalog(models, testsets)


def _grid(long: pd.DataFrame, shifts: list[str], boards: dict[str, pb.Leaderboard],
          filters: list[DeltaGenerator]) -> None:
    left, right = filters[0], filters[1]
    categories = left.multiselect("Categories", data.category_order(long["category"]), key="categories",
                                  placeholder="all categories")
    tags = right.multiselect("Tags", data.all_tags(long), key="tags", placeholder="any tag")
    origins = right.multiselect("Results", ["measured", "imported"], key="origins", placeholder="measured and imported")
    shown = data.filter_models(long, categories, tags, origins)
    if shown.empty:
        st.info("No model matches these filters.")
        return
    matrix = data.er_matrix(shown, shifts)
    unfitted = [s for s in shifts if not boards[s].fit.ok]
    if unfitted:
        st.caption("No baseline fit (so no ER) yet on: " + ", ".join(
            f"{s} ({boards[s].fit.reason})" for s in unfitted))
    if shown["er"].notna().any():
        on_map = shifts
        if len(shifts) * len(matrix) > MAX_HEATMAP_CELLS:  # e.g. the ImageNet testbed: 200+ shifts x 300+ models
            # Systematically named settings (ImageNet-C, PGD: "a.b.c") come after the named shifts.
            default = sorted(shifts, key=lambda s: ("." in s, shifts.index(s)))[:MAX_HEATMAP_CELLS // len(matrix)]
            on_map = st.multiselect("Heatmap shifts", shifts, default=default, key="heatmap-shifts",
                                    help="The table below has every shift; the heatmap shows those chosen here.")
        shown_map = shown[shown["shift"].isin(on_map)]
        if not shown_map.empty and shown_map["er"].notna().any():
            st.altair_chart(charts.er_heatmap(shown_map, shifts=list(on_map), models=list(matrix["model"])),
                            width="stretch")
    st.caption("Mean ER over the shifts a model has; click a column header to sort.")
    ui.table(matrix, "effective-robustness", key="er-matrix", config={
        "mean_er": st.column_config.NumberColumn("mean ER", format="%+.2f"),
        "shifts_evaluated": st.column_config.NumberColumn("shifts"),
        **{s: st.column_config.NumberColumn(s, format="%+.2f") for s in shifts if s in matrix},
    })
    with st.expander("Every (model, shift) pair, with intervals"):
        ui.table(shown, "effective-robustness-long", key="er-long",
                 percent=("ref_acc", "ref_low", "ref_high", "shift_acc", "shift_low", "shift_high",
                          "predicted_shift_acc"))

    left, right = st.columns(2)
    with left.container(border=True):
        shift = st.selectbox("Shift", shifts, key="open-shift")
        if st.button("Open shift page", key="goto-shift", icon=":material/scatter_plot:") and shift:
            ui.goto(ui.SHIFT, shift=shift)
    with right.container(border=True):
        model = st.selectbox("Model", list(matrix["model"]), key="open-model")
        if st.button("Open model page", key="goto-model", icon=":material/model_training:") and model:
            ui.goto(ui.MODEL, model=model)


def _catalog(models: list[pb.Model], testsets: list[pb.TestSet]) -> None:
    st.subheader("Models")
    if models:
        frame = data.models_frame(models)
        ui.table(frame, "models", key="models",
                 config={"size_bytes": st.column_config.NumberColumn("size", format="bytes")})
    else:
        st.info("No models yet: `shiftboard model submit PATH --name NAME ...` adds one.")

    st.subheader("Test sets")
    if testsets:
        frame = data.testsets_frame(testsets)
        ui.table(frame, "testsets", key="testsets")
    else:
        st.info("No test sets yet: `shiftboard testset add PATH --name NAME --kind reference` adds one.")


if __name__ == "__main__":
    render()
