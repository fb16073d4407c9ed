"""The robustness maths against hand-computed cases: fits, ER, clipping, bootstrap, ties, McNemar."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from shiftboard.domain import resampling as resampling_module
from shiftboard.domain.robustness import (
    FitUnavailable,
    LeaderboardSettings,
    ModelResult,
    ShiftLeaderboard,
    bootstrap_er,
    bootstrap_er_binomial,
    bootstrap_fit,
    clip_accuracy,
    effective_robustness,
    fit_baseline,
    group_leaderboard,
    group_means,
    mcnemar,
    paired_ties,
    predict_shift,
    rank_with_ties,
    restricted_accuracy,
    restricted_correct,
    shift_leaderboard,
    subset_mask,
)
from shiftboard.domain.stats import clopper_pearson

E = math.e
PHI = NormalDist().cdf

# Three models exactly on logit(shift) = 0.5 * logit(ref) - 0.5, at logit(ref) = -1, 0, 1.
LOGIT_REF = [1 / (1 + E), 0.5, E / (1 + E)]
LOGIT_SHIFT = [1 / (1 + E), 1 / (1 + math.exp(0.5)), 0.5]


def _exact(acc: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """n correctness flags, exactly round(acc * n) of them true, at random positions."""
    flags = np.zeros(n, dtype=bool)
    flags[rng.permutation(n)[: round(acc * n)]] = True
    return flags


# --- the fit and ER -----------------------------------------------------------------------------


def test_logit_fit_recovers_an_exact_line() -> None:
    fit = fit_baseline(LOGIT_REF, LOGIT_SHIFT, "logit")
    assert fit.ok and fit.reason is None and fit.n == 3 and fit.transform == "logit"
    assert fit.slope == pytest.approx(0.5, abs=1e-12)
    assert fit.intercept == pytest.approx(-0.5, abs=1e-12)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.clipped == ()


def test_er_of_a_point_above_the_logit_line() -> None:
    fit = fit_baseline(LOGIT_REF, LOGIT_SHIFT)
    # ref 0.5 -> logit 0 -> predicted logit -0.5 -> 1 / (1 + e^0.5) = 0.37754066879814546
    predicted = 1 / (1 + math.exp(0.5))
    assert effective_robustness(fit, 0.5, 0.45) == pytest.approx(100 * (0.45 - predicted), abs=1e-10)
    assert effective_robustness(fit, 0.5, 0.45) == pytest.approx(7.245933120185461, abs=1e-10)
    # On the line: zero.
    assert effective_robustness(fit, LOGIT_REF[2], LOGIT_SHIFT[2]) == pytest.approx(0.0, abs=1e-10)


def test_probit_fit_and_er() -> None:
    # Exactly on probit(shift) = 0.8 * probit(ref) - 0.3 at probit(ref) = -1, 0, 1.
    ref = [PHI(-1), PHI(0), PHI(1)]
    shift = [PHI(-1.1), PHI(-0.3), PHI(0.5)]
    fit = fit_baseline(ref, shift, "probit")
    assert (fit.slope, fit.intercept, fit.r2) == pytest.approx((0.8, -0.3, 1.0), abs=1e-9)
    assert effective_robustness(fit, 0.5, 0.5) == pytest.approx(100 * (0.5 - PHI(-0.3)), abs=1e-8)
    assert effective_robustness(fit, 0.5, 0.5) == pytest.approx(11.791142218895262, abs=1e-8)


def test_r2_of_points_off_the_line_by_hand() -> None:
    # logit x = -1, 0, 1 and y = 0, 1, 0: slope 0, intercept 1/3, SS_res = SS_tot -> R² = 0.
    y = [0.5, E / (1 + E), 0.5]
    fit = fit_baseline(LOGIT_REF, y)
    assert (fit.slope, fit.intercept, fit.r2) == pytest.approx((0.0, 1 / 3, 0.0), abs=1e-12)


def test_clipping_of_0_and_1_is_reported_and_used() -> None:
    clipped, moved = clip_accuracy([0.0, 0.3, 1.0], 10)
    assert clipped.tolist() == pytest.approx([0.05, 0.3, 0.95])
    assert moved.tolist() == [True, False, True]
    assert clip_accuracy([1.0], None)[0][0] == pytest.approx(1 - 1e-4)

    fit = fit_baseline([0.0, 0.5, 1.0], [0.0, 0.3, 0.9], n_ref=10, n_shift=10, models=["a", "b", "c"])
    assert fit.clipped == ("a", "c")
    # x = (-L, 0, L) with L = ln 19 (logit 0.95), y = (-L, ln 3/7, ln 9):
    # slope = (L² + L ln 9) / (2 L²), intercept = mean(y).
    big_l = math.log(19)
    assert fit.slope == pytest.approx((big_l + math.log(9)) / (2 * big_l), abs=1e-12)
    assert fit.intercept == pytest.approx((-big_l + math.log(3 / 7) + math.log(9)) / 3, abs=1e-12)


def test_fewer_than_three_baseline_models_gives_a_reason_not_numbers() -> None:
    fit = fit_baseline([0.5, 0.6], [0.4, 0.5])
    assert not fit.ok and fit.reason == "not enough baseline models (2)"
    assert fit.slope is None and fit.intercept is None and fit.r2 is None
    with pytest.raises(FitUnavailable, match=r"not enough baseline models \(2\)"):
        effective_robustness(fit, 0.5, 0.5)
    assert fit_baseline([], []).reason == "not enough baseline models (0)"
    same = fit_baseline([0.5, 0.5, 0.5], [0.3, 0.4, 0.5])
    assert not same.ok and "same reference accuracy" in (same.reason or "")


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown transform"):
        fit_baseline(LOGIT_REF, LOGIT_SHIFT, "tanh")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        fit_baseline([0.5, 1.5, 0.2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="must match"):
        fit_baseline([0.5, 0.6, 0.7], [0.1, 0.2])


# --- McNemar ------------------------------------------------------------------------------------


def _pairs(b: int, c: int, both: int = 5, neither: int = 3) -> tuple[np.ndarray, np.ndarray]:
    a = [True] * b + [False] * c + [True] * both + [False] * neither
    z = [False] * b + [True] * c + [True] * both + [False] * neither
    return np.array(a), np.array(z)


def test_mcnemar_exact_by_hand_and_against_binomtest() -> None:
    result = mcnemar(*_pairs(10, 2))
    assert (result.b, result.c, result.method) == (10, 2, "exact")
    # 2 * P(X <= 2), X ~ Binomial(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert result.p_value == pytest.approx(158 / 4096, abs=1e-15)
    for b, c in [(10, 2), (0, 7), (3, 3), (11, 13), (0, 0)]:
        expected = binomtest(b, b + c).pvalue if b + c else 1.0
        assert mcnemar(*_pairs(b, c)).p_value == pytest.approx(expected, abs=1e-12)


def test_mcnemar_chi_square_with_continuity_correction_by_hand() -> None:
    result = mcnemar(*_pairs(30, 10))
    assert (result.b, result.c, result.method) == (30, 10, "chi2")
    assert result.statistic == pytest.approx(19**2 / 40)
    # Chi-square with 1 degree of freedom: P(X > s) = erfc(sqrt(s / 2)).
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(9.025 / 2)), rel=1e-12)
    assert mcnemar(*_pairs(20, 20)).statistic == 0.0 and mcnemar(*_pairs(20, 20)).p_value == 1.0
    with pytest.raises(ValueError):
        mcnemar([True, False], [True])


# --- class subsets ------------------------------------------------------------------------------


def test_restricted_correct_takes_the_first_top5_class_in_the_subset() -> None:
    labels = [3, 7, 1, 3, 5, 7]
    top5 = [[3, 0, 1, 2, 4],     # 3 is first in {3, 7}: right
            [0, 2, 7, 3, -1],    # 7 first: right
            [5, 6, 8, 9, 2],     # label 1 not in the subset: dropped
            [9, 7, 3, -1, -1],   # 7 first, label 3: wrong
            [1, 2, 3, 4, 5],     # label 5 not in the subset: dropped
            [0, 1, 2, 4, 5]]     # none of the top-5 in the subset: counted wrong, unresolved
    assert subset_mask(labels, [7, 3]).tolist() == [True, True, False, True, False, True]
    assert restricted_correct(labels, top5, [7, 3]).tolist() == [True, True, False, False]
    acc = restricted_accuracy(labels, top5, [3, 7])
    assert (acc.correct, acc.trials, acc.unresolved, acc.accuracy) == (2, 4, 1, 0.5)


# --- bootstrap ----------------------------------------------------------------------------------


def _population(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Eight standard models on the logit line of LOGIT_* plus a robust and a near-leader model."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1.2, 1.2, 8)
    ref = list(1 / (1 + np.exp(-x)))
    shift = list(1 / (1 + np.exp(-(0.5 * x - 0.5))))
    ref += [0.5, 0.5]
    shift += [1 / (1 + math.exp(0.5)) + 0.30, 1 / (1 + math.exp(0.5)) + 0.29]
    names = [f"std{i}" for i in range(8)] + ["robust", "near"]
    categories = ["standard"] * 8 + ["robustness-intervention", "more-data"]
    ref_c = np.stack([_exact(a, n, rng) for a in ref])
    shift_c = np.stack([_exact(a, n, rng) for a in shift])
    return ref_c, shift_c, names, categories


def test_fit_bootstrap_contains_the_point_fit() -> None:
    rng = np.random.default_rng(3)
    x = np.linspace(-1.5, 1.5, 12)
    ref = 1 / (1 + np.exp(-x))
    shift = 1 / (1 + np.exp(-(0.7 * x - 0.4 + rng.normal(0, 0.05, x.size))))
    fit = fit_baseline(ref, shift)
    band = bootstrap_fit(ref, shift, resamples=500, seed=1)
    assert band.used == 500 and band.transform == "logit"
    assert band.slope_ci[0] < fit.slope < band.slope_ci[1]  # type: ignore[operator]
    assert band.intercept_ci[0] < fit.intercept < band.intercept_ci[1]  # type: ignore[operator]
    assert band.predicted == pytest.approx(predict_shift(fit, band.grid), abs=1e-12)
    assert (band.low <= band.predicted).all() and (band.predicted <= band.high).all()
    assert band.grid[0] == pytest.approx(ref.min()) and band.grid[-1] == pytest.approx(ref.max())
    again = bootstrap_fit(ref, shift, resamples=500, seed=1)
    assert again.slope_ci == band.slope_ci  # seeded
    with pytest.raises(FitUnavailable, match=r"\(2\)"):
        bootstrap_fit(ref[:2], shift[:2])


def test_er_bootstrap_contains_the_estimate_and_shrinks_with_more_samples() -> None:
    widths = []
    for n in (400, 6400):
        ref_c, shift_c, _, _ = _population(n)
        base = np.arange(8)
        fit = fit_baseline(ref_c[base].mean(1), shift_c[base].mean(1), n_ref=n, n_shift=n)
        er = 100 * (shift_c.mean(1) - predict_shift(fit, ref_c.mean(1), n))
        interval = bootstrap_er(ref_c, shift_c, base, resamples=300, seed=0)
        assert interval.mode == "paired" and interval.used == 300
        assert (interval.low < er).all() and (er < interval.high).all()
        widths.append(interval.high - interval.low)
    assert (widths[1] < 0.5 * widths[0]).all()


def test_er_bootstrap_is_paired_across_models() -> None:
    ref_c, shift_c, _, _ = _population(500)
    # Two copies of one model: paired resampling gives them identical accuracies in every resample.
    ref_c = np.vstack([ref_c, ref_c[8]])
    shift_c = np.vstack([shift_c, shift_c[8]])
    interval = bootstrap_er(ref_c, shift_c, np.arange(8), resamples=200, seed=5)
    assert interval.low[8] == interval.low[10] and interval.high[8] == interval.high[10]


def test_er_bootstrap_in_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    ref_c, shift_c, _, _ = _population(300)
    monkeypatch.setattr(resampling_module, "_CHUNK_ENTRIES", 300 * 7)  # chunks of 7 resamples
    interval = bootstrap_er(ref_c, shift_c, np.arange(8), resamples=50, seed=0)
    assert interval.used == 50 and interval.low.shape == (10,)
    assert (interval.low < interval.high).all()


def test_binomial_er_bootstrap_contains_the_estimate() -> None:
    ref_c, shift_c, _, _ = _population(1000)
    acc_r, acc_s = ref_c.mean(1), shift_c.mean(1)
    fit = fit_baseline(acc_r[:8], acc_s[:8], n_ref=1000, n_shift=1000)
    er = 100 * (acc_s - predict_shift(fit, acc_r, 1000))
    interval = bootstrap_er_binomial(acc_r, acc_s, 1000, 1000, np.arange(10) < 8, resamples=300, seed=0)
    assert interval.mode == "binomial"
    assert (interval.low < er).all() and (er < interval.high).all()


# --- ranking, ties, the leaderboard -------------------------------------------------------------


def test_rank_with_ties_by_hand() -> None:
    er = [5.0, 9.0, 1.0, 8.0, 9.0]
    low = [4.0, 7.0, 0.0, 7.5, 8.5]
    high = [6.0, 11.0, 2.0, 8.5, 9.5]
    rank, tied = rank_with_ties(er, low, high)
    assert rank.tolist() == [4, 1, 5, 3, 1]  # competition ranks: 1, 1, 3, 4, 5
    # leader = index 1 [7, 11]: index 3 [7.5, 8.5] and index 4 overlap it, index 0 [4, 6] does not.
    assert tied.tolist() == [False, True, False, True, True]
    rank, tied = rank_with_ties([3.0, 1.0], [2.0, -1.0], [4.0, 1.5])
    assert tied.tolist() == [False, False]
    assert rank_with_ties([2.0, 2.0, 1.0])[1].tolist() == [True, True, False]


def test_shift_leaderboard_ranks_and_marks_ties() -> None:
    ref_c, shift_c, names, categories = _population(1000)
    table = [ModelResult(model=m, category=c, ref_correct=r, shift_correct=s)
             for m, c, r, s in zip(names, categories, ref_c, shift_c, strict=True)]
    board = shift_leaderboard(table, LeaderboardSettings(resamples=300), shift="digits-printed")
    assert board.fit.ok and board.fit.n == 8 and board.er_mode == "paired" and board.band is not None
    assert board.fit.slope == pytest.approx(0.5, abs=0.05)
    top, second, *rest = board.rows
    assert (top.model, top.rank, top.tied) == ("robust", 1, True)
    assert (second.model, second.rank, second.tied) == ("near", 2, True)
    assert not any(r.tied for r in rest) and all(r.baseline for r in rest)
    assert top.er == pytest.approx(30.0, abs=0.2) and top.er_ci is not None
    assert top.er_ci[0] < top.er < top.er_ci[1]  # type: ignore[operator]
    assert top.ref_ci == clopper_pearson(500, 1000) and top.n_shift == 1000
    assert [r.rank for r in board.rows] == sorted(r.rank for r in board.rows)  # type: ignore[type-var]
    assert any(note.startswith("ER intervals: paired bootstrap, 300 of 300") for note in board.notes)
    # The same table as a DataFrame with arrays in its cells (NaN where a number is derived).
    frame = pd.DataFrame({"model": names, "category": categories, "ref_acc": math.nan,
                          "ref_correct": list(ref_c), "shift_correct": list(shift_c)})
    same = shift_leaderboard(frame, LeaderboardSettings(resamples=300))
    assert [(r.model, r.er, r.er_ci, r.tied) for r in same.rows] == \
        [(r.model, r.er, r.er_ci, r.tied) for r in board.rows]
    record = board.records()[0]
    assert record["model"] == "robust" and record["er_low"] == top.er_ci[0] and "er_ci" not in record


def test_shift_leaderboard_from_a_dataframe_with_settings() -> None:
    frame = pd.DataFrame({
        "model": ["a", "b", "c", "d", "e", "z"],
        "category": ["standard", "standard", "standard", "standard", "zero-shot", "standard"],
        # d is on the line too (logit 2 -> 0.5); z is off it but below min_ref_acc.
        "ref_acc": LOGIT_REF + [1 / (1 + math.exp(-2)), 0.5, 0.2],
        "shift_acc": LOGIT_SHIFT + [1 / (1 + math.exp(-0.5)), 0.6, 0.0],
        "n_ref": [1000] * 6,
        "n_shift": [1000] * 6,
    })
    settings = LeaderboardSettings(min_ref_acc=0.25, baseline_categories={"standard"}, resamples=200)
    board = shift_leaderboard(frame, settings)
    baseline = {r.model for r in board.rows if r.baseline}
    assert baseline == {"a", "b", "c", "d"}  # z is below min_ref_acc, e is zero-shot
    assert board.er_mode == "binomial"
    zero = next(r for r in board.rows if r.model == "z")
    assert zero.clipped and zero.shift_ci[0] == 0.0
    assert any("clipped" in note and "z" in note for note in board.notes)
    e = next(r for r in board.rows if r.model == "e")
    assert board.fit.slope == pytest.approx(0.5, abs=1e-12)
    assert e.er == pytest.approx(100 * (0.6 - 1 / (1 + math.exp(0.5))), abs=1e-9)
    assert e.er is not None
    assert e.er_ci is not None and e.er_ci[0] < e.er < e.er_ci[1]


def test_shift_leaderboard_without_enough_baseline_models() -> None:
    table = {"model": ["a", "b", "c"], "category": ["standard", "standard", "zero-shot"],
             "ref_acc": [0.5, 0.6, 0.7], "shift_acc": [0.4, 0.5, 0.65],
             "n_ref": [100] * 3, "n_shift": [100] * 3}
    board = shift_leaderboard(table)
    assert not board.fit.ok and board.notes[0] == "not enough baseline models (2)"
    assert board.band is None and board.er_mode is None
    assert [r.model for r in board.rows] == ["c", "b", "a"]  # by shift accuracy
    assert all(r.er is None and r.rank is None and not r.tied for r in board.rows)


def test_table_validation() -> None:
    good = {"model": "a", "category": "standard", "ref_acc": 0.5, "shift_acc": 0.4,
            "n_ref": 10, "n_shift": 10}
    with pytest.raises(ValueError, match="unknown columns"):
        shift_leaderboard([{**good, "colour": "red"}])
    with pytest.raises(ValueError, match="once"):
        shift_leaderboard([good, good])
    with pytest.raises(ValueError, match="ref_acc=0.5 but ref_correct"):
        shift_leaderboard([{**good, "n_ref": None, "ref_correct": np.array([True, True, False])}])
    with pytest.raises(ValueError, match="transform"):
        LeaderboardSettings(transform="tanh")  # type: ignore[arg-type]


def test_group_means_by_hand() -> None:
    def board(shift: str, shift_accs: list[float]) -> ShiftLeaderboard:
        table = {"model": ["a", "b", "c", "x"], "category": ["standard"] * 3 + ["zero-shot"],
                 "ref_acc": LOGIT_REF + [0.5], "shift_acc": shift_accs,
                 "n_ref": [100] * 4, "n_shift": [100] * 4}
        return shift_leaderboard(table, LeaderboardSettings(resamples=0), shift=shift)

    one = board("s1", LOGIT_SHIFT + [0.5])
    two = board("s2", LOGIT_SHIFT + [0.6])
    rows = group_means([one, two])
    x = rows[0]
    predicted = 1 / (1 + math.exp(0.5))
    assert (x.model, x.shifts, x.of, x.er_shifts) == ("x", 2, 2, 2)
    assert x.mean_shift_acc == pytest.approx(0.55)
    assert x.mean_er == pytest.approx(100 * (0.55 - predicted), abs=1e-9)
    assert all(r.mean_er == pytest.approx(0.0, abs=1e-9) for r in rows[1:])


# --- leaving 0 and 1 out, paired ties, group rankings, McNemar without a jump ------------------------


def test_exclude_leaves_zero_and_one_out_and_lists_them() -> None:
    ref = LOGIT_REF + [0.9, 1.0]
    shift = LOGIT_SHIFT + [0.0, 0.5]
    fit = fit_baseline(ref, shift, models=["a", "b", "c", "zero", "one"], extremes="exclude")
    assert fit.excluded == ("zero", "one") and fit.models == ("a", "b", "c") and fit.n == 3
    assert (fit.slope, fit.intercept) == pytest.approx((0.5, -0.5), abs=1e-12) and fit.clipped == ()
    # ref 1 is predicted at the rising line's limit; shift 0 is measured, not transformed
    assert predict_shift(fit, [1.0, 0.0]).tolist() == [1.0, 0.0]
    assert effective_robustness(fit, 0.9, 0.0) == pytest.approx(-100 / (1 + math.exp(-(0.5 * math.log(9) - 0.5))))
    with pytest.raises(ValueError, match="unknown handling"):
        fit_baseline(ref, shift, extremes="drop")


def test_ties_come_from_the_paired_difference_not_overlapping_intervals() -> None:
    # Two models on the same samples: B is A minus 0.5 point in every resample. Their marginal
    # intervals overlap widely, but the paired difference is exactly -0.5: not tied.
    rng = np.random.default_rng(0)
    common = rng.normal(0, 3, 400)
    draws = np.stack([10 + common, 9.5 + common, 9.8 + rng.normal(0, 3, 400)])
    er = [10.0, 9.5, 9.8]
    low, high = np.quantile(draws, [0.025, 0.975], axis=1)
    assert rank_with_ties(er, low, high)[1].tolist() == [True, True, True]  # the old rule
    tied, d_low, d_high = paired_ties(er, draws)
    assert tied.tolist() == [True, False, True]
    assert d_low[1] == pytest.approx(-0.5) and d_high[1] == pytest.approx(-0.5) and (d_low[0], d_high[0]) == (0, 0)
    assert rank_with_ties(er, draws=draws)[1].tolist() == [True, False, True]


def test_shift_leaderboard_marks_a_paired_tie_and_keeps_the_draws() -> None:
    ref_c, shift_c, names, categories = _population(1000)
    # "twin" is "robust" with 30 shift samples fewer right (3 points behind) on the same images
    twin_shift = shift_c[8].copy()
    twin_shift[np.flatnonzero(twin_shift)[:30]] = False
    table = [ModelResult(model=m, category=c, ref_correct=r, shift_correct=s)
             for m, c, r, s in zip(names, categories, ref_c, shift_c, strict=True)]
    table.append(ModelResult(model="twin", category="more-data", ref_correct=ref_c[8], shift_correct=twin_shift))
    board = shift_leaderboard(table, LeaderboardSettings(resamples=300))
    rows = {r.model: r for r in board.rows}
    assert board.rows[0].model == "robust" and board.rows[0].diff_ci == (0.0, 0.0)
    twin, top = rows["twin"], board.rows[0]
    assert twin.diff_ci is not None and twin.diff_ci[0] < -3 < twin.diff_ci[1] < 0 and not twin.tied
    # its marginal interval overlaps the leader's: the old rule would have called it tied
    assert twin.er_ci is not None and top.er_ci is not None and twin.er_ci[1] >= top.er_ci[0]
    assert rows["near"].tied and rows["near"].diff_ci[0] < 0 < rows["near"].diff_ci[1]  # type: ignore[index]
    assert board.er_draws is not None and board.er_draws["robust"].shape == (300,)
    assert "diff_low" in board.records()[0]


def test_group_ranking_counts_only_complete_models_and_gives_the_mean_an_interval() -> None:
    def board(shift: str, models: list[str], shift_accs: list[float]) -> ShiftLeaderboard:
        ref = {"a": LOGIT_REF[0], "b": LOGIT_REF[1], "c": LOGIT_REF[2], "x": 0.5, "y": 0.5}
        table = {"model": models, "category": ["standard" if m in "abc" else "zero-shot" for m in models],
                 "ref_acc": [ref[m] for m in models], "shift_acc": shift_accs,
                 "n_ref": [2000] * len(models), "n_shift": [2000] * len(models)}
        return shift_leaderboard(table, LeaderboardSettings(resamples=400), shift=shift)

    one = board("s1", ["a", "b", "c", "x", "y"], LOGIT_SHIFT + [0.5, 0.7])
    two = board("s2", ["a", "b", "c", "x"], LOGIT_SHIFT + [0.6])
    group = group_leaderboard([one, two])
    assert [g.model for g in group.rows][0] == "x" and all(g.complete for g in group.rows)
    assert [g.model for g in group.partial] == ["y"] and group.partial[0].rank is None
    assert (group.partial[0].er_shifts, group.partial[0].of) == (1, 2)
    x = group.rows[0]
    assert x.rank == 1 and x.mean_er_ci is not None and x.mean_er_ci[0] < x.mean_er < x.mean_er_ci[1]  # type: ignore[operator]
    assert all(g.diff_ci is not None and g.diff_ci[1] < 0 for g in group.rows[1:])  # far behind x
    assert any("listed apart" in n for n in group.notes)
    assert [g.model for g in group_means([one, two])][-1] == "y"
    flat = group_leaderboard([shift_leaderboard({k: v for k, v in {
        "model": ["a", "b", "c"], "category": ["standard"] * 3, "ref_acc": LOGIT_REF, "shift_acc": LOGIT_SHIFT,
        "n_ref": [100] * 3, "n_shift": [100] * 3}.items()}, LeaderboardSettings(resamples=0))])
    assert all(g.mean_er_ci is None for g in flat.rows) and any("no interval" in n for n in flat.notes)


def test_mcnemar_p_has_no_jump_where_the_method_changes() -> None:
    below, width = 25, 15

    def exact(b: int, c: int) -> float:
        return binomtest(b, b + c).pvalue

    def chi(b: int, c: int) -> float:
        return math.erfc(math.sqrt(max(abs(b - c) - 1, 0) ** 2 / (b + c) / 2))

    for b in range(0, 56):
        for n in range(below - 1, below + width + 1):
            if b > n:
                continue
            result = mcnemar(*_pairs(b, n - b), exact_below=below, blend=width)
            gap = abs(chi(b, n - b) - exact(b, n - b))
            # weight on the chi-square grows by 1/(width+1) per discordant pair: no step moves p by the whole gap
            share = min(1.0, max(0.0, (n - below + 1) / (width + 1)))
            assert abs(result.p_value - exact(b, n - b)) == pytest.approx(share * gap, abs=1e-12)
    assert mcnemar(*_pairs(10, 14)).method == "exact" and mcnemar(*_pairs(10, 15)).method == "blend"
    assert mcnemar(*_pairs(20, 20)).method == "chi2"
    # the old rule switched all at once: at 7 vs 18 it moved p by the whole gap
    assert abs(chi(7, 18) - exact(7, 18)) > 0.002
    assert abs(mcnemar(*_pairs(7, 18)).p_value - exact(7, 18)) < abs(chi(7, 18) - exact(7, 18)) / 10
    big = mcnemar(*_pairs(40000, 40500), exact_below=None)
    assert big.method == "exact" and big.p_value == pytest.approx(binomtest(40000, 80500).pvalue, rel=1e-9)
