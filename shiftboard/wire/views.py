"""Stable, JSON-ready views of API objects (used by `--json` output and the leaderboard).

Keys and value types here are a public format: add keys, never rename or drop them.
"""

from __future__ import annotations

from typing import Any

from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab


def _time(ts: Any) -> str:
    return ts.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ") if ts.seconds else ""


def model_view(model: pb.Model) -> dict[str, Any]:
    md = model.metadata
    return {
        "name": md.name,
        "version": md.version,
        "format": vocab.format_word(md.format),
        "category": vocab.category_word(md.category),
        "num_classes": md.num_classes,
        "input_shape": [md.input.channels, md.input.height, md.input.width],
        "value_range": [round(md.input.value_min, 6), round(md.input.value_max, 6)],
        "mean": [round(v, 6) for v in md.input.mean],
        "std": [round(v, 6) for v in md.input.std],
        "description": md.description,
        "tags": list(md.tags),
        "size_bytes": model.size_bytes,
        "sha256": model.sha256,
        "artifact_uri": model.artifact_uri,
        "created_at": _time(model.created_at),
        "created_by": model.created_by,
    }


def deployment_view(model: pb.Model) -> dict[str, Any]:
    d = model.deployment
    return {"triton_name": d.triton_name, "state": d.state, "reason": d.reason}


def testset_view(testset: pb.TestSet, *, shards: bool = False) -> dict[str, Any]:
    s = testset.spec
    out: dict[str, Any] = {
        "name": s.name,
        "kind": vocab.kind_word(s.kind),
        "reference": s.reference,
        "extra_references": list(s.extra_references),
        "group": s.group,
        "num_classes": s.num_classes,
        "class_subset": list(s.class_subset),
        "input_shape": [s.channels, s.height, s.width],
        "num_samples": s.num_samples,
        "num_shards": len(s.shards),
        "size_bytes": testset.size_bytes,
        "description": s.description,
        "created_at": _time(testset.created_at),
        "created_by": testset.created_by,
        "transform": _transform(s.transform) if s.HasField("transform") else None,
        "unlabelled": s.unlabelled,
    }
    if shards:
        out["class_names"] = list(s.class_names)
        out["class_map"] = [list(g.outputs) for g in s.class_map]
        out["shards"] = [
            {"index": sh.index, "first_sample": sh.first_sample, "num_samples": sh.num_samples,
             "size_bytes": sh.size_bytes, "sha256": sh.sha256, "key": sh.key}
            for sh in s.shards
        ]
    return out


def _transform(t: pb.ImageTransform) -> dict[str, Any]:
    return {"border": t.border, "resize": t.resize or None,
            "crop": [t.crop_height, t.crop_width] if t.crop_height else None,
            "interpolation": t.interpolation or None, "stretch": t.stretch}


def transform_text(view: dict[str, Any] | None) -> str:
    """A transform view (``testset_view(...)["transform"]``) in words, in the order it was applied."""
    if not view:
        return "none recorded"
    steps = []
    if view["border"]:
        steps.append(f"border {view['border']} px cropped")
    if view["resize"]:
        steps.append(f"shorter side resized to {view['resize']} ({view['interpolation']})")
    if view["crop"]:
        steps.append(f"centre crop {view['crop'][0]}x{view['crop'][1]}")
    if view["stretch"]:
        steps.append(f"resized to the set's size ({view['interpolation']})")
    return ", then ".join(steps) or "none"


def _ci(interval: Any) -> list[float]:
    return [round(interval.low, 6), round(interval.high, 6)]


def plane_view(plane: pb.PlaneFit) -> dict[str, Any]:
    """A plane fit against several references (coefficients in the order of ``references``)."""
    return {"ok": plane.ok, "reason": plane.reason, "transform": plane.transform, "n_baseline": plane.n,
            "references": list(plane.references),
            "coefficients": [round(c, 6) for c in plane.coefficients] if plane.ok else None,
            "intercept": round(plane.intercept, 6) if plane.ok else None,
            "r2": round(plane.r2, 6) if plane.ok else None}


def plane_equation(plane: dict[str, Any]) -> str:
    """``T(shift) = a1·T(ref1) + a2·T(ref2) + b`` of a :func:`plane_view` with a fit."""
    t = plane["transform"]
    terms = " ".join(f"{'+' if i and c >= 0 else '-' if c < 0 else ''}{' ' if i else ''}{abs(c):.3f}·{t}({ref})"
                     for i, (c, ref) in enumerate(zip(plane["coefficients"], plane["references"], strict=True)))
    return f"{t}(shift acc) = {terms} {'+' if plane['intercept'] >= 0 else '-'} {abs(plane['intercept']):.3f}"


def agreement_view(a: pb.AgreementFit) -> dict[str, Any]:
    """The agreement line of an unlabelled shift's board (probit axes, over model pairs)."""
    return {
        "ok": a.ok, "reason": a.reason, "transform": a.transform, "n_pairs": a.n_pairs,
        "slope": round(a.slope, 6) if a.ok else None, "intercept": round(a.intercept, 6) if a.ok else None,
        "r2": round(a.r2, 6) if a.ok else None, "min_r2": a.min_r2, "trustworthy": a.trustworthy,
        "warning": a.warning,
        "pairs": [{"model_a": x, "model_b": y, "ref_agreement": round(r, 6), "shift_agreement": round(t, 6)}
                  for x, y, r, t in zip(a.pair_a, a.pair_b, a.ref_agreement, a.shift_agreement, strict=True)],
    }


def leaderboard_view(board: pb.Leaderboard) -> dict[str, Any]:
    """One shift's (or a group's) leaderboard; accuracies are fractions, ER in percentage points."""
    fit = board.fit
    out: dict[str, Any] = {
        "shift": board.shift, "reference": board.reference, "group": board.group,
        "class_subset": list(board.class_subset), "notes": list(board.notes), "er_mode": board.er_mode,
        "fit": {
            "ok": fit.ok, "reason": fit.reason, "transform": fit.transform, "n_baseline": fit.n,
            "slope": round(fit.slope, 6) if fit.ok else None,
            "intercept": round(fit.intercept, 6) if fit.ok else None,
            "r2": round(fit.r2, 6) if fit.ok else None,
            "slope_ci": _ci(fit.slope_ci) if fit.grid else None,
            "intercept_ci": _ci(fit.intercept_ci) if fit.grid else None,
            "clipped": list(fit.clipped), "excluded": list(fit.excluded),
        },
        "rows": [{
            "rank": r.rank or None, "model": r.model, "category": r.category, "baseline": r.baseline,
            "ref_acc": round(r.ref_acc, 6), "ref_ci": _ci(r.ref_ci), "n_ref": r.n_ref,
            "shift_acc": round(r.shift_acc, 6),
            "shift_ci": None if r.estimated and not r.HasField("shift_ci") else _ci(r.shift_ci),
            "n_shift": r.n_shift, "estimated": r.estimated,
            "predicted_shift_acc": round(r.predicted_shift_acc, 6) if r.has_er else None,
            "er": round(r.er, 4) if r.has_er else None, "er_ci": _ci(r.er_ci) if r.has_er_ci else None,
            "tied": r.tied, "clipped": r.clipped, "tags": list(r.tags),
            "diff_ci": _ci(r.diff_ci) if r.has_diff_ci else None, "imported": r.imported,
            "source": r.source if r.imported else None, "version": r.version if r.imported else None,
            "url": r.url if r.imported else None, "testbed_type": r.testbed_type or None,
            "plane_predicted_shift_acc": round(r.plane_predicted_shift_acc, 6) if r.has_plane_er else None,
            "plane_er": round(r.plane_er, 4) if r.has_plane_er else None,
            "plane_er_ci": _ci(r.plane_er_ci) if r.has_plane_er_ci else None,
        } for r in board.rows],
    }
    out["plane"] = plane_view(board.plane) if board.HasField("plane") else None
    out["agreement"] = agreement_view(board.agreement) if board.HasField("agreement") else None
    out["estimate_method"] = board.estimate_method or None
    if board.group:
        out["group_rows"] = [{
            "model": g.model, "category": g.category, "shifts": g.shifts, "of": g.of,
            "mean_ref_acc": round(g.mean_ref_acc, 6), "mean_shift_acc": round(g.mean_shift_acc, 6),
            "mean_er": round(g.mean_er, 4) if g.has_er else None, "complete": g.complete, "rank": g.rank or None,
            "mean_er_ci": _ci(g.mean_er_ci) if g.has_mean_er_ci else None,
            "diff_ci": _ci(g.diff_ci) if g.has_diff_ci else None, "tied": g.tied, "imported": g.imported,
            "source": g.source if g.imported else None,
        } for g in board.group_rows]
        out["shifts"] = [leaderboard_view(b) for b in board.shifts]
    return out
