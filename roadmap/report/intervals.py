"""Seed noise of a roadmap row: Welch intervals of a change, verdicts, and rank agreement.

Every function takes plain numbers or sequences, so tests can check them against hand-computed
figures. The t quantiles and Kendall's tau come from scipy (a dependency of the package).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95
# Power of "seeds that would resolve a change": the chance that a rerun with that many seeds
# detects a true change of the observed size (0.8, the usual planning figure; 0.5 would only make
# the change equal the interval's half-width).
POWER = 0.80
GAIN, LOSS, WITHIN_NOISE = "gain", "loss", "within noise"
# Seeds per row beyond which "how many seeds would resolve it" is reported as "more than this".
MAX_SEEDS = 100


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    return array[np.isfinite(array)]


def contrast_interval(
    terms: Sequence[tuple[float, float, float, int]], level: float = LEVEL
) -> tuple[float, float, float]:
    """(estimate, low, high) of sum(coefficient * mean) over rows given as (coefficient, mean, std, n).

    The Welch interval from summary figures: standard error sqrt(sum(c^2 s^2 / n)) and the
    Welch-Satterthwaite degrees of freedom. One change is the contrast (+1 row, -1 base); the
    co-design interaction is (+1, -1, -1, +1) over four rows. Bounds are NaN unless every row has
    two or more values and a finite std (one seed says nothing about the spread).
    """
    estimate = math.fsum(coefficient * mean for coefficient, mean, _, _ in terms)
    if not math.isfinite(estimate):
        return math.nan, math.nan, math.nan
    if any(n < 2 or not math.isfinite(std) for _, _, std, n in terms):
        return estimate, math.nan, math.nan
    variances = [coefficient**2 * std**2 / n for coefficient, _, std, n in terms]
    standard_error = math.sqrt(math.fsum(variances))
    if standard_error == 0.0:
        # Identical seeds on every row (e.g. a deterministic proxy): no spread, the estimate is exact.
        return estimate, estimate, estimate
    dof = math.fsum(variances) ** 2 / math.fsum(v**2 / (n - 1) for v, (_, _, _, n) in zip(variances, terms))
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * standard_error
    return estimate, estimate - half, estimate + half


def welch_interval(row: Sequence[float], base: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(change, low, high): mean(row) - mean(base) and its Welch confidence interval.

    Welch rather than a pooled-variance t interval because two rows of a roadmap are different
    networks, whose seed spreads need not be equal. Needs two or more values on each side;
    otherwise the bounds are NaN (one seed says nothing about the spread).
    """
    row, base = _finite(row), _finite(base)
    if row.size == 0 or base.size == 0:
        return math.nan, math.nan, math.nan
    terms = [
        (sign, float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else math.nan, int(values.size))
        for sign, values in ((1.0, row), (-1.0, base))
    ]
    return contrast_interval(terms, level)


def verdict(low: float, high: float) -> str | None:
    """`gain` when the whole interval is above zero, `loss` when below, else `within noise`; None without one."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    if low > 0:
        return GAIN
    if high < 0:
        return LOSS
    return WITHIN_NOISE


def _detectable(seeds: int, std: float, level: float, power: float) -> float:
    """The smallest |change| that n seeds per row detect: (t_(1+level)/2 + t_power) * std * sqrt(2 / n).

    Both rows with spread `std` and n seeds give a Welch test with 2n - 2 degrees of freedom. The
    first quantile is the test's two-sided threshold; the second moves the true change far enough
    past it that the estimate lands beyond the threshold in `power` of repeats (power 0.5 adds 0:
    the change then only equals the interval's half-width, and half of all reruns miss it).
    """
    dof = 2 * seeds - 2
    quantiles = float(stats.t.ppf(0.5 + level / 2, dof)) + float(stats.t.ppf(power, dof))
    return quantiles * std * math.sqrt(2 / seeds)


def seeds_to_resolve(change: float, std: float, level: float = LEVEL, power: float = POWER) -> int | None:
    """Fewest seeds per row (both rows alike, n >= 2) at which a two-sided Welch test at `level`
    detects |change| with probability `power`: |change| >= (t_(1+level)/2 + t_power) * std * sqrt(2/n)
    with 2n - 2 degrees of freedom.

    None when the change is zero or not finite, the std is not finite or negative, or more than
    MAX_SEEDS would be needed; 1 is never the answer (one seed has no interval).
    """
    if not (math.isfinite(change) and math.isfinite(std)) or change == 0 or std < 0:
        return None
    if std == 0:
        return 2
    for seeds in range(2, MAX_SEEDS + 1):
        if abs(change) >= _detectable(seeds, std, level, power):
            return seeds
    return None


def kendall_tau(first: Sequence[float], second: Sequence[float]) -> float | None:
    """Kendall's tau-b between two orderings of the same rows (ties counted as tau-b does); None below 2 rows."""
    pairs = [(a, b) for a, b in zip(first, second) if math.isfinite(a) and math.isfinite(b)]
    if len(pairs) < 2:
        return None
    tau = stats.kendalltau([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return None if tau is None or not math.isfinite(tau) else float(tau)


def flipped_pairs(steps: Sequence[str], run: Sequence[float], reference: Sequence[float]) -> list[dict]:
    """Pairs adjacent in the reference's ranking whose order the run reverses.

    Rows are sorted by the reference's top-1 (lowest first); each pair of neighbours in that order
    (`lower`, `higher`) is flipped when the run gives `lower` the strictly higher top-1. Neighbours
    in the ranking are the closest calls, where a cheap proxy is most likely to disagree; pairs
    tied in the reference have no order to flip. Rows without both values are left out.
    """
    rows = [(step, a, b) for step, a, b in zip(steps, run, reference) if math.isfinite(a) and math.isfinite(b)]
    # Stable sort: rows tied in the reference keep roadmap order, so the result is deterministic.
    ranked = sorted(rows, key=lambda item: item[2])
    flips = []
    for (lower, run_low, ref_low), (higher, run_high, ref_high) in zip(ranked, ranked[1:]):
        if ref_high > ref_low and run_low > run_high:
            flips.append(
                {"lower": lower, "higher": higher, "reference_gap": ref_high - ref_low, "run_gap": run_high - run_low}
            )
    return flips
