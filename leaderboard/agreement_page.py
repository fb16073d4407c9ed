"""Agreement page: error consistency between models on a test set, and what each model alone solves.

For the chosen labelled test set (``?testset=``): the matrix of Cohen's kappa of every pair of models'
per-sample correctness (error consistency, Geirhos et al. 2020) as a heatmap, and per model its unique
solves (samples it gets right that no other baseline model does) as bars. A page script of ``app.py``;
importing it does nothing.
"""

from __future__ import annotations

import streamlit as st

from shiftboard.domain.errors import FailedPrecondition
from shiftboard.leaderboard import analysis_charts, analysis_data, ui


def render() -> None:
    gateway = ui.Gateway.from_env()
    testsets = {t.spec.name: t for t in ui.client(gateway).list_testsets()}
    names = analysis_data.labelled(testsets.values())
    header = st.container()
    if not names:
        header.title("Agreement")
        st.info("No labelled test sets yet: `shiftboard testset add PATH ...` adds one.")
        return
    testset = st.columns([2, 2])[0].selectbox("Test set", names, key="testset", bind="query-params")
    spec = testsets[testset].spec
    header.title(f"Agreement: {testset}")
    try:
        message = ui.consistency_matrix(gateway, ui.fingerprint(testset, spec.reference), testset)
    except FailedPrecondition as exc:
        st.info(exc.message)
        return
    header.caption(f"Error consistency (Cohen's kappa of per-sample correctness) of every pair of the "
                   f"{len(message.models)} models evaluated on {testset} ({message.samples:,} samples)")
    for note in message.notes:
        st.caption(f"Note: {note}")
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.markdown("**Error consistency**")
        st.altair_chart(analysis_charts.kappa_heatmap(analysis_data.kappa_long(message), order=list(message.models)),
                        width="stretch", key="kappa-heatmap")
        st.caption("kappa = 0: two models share no more errors than their accuracies imply; 1: the same errors; "
                   "below 0: fewer shared errors than chance.")
    solves = analysis_data.solves_frame(message)
    with right:
        st.markdown("**Unique solves**")
        st.altair_chart(analysis_charts.solves_bars(solves), width="stretch", key="solves-bars")
        st.caption("Samples a model gets right that no (other) baseline model gets right.")
    ui.table(analysis_data.kappa_table(message), f"kappa-{testset}", key="kappa")
    ui.table(solves, f"unique-solves-{testset}", key="solves", percent=("accuracy",))


if __name__ == "__main__":
    render()
