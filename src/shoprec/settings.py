"""One frozen, validated Settings object.

Read once at start from (lowest to highest precedence) the defaults, an optional TOML
file, and environment variables prefixed ``SHOPREC_`` (``SHOPREC_MAX_K=50``). Nothing
reads the environment at import time; invalid values raise :class:`ConfigError` at start.

Each field declares its own range (``PositiveInt``, ``Field(ge=0, le=1)``); relations between
fields are checked in one model validator. Values are parsed as pydantic does ("50" is 50 for an
int field), except that a bool is never a number and a flag takes only the words listed in
:func:`_flag`. Only :meth:`Settings.load` takes values from the environment or a file;
``Settings(...)`` and :meth:`Settings.replace` take their keyword arguments and the defaults.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, Self, cast, get_args

from pydantic import (
    BeforeValidator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shoprec.errors import ConfigError
from shoprec.types import DEFAULT_DENSE_CANDIDATES, DEFAULT_EF_SEARCH, DEFAULT_LEXICAL_CANDIDATES

LogLevel = Literal["debug", "info", "warning", "error"]
# auto: plain text when stderr is a terminal, one JSON object per line otherwise
LogFormat = Literal["auto", "text", "json"]
# who may go without an API key where a setting allows it (/metrics, the storefront's searches
# and events): clients on a loopback address, anyone, or nobody (a key with the role always may)
AnonymousAccess = Literal["loopback", "any", "none"]
ENV_PREFIX = "SHOPREC_"


def _flag(value: object) -> object:
    """Text to a bool: 1/true/yes/on or 0/false/no/off, in any case (pydantic alone also takes t/y/f/n)."""
    if not isinstance(value, str):
        return value
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be one of 1/true/yes/on or 0/false/no/off")


def _paths(value: object) -> object:
    """``"a.pub, b.pub"`` (environment) or a list (TOML) to a tuple of paths, blanks dropped."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return value  # refused by the tuple type, with the value in the message
    return tuple(Path(str(item).strip()) for item in items if str(item).strip())


Flag = Annotated[bool, BeforeValidator(_flag)]
PathList = Annotated[tuple[Path, ...], BeforeValidator(_paths)]
Fraction = Annotated[float, Field(ge=0, le=1)]
RateOrUnset = Annotated[float | None, Field(gt=0)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid", allow_inf_nan=False)

    artifacts: Path | None = None
    data_dir: Path = Path(".shoprec")
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: PositiveInt = 1
    log_level: LogLevel = "info"
    log_format: LogFormat = "auto"
    # the share of requests logged as one JSON line each (route, status, duration, level, model
    # version, request id); server errors are always logged
    request_log_sample_rate: Fraction = 0.01
    verify_artifacts: Flag = True
    threads: Annotated[int | None, Field(gt=0)] = None
    # request limits
    max_query_chars: PositiveInt = 256
    max_k: PositiveInt = 100
    default_k: PositiveInt = 10
    max_body_bytes: PositiveInt = 1_000_000
    max_events_per_batch: PositiveInt = 1_000
    max_id_chars: PositiveInt = 128
    # retrieval: candidates per query from BM25 and from the ANN, and the HNSW search breadth
    # (bench/candidates.py chose these on Home Depot: NDCG@10 within 0.002 of 100/100/256)
    lexical_candidates: PositiveInt = DEFAULT_LEXICAL_CANDIDATES
    dense_candidates: PositiveInt = DEFAULT_DENSE_CANDIDATES
    ef_search: PositiveInt = DEFAULT_EF_SEARCH
    # query understanding: typo correction on by default (`correct=false` turns it off per
    # request); the shop's synonyms file (one rule a line: `a, b` two-way, `a => b` one-way);
    # most suggestions per GET /v1/suggest
    correct_typos: Flag = True
    synonyms_file: Path | None = None
    max_suggestions: Annotated[int, Field(ge=1, le=50)] = 10
    # trust: signatures, encryption at rest, API keys, audit, TLS, registry pickup
    require_signature: Flag = True
    trusted_keys: PathList = ()
    data_key_file: Path | None = None
    data_key_env: str = "SHOPREC_DATA_KEY"
    keys_file: Path | None = None
    anonymous_read: Flag = False
    audit_log: Path | None = None
    audit_search_sample_rate: Fraction = 0.0
    # merchandising rules: versions in <data_dir>/rules; each worker looks for a new one at most this often
    rules_check_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    registry: Path | None = None
    registry_poll_s: PositiveFloat = 5.0
    drain_timeout_s: PositiveFloat = 30.0
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    # shared state across replicas (rate limits; caches): redis://host:port/db, None = in-process only
    redis_url: str | None = None
    # the event stream: "log" appends POST /v1/events to <data_dir>/events.jsonl and applies them in
    # process (the embedded default); "redis" appends them to a Redis Stream (needs redis_url) that
    # `shoprec worker` applies to the near-line state every replica reads (docs/EVENTS.md)
    events_backend: Literal["log", "redis"] = "log"
    # key prefix of the stream, the near-line state, the jobs and the worker's counters in Redis
    redis_prefix: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:_.-]+$")] = "shoprec:"
    # what Redis must promise before a 202: "always" = AOF fsync'd before the reply, "everysec" = at
    # most a second of acknowledged events lost on a power cut, "unchecked" = not checked (tests)
    events_durability: Literal["always", "everysec", "unchecked"] = "always"
    # POST /v1/events answers 503 + Retry-After while the stream holds this many entries not yet
    # acknowledged by every consumer group (the stream is trimmed only past what all acknowledged)
    events_max_backlog: PositiveInt = 200_000
    events_retry_after_s: PositiveFloat = 1.0
    # an event id is remembered this long once applied: redeliveries and client retries within it apply once
    events_dedupe_ttl_s: PositiveInt = 86_400
    # the worker: its consumer group, batch, how long a dead consumer's entries wait before another
    # claims them, deliveries before an event goes to the dead-letter stream
    worker_group: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:_.-]+$")] = "nearline"
    worker_batch: Annotated[int, Field(ge=1, le=10_000)] = 500
    worker_block_ms: Annotated[int, Field(ge=1, le=60_000)] = 200
    worker_claim_idle_ms: NonNegativeInt = 30_000
    worker_max_deliveries: Annotated[int, Field(ge=1, le=1000)] = 5
    worker_trim_interval_s: NonNegativeFloat = 1.0
    # near-line state: items kept per user history, co-occurrence entries read per history item
    nearline_history_items: Annotated[int, Field(ge=1, le=1000)] = 50
    nearline_history_ttl_s: PositiveInt = 30 * 86_400
    nearline_row_items: Annotated[int, Field(ge=1, le=100_000)] = 200
    nearline_popular_items: Annotated[int, Field(ge=1, le=100_000)] = 500
    # continuous training (`shoprec worker --train`): a retrain job every N new events or T seconds,
    # evaluated against the current version on the most recent share of the events
    retrain_every_events: PositiveInt = 50_000
    retrain_every_s: PositiveFloat = 3600.0
    retrain_holdout_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    # background jobs (queued in Redis, run by `shoprec worker --jobs`)
    jobs_timeout_s: PositiveFloat = 3600.0
    jobs_max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    # rate limits (token buckets): None = no limit. A key's own rate_limit_per_s wins over the default.
    rate_limit_anonymous_per_s: RateOrUnset = None
    rate_limit_anonymous_burst: RateOrUnset = None  # None: 2x the rate
    rate_limit_key_default_per_s: RateOrUnset = None
    rate_limit_burst_factor: Annotated[float, Field(ge=1, le=3600)] = (
        2.0  # a key's bucket holds this many seconds of its rate
    )
    # deadlines and load shedding
    deadline_ms: PositiveInt = 1000
    deadline_min_ms: PositiveInt = 10
    deadline_max_ms: PositiveInt = 10_000
    max_in_flight: PositiveInt = 64  # >= 2x batch_max_size, so the encoder batcher can fill its batches
    max_queued: NonNegativeInt = 256
    # how often (ms) Python lets another thread take the GIL; CPython's 5 ms default lets a search
    # thread hold the event loop off for whole milliseconds per request (measured: p99 1.4 s at
    # 320 req/s against 8 ms with 0.2)
    gil_switch_interval_ms: Annotated[float, Field(ge=0.01, le=100)] = 0.2
    # a share of search/recommend requests gets a fast 503 before any parsing while the event
    # loop has a standing lag above this (the smallest lag over 100 ms): the share grows while the
    # lag stands and shrinks once the loop keeps up (serving/looplag.py); 0 turns it off
    shed_loop_lag_ms: Annotated[float, Field(ge=0, le=60_000)] = 15.0
    # a ladder level whose measured p50 (manifest) is at most this many ms is searched on the event
    # loop itself: the hop to a worker thread and back costs more than such a search; 0: never
    inline_search_max_ms: Annotated[float, Field(ge=0, le=50)] = 1.0
    # degradation ladder (levels measured at build time, stored in the manifest)
    quality_loss_budget: Fraction = 0.15  # relative NDCG@10 loss allowed under pressure
    ladder_step_down_pressure: PositiveFloat = 1.5
    ladder_step_up_pressure: NonNegativeFloat = 0.5
    ladder_step_up_hold_s: NonNegativeFloat = 2.0
    # False: the ladder never leaves its best level (the admission gate still queues and sheds by
    # deadline); tests that check full-quality answers set it, with shed_loop_lag_ms=0
    degrade_under_load: Flag = True
    # predictive rule: serve the best level whose measured cost x arrival rate stays within this
    # fraction of ladder_parallelism busy seconds per second (0 turns the rule off).
    ladder_utilization_target: Fraction = 0.5
    # None: the CPUs this process may run on, shared among the workers (a search spends most of
    # its time in compiled code that releases the GIL: retrieval, ANN, encoder, ranker)
    ladder_parallelism: Annotated[float | None, Field(gt=0, le=1024)] = None
    # dynamic batching of query encoding, and the caches before and after the model (0 entries = off)
    batch_max_size: PositiveInt = 32
    batch_wait_s: Annotated[float, Field(ge=0, le=1)] = 0.002
    batch_target_s: PositiveFloat = 0.02  # the batch size adapts so one batch costs about this much model time
    embedding_cache_entries: NonNegativeInt = 50_000
    embedding_cache_ttl_s: PositiveFloat = 3600.0
    result_cache_entries: NonNegativeInt = 20_000
    result_cache_ttl_s: PositiveFloat = 60.0
    # GET /metrics (Prometheus text format); off: no metric is kept and prometheus_client is not imported
    metrics: Flag = True
    metrics_anonymous: AnonymousAccess = "loopback"
    # requests without a key that may search and post events, as the storefront at / does: none
    # (default), loopback clients only (what `shoprec demo` sets), or any client
    storefront_anonymous: AnonymousAccess = "none"
    # the window GET /v1/ops/summary computes throughput and p50/p99 over (the ops page at /ops)
    ops_window_s: Annotated[int, Field(ge=1, le=3600)] = 60
    # with workers > 1, where the workers' metric files live (wiped by `shoprec serve` at start);
    # default <data_dir>/metrics
    metrics_dir: Path | None = None
    # how often each worker copies its counters into the shared files (workers > 1)
    metrics_sync_s: Annotated[float, Field(gt=0, le=60)] = 1.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the keyword arguments: ``Settings(...)`` takes nothing from os.environ, a .env file or
        secrets (a test must not pick up a developer's SHOPREC_ variables). :meth:`load` reads the
        environment and the TOML file itself: it takes an explicit ``environ``, a ``[shoprec]`` table
        or a top-level one, and names unknown keys, which pydantic-settings' own sources do not."""
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        # pydantic takes True as 1 for an int or a float; a bool where a number belongs is a mistake
        if isinstance(data, dict):
            for name, value in data.items():
                if isinstance(value, bool) and name in _NUMBERS:
                    raise ConfigError(f"setting {name} must be a number, got {value!r}")
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _as_config_error(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Self:
        try:
            return cast(Self, handler(data))
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None

    @model_validator(mode="after")
    def _relations(self) -> Self:
        if self.default_k > self.max_k:
            raise ConfigError(f"default_k ({self.default_k}) must not exceed max_k ({self.max_k})")
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
        if self.events_backend == "redis" and self.redis_url is None:
            raise ConfigError('setting events_backend "redis" needs redis_url')
        return self

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        # pydantic's frozen models raise a ValidationError (a ValueError); settings, like a frozen
        # dataclass, raise AttributeError
        raise AttributeError(f"settings are frozen: use settings.replace({name}=...)")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"settings are frozen: cannot delete {name}")

    def replace(self, **changes: Any) -> Settings:
        """A validated copy with ``changes`` (typed values, as for ``Settings(...)``)."""
        return type(self)(**{**{name: getattr(self, name) for name in type(self).model_fields}, **changes})

    @classmethod
    def load(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        toml_path: str | Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Defaults < TOML file (``SHOPREC_CONFIG`` or ``toml_path``) < environment < overrides.

        The environment is ``environ`` when given (then os.environ is not read), else os.environ;
        unknown ``SHOPREC_`` variables are ignored, unknown names in the file or the overrides
        refused. None-valued overrides are not set; "" unsets an optional setting.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        toml_file = toml_path or env.get(f"{ENV_PREFIX}CONFIG")
        if toml_file:
            try:
                data = tomllib.loads(Path(toml_file).read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read settings file {toml_file}: {exc}") from exc
            values.update(data.get("shoprec", data))
        fields = cls.model_fields
        for key, raw in env.items():
            name = key[len(ENV_PREFIX) :].lower()
            if key.startswith(ENV_PREFIX) and name in fields:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        values.update({k: None for k, v in values.items() if v == "" and k in _OPTIONAL})
        return cls(**values)


def _is_number(annotation: Any) -> bool:
    return {t for t in get_args(annotation) or (annotation,) if t is not type(None)} in ({int}, {float})


_NUMBERS = frozenset(name for name, field in Settings.model_fields.items() if _is_number(field.annotation))
_OPTIONAL = frozenset(name for name, field in Settings.model_fields.items() if type(None) in get_args(field.annotation))


def _explain(exc: ValidationError) -> str:
    """One line naming every bad setting: "setting max_k must be greater than 0, got 0"."""
    unknown = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden")
    problems = [f"unknown settings: {', '.join(unknown)}"] if unknown else []
    for error in exc.errors():
        if error["type"] == "extra_forbidden":
            continue
        name = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ").split(", got ")[0]  # the value is named below
        if message.startswith("Input should be "):
            message = "must be " + message.removeprefix("Input should be ")
        if not message.startswith("must "):
            message = f"is invalid: {message}"
        problems.append(f"setting {name} {message}, got {error['input']!r}")
    return "; ".join(dict.fromkeys(problems))
