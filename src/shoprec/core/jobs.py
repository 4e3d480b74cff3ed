"""Background jobs as data: what each kind runs, a job's record and its lifecycle. Pure.

A job is one ``shoprec`` command run by ``shoprec worker --jobs`` in a process of its own (so a
timeout can kill it and a crash cannot take the worker down). Only the kinds below exist, and
each takes only the arguments listed for it: a job names work, it never carries a command line.

=========  ================================================================================
kind       command
=========  ================================================================================
rebuild    ``build --products P --out DIR [--events E] [--encoder ENC]`` (after catalog changes)
retrain    ``retrain --products P --events E --registry REG [--base-events B] [--holdout H]
           [--judgments J] [--encoder ENC] [--work DIR]``: build on the events but a held-out recent
           slice, push, promote through the registry's gates (scored on that slice)
optimize   ``optimize --artifacts A --out DIR [steps ...]``
evaluate   ``eval search --artifacts A --judgments J --json``
promote    ``registry promote VERSION --registry REG [--judgments J] [--sequences S] --json``
=========  ================================================================================

Lifecycle: ``queued`` → ``running`` → ``succeeded`` | ``failed``; a failed or timed-out attempt
with attempts left goes back to ``queued`` (``attempts`` counts the runs started).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from shoprec.errors import DataError

JobKind = Literal["rebuild", "retrain", "optimize", "evaluate", "promote"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]
JOB_KINDS: tuple[JobKind, ...] = ("rebuild", "retrain", "optimize", "evaluate", "promote")
JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed")


@dataclass(frozen=True)
class _Command:
    words: tuple[str, ...]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    positional: str | None = None  # an argument given without its flag, first
    rest: str | None = None  # a list argument given as trailing words
    flags: tuple[str, ...] = ()


_COMMANDS: Mapping[str, _Command] = {
    "rebuild": _Command(("build",), ("products", "out"), ("events", "encoder")),
    "retrain": _Command(
        ("retrain",),
        ("products", "events", "registry"),
        ("base_events", "holdout", "judgments", "encoder", "work", "signing_key", "max_train_s"),
    ),
    "optimize": _Command(("optimize",), ("artifacts", "out"), (), rest="steps"),
    "evaluate": _Command(("eval", "search"), ("artifacts", "judgments"), flags=("--json",)),
    "promote": _Command(
        ("registry", "promote"), ("registry",), ("judgments", "sequences"), positional="version", flags=("--json",)
    ),
}


def job_argv(kind: str, args: Mapping[str, Any]) -> list[str]:
    """The ``shoprec`` arguments a job runs; :class:`DataError` for an unknown kind or argument."""
    command = _COMMANDS.get(kind)
    if command is None:
        raise DataError(f"unknown job kind {kind!r}; choose from {list(JOB_KINDS)}")
    known = {*command.required, *command.optional, *(a for a in (command.positional, command.rest) if a)}
    unknown = sorted(set(args) - known)
    if unknown:
        raise DataError(f"job {kind!r} takes no argument {', '.join(unknown)}; it takes {sorted(known)}")
    missing = [a for a in (*command.required, *([command.positional] if command.positional else [])) if a not in args]
    if missing:
        raise DataError(f"job {kind!r} needs {', '.join(missing)}")
    argv = list(command.words)
    if command.positional:
        argv.append(_word(kind, command.positional, args[command.positional]))
    for name in (*command.required, *command.optional):
        if name in args:
            argv += [f"--{name.replace('_', '-')}", _word(kind, name, args[name])]
    argv += list(command.flags)
    if command.rest and command.rest in args:
        rest = args[command.rest]
        if not isinstance(rest, list) or not all(isinstance(w, str) for w in rest):
            raise DataError(f"job {kind!r}: {command.rest} must be a list of strings")
        argv += [_word(kind, command.rest, w) for w in rest]
    return argv


def _word(kind: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value or value.startswith("-") or "\x00" in value:
        raise DataError(f"job {kind!r}: {name} must be a non-empty string not starting with '-', got {value!r}")
    return value


@dataclass(frozen=True)
class JobRecord:
    """Everything known about one job (stored as one Redis hash, strings only)."""

    id: str
    kind: str
    args: Mapping[str, Any]
    status: JobStatus = "queued"
    attempts: int = 0
    max_attempts: int = 3
    timeout_s: float = 3600.0
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    progress: str = ""
    result: Any = None
    errors: Sequence[str] = field(default_factory=tuple)
    worker: str = ""

    def to_fields(self) -> dict[str, str]:
        return {
            "id": self.id,
            "kind": self.kind,
            "args": json.dumps(dict(self.args), sort_keys=True),
            "status": self.status,
            "attempts": str(self.attempts),
            "max_attempts": str(self.max_attempts),
            "timeout_s": repr(self.timeout_s),
            "created_at": repr(self.created_at),
            "started_at": "" if self.started_at is None else repr(self.started_at),
            "finished_at": "" if self.finished_at is None else repr(self.finished_at),
            "progress": self.progress,
            "result": json.dumps(self.result),
            "errors": json.dumps(list(self.errors)),
            "worker": self.worker,
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> JobRecord:
        status = fields.get("status", "queued")
        if status not in JOB_STATUSES:
            raise DataError(f"job record with status {status!r}")
        return cls(
            id=fields["id"],
            kind=fields["kind"],
            args=json.loads(fields.get("args") or "{}"),
            status=status,
            attempts=int(fields.get("attempts") or 0),
            max_attempts=int(fields.get("max_attempts") or 1),
            timeout_s=float(fields.get("timeout_s") or 0),
            created_at=float(fields.get("created_at") or 0),
            started_at=float(fields["started_at"]) if fields.get("started_at") else None,
            finished_at=float(fields["finished_at"]) if fields.get("finished_at") else None,
            progress=fields.get("progress", ""),
            result=json.loads(fields.get("result") or "null"),
            errors=tuple(json.loads(fields.get("errors") or "[]")),
            worker=fields.get("worker", ""),
        )

    def started(self, now: float, worker: str) -> JobRecord:
        return replace(self, status="running", attempts=self.attempts + 1, started_at=now, worker=worker, progress="")

    def ended(self, now: float, *, ok: bool, result: Any = None, error: str | None = None) -> JobRecord:
        """After a run: succeeded, back to queued (attempts left), or failed."""
        errors = (*self.errors, error) if error else tuple(self.errors)
        if ok:
            return replace(self, status="succeeded", finished_at=now, result=result, errors=errors)
        status: JobStatus = "queued" if self.attempts < self.max_attempts else "failed"
        return replace(self, status=status, finished_at=now if status == "failed" else None, errors=errors)

    def failed(self, now: float, error: str) -> JobRecord:
        """Failed for good, whatever attempts are left."""
        return replace(self, status="failed", finished_at=now, errors=(*self.errors, error))

    def public(self) -> dict[str, Any]:
        """The record as JSON for ``jobs show`` and the admin route."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("args", "errors")}
        return out | {"args": dict(self.args), "errors": list(self.errors)}


def last_json_line(text: str) -> Any:
    """The last line of ``text`` that is a JSON object (a ``--json`` command's result), else None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


@dataclass(frozen=True)
class RetrainSchedule:
    """Retrain every ``every_events`` new events, or after ``every_s`` seconds with any new event."""

    every_events: int
    every_s: float

    def due(self, new_events: int, since_s: float) -> bool:
        return new_events >= self.every_events or (new_events > 0 and since_s >= self.every_s)
