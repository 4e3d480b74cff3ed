"""``/v1/admin/jobs``: queue background jobs and follow them (admin role; only with ``redis_url``)."""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from shoprec.adapters.jobs import JobQueue
from shoprec.core.jobs import JobRecord
from shoprec.http.state import AppServices, Guard, dependencies


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["rebuild", "retrain", "optimize", "evaluate", "promote"]
    args: dict[str, Annotated[str, Field(min_length=1, max_length=4096)] | list[str]] = Field(default_factory=dict)
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    timeout_s: float | None = Field(default=None, gt=0, le=7 * 86_400, allow_inf_nan=False)


class JobOut(BaseModel):
    id: str
    kind: str
    args: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    timeout_s: float
    created_at: float
    started_at: float | None
    finished_at: float | None
    progress: str
    result: Any
    errors: list[str]
    worker: str


class JobsOut(BaseModel):
    jobs: list[JobOut]


def _out(job: JobRecord) -> JobOut:
    return JobOut(**job.public())


def router(services: AppServices, queue: JobQueue, guards: Sequence[Guard]) -> APIRouter:
    routes = APIRouter(tags=["admin"], dependencies=dependencies(guards))
    settings = services.settings

    @routes.get("/v1/admin/jobs", response_model=JobsOut)
    async def list_jobs(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> JobsOut:
        """The most recent jobs, newest first: status, attempts, progress, result, errors."""
        jobs = await run_in_threadpool(queue.list, limit)
        return JobsOut(jobs=[_out(j) for j in jobs])

    @routes.get("/v1/admin/jobs/{job_id}", response_model=JobOut, responses={404: {"description": "no such job"}})
    async def show_job(job_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]) -> JobOut:
        """One job's record."""
        return _out(await run_in_threadpool(queue.get, job_id))

    @routes.post("/v1/admin/jobs", response_model=JobOut, status_code=202)
    async def submit_job(body: JobIn) -> JobOut:
        """Queue a job for ``shoprec worker --jobs`` (its arguments are checked now: 400 if wrong)."""
        timeout_s = min(body.timeout_s or settings.jobs_timeout_s, settings.jobs_timeout_s)
        attempts = body.max_attempts or settings.jobs_max_attempts

        def submit() -> JobRecord:
            return queue.submit(body.kind, body.args, max_attempts=attempts, timeout_s=timeout_s)

        return _out(await run_in_threadpool(submit))

    return routes
