"""Statistics for accuracies: exact binomial (Clopper-Pearson) intervals.

Pure maths (numpy/scipy): no gRPC, no Streamlit.
"""

from __future__ import annotations

from scipy.special import betaincinv


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval for a binomial proportion.

    ``(0, 1)`` when there are no trials. The bounds are the alpha/2 and 1 - alpha/2 quantiles of
    Beta(k, n - k + 1) and Beta(k + 1, n - k), with 0 and 1 at the edges (``betaincinv`` is the
    same quantile as ``scipy.stats.beta.ppf`` without its per-call argument checks, ~70x faster).
    """
    if trials <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= trials:
        raise ValueError(f"successes={successes} must lie in [0, trials={trials}]")
    alpha = 1.0 - confidence
    low = 0.0 if successes == 0 else float(betaincinv(successes, trials - successes + 1, alpha / 2))
    high = 1.0 if successes == trials else float(betaincinv(successes + 1, trials - successes, 1 - alpha / 2))
    return low, high
