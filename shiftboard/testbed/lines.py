"""The testbed's lines: baseline fit and every model's effective robustness for each shift of a grid.

Pure maths over :class:`~.results.ImportedResults` (numpy via :mod:`shiftboard.domain`): no gRPC.

For a shift S with reference R (:mod:`.protocol`), the models with a point on both are the table; the
baseline is :func:`~.categories.baseline_rule` (standard models, names without ``aws``,
``batch64`` or ``subsample``); the fit is least squares of T(acc_S) on T(acc_R), T = logit by default
or probit, with accuracies of exactly 0 or 1 left out of the fit and listed (``extremes="exclude"``;
``"clip"`` clips them by half a sample instead). ER is in percentage points.

:func:`shift_table` gives the same table as :class:`~shiftboard.domain.robustness.ModelResult`
rows (accuracy-only, with sample counts) for :func:`~shiftboard.domain.robustness.shift_leaderboard`,
and :func:`leaderboard_settings` the :class:`LeaderboardSettings` that apply the testbed's rule there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from shiftboard.domain.baseline import Fit, check_extremes, check_transform, fit_baseline, predict_shift
from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.robustness import LeaderboardSettings, ModelResult

from .categories import BASELINE_CATEGORY, EXCLUDED_NAME_PARTS, baseline_rule
from .protocol import Kind
from .results import ImportedResults

__all__ = ["ShiftLine", "leaderboard_settings", "shift_line", "shift_lines", "shift_table"]


@dataclass(frozen=True, kw_only=True)
class ShiftLine:
    """One shift's line: the fit, and for every model with both points its accuracies and ER.

    ``er`` and ``predicted`` are None without a fit (``fit.ok`` false, ``fit.reason`` says why).
    ``baseline`` names the models the rule chose (``fit.models`` are those in the fit after leaving
    out accuracies of 0 or 1, listed in ``fit.excluded``).
    """

    shift: str
    reference: str
    fit: Fit
    models: tuple[str, ...]
    ref_acc: Mapping[str, float]
    shift_acc: Mapping[str, float]
    baseline: tuple[str, ...]
    predicted: Mapping[str, float] | None
    er: Mapping[str, float] | None


def _reference(results: ImportedResults, shift: str) -> str:
    setting = results.settings.get(shift)
    if setting is None:
        raise InvalidArgument(f"{shift} is not a setting the testbed protocol knows: declare it (kind and reference) "
                              "to fit its line")
    if setting.reference is None:
        raise InvalidArgument(f"{shift} is a reference setting: ask for a shift that names it as its reference")
    return setting.reference


def shift_line(results: ImportedResults, shift: str, *, transform: str = "logit", extremes: str = "exclude",
               baseline: Callable[[str, str], bool] | None = None) -> ShiftLine:
    """The testbed's line for ``shift`` (see the module docstring); ``baseline(model, category)``
    replaces the testbed's rule when given."""
    t = check_transform(transform)
    how = check_extremes(extremes)
    rule = baseline or baseline_rule
    reference = _reference(results, shift)
    table = results.by_testset()
    on_ref, on_shift = table.get(reference, {}), table.get(shift, {})
    models = tuple(m for m in on_shift if m in on_ref)
    ref_acc = {m: on_ref[m].accuracy for m in models}
    shift_acc = {m: on_shift[m].accuracy for m in models}
    chosen = tuple(m for m in models if rule(m, results.models[m].category or ""))
    fit = fit_baseline([ref_acc[m] for m in chosen], [shift_acc[m] for m in chosen], t, models=chosen,
                       extremes=how, n_ref=[on_ref[m].samples or 0 for m in chosen] if how == "clip" and all(
                           on_ref[m].samples for m in chosen) else None,
                       n_shift=[on_shift[m].samples or 0 for m in chosen] if how == "clip" and all(
                           on_shift[m].samples for m in chosen) else None)
    predicted = er = None
    if fit.ok and models:
        values = predict_shift(fit, np.array([ref_acc[m] for m in models]))
        predicted = {m: float(v) for m, v in zip(models, values, strict=True)}
        er = {m: 100.0 * (shift_acc[m] - predicted[m]) for m in models}
    return ShiftLine(shift=shift, reference=reference, fit=fit, models=models, ref_acc=ref_acc, shift_acc=shift_acc,
                     baseline=chosen, predicted=predicted, er=er)


def shift_lines(results: ImportedResults, *, kinds: Iterable[Kind] = ("natural", "synthetic", "adversarial"),
                transform: str = "logit", extremes: str = "exclude") -> dict[str, ShiftLine]:
    """:func:`shift_line` for every shift of ``results`` of the given kinds whose reference has points."""
    wanted = set(kinds)
    named = set(results.testsets)
    return {name: shift_line(results, name, transform=transform, extremes=extremes)
            for name, s in results.settings.items()
            if s.kind in wanted and s.reference is not None and name in named and s.reference in named}


def shift_table(results: ImportedResults, shift: str) -> list[ModelResult]:
    """The shift's models as accuracy-only :class:`ModelResult` rows (binomial bootstrap intervals).

    Every point needs a sample count; :class:`InvalidArgument` names the first that has none.
    """
    reference = _reference(results, shift)
    table = results.by_testset()
    on_ref, on_shift = table.get(reference, {}), table.get(shift, {})
    rows = []
    for model, point in on_shift.items():
        if model not in on_ref:
            continue
        ref = on_ref[model]
        for p in (ref, point):
            if p.samples is None:
                raise InvalidArgument(f"{p.model} on {p.testset} has no sample count: give a total for it, or "
                                      "declare the setting's sample count")
        rows.append(ModelResult(model=model, category=results.models[model].category or "other",
                                ref_acc=ref.accuracy, shift_acc=point.accuracy, n_ref=ref.samples,
                                n_shift=point.samples))
    return rows


def leaderboard_settings(transform: str = "logit", *, resamples: int = 1000, confidence: float = 0.95,
                     seed: int = 0, extremes: str = "exclude") -> LeaderboardSettings:
    """:class:`LeaderboardSettings` applying the testbed's baseline rule in ``shift_leaderboard``."""
    return LeaderboardSettings(baseline_categories=frozenset({BASELINE_CATEGORY}), transform=check_transform(transform),
                               resamples=resamples, confidence=confidence, seed=seed,
                               extremes=check_extremes(extremes), exclude_name_parts=EXCLUDED_NAME_PARTS)
