"""Tables of the calibration and agreement pages, from gateway messages: pandas only, no Streamlit.

Built on the JSON views of :mod:`shiftboard.wire.analysis` (the CLI's ``--json``), so the pages, their
downloads and the CLI show the same numbers. ECE stays a fraction, as accuracies do (the tables show
percentages).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire.analysis import calibration_view, matrix_view

CALIBRATION_COLUMNS = ["model", "category", "baseline", "samples", "accuracy", "mean_confidence", "ece", "ece_low",
                       "ece_high", "ref_accuracy", "ref_ece", "ref_ece_low", "ref_ece_high", "predicted_ece",
                       "ece_beyond_trend", "beyond_low", "beyond_high"]


def labelled(testsets: Iterable[pb.TestSet]) -> list[str]:
    """Test sets the analyses apply to (labelled): shifts by group then name, then the references."""
    specs = [t.spec for t in testsets if not t.spec.unlabelled]
    shifts = sorted((s for s in specs if s.kind != pb.TEST_SET_KIND_REFERENCE), key=lambda s: (s.group, s.name))
    references = sorted(s.name for s in specs if s.kind == pb.TEST_SET_KIND_REFERENCE)
    return [s.name for s in shifts] + references


def calibration_frame(message: pb.Calibration) -> pd.DataFrame:
    """One row per model: ECE with its interval, on the test set and its reference, and beyond the trend."""
    rows = []
    for r in calibration_view(message)["rows"]:
        low, high = r["ece_ci"]
        ref_low, ref_high = r["ref_ece_ci"] or (None, None)
        beyond_low, beyond_high = r["ece_beyond_trend_ci"] or (None, None)
        rows.append({**{k: r[k] for k in CALIBRATION_COLUMNS if k in r}, "ece_low": low, "ece_high": high,
                     "ref_ece_low": ref_low, "ref_ece_high": ref_high, "beyond_low": beyond_low,
                     "beyond_high": beyond_high})
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS).astype(
        {c: "float64" for c in CALIBRATION_COLUMNS[4:]})


def trend_summary(message: pb.Calibration) -> dict[str, object] | None:
    return calibration_view(message)["trend"]


def trend_frame(message: pb.Calibration, frame: pd.DataFrame) -> pd.DataFrame:
    """The trend line over the reference ECEs shown (two points), empty without a trend."""
    trend = trend_summary(message)
    xs = frame["ref_ece"].dropna()
    if not trend or not trend["ok"] or xs.empty:
        return pd.DataFrame(columns=["ref_ece", "trend"])
    slope, intercept = float(trend["slope"]), float(trend["intercept"])  # type: ignore[arg-type]
    low, high = float(xs.min()), float(xs.max())
    pad = max(0.01, 0.1 * (high - low))
    x = np.array([max(0.0, low - pad), high + pad])
    return pd.DataFrame({"ref_ece": x, "trend": slope * x + intercept})


def reliability_frame(message: pb.Calibration, model: str) -> pd.DataFrame:
    """The reliability bins of ``model`` on the test set and on its reference (``set``: their names)."""
    rows = []
    for r in calibration_view(message)["rows"]:
        if r["model"] != model:
            continue
        for which, bins in ((message.testset, r["bins"]), (message.reference, r["ref_bins"] or [])):
            for i, b in enumerate(bins):
                rows.append({"set": which, "bin": i + 1, "confidence": b["confidence"], "accuracy": b["accuracy"],
                             "count": b["count"], "gap": (b["accuracy"] or 0.0) - (b["confidence"] or 0.0)})
    return pd.DataFrame(rows, columns=["set", "bin", "confidence", "accuracy", "count", "gap"])


def kappa_long(message: pb.ConsistencyMatrix) -> pd.DataFrame:
    """One row per ordered pair of models: kappa and its interval (NaN where undefined or not computed)."""
    view = matrix_view(message)
    order = view["order"]
    ci = view["kappa_ci"]
    rows = [{"model_a": a, "model_b": b, "kappa": view["kappa"][i][j],
             "kappa_low": ci[i][j][0] if ci else None, "kappa_high": ci[i][j][1] if ci else None}
            for i, a in enumerate(order) for j, b in enumerate(order)]
    return pd.DataFrame(rows, columns=["model_a", "model_b", "kappa", "kappa_low", "kappa_high"]).astype(
        {"kappa": "float64", "kappa_low": "float64", "kappa_high": "float64"})


def kappa_table(message: pb.ConsistencyMatrix) -> pd.DataFrame:
    """The kappa matrix as a table: one row per model, one column per model."""
    view = matrix_view(message)
    frame = pd.DataFrame(view["kappa"], columns=view["order"], dtype="float64")
    frame.insert(0, "model", view["order"])
    return frame


def solves_frame(message: pb.ConsistencyMatrix) -> pd.DataFrame:
    """Per model: category, baseline flag, accuracy and unique solves with their interval (``solves_low``,
    ``solves_high``), most unique solves first."""
    models = [{**m, "solves_low": (m["unique_solves_ci"] or [None, None])[0],
               "solves_high": (m["unique_solves_ci"] or [None, None])[1]} for m in matrix_view(message)["models"]]
    frame = pd.DataFrame(models, columns=["model", "category", "baseline", "accuracy", "unique_solves", "solves_low",
                                          "solves_high"]).astype({"solves_low": "float64", "solves_high": "float64"})
    return frame.sort_values(["unique_solves", "model"], ascending=[False, True], kind="stable",
                             ignore_index=True)
