import os

import pytest

from shoprec.errors import ConfigError
from shoprec.settings import Settings


def test_serving_limits_load_from_the_environment() -> None:
    s = Settings.load(
        environ={
            "SHOPREC_RATE_LIMIT_ANONYMOUS_PER_S": "5",
            "SHOPREC_DEADLINE_MS": "250",
            "SHOPREC_MAX_QUEUED": "0",
            "SHOPREC_QUALITY_LOSS_BUDGET": "0.1",
            "SHOPREC_REDIS_URL": "redis://127.0.0.1:6390/0",
        }
    )
    assert s.rate_limit_anonymous_per_s == 5.0 and s.deadline_ms == 250 and s.max_queued == 0
    assert s.quality_loss_budget == 0.1 and s.redis_url == "redis://127.0.0.1:6390/0"
    assert Settings().rate_limit_anonymous_per_s is None  # no limit unless configured


def test_full_quality_under_load_is_one_flag_away() -> None:
    assert Settings().degrade_under_load is True  # the ladder steps down under pressure by default
    s = Settings.load(environ={"SHOPREC_DEGRADE_UNDER_LOAD": "false", "SHOPREC_SHED_LOOP_LAG_MS": "0"})
    assert s.degrade_under_load is False and s.shed_loop_lag_ms == 0.0
    with pytest.raises(ConfigError, match="setting degrade_under_load must be"):
        Settings.load(environ={"SHOPREC_DEGRADE_UNDER_LOAD": "sometimes"})


@pytest.mark.parametrize(
    "bad",
    [
        {"deadline_ms": 5, "deadline_min_ms": 10},
        {"deadline_ms": 20_000},
        {"deadline_min_ms": 0},
        {"max_in_flight": 0},
        {"max_queued": -1},
        {"rate_limit_anonymous_per_s": 0.0},
        {"rate_limit_anonymous_per_s": float("inf")},
        {"rate_limit_anonymous_burst": 0.5},
        {"rate_limit_key_default_per_s": -1.0},
        {"rate_limit_burst_factor": 0.5},
        {"quality_loss_budget": 1.5},
        {"quality_loss_budget": -0.1},
        {"ladder_step_up_pressure": 2.0, "ladder_step_down_pressure": 1.0},
        {"ladder_step_up_hold_s": -1.0},
        {"redis_url": "http://localhost:6379"},
        {"gil_switch_interval_ms": 0.0},
        {"gil_switch_interval_ms": 1000.0},
        {"shed_loop_lag_ms": -1.0},
        {"inline_search_max_ms": -0.5},
        {"inline_search_max_ms": 51.0},
    ],
)
def test_bad_serving_limits_fail_at_start(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Settings(**bad)


def test_the_serving_process_applies_the_gil_switch_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from shoprec.http import app as http_app

    before = sys.getswitchinterval()
    seen: list[float] = []
    monkeypatch.setattr(http_app, "create_app", lambda settings: seen.append(settings.gil_switch_interval_ms))
    monkeypatch.setenv("SHOPREC_GIL_SWITCH_INTERVAL_MS", "0.5")
    try:
        http_app.app_from_env()
        assert seen == [0.5] and sys.getswitchinterval() == pytest.approx(0.0005)
    finally:
        sys.setswitchinterval(before)


def test_the_ladders_parallelism_defaults_to_the_cpus_each_worker_has() -> None:
    from shoprec.http.overload import Overload, default_parallelism

    cpus = len(os.sched_getaffinity(0))
    assert default_parallelism(1) == max(1.0, cpus) and default_parallelism(10_000) == 1.0
    assert Overload.from_settings(Settings()).gate.chooser.parallelism == max(1.0, cpus)
    assert Overload.from_settings(Settings(workers=2 * cpus)).gate.chooser.parallelism == 1.0
    assert Overload.from_settings(Settings(ladder_parallelism=3.5)).gate.chooser.parallelism == 3.5
