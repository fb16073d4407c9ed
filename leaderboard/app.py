"""The shiftboard leaderboard (Streamlit). Reads everything through the gateway, never the catalog file.

Run by `shiftboard serve leaderboard` (which `shiftboard up` starts) with the SHIFTBOARD_* settings in
its environment. Five pages, each shareable by its URL:

* ``/`` — overview: ER heatmap of models × shifts, evaluation progress, models and test sets;
* ``/shift?shift=NAME&transform=probit`` (or ``?group=NAME``) — one shift's ranking and scatter plot;
* ``/model?model=NAME:VERSION&testset=NAME`` — one model across shifts, per class, hardest samples.
* ``/calibration?testset=NAME&model=NAME:VERSION`` — ECE on a shift against its reference, with the
  baseline trend, and one model's reliability diagram;
* ``/agreement?testset=NAME`` — error consistency (kappa) of every pair of models, and unique solves.
"""

from __future__ import annotations

import streamlit as st

from shiftboard.domain.errors import ShiftboardError
from shiftboard.leaderboard import ui

st.set_page_config(page_title="shiftboard", page_icon=":material/leaderboard:", layout="wide")


def main() -> None:
    page = st.navigation([
        st.Page(ui.OVERVIEW, title="Overview", icon=":material/grid_view:", default=True),
        st.Page(ui.SHIFT, title="Shift", icon=":material/scatter_plot:", url_path="shift"),
        st.Page(ui.MODEL, title="Model", icon=":material/model_training:", url_path="model"),
        st.Page(ui.CALIBRATION, title="Calibration", icon=":material/tune:", url_path="calibration"),
        st.Page(ui.AGREEMENT, title="Agreement", icon=":material/join_inner:", url_path="agreement"),
    ])
    try:
        gateway = ui.Gateway.from_env()
        ui.remember(ui.client(gateway).list_evaluations())
    except ShiftboardError as exc:
        st.title("shiftboard")
        ui.show_error(exc)
        return
    with st.sidebar:
        ui.progress_panel(gateway, detailed=False)
        st.caption(f"Gateway: `{gateway.target}`")
    try:
        page.run()
    except ShiftboardError as exc:
        ui.show_error(exc)


main()
