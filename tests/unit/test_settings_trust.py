"""Validation of the trust settings: signatures, keys, audit, registry, TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoprec.errors import ConfigError
from shoprec.settings import Settings


def test_defaults_are_secure() -> None:
    s = Settings.load(environ={})
    assert s.require_signature is True and s.anonymous_read is False and s.trusted_keys == ()


def test_trusted_keys_from_environment_and_toml(tmp_path: Path) -> None:
    s = Settings.load(environ={"SHOPREC_TRUSTED_KEYS": "a.pub, b.pub"})
    assert s.trusted_keys == (Path("a.pub"), Path("b.pub"))
    toml = tmp_path / "s.toml"
    toml.write_text('[shoprec]\ntrusted_keys = ["x.pub"]\nrequire_signature = false\n')
    t = Settings.load(environ={}, toml_path=toml)
    assert t.trusted_keys == (Path("x.pub"),) and t.require_signature is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHOPREC_AUDIT_SEARCH_SAMPLE_RATE": "1.5"}, "audit_search_sample_rate"),
        ({"SHOPREC_REGISTRY_POLL_S": "0"}, "registry_poll_s"),
        ({"SHOPREC_DRAIN_TIMEOUT_S": "-1"}, "drain_timeout_s"),
        ({"SHOPREC_SSL_KEYFILE": "key.pem"}, "ssl_certfile and ssl_keyfile"),
        ({"SHOPREC_DATA_KEY_ENV": "not a name"}, "data_key_env"),
        ({"SHOPREC_ANONYMOUS_READ": "maybe"}, "anonymous_read"),
    ],
)
def test_bad_values_are_refused_at_start(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.load(environ=env)
