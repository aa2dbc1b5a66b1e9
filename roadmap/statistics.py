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
GAIN, LOSS, WITHIN_NOISE = "gain", "loss", "within noise"
# Seeds per row beyond which "how many seeds would resolve it" is reported as "more than this".
MAX_SEEDS = 100


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    return array[np.isfinite(array)]


def welch_interval(row: Sequence[float], base: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(change, low, high): mean(row) - mean(base) and its Welch confidence interval.

    Welch rather than a pooled-variance t interval because two rows of a roadmap are different
    networks, whose seed spreads need not be equal. Needs two or more values on each side;
    otherwise the bounds are NaN (one seed says nothing about the spread).
    """
    row, base = _finite(row), _finite(base)
    if row.size == 0 or base.size == 0:
        return math.nan, math.nan, math.nan
    change = float(row.mean() - base.mean())
    if row.size < 2 or base.size < 2:
        return change, math.nan, math.nan
    row_term, base_term = row.var(ddof=1) / row.size, base.var(ddof=1) / base.size
    standard_error = math.sqrt(row_term + base_term)
    if standard_error == 0.0:
        # Identical seeds on both sides (e.g. a deterministic proxy): no spread, the change is exact.
        return change, change, change
    # Welch-Satterthwaite degrees of freedom.
    dof = (row_term + base_term) ** 2 / (row_term**2 / (row.size - 1) + base_term**2 / (base.size - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * standard_error
    return change, change - half, change + half


def verdict(low: float, high: float) -> str | None:
    """`gain` when the whole interval is above zero, `loss` when below, else `within noise`; None without one."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    if low > 0:
        return GAIN
    if high < 0:
        return LOSS
    return WITHIN_NOISE


def seeds_to_resolve(change: float, std: float, level: float = LEVEL) -> int | None:
    """Fewest seeds per row (both rows alike) whose Welch interval would exclude zero.

    Assumes both rows have spread `std`: with n seeds each, the interval's half-width is
    t(level, 2n - 2) * std * sqrt(2 / n). Returns None when the change is zero or not finite, or
    when more than MAX_SEEDS would be needed; 1 is never the answer (one seed has no interval).
    """
    if not (math.isfinite(change) and math.isfinite(std)) or change == 0 or std < 0:
        return None
    if std == 0:
        return 2
    for seeds in range(2, MAX_SEEDS + 1):
        half = float(stats.t.ppf(0.5 + level / 2, 2 * seeds - 2)) * std * math.sqrt(2 / seeds)
        if abs(change) > half:
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
