"""Leaderboards as messages: a shift's board, a group's rows, a declared setting as a test set."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from shiftboard.domain.groups import GroupRow
from shiftboard.domain.plane_board import PlaneBoard
from shiftboard.domain.robustness import ShiftLeaderboard
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab

if TYPE_CHECKING:
    from shiftboard.adapters.duckdb.catalog import DeclaredTestSet, ImportedRow

Imported = Mapping[str, "ImportedRow"]


def interval(pair: tuple[float, float] | None) -> pb.Interval:
    return pb.Interval(low=pair[0], high=pair[1]) if pair else pb.Interval()


def finite(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) else 0.0


def declared_message(d: DeclaredTestSet) -> pb.TestSet:
    """A declared setting as a test set without data (``spec.declared``)."""
    spec = pb.TestSetSpec(name=d.name, kind=vocab.kind_value(d.kind), reference=d.reference,
                          group=d.groups[0] if d.groups else "", groups=list(d.groups), num_samples=d.samples or 0,
                          description=d.title, declared=True, class_protocol=d.class_protocol)
    return pb.TestSet(spec=spec, created_by=d.source)


def board_message(shift: pb.TestSet, board: ShiftLeaderboard, models: Mapping[str, pb.Model],
                  imported: Imported, plane: PlaneBoard | None = None) -> pb.Leaderboard:
    """One shift's board as its message (with its plane fit against several references, when given)."""
    fit, band = board.fit, board.band
    out = pb.Leaderboard(shift=shift.spec.name, reference=shift.spec.reference, notes=list(board.notes),
                         er_mode=board.er_mode or "", class_subset=list(shift.spec.class_subset))
    out.fit.CopyFrom(pb.BaselineFit(ok=fit.ok, reason=fit.reason or "", transform=fit.transform, n=fit.n,
                                    slope=finite(fit.slope), intercept=finite(fit.intercept),
                                    r2=finite(fit.r2), clipped=list(fit.clipped), excluded=list(fit.excluded)))
    if band is not None:
        out.fit.slope_ci.CopyFrom(interval(band.slope_ci))
        out.fit.intercept_ci.CopyFrom(interval(band.intercept_ci))
        out.fit.grid.extend(map(float, band.grid))
        out.fit.predicted.extend(map(float, band.predicted))
        out.fit.band_low.extend(map(float, band.low))
        out.fit.band_high.extend(map(float, band.high))
    for r in board.rows:
        row = pb.LeaderboardRow(
            model=r.model, category=r.category, baseline=r.baseline, ref_acc=r.ref_acc,
            ref_ci=interval(r.ref_ci), n_ref=r.n_ref, shift_acc=r.shift_acc, shift_ci=interval(r.shift_ci),
            n_shift=r.n_shift, has_er=r.er is not None, predicted_shift_acc=finite(r.predicted_shift_acc),
            er=finite(r.er), er_ci=interval(r.er_ci), has_er_ci=r.er_ci is not None, tied=r.tied,
            rank=r.rank or 0, clipped=r.clipped, diff_ci=interval(r.diff_ci), has_diff_ci=r.diff_ci is not None)
        if r.model in models:
            row.tags.extend(models[r.model].metadata.tags)
        elif (point := imported.get(r.model)) is not None:
            row.imported = True
            row.source, row.version, row.url, row.testbed_type = (point.source, point.version, point.url,
                                                                  point.testbed_type)
        out.rows.append(row)
    if plane is not None:
        _add_plane(out, plane)
    return out


def _add_plane(out: pb.Leaderboard, plane: PlaneBoard) -> None:
    """The plane fit into ``out.plane``, each row's plane prediction and ER, and the plane's notes."""
    fit = plane.fit
    out.plane.CopyFrom(pb.PlaneFit(ok=fit.ok, reason=fit.reason or "", transform=fit.transform, n=fit.n,
                                   references=list(plane.references), intercept=finite(fit.intercept),
                                   coefficients=[finite(c) for c in fit.coefficients], r2=finite(fit.r2)))
    for row in out.rows:
        er, predicted = plane.er.get(row.model), plane.predicted.get(row.model)
        if er is not None and predicted is not None and math.isfinite(er) and math.isfinite(predicted):
            row.has_plane_er, row.plane_er, row.plane_predicted_shift_acc = True, er, predicted
            ci = plane.er_ci.get(row.model)
            if ci is not None:
                row.has_plane_er_ci = True
                row.plane_er_ci.CopyFrom(interval(ci))
    out.notes.extend(plane.notes)


def group_row(g: GroupRow, models: Mapping[str, pb.Model], imported: Imported) -> pb.GroupRow:
    """One model's row of a group's ranking."""
    row = pb.GroupRow(
        model=g.model, category=g.category, shifts=g.shifts, of=g.of, mean_ref_acc=g.mean_ref_acc,
        mean_shift_acc=g.mean_shift_acc, er_shifts=g.er_shifts, has_er=g.mean_er is not None,
        mean_er=finite(g.mean_er), complete=g.complete, rank=g.rank or 0, tied=g.tied,
        mean_er_ci=interval(g.mean_er_ci), has_mean_er_ci=g.mean_er_ci is not None,
        diff_ci=interval(g.diff_ci), has_diff_ci=g.diff_ci is not None)
    if g.model in imported and g.model not in models:
        row.imported, row.source = True, imported[g.model].source
    return row
