"""The one error tree of shoprec. Each error knows the HTTP status it maps to.

    ShoprecError                      500  (base; never raised directly)
    ├── ConfigError                   500  bad settings, detected at start
    ├── DataError                     400  bad input data (a file, a row, a request body)
    │   └── RowError                  400  one bad row: names the file, the line and the problem
    ├── ArtifactError                 500  artifacts missing, malformed or from another format version
    │   └── IntegrityError            500  a checksum does not match the manifest
    ├── RequestError                  400  a client request that is malformed or out of range
    │   ├── NotFoundError             404  the thing asked for does not exist
    │   ├── PayloadTooLargeError      413  the request body is over the limit
    │   ├── ArtifactRefusedError      422  a reload asked for artifacts that failed a trust check
    │   ├── PromotionRefusedError     409  a registry candidate failed a promotion gate; nothing changed
    │   ├── QualityGateError          422  an optimization step lost too much search quality; nothing written
    │   └── RateLimitedError          429  the client's token bucket is empty (carries Retry-After)
    ├── NotReadyError                 503  the service has no artifacts loaded yet
    ├── OverloadedError               503  shed: the queue is full (carries Retry-After)
    │   ├── DeadlineExceededError     503  the request's deadline cannot be met, so it was not started
    │   └── BacklogFullError          503  the event stream's unacknowledged backlog is at its bound
    ├── SharedStateError              503  Redis (shared caches, limits) unreachable or refused; callers fall back
    └── DependencyError               500  an optional dependency is missing (with an install hint)

Errors are mapped to HTTP in exactly one place: :mod:`shoprec.http.errors`.
"""

from __future__ import annotations


class ShoprecError(Exception):
    """Base of every error shoprec raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        return {"error": self.code, "detail": self.message}


class ConfigError(ShoprecError):
    code = "config_error"


class DataError(ShoprecError):
    status_code = 400
    code = "bad_data"


class RowError(DataError):
    """A bad row in an input file. ``line`` is 1-based, counting the header line."""

    code = "bad_row"

    def __init__(self, path: str, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


class ArtifactError(ShoprecError):
    code = "artifact_error"


class IntegrityError(ArtifactError):
    code = "integrity_error"


class RequestError(ShoprecError):
    status_code = 400
    code = "bad_request"


class NotFoundError(RequestError):
    status_code = 404
    code = "not_found"


class PayloadTooLargeError(RequestError):
    status_code = 413
    code = "payload_too_large"


class ArtifactRefusedError(RequestError):
    """An admin asked to load artifacts that failed verification; the current version keeps serving."""

    status_code = 422
    code = "artifact_refused"


class NotReadyError(ShoprecError):
    status_code = 503
    code = "not_ready"


class PromotionRefusedError(RequestError):
    """A registry candidate failed a quality or latency gate; the current version is unchanged."""

    status_code = 409
    code = "promotion_refused"


class QualityGateError(RequestError):
    """An optimization step scored under the gate fraction of the teacher's NDCG@10; nothing written."""

    status_code = 422
    code = "quality_gate_refused"


class RateLimitedError(RequestError):
    """Over the client's rate limit; ``retry_after_s`` is when a token will be there."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OverloadedError(ShoprecError):
    """Load shed before any work was done: a fast answer, never a timeout."""

    status_code = 503
    code = "overloaded"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceededError(OverloadedError):
    code = "deadline_exceeded"


class BacklogFullError(OverloadedError):
    """The event stream holds ``events_max_backlog`` entries not yet acknowledged: nothing was appended."""

    code = "backlog_full"


class SharedStateError(ShoprecError):
    """Redis could not be reached (or refused a command). Callers fall back to in-process state."""

    status_code = 503
    code = "shared_state_unavailable"


class DependencyError(ShoprecError):
    code = "missing_dependency"
