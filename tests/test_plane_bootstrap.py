"""The interval of the plane ER (:func:`shiftboard.domain.multiref.bootstrap_plane_er`).

With one reference the plane is the single baseline fit, so its bootstrap must give the intervals of the
single fit's accuracy-only bootstrap (:func:`shiftboard.domain.bootstrap.bootstrap_er_binomial`, checked
in tests/test_bootstrap.py), to Monte Carlo error: the two draw from different random streams with
different code. With two references the intervals must hold the point plane ER and narrow with the samples.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from shiftboard.domain.bootstrap import bootstrap_er_binomial
from shiftboard.domain.errors import InvalidArgument
from shiftboard.domain.multiref import bootstrap_plane_er, fit_plane, plane_effective_robustness


def synthetic(models: int = 14, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two references' accuracies, a shift on a plane over them (with scatter), the baseline flags."""
    rng = np.random.default_rng(seed)
    r1 = rng.uniform(0.55, 0.95, models)
    r2 = expit(logit(r1) + rng.normal(0, 0.4, models))
    shift = expit(0.5 * logit(r1) + 0.6 * logit(r2) - 0.9 + rng.normal(0, 0.08, models))
    baseline = np.ones(models, dtype=bool)
    baseline[-3:] = False  # three models outside the fit, given an interval all the same
    return np.column_stack([r1, r2]), shift, baseline


def test_one_reference_gives_the_single_fits_accuracy_only_intervals():
    accs, shift, baseline = synthetic()
    n = 2000
    plane, used = bootstrap_plane_er(accs[:, :1], shift, n, n, baseline, "logit", resamples=4000, seed=1)
    single = bootstrap_er_binomial(accs[:, 0], shift, n, n, baseline, "logit", resamples=4000, seed=2)
    assert used == 4000
    width = single.high - single.low
    np.testing.assert_allclose(plane[:, 0], single.low, atol=0.1 * width.max())
    np.testing.assert_allclose(plane[:, 1], single.high, atol=0.1 * width.max())


def test_two_references_hold_the_point_and_narrow_with_samples():
    accs, shift, baseline = synthetic()
    fit = fit_plane(accs[baseline], shift[baseline], "logit", n_ref=1000, n_shift=1000)
    er = plane_effective_robustness(fit, accs, shift)
    widths = []
    for n in (250, 4000):
        ci, used = bootstrap_plane_er(accs, shift, np.full(accs.shape, n), n, baseline, "logit", resamples=1000)
        assert used == 1000
        if n == 4000:
            assert ((ci[:, 0] <= er) & (er <= ci[:, 1])).all(), (ci, er)
        widths.append(float((ci[:, 1] - ci[:, 0]).mean()))
    assert widths[1] < 0.6 * widths[0], widths


def test_too_few_baseline_models_give_no_interval_and_bad_input_is_named():
    accs, shift, _ = synthetic(models=5)
    ci, used = bootstrap_plane_er(accs, shift, 500, 500, [True, True, True, False, False], resamples=50)
    assert used == 0 and np.isnan(ci).all()  # 3 baseline models for 3 coefficients
    with pytest.raises(InvalidArgument, match="sample counts"):
        bootstrap_plane_er(accs, shift, 0, 500, np.ones(5, bool), resamples=10)
    with pytest.raises(InvalidArgument, match="resamples"):
        bootstrap_plane_er(accs, shift, 500, 500, np.ones(5, bool), resamples=0)
