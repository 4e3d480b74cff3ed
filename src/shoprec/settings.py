"""One frozen, validated Settings object.

Read once at start from (lowest to highest precedence) the defaults, an optional TOML
file, and environment variables prefixed ``SHOPREC_`` (``SHOPREC_MAX_K=50``). Nothing
reads the environment at import time; invalid values raise :class:`ConfigError` at start.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from shoprec.errors import ConfigError

LogLevel = Literal["debug", "info", "warning", "error"]
ENV_PREFIX = "SHOPREC_"


@dataclass(frozen=True, slots=True)
class Settings:
    artifacts: Path | None = None
    data_dir: Path = Path(".shoprec")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: LogLevel = "info"
    verify_artifacts: bool = True
    threads: int | None = None
    # request limits
    max_query_chars: int = 256
    max_k: int = 100
    default_k: int = 10
    max_body_bytes: int = 1_000_000
    max_events_per_batch: int = 1_000
    max_id_chars: int = 128
    # retrieval
    lexical_candidates: int = 100
    dense_candidates: int = 100

    def __post_init__(self) -> None:
        def positive(name: str) -> None:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"setting {name} must be a positive integer, got {value!r}")

        for name in (
            "workers",
            "max_query_chars",
            "max_k",
            "default_k",
            "max_body_bytes",
            "max_events_per_batch",
            "max_id_chars",
            "lexical_candidates",
            "dense_candidates",
        ):
            positive(name)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"setting port must be in 0..65535, got {self.port}")
        if self.default_k > self.max_k:
            raise ConfigError(f"default_k ({self.default_k}) must not exceed max_k ({self.max_k})")
        if self.threads is not None and self.threads <= 0:
            raise ConfigError(f"setting threads must be positive, got {self.threads}")
        if self.log_level not in get_args(LogLevel):
            raise ConfigError(f"setting log_level must be one of {get_args(LogLevel)}")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        toml_path: str | Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Defaults < TOML file (``SHOPREC_CONFIG`` or ``toml_path``) < environment < overrides."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        toml_file = toml_path or env.get(f"{ENV_PREFIX}CONFIG")
        if toml_file:
            try:
                data = tomllib.loads(Path(toml_file).read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read settings file {toml_file}: {exc}") from exc
            values.update(data.get("shoprec", data))
        hints = get_type_hints(cls)
        names = {f.name for f in fields(cls)}
        for key, raw in env.items():
            if key.startswith(ENV_PREFIX) and key != f"{ENV_PREFIX}CONFIG":
                name = key[len(ENV_PREFIX) :].lower()
                if name in names:
                    values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - names
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**{k: _coerce(k, v, hints[k]) for k, v in values.items()})


def _coerce(name: str, value: Any, hint: Any) -> Any:
    args = [a for a in get_args(hint) if a is not type(None)]
    target = args[0] if args and not isinstance(args[0], str) else hint
    if value is None or (isinstance(value, str) and value == "" and type(None) in get_args(hint)):
        return None
    try:
        if target is bool or hint is bool:
            if isinstance(value, bool):
                return value
            low = str(value).strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if target is int:
            return int(value)
        if target is float:
            return float(value)
        if target is Path:
            return Path(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: {exc}") from exc
    return value
