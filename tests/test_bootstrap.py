"""The shared resampling weights and the paired bootstrap built on them (pure numpy, no servers).

Exactness: the weights of a sample list depend on (seed, key, n, resample) only, so chunking,
threads, the number of models and the number of resamples asked change nothing, and the bootstrap
from stored resampled counts equals the one from per-sample correctness bit for bit.

Statistics: the resampled accuracies have the analytic binomial spread, pairs of models the analytic
spread of their paired difference, and the ER intervals have the widths of the earlier algorithm
(kept here as it was: one generator interleaving sample counts and baseline picks), within a tolerance
that a bootstrap on half the samples (widths x 1.41) or an unpaired one would fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from shiftboard.domain import bootstrap as bootstrap_module
from shiftboard.domain import resampling as resampling_module
from shiftboard.domain.baseline import check_transform
from shiftboard.domain.bootstrap import (
    bootstrap_er,
    bootstrap_er_counts,
    resample_weights,
    resampled_correct,
    sample_list_key,
)
from shiftboard.domain.robustness import LeaderboardSettings, ModelResult, shift_leaderboard


def _population(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """10 models (8 on a logit line, 2 above it) with correlated correctness on n reference and shift samples."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1.2, 1.2, 8)
    ref = np.concatenate([1 / (1 + np.exp(-x)), [0.5, 0.5]])
    shift = np.concatenate([1 / (1 + np.exp(-(0.5 * x - 0.5))), [0.68, 0.67]])
    # Shared sample difficulty makes models correlated, as on real test sets.
    u_ref, u_shift = rng.random(n), rng.random(n)
    noise = 0.15
    ref_c = np.stack([(0.85 * u_ref + noise * rng.random(n)) < a * (0.85 + noise) for a in ref])
    shift_c = np.stack([(0.85 * u_shift + noise * rng.random(n)) < a * (0.85 + noise) for a in shift])
    return ref_c, shift_c


# --- the weights ------------------------------------------------------------------------------------


def test_weights_are_multinomial_and_depend_on_the_list_only() -> None:
    w = resample_weights("set-a", 500, 0, 40, seed=0)
    assert w.shape == (40, 500) and (w.sum(axis=1) == 500).all() and w.min() >= 0
    assert np.array_equal(resample_weights("set-a", 500, 10, 20, seed=0), w[10:20])  # rows stand alone
    assert np.array_equal(resample_weights("set-a", 500, 0, 40, seed=0), w)
    assert not np.array_equal(resample_weights("set-b", 500, 0, 40, seed=0), w)
    assert not np.array_equal(resample_weights("set-a", 500, 0, 40, seed=1), w)
    assert not np.array_equal(w[0], w[1])
    assert sample_list_key("ref") == "ref" and sample_list_key("ref", "shift") == "ref/shift"
    with pytest.raises(ValueError, match="seed"):
        resample_weights("set-a", 10, 0, 1, seed=-1)


def test_resampled_correct_is_the_product_and_ignores_chunks_threads_and_models(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ref_c, _ = _population(700)
    counts = resampled_correct(ref_c, "ref", 60, seed=3)
    weights = resample_weights("ref", 700, 0, 60, seed=3).astype(np.int64)
    assert counts.dtype == np.int32 and np.array_equal(counts, ref_c.astype(np.int64) @ weights.T)
    # The first R of more resamples, a later range, one model alone, float32 input: the same numbers.
    assert np.array_equal(resampled_correct(ref_c, "ref", 100, seed=3)[:, :60], counts)
    assert np.array_equal(resampled_correct(ref_c, "ref", 20, seed=3, start=40), counts[:, 40:])
    assert np.array_equal(resampled_correct(ref_c[4:5], "ref", 60, seed=3), counts[4:5])
    assert np.array_equal(resampled_correct(ref_c.astype(np.float32), "ref", 60, seed=3), counts)
    monkeypatch.setattr(resampling_module, "_CHUNK_ENTRIES", 700 * 7)  # chunks of 7 resamples
    monkeypatch.setattr(resampling_module, "_THREADS", 1)
    assert np.array_equal(resampled_correct(ref_c, "ref", 60, seed=3), counts)


def test_bootstrap_from_counts_equals_bootstrap_from_correctness() -> None:
    ref_c, shift_c = _population(600)
    base = np.arange(8)
    scratch = bootstrap_er(ref_c, shift_c, base, resamples=300, seed=7, keep_draws=True, ref_key="r",
                           shift_key="s")
    counts = bootstrap_er_counts(resampled_correct(ref_c, "r", 300, seed=7), 600,
                                 resampled_correct(shift_c, "s", 300, seed=7), 600, base,
                                 seed=np.random.default_rng(7), keep_draws=True)
    assert scratch.used == counts.used == 300
    assert np.array_equal(scratch.low, counts.low) and np.array_equal(scratch.high, counts.high)
    assert scratch.draws is not None and counts.draws is not None and np.array_equal(scratch.draws, counts.draws)


def test_a_board_from_stored_counts_equals_the_board_from_arrays() -> None:
    ref_c, shift_c = _population(800)
    names = [f"std{i}" for i in range(8)] + ["robust", "near"]
    categories = ["standard"] * 8 + ["robustness-intervention", "more-data"]
    cfg = LeaderboardSettings(resamples=250, seed=4)
    arrays = [ModelResult(model=m, category=c, ref_correct=r, shift_correct=s)
              for m, c, r, s in zip(names, categories, ref_c, shift_c, strict=True)]
    ref_counts = resampled_correct(ref_c, "ref/x", 400, seed=4)  # stored with more resamples than asked
    shift_counts = resampled_correct(shift_c, "x", 400, seed=4)
    stored = [ModelResult(model=m, category=c, n_ref=800, ref_successes=int(r.sum()), n_shift=800,
                          shift_successes=int(s.sum()), ref_resampled=rc, shift_resampled=sc)
              for m, c, r, s, rc, sc in zip(names, categories, ref_c, shift_c, ref_counts, shift_counts, strict=True)]
    mixed = [*stored[:5], *arrays[5:]]
    boards = [shift_leaderboard(t, cfg, shift="x", ref_key="ref/x", shift_key="x") for t in (arrays, stored, mixed)]
    assert boards[0].er_mode == "paired"
    for other in boards[1:]:
        assert other.rows == boards[0].rows and other.notes == boards[0].notes
    # Another list key gives other draws (same points).
    moved = shift_leaderboard(arrays, cfg, shift="x")
    assert [r.er for r in moved.rows] == [r.er for r in boards[0].rows]
    assert [r.er_ci for r in moved.rows] != [r.er_ci for r in boards[0].rows]
    with pytest.raises(ValueError, match="holds 400 resamples; 500 are asked"):
        shift_leaderboard(stored, LeaderboardSettings(resamples=500), shift="x")


# --- the statistics ---------------------------------------------------------------------------------


def test_resampled_accuracies_have_the_analytic_spread() -> None:
    n, resamples = 4000, 4000
    ref_c, _ = _population(n, seed=1)
    acc = resampled_correct(ref_c, "ref", resamples, seed=0) / n
    p = ref_c.mean(axis=1)
    expected = np.sqrt(p * (1 - p) / n)
    # The standard deviation of R draws is within ~1/sqrt(2R) = 1.1% of the truth; allow 5% (4.4 sigma).
    assert np.abs(acc.std(axis=1) / expected - 1).max() < 0.05
    assert np.abs(acc.mean(axis=1) - p).max() < 4 * expected.max() / np.sqrt(resamples)
    # Paired: the difference of two models has the spread given by their discordant samples only.
    a, b = ref_c[3], ref_c[4]
    only_a, only_b = (a & ~b).mean(), (b & ~a).mean()
    paired = np.sqrt((only_a + only_b - (only_a - only_b) ** 2) / n)
    independent = np.sqrt(expected[3] ** 2 + expected[4] ** 2)
    assert paired < 0.8 * independent  # the test can tell paired from unpaired
    assert abs((acc[3] - acc[4]).std() / paired - 1) < 0.05


def _old_bootstrap_er(ref_c: np.ndarray, shift_c: np.ndarray, base: np.ndarray, resamples: int,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The earlier algorithm, as it was: sample counts and baseline picks from one generator."""
    t = check_transform("logit")
    rng = np.random.default_rng(seed)
    models, n_ref = ref_c.shape
    n_shift = shift_c.shape[1]

    def counts(n: int) -> np.ndarray:
        draws = rng.integers(0, n, size=(resamples, n), dtype=np.int64)
        draws += (np.arange(resamples, dtype=np.int64) * n)[:, None]
        return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n).astype(np.float32)

    acc_ref = (ref_c.astype(np.float32) @ counts(n_ref).T).astype(np.float64) / n_ref
    acc_shift = (shift_c.astype(np.float32) @ counts(n_shift).T).astype(np.float64) / n_shift
    er = bootstrap_module._er_from_accuracies(acc_ref, acc_shift, np.full((models, 1), 0.5 / n_ref),
                                              np.full((models, 1), 0.5 / n_shift), base, t, rng)
    keep = ~np.isnan(er).any(axis=0)
    low, high = np.quantile(er[:, keep], [0.025, 0.975], axis=1)
    return low, high


def test_er_intervals_are_as_wide_as_with_the_earlier_algorithm() -> None:
    n, resamples = 1500, 2000
    ref_c, shift_c = _population(n, seed=2)
    base = np.arange(8)
    new = bootstrap_er(ref_c, shift_c, base, resamples=resamples, seed=0)
    old_low, old_high = _old_bootstrap_er(ref_c, shift_c, base, resamples, seed=0)
    assert not np.array_equal(new.low, old_low)  # other draws ...
    ratio = (new.high - new.low) / (old_high - old_low)
    # ... the same widths: each width is a 2000-resample estimate (a few % noise); 12% is far below the
    # 41% of a bootstrap on half the samples, which this comparison would flag.
    assert np.abs(ratio - 1).max() < 0.12 and abs(ratio.mean() - 1) < 0.05, ratio
    half = bootstrap_er(ref_c[:, : n // 2], shift_c[:, : n // 2], base, resamples=resamples, seed=0)
    assert np.abs((half.high - half.low) / (old_high - old_low) - 1).max() > 0.12
    centre_new, centre_old = (new.high + new.low) / 2, (old_high + old_low) / 2
    assert np.abs(centre_new - centre_old).max() < 0.1 * (old_high - old_low).min()
