"""Altair charts of the calibration and agreement pages: pure functions from :mod:`.analysis_data` frames.

* :func:`reliability_diagram`: accuracy against mean confidence per equal-mass bin, on the shift and on
  its reference, with the diagonal of perfect calibration;
* :func:`ece_scatter`: ECE on the shift against ECE on the reference, one point per model, with y = x
  and the baseline models' trend (the counterpart of the accuracy scatter of :mod:`.charts`);
* :func:`kappa_heatmap`: the error-consistency matrix; :func:`solves_bars`: unique solves per model.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from shiftboard.leaderboard.charts import Chart, category_scale

_ROLES = {"baseline (in the trend)": "circle", "not in the trend": "diamond"}
#: Heatmaps of more models than this show values in tooltips only (labels would overlap).
MAX_LABELLED_MODELS = 14


def reliability_diagram(bins: pd.DataFrame, *, height: int = 420) -> Chart:
    """Accuracy vs mean confidence per bin (``bins``: :func:`.analysis_data.reliability_frame`); a point's
    size is its sample count, the dashed diagonal is perfect calibration."""
    scale = alt.Scale(domain=[0, 1], nice=False)
    diagonal = alt.Chart(pd.DataFrame({"confidence": [0.0, 1.0], "accuracy": [0.0, 1.0],
                                       "line": ["perfect calibration"] * 2})).mark_line(
        strokeDash=[6, 4], color="#9a9a9a", strokeWidth=1.5).encode(
        x=alt.X("confidence:Q", scale=scale), y=alt.Y("accuracy:Q", scale=scale),
        tooltip=[alt.Tooltip("line:N", title="")])
    sets = list(dict.fromkeys(bins["set"]))
    colour = alt.Color("set:N", title="test set", sort=sets,
                       scale=alt.Scale(domain=sets, range=["#e45756", "#4c78a8", "#54a24b"][:len(sets)]),
                       legend=alt.Legend(orient="bottom"))
    encoding = {"x": alt.X("confidence:Q", scale=scale, title="mean confidence in the bin", axis=alt.Axis(format="%")),
                "y": alt.Y("accuracy:Q", scale=scale, title="accuracy in the bin", axis=alt.Axis(format="%")),
                "color": colour}
    tooltip = [alt.Tooltip("set:N", title="test set"), alt.Tooltip("bin:Q"),
               alt.Tooltip("confidence:Q", title="mean confidence", format=".2%"),
               alt.Tooltip("accuracy:Q", format=".2%"), alt.Tooltip("gap:Q", title="accuracy - confidence",
                                                                    format="+.2%"),
               alt.Tooltip("count:Q", title="samples")]
    lines = alt.Chart(bins).mark_line(strokeWidth=2, opacity=0.8).encode(**encoding, detail="set:N")
    points = alt.Chart(bins).mark_point(filled=True, opacity=0.9).encode(
        **encoding, size=alt.Size("count:Q", legend=None, scale=alt.Scale(range=[40, 240])), tooltip=tooltip)
    return alt.layer(diagonal, lines, points).properties(height=height)


def ece_scatter(rows: pd.DataFrame, trend: pd.DataFrame, *, testset: str = "", reference: str = "",
                height: int = 460) -> Chart:
    """ECE on the shift vs ECE on the reference per model (``rows``: :func:`.analysis_data.calibration_frame`),
    with y = x and the baseline trend (``trend``: :func:`.analysis_data.trend_frame`, empty without one)."""
    points = rows.dropna(subset=["ref_ece"]).copy()
    points["role"] = ["baseline (in the trend)" if b else "not in the trend" for b in points["baseline"]]
    points["ece_text"] = [f"{e:.2%} [{lo:.2%}, {hi:.2%}]"
                          for e, lo, hi in zip(points["ece"], points["ece_low"], points["ece_high"], strict=True)]
    points["ref_ece_text"] = [f"{e:.2%} [{lo:.2%}, {hi:.2%}]" for e, lo, hi in
                              zip(points["ref_ece"], points["ref_ece_low"], points["ref_ece_high"], strict=True)]
    points["beyond_text"] = [f"{100 * b:+.2f} pp" if pd.notna(b) else "no trend" for b in points["ece_beyond_trend"]]
    values = [*points["ece"], *points["ref_ece"], *trend.get("trend", [])]
    high = max([0.05, *values]) * 1.1
    scale = alt.Scale(domain=[0, high], nice=False)
    x = alt.X("ref_ece:Q", scale=scale, title=f"ECE on {reference or 'the reference'}", axis=alt.Axis(format="%"))
    y_title = f"ECE on {testset or 'the shift'}"
    diagonal = alt.Chart(pd.DataFrame({"ref_ece": [0.0, high], "ece": [0.0, high], "line": ["y = x"] * 2})).mark_line(
        strokeDash=[6, 4], color="#9a9a9a", strokeWidth=1.5, clip=True).encode(
        x=x, y=alt.Y("ece:Q", scale=scale, title=y_title, axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip("line:N", title="")])
    layers: list[alt.Chart] = [diagonal]
    if not trend.empty:
        layers.append(alt.Chart(trend.assign(line="baseline trend")).mark_line(
            color="#1f3b5a", strokeWidth=2.5, clip=True).encode(
            x=alt.X("ref_ece:Q", scale=scale), y=alt.Y("trend:Q", scale=scale),
            tooltip=[alt.Tooltip("line:N", title=""), alt.Tooltip("ref_ece:Q", title="reference ECE", format=".2%"),
                     alt.Tooltip("trend:Q", title="trend", format=".2%")]))
    marks = alt.Chart(points).mark_point(size=160, filled=True, opacity=0.9, stroke="white", strokeWidth=1)
    layers.append(marks.encode(
        x=alt.X("ref_ece:Q", scale=scale), y=alt.Y("ece:Q", scale=scale),
        color=alt.Color("category:N", scale=category_scale(points["category"]),
                        legend=alt.Legend(title="category", orient="right")),
        shape=alt.Shape("role:N", scale=alt.Scale(domain=[*_ROLES], range=[*_ROLES.values()]),
                        legend=alt.Legend(title="point", orient="right")),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("category:N"), alt.Tooltip("role:N", title="point"),
                 alt.Tooltip("ece_text:N", title="ECE on the shift"),
                 alt.Tooltip("ref_ece_text:N", title="ECE on the reference"),
                 alt.Tooltip("beyond_text:N", title="ECE beyond the trend")]))
    return alt.layer(*layers).properties(height=height).interactive()


def kappa_heatmap(long: pd.DataFrame, *, order: list[str] | None = None, row_height: int = 30) -> Chart:
    """Models x models coloured by kappa (diverging at 0), labelled with their values when few."""
    cells = long.copy()
    models = order or list(dict.fromkeys(cells["model_a"]))
    cells["label"] = ["" if pd.isna(k) else f"{k:.2f}" for k in cells["kappa"]]
    off = cells[cells["model_a"] != cells["model_b"]]["kappa"].abs()
    limit = float(max(0.2, off.max())) if off.notna().any() else 1.0
    x = alt.X("model_b:N", sort=models, title=None, axis=alt.Axis(labelAngle=-35, orient="top", labelLimit=180))
    y = alt.Y("model_a:N", sort=models, title=None, axis=alt.Axis(labelLimit=240))
    base = alt.Chart(cells).encode(x=x, y=y)
    rects = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color("kappa:Q", title="kappa", scale=alt.Scale(scheme="redblue", domain=[-limit, limit],
                                                                  domainMid=0, clamp=True),
                        legend=alt.Legend(orient="bottom", direction="horizontal", gradientLength=240)),
        tooltip=[alt.Tooltip("model_a:N", title="model"), alt.Tooltip("model_b:N", title="with"),
                 alt.Tooltip("kappa:Q", format=".3f"), alt.Tooltip("kappa_low:Q", title="95% CI low", format=".3f"),
                 alt.Tooltip("kappa_high:Q", title="95% CI high", format=".3f")])
    if len(models) > MAX_LABELLED_MODELS:
        return rects.properties(height=alt.Step(row_height))
    text = base.mark_text(fontSize=12).encode(
        text="label:N", color=alt.condition(f"abs(datum.kappa) > {0.6 * limit}", alt.value("white"),
                                            alt.value("#222222")))
    return alt.layer(rects, text).properties(height=alt.Step(row_height))


def solves_bars(frame: pd.DataFrame, *, row_height: int = 30) -> Chart:
    """Unique solves per model (``frame``: :func:`.analysis_data.solves_frame`), coloured by category, with
    their bootstrap interval as a black rule."""
    data = frame.assign(role=["baseline" if b else "not baseline" for b in frame["baseline"]])
    y = alt.Y("model:N", sort=list(data["model"]), title=None, axis=alt.Axis(labelLimit=240))
    rules = alt.Chart(data.dropna(subset=["solves_low", "solves_high"])).mark_rule(color="#222222").encode(
        x="solves_low:Q", x2="solves_high:Q", y=y)
    bars = alt.Chart(data).mark_bar(height=18, cornerRadius=2).encode(
        x=alt.X("unique_solves:Q", title="unique solves (samples)"), y=y,
        color=alt.Color("category:N", scale=category_scale(data["category"]),
                        legend=alt.Legend(title="category", orient="bottom", direction="vertical")),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("category:N"), alt.Tooltip("role:N", title=""),
                 alt.Tooltip("unique_solves:Q", title="unique solves"),
                 alt.Tooltip("solves_low:Q", title="95% CI low", format=".0f"),
                 alt.Tooltip("solves_high:Q", title="95% CI high", format=".0f"),
                 alt.Tooltip("accuracy:Q", format=".2%")])
    return alt.layer(bars, rules).properties(height=alt.Step(row_height))
