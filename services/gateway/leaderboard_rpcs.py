"""GetLeaderboard and CompareModels: the robustness maths over the stored per-sample predictions.

The maths lives in ``shiftboard.leaderboard`` (no gRPC there); this module gathers its inputs from
the catalog (per-sample correctness of every model that succeeded on both the shift and its
reference) and turns the results into messages. Where the shift scores only a class sub-list, the
reference correctness is restricted to the same classes from the stored top-5 predictions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from shiftboard import vocab
from shiftboard.errors import FailedPrecondition, InvalidArgument, NotFound
from shiftboard.leaderboard.paired import mcnemar, restricted_correct
from shiftboard.leaderboard.robustness import (
    LeaderboardSettings,
    ModelResult,
    ShiftLeaderboard,
    group_means,
    shift_leaderboard,
)
from shiftboard.services.gateway.rpc import rpc
from shiftboard.v1 import shiftboard_pb2 as pb

if TYPE_CHECKING:
    from shiftboard.services.gateway.catalog import Catalog
    from shiftboard.settings import Settings


def _interval(pair: tuple[float, float] | None) -> pb.Interval:
    return pb.Interval(low=pair[0], high=pair[1]) if pair else pb.Interval()


def _finite(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) else 0.0


class LeaderboardRpcs:
    """Mixed into the servicer; expects ``catalog`` and ``settings``."""

    catalog: Catalog
    settings: Settings

    # ---------------------------------------------------------------- inputs

    def _succeeded(self, testset: str) -> dict[str, int]:
        """name:version -> evaluation id of every succeeded evaluation on ``testset``."""
        rows = self.catalog.query("SELECT model, version, id FROM evaluations WHERE testset = ? AND "
                                  "status = 'succeeded'", [testset])
        return {f"{m}:{v}": int(i) for m, v, i in rows}

    def _columns(self, evaluation_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(labels, top5 [N,5], correct) of one evaluation in sample order."""
        with self.catalog.transaction() as cur:
            table = cur.execute("SELECT label, top5, correct FROM predictions WHERE evaluation_id = ? "
                                "ORDER BY sample", [evaluation_id]).fetch_arrow_table()
        labels = table.column("label").to_numpy()
        top5 = table.column("top5").combine_chunks().flatten().to_numpy().reshape(-1, 5)
        correct = table.column("correct").to_numpy(zero_copy_only=False).astype(bool)
        return labels, top5, correct

    def _board(self, shift: pb.TestSet, transform: str, resamples: int) -> tuple[ShiftLeaderboard, dict]:
        spec = shift.spec
        if spec.kind == pb.TEST_SET_KIND_REFERENCE:
            raise InvalidArgument(f"{spec.name} is a reference test set: ask for a shift that names it as "
                                  "its reference")
        on_shift, on_ref = self._succeeded(spec.name), self._succeeded(spec.reference)
        models = {f"{m.metadata.name}:{m.metadata.version}": m for m in self.catalog.list_models()}
        subset = list(spec.class_subset)
        results = []
        for name in sorted(set(on_shift) & set(on_ref) & set(models)):
            labels, top5, ref_correct = self._columns(on_ref[name])
            if subset:
                ref_correct = restricted_correct(labels, top5, subset)
            shift_correct = self._columns(on_shift[name])[2]
            category = self._category(models[name])
            results.append(ModelResult(model=name, category=category, ref_correct=ref_correct,
                                       shift_correct=shift_correct))
        settings = LeaderboardSettings(
            baseline_categories=frozenset(self.settings.baseline_categories.split(",")),
            min_ref_acc=self.settings.min_reference_accuracy, transform=transform,  # type: ignore[arg-type]
            resamples=resamples or self.settings.bootstrap_resamples)
        return shift_leaderboard(results, settings, shift=spec.name), models

    @staticmethod
    def _category(model: pb.Model) -> str:
        return vocab.category_word(model.metadata.category)

    def _message(self, shift: pb.TestSet, board: ShiftLeaderboard, models: dict[str, pb.Model]) -> pb.Leaderboard:
        fit, band = board.fit, board.band
        out = pb.Leaderboard(shift=shift.spec.name, reference=shift.spec.reference, notes=list(board.notes),
                             er_mode=board.er_mode or "", class_subset=list(shift.spec.class_subset))
        out.fit.CopyFrom(pb.BaselineFit(ok=fit.ok, reason=fit.reason or "", transform=fit.transform, n=fit.n,
                                        slope=_finite(fit.slope), intercept=_finite(fit.intercept),
                                        r2=_finite(fit.r2), clipped=list(fit.clipped)))
        if band is not None:
            out.fit.slope_ci.CopyFrom(_interval(band.slope_ci))
            out.fit.intercept_ci.CopyFrom(_interval(band.intercept_ci))
            out.fit.grid.extend(map(float, band.grid))
            out.fit.predicted.extend(map(float, band.predicted))
            out.fit.band_low.extend(map(float, band.low))
            out.fit.band_high.extend(map(float, band.high))
        for r in board.rows:
            row = pb.LeaderboardRow(
                model=r.model, category=r.category, baseline=r.baseline, ref_acc=r.ref_acc,
                ref_ci=_interval(r.ref_ci), n_ref=r.n_ref, shift_acc=r.shift_acc, shift_ci=_interval(r.shift_ci),
                n_shift=r.n_shift, has_er=r.er is not None, predicted_shift_acc=_finite(r.predicted_shift_acc),
                er=_finite(r.er), er_ci=_interval(r.er_ci), has_er_ci=r.er_ci is not None, tied=r.tied,
                rank=r.rank or 0, clipped=r.clipped)
            if r.model in models:
                row.tags.extend(models[r.model].metadata.tags)
            out.rows.append(row)
        return out

    # ---------------------------------------------------------------- RPCs

    @rpc(mutating=False)
    def GetLeaderboard(self, request: pb.GetLeaderboardRequest, context: grpc.ServicerContext,
                       caller: Any) -> pb.Leaderboard:
        """One shift's ranking, or a group's mean accuracies and ER with each shift's ranking."""
        transform = request.transform or "logit"
        if transform not in ("logit", "probit"):
            raise InvalidArgument(f"transform {transform!r}: use logit or probit")
        if bool(request.shift) == bool(request.group):
            raise InvalidArgument("give a shift or a group (one of them)")
        if request.shift:
            shift = self.catalog.get_testset(request.shift)
            board, models = self._board(shift, transform, request.resamples)
            return self._message(shift, board, models)
        shifts = [t for t in self.catalog.list_testsets(group=request.group)
                  if t.spec.kind != pb.TEST_SET_KIND_REFERENCE]
        if not shifts:
            raise NotFound(f"no shifted test set has group {request.group!r}: `shiftboard testset list` "
                           "shows the groups")
        boards = [(t, *self._board(t, transform, request.resamples)) for t in shifts]
        out = pb.Leaderboard(group=request.group)
        out.shifts.extend(self._message(t, b, m) for t, b, m in boards)
        for g in group_means([b for _, b, _ in boards]):
            out.group_rows.append(pb.GroupRow(
                model=g.model, category=g.category, shifts=g.shifts, of=g.of, mean_ref_acc=g.mean_ref_acc,
                mean_shift_acc=g.mean_shift_acc, er_shifts=g.er_shifts, has_er=g.mean_er is not None,
                mean_er=_finite(g.mean_er)))
        return out

    @rpc(mutating=False)
    def CompareModels(self, request: pb.CompareModelsRequest, context: grpc.ServicerContext,
                      caller: Any) -> pb.Comparison:
        """McNemar's test between two models' per-sample correctness on one test set."""
        done = self._succeeded(request.testset)
        self.catalog.get_testset(request.testset)
        names = []
        for given in (request.model_a, request.model_b):
            name, _, version = given.partition(":")
            model, _ = self.catalog.get_model(name, version)
            full = f"{model.metadata.name}:{model.metadata.version}"
            if full not in done:
                raise FailedPrecondition(f"{full} has no finished evaluation on {request.testset}: "
                                         "`shiftboard eval list` shows its state")
            names.append(full)
        a = self._columns(done[names[0]])[2]
        b = self._columns(done[names[1]])[2]
        test = mcnemar(a, b)
        return pb.Comparison(model_a=names[0], model_b=names[1], testset=request.testset, samples=len(a),
                             acc_a=float(a.mean()), acc_b=float(b.mean()), only_a_correct=test.b,
                             only_b_correct=test.c, statistic=_finite(test.statistic), p_value=test.p_value,
                             method=test.method)
