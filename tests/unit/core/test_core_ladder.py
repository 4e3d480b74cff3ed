import pytest

from shoprec.core.ladder import DegradationPolicy, LadderLevel, LadderThresholds, admissible_levels, quality_loss
from shoprec.errors import ConfigError

FULL = LadderLevel("full", 20.0, 40.0, 0.80, {"pipeline": "full"})
HYBRID = LadderLevel("hybrid", 10.0, 20.0, 0.78, {"pipeline": "hybrid"})
LITE = LadderLevel("hybrid_lite", 6.0, 12.0, 0.76, {"pipeline": "hybrid", "dense_candidates": 30})
BM25 = LadderLevel("bm25", 1.0, 2.0, 0.60, {"pipeline": "bm25"})
LEVELS = [FULL, HYBRID, LITE, BM25]
TH = LadderThresholds(step_down_pressure=1.5, step_up_pressure=0.5, step_up_hold_s=2.0)


def test_quality_loss_is_relative_to_the_best_level() -> None:
    assert quality_loss(FULL, FULL) == 0
    assert quality_loss(HYBRID, FULL) == pytest.approx(0.025)
    assert quality_loss(BM25, FULL) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("budget", "cheapest"),
    [(0.0, "full"), (0.03, "hybrid"), (0.05, "hybrid_lite"), (0.2, "hybrid_lite"), (0.25, "bm25"), (1.0, "bm25")],
)
def test_under_pressure_the_cheapest_level_the_budget_allows_is_served(budget: float, cheapest: str) -> None:
    policy = DegradationPolicy(LEVELS, quality_loss_budget=budget, thresholds=TH)
    assert policy.update(0.0, now=0.0).name == "full"
    assert policy.update(3.0, now=1.0).name == cheapest


def test_a_level_that_is_no_cheaper_than_a_better_one_is_skipped() -> None:
    slow_and_worse = LadderLevel("odd", 25.0, 50.0, 0.79, {})
    names = [lv.name for lv in admissible_levels([FULL, slow_and_worse, HYBRID], 1.0)]
    assert names == ["full", "hybrid"]


def test_steps_back_up_one_level_per_hold_once_pressure_falls() -> None:
    policy = DegradationPolicy(LEVELS, quality_loss_budget=0.05, thresholds=TH)
    assert policy.update(2.0, now=0.0).name == "hybrid_lite"
    # between the thresholds: hold where we are (hysteresis), and the calm clock restarts
    assert policy.update(1.0, now=10.0).name == "hybrid_lite"
    assert policy.update(0.2, now=11.0).name == "hybrid_lite"
    assert policy.update(0.2, now=11.9).name == "hybrid_lite"
    assert policy.update(0.2, now=12.0).name == "hybrid"
    assert policy.update(0.2, now=13.9).name == "hybrid"
    assert policy.update(0.2, now=14.0).name == "full"
    assert policy.update(0.0, now=99.0).name == "full"


def test_after_a_quiet_spell_the_ladder_has_climbed_by_one_level_per_hold() -> None:
    policy = DegradationPolicy(LEVELS, quality_loss_budget=0.05, thresholds=TH)
    policy.update(2.0, now=0.0)
    assert policy.update(0.0, now=2.5).name == "hybrid"  # one hold passed: one level
    assert policy.update(0.0, now=4.0).name == "full"  # the second hold ended at 4.0


def test_a_burst_of_pressure_during_recovery_resets_the_calm_timer() -> None:
    policy = DegradationPolicy(LEVELS, quality_loss_budget=0.05, thresholds=TH)
    policy.update(2.0, now=0.0)
    policy.update(0.2, now=1.0)
    policy.update(0.9, now=2.0)  # not calm any more
    assert policy.update(0.2, now=3.5).name == "hybrid_lite"
    assert policy.update(0.2, now=3.9).name == "hybrid_lite"
    assert policy.update(0.2, now=4.0).name == "hybrid"
    assert policy.update(2.0, now=4.1).name == "hybrid_lite"


def test_zero_hold_climbs_one_level_per_calm_update() -> None:
    th = LadderThresholds(step_down_pressure=1.5, step_up_pressure=0.5, step_up_hold_s=0.0)
    policy = DegradationPolicy(LEVELS, quality_loss_budget=0.05, thresholds=th)
    policy.update(2.0, now=0.0)
    assert [policy.update(0.0, now=0.0).name for _ in range(3)] == ["hybrid", "full", "full"]


def test_a_single_level_ladder_always_serves_it() -> None:
    policy = DegradationPolicy([FULL], quality_loss_budget=1.0)
    assert policy.update(100.0, now=0.0) is FULL


def test_levels_round_trip_through_json() -> None:
    assert LadderLevel.from_json(LITE.to_json()) == LITE
    with pytest.raises(ConfigError):
        LadderLevel.from_json({"name": "x"})


@pytest.mark.parametrize("budget", [-0.1, 1.5])
def test_bad_budget_is_refused(budget: float) -> None:
    with pytest.raises(ConfigError):
        DegradationPolicy(LEVELS, quality_loss_budget=budget)


def test_thresholds_must_leave_a_gap() -> None:
    with pytest.raises(ConfigError):
        LadderThresholds(step_down_pressure=1.0, step_up_pressure=1.0)
