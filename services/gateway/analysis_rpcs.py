"""GetCalibration, GetConsistency and GetConsistencyMatrix: analyses of every stored per-sample prediction.

Thin: this module finds the evaluations, reads their per-sample matrices in one query each
(:mod:`shiftboard.adapters.duckdb.per_sample`: correctness from the stored bits, confidence from the
quantized column), calls the domain (:mod:`shiftboard.domain.analyses`, :mod:`~shiftboard.domain.calibration`,
:mod:`~shiftboard.domain.consistency`) and converts the results (:mod:`shiftboard.wire.analysis`).

Only measured models count (imported points have no per-sample predictions), and only labelled test
sets (an unlabelled set: FAILED_PRECONDITION "needs labels"). Baseline models follow the leaderboard's
rule for measured boards: a category among ``SHIFTBOARD_BASELINE_CATEGORIES`` and an accuracy on the
reference (the test set itself when it is a reference) of at least ``SHIFTBOARD_MIN_REFERENCE_ACCURACY``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc
import numpy as np

from shiftboard.adapters.duckdb.per_sample import confidence_matrix, correctness_matrix
from shiftboard.domain.analyses import Calibrated, baseline_models, calibrated, calibration_trend, trend_intervals
from shiftboard.domain.calibration import N_BINS
from shiftboard.domain.consistency import error_consistency, kappa_matrix, matrix_intervals, unique_solves
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from shiftboard.services.gateway.leaderboard_rpcs import ACCURACY_ONLY
from shiftboard.services.gateway.limits import MAX_RESAMPLES
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import analysis, vocab

if TYPE_CHECKING:
    from shiftboard.adapters.duckdb.catalog import Catalog
    from shiftboard.settings import Settings

#: Bootstrap resamples of an ECE or kappa interval when the request leaves them at 0.
DEFAULT_RESAMPLES = 200
#: The most multiply-adds (models² x samples x resamples) one matrix request spends on its kappa intervals:
#: measured here, 200 resamples of 34 models x 1,440 samples (3.3e8) take 0.15 s, of 100 models x 10,000
#: samples (2e10) 1.6 s.
KAPPA_INTERVAL_BUDGET = 2e10


class AnalysisRpcs:
    """Calibration and error consistency over the catalog's stored predictions."""

    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings

    # ---------------------------------------------------------------- inputs

    def _labelled(self, name: str, analysis_name: str) -> pb.TestSet:
        """A registered test set with labels; NOT_FOUND naming it, FAILED_PRECONDITION without labels."""
        if not name:
            raise InvalidArgument("no test set given: name one with --testset (`shiftboard testset list` shows them)")
        try:
            testset = self.catalog.get_testset(name)
        except NotFound:
            if self.catalog.declared_testset(name) is not None:
                raise FailedPrecondition(f"{name} is declared by imported results only: {analysis_name} needs "
                                         "per-sample predictions, which imported results lack") from None
            raise
        if testset.spec.unlabelled:
            raise FailedPrecondition(f"{name} is unlabelled: {analysis_name} needs labels (register the set "
                                     "with labels, or choose a labelled one)")
        return testset

    def _succeeded(self, testset: str) -> dict[str, int]:
        """name:version -> evaluation id of every measured model's succeeded evaluation on ``testset``."""
        rows = self.catalog.query("SELECT e.model, e.version, e.id FROM evaluations e JOIN models m ON "
                                  "m.name = e.model AND m.version = e.version WHERE e.testset = ? AND e.status = ? "
                                  "ORDER BY e.model, e.version", [testset, vocab.SUCCEEDED])
        return {f"{m}:{v}": int(i) for m, v, i in rows}

    def _model(self, given: str) -> str:
        """name:version of a model given as name (its newest version) or name:version."""
        name, _, version = given.partition(":")
        try:
            model, _ = self.catalog.get_model(name, version)
        except NotFound:
            if not version and self.catalog.imported_model(name) is not None:
                raise FailedPrecondition(f"{name} is imported: error consistency is {ACCURACY_ONLY}; choose "
                                         "measured models") from None
            raise
        return f"{model.metadata.name}:{model.metadata.version}"

    @staticmethod
    def _evaluated(names: Sequence[str], done: dict[str, int], testset: str) -> None:
        for full in names:
            if full not in done:
                model, _, version = full.partition(":")
                raise FailedPrecondition(
                    f"{full} has no finished evaluation on {testset}: `shiftboard eval request --model {model} "
                    f"--version {version} --testset {testset}` asks for it (`shiftboard eval list --model {model}` "
                    "shows its state)")

    def _categories(self, names: Sequence[str]) -> list[str]:
        models = {f"{m.metadata.name}:{m.metadata.version}": m for m in self.catalog.list_models()}
        return [vocab.category_word(models[n].metadata.category) for n in names]

    def _correct(self, spec: pb.TestSetSpec, names: Sequence[str], done: dict[str, int]) -> np.ndarray:
        ids = [done[n] for n in names]
        return correctness_matrix(self.catalog, spec.name, ids, int(spec.num_samples),
                                  {done[n]: n for n in names})

    def _reference(self, spec: pb.TestSetSpec) -> pb.TestSet | None:
        """The labelled reference of a shift (None for a reference, or a reference without labels)."""
        if spec.kind == pb.TEST_SET_KIND_REFERENCE or not spec.reference:
            return None
        try:
            reference = self.catalog.get_testset(spec.reference)
        except NotFound:
            return None
        return None if reference.spec.unlabelled else reference

    def _baseline(self, spec: pb.TestSetSpec, names: Sequence[str], categories: Sequence[str],
                  correct: np.ndarray, reference: pb.TestSet | None) -> np.ndarray:
        """The leaderboard's baseline rule over ``names`` (``correct``: their correctness on ``spec``)."""
        if reference is None:
            ref_acc = correct.mean(axis=1) if correct.size else np.full(len(names), np.nan)
        else:
            on_ref = self._succeeded(reference.spec.name)
            have = [n for n in names if n in on_ref]
            acc = dict(zip(have, self._correct(reference.spec, have, on_ref).mean(axis=1), strict=True)) \
                if have else {}
            ref_acc = np.array([acc.get(n, np.nan) for n in names], dtype=np.float64)
        return baseline_models(categories, ref_acc, frozenset(self.settings.baseline_categories.split(",")),
                               self.settings.min_reference_accuracy)

    @staticmethod
    def _resamples(asked: int) -> int:
        if asked > MAX_RESAMPLES:
            raise ResourceExhausted(f"resamples is {asked}; the gateway computes at most {MAX_RESAMPLES} bootstrap "
                                    f"resamples: ask for fewer (0 uses {DEFAULT_RESAMPLES})")
        return asked or DEFAULT_RESAMPLES

    def _calibrated(self, spec: pb.TestSetSpec, names: Sequence[str], done: dict[str, int],
                    resamples: int) -> tuple[list[Calibrated], np.ndarray]:
        """Each model's calibration on ``spec``, and its correctness matrix."""
        ids = [done[n] for n in names]
        labels = {done[n]: n for n in names}
        samples = int(spec.num_samples)
        correct = correctness_matrix(self.catalog, spec.name, ids, samples, labels)
        confidence = confidence_matrix(self.catalog, spec.name, ids, samples, labels)
        return [calibrated(c, k, resamples=resamples, key=spec.name)
                for c, k in zip(confidence, correct, strict=True)], correct

    # ---------------------------------------------------------------- RPCs

    def GetCalibration(self, request: pb.GetCalibrationRequest, context: grpc.ServicerContext) -> pb.Calibration:
        """ECE, its interval and reliability bins per model; for a shift, on its reference too, and the trend."""
        resamples = self._resamples(request.resamples)
        spec = self._labelled(request.testset, "calibration").spec
        done = self._succeeded(spec.name)
        names = sorted(done)
        notes: list[str] = []
        reference = self._reference(spec)
        if spec.kind != pb.TEST_SET_KIND_REFERENCE and spec.reference and reference is None:
            notes.append(f"the reference {spec.reference} has no labels here: ECE on the shift only")
        if not names:
            notes.append(f"no model has finished on {spec.name} yet")
            return analysis.calibration_message(spec.name, spec.reference if reference else "", N_BINS, resamples,
                                                [], [], [], [], [], None, None, notes)
        shift, correct = self._calibrated(spec, names, done, resamples)
        categories = self._categories(names)
        ref: list[Calibrated | None] = [None] * len(names)
        if reference is not None:
            on_ref = self._succeeded(reference.spec.name)
            have = [n for n in names if n in on_ref]
            if have:
                got, _ = self._calibrated(reference.spec, have, on_ref, resamples)
                by_name = dict(zip(have, got, strict=True))
                ref = [by_name.get(n) for n in names]
            if len(have) < len(names):
                notes.append(f"{len(names) - len(have)} model(s) have no finished evaluation on {spec.reference}: "
                             "no reference ECE for them")
            if spec.class_subset or spec.class_map:
                notes.append(f"reference ECE is over every sample and class of {spec.reference} (the confidence "
                             f"of a top-1 restricted to {spec.name}'s classes is not stored)")
            ref_acc = np.array([np.nan if r is None else r.accuracy for r in ref], dtype=np.float64)
        else:
            ref_acc = correct.mean(axis=1)
        baseline = baseline_models(categories, ref_acc, frozenset(self.settings.baseline_categories.split(",")),
                                   self.settings.min_reference_accuracy)
        trend = beyond = intervals = None
        if reference is not None:
            ref_ece = np.array([np.nan if r is None else r.ece for r in ref], dtype=np.float64)
            trend, beyond = calibration_trend(ref_ece, np.array([s.ece for s in shift]), baseline)
            if not trend.ok:
                notes.append(trend.reason)
            else:
                missing = np.full(resamples, np.nan)
                intervals = trend_intervals(
                    np.stack([missing if r is None or r.draws is None else r.draws for r in ref]),
                    np.stack([missing if s.draws is None else s.draws for s in shift]), baseline)
        return analysis.calibration_message(spec.name, reference.spec.name if reference else "", N_BINS, resamples,
                                            names, categories, list(baseline), shift, ref, trend, beyond, notes,
                                            intervals)

    def GetConsistency(self, request: pb.GetConsistencyRequest, context: grpc.ServicerContext) -> pb.Consistency:
        """Error consistency (Cohen's kappa of correctness) of two models on one labelled test set."""
        resamples = self._resamples(request.resamples)
        names = [self._model(request.model_a), self._model(request.model_b)]
        spec = self._labelled(request.testset, "error consistency").spec
        done = self._succeeded(spec.name)
        self._evaluated(names, done, spec.name)
        correct = self._correct(spec, names, done)
        result = error_consistency(correct[0], correct[1], resamples=resamples, seed=0, key=spec.name)
        return analysis.consistency_message(names[0], names[1], spec.name, result)

    def GetConsistencyMatrix(self, request: pb.GetConsistencyMatrixRequest,
                             context: grpc.ServicerContext) -> pb.ConsistencyMatrix:
        """Kappa of every pair of the models, and each one's unique solves against the baseline models."""
        resamples = self._resamples(request.resamples)
        spec = self._labelled(request.testset, "error consistency").spec
        done = self._succeeded(spec.name)
        wanted = list(dict.fromkeys(self._model(m) for m in request.models))
        self._evaluated(wanted, done, spec.name)
        everyone = sorted(done)
        shown = wanted or everyone
        if len(shown) < 2:
            raise FailedPrecondition(f"{len(shown)} model(s) finished on {spec.name}: a kappa matrix needs two; "
                                     "`shiftboard eval list --testset " + spec.name + "` shows the evaluations")
        correct = self._correct(spec, everyone, done)
        categories = self._categories(everyone)
        baseline = self._baseline(spec, everyone, categories, correct, self._reference(spec))
        solves = unique_solves(correct, baseline)
        at = [everyone.index(n) for n in shown]
        notes = []
        if not baseline.any():
            notes.append("no baseline model here: unique solves count every sample a model gets right")
        work = len(at) ** 2 * int(spec.num_samples) * resamples
        with_kappa = work <= KAPPA_INTERVAL_BUDGET
        if not with_kappa:
            notes.append(f"no kappa intervals: {len(at)} models x {spec.num_samples:,} samples x {resamples} "
                         f"resamples is over the budget of one request ({KAPPA_INTERVAL_BUDGET:.0e} multiply-adds); "
                         "name fewer models, or ask `shiftboard consistency MODEL_A MODEL_B` for one pair's")
        intervals = matrix_intervals(correct, baseline, at, resamples=resamples, key=spec.name, kappa=with_kappa)
        return analysis.matrix_message(spec.name, int(spec.num_samples), shown, [categories[i] for i in at],
                                       [bool(baseline[i]) for i in at], correct[at].mean(axis=1),
                                       kappa_matrix(correct[at]), solves[at], notes, resamples,
                                       intervals.kappa_ci, intervals.solves_ci[at])
