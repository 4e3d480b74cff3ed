"""Settings and headers for tests that serve unsigned artifacts with API keys switched on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from shoprec.security.apikeys import KeyStore, Role
from shoprec.settings import Settings


def unsigned_settings(
    tmp_path: Path, roles: tuple[Role, ...] = ("search", "events"), **overrides: Any
) -> tuple[Settings, dict[str, str]]:
    """Settings that accept unsigned artifacts (explicitly) and a header with a key holding ``roles``."""
    keys = tmp_path / "keys.json"
    _, plain = KeyStore(keys, time.time, iterations=1).create("tests", roles)
    settings = Settings.load(environ={}, keys_file=keys, require_signature=False, data_dir=tmp_path, **overrides)
    return settings, {"X-API-Key": plain}
