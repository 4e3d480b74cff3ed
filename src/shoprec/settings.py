"""One frozen, validated Settings object.

Read once at start from (lowest to highest precedence) the defaults, an optional TOML
file, and environment variables prefixed ``SHOPREC_`` (``SHOPREC_MAX_K=50``). Nothing
reads the environment at import time; invalid values raise :class:`ConfigError` at start.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

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
    # trust: signatures, encryption at rest, API keys, audit, TLS, registry pickup
    require_signature: bool = True
    trusted_keys: tuple[Path, ...] = ()
    data_key_file: Path | None = None
    data_key_env: str = "SHOPREC_DATA_KEY"
    keys_file: Path | None = None
    anonymous_read: bool = False
    audit_log: Path | None = None
    audit_search_sample_rate: float = 0.0
    registry: Path | None = None
    registry_poll_s: float = 5.0
    drain_timeout_s: float = 30.0
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    # shared state across replicas (rate limits; caches): redis://host:port/db, None = in-process only
    redis_url: str | None = None
    # rate limits (token buckets): None = no limit. A key's own rate_limit_per_s wins over the default.
    rate_limit_anonymous_per_s: float | None = None
    rate_limit_anonymous_burst: float | None = None  # None: 2x the rate
    rate_limit_key_default_per_s: float | None = None
    rate_limit_burst_factor: float = 2.0  # a key's bucket holds this many seconds of its rate
    # deadlines and load shedding
    deadline_ms: int = 1000
    deadline_min_ms: int = 10
    deadline_max_ms: int = 10_000
    max_in_flight: int = 64  # >= 2x batch_max_size, so the encoder batcher can fill its batches
    max_queued: int = 256
    # how often (ms) Python lets another thread take the GIL; CPython's 5 ms default lets a search
    # thread hold the event loop off for whole milliseconds per request (measured: p99 1.4 s at
    # 320 req/s against 8 ms with 0.2)
    gil_switch_interval_ms: float = 0.2
    # a share of search/recommend requests gets a fast 503 before any parsing while the event
    # loop has a standing lag above this (the smallest lag over 100 ms): the share grows while the
    # lag stands and shrinks once the loop keeps up (serving/looplag.py); 0 turns it off
    shed_loop_lag_ms: float = 15.0
    # a ladder level whose measured p50 (manifest) is at most this many ms is searched on the event
    # loop itself: the hop to a worker thread and back costs more than such a search; 0: never
    inline_search_max_ms: float = 1.0
    # degradation ladder (levels measured at build time, stored in the manifest)
    quality_loss_budget: float = 0.15  # relative NDCG@10 loss allowed under pressure
    ladder_step_down_pressure: float = 1.5
    ladder_step_up_pressure: float = 0.5
    ladder_step_up_hold_s: float = 2.0
    # predictive rule: serve the best level whose measured cost x arrival rate stays within this
    # fraction of ladder_parallelism busy seconds per second (0 turns the rule off). One worker
    # process runs Python under one GIL, hence 1.0 by default.
    ladder_utilization_target: float = 0.5
    ladder_parallelism: float = 1.0
    # dynamic batching of query encoding, and the caches before and after the model (0 entries = off)
    batch_max_size: int = 32
    batch_wait_s: float = 0.002
    batch_target_s: float = 0.02  # the batch size adapts so one batch costs about this much model time
    embedding_cache_entries: int = 50_000
    embedding_cache_ttl_s: float = 3600.0
    result_cache_entries: int = 20_000
    result_cache_ttl_s: float = 60.0

    def __post_init__(self) -> None:
        for name, rule in _RANGES.items():
            rule.check(name, getattr(self, name))
        if self.default_k > self.max_k:
            raise ConfigError(f"default_k ({self.default_k}) must not exceed max_k ({self.max_k})")
        if self.log_level not in get_args(LogLevel):
            raise ConfigError(f"setting log_level must be one of {get_args(LogLevel)}")
        if not all(isinstance(p, Path) for p in self.trusted_keys):
            raise ConfigError("setting trusted_keys must be a list of public key file paths")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ConfigError("settings ssl_certfile and ssl_keyfile go together: set both or neither")
        if not self.data_key_env or not self.data_key_env.replace("_", "").isalnum():
            raise ConfigError(f"setting data_key_env must be an environment variable name, got {self.data_key_env!r}")
        if not self.deadline_min_ms <= self.deadline_ms <= self.deadline_max_ms:
            raise ConfigError(
                f"settings need deadline_min_ms ({self.deadline_min_ms}) <= deadline_ms ({self.deadline_ms}) "
                f"<= deadline_max_ms ({self.deadline_max_ms})"
            )
        if self.rate_limit_anonymous_burst is not None and self.rate_limit_anonymous_burst < 1:
            raise ConfigError(f"setting rate_limit_anonymous_burst must be >= 1, got {self.rate_limit_anonymous_burst}")
        if not self.ladder_step_up_pressure < self.ladder_step_down_pressure:
            raise ConfigError(
                f"settings need 0 <= ladder_step_up_pressure ({self.ladder_step_up_pressure}) "
                f"< ladder_step_down_pressure ({self.ladder_step_down_pressure})"
            )
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"setting redis_url must be a redis://, rediss:// or unix:// URL, got {self.redis_url!r}")

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


@dataclass(frozen=True, slots=True)
class _Range:
    """What one numeric setting may be: within ``lo`` .. ``hi`` (either end open or closed),
    an integer when ``integer``, or unset when ``optional``; ``says`` is how the error puts it."""

    says: str
    lo: float = 0.0
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = True
    integer: bool = False
    optional: bool = False

    def check(self, name: str, value: object) -> None:
        if value is None and self.optional:
            return
        number = isinstance(value, int) if self.integer else isinstance(value, int | float)
        if isinstance(value, bool) or not number:
            raise ConfigError(f"setting {name} must be {self.says}, got {value!r}")
        x = float(value)  # type: ignore[arg-type]  # an int or a float, checked above
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        if not (above and below):
            raise ConfigError(f"setting {name} must be {self.says}, got {value!r}")


_POSITIVE_INT = _Range("a positive integer", lo=0, lo_open=True, integer=True)
_COUNT = _Range("a non-negative integer (0 = off)", integer=True)
_SECONDS = _Range("a positive number of seconds", lo=0, lo_open=True)
_RATE = _Range("a positive number or unset", lo=0, lo_open=True, optional=True)
_FRACTION = _Range("in [0, 1]", hi=1, hi_open=False)

# Every numeric setting's range; relations between settings are checked in Settings.__post_init__.
_RANGES: dict[str, _Range] = {
    **dict.fromkeys(
        (
            "workers",
            "max_query_chars",
            "max_k",
            "default_k",
            "max_body_bytes",
            "max_events_per_batch",
            "max_id_chars",
            "lexical_candidates",
            "dense_candidates",
            "batch_max_size",
            "deadline_ms",
            "deadline_min_ms",
            "deadline_max_ms",
            "max_in_flight",
        ),
        _POSITIVE_INT,
    ),
    "port": _Range("in 0..65535", hi=65535, hi_open=False, integer=True),
    "threads": _Range("a positive integer or unset", lo=0, lo_open=True, integer=True, optional=True),
    "max_queued": _Range("a non-negative integer", integer=True),
    **dict.fromkeys(("embedding_cache_entries", "result_cache_entries"), _COUNT),
    **dict.fromkeys(
        ("registry_poll_s", "drain_timeout_s", "batch_target_s", "embedding_cache_ttl_s", "result_cache_ttl_s"),
        _SECONDS,
    ),
    "batch_wait_s": _Range("in [0, 1] seconds", hi=1, hi_open=False),
    **dict.fromkeys(
        ("rate_limit_anonymous_per_s", "rate_limit_anonymous_burst", "rate_limit_key_default_per_s"), _RATE
    ),
    "rate_limit_burst_factor": _Range("in [1, 3600]", lo=1, hi=3600, hi_open=False),
    **dict.fromkeys(("audit_search_sample_rate", "quality_loss_budget", "ladder_utilization_target"), _FRACTION),
    "ladder_step_up_pressure": _Range("a number >= 0"),
    "ladder_step_down_pressure": _Range("a positive number", lo=0, lo_open=True),
    "ladder_step_up_hold_s": _Range(">= 0 seconds"),
    "ladder_parallelism": _Range("in (0, 1024]", lo=0, lo_open=True, hi=1024, hi_open=False),
    "gil_switch_interval_ms": _Range("in [0.01, 100]", lo=0.01, hi=100, hi_open=False),
    "shed_loop_lag_ms": _Range("in [0, 60000]", hi=60_000, hi_open=False),
    "inline_search_max_ms": _Range("in [0, 50]", hi=50, hi_open=False),
}


def _coerce(name: str, value: Any, hint: Any) -> Any:
    args = [a for a in get_args(hint) if a is not type(None)]
    target = args[0] if args and not isinstance(args[0], str) else hint
    if value is None or (isinstance(value, str) and value == "" and type(None) in get_args(hint)):
        return None
    if get_origin(hint) is tuple:  # a list of paths: TOML array, or "a,b" in the environment
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"setting {name}: expected a list, got {value!r}")
        return tuple(Path(str(x).strip()) for x in items if str(x).strip())
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
