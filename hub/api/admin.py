"""The admin API under `/api/v1`: what an IT admin asks of a running hub, and the few things
an operator may do (run a flow now, replay or discard dead letters).

Reads need a `read` token, changes an `operator` token (see `auth.py`). Every answer is a
documented model, so the OpenAPI document FastAPI generates is the reference.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from connectors.base import ConnectorError
from hub.api.errors import ERROR_RESPONSES
from hub.api.security import require
from hub.api.state import HubState, state_of
from hub.config.model import Flow
from hub.engine.worker import flow_job
from hub.store.models import Job, Link, Run
from hub.suggest import did_you_mean

router = APIRouter(prefix="/api/v1", tags=["admin"], responses=ERROR_RESPONSES)

MAX_ID = 2**63 - 1  # ids are 64-bit integers in both stores; a larger number names nothing
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="A numeric id")]
read = Depends(require("read"))
operate = Depends(require("operator"))


# --- models --------------------------------------------------------------------------------


class SystemOut(BaseModel):
    name: str
    connector: str
    webhook_path: str = Field(description="Where this system's vendor sends callbacks")
    flows: list[str] = Field(description="Flows that read from or write to this system")
    vendor_calls: dict[str, int] = Field(description="API calls this process made, by HTTP status (0: no answer)")


class RunOut(BaseModel):
    id: int
    flow: str
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    pulled: int
    created: int
    updated: int
    unchanged: int
    skipped_echo: int
    failed: int
    dead: int
    waiting: int
    skipped: int
    note: str | None


class FlowOut(BaseModel):
    name: str
    entity: str
    source: str = Field(description="system/object")
    targets: list[str]
    schedule: str | None
    webhook: bool
    enabled: bool
    last_run: RunOut | None


class Queued(BaseModel):
    flow: str
    job_id: int | None = Field(description="The new job, or null when a run of this flow is already queued")


class DeadLetter(BaseModel):
    id: int
    kind: str
    flow: str | None
    attempts: int
    last_error: str | None
    payload: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ReplayIn(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(default_factory=list, max_length=10_000,
                                                                   description="Dead letters to replay")
    all: bool = Field(default=False, description="Replay every dead letter instead")


class Count(BaseModel):
    count: int


class LinkOut(BaseModel):
    entity: str
    canonical_id: str
    system: str
    object: str
    external_id: str


class PlannedOut(BaseModel):
    target: str
    op: str
    external_id: str | None
    payload: dict[str, Any]
    diff: dict[str, list[Any]] = Field(description="field: [what the target holds now, what it would receive]")


class PreviewOut(BaseModel):
    flow: str
    external_id: str
    found: bool
    vendor: dict[str, Any] | None
    canonical: dict[str, Any] | None
    errors: list[str]
    targets: list[PlannedOut]
    problems: list[str]


# --- systems and flows ---------------------------------------------------------------------


@router.get("/systems", response_model=list[SystemOut], dependencies=[read], summary="Configured systems")
def systems(request: Request) -> list[SystemOut]:
    hub = state_of(request)
    opened = hub.engine.connectors()
    return [SystemOut(name=name, connector=system.connector, webhook_path=f"/webhooks/{name}",
                      flows=[f.name for f in hub.config.flows.values() if _touches(f, name)],
                      vendor_calls={str(k): v for k, v in _calls(opened.get(name)).items()})
            for name, system in hub.config.systems.items()]


def _touches(flow: Flow, system: str) -> bool:
    return flow.source.system == system or any(t.system == system for t in flow.targets)


def _calls(connector: Any) -> dict[Any, int]:
    return dict(getattr(getattr(connector, "client", None), "calls", {}) or {})


@router.get("/flows", response_model=list[FlowOut], dependencies=[read], summary="Flows with their last run")
def flows(request: Request) -> list[FlowOut]:
    hub = state_of(request)
    return [_flow_out(hub, flow) for flow in hub.config.flows.values()]


@router.get("/flows/{name}", response_model=FlowOut, dependencies=[read], summary="One flow with its last run")
def flow(name: str, request: Request) -> FlowOut:
    hub = state_of(request)
    return _flow_out(hub, _flow(hub, name))


def _flow(hub: HubState, name: str) -> Flow:
    if name not in hub.config.flows:
        raise HTTPException(404, f"no flow named '{name}'{did_you_mean(name, hub.config.flows)}")
    return hub.config.flows[name]


def _flow_out(hub: HubState, flow: Flow) -> FlowOut:
    with hub.store.transaction() as tx:
        recent = tx.runs_recent(flow.name, limit=1)
    return FlowOut(name=flow.name, entity=flow.entity, source=f"{flow.source.system}/{flow.source.object}",
                   targets=[f"{t.system}/{t.object}" for t in flow.targets],
                   schedule=str(flow.schedule) if flow.schedule else None, webhook=flow.webhook,
                   enabled=flow.enabled, last_run=_run_out(recent[0]) if recent else None)


@router.post("/flows/{name}/run", response_model=Queued, status_code=202, dependencies=[operate],
             summary="Queue a run of the flow now")
def run_flow(name: str, request: Request, full: bool = Query(False, description="Look at every source record")) -> Queued:
    hub = state_of(request)
    _flow(hub, name)
    with hub.store.transaction() as tx:
        [job_id] = tx.enqueue([flow_job(name, "api", full=full)])
    hub.jobs_queued()
    return Queued(flow=name, job_id=job_id)


# --- runs ----------------------------------------------------------------------------------


def _run_out(run: Run) -> RunOut:
    return RunOut(**{name: getattr(run, name) for name in RunOut.model_fields})


@router.get("/runs", response_model=list[RunOut], dependencies=[read], summary="Recent runs, newest first")
def runs(request: Request, flow: str | None = None, limit: int = Query(20, ge=1, le=500)) -> list[RunOut]:
    hub = state_of(request)
    with hub.store.transaction() as tx:
        return [_run_out(r) for r in tx.runs_recent(flow, limit=limit)]


@router.get("/runs/{run_id}", response_model=RunOut, dependencies=[read], summary="One run")
def run(run_id: Id, request: Request) -> RunOut:
    with state_of(request).store.transaction() as tx:
        found = tx.run_get(run_id)
    if found is None:
        raise HTTPException(404, f"no run {run_id}")
    return _run_out(found)


# --- dead letters --------------------------------------------------------------------------


def _dead_out(job: Job) -> DeadLetter:
    return DeadLetter(id=job.id, kind=job.kind, flow=job.flow, attempts=job.attempts, last_error=job.last_error,
                      payload=job.payload, created_at=job.created_at, updated_at=job.updated_at)


@router.get("/dead-letters", response_model=list[DeadLetter], dependencies=[read], summary="The dead-letter queue")
def dead_letters(request: Request, flow: str | None = None, limit: int = Query(50, ge=1, le=1000),
                 offset: int = Query(0, ge=0, le=MAX_ID)) -> list[DeadLetter]:
    with state_of(request).store.transaction() as tx:
        return [_dead_out(j) for j in tx.dead_jobs(limit=limit, offset=offset, flow=flow)]


@router.get("/dead-letters/{job_id}", response_model=DeadLetter, dependencies=[read], summary="One dead letter")
def dead_letter(job_id: Id, request: Request) -> DeadLetter:
    with state_of(request).store.transaction() as tx:
        job = tx.job_get(job_id)
    if job is None or job.status != "dead":
        raise HTTPException(404, f"no dead letter {job_id}")
    return _dead_out(job)


@router.post("/dead-letters/replay", response_model=Count, dependencies=[operate],
             summary="Queue dead letters again (after the mapping or the data was fixed)")
def replay(body: ReplayIn, request: Request) -> Count:
    if not body.all and not body.ids:
        raise HTTPException(422, "give ids, or all: true")
    hub = state_of(request)
    with hub.store.transaction() as tx:
        replayed = tx.replay(None if body.all else body.ids)
    if replayed:
        hub.jobs_queued()
    return Count(count=replayed)


@router.delete("/dead-letters/{job_id}", response_model=Count, dependencies=[operate], summary="Discard a dead letter")
def discard(job_id: Id, request: Request) -> Count:
    with state_of(request).store.transaction() as tx:
        count = tx.discard([job_id])
    if not count:
        raise HTTPException(404, f"no dead letter {job_id}")
    return Count(count=count)


# --- links and preview ---------------------------------------------------------------------


@router.get("/links/{entity}/{canonical_id}", response_model=list[LinkOut], dependencies=[read],
            summary="The external ids a canonical record has in each system")
def links(entity: str, canonical_id: str, request: Request) -> list[LinkOut]:
    with state_of(request).store.transaction() as tx:
        found: list[Link] = tx.links_of(entity, canonical_id)
    return [LinkOut(entity=x.entity, canonical_id=x.canonical_id, system=x.system, object=x.object,
                    external_id=x.external_id) for x in found]


@router.get("/preview/{flow}/{external_id}", response_model=PreviewOut, dependencies=[read],
            summary="Mapping preview: a source record, its canonical form, and what each target would receive")
async def preview(flow: str, external_id: str, request: Request) -> PreviewOut:
    hub = state_of(request)
    _flow(hub, flow)
    try:
        seen = await run_in_threadpool(hub.engine.preview, flow, external_id)
    except ConnectorError as exc:
        raise HTTPException(503, f"the source system could not be read: {exc}") from None
    targets = [PlannedOut(target=p.target, op=p.op, external_id=p.external_id, payload=p.payload,
                          diff={k: list(v) for k, v in p.diff.items()}) for p in seen.planned]
    return PreviewOut(flow=seen.flow, external_id=seen.external_id, found=seen.vendor is not None,
                      vendor=seen.vendor, canonical=seen.canonical, errors=seen.errors, targets=targets,
                      problems=seen.problems)
