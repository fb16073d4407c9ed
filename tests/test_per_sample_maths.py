"""The per-sample analyses of issue 15 (pure numpy/scipy, no servers), each against an independent
computation: agreement and the agreement line against double loops and scipy's linregress, ALine-S
and ALine-D against populations whose shift accuracies are known, ECE against a loop over bins
written here, error consistency against scikit-learn's Cohen's kappa, the plane fit against
numpy's lstsq; intervals contain their point estimates; bad input raises InvalidArgument.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit, logit
from sklearn.metrics import cohen_kappa_score

from shiftboard.domain.agreement import (
    MIN_R2,
    AgreementLine,
    agreement_matrix,
    aline_d,
    aline_s,
    estimate_shift_accuracy,
    fit_agreement_line,
)
from shiftboard.domain.analyses import calibrated, trend_intervals
from shiftboard.domain.baseline import fit_baseline
from shiftboard.domain.calibration import N_BINS, ece, ece_interval, reliability
from shiftboard.domain.consistency import error_consistency, kappa_matrix, matrix_intervals, unique_solves
from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.multiref import fit_plane, plane_effective_robustness
from shiftboard.domain.resampling import resample_weights

# --- helpers: populations ---------------------------------------------------------------------


def _population(n: int, m: int, seed: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(top-1 [m, n], labels [n]): m models of growing skill with correlated right and wrong answers."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    confuser = (labels + rng.integers(1, classes, n)) % classes  # the wrong class models tend to pick
    difficulty = rng.random(n)
    top1 = np.empty((m, n), dtype=np.int64)
    for i, skill in enumerate(np.linspace(0.45, 0.92, m)):
        right = difficulty + 0.25 * rng.standard_normal(n) < skill
        wrong = np.where(rng.random(n) < 0.6, confuser, (labels + rng.integers(1, classes, n)) % classes)
        top1[i] = np.where(right, labels, wrong)
    return top1, labels


def _noise_shift(top1: np.ndarray, share: float, seed: int, classes: int = 10) -> np.ndarray:
    """A shift that replaces a random ``share`` of the samples by ones every model guesses on at random.

    Accuracy and agreement then both map as p -> (1 - share) p + share / classes: the same map, so
    agreement is on the line exactly when accuracy is (up to the probit's curvature over the range).
    """
    rng = np.random.default_rng(seed)
    replaced = rng.random(top1.shape[1]) < share
    return np.where(replaced[None, :], rng.integers(0, classes, top1.shape), top1)


def _probit_clipped(values: np.ndarray, n: int) -> np.ndarray:
    eps = 0.5 / n
    return np.asarray(stats.norm.ppf(np.clip(values, eps, 1 - eps)))


# --- agreement ----------------------------------------------------------------------------------


def test_agreement_matrix_equals_a_double_loop() -> None:
    top1, _ = _population(500, 6, seed=1)
    expected = np.empty((6, 6))
    for i in range(6):
        for j in range(6):
            expected[i, j] = sum(int(a == b) for a, b in zip(top1[i], top1[j], strict=True)) / 500
    got = agreement_matrix(top1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert np.all(np.diag(got) == 1.0)


def test_agreement_line_equals_linregress_on_probit_axes() -> None:
    top1, _ = _population(800, 7, seed=2)
    shifted = _noise_shift(top1, 0.3, seed=3)
    ref, shift = agreement_matrix(top1), agreement_matrix(shifted)
    line = fit_agreement_line(ref, shift, n_ref=800, n_shift=800)
    x, y = [], []
    for i in range(7):
        for j in range(i + 1, 7):
            x.append(ref[i, j])
            y.append(shift[i, j])
    expected = stats.linregress(_probit_clipped(np.array(x), 800), _probit_clipped(np.array(y), 800))
    assert line.ok and line.transform == "probit" and line.n_pairs == 21
    assert line.pairs[0] == (0, 1) and line.pairs[-1] == (5, 6)
    assert line.slope == pytest.approx(expected.slope, abs=1e-10)
    assert line.intercept == pytest.approx(expected.intercept, abs=1e-10)
    assert line.r2 == pytest.approx(expected.rvalue ** 2, abs=1e-10)
    np.testing.assert_array_equal(line.ref_agreement, x)
    np.testing.assert_array_equal(line.shift_agreement, y)


def test_agreement_of_one_clips_like_the_baseline_does() -> None:
    """Two identical models agree on every sample: that agreement is clipped to 1 - 1/(2n), not infinite."""
    top1, _ = _population(400, 4, seed=4)
    top1[1] = top1[0]
    shift = _noise_shift(top1, 0.2, seed=5)
    line = fit_agreement_line(agreement_matrix(top1), agreement_matrix(shift), n_ref=400, n_shift=400)
    assert np.isfinite([line.slope, line.intercept, line.r2]).all() and line.ref_agreement.max() == 1.0
    expected = stats.linregress(_probit_clipped(line.ref_agreement, 400), _probit_clipped(line.shift_agreement, 400))
    assert line.slope == pytest.approx(expected.slope, abs=1e-10)
    assert line.intercept == pytest.approx(expected.intercept, abs=1e-10)


def _exact_lines(m: int, slope: float, bias: float, seed: int) -> tuple[np.ndarray, ...]:
    """Reference accuracies and agreements, and shift ones on the very same probit line."""
    rng = np.random.default_rng(seed)
    acc = np.sort(rng.uniform(0.4, 0.95, m))
    agr = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            agr[i, j] = agr[j, i] = rng.uniform(max(acc[i], acc[j]) * 0.9, 0.98)
    on_line = lambda p: stats.norm.cdf(slope * stats.norm.ppf(p) + bias)  # noqa: E731
    shift_agr = on_line(agr)
    np.fill_diagonal(shift_agr, 1.0)
    return acc, agr, shift_agr, on_line(acc)


def test_aline_s_and_aline_d_recover_the_shift_accuracy_when_the_lines_coincide() -> None:
    acc, ref_agr, shift_agr, true = _exact_lines(8, slope=1.3, bias=-0.6, seed=6)
    line = fit_agreement_line(ref_agr, shift_agr)
    assert line.slope == pytest.approx(1.3, abs=1e-9) and line.intercept == pytest.approx(-0.6, abs=1e-9)
    assert line.r2 == pytest.approx(1.0, abs=1e-12) and line.trustworthy()
    np.testing.assert_allclose(aline_s(line, acc), true, rtol=0, atol=1e-6)
    np.testing.assert_allclose(aline_d(line, acc, ref_agr, shift_agr), true, rtol=0, atol=1e-6)
    # and the naive guess (shift = reference) is far off, so the check above could fail
    assert np.abs(acc - true).mean() > 0.1


def test_aline_d_is_the_least_squares_solution_of_the_pair_system() -> None:
    """Noisy agreements: ALine-D equals lstsq of the per-pair system, assembled here pair by pair."""
    rng = np.random.default_rng(7)
    acc, ref_agr, shift_agr, _ = _exact_lines(6, slope=0.8, bias=-0.3, seed=8)
    noise = np.triu(rng.normal(0, 0.02, (6, 6)), 1)
    shift_agr = np.clip(shift_agr + noise + noise.T, 0.01, 0.99)
    np.fill_diagonal(shift_agr, 1.0)
    line = fit_agreement_line(ref_agr, shift_agr)
    a = line.slope
    rows, rhs = [], []
    for i in range(6):
        for j in range(i + 1, 6):
            row = np.zeros(6)
            row[i] = row[j] = 0.5
            rows.append(row)
            mean_ref = 0.5 * (stats.norm.ppf(acc[i]) + stats.norm.ppf(acc[j]))
            rhs.append(stats.norm.ppf(shift_agr[i, j]) + a * (mean_ref - stats.norm.ppf(ref_agr[i, j])))
    solution, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    got = aline_d(line, acc, ref_agr, shift_agr)
    np.testing.assert_allclose(got, stats.norm.cdf(solution), rtol=0, atol=1e-9)
    assert np.abs(got - aline_s(line, acc)).max() > 1e-4  # with noise the two estimators differ


@pytest.mark.parametrize("method", ["aline-s", "aline-d"])
def test_estimate_recovers_known_shift_accuracies_from_top1_only(method: str) -> None:
    top1, labels = _population(20_000, 12, seed=9)
    shifted = _noise_shift(top1, 0.35, seed=10)
    ref_acc = (top1 == labels).mean(axis=1)
    true = (shifted == labels).mean(axis=1)
    estimate = estimate_shift_accuracy(top1, shifted, ref_acc, method=method)
    assert estimate.method == method and estimate.warning == ""
    assert estimate.line.r2 > MIN_R2
    error = np.abs(estimate.shift_acc - true)
    assert error.mean() < 0.015 and error.max() < 0.04
    assert np.abs(ref_acc - true).mean() > 0.15  # the naive estimate is an order of magnitude worse


def test_estimate_warns_when_agreement_is_off_the_line() -> None:
    rng = np.random.default_rng(11)
    top1, labels = _population(2_000, 6, seed=12)
    scrambled = rng.integers(0, 10, top1.shape)  # predictions unrelated to the reference's
    ref_acc = (top1 == labels).mean(axis=1)
    estimate = estimate_shift_accuracy(top1, scrambled, ref_acc)
    assert estimate.line.r2 < MIN_R2 and not estimate.line.trustworthy()
    assert "R²" in estimate.warning and f"{MIN_R2}" in estimate.warning
    assert estimate.line.trustworthy(min_r2=0.0)


def test_estimate_without_a_line_is_nan_with_the_reason() -> None:
    # Three models that agree on every reference sample: every pair has the same reference agreement.
    ref = np.tile(np.arange(50) % 10, (3, 1))
    shift = np.random.default_rng(13).integers(0, 10, (3, 50))
    estimate = estimate_shift_accuracy(ref, shift, np.array([0.5, 0.5, 0.5]))
    assert not estimate.line.ok and np.isnan(estimate.line.slope)
    assert np.isnan(estimate.shift_acc).all() and "same reference agreement" in estimate.warning
    with pytest.raises(InvalidArgument, match="no fit"):
        aline_s(estimate.line, np.array([0.5, 0.5, 0.5]))


def test_agreement_bad_input() -> None:
    top1, _ = _population(100, 4, seed=14)
    acc = np.full(4, 0.5)
    with pytest.raises(InvalidArgument, match="same models"):
        estimate_shift_accuracy(top1, top1[:3], acc)
    with pytest.raises(InvalidArgument, match="at least 3"):
        estimate_shift_accuracy(top1[:2], top1[:2], acc[:2])
    with pytest.raises(InvalidArgument, match="ref_acc has 3"):
        estimate_shift_accuracy(top1, top1, acc[:3])
    with pytest.raises(InvalidArgument, match="method"):
        estimate_shift_accuracy(top1, top1, acc, method="aline-x")
    with pytest.raises(InvalidArgument, match="integer class"):
        agreement_matrix(top1 + 0.5)
    with pytest.raises(InvalidArgument, match="samples"):
        agreement_matrix(np.zeros((3, 0), dtype=int))
    with pytest.raises(InvalidArgument, match="square"):
        fit_agreement_line(np.ones((3, 4)), np.ones((3, 4)))
    with pytest.raises(InvalidArgument, match="probit"):
        fit_agreement_line(np.eye(3), np.eye(3), transform="logit")
    with pytest.raises(InvalidArgument, match="at least 3"):
        fit_agreement_line(np.eye(2), np.eye(2))
    with pytest.raises(InvalidArgument, match=r"\[0, 1\]"):
        estimate_shift_accuracy(top1, top1, np.array([0.5, 0.5, 0.5, 1.5]))
    line = fit_agreement_line(agreement_matrix(top1), agreement_matrix(_noise_shift(top1, 0.3, 15)))
    assert isinstance(line, AgreementLine)
    with pytest.raises(InvalidArgument, match="same models"):
        aline_d(line, acc, np.eye(3), np.eye(3))


# --- calibration ----------------------------------------------------------------------------------


def _ece_by_hand(conf: np.ndarray, correct: np.ndarray, bins: int) -> tuple[float, list[tuple[float, float, int]]]:
    """Sort, cut into bins whose sizes differ by at most one (larger first), loop."""
    order = sorted(range(len(conf)), key=lambda k: conf[k])
    n = len(conf)
    total, rows, start = 0.0, [], 0
    for b in range(bins):
        size = n // bins + (1 if b < n % bins else 0)
        members = order[start:start + size]
        start += size
        if not members:
            continue
        mean_conf = sum(conf[k] for k in members) / size
        accuracy = sum(bool(correct[k]) for k in members) / size
        total += size / n * abs(accuracy - mean_conf)
        rows.append((mean_conf, accuracy, size))
    return total, rows


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.3, 1.0, n)
    correct = rng.random(n) < conf - 0.15  # about 15 points overconfident
    return conf, correct


def test_ece_equals_a_loop_over_equal_mass_bins() -> None:
    for n, bins in ((1_003, N_BINS), (40, 15), (7, 15), (500, 1)):
        conf, correct = _overconfident(n, seed=n)
        expected, rows = _ece_by_hand(conf, correct, bins)
        assert ece(conf, correct, bins) == pytest.approx(expected, abs=1e-12)
        mean_conf, accuracy, counts = reliability(conf, correct, bins)
        np.testing.assert_allclose(mean_conf, [r[0] for r in rows], atol=1e-12)
        np.testing.assert_allclose(accuracy, [r[1] for r in rows], atol=1e-12)
        np.testing.assert_array_equal(counts, [r[2] for r in rows])
        assert counts.sum() == n


def test_ece_of_known_cases() -> None:
    # two bins: {0.6, 0.6} all right (gap 0.4) and {0.9, 0.9} half right (gap 0.4)
    assert ece(np.array([0.9, 0.6, 0.9, 0.6]), np.array([1, 1, 0, 1]), n_bins=2) == pytest.approx(0.4)
    # constant confidence 0.9 at 60% accuracy: 0.3 whatever the bins
    assert ece(np.full(1000, 0.9), np.arange(1000) % 10 < 6) == pytest.approx(0.3)
    # calibrated by construction: close to 0 (and far from the overconfident model's ~0.15)
    rng = np.random.default_rng(16)
    conf = rng.random(50_000)
    assert ece(conf, rng.random(50_000) < conf) < 0.01
    assert ece(*_overconfident(50_000, 17)) == pytest.approx(0.15, abs=0.01)


def test_ece_interval_is_the_bootstrap_over_the_shared_resamples() -> None:
    conf, correct = _overconfident(600, seed=18)
    low, high = ece_interval(conf, correct, resamples=100, level=0.9, seed=3, key="ref")
    draws = []
    weights = resample_weights("ref", 600, 0, 100, seed=3)
    for w in weights:
        picks = np.repeat(np.arange(600), w.astype(int))
        draws.append(_ece_by_hand(conf[picks], correct[picks], N_BINS)[0])
    assert (low, high) == pytest.approx(tuple(np.quantile(draws, [0.05, 0.95])), abs=1e-12)
    assert low < ece(conf, correct) < high
    assert ece_interval(conf, correct, resamples=100, level=0.9, seed=3, key="ref") == (low, high)
    assert ece_interval(conf, correct, resamples=100, level=0.9, seed=4, key="ref") != (low, high)


def test_trend_intervals_equal_a_loop_over_resamples() -> None:
    """ECE beyond the trend, by hand: per resample, each model's ECE on the resampled samples of both sets
    (the loop of ``_ece_by_hand``), the same baseline picks, and numpy's polyfit."""
    models, resamples = 6, 40
    sets = {key: [_overconfident(300, seed=40 + 10 * i + m) for m in range(models)]
            for i, key in enumerate(("ref", "shift"))}
    draws = {key: np.stack([np.asarray(calibrated(c, k, resamples=resamples, key=key).draws) for c, k in sets[key]])
             for key in sets}
    baseline = np.array([True, True, True, True, False, False])
    got = trend_intervals(draws["ref"], draws["shift"], baseline, level=0.9, seed=5)
    by_hand = {key: np.empty((models, resamples)) for key in sets}
    for key in sets:
        for r, w in enumerate(resample_weights(key, 300, 0, resamples)):
            picks = np.repeat(np.arange(300), w.astype(int))
            for m, (c, k) in enumerate(sets[key]):
                by_hand[key][m, r] = _ece_by_hand(c[picks], k[picks], N_BINS)[0]
    np.testing.assert_allclose(draws["ref"], by_hand["ref"], atol=1e-12)
    rng = np.random.default_rng(5)
    beyond, slopes = [], []
    for r in range(resamples):
        pick = rng.choice(np.flatnonzero(baseline), size=4, replace=True)
        slope, intercept = np.polyfit(by_hand["ref"][pick, r], by_hand["shift"][pick, r], 1)
        slopes.append(slope)
        beyond.append(by_hand["shift"][:, r] - (slope * by_hand["ref"][:, r] + intercept))
    assert got.used == resamples
    np.testing.assert_allclose(got.beyond_ci, np.quantile(np.array(beyond).T, [0.05, 0.95], axis=1).T, atol=1e-9)
    assert got.slope_ci == pytest.approx(tuple(np.quantile(slopes, [0.05, 0.95])), abs=1e-9)
    # a model without a reference ECE gets no interval; too few baseline models give none at all
    draws["ref"][5] = np.nan
    assert np.isnan(trend_intervals(draws["ref"], draws["shift"], baseline).beyond_ci[5]).all()
    none = trend_intervals(draws["ref"], draws["shift"], np.array([True, True] + [False] * 4))
    assert none.used == 0 and np.isnan(none.beyond_ci).all()


def test_calibration_bad_input() -> None:
    conf, correct = _overconfident(20, seed=19)
    with pytest.raises(InvalidArgument, match="one flag per sample"):
        ece(conf, correct[:19])
    with pytest.raises(InvalidArgument, match=r"\[0, 1\]"):
        ece(conf * 2, correct)
    with pytest.raises(InvalidArgument, match="n_bins"):
        ece(conf, correct, n_bins=0)
    with pytest.raises(InvalidArgument, match="samples"):
        reliability(np.array([]), np.array([], dtype=bool))
    with pytest.raises(InvalidArgument, match="booleans"):
        ece(conf, np.full(20, 2))
    with pytest.raises(InvalidArgument, match="level"):
        ece_interval(conf, correct, level=1.0)
    with pytest.raises(InvalidArgument, match="resamples"):
        ece_interval(conf, correct, resamples=0)


# --- error consistency ------------------------------------------------------------------------------


def test_error_consistency_equals_cohens_kappa_of_correctness() -> None:
    top1, labels = _population(3_000, 4, seed=20)
    correct = top1 == labels
    for i in range(4):
        for j in range(i + 1, 4):
            c = error_consistency(correct[i], correct[j], resamples=50)
            pa, pb = correct[i].mean(), correct[j].mean()
            assert c.samples == 3_000 and c.acc_a == pytest.approx(pa) and c.acc_b == pytest.approx(pb)
            assert c.observed == pytest.approx(np.mean(correct[i] == correct[j]))
            assert c.expected == pytest.approx(pa * pb + (1 - pa) * (1 - pb))
            assert c.kappa == pytest.approx(cohen_kappa_score(correct[i], correct[j]), abs=1e-12)
            assert c.kappa_ci[0] < c.kappa < c.kappa_ci[1] and c.note == ""
    matrix = kappa_matrix(correct)
    for i in range(4):
        for j in range(4):
            expected = 1.0 if i == j else cohen_kappa_score(correct[i], correct[j])
            assert matrix[i, j] == pytest.approx(expected, abs=1e-12)


def test_error_consistency_of_independent_and_identical_models() -> None:
    rng = np.random.default_rng(21)
    a, b = rng.random(20_000) < 0.7, rng.random(20_000) < 0.6
    independent = error_consistency(a, b, resamples=200)
    assert abs(independent.kappa) < 0.03 and independent.kappa_ci[0] < 0 < independent.kappa_ci[1]
    same = error_consistency(a, a.copy(), resamples=20)
    assert same.kappa == pytest.approx(1.0) and same.kappa_ci == pytest.approx((1.0, 1.0))
    opposite = error_consistency(a, ~a, resamples=0)
    # never both right, never both wrong: observed 0, so kappa = -c_exp / (1 - c_exp)
    assert opposite.observed == 0 and opposite.kappa < -0.7 and np.isnan(opposite.kappa_ci).all()
    assert opposite.kappa == pytest.approx(-opposite.expected / (1 - opposite.expected))


def test_kappa_is_nan_with_a_note_when_chance_explains_everything() -> None:
    always = np.ones(30, dtype=bool)
    c = error_consistency(always, always)
    assert c.expected == 1.0 and np.isnan(c.kappa) and "undefined" in c.note
    assert np.isnan(c.kappa_ci).all()
    matrix = kappa_matrix(np.stack([always, always, np.arange(30) % 2 == 0]))
    assert np.isnan(matrix[0, 1]) and np.isnan(matrix[0, 0]) and matrix[2, 2] == 1.0


def test_matrix_intervals_equal_resampling_the_samples() -> None:
    """Each resample by hand: the samples repeated as the shared weights draw them, then the pair function's
    kappa and unique_solves on the repeated samples; percentiles over the resamples."""
    rng = np.random.default_rng(31)
    truth = rng.random(500)
    correct = np.stack([truth < p + rng.normal(0, 0.1, 500) for p in (0.4, 0.5, 0.6, 0.7, 0.8)])
    baseline = np.array([True, True, True, False, False])
    shown = [0, 2, 3, 4]
    got = matrix_intervals(correct, baseline, shown, resamples=50, key="set", level=0.9)
    kappas, solves = [], []
    for w in resample_weights("set", 500, 0, 50):
        picks = np.repeat(np.arange(500), w.astype(int))
        c = correct[:, picks]
        kappas.append([[error_consistency(c[i], c[j], resamples=0).kappa for j in shown] for i in shown])
        solves.append(unique_solves(c, baseline))
    assert got.kappa_ci is not None
    np.testing.assert_allclose(got.kappa_ci, np.moveaxis(np.nanquantile(kappas, [0.05, 0.95], axis=0), 0, -1),
                               atol=1e-9)
    np.testing.assert_allclose(got.solves_ci, np.quantile(np.array(solves), [0.05, 0.95], axis=0).T, atol=1e-9)
    point = unique_solves(correct, baseline)
    assert ((got.solves_ci[:, 0] <= point) & (point <= got.solves_ci[:, 1])).all()
    assert matrix_intervals(correct, baseline, shown, resamples=5, key="set", kappa=False).kappa_ci is None


def test_unique_solves_equals_a_loop() -> None:
    top1, labels = _population(400, 5, seed=22)
    correct = top1 == labels
    baseline = np.array([True, True, False, True, False])
    expected = []
    for i in range(5):
        count = 0
        for s in range(400):
            others = [k for k in range(5) if baseline[k] and k != i]
            if correct[i, s] and not any(correct[k, s] for k in others):
                count += 1
        expected.append(count)
    np.testing.assert_array_equal(unique_solves(correct, baseline), expected)
    assert max(expected) > 0  # the population has unique solves to count


def test_consistency_bad_input() -> None:
    with pytest.raises(InvalidArgument, match="same samples"):
        error_consistency(np.ones(5, bool), np.ones(6, bool))
    with pytest.raises(InvalidArgument, match="booleans"):
        error_consistency(np.array([0, 1, 2]), np.array([0, 1, 1]))
    with pytest.raises(InvalidArgument, match="models x samples"):
        kappa_matrix(np.ones(5, bool))
    with pytest.raises(InvalidArgument, match="boolean mask"):
        unique_solves(np.ones((3, 5), bool), np.array([0, 1]))


# --- several references: the plane --------------------------------------------------------------------


def test_plane_equals_lstsq_on_logit_axes() -> None:
    rng = np.random.default_rng(23)
    refs = rng.uniform(0.3, 0.95, (12, 2))
    shift = np.clip(expit(0.2 + 0.7 * logit(refs[:, 0]) + 0.4 * logit(refs[:, 1]) + rng.normal(0, 0.1, 12)),
                    0.0, 1.0)
    fit = fit_plane(refs, shift)
    design = np.column_stack([np.ones(12), logit(refs)])
    beta, *_ = np.linalg.lstsq(design, logit(shift), rcond=None)
    residual = logit(shift) - design @ beta
    r2 = 1 - residual @ residual / np.sum((logit(shift) - logit(shift).mean()) ** 2)
    assert fit.ok and fit.n == 12 and fit.transform == "logit"
    assert fit.intercept == pytest.approx(beta[0], abs=1e-10)
    assert fit.coefficients == pytest.approx(tuple(beta[1:]), abs=1e-10)
    assert fit.r2 == pytest.approx(r2, abs=1e-10) and 0.5 < fit.r2 < 1
    np.testing.assert_allclose(fit.predict(refs), expit(design @ beta), atol=1e-12)
    np.testing.assert_allclose(plane_effective_robustness(fit, refs, shift), 100 * (shift - expit(design @ beta)),
                               atol=1e-9)


def test_plane_over_one_reference_is_the_baseline_line() -> None:
    rng = np.random.default_rng(24)
    ref = rng.uniform(0.3, 0.95, 9)
    shift = expit(0.5 * logit(ref) - 0.4 + rng.normal(0, 0.1, 9))
    for transform in ("logit", "probit"):
        plane = fit_plane(ref[:, None], shift, transform)
        line = fit_baseline(ref, shift, transform)
        assert plane.coefficients[0] == pytest.approx(line.slope, abs=1e-10)
        assert plane.intercept == pytest.approx(line.intercept, abs=1e-10)
        assert plane.r2 == pytest.approx(line.r2, abs=1e-10)


def test_plane_effective_robustness_of_models_on_and_off_the_plane() -> None:
    refs = np.array([[0.5, 0.4], [0.6, 0.7], [0.7, 0.5], [0.8, 0.8], [0.9, 0.6], [0.65, 0.9]])
    shift = expit(-0.5 + 0.6 * logit(refs[:, 0]) + 0.3 * logit(refs[:, 1]))
    fit = fit_plane(refs, shift)
    assert fit.r2 == pytest.approx(1.0) and fit.coefficients == pytest.approx((0.6, 0.3))
    np.testing.assert_allclose(plane_effective_robustness(fit, refs, shift), 0.0, atol=1e-9)
    off = np.array([[0.7, 0.5]])
    er = plane_effective_robustness(fit, off, np.array([shift[2] + 0.05]))
    assert er == pytest.approx([5.0])


def test_plane_without_enough_models_or_spread() -> None:
    refs = np.array([[0.5, 0.4], [0.6, 0.7], [0.7, 0.5]])
    few = fit_plane(refs, np.array([0.3, 0.4, 0.5]))
    assert not few.ok and "not enough baseline models (3)" in few.reason and "at least 4" in few.reason
    with pytest.raises(InvalidArgument, match="no plane fit"):
        few.predict(refs)
    collinear = np.array([[0.5, 0.5], [0.6, 0.6], [0.7, 0.7], [0.8, 0.8]])
    flat = fit_plane(collinear, np.array([0.3, 0.4, 0.5, 0.6]))
    assert not flat.ok and "collinear" in flat.reason


def test_plane_bad_input() -> None:
    refs = np.random.default_rng(25).uniform(0.3, 0.9, (6, 2))
    with pytest.raises(InvalidArgument, match="one accuracy per model"):
        fit_plane(refs, np.full(5, 0.5))
    with pytest.raises(InvalidArgument, match="models x references"):
        fit_plane(np.full(6, 0.5), np.full(6, 0.5))
    with pytest.raises(InvalidArgument, match="transform"):
        fit_plane(refs, np.full(6, 0.5), "identity")
    with pytest.raises(InvalidArgument, match=r"\[0, 1\]"):
        fit_plane(refs * 2, np.full(6, 0.5))
    fit = fit_plane(refs, np.linspace(0.2, 0.7, 6))
    with pytest.raises(InvalidArgument, match="fitted on 2"):
        fit.predict(refs[:, :1])
