"""Calibration page: expected calibration error on a shift against its reference, and reliability diagrams.

For the chosen labelled test set (``?testset=``): the scatter of each model's ECE on the shift against
its ECE on the reference with the baseline models' trend (the calibration counterpart of the accuracy
scatter), the table of ECE with bootstrap intervals, and the reliability diagram of one model
(``?model=``) on the shift and on its reference. A page script of ``app.py``; importing it does nothing.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from shiftboard.leaderboard import analysis_charts, analysis_data, ui
from shiftboard.v1 import shiftboard_pb2 as pb

_CONFIG = {
    "baseline": st.column_config.CheckboxColumn("in trend", width="small",
                                                help="A baseline model (the leaderboard's rule), in the trend."),
    "ece_beyond_trend": st.column_config.NumberColumn(
        "beyond trend (pp)", format="%+.2f", help="ECE on the shift minus the trend's value at its reference ECE "
        "(positive: worse calibrated than the baseline models predict)."),
    "beyond_low": st.column_config.NumberColumn("beyond, low (pp)", format="%+.2f",
                                                help="Paired bootstrap interval of the ECE beyond the trend."),
    "beyond_high": st.column_config.NumberColumn("beyond, high (pp)", format="%+.2f"),
}
_PERCENT = ("accuracy", "mean_confidence", "ece", "ece_low", "ece_high", "ref_accuracy", "ref_ece", "ref_ece_low",
            "ref_ece_high", "predicted_ece", "ece_beyond_trend", "beyond_low", "beyond_high")


def render() -> None:
    gateway = ui.Gateway.from_env()
    testsets = {t.spec.name: t for t in ui.client(gateway).list_testsets()}
    names = analysis_data.labelled(testsets.values())
    header = st.container()
    if not names:
        header.title("Calibration")
        st.info("No labelled test sets yet: `shiftboard testset add PATH ...` adds one.")
        return
    top = st.columns([2, 2])
    testset = top[0].selectbox("Test set", names, key="testset", bind="query-params")
    spec = testsets[testset].spec
    header.title(f"Calibration: {testset}")
    message = ui.calibration(gateway, ui.fingerprint(testset, spec.reference), testset)
    frame = analysis_data.calibration_frame(message)
    header.caption(f"Expected calibration error over {message.bins} equal-mass bins of confidence, "
                   f"{message.resamples} bootstrap resamples per interval"
                   + (f" · reference **{message.reference}**" if message.reference else ""))
    for note in message.notes:
        st.caption(f"Note: {note}")
    if frame.empty:
        st.info("No model has finished on this test set yet.")
        return
    trend = analysis_data.trend_summary(message)
    cols = st.columns(4)
    best = frame.sort_values("ece").iloc[0]
    cols[0].metric(f"lowest ECE: {best['model']}", f"{best['ece']:.2%}", help="The best calibrated model here.")
    if trend is not None:
        cols[1].metric("baseline models", str(trend["n_baseline"]))
        if trend["ok"]:
            cols[2].metric("trend slope", f"{trend['slope']:.3f}")
            cols[3].metric("trend R²", f"{trend['r2']:.3f}")
    if message.reference and frame["ref_ece"].notna().any():
        _scatter(message, frame, trend)
    _reliability(message, frame)
    ui.table(frame, f"calibration-{testset}", key="calibration", percent=_PERCENT, config=_CONFIG)


def _scatter(message: pb.Calibration, frame: pd.DataFrame, trend: dict[str, Any] | None) -> None:
    """ECE on the shift against ECE on the reference, with the baseline trend, and how to read it."""
    plot, side = st.columns([3, 2], gap="large")
    with plot:
        st.altair_chart(analysis_charts.ece_scatter(frame, analysis_data.trend_frame(message, frame),
                                                    testset=message.testset, reference=message.reference),
                        width="stretch", key="ece-scatter")
    if trend is not None and trend["ok"]:
        slope_ci = trend.get("slope_ci")
        side.markdown(f"**Baseline trend** ({trend['n_baseline']} models): ECE on the shift = "
                      f"{trend['slope']:.3f} · ECE on the reference {trend['intercept']:+.4f} "
                      f"(R² {trend['r2']:.3f}"
                      + (f"; slope 95% interval [{slope_ci[0]:.3f}, {slope_ci[1]:.3f}]" if slope_ci else "")
                      + ").")
    elif trend is not None:
        side.warning(str(trend["reason"]), icon=":material/warning:")
    side.caption("Each point is a model: its ECE on the reference (x) and on the shift (y). The dashed line "
                 "is y = x, the solid line the baseline models' least-squares trend. Points above the trend "
                 "are worse calibrated under shift than the baseline predicts.")


def _reliability(message: pb.Calibration, frame: pd.DataFrame) -> None:
    """One model's reliability diagram, on the test set and on its reference."""
    plot, side = st.columns([3, 2], gap="large")
    model = side.selectbox("Model", list(frame["model"]), key="model", bind="query-params")
    row = frame.set_index("model").loc[model]
    side.markdown(f"**{model}**: ECE {row['ece']:.2%} [{row['ece_low']:.2%}, {row['ece_high']:.2%}] on "
                  f"{message.testset}" + (f", {row['ref_ece']:.2%} [{row['ref_ece_low']:.2%}, "
                                          f"{row['ref_ece_high']:.2%}] on {message.reference}"
                                          if pd.notna(row["ref_ece"]) else ""))
    side.caption("Accuracy against mean confidence in each equal-mass bin (point size: samples). Below the "
                 "diagonal: overconfident; above it: underconfident.")
    with plot:
        st.markdown(f"**Reliability diagram of {model}**")
        st.altair_chart(analysis_charts.reliability_diagram(analysis_data.reliability_frame(message, model)),
                        width="stretch", key="reliability")


if __name__ == "__main__":
    render()
