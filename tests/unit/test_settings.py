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


def test_every_numeric_setting_has_a_range_and_its_ends_hold() -> None:
    """A new numeric field cannot skip validation: the range table names every one."""
    import dataclasses
    import typing

    from shoprec.settings import _RANGES

    hints = typing.get_type_hints(Settings)
    numeric = {
        f.name
        for f in dataclasses.fields(Settings)
        if hints[f.name] in (int, float) or {int, float} & set(typing.get_args(hints[f.name]))
    }
    assert numeric == set(_RANGES)
    for name, value in [("workers", True), ("workers", 1.5), ("max_queued", -1), ("threads", 0), ("port", 70000)]:
        with pytest.raises(ConfigError, match=f"setting {name} must be"):
            Settings(**{name: value})
    assert Settings(port=0, threads=None, max_queued=0, quality_loss_budget=1.0, ladder_parallelism=1024).port == 0
    with pytest.raises(ConfigError, match=r"ladder_parallelism must be in \(0, 1024\], got 0"):
        Settings(ladder_parallelism=0)
