"""Alert, schedule and delivery routes (scope `reports`), docs/alerts.md.

`/api/v1/reports/schedules` is its own router, included before the reports router (whose
`/{report_id}` would otherwise take `schedules`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..auth import ReportsKey, require
from ..dependencies import SettingsDep
from .evaluation import Evaluation
from .measures import MEASURES
from .repo import Applied
from .rules import NAME, TEMPLATES, AlertBody, Channel, Condition, ScheduleBody
from .service import NotificationsService, every_text, notifications_service
from .tables import DELIVERY_STATUSES, INCIDENT_STATUSES, AlertIncident, AlertRule, Delivery, ReportSchedule

alerts = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], dependencies=[Depends(require("reports"))])
schedules = APIRouter(
    prefix="/api/v1/reports/schedules", tags=["schedules"], dependencies=[Depends(require("reports"))]
)
deliveries = APIRouter(prefix="/api/v1/deliveries", tags=["deliveries"], dependencies=[Depends(require("reports"))])

Service = Annotated[NotificationsService, Depends(notifications_service)]
Page = Annotated[int, Query(ge=1, le=100_000, description="page number, from 1")]
PageSize = Annotated[int, Query(ge=1, le=100, description="rows per page")]
StoreQ = Annotated[str | None, Query(max_length=128, description="only this store (a store-bound key: its own)")]


# -- alerts ------------------------------------------------------------------------------------


class AlertOut(BaseModel):
    alert_id: str
    name: str
    template: str | None
    measure: str
    window: str
    condition: dict[str, Any]
    filters: dict[str, Any]
    channels: list[dict[str, Any]]
    evaluate_every: str
    cooldown: str
    tz: str
    store_id: str | None
    muted: bool
    muted_until: datetime | None
    created_at: datetime
    updated_at: datetime
    next_evaluation_at: datetime = Field(description="the next evaluation (the end of its window)")
    last_evaluated_at: datetime | None

    @classmethod
    def of(cls, rule: AlertRule) -> AlertOut:
        return cls(
            **{name: getattr(rule, name) for name in cls.model_fields if name not in ("evaluate_every", "cooldown")},
            evaluate_every=every_text(rule.evaluate_every_seconds),
            cooldown=every_text(rule.cooldown_seconds) if rule.cooldown_seconds else "0s",
        )


class AlertList(BaseModel):
    items: list[AlertOut]
    total: int


class AlertPatch(BaseModel):
    """Any field of a rule; the rest stays as it is."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200, pattern=NAME)
    measure: str | None = None
    window: str | None = None
    condition: Condition | None = None
    filters: dict[str, Any] | None = None
    channels: list[Channel] | None = None
    evaluate_every: str | None = None
    cooldown: str | None = None
    tz: str | None = None
    muted: bool | None = None


class MuteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: AwareDatetime | None = Field(None, description="muted until then, with its offset (default: until unmuted)")


class SubjectOut(BaseModel):
    subject: str | None = Field(description="null: the whole store; else the product id")
    value: float | None
    firing: bool | None = Field(description="null: no value to judge (e.g. a rate without a denominator)")
    details: dict[str, Any] = Field(description="what the condition compared: reference and change, or the band")


class EvaluationOut(BaseModel):
    alert_id: str
    at: datetime = Field(description="the evaluation time: the end of the window")
    window_start: datetime
    window_end: datetime
    outcome: Literal["ok", "firing", "no_data", "error"]
    value: float | None = Field(description="the whole-store value (null for per-product measures)")
    error: str | None
    subjects: list[SubjectOut] = Field(description="every subject (per-product rules: the firing ones)")
    applied: bool = Field(description="whether incidents, events and deliveries followed (not with dry_run)")
    events: list[dict[str, Any]] = Field(description="incidents opened or resolved by this evaluation")

    @classmethod
    def of(cls, evaluation: Evaluation, applied: Applied | None) -> EvaluationOut:
        subjects = [
            SubjectOut(subject=s.subject or None, value=s.value, firing=s.firing, details=s.details)
            for s in evaluation.subjects
            if s.subject == "" or s.firing
        ]
        return cls(
            alert_id=evaluation.alert_id,
            at=evaluation.at,
            window_start=evaluation.window_start,
            window_end=evaluation.window_end,
            outcome=evaluation.outcome,
            value=evaluation.value,
            error=evaluation.error,
            subjects=subjects,
            applied=applied is not None,
            events=[e.payload for e in applied.events] if applied else [],
        )


class IncidentOut(BaseModel):
    incident_id: str
    alert_id: str
    alert_name: str
    measure: str
    measure_label: str
    measure_kind: str = Field(description="money, count, rate (a fraction) or number")
    store_id: str | None
    subject: str | None = Field(description="null: the whole store; else the product id")
    status: Literal["open", "resolved", "closed"] = Field(description="closed: the rule was deleted while open")
    opened_at: datetime
    resolved_at: datetime | None
    value_at_open: float | None
    last_value: float | None
    last_evaluated_at: datetime
    details: dict[str, Any]

    @classmethod
    def of(cls, incident: AlertIncident) -> IncidentOut:
        values = {
            name: getattr(incident, name)
            for name in cls.model_fields
            if name not in ("measure_label", "measure_kind", "subject")
        }
        measure = MEASURES[incident.measure]
        return cls(**values, measure_label=measure.label, measure_kind=measure.kind, subject=incident.subject or None)


class IncidentList(BaseModel):
    items: list[IncidentOut] = Field(description="newest first")
    total: int
    page: int
    page_size: int


class MeasureOut(BaseModel):
    name: str
    label: str
    kind: str
    up_is_good: bool
    per_product: bool
    source: str = Field(description="the endpoint and field whose number it is")


class TemplatesOut(BaseModel):
    templates: dict[str, dict[str, Any]]
    measures: list[MeasureOut]


@alerts.get(
    "/templates", response_model=TemplatesOut, summary="Built-in alert templates and the measures a rule can watch"
)
async def alert_templates() -> TemplatesOut:
    return TemplatesOut(
        templates=TEMPLATES,
        measures=[
            MeasureOut(
                name=m.name,
                label=m.label,
                kind=m.kind,
                up_is_good=m.up_is_good,
                per_product=m.per_product,
                source=m.source,
            )
            for m in MEASURES.values()
        ],
    )


@alerts.post("", status_code=201, response_model=AlertOut, summary="Create an alert rule")
async def create_alert(principal: ReportsKey, service: Service, body: AlertBody) -> AlertOut:
    return AlertOut.of(await service.create_alert(principal, body))


@alerts.get("", response_model=AlertList, summary="Alert rules")
async def list_alerts(principal: ReportsKey, service: Service, store_id: StoreQ = None) -> AlertList:
    rules = await service.list_alerts(principal, store_id)
    return AlertList(items=[AlertOut.of(r) for r in rules], total=len(rules))


@alerts.get("/incidents", response_model=IncidentList, summary="Incident history: every rule's incidents, newest first")
async def list_incidents(
    principal: ReportsKey,
    service: Service,
    alert_id: Annotated[str | None, Query(pattern="^[0-9a-f]{32}$")] = None,
    status: Annotated[Literal[INCIDENT_STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
    store_id: StoreQ = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> IncidentList:
    rows, total = await service.incidents(
        principal, store_id=store_id, alert_id=alert_id, status=status, page=page, page_size=page_size
    )
    return IncidentList(items=[IncidentOut.of(i) for i in rows], total=total, page=page, page_size=page_size)


@alerts.get(
    "/stream",
    response_class=StreamingResponse,
    summary="Incidents as they open and resolve (server-sent events)",
    description="An `incident` event (data: the incident event as JSON, as in the deliveries' `events`) for every "
    "incident opened or resolved in the key's store, from the moment of connection (or after `Last-Event-ID`). "
    "Send the key as `X-API-Key`; read the stream with fetch in browsers.",
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def alert_stream(
    request: Request,
    principal: ReportsKey,
    service: Service,
    settings: SettingsDep,
    store_id: StoreQ = None,
    last_event_id: Annotated[int | None, Header(ge=0, description="resume after this event id")] = None,
) -> StreamingResponse:
    return StreamingResponse(
        service.stream(
            service.store_of(principal, store_id),
            last_event_id,
            request.is_disconnected,
            settings.live_stream_max_seconds,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@alerts.get("/{alert_id}", response_model=AlertOut, summary="One alert rule")
async def get_alert(alert_id: str, principal: ReportsKey, service: Service) -> AlertOut:
    return AlertOut.of(await service.visible_alert(principal, alert_id))


@alerts.patch("/{alert_id}", response_model=AlertOut, summary="Change an alert rule")
async def patch_alert(alert_id: str, principal: ReportsKey, service: Service, body: AlertPatch) -> AlertOut:
    patch = body.model_dump(exclude_unset=True)
    return AlertOut.of(await service.update_alert(principal, alert_id, patch))


@alerts.delete(
    "/{alert_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an alert rule (its incidents and deliveries stay as history)",
)
async def delete_alert(alert_id: str, principal: ReportsKey, service: Service) -> Response:
    await service.delete_alert(principal, alert_id)
    return Response(status_code=204)


@alerts.post("/{alert_id}/mute", response_model=AlertOut, summary="Mute: evaluated and recorded, nothing delivered")
async def mute_alert(
    alert_id: str, principal: ReportsKey, service: Service, body: Annotated[MuteBody | None, Body()] = None
) -> AlertOut:
    return AlertOut.of(await service.mute(principal, alert_id, True, body.until if body else None))


@alerts.post("/{alert_id}/unmute", response_model=AlertOut, summary="Unmute")
async def unmute_alert(alert_id: str, principal: ReportsKey, service: Service) -> AlertOut:
    return AlertOut.of(await service.mute(principal, alert_id, False, None))


class EvaluationRecord(BaseModel):
    at: datetime = Field(description="the evaluation time: the end of its window")
    evaluated_at: datetime = Field(description="when it ran")
    outcome: Literal["ok", "firing", "no_data", "error"]
    value: float | None = Field(description="the whole-store value (null for per-product measures)")
    error: str | None
    details: dict[str, Any] = Field(description="the window and the subjects that fired, as evaluated")


class EvaluationList(BaseModel):
    items: list[EvaluationRecord] = Field(description="newest first")


@alerts.get(
    "/{alert_id}/evaluations",
    response_model=EvaluationList,
    summary="The rule's recent evaluations (kept NOTIFY_EVALUATION_RETENTION_DAYS)",
)
async def list_evaluations(
    alert_id: str,
    principal: ReportsKey,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=1000, description="how many, newest first")] = 100,
) -> EvaluationList:
    rows = await service.evaluations(principal, alert_id, limit)
    return EvaluationList(items=[EvaluationRecord.model_validate(r, from_attributes=True) for r in rows])


@alerts.post(
    "/{alert_id}/evaluate",
    response_model=EvaluationOut,
    summary="Evaluate the rule now (its window ending now) and answer the outcome",
)
async def evaluate_alert(
    alert_id: str,
    principal: ReportsKey,
    service: Service,
    dry_run: Annotated[bool, Query(description="only compute: no incident, event or delivery")] = False,
) -> EvaluationOut:
    evaluation, applied = await service.evaluate(principal, alert_id, apply=not dry_run)
    return EvaluationOut.of(evaluation, applied)


# -- schedules ---------------------------------------------------------------------------------


class ScheduleOut(BaseModel):
    schedule_id: str
    name: str
    report_type: str
    format: str
    parameters: dict[str, Any]
    cron: str
    tz: str
    recipients: list[dict[str, Any]]
    store_id: str | None
    created_at: datetime
    next_run_at: datetime
    last_run_at: datetime | None
    last_report_id: str | None

    @classmethod
    def of(cls, schedule: ReportSchedule) -> ScheduleOut:
        return cls(**{name: getattr(schedule, name) for name in cls.model_fields})


class ScheduleList(BaseModel):
    items: list[ScheduleOut]
    total: int


class RunOut(BaseModel):
    report_id: str
    status_url: str


@schedules.post("", status_code=201, response_model=ScheduleOut, summary="Schedule a report")
async def create_schedule(principal: ReportsKey, service: Service, body: ScheduleBody) -> ScheduleOut:
    return ScheduleOut.of(await service.create_schedule(principal, body))


@schedules.get("", response_model=ScheduleList, summary="Report schedules")
async def list_schedules(principal: ReportsKey, service: Service, store_id: StoreQ = None) -> ScheduleList:
    rows = await service.list_schedules(principal, store_id)
    return ScheduleList(items=[ScheduleOut.of(s) for s in rows], total=len(rows))


@schedules.get("/{schedule_id}", response_model=ScheduleOut, summary="One report schedule")
async def get_schedule(schedule_id: str, principal: ReportsKey, service: Service) -> ScheduleOut:
    return ScheduleOut.of(await service.visible_schedule(principal, schedule_id))


@schedules.delete("/{schedule_id}", status_code=204, response_class=Response, summary="Delete a report schedule")
async def delete_schedule(schedule_id: str, principal: ReportsKey, service: Service) -> Response:
    await service.delete_schedule(principal, schedule_id)
    return Response(status_code=204)


@schedules.post("/{schedule_id}/run", status_code=202, response_model=RunOut, summary="Run the schedule now")
async def run_schedule(schedule_id: str, request: Request, principal: ReportsKey, service: Service) -> RunOut:
    report_id = await service.run_schedule(principal, schedule_id)
    return RunOut(report_id=report_id, status_url=str(request.url_for("report_status", report_id=report_id)))


# -- deliveries --------------------------------------------------------------------------------


class DeliveryOut(BaseModel):
    delivery_id: str
    kind: Literal["alert", "report", "report_failed"]
    channel: Literal["email", "webhook"]
    target: str
    status: Literal[DELIVERY_STATUSES]  # type: ignore[valid-type]
    attempts: int
    error: str | None = Field(description="the last failed attempt's error (kept once delivered)")
    history: list[dict[str, Any]] = Field(
        description="every attempt: {attempt, at, outcome (delivered, retry, failed), error}"
    )
    alert_id: str | None
    schedule_id: str | None
    report_id: str | None
    store_id: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls(**{name: getattr(delivery, name) for name in cls.model_fields})


class DeliveryList(BaseModel):
    items: list[DeliveryOut] = Field(description="newest first")
    total: int
    page: int
    page_size: int


@deliveries.get("", response_model=DeliveryList, summary="Every delivery and its attempts")
async def list_deliveries(
    principal: ReportsKey,
    service: Service,
    alert_id: Annotated[str | None, Query(pattern="^[0-9a-f]{32}$")] = None,
    schedule_id: Annotated[str | None, Query(pattern="^[0-9a-f]{32}$")] = None,
    report_id: Annotated[str | None, Query(pattern="^[0-9a-f]{32}$")] = None,
    status: Annotated[Literal[DELIVERY_STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
    store_id: StoreQ = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> DeliveryList:
    rows, total = await service.deliveries(
        principal,
        alert_id=alert_id,
        schedule_id=schedule_id,
        report_id=report_id,
        status=status,
        store_id=store_id,
        page=page,
        page_size=page_size,
    )
    return DeliveryList(items=[DeliveryOut.of(d) for d in rows], total=total, page=page, page_size=page_size)


@deliveries.get("/{delivery_id}", response_model=DeliveryOut, summary="One delivery")
async def get_delivery(delivery_id: str, principal: ReportsKey, service: Service) -> DeliveryOut:
    return DeliveryOut.of(await service.visible_delivery(principal, delivery_id))


@deliveries.post("/{delivery_id}/retry", response_model=DeliveryOut, summary="Try a failed delivery again")
async def retry_delivery(delivery_id: str, principal: ReportsKey, service: Service) -> DeliveryOut:
    return DeliveryOut.of(await service.retry_delivery(principal, delivery_id))
