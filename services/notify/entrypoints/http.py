"""HTTP API of the notify service: the delivery log."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.notify.adapters.db import DeliveryRepository
from services.notify.domain.model import Delivery
from shared.runtime import Runtime
from shared.units import UnitCode


class DeliveryOut(BaseModel):
    key: str
    event_id: str
    event_type: str
    channel: str
    recipient: str
    unit_code: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def _out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        key=delivery.key,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        channel=delivery.channel.value,
        recipient=delivery.recipient,
        unit_code=delivery.unit_code,
        subject=delivery.subject,
        status=delivery.status.value,
        attempts=delivery.attempts,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )


def build_routes(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    @router.get("/deliveries", response_model=list[DeliveryOut], tags=["deliveries"])
    async def list_deliveries(
        unit: UnitCode | None = None,
        event_type: str | None = Query(None, max_length=128),
        status: str | None = Query(None, pattern="^(pending|sending|sent|failed)$"),
        since: datetime | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[DeliveryOut]:
        async with runtime.uow() as uow:
            found = await DeliveryRepository(uow.session).search(
                unit_code=unit, event_type=event_type, status=status, since=since, limit=limit
            )
        return [_out(d) for d in found]

    return router
