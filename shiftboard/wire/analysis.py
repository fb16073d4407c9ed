"""Calibration and error consistency: domain results -> messages, and messages -> JSON-ready views.

The views are what ``shiftboard calibration --json``, ``shiftboard consistency --json`` and the
leaderboard read (stable keys; NaN becomes None, an interval a ``[low, high]`` pair).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from shiftboard.domain.analyses import Calibrated, Trend, TrendIntervals
from shiftboard.domain.consistency import Consistency
from shiftboard.v1 import shiftboard_pb2 as pb


def _bins(c: Calibrated) -> list[pb.ReliabilityBin]:
    return [pb.ReliabilityBin(confidence=float(m), accuracy=float(a), count=int(n))
            for m, a, n in zip(c.bin_confidence, c.bin_accuracy, c.bin_count, strict=True)]


def calibration_message(testset: str, reference: str, bins: int, resamples: int, models: Sequence[str],
                        categories: Sequence[str], baseline: Sequence[bool], shift: Sequence[Calibrated],
                        ref: Sequence[Calibrated | None], trend: Trend | None, beyond: np.ndarray | None,
                        notes: Sequence[str], intervals: TrendIntervals | None = None) -> pb.Calibration:
    """The Calibration message: one row per model (``ref[i]`` None: no reference ECE); ``intervals``: the
    trend's bootstrap (None: none)."""
    out = pb.Calibration(testset=testset, reference=reference, bins=bins, resamples=resamples, notes=list(notes))
    for i, model in enumerate(models):
        s = shift[i]
        row = out.rows.add(model=model, category=categories[i], baseline=bool(baseline[i]), samples=s.samples,
                           accuracy=s.accuracy, mean_confidence=s.mean_confidence, ece=s.ece,
                           ece_ci=pb.Interval(low=s.ece_ci[0], high=s.ece_ci[1]), bins=_bins(s))
        r = ref[i] if ref else None
        if r is not None:
            row.has_ref = True
            row.ref_samples, row.ref_accuracy, row.ref_ece = r.samples, r.accuracy, r.ece
            row.ref_ece_ci.CopyFrom(pb.Interval(low=r.ece_ci[0], high=r.ece_ci[1]))
            row.ref_bins.extend(_bins(r))
            if trend is not None and trend.ok and beyond is not None and math.isfinite(float(beyond[i])):
                row.has_trend = True
                row.ece_beyond_trend = float(beyond[i])
                row.predicted_ece = s.ece - float(beyond[i])
                if intervals is not None and np.isfinite(intervals.beyond_ci[i]).all():
                    row.has_ece_beyond_trend_ci = True
                    row.ece_beyond_trend_ci.CopyFrom(pb.Interval(low=float(intervals.beyond_ci[i, 0]),
                                                                 high=float(intervals.beyond_ci[i, 1])))
    if trend is not None:
        ok = trend.ok
        out.trend.CopyFrom(pb.CalibrationTrend(ok=ok, reason=trend.reason, n=trend.n,
                                               slope=trend.slope if ok else 0.0,
                                               intercept=trend.intercept if ok else 0.0, r2=trend.r2 if ok else 0.0))
        if ok and intervals is not None and intervals.used:
            out.trend.has_ci = True
            out.trend.slope_ci.CopyFrom(pb.Interval(low=intervals.slope_ci[0], high=intervals.slope_ci[1]))
            out.trend.intercept_ci.CopyFrom(pb.Interval(low=intervals.intercept_ci[0],
                                                        high=intervals.intercept_ci[1]))
    return out


def consistency_message(model_a: str, model_b: str, testset: str, c: Consistency) -> pb.Consistency:
    return pb.Consistency(model_a=model_a, model_b=model_b, testset=testset, samples=c.samples, acc_a=c.acc_a,
                          acc_b=c.acc_b, observed=c.observed, expected=c.expected, kappa=c.kappa,
                          kappa_ci=pb.Interval(low=c.kappa_ci[0], high=c.kappa_ci[1]), note=c.note)


def matrix_message(testset: str, samples: int, models: Sequence[str], categories: Sequence[str],
                   baseline: Sequence[bool], accuracy: np.ndarray, kappa: np.ndarray, solves: np.ndarray,
                   notes: Sequence[str], resamples: int = 0, kappa_ci: np.ndarray | None = None,
                   solves_ci: np.ndarray | None = None) -> pb.ConsistencyMatrix:
    """The ConsistencyMatrix message; ``kappa_ci`` [models, models, 2] and ``solves_ci`` [models, 2] the
    bootstrap's intervals (None: none)."""
    out = pb.ConsistencyMatrix(testset=testset, samples=samples, models=list(models), categories=list(categories),
                               baseline=list(baseline), accuracy=[float(a) for a in accuracy],
                               kappa=[float(k) for k in np.asarray(kappa, dtype=np.float64).ravel()],
                               unique_solves=[int(n) for n in solves], notes=list(notes), resamples=resamples)
    if kappa_ci is not None:
        out.kappa_low.extend(float(v) for v in kappa_ci[..., 0].ravel())
        out.kappa_high.extend(float(v) for v in kappa_ci[..., 1].ravel())
    if solves_ci is not None:
        out.unique_solves_low.extend(float(v) for v in solves_ci[:, 0])
        out.unique_solves_high.extend(float(v) for v in solves_ci[:, 1])
    return out


# ---------------------------------------------------------------------------- views


def _num(value: float, digits: int = 6) -> float | None:
    return round(float(value), digits) if math.isfinite(value) else None


def _pair(interval: pb.Interval) -> list[float | None]:
    return [_num(interval.low), _num(interval.high)]


def _bin_views(bins: Sequence[pb.ReliabilityBin]) -> list[dict[str, Any]]:
    return [{"confidence": _num(b.confidence), "accuracy": _num(b.accuracy), "count": b.count} for b in bins]


def calibration_view(c: pb.Calibration) -> dict[str, Any]:
    """JSON-ready: ``rows`` with ``model``, ``ece``, ``ece_ci``, ``ref_ece``, ``ref_ece_ci`` (None without
    a reference), ``ece_beyond_trend``, the bins; ``trend`` (None for a reference test set)."""
    rows = []
    for r in c.rows:
        rows.append({
            "model": r.model, "category": r.category, "baseline": r.baseline, "samples": r.samples,
            "accuracy": _num(r.accuracy), "mean_confidence": _num(r.mean_confidence), "ece": _num(r.ece),
            "ece_ci": _pair(r.ece_ci), "bins": _bin_views(r.bins),
            "ref_samples": r.ref_samples if r.has_ref else None,
            "ref_accuracy": _num(r.ref_accuracy) if r.has_ref else None,
            "ref_ece": _num(r.ref_ece) if r.has_ref else None,
            "ref_ece_ci": _pair(r.ref_ece_ci) if r.has_ref else None,
            "ref_bins": _bin_views(r.ref_bins) if r.has_ref else None,
            "predicted_ece": _num(r.predicted_ece) if r.has_trend else None,
            "ece_beyond_trend": _num(r.ece_beyond_trend) if r.has_trend else None,
            "ece_beyond_trend_ci": _pair(r.ece_beyond_trend_ci) if r.has_ece_beyond_trend_ci else None,
        })
    trend = None
    if c.HasField("trend"):
        t = c.trend
        trend = {"ok": t.ok, "reason": t.reason, "n_baseline": t.n, "slope": _num(t.slope) if t.ok else None,
                 "intercept": _num(t.intercept) if t.ok else None, "r2": _num(t.r2) if t.ok else None,
                 "slope_ci": _pair(t.slope_ci) if t.has_ci else None,
                 "intercept_ci": _pair(t.intercept_ci) if t.has_ci else None}
    return {"testset": c.testset, "reference": c.reference or None, "bins": c.bins, "resamples": c.resamples,
            "rows": rows, "trend": trend, "notes": list(c.notes)}


def consistency_view(c: pb.Consistency) -> dict[str, Any]:
    return {"model_a": c.model_a, "model_b": c.model_b, "testset": c.testset, "samples": c.samples,
            "acc_a": _num(c.acc_a), "acc_b": _num(c.acc_b), "observed": _num(c.observed),
            "expected": _num(c.expected), "kappa": _num(c.kappa), "kappa_ci": _pair(c.kappa_ci),
            "note": c.note or None}


def matrix_view(m: pb.ConsistencyMatrix) -> dict[str, Any]:
    """JSON-ready: ``models``, ``kappa`` as a list of rows (``kappa_ci``: [low, high] per entry, None
    without intervals), and per model its category, baseline flag, accuracy, ``unique_solves`` and
    ``unique_solves_ci``."""
    n = len(m.models)
    kappa = [[_num(m.kappa[i * n + j]) for j in range(n)] for i in range(n)]
    has_ci = len(m.kappa_low) == n * n
    kappa_ci = [[[_num(m.kappa_low[i * n + j]), _num(m.kappa_high[i * n + j])] for j in range(n)]
                for i in range(n)] if has_ci else None
    solves_ci = len(m.unique_solves_low) == n
    models = [{"model": name, "category": m.categories[i], "baseline": m.baseline[i],
               "accuracy": _num(m.accuracy[i]), "unique_solves": m.unique_solves[i],
               "unique_solves_ci": [_num(m.unique_solves_low[i], 1), _num(m.unique_solves_high[i], 1)]
               if solves_ci else None}
              for i, name in enumerate(m.models)]
    return {"testset": m.testset, "samples": m.samples, "models": models, "order": list(m.models), "kappa": kappa,
            "kappa_ci": kappa_ci, "resamples": m.resamples, "notes": list(m.notes)}
