import typing
from pathlib import Path

import pytest

from shoprec.errors import ConfigError
from shoprec.settings import Settings


def test_defaults_are_valid() -> None:
    s = Settings.load(environ={})
    assert s.port == 8000 and s.max_k == 100 and s.artifacts is None


def test_environment_overrides_and_coercion(tmp_path: Path) -> None:
    s = Settings.load(
        environ={
            "SHOPREC_MAX_K": "50",
            "SHOPREC_VERIFY_ARTIFACTS": "false",
            "SHOPREC_ARTIFACTS": str(tmp_path),
            "OTHER": "x",
        }
    )
    assert s.max_k == 50 and s.verify_artifacts is False and s.artifacts == tmp_path


def test_toml_then_env_then_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "shoprec.toml"
    cfg.write_text("[shoprec]\nport = 9000\nmax_k = 20\n")
    s = Settings.load(environ={"SHOPREC_MAX_K": "30"}, toml_path=cfg, default_k=5)
    assert (s.port, s.max_k, s.default_k) == (9000, 30, 5)


@pytest.mark.parametrize(
    "env",
    [
        {"SHOPREC_MAX_K": "0"},
        {"SHOPREC_MAX_K": "many"},
        {"SHOPREC_PORT": "70000"},
        {"SHOPREC_DEFAULT_K": "500"},
        {"SHOPREC_LOG_LEVEL": "loud"},
        {"SHOPREC_VERIFY_ARTIFACTS": "maybe"},
    ],
)
def test_invalid_values_fail_at_start(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.load(environ=env)


def test_unknown_setting_in_file(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text("nonsense = 1\n")
    with pytest.raises(ConfigError, match="nonsense"):
        Settings.load(environ={}, toml_path=cfg)


def test_settings_are_frozen() -> None:
    s = Settings.load(environ={})
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


def test_settings_are_hashable_and_replace_validates() -> None:
    s = Settings.load(environ={})
    assert hash(s) == hash(Settings()) and {s: 1}[Settings()] == 1
    t = s.replace(max_k=50, degrade_under_load=False)
    assert (t.max_k, t.degrade_under_load, s.max_k, s.degrade_under_load) == (50, False, 100, True)
    with pytest.raises(ConfigError, match="setting max_k must be"):
        s.replace(max_k=0)
    with pytest.raises(ConfigError, match="default_k"):
        s.replace(default_k=500)
    with pytest.raises(ConfigError, match="unknown settings: bogus"):
        s.replace(bogus=1)
    with pytest.raises(AttributeError):
        del s.port


def test_direct_construction_never_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPREC_MAX_K", "5")
    monkeypatch.setenv("SHOPREC_LOG_LEVEL", "loud")
    assert Settings().max_k == 100 and Settings(port=1).log_level == "info"
    assert Settings.load(environ={}).max_k == 100  # a given environ replaces os.environ
    assert Settings.load(environ={}, max_k=50).replace(port=1).max_k == 50


def test_load_precedence_details(tmp_path: Path) -> None:
    cfg = tmp_path / "top.toml"
    cfg.write_text('port = 9000\nartifacts = "art"\n')  # top level, no [shoprec] table
    s = Settings.load(environ={"SHOPREC_CONFIG": str(cfg), "SHOPREC_BOGUS": "1", "SHOPREC_ARTIFACTS": ""}, port=None)
    assert s.port == 9000 and s.artifacts is None  # "" unsets; None overrides and unknown variables are ignored
    with pytest.raises(ConfigError, match="unknown settings: nonsense"):
        Settings.load(environ={}, nonsense=1)
    with pytest.raises(ConfigError, match="cannot read settings file"):
        Settings.load(environ={}, toml_path=tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", True),
        ("TRUE", True),
        (" yes ", True),
        ("On", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("OFF", False),
    ],
)
def test_flags_take_these_words(text: str, value: bool) -> None:
    assert Settings.load(environ={"SHOPREC_VERIFY_ARTIFACTS": text}).verify_artifacts is value


@pytest.mark.parametrize("text", ["t", "y", "2", "", "maybe"])
def test_flags_refuse_other_words(text: str) -> None:
    with pytest.raises(ConfigError, match="setting verify_artifacts must be one of"):
        Settings.load(environ={"SHOPREC_VERIFY_ARTIFACTS": text})


def _numeric_bounds() -> dict[str, tuple[type, dict[str, float]]]:
    """Each int or float field (optional or not): its type and the bounds its declaration gives it."""
    numeric: dict[str, tuple[type, dict[str, float]]] = {}
    for name, field in Settings.model_fields.items():
        kinds = {t for t in typing.get_args(field.annotation) or (field.annotation,) if t is not type(None)}
        if kinds in ({int}, {float}):
            ops = ("gt", "ge", "lt", "le")
            numeric[name] = (kinds.pop(), {op: getattr(m, op) for m in field.metadata for op in ops if hasattr(m, op)})
    return numeric


def test_every_numeric_setting_has_a_range_and_its_ends_hold() -> None:
    """A new numeric field cannot skip validation: each declares a bound, and a value past any bound fails."""
    numeric = _numeric_bounds()
    assert {"port", "workers", "threads", "rate_limit_anonymous_per_s", "ladder_parallelism"} <= set(numeric)
    assert [name for name, (_, bounds) in numeric.items() if not bounds] == []
    for name, (kind, bounds) in numeric.items():
        step = 1 if kind is int else 1e-6
        past = {"gt": 0, "ge": -step, "lt": 0, "le": step}
        for op, end in bounds.items():
            with pytest.raises(ConfigError, match=f"setting {name} must be"):
                Settings(**{name: kind(end + past[op])})
    for name, value in [("workers", True), ("workers", 1.5), ("max_queued", -1), ("threads", 0), ("port", 70000)]:
        with pytest.raises(ConfigError, match=f"setting {name} must be"):
            Settings(**{name: value})
    assert Settings(port=0, threads=None, max_queued=0, quality_loss_budget=1.0, ladder_parallelism=1024).port == 0
    with pytest.raises(ConfigError, match=r"setting ladder_parallelism must be greater than 0, got 0"):
        Settings(ladder_parallelism=0)
