"""The board of a shift registered without labels: accuracy estimated by agreement on the line.

No label of the shift is known, so no accuracy on it is measured. For every model evaluated on both the
shift and its (labelled) reference, the shift accuracy is estimated from top-1 predictions alone with
:func:`shiftboard.domain.agreement.estimate_shift_accuracy` (Baek et al., NeurIPS 2022): ALine-D by
default, ALine-S where ALine-D gives no finite solution. The reference accuracies are measured (its
aggregates), the top-1 matrices are read in one query per test set
(:func:`shiftboard.adapters.duckdb.per_sample.top1_matrix`).

**Effective robustness of an unlabelled shift.** Each model's estimated shift accuracy takes the place of
the measured one, and the board is computed as any other (:func:`shift_leaderboard`): the baseline fit
(logit or probit, the gateway's baseline rule) goes through the baseline models' *estimated* shift
accuracies against their measured reference accuracies, ``predicted_shift_acc`` is that fit at a model's
reference accuracy and ER is the estimate minus it. So ER says how far a model's estimate lies above the
line of the baseline models' estimates, the same question as on a labelled shift, asked of estimates.
Because ALine-S puts every model exactly on one probit line (the agreement line's), its ER is ~0 on a
probit board by construction; ALine-D uses each model's own pair agreements, which is where ER comes
from. The rows are marked ``estimated`` and carry bootstrap intervals of the estimate and of its ER, and
paired tie marks (:func:`shiftboard.domain.agreement_bootstrap.bootstrap_estimates`: both test sets
resampled, the whole estimate repeated); the board carries the agreement line and, below
:data:`MIN_R2`, a warning.

The board is cached with the labelled boards (:class:`~.board_cache.BoardCache`, same stamp of the
shift and its reference); computing it reads 2 x models x samples top-1 values (a few MB for 20 models on
10,000 samples) and O(models² x samples) comparisons, and the bootstrap O(models² x samples x resamples)
multiply-adds (34 models, 1,440 samples, 1,000 resamples: about a second).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from shiftboard.adapters.duckdb.per_sample import correctness_matrix, top1_matrix
from shiftboard.domain.agreement import MIN_MODELS, MIN_R2, Estimate, estimate_shift_accuracy
from shiftboard.domain.agreement_bootstrap import bootstrap_estimates
from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.resampling import sample_list_key
from shiftboard.domain.robustness import LeaderboardSettings, ModelResult, ShiftLeaderboard, shift_leaderboard
from shiftboard.services.gateway import aggregates
from shiftboard.services.gateway.aggregates import Aggregator, Need
from shiftboard.services.gateway.board_messages import board_message, finite
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire import vocab

if TYPE_CHECKING:
    from shiftboard.adapters.duckdb.catalog import Catalog
    from shiftboard.settings import Settings


#: The most multiply-adds (model pairs x samples of both sets x resamples) one board spends on its
#: bootstrap: 100 models on 10,000 samples of each set get 202 resamples, 1.6 s here (the demo's 34 models,
#: 561 pairs x 1,940 samples x 1,000 resamples, stay well within it).
ESTIMATE_BOOTSTRAP_BUDGET = 2e10
#: The fewest resamples a large board's bootstrap is reduced to.
MIN_ESTIMATE_RESAMPLES = 50


def bounded_resamples(resamples: int, models: int, shift_samples: int, ref_samples: int) -> int:
    """``resamples``, reduced (to :data:`MIN_ESTIMATE_RESAMPLES` at the fewest) so that the bootstrap stays
    within :data:`ESTIMATE_BOOTSTRAP_BUDGET`."""
    per_resample = max(1, models * (models - 1) // 2 * (shift_samples + ref_samples))
    if resamples * per_resample <= ESTIMATE_BOOTSTRAP_BUDGET:
        return resamples
    return min(resamples, max(MIN_ESTIMATE_RESAMPLES, int(ESTIMATE_BOOTSTRAP_BUDGET // per_resample)))


def poor_fit_warning(r2: float) -> str:
    """The board's note when the agreement line fits below :data:`MIN_R2`."""
    return f"the agreement line fits poorly (R² = {r2:.3f} < {MIN_R2}): the estimates are not trustworthy"


def _estimate(top1_ref: np.ndarray, top1_shift: np.ndarray, ref_acc: np.ndarray) -> Estimate:
    """ALine-D, else ALine-S where ALine-D has no finite solution."""
    estimate = estimate_shift_accuracy(top1_ref, top1_shift, ref_acc, method="aline-d")
    if estimate.line.ok and not np.isfinite(estimate.shift_acc).all():
        estimate = estimate_shift_accuracy(top1_ref, top1_shift, ref_acc, method="aline-s")
    return estimate


def _agreement_message(estimate: Estimate, names: Sequence[str]) -> pb.AgreementFit:
    line = estimate.line
    out = pb.AgreementFit(ok=line.ok, reason=line.reason, transform=line.transform, n_pairs=line.n_pairs,
                          slope=finite(line.slope), intercept=finite(line.intercept), r2=finite(line.r2),
                          min_r2=MIN_R2, trustworthy=line.trustworthy(),
                          warning=poor_fit_warning(line.r2) if line.ok and not line.trustworthy() else
                          ("" if line.ok else f"no estimate: {line.reason}"))
    out.ref_agreement.extend(map(float, line.ref_agreement))
    out.shift_agreement.extend(map(float, line.shift_agreement))
    out.pair_a.extend(names[i] for i, _ in line.pairs)
    out.pair_b.extend(names[j] for _, j in line.pairs)
    return out


def _with_intervals(board: ShiftLeaderboard, names: Sequence[str], estimate: Estimate, top1_ref: np.ndarray,
                    top1_shift: np.ndarray, correct_ref: np.ndarray, spec: pb.TestSetSpec,
                    resamples: int) -> ShiftLeaderboard:
    """``board`` with each row's bootstrap interval of its estimate and ER, and the paired tie marks."""
    by_name = {r.model: r for r in board.rows}
    in_fit = set(board.fit.models)  # the baseline models the fit kept
    baseline = np.array([n in in_fit for n in names], dtype=bool)
    er = np.array([np.nan if by_name[n].er is None else by_name[n].er for n in names], dtype=np.float64)
    intervals = bootstrap_estimates(top1_ref, top1_shift, correct_ref, baseline, method=estimate.method,
                                    transform=board.fit.transform, er=er, resamples=resamples,
                                    ref_key=sample_list_key(spec.reference), shift_key=sample_list_key(spec.name),
                                    seed=aggregates.SEED)
    index = {n: i for i, n in enumerate(names)}

    def pair(values: np.ndarray, i: int) -> tuple[float, float] | None:
        return (float(values[i, 0]), float(values[i, 1])) if np.isfinite(values[i]).all() else None

    rows = []
    for r in board.rows:
        i = index[r.model]
        has_er = r.er is not None
        rows.append(replace(r, shift_ci=pair(intervals.shift_acc_ci, i) or (float("nan"), float("nan")),
                            er_ci=pair(intervals.er_ci, i) if has_er else None,
                            diff_ci=pair(intervals.diff_ci, i) if has_er else None,
                            tied=bool(intervals.tied[i]) if has_er and pair(intervals.diff_ci, i) else r.tied))
    return replace(board, rows=tuple(rows))


def estimated_board(catalog: Catalog, aggregator: Aggregator, settings: Settings, shift: pb.TestSet,
                    transform: str, extremes: str, models: Mapping[str, pb.Model],
                    succeeded: Mapping[str, Mapping[str, int]], resamples: int = 0) -> pb.Leaderboard:
    """The board of an unlabelled ``shift`` (see the module docstring). ``succeeded`` maps the shift and
    its reference to name:version -> evaluation id of their succeeded evaluations; ``resamples``: the
    bootstrap's (0: no intervals)."""
    spec = shift.spec
    on_shift, on_ref = succeeded[spec.name], succeeded[spec.reference]
    names = sorted(set(on_shift) & set(on_ref) & set(models))
    reference = catalog.get_testset(spec.reference).spec
    asked, resamples = resamples, bounded_resamples(resamples, len(names), spec.num_samples, reference.num_samples)
    cfg = LeaderboardSettings(
        baseline_categories=frozenset(settings.baseline_categories.split(",")),
        min_ref_acc=settings.min_reference_accuracy, transform=transform,  # type: ignore[arg-type]
        resamples=0, extremes=extremes or "clip", seed=aggregates.SEED)  # type: ignore[arg-type]
    notes = [f"{spec.name} has no labels: shift accuracies are estimated from top-1 agreement (agreement on "
             "the line); ER is each estimate minus the baseline fit through the baseline models' estimates; "
             + (f"intervals: {resamples} bootstrap resamples of both test sets, the whole estimate repeated"
                if resamples else "no intervals")]
    if resamples < asked:
        notes.append(f"{len(names)} models on {spec.num_samples:,} samples: {resamples} bootstrap resamples (of "
                     f"{asked} asked) bound the work of one request to ~{ESTIMATE_BOOTSTRAP_BUDGET:.0e} "
                     "multiply-adds")
    if len(names) < MIN_MODELS:
        board = shift_leaderboard([], cfg, shift=spec.name)
        out = board_message(shift, replace(board, notes=(*notes, f"{len(names)} model(s) evaluated on both "
                                           f"{spec.name} and {spec.reference}: the estimate needs at least "
                                           f"{MIN_MODELS}")), models, {})
        out.estimate_method = ""
        out.agreement.CopyFrom(pb.AgreementFit(ok=False, reason=f"{len(names)} model(s): at least {MIN_MODELS} "
                                               "needed", transform="probit", min_r2=MIN_R2))
        return out
    ref = aggregator.get([Need(on_ref[n], spec.reference) for n in names], 0)
    ref_counts = [ref[(on_ref[n], "")] for n in names]
    ref_acc = np.array([a.correct / a.samples for a in ref_counts], dtype=np.float64)
    labels = {on_ref[n]: n for n in names} | {on_shift[n]: n for n in names}
    top1_ref = top1_matrix(catalog, spec.reference, [on_ref[n] for n in names], reference.num_samples, labels)
    top1_shift = top1_matrix(catalog, spec.name, [on_shift[n] for n in names], spec.num_samples, labels)
    estimate = _estimate(top1_ref, top1_shift, ref_acc)
    agreement = _agreement_message(estimate, names)
    if not estimate.line.ok:
        board = shift_leaderboard([], cfg, shift=spec.name)
        board = replace(board, notes=(*notes, agreement.warning))
        results: list[ModelResult] = []
    else:
        results = [ModelResult(model=n, category=vocab.category_word(models[n].metadata.category),
                               n_ref=a.samples, ref_successes=a.correct, shift_acc=float(e),
                               n_shift=spec.num_samples)
                   for n, a, e in zip(names, ref_counts, estimate.shift_acc, strict=True)]
        try:
            board = shift_leaderboard(results, cfg, shift=spec.name)
        except (ValueError, InvalidArgument) as exc:  # an estimate outside [0, 1] would be a defect upstream
            raise InvalidArgument(f"the estimates of {spec.name} cannot be ranked: {exc}") from None
        if resamples:
            correct_ref = correctness_matrix(catalog, spec.reference, [on_ref[n] for n in names],
                                             reference.num_samples, labels)
            board = _with_intervals(board, names, estimate, top1_ref, top1_shift, correct_ref, spec, resamples)
        if agreement.warning:
            notes.insert(0, agreement.warning)
        board = replace(board, notes=(*notes, *board.notes))
    out = board_message(shift, board, models, {})
    for row in out.rows:
        row.estimated = True
        if not resamples or not np.isfinite(row.shift_ci.low):
            row.ClearField("shift_ci")  # a binomial interval around an estimate would claim what is not known
    out.estimate_method = estimate.method
    out.agreement.CopyFrom(agreement)
    return out
