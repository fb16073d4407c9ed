"""GetLeaderboard, GetOverview and CompareModels: the robustness maths over measured and imported results.

The maths lives in ``shiftboard.domain`` and ``shiftboard.testbed`` (no gRPC there); this module
gathers its inputs from the catalog and turns the results into messages. A shift's board holds:

* **measured** models: every model that succeeded on both the shift and its reference, read as two
  per-evaluation aggregates (:mod:`.aggregates`: correct counts and the correct counts in each
  resample of the shared resampling weights), never as predictions; the paired bootstrap from them
  equals the one from per-sample correctness. Where the shift scores a class sub-list (or a class
  map), the reference aggregate is over the samples the sub-list keeps, from the exact correctness
  the evaluation stored (argmax over the sub-list's logits, ``restricted_correct``); an evaluation
  without it (made before, or before the shift was registered) is rebuilt from its stored top-5,
  which counts a sample wrong when none of its top 5 lies in the sub-list, and the board's notes say so;
* **imported** points (``ImportResults``): accuracy-only, with the setting's sample count, so their
  ER intervals use the binomial bootstrap (and a board holding any has ``er_mode`` binomial).

A board with imported points follows the testbed's baseline rule (standard models, names without
``aws``, ``batch64`` or ``subsample``, accuracies of exactly 0 or 1 left out of the fit and listed);
its line is the imported grid's, and measured models are placed on it. A purely measured board keeps
the gateway's settings (baseline categories, minimum reference accuracy, clipping). A shift may be a
registered test set or a setting declared by imported results only.

A shift naming extra references (``TestSetSpec.extra_references``) also gets its plane fit
(:func:`shiftboard.domain.plane_board.plane_board`: the board's baseline, each model's accuracy on every
reference from the same count aggregates) in ``Leaderboard.plane`` and each row's ``plane_er``.

A group's boards are computed one at a time and only the running sum of each model's bootstrap draws
is kept, so memory stays bounded however many shifts the group has (ImageNet-C: 185); above
:data:`GROUP_RESAMPLE_BUDGET` shift-resamples the resamples per shift are reduced (and a note says so).
A group and the overview read each aggregate once (a reference shared by many shifts included).
CompareModels reads the two evaluations' stored correctness.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import grpc
import numpy as np

from shiftboard.domain.bootstrap import sample_list_key
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from shiftboard.domain.paired import mcnemar
from shiftboard.domain.plane_board import PlaneBoard
from shiftboard.domain.robustness import (
    EXTREMES,
    LeaderboardSettings,
    ModelResult,
    ShiftLeaderboard,
    group_leaderboard,
    shift_leaderboard,
)
from shiftboard.services.gateway import aggregates
from shiftboard.services.gateway.aggregates import Aggregate, Aggregator, Need
from shiftboard.services.gateway.board_cache import BoardCache, dependency_stamp
from shiftboard.services.gateway.board_messages import Imported, board_message, declared_message, finite, group_row
from shiftboard.services.gateway.estimated_board import estimated_board
from shiftboard.services.gateway.limits import MAX_RESAMPLES
from shiftboard.services.gateway.plane_inputs import plane_of
from shiftboard.testbed import leaderboard_settings
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab

if TYPE_CHECKING:
    from shiftboard.adapters.duckdb.catalog import Catalog, ImportedRow
    from shiftboard.adapters.duckdb.evaluations import Evaluations
    from shiftboard.settings import Settings

#: Bootstrap resamples one group request computes in all (shifts x resamples per shift).
GROUP_RESAMPLE_BUDGET = 50_000
#: The fewest resamples per shift a group is reduced to.
MIN_GROUP_RESAMPLES = 100
#: Above this many shifts a group's per-shift boards carry their fit but no rows (one message stays
#: under gRPC's size limit: 185 ImageNet-C boards of 300+ rows are ~14 MB); each shift's own request has them.
GROUP_ROWS_MAX_SHIFTS = 40
#: What CompareModels and other per-sample features answer for imported entries.
ACCURACY_ONLY = "not available for imported results (accuracy only)"

#: Aggregates already read within one request, by (evaluation id, variant).
Known = dict[tuple[int, str], Aggregate]


class LeaderboardRpcs:
    """GetLeaderboard, GetOverview and CompareModels over the catalog, the aggregates and the board cache.

    ``board_cache`` gives the gateway's cache of computed boards at each use (it may be replaced while
    the gateway runs).
    """

    def __init__(self, catalog: Catalog, evaluations: Evaluations, settings: Settings, aggregator: Aggregator,
                 board_cache: Callable[[], BoardCache]) -> None:
        self.catalog = catalog
        self.evaluations = evaluations
        self.settings = settings
        self.aggregator = aggregator
        self._board_cache = board_cache

    @property
    def board_cache(self) -> BoardCache:
        return self._board_cache()

    # ---------------------------------------------------------------- inputs

    def _succeeded(self, testset: str) -> dict[str, int]:
        """name:version -> evaluation id of every succeeded evaluation on ``testset``."""
        rows = self.catalog.query("SELECT model, version, id FROM evaluations WHERE testset = ? AND "
                                  "status = ?", [testset, vocab.SUCCEEDED])
        return {f"{m}:{v}": int(i) for m, v, i in rows}

    def _shift_testset(self, name: str) -> pb.TestSet:
        """A registered test set, else a declared one; NOT_FOUND when neither."""
        try:
            return self.catalog.get_testset(name)
        except NotFound:
            declared = self.catalog.declared_testsets(name=name)
            if not declared:
                raise
            return declared_message(declared[0])

    def _group_shifts(self, group: str, kind: int = pb.TEST_SET_KIND_UNSPECIFIED) -> list[pb.TestSet]:
        registered = self.catalog.list_testsets(group=group or None)
        declared = [declared_message(d) for d in self.catalog.declared_testsets(group=group or None)]
        # a set without labels has no measured accuracy: its estimated board is asked for by name only
        return sorted((t for t in [*registered, *declared] if t.spec.kind != pb.TEST_SET_KIND_REFERENCE
                       and not t.spec.unlabelled and (kind == pb.TEST_SET_KIND_UNSPECIFIED or t.spec.kind == kind)),
                      key=lambda t: t.spec.name)

    @staticmethod
    def _variant(spec: pb.TestSetSpec) -> str:
        """The sample list of a shift's reference: its own samples, or those the shift's classes keep."""
        return spec.name if spec.class_subset or spec.class_map else ""

    def _measured(self, spec: pb.TestSetSpec, models: dict[str, pb.Model], notes: list[str], resamples: int,
                  known: Known) -> list[ModelResult]:
        if spec.declared:
            return []
        on_shift, on_ref = self._succeeded(spec.name), self._succeeded(spec.reference)
        variant = self._variant(spec)
        names = sorted(set(on_shift) & set(on_ref) & set(models))
        got = self.aggregator.get([*(Need(on_ref[n], spec.reference, variant) for n in names),
                                   *(Need(on_shift[n], spec.name) for n in names)], resamples, known)
        results, rebuilt = [], []
        for name in names:
            ref, shift = got[(on_ref[name], variant)], got[(on_shift[name], "")]
            if not ref.exact:
                rebuilt.append(name)
            results.append(ModelResult(
                model=name, category=self._category(models[name]), n_ref=ref.samples, ref_successes=ref.correct,
                n_shift=shift.samples, shift_successes=shift.correct,
                ref_resampled=ref.counts if resamples else None, shift_resampled=shift.counts if resamples else None))
        if rebuilt:
            first = rebuilt[0].split(":")[0]
            notes.append(
                f"reference accuracy on {spec.name}'s classes rebuilt from stored top-5 for {len(rebuilt)} model(s) "
                f"({', '.join(rebuilt[:3])}{', ...' if len(rebuilt) > 3 else ''}): their {spec.reference} evaluation "
                f"predates the exact restricted scores or {spec.name}; a sample none of whose top 5 is in the "
                f"sub-list counts wrong. `shiftboard eval request --model {first} --testset {spec.reference} --rerun` "
                "computes them exactly")
        return results

    def _imported(self, spec: pb.TestSetSpec, points: Sequence[ImportedRow] | None,
                  notes: list[str]) -> tuple[list[ModelResult], dict[str, ImportedRow]]:
        """Accuracy-only rows of the models imported on both the shift and its reference."""
        rows = points if points is not None else self.catalog.imported_points([spec.name, spec.reference])
        on_shift = {p.model: p for p in rows if p.testset == spec.name}
        on_ref = {p.model: p for p in rows if p.testset == spec.reference}
        counts: dict[str, int | None] = {}
        for testset in (spec.name, spec.reference):
            declared = self.catalog.declared_testset(testset)
            counts[testset] = declared.samples if declared is not None else None
        results, info, missing = [], {}, []
        for model in sorted(set(on_shift) & set(on_ref)):
            ref, shift = on_ref[model], on_shift[model]
            n_ref, n_shift = ref.samples or counts[spec.reference], shift.samples or counts[spec.name]
            if not n_ref or not n_shift:
                missing.append(model)
                continue
            results.append(ModelResult(model=model, category=shift.category, ref_acc=ref.accuracy,
                                       shift_acc=shift.accuracy, n_ref=n_ref, n_shift=n_shift))
            info[model] = shift
        if missing:
            notes.append(f"{len(missing)} imported model(s) left out: no sample count on {spec.name} or "
                         f"{spec.reference} (first: {', '.join(missing[:3])}); import them with a total")
        return results, info

    def _board(self, shift: pb.TestSet, transform: str, resamples: int, extremes: str = "",
               models: dict[str, pb.Model] | None = None, points: Sequence[ImportedRow] | None = None,
               known: Known | None = None) -> tuple[ShiftLeaderboard, dict[str, pb.Model], Imported]:
        spec = shift.spec
        if spec.kind == pb.TEST_SET_KIND_REFERENCE:
            raise InvalidArgument(f"{spec.name} is a reference test set: ask for a shift that names it as "
                                  "its reference")
        if models is None:
            models = {f"{m.metadata.name}:{m.metadata.version}": m for m in self.catalog.list_models()}
        notes: list[str] = []
        measured = self._measured(spec, models, notes, resamples, {} if known is None else known)
        imported, info = self._imported(spec, points, notes)
        if imported:
            settings = leaderboard_settings(transform, resamples=resamples, extremes=extremes or "exclude")
            # The line is the imported grid's: measured models (name:version) are placed on it, not in it.
            settings = replace(settings, exclude_name_parts=(*settings.exclude_name_parts, ":"))
            if measured:
                notes.append("baseline: the imported standard models (the testbed's rule); measured models are "
                             "placed on their line; ER intervals are binomial for every model")
        else:
            settings = LeaderboardSettings(
                baseline_categories=frozenset(self.settings.baseline_categories.split(",")),
                min_ref_acc=self.settings.min_reference_accuracy, transform=transform,  # type: ignore[arg-type]
                resamples=resamples, extremes=extremes or "clip")  # type: ignore[arg-type]
        # The seed of the shared resampling weights is the one the aggregates were computed with.
        board = shift_leaderboard([*measured, *imported], replace(settings, seed=aggregates.SEED), shift=spec.name,
                                  ref_key=sample_list_key(spec.reference, self._variant(spec)),
                                  shift_key=sample_list_key(spec.name))
        return replace(board, notes=(*board.notes, *notes)), models, info

    def _plane(self, spec: pb.TestSetSpec, board: ShiftLeaderboard, imported: Imported,
               known: Known | None = None) -> PlaneBoard | None:
        return plane_of(self.catalog, self.aggregator, spec, board, imported, {} if known is None else known)

    @staticmethod
    def _category(model: pb.Model) -> str:
        return vocab.category_word(model.metadata.category)

    def _group(self, group: str, shifts: list[pb.TestSet], transform: str, resamples: int,
               extremes: str) -> pb.Leaderboard:
        """Every shift's board, then the group ranking, keeping only running sums of the draws."""
        notes = []
        per_shift = resamples
        if resamples and len(shifts) * resamples > GROUP_RESAMPLE_BUDGET:
            per_shift = max(MIN_GROUP_RESAMPLES, GROUP_RESAMPLE_BUDGET // len(shifts))
            if per_shift < resamples:
                notes.append(f"{len(shifts)} shifts: {per_shift} bootstrap resamples per shift (of {resamples} "
                             f"asked) bound the work of one request to ~{GROUP_RESAMPLE_BUDGET:,} resamples")
            per_shift = min(per_shift, resamples)
        models = {f"{m.metadata.name}:{m.metadata.version}": m for m in self.catalog.list_models()}
        names = [t.spec.name for t in shifts]
        wanted = sorted({*names, *(t.spec.reference for t in shifts)})
        points = self.catalog.imported_points(wanted)
        by_testset: dict[str, list[ImportedRow]] = {}
        for p in points:
            by_testset.setdefault(p.testset, []).append(p)
        out = pb.Leaderboard(group=group)
        boards: list[ShiftLeaderboard] = []
        sums: dict[str, np.ndarray] | None = None
        imported: dict[str, ImportedRow] = {}
        known: Known = {}
        for t in shifts:
            mine = [*by_testset.get(t.spec.name, []), *by_testset.get(t.spec.reference, [])]
            board, _, info = self._board(t, transform, per_shift, extremes, models, mine, known)
            message = board_message(t, board, models, info, self._plane(t.spec, board, info, known))
            if len(shifts) > GROUP_ROWS_MAX_SHIFTS:
                del message.rows[:]
            out.shifts.append(message)
            imported.update(info)
            draws = board.er_draws
            if draws is None or not draws:
                sums = {}
            elif sums is None:
                sums = {m: d.astype(np.float64) for m, d in draws.items()}
            elif sums:
                used = min(len(next(iter(sums.values()))), len(next(iter(draws.values()))))
                sums = {m: s[:used] + draws[m][:used] for m, s in sums.items() if m in draws}
            boards.append(replace(board, er_draws=None))
        if sums:
            # Each board carries the group's mean draws: the domain's mean over the boards is that mean.
            mean = {m: s / len(boards) for m, s in sums.items()}
            boards = [replace(b, er_draws=mean) for b in boards]
        ranking = group_leaderboard(boards)
        if len(shifts) > GROUP_ROWS_MAX_SHIFTS:
            notes.append(f"{len(shifts)} shifts: each shift's board here has its fit but not its rows; "
                         "GetLeaderboard(shift=...) gives them")
        out.notes.extend([*notes, *ranking.notes])
        out.group_rows.extend(group_row(g, models, imported) for g in [*ranking.rows, *ranking.partial])
        return out

    @staticmethod
    def _checked(transform: str, extremes: str) -> tuple[str, str]:
        transform = transform or "logit"
        if transform not in ("logit", "probit"):
            raise InvalidArgument(f"transform {transform!r}: use logit or probit")
        if extremes and extremes not in EXTREMES:
            raise InvalidArgument(f"extremes {extremes!r}: use {' or '.join(EXTREMES)}")
        return transform, extremes

    def _cached(self, key: str, testsets: Sequence[str] | None,
                compute: Callable[[], list[pb.Leaderboard]]) -> list[pb.Leaderboard]:
        """The boards stored under ``key`` while the stamp of ``testsets`` is unchanged, else computed
        (the stamp is read first: data read after it is at least as new) and stored."""
        stamp = dependency_stamp(self.catalog, self.settings, testsets)
        hit = self.board_cache.boards.get(key, stamp)
        if hit is not None:
            return [pb.Leaderboard.FromString(b) for b in hit]
        boards = compute()
        self.board_cache.boards.put(key, stamp, tuple(b.SerializeToString(deterministic=True) for b in boards))
        return boards

    def _shift_message(self, shift: pb.TestSet, transform: str, resamples: int, extremes: str) -> pb.Leaderboard:
        known: Known = {}
        board, models, info = self._board(shift, transform, resamples, extremes, known=known)
        return board_message(shift, board, models, info, self._plane(shift.spec, board, info, known))

    @staticmethod
    def _specs(shifts: Sequence[pb.TestSet]) -> tuple[bytes, ...]:
        return tuple(t.SerializeToString(deterministic=True) for t in shifts)

    # ---------------------------------------------------------------- RPCs

    def GetLeaderboard(self, request: pb.GetLeaderboardRequest, context: grpc.ServicerContext) -> pb.Leaderboard:
        """One shift's ranking, or a group's mean accuracies and ER with each shift's ranking."""
        if request.resamples > MAX_RESAMPLES:
            raise ResourceExhausted(f"resamples is {request.resamples}; the gateway computes at most "
                                    f"{MAX_RESAMPLES} bootstrap resamples: ask for fewer (0 uses the default, "
                                    f"{self.settings.bootstrap_resamples})")
        transform, extremes = self._checked(request.transform, request.extremes)
        if bool(request.shift) == bool(request.group):
            raise InvalidArgument("give a shift or a group (one of them)")
        resamples = request.resamples or self.settings.bootstrap_resamples
        if request.shift:
            shift = self._shift_testset(request.shift)
            if shift.spec.unlabelled:
                key = BoardCache.key("estimated", *self._specs([shift]), transform, resamples, extremes)
                return self._cached(key, [shift.spec.name, shift.spec.reference], lambda: [
                    self._estimated(shift, transform, extremes, resamples)])[0]
            key = BoardCache.key("shift", *self._specs([shift]), transform, resamples, extremes)
            return self._cached(key, [shift.spec.name, shift.spec.reference, *shift.spec.extra_references],
                                lambda: [self._shift_message(shift, transform, resamples, extremes)])[0]
        shifts = self._group_shifts(request.group)
        if not shifts:
            raise NotFound(f"no shifted test set has group {request.group!r}: `shiftboard testset list` "
                           "shows the groups")
        key = BoardCache.key("group", request.group, *self._specs(shifts), transform, resamples, extremes)
        testsets = [name for t in shifts for name in (t.spec.name, t.spec.reference, *t.spec.extra_references)]
        return self._cached(key, testsets, lambda: [
            self._group(request.group, shifts, transform, resamples, extremes)])[0]

    def _estimated(self, shift: pb.TestSet, transform: str, extremes: str, resamples: int) -> pb.Leaderboard:
        """The board of a shift registered without labels (:mod:`.estimated_board`)."""
        models = {f"{m.metadata.name}:{m.metadata.version}": m for m in self.catalog.list_models()}
        succeeded = {name: self._succeeded(name) for name in (shift.spec.name, shift.spec.reference)}
        return estimated_board(self.catalog, self.aggregator, self.settings, shift, transform, extremes, models,
                               succeeded, resamples)

    def GetOverview(self, request: pb.GetOverviewRequest, context: grpc.ServicerContext) -> Iterator[pb.Leaderboard]:
        """Every shift's fit and every model's ER, without bootstrap (one request for the overview page)."""
        transform, extremes = self._checked(request.transform, request.extremes)
        shifts = self._group_shifts("", request.kind)
        key = BoardCache.key("overview", request.kind, *self._specs(shifts), transform, extremes)
        stamp = dependency_stamp(self.catalog, self.settings, None)
        hit = self.board_cache.boards.get(key, stamp)
        if hit is not None:
            yield from (pb.Leaderboard.FromString(b) for b in hit)
            return
        models = {f"{m.metadata.name}:{m.metadata.version}": m for m in self.catalog.list_models()}
        by_testset: dict[str, list[ImportedRow]] = {}
        for p in self.catalog.imported_points():
            by_testset.setdefault(p.testset, []).append(p)
        done: list[bytes] = []
        known: Known = {}
        for t in shifts:
            if not context.is_active():
                return
            mine = [*by_testset.get(t.spec.name, []), *by_testset.get(t.spec.reference, [])]
            board, _, info = self._board(t, transform, 0, extremes, models, mine, known)
            if board.rows:
                message = board_message(t, board, models, info)
                done.append(message.SerializeToString(deterministic=True))
                yield message
        self.board_cache.boards.put(key, stamp, tuple(done))

    def CompareModels(self, request: pb.CompareModelsRequest, context: grpc.ServicerContext) -> pb.Comparison:
        """McNemar's test between two models' per-sample correctness on one test set."""
        names = []
        for given in (request.model_a, request.model_b):
            name, _, version = given.partition(":")
            try:
                model, _ = self.catalog.get_model(name, version)
            except NotFound:
                if not version and self.catalog.imported_model(name) is not None:
                    raise FailedPrecondition(f"{name} is imported: McNemar's paired test is {ACCURACY_ONLY}; "
                                             "compare measured models") from None
                raise
            names.append(f"{model.metadata.name}:{model.metadata.version}")
        if self.catalog.get_testset(request.testset).spec.unlabelled:
            raise FailedPrecondition(f"test set {request.testset} was registered without labels: McNemar's test "
                                     "needs per-sample correctness; compare the models on a labelled set")
        done = self._succeeded(request.testset)
        for full in names:
            if full not in done:
                raise FailedPrecondition(f"{full} has no finished evaluation on {request.testset}: "
                                         "`shiftboard eval list` shows its state")
        a = self.aggregator.correctness(done[names[0]])
        b = self.aggregator.correctness(done[names[1]])
        test = mcnemar(a, b)
        return pb.Comparison(model_a=names[0], model_b=names[1], testset=request.testset, samples=len(a),
                             acc_a=float(a.mean()), acc_b=float(b.mean()), only_a_correct=test.b,
                             only_b_correct=test.c, statistic=finite(test.statistic), p_value=test.p_value,
                             method=test.method)
