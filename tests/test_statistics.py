"""Seed-noise statistics against hand-computed figures (t quantiles from printed t tables)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from roadmap.statistics import flipped_pairs, kendall_tau, seeds_to_resolve, verdict, welch_interval

T_975_DOF_2 = 4.302652729911275  # two-sided 95% t quantile, 2 degrees of freedom
T_975_DOF_4 = 2.7764451051977987
T_975_DOF_6 = 2.4469118487916806


def test_welch_interval_equal_sizes_two_seeds() -> None:
    # Means 2 and 1; variances 2 and 2; standard error sqrt(2/2 + 2/2) = sqrt 2; Welch dof = 4 / (1 + 1) = 2.
    change, low, high = welch_interval([1.0, 3.0], [0.0, 2.0])
    assert change == pytest.approx(1.0)
    assert low == pytest.approx(1.0 - T_975_DOF_2 * math.sqrt(2))
    assert high == pytest.approx(1.0 + T_975_DOF_2 * math.sqrt(2))
    assert verdict(low, high) == "within noise"


def test_welch_interval_three_seeds_gain_and_loss() -> None:
    # Variances 0.04 each, n = 3: se = sqrt(0.08 / 3), dof = (0.08/3)^2 / (2 (0.04/3)^2 / 2) = 4.
    change, low, high = welch_interval([10.0, 10.2, 9.8], [8.0, 8.2, 7.8])
    half = T_975_DOF_4 * math.sqrt(0.08 / 3)
    assert (change, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert verdict(low, high) == "gain"
    change, low, high = welch_interval([8.0, 8.2, 7.8], [10.0, 10.2, 9.8])
    assert verdict(low, high) == "loss" and high == pytest.approx(-2.0 + half)


def test_welch_interval_unequal_sizes_matches_scipy_welch_test() -> None:
    row, base = [71.2, 70.4, 71.9, 70.8], [70.1, 69.5]
    change, low, high = welch_interval(row, base)
    reference = stats.ttest_ind(row, base, equal_var=False).confidence_interval(0.95)
    assert (low, high) == pytest.approx((reference.low, reference.high))
    assert change == pytest.approx(sum(row) / 4 - sum(base) / 2)


def test_welch_interval_edge_cases() -> None:
    change, low, high = welch_interval([5.0], [4.0, 4.5])
    assert change == pytest.approx(0.75) and math.isnan(low) and math.isnan(high)
    assert verdict(low, high) is None
    assert all(math.isnan(value) for value in welch_interval([], [1.0, 2.0]))
    # No spread at all: the change is exact, and it is a gain.
    assert welch_interval([2.0, 2.0], [1.0, 1.0]) == (1.0, 1.0, 1.0)
    assert verdict(1.0, 1.0) == "gain"
    # NaN seeds (diverged) are left out.
    assert welch_interval([1.0, 3.0, math.nan], [0.0, 2.0])[0] == pytest.approx(1.0)


def test_seeds_to_resolve_by_hand() -> None:
    # change 1, std 0.5: n=2 half 4.303*0.5*1 = 2.15; n=3 half 2.776*0.5*0.816 = 1.13; n=4 half 2.447*0.5*0.707 = 0.87.
    assert T_975_DOF_6 * 0.5 * math.sqrt(2 / 4) < 1.0 < T_975_DOF_4 * 0.5 * math.sqrt(2 / 3)
    assert seeds_to_resolve(1.0, 0.5) == 4
    assert seeds_to_resolve(-1.0, 0.5) == 4
    assert seeds_to_resolve(8.1, 0.07) == 2
    assert seeds_to_resolve(0.0, 0.5) is None
    assert seeds_to_resolve(0.01, 5.0) is None  # beyond 100 seeds
    assert seeds_to_resolve(1.0, math.nan) is None
    assert seeds_to_resolve(1.0, 0.0) == 2


def test_kendall_tau_by_hand() -> None:
    # One discordant pair out of six: (5 - 1) / 6.
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert kendall_tau([1, 2, math.nan, 3], [1, 2, 5, 3]) == pytest.approx(1.0)  # NaN rows left out
    assert kendall_tau([1.0], [2.0]) is None


def test_flipped_pairs_adjacent_in_the_reference_ranking() -> None:
    steps = ["a", "b", "c", "d"]
    flips = flipped_pairs(steps, [1.0, 3.0, 2.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert flips == [{"lower": "b", "higher": "c", "reference_gap": 1.0, "run_gap": -1.0}]
    # The reference's ranking, not the roadmap order, defines the neighbours: b < a < c.
    flips = flipped_pairs(["a", "b", "c"], [1.0, 2.0, 3.0], [2.0, 1.0, 3.0])
    assert [(flip["lower"], flip["higher"]) for flip in flips] == [("b", "a")]
    # Ties in the reference have no order to flip; missing values are left out.
    assert flipped_pairs(["a", "b", "c"], [2.0, 1.0, math.nan], [1.0, 1.0, 3.0]) == []


def test_paper_noise_for_single_run_tables() -> None:
    """Table 11 has no std (single runs): the paper's Table 10 seed std stands in, and says so."""
    import pandas as pd

    from roadmap.agreement import agreement, paper_reference
    from roadmap.reference import paper_table

    table10_std = paper_table("resnet50").paper_top1_std.dropna().mean()
    paper = paper_table("resnet200")
    steps = list(paper.index[:3])
    table = pd.DataFrame(
        {
            "step": steps,
            "branch_of": [None] * 3,
            "compared_with": [None, steps[0], steps[1]],
            "top1_mean": [10.0, 12.0, 11.0],
            "top1_std": [math.nan] * 3,
            "change": [math.nan, 2.0, -1.0],
            "change_ci_low": [math.nan] * 3,
            "change_ci_high": [math.nan] * 3,
            "verdict": [None] * 3,
            "seeds_done": [1, 1, 1],
            "paper_top1": paper.paper_top1.iloc[:3].to_numpy(),
            "paper_top1_std": [math.nan] * 3,
            "paper_change": [math.nan, *(paper.paper_top1.iloc[1:3].to_numpy() - paper.paper_top1.iloc[:2].to_numpy())],
        }
    )
    reference = paper_reference(table, "resnet200")
    assert reference.name == "paper Table 11" and reference.fallback_std == pytest.approx(table10_std)
    result = agreement(table, reference, "r200")
    # 78.20 -> 81.14 -> 81.33: both paper changes exceed ~0.09; the run rises then falls.
    assert result["steps_compared"] == steps[1:] and result["sign_agreement"] == pytest.approx(0.5)
    assert result["kendall_tau"] == pytest.approx(1 / 3)  # pairs: (0,1) C, (0,2) C, (1,2) D
    assert result["without_verdict"] == steps[1:]
