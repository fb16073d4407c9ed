"""The bootstrap of accuracies estimated without labels (:mod:`shiftboard.domain.agreement_bootstrap`).

The independent computation resamples the *samples* themselves (each sample repeated as often as the
shared weights draw it), runs the point estimator (:func:`estimate_shift_accuracy`) and the baseline fit
(``numpy.polyfit`` in logit space) on the resampled arrays, and takes percentiles: it shares no code with
the weighted matrix products of the module but the weights and the estimator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.special import expit, logit

from shiftboard.domain.agreement import estimate_shift_accuracy
from shiftboard.domain.agreement_bootstrap import bootstrap_estimates
from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.ranking import paired_ties
from shiftboard.domain.resampling import resample_weights

CLASSES = 10


def models(n_ref: int, n_shift: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """top-1 of 7 models on a reference and a shift (each right with its accuracy, else a random class),
    and the reference's correctness. The shift costs every model accuracy, more for the weaker ones."""
    rng = np.random.default_rng(seed)
    acc_ref = np.array([0.55, 0.62, 0.7, 0.76, 0.82, 0.88, 0.93])
    acc_shift = expit(0.9 * logit(acc_ref) - 0.8)
    labels_ref, labels_shift = rng.integers(0, CLASSES, n_ref), rng.integers(0, CLASSES, n_shift)

    def predict(labels: np.ndarray, acc: np.ndarray) -> np.ndarray:
        right = rng.random((acc.size, labels.size)) < acc[:, None]
        return np.where(right, labels[None, :], rng.integers(0, CLASSES, (acc.size, labels.size)))

    top1_ref, top1_shift = predict(labels_ref, acc_ref), predict(labels_shift, acc_shift)
    return top1_ref, top1_shift, top1_ref == labels_ref


def by_repeating_samples(top1_ref, top1_shift, correct, baseline, resamples, method):
    """Estimates and ER per resample from resampled sample lists (see the module docstring)."""
    n_ref, n_shift = top1_ref.shape[1], top1_shift.shape[1]
    est, er = [], []
    for r in range(resamples):
        idx_ref = np.repeat(np.arange(n_ref), resample_weights("ref", n_ref, r, r + 1)[0].astype(int))
        idx_shift = np.repeat(np.arange(n_shift), resample_weights("shift", n_shift, r, r + 1)[0].astype(int))
        ref_acc = correct[:, idx_ref].mean(axis=1)
        e = estimate_shift_accuracy(top1_ref[:, idx_ref], top1_shift[:, idx_shift], ref_acc, method).shift_acc
        x = logit(np.clip(ref_acc, 0.5 / n_ref, 1 - 0.5 / n_ref))
        slope, intercept = np.polyfit(x[baseline], logit(e[baseline]), 1)
        est.append(e)
        er.append(100 * (e - expit(slope * x + intercept)))
    return np.array(est).T, np.array(er).T


@pytest.mark.parametrize("method", ["aline-d", "aline-s"])
def test_intervals_equal_resampling_the_samples_themselves(method):
    top1_ref, top1_shift, correct = models(400, 300)
    baseline = np.array([True, True, True, True, True, False, False])
    ref_acc = correct.mean(axis=1)
    point = estimate_shift_accuracy(top1_ref, top1_shift, ref_acc, method).shift_acc
    slope, intercept = np.polyfit(logit(ref_acc[baseline]), logit(point[baseline]), 1)
    er = 100 * (point - expit(slope * logit(ref_acc) + intercept))
    resamples = 60
    got = bootstrap_estimates(top1_ref, top1_shift, correct, baseline, method=method, transform="logit", er=er,
                              resamples=resamples, ref_key="ref", shift_key="shift")
    est, ers = by_repeating_samples(top1_ref, top1_shift, correct, baseline, resamples, method)
    assert got.resamples == resamples
    np.testing.assert_allclose(got.shift_acc_ci, np.quantile(est, [0.025, 0.975], axis=1).T, atol=1e-9)
    np.testing.assert_allclose(got.er_ci, np.quantile(ers, [0.025, 0.975], axis=1).T, atol=1e-7)
    tied, low, high = paired_ties(er, ers)
    np.testing.assert_array_equal(got.tied, tied)
    np.testing.assert_allclose(got.diff_ci, np.stack([low, high], axis=1), atol=1e-7)
    # the intervals say something: each holds its point estimate and is narrower than the spread of models
    assert ((got.shift_acc_ci[:, 0] <= point) & (point <= got.shift_acc_ci[:, 1])).all()
    assert (np.diff(got.shift_acc_ci, axis=1) < 0.2).all()


def test_more_samples_give_narrower_intervals():
    widths = []
    for n in (200, 3200):
        top1_ref, top1_shift, correct = models(n, n, seed=3)
        baseline = np.ones(7, dtype=bool)
        got = bootstrap_estimates(top1_ref, top1_shift, correct, baseline, method="aline-d", transform="probit",
                                  er=np.zeros(7), resamples=100, ref_key="r", shift_key="s")
        widths.append(float(np.diff(got.shift_acc_ci, axis=1).mean()))
    # the width of a bootstrap interval falls as 1 / sqrt(n): 16 times the samples, about a quarter
    assert widths[1] < 0.4 * widths[0], widths


def test_bad_input_is_named():
    top1_ref, top1_shift, correct = models(50, 50)
    base = np.ones(7, dtype=bool)
    kwargs: dict[str, Any] = dict(method="aline-d", transform="logit", er=np.zeros(7), resamples=10, ref_key="r",
                                  shift_key="s")
    with pytest.raises(InvalidArgument, match="same 7 models"):
        bootstrap_estimates(top1_ref, top1_shift[:6], correct, base, **kwargs)
    with pytest.raises(InvalidArgument, match="at least 3 models"):
        bootstrap_estimates(top1_ref[:2], top1_shift[:2], correct[:2], base[:2], **kwargs)
    with pytest.raises(InvalidArgument, match="resamples must be an int >= 1"):
        bootstrap_estimates(top1_ref, top1_shift, correct, base, **(kwargs | {"resamples": 0}))
    with pytest.raises(InvalidArgument, match="unknown method"):
        bootstrap_estimates(top1_ref, top1_shift, correct, base, **(kwargs | {"method": "aline-x"}))


def test_a_large_board_bounds_its_resamples():
    from shiftboard.services.gateway.estimated_board import (
        ESTIMATE_BOOTSTRAP_BUDGET,
        MIN_ESTIMATE_RESAMPLES,
        bounded_resamples,
    )

    assert bounded_resamples(1000, 34, 1440, 1440) == 1000  # the demo: 561 pairs, well within
    reduced = bounded_resamples(1000, 200, 50_000, 50_000)  # 19,900 pairs on ImageNet-sized sets
    assert reduced == MIN_ESTIMATE_RESAMPLES
    middle = bounded_resamples(1000, 100, 10_000, 10_000)
    assert MIN_ESTIMATE_RESAMPLES < middle < 1000 and middle * 4950 * 20_000 <= ESTIMATE_BOOTSTRAP_BUDGET
