"""Altair charts of the leaderboard: the ER heatmap, the reference-vs-shift scatter, ER and class bars.

Pure functions from the frames of :mod:`.data` to Altair charts; no Streamlit. The scatter is drawn
in transformed space (logit or probit of accuracy, where the baseline trend is a straight line) with
axis ticks labelled in accuracy, as in Taori et al. and Miller et al.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from shiftboard.domain.robustness import Transform, check_transform, clip_accuracy, forward
from shiftboard.leaderboard.data import category_order

#: Fixed colours per model category, so a category keeps its colour on every chart.
CATEGORY_COLOURS = {
    "standard": "#4c78a8",
    "robustness-intervention": "#e45756",
    "more-data": "#54a24b",
    "zero-shot": "#f58518",
    "other": "#b279a2",
}
_EXTRA_COLOURS = ["#72b7b2", "#eeca3b", "#9d755d", "#bab0ac", "#ff9da6"]
#: Accuracies that may label the scatter's axes.
_TICKS = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99,
          0.995, 0.999]
#: Models are named beside their points up to this many (beyond, names would overlap).
MAX_LABELLED_POINTS = 15
_INVERSE_EXPR = {"logit": "1 / (1 + exp(-datum.value))", "probit": "cumulativeNormal(datum.value)"}


#: What the chart functions return (``st.altair_chart`` takes each).
Chart = alt.Chart | alt.LayerChart | alt.FacetChart


#: Point shapes of the scatter: measured models as circles/diamonds, imported ones as squares/triangles.
ROLES = {"baseline (in the fit)": "circle", "not in the fit": "diamond", "imported, in the fit": "square",
         "imported, not in the fit": "triangle-up"}


def category_scale(categories: Any) -> alt.Scale:
    order = category_order(categories)
    extra = iter(_EXTRA_COLOURS * 4)
    return alt.Scale(domain=order, range=[CATEGORY_COLOURS.get(c) or next(extra) for c in order])


def _inset_legend(title: str | None) -> alt.Legend:
    """A legend inside the plot's top-left corner, which the points of a shift plot leave empty."""
    return alt.Legend(title=title, orient="top-left", fillColor="white", strokeColor="#dddddd", padding=8,
                      cornerRadius=4)


def _axis(transform: Transform, low: float, high: float, title: str) -> alt.Axis:
    """An axis over transformed values whose ticks sit at round accuracies and read as percentages."""
    ticks = [t for t in _TICKS if low <= float(forward(transform, t)) <= high]
    if len(ticks) > 9:  # keep the labels apart
        ticks = ticks[:: -(-len(ticks) // 9)]
    return alt.Axis(title=title, values=[float(forward(transform, t)) for t in ticks],
                    labelExpr=f"format({_INVERSE_EXPR[transform]}, '.3~%')", grid=True)


def shift_scatter(rows: pd.DataFrame, fit: pd.DataFrame, transform: str, *, shift: str = "",
                  reference: str = "", height: int = 520) -> Chart:
    """Reference vs shift accuracy of each model on ``transform`` axes, with y = x, the fit and its band.

    ``rows`` is :func:`.data.ranking_frame`; ``fit`` is :func:`.data.fit_frame` (empty without a fit).
    """
    t = check_transform(transform)
    points = _scatter_points(rows, t)
    band = _band(fit, t)
    values = list(points["x"]) + list(points["y"])
    if not band.empty:
        values += list(band["ref_acc_t"]) + list(band["band_low_t"]) + list(band["band_high_t"])
    low, high = (min(values), max(values)) if values else (-1.0, 1.0)
    pad = max(0.15, 0.08 * (high - low))
    low, high = low - pad, high + pad
    domain = [low, high]
    x_axis = _axis(t, low, high, f"{reference or 'reference'} accuracy ({t} scale)")
    y_axis = _axis(t, low, high, f"{shift or 'shift'} accuracy ({t} scale)")
    x_scale = alt.Scale(domain=domain, nice=False, zero=False)
    y_scale = alt.Scale(domain=domain, nice=False, zero=False)

    diagonal = alt.Chart(pd.DataFrame({"x": domain, "y": domain, "line": ["y = x"] * 2})).mark_line(
        strokeDash=[6, 4], color="#9a9a9a", strokeWidth=1.5, clip=True).encode(
        x=alt.X("x:Q", scale=x_scale, axis=x_axis), y=alt.Y("y:Q", scale=y_scale, axis=y_axis),
        tooltip=[alt.Tooltip("line:N", title="")])
    layers: list[alt.Chart] = [diagonal]
    if not band.empty:
        layers += _band_layers(band, x_scale, y_scale)
    encoding = {"x": alt.X("x:Q", scale=x_scale), "y": alt.Y("y:Q", scale=y_scale)}
    layers.append(_point_layer(points, encoding))
    if len(points) <= MAX_LABELLED_POINTS:  # names right of a point, or left of it in the right half
        right_half = points["x"] > (low + high) / 2
        for side, dx in ((points[~right_half], 9), (points[right_half], -9)):
            layers.append(alt.Chart(side).mark_text(align="left" if dx > 0 else "right", dx=dx, dy=-9,
                                                    fontSize=11, color="#444444")
                          .encode(**encoding, text="model:N"))
    return alt.layer(*layers).properties(height=height).interactive()


def _scatter_points(rows: pd.DataFrame, t: Transform) -> pd.DataFrame:
    """The ranking with each model's position (``x``, ``y`` in ``t`` space), role and tooltip texts."""
    points = rows.copy()
    points["x"] = forward(t, clip_accuracy(points["ref_acc"].to_numpy(float), points["n_ref"].to_numpy())[0])
    points["y"] = forward(t, clip_accuracy(points["shift_acc"].to_numpy(float), points["n_shift"].to_numpy())[0])
    points["role"] = np.where(points["baseline"], "baseline (in the fit)", "not in the fit")
    if "origin" in points:  # imported (accuracy-only) points are drawn as squares / triangles
        imported = points["origin"] == "imported"
        points.loc[imported, "role"] = np.where(points.loc[imported, "baseline"], "imported, in the fit",
                                                "imported, not in the fit")
    points["er_text"] = [f"{e:+.2f} pp {i}".strip() if pd.notna(e) else "no fit"
                         for e, i in zip(points["er"], points["er_interval"], strict=True)]
    points["ref_text"] = [f"{a:.2%} [{lo:.2%}, {hi:.2%}]" for a, lo, hi in
                          zip(points["ref_acc"], points["ref_low"], points["ref_high"], strict=True)]
    points["shift_text"] = [f"{a:.2%} [{lo:.2%}, {hi:.2%}]" for a, lo, hi in
                            zip(points["shift_acc"], points["shift_low"], points["shift_high"], strict=True)]
    points["predicted_text"] = [f"{p:.2%}" if pd.notna(p) else "" for p in points["predicted_shift_acc"]]
    points["rank_text"] = [f"{r}{' (tied with the leader)' if tied else ''}" if pd.notna(r) else ""
                           for r, tied in zip(points["rank"], points["tied"], strict=True)]
    return points.astype({"rank": "float64", "er": "float64", "er_low": "float64", "er_high": "float64",
                          "predicted_shift_acc": "float64"})


def _band(fit: pd.DataFrame, t: Transform) -> pd.DataFrame:
    """The fit frame with its columns also in ``t`` space (``*_t``)."""
    band = fit.copy()
    if not band.empty:
        for column in ("ref_acc", "predicted", "band_low", "band_high"):
            band[f"{column}_t"] = forward(t, np.clip(band[column].to_numpy(float), 1e-6, 1 - 1e-6))
    return band


def _band_layers(band: pd.DataFrame, x_scale: alt.Scale, y_scale: alt.Scale) -> list[alt.Chart]:
    """The bootstrap band (an area) and the baseline fit (a line)."""
    return [
        alt.Chart(band).mark_area(opacity=0.28, color="#4c78a8", clip=True).encode(
            x=alt.X("ref_acc_t:Q", scale=x_scale), y=alt.Y("band_low_t:Q", scale=y_scale), y2="band_high_t:Q",
            tooltip=[alt.Tooltip("ref_acc:Q", title="reference accuracy", format=".2%"),
                     alt.Tooltip("band_low:Q", title="band low", format=".2%"),
                     alt.Tooltip("band_high:Q", title="band high", format=".2%")]),
        alt.Chart(band).mark_line(color="#1f3b5a", strokeWidth=2.5, clip=True).encode(
            x=alt.X("ref_acc_t:Q", scale=x_scale), y=alt.Y("predicted_t:Q", scale=y_scale),
            tooltip=[alt.Tooltip("ref_acc:Q", title="reference accuracy", format=".2%"),
                     alt.Tooltip("predicted:Q", title="baseline fit", format=".2%")]),
    ]


def _point_layer(points: pd.DataFrame, encoding: dict[str, Any]) -> alt.Chart:
    """One point per model, coloured by category and shaped by its role."""
    return alt.Chart(points).mark_point(size=160, filled=True, opacity=0.9, stroke="white", strokeWidth=1).encode(
        **encoding,
        color=alt.Color("category:N", scale=category_scale(points["category"]),
                        legend=_inset_legend("category")),
        shape=alt.Shape("role:N", scale=alt.Scale(domain=[*ROLES], range=[*ROLES.values()]),
                        legend=_inset_legend(None)),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("category:N"), alt.Tooltip("role:N", title="point"),
                 alt.Tooltip("rank_text:N", title="rank"),
                 alt.Tooltip("er_text:N", title="effective robustness"),
                 alt.Tooltip("ref_text:N", title="reference accuracy"),
                 alt.Tooltip("shift_text:N", title="shift accuracy"),
                 alt.Tooltip("predicted_text:N", title="predicted by the fit"),
                 alt.Tooltip("baseline:N", title="in the fit"), alt.Tooltip("tags:N")])


#: Heatmaps wider than this many shifts show values in tooltips only (labels would overlap).
MAX_LABELLED_COLUMNS = 16


def er_heatmap(long: pd.DataFrame, *, shifts: list[str] | None = None, models: list[str] | None = None,
               row_height: int = 30) -> Chart:
    """Models × shifts coloured by ER (diverging at 0), each cell labelled with its value."""
    cells = long.dropna(subset=["er"]).copy()
    cells = cells.astype({"er": "float64", "er_low": "float64", "er_high": "float64", "rank": "float64"})
    cells["label"] = [f"{e:+.1f}" for e in cells["er"]]
    cells["interval"] = cells["er_interval"]
    cells["rank_text"] = [f"{int(r)} of {o}{' (tied)' if t else ''}" if pd.notna(r) else ""
                          for r, o, t in zip(cells["rank"], cells["of"], cells["tied"], strict=True)]
    limit = float(max(1.0, cells["er"].abs().max())) if not cells.empty else 1.0
    model_order = models or list(dict.fromkeys(cells["model"]))
    columns = shifts or list(dict.fromkeys(cells["shift"]))
    x = alt.X("shift:N", sort=columns, title=None,
              axis=alt.Axis(labelAngle=0 if len(columns) <= 6 else -35, orient="top", labelLimit=180))
    y = alt.Y("model:N", sort=model_order, title=None, axis=alt.Axis(labelLimit=240))
    base = alt.Chart(cells).encode(x=x, y=y)
    rects = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color("er:Q", title="ER (pp)",
                        scale=alt.Scale(scheme="redblue", domain=[-limit, limit], domainMid=0),
                        legend=alt.Legend(orient="bottom", direction="horizontal", gradientLength=240)),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("category:N"), alt.Tooltip("shift:N"),
                 alt.Tooltip("reference:N"), alt.Tooltip("er:Q", title="ER (pp)", format="+.2f"),
                 alt.Tooltip("interval:N", title="ER interval"), alt.Tooltip("rank_text:N", title="rank"),
                 alt.Tooltip("ref_acc:Q", title="reference accuracy", format=".2%"),
                 alt.Tooltip("shift_acc:Q", title="shift accuracy", format=".2%")])
    if len(columns) > MAX_LABELLED_COLUMNS:  # values would overlap: the tooltip carries them
        return rects.properties(height=alt.Step(row_height))
    text = base.mark_text(fontSize=12).encode(
        text="label:N",
        color=alt.condition(f"abs(datum.er) > {0.6 * limit}", alt.value("white"), alt.value("#222222")))
    return alt.layer(rects, text).properties(height=alt.Step(row_height))


def er_bars(rows: pd.DataFrame, *, row_height: int = 34) -> Chart:
    """One model's ER on each shift with its interval; positive blue, negative red."""
    data = rows.dropna(subset=["er"]).astype({"er": "float64", "er_low": "float64", "er_high": "float64"})
    data = data.assign(sign=np.where(data["er"] >= 0, "above the trend", "below the trend"))
    y = alt.Y("shift:N", sort=list(data["shift"]), title=None)
    bars = alt.Chart(data).mark_bar(height=18, cornerRadius=2).encode(
        x=alt.X("er:Q", title="effective robustness (percentage points)"), y=y,
        color=alt.Color("sign:N", scale=alt.Scale(domain=["above the trend", "below the trend"],
                                                  range=["#4c78a8", "#e45756"]), legend=None),
        tooltip=[alt.Tooltip("shift:N"), alt.Tooltip("er:Q", title="ER (pp)", format="+.2f"),
                 alt.Tooltip("er_interval:N", title="interval"), alt.Tooltip("rank:Q"),
                 alt.Tooltip("ref_acc:Q", title="reference accuracy", format=".2%"),
                 alt.Tooltip("shift_acc:Q", title="shift accuracy", format=".2%")])
    whiskers = alt.Chart(data.dropna(subset=["er_low"])).mark_rule(color="#333333", strokeWidth=1.5).encode(
        x="er_low:Q", x2="er_high:Q", y=y)
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="#666666").encode(x="x:Q")
    return alt.layer(bars, whiskers, zero).properties(height=alt.Step(row_height))


def class_bars(frame: pd.DataFrame, *, height: int = 260) -> Chart:
    """Accuracy per class (:func:`.data.per_class_accuracy`)."""
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("name:N", sort=list(frame["name"]), title="class", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("accuracy:Q", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("accuracy:Q", scale=alt.Scale(scheme="redyellowblue", domain=[0, 1]), legend=None),
        tooltip=[alt.Tooltip("name:N", title="class"), alt.Tooltip("accuracy:Q", format=".2%"),
                 alt.Tooltip("correct:Q"), alt.Tooltip("samples:Q")],
    ).properties(height=height)


def agreement_scatter(pairs: pd.DataFrame, *, slope: float, intercept: float, r2: float, n_samples: int | None = None,
                      shift: str = "", reference: str = "", height: int = 440) -> Chart:
    """Agreement on the line: each model pair's top-1 agreement on the reference (x) and on the unlabelled
    shift (y) on probit axes, with y = x and the fitted line; R² in the title.

    ``pairs`` is :func:`.data.agreement_frame`; agreements of 0 or 1 are clipped by half a sample
    (``n_samples``) as the fit clips them.
    """
    t: Transform = "probit"
    points = pairs.copy()
    points["x"] = forward(t, clip_accuracy(points["ref_agreement"].to_numpy(float), n_samples)[0])
    points["y"] = forward(t, clip_accuracy(points["shift_agreement"].to_numpy(float), n_samples)[0])
    points["pair"] = points["model_a"] + " / " + points["model_b"]
    values = list(points["x"]) + list(points["y"]) or [-1.0, 1.0]
    low, high = min(values), max(values)
    pad = max(0.1, 0.08 * (high - low))
    low, high = low - pad, high + pad
    x_scale = alt.Scale(domain=[low, high], nice=False, zero=False)
    y_scale = alt.Scale(domain=[low, high], nice=False, zero=False)
    x_axis = _axis(t, low, high, f"agreement on {reference or 'the reference'} (probit scale)")
    y_axis = _axis(t, low, high, f"agreement on {shift or 'the shift'} (probit scale)")
    diagonal = alt.Chart(pd.DataFrame({"x": [low, high], "y": [low, high]})).mark_line(
        strokeDash=[6, 4], color="#9a9a9a", strokeWidth=1.5, clip=True).encode(
        x=alt.X("x:Q", scale=x_scale, axis=x_axis), y=alt.Y("y:Q", scale=y_scale, axis=y_axis))
    layers: list[alt.Chart] = [diagonal]
    if np.isfinite(slope) and np.isfinite(intercept):
        line = pd.DataFrame({"x": [low, high], "y": [slope * low + intercept, slope * high + intercept]})
        layers.append(alt.Chart(line).mark_line(color="#4c78a8", strokeWidth=2, clip=True).encode(
            x=alt.X("x:Q", scale=x_scale), y=alt.Y("y:Q", scale=y_scale)))
    layers.append(alt.Chart(points).mark_circle(size=70, opacity=0.8, color="#4c78a8").encode(
        x=alt.X("x:Q", scale=x_scale), y=alt.Y("y:Q", scale=y_scale),
        tooltip=[alt.Tooltip("pair:N", title="models"),
                 alt.Tooltip("ref_agreement:Q", title="agreement, reference", format=".2%"),
                 alt.Tooltip("shift_agreement:Q", title="agreement, shift", format=".2%")]))
    title = (f"Agreement line over {len(points)} model pairs: R² = {r2:.3f}" if np.isfinite(r2)
             else f"Agreement over {len(points)} model pairs (no line)")
    return alt.layer(*layers).properties(height=height, title=title).interactive()


def plane_scatter(frame: pd.DataFrame, transform: str, *, shift: str = "", height: int = 440) -> Chart:
    """Shift accuracy against the plane's prediction (several references) on ``transform`` axes, with y = x:
    points above the line do better than the plane over the baseline models predicts.

    ``frame`` is :func:`.data.plane_frame`.
    """
    t = check_transform(transform)
    points = frame.copy()
    points["x"] = forward(t, np.clip(points["plane_predicted_shift_acc"].to_numpy(float), 1e-6, 1 - 1e-6))
    points["y"] = forward(t, clip_accuracy(points["shift_acc"].to_numpy(float), points["n_shift"].to_numpy())[0])
    points["role"] = np.where(points["in_plane"], "baseline (in the fit)", "not in the fit")
    points["plane_text"] = [f"{e:+.2f} pp" for e in points["plane_er"]]
    points = points.astype({"er": "float64"})
    values = list(points["x"]) + list(points["y"])
    low, high = (min(values), max(values)) if values else (-1.0, 1.0)
    pad = max(0.15, 0.08 * (high - low))
    low, high = low - pad, high + pad
    scale = alt.Scale(domain=[low, high], nice=False, zero=False)
    x_axis = _axis(t, low, high, f"predicted by the plane ({t} scale)")
    y_axis = _axis(t, low, high, f"{shift or 'shift'} accuracy ({t} scale)")
    diagonal = alt.Chart(pd.DataFrame({"x": [low, high], "y": [low, high], "line": ["y = x"] * 2})).mark_line(
        strokeDash=[6, 4], color="#9a9a9a", strokeWidth=1.5, clip=True).encode(
        x=alt.X("x:Q", scale=scale, axis=x_axis), y=alt.Y("y:Q", scale=scale, axis=y_axis),
        tooltip=[alt.Tooltip("line:N", title="")])
    encoding = {"x": alt.X("x:Q", scale=scale), "y": alt.Y("y:Q", scale=scale)}
    dots = alt.Chart(points).mark_point(size=140, filled=True, opacity=0.9, stroke="white", strokeWidth=1).encode(
        **encoding,
        color=alt.Color("category:N", scale=category_scale(points["category"]), legend=_inset_legend("category")),
        shape=alt.Shape("role:N", scale=alt.Scale(domain=[*ROLES], range=[*ROLES.values()]),
                        legend=_inset_legend(None)),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("category:N"), alt.Tooltip("role:N", title="point"),
                 alt.Tooltip("plane_text:N", title="plane ER"),
                 alt.Tooltip("er:Q", title="single-reference ER (pp)", format="+.2f"),
                 alt.Tooltip("shift_acc:Q", title="shift accuracy", format=".2%"),
                 alt.Tooltip("plane_predicted_shift_acc:Q", title="predicted by the plane", format=".2%")])
    layers: list[alt.Chart] = [diagonal, dots]
    if len(points) <= MAX_LABELLED_POINTS:
        layers.append(alt.Chart(points).mark_text(align="left", dx=9, dy=-9, fontSize=11, color="#444444")
                      .encode(**encoding, text="model:N"))
    return alt.layer(*layers).properties(height=height).interactive()
