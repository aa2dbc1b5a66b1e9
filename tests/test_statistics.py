"""Seed-noise statistics against hand-computed figures (t quantiles from printed t tables)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from roadmap.network.paper_values import paper_table
from roadmap.report.agreement import step_records, summary_text
from roadmap.report.intervals import (
    contrast_interval,
    flipped_pairs,
    kendall_tau,
    seeds_to_resolve,
    verdict,
    welch_interval,
)

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


# One-sided quantiles t_0.8 for the power term; dof 2 has a closed form: (2p - 1) / sqrt(2p(1 - p)).
T_80_DOF_2 = 0.6 / math.sqrt(0.32)  # 1.0607
T_80_DOF_8, T_975_DOF_8 = 0.8888895177670202, 2.306004135204166
T_80_DOF_10, T_975_DOF_10 = 0.8790578285505889, 2.2281388519862744
T_80_DOF_30, T_975_DOF_30 = 0.8537672614712979, 2.0422724563012378
T_80_DOF_32, T_975_DOF_32 = 0.8529984536518881, 2.0369333434601016
Z_975, Z_80 = 1.959963984540054, 0.8416212335729143


def test_seeds_to_resolve_at_80_percent_power_by_hand() -> None:
    """n seeds per row detect |change| when |change| >= (t_.975 + t_.8) * std * sqrt(2 / n), dof 2n - 2."""
    for dof, (t_975, t_80) in {8: (T_975_DOF_8, T_80_DOF_8), 30: (T_975_DOF_30, T_80_DOF_30)}.items():
        assert stats.t.ppf(0.975, dof) == pytest.approx(t_975) and stats.t.ppf(0.8, dof) == pytest.approx(t_80)
    assert stats.t.ppf(0.8, 2) == pytest.approx(T_80_DOF_2)
    # std 1, change 1: the normal approximation 2 (z_.975 + z_.8)^2 = 15.70 seeds rounds up to 16; with t
    # quantiles n = 16 (dof 30) still misses, (2.0423 + 0.8538) sqrt(2/16) = 1.024 > 1, and n = 17 (dof 32)
    # detects it, (2.0369 + 0.8530) sqrt(2/17) = 0.991 <= 1: 17 seeds per row.
    assert 2 * (Z_975 + Z_80) ** 2 == pytest.approx(15.698, abs=1e-3)
    assert (T_975_DOF_30 + T_80_DOF_30) * math.sqrt(2 / 16) > 1.0 >= (T_975_DOF_32 + T_80_DOF_32) * math.sqrt(2 / 17)
    assert seeds_to_resolve(1.0, 1.0) == 17
    # change 1, std 0.5: n = 5 (dof 8) gives 3.195 * 0.5 * 0.632 = 1.010 > 1; n = 6 (dof 10) 3.107 * 0.5 * 0.577
    # = 0.897: 6 at 80% power, where 50% power (the change equal to the half-width) asked for 4.
    assert (
        (T_975_DOF_8 + T_80_DOF_8) * 0.5 * math.sqrt(2 / 5)
        > 1.0
        > (T_975_DOF_10 + T_80_DOF_10) * 0.5 * math.sqrt(2 / 6)
    )
    assert seeds_to_resolve(1.0, 0.5) == seeds_to_resolve(-1.0, 0.5) == 6
    assert seeds_to_resolve(1.0, 0.5, power=0.5) == 4
    assert T_975_DOF_6 * 0.5 * math.sqrt(2 / 4) < 1.0 < T_975_DOF_4 * 0.5 * math.sqrt(2 / 3)  # the 50% figure
    # Two seeds suffice when (4.3027 + 1.0607) * 0.07 = 0.375 <= 8.1.
    assert seeds_to_resolve(8.1, 0.07) == 2 and (T_975_DOF_2 + T_80_DOF_2) * 0.07 < 8.1


def test_seeds_to_resolve_edge_cases() -> None:
    assert seeds_to_resolve(0.0, 0.5) is None
    assert seeds_to_resolve(0.01, 5.0) is None  # beyond 100 seeds
    assert seeds_to_resolve(1.0, math.nan) is None and seeds_to_resolve(math.inf, 1.0) is None
    assert seeds_to_resolve(1.0, -1.0) is None
    assert seeds_to_resolve(1.0, 0.0) == 2
    # 100 seeds per row (dof 198) detect (1.9720 + 0.8434) * sqrt(2/100) = 0.398 std, not 0.39.
    assert seeds_to_resolve(0.399, 1.0) == 100 and seeds_to_resolve(0.39, 1.0) is None


def test_contrast_interval_of_four_rows_by_hand() -> None:
    """The co-design interaction (+1, -1, -1, +1) over four rows of 3 seeds with std 0.2: se = sqrt(4 *
    0.04 / 3), Welch dof = (4v)^2 / (4 v^2 / 2) = 8, half-width 2.3060 * 0.2309 = 0.5325."""
    terms = [(1.0, 10.0, 0.2, 3), (-1.0, 9.0, 0.2, 3), (-1.0, 8.0, 0.2, 3), (1.0, 8.5, 0.2, 3)]
    half = T_975_DOF_8 * math.sqrt(0.16 / 3)
    assert contrast_interval(terms) == pytest.approx((1.5, 1.5 - half, 1.5 + half))
    assert half == pytest.approx(0.5325, abs=1e-4)
    # A row with one seed: the estimate, but no interval.
    estimate, low, high = contrast_interval([(1.0, 10.0, math.nan, 1), (-1.0, 9.0, 0.2, 3)])
    assert estimate == pytest.approx(1.0) and math.isnan(low) and math.isnan(high)


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


def _one_seed_table(steps: list[str], top1: list[float], paper_top1: list[float]) -> "pd.DataFrame":
    """A run table of main-path rows with one done seed each, beside the paper's top-1."""
    change = [math.nan, *(b - a for a, b in zip(top1, top1[1:]))]
    paper_change = [math.nan, *(b - a for a, b in zip(paper_top1, paper_top1[1:]))]
    count = len(steps)
    return pd.DataFrame(
        {
            "step": steps,
            "branch_of": [None] * count,
            "compared_with": [None, *steps[:-1]],
            "top1_mean": top1,
            "top1_std": [math.nan] * count,
            "change": change,
            "change_ci_low": [math.nan] * count,
            "change_ci_high": [math.nan] * count,
            "verdict": [None] * count,
            "seeds_done": [1] * count,
            "paper_top1": paper_top1,
            "paper_top1_std": [math.nan] * count,
            "paper_change": paper_change,
        }
    )


def test_single_run_table_gives_no_std_and_every_nonzero_change_counts() -> None:
    """Table 11 has no std (single runs): nothing is borrowed from Table 10, every nonzero change
    counts, and the rule says so."""
    from roadmap.report.agreement import agreement, paper_reference

    paper = paper_table("resnet200")
    steps = list(paper.index[:3])
    table = _one_seed_table(steps, [10.0, 12.0, 11.0], list(paper.paper_top1.iloc[:3]))
    reference = paper_reference(table, "resnet200")
    assert reference.name == "paper Table 11" and reference.fallback_std is None
    assert reference.noise_rule == (
        "paper Table 11 gives no seed std (the paper reports none): every nonzero change counts"
    )
    result = agreement(table, reference, "r200")
    # 78.20 -> 81.14 -> 81.33: both paper changes are nonzero; the run rises then falls.
    assert result["steps_compared"] == steps[1:] and result["sign_agreement"] == pytest.approx(0.5)
    assert [record["reference_std"] for record in result["steps"]] == [None, None]
    assert result["kendall_tau"] == pytest.approx(1 / 3)  # pairs: (0,1) C, (0,2) C, (1,2) D
    assert result["without_verdict"] == steps[1:]
    assert "every nonzero change counts" in summary_text(result)


def test_codesign_reference_has_no_std_and_a_zero_change_is_not_counted() -> None:
    from roadmap.report.agreement import agreement, paper_reference

    steps = ["v1_supervised", "v1_fcmae", "v2_supervised", "v2_fcmae"]
    # Paper changes -0.1, +0.6, +0.3 (83.8, 83.7, 84.3, 84.6); the hand-made run's are -1, +2, 0.
    table = _one_seed_table(steps, [50.0, 49.0, 51.0, 51.0], list(paper_table("convnext_v2_codesign").paper_top1))
    result = agreement(table, paper_reference(table, "convnext_v2_codesign"), "codesign")
    assert "gives no seed std" in result["noise_rule"] and "Table 10" not in result["noise_rule"]
    # Under Table 10's mean std (0.09) the -0.1 would have counted only by luck; now every nonzero one does.
    assert result["steps_compared"] == steps[1:]
    # The run's v2_fcmae change is 0: sign 0 is neither the paper's + nor -.
    assert result["steps_agreeing"] == ["v1_fcmae", "v2_supervised"] and result["steps_disagreeing"] == ["v2_fcmae"]


def test_reference_noise_is_its_own_table_std() -> None:
    """A reference with stds: each row's own; a changed row without one gets the mean std of the same
    table (1.0 and 0.5: 0.75), said in the rule; the paper's Table 10 rows all have their own."""
    from roadmap.report.agreement import noise_rule, paper_reference, run_reference

    steps = ["a", "b", "c", "d"]
    reference_table = _one_seed_table(steps, [10.0, 11.0, 11.5, 12.0], [math.nan] * 4)
    reference_table["top1_std"] = [1.0, 0.5, math.nan, math.nan]
    reference = run_reference(reference_table, "full")
    assert reference.fallback_std == pytest.approx(0.75)
    assert reference.noise_rule == (
        "|change in run full| > its seed std for the row (rows without one: the mean std of run full, 0.75 points)"
    )
    run = _one_seed_table(steps, [1.0, 2.0, 3.0, 4.0], [math.nan] * 4)
    compared = [record["step"] for record in step_records(run, reference) if record["compared"]]
    assert compared == ["b"]  # b: 1.0 > 0.5; c: 0.5 < 0.75 (fallback); d: 0.5 < 0.75
    one_seed = run_reference(_one_seed_table(steps, [1.0, 2.0, 2.0, 3.0], [math.nan] * 4), "single")
    assert one_seed.fallback_std is None and "run single gives no seed std (fewer than 2" in one_seed.noise_rule
    two_rows = _one_seed_table(["resnet50", "recipe"], [1.0, 2.0], [76.13, 78.82]).assign(paper_top1_std=[None, 0.07])
    table10 = paper_reference(two_rows.astype({"paper_top1_std": float}), "resnet50")
    assert table10.noise_rule == "|change in paper Table 10| > its seed std for the row"
    fallback, _ = noise_rule(table10.values, paper_table("resnet50").paper_top1_std, "x", "none")
    assert fallback == pytest.approx(paper_table("resnet50").paper_top1_std.mean())
