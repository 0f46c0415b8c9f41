"""HTTP API of the notify service: subscriptions and the delivery log."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from services.notify.adapters.deliveries import DeliveryFilter
from services.notify.domain.model import (
    Delivery,
    DeliveryStatus,
    SignatureScheme,
    Subscription,
)
from services.notify.domain.rules import event_type_of
from services.notify.entrypoints.dependencies import Settings
from services.notify.handlers import delivery as delivery_handlers
from services.notify.handlers import queries
from services.notify.handlers import subscriptions as handlers
from shared import openapi
from shared.dependencies import Uow
from shared.events import Channel
from shared.limits import Identifier, PrintableText
from shared.mapping import shown
from shared.runtime import Runtime
from shared.security import Caller
from shared.units import UnitCode

STATUSES = "^(" + "|".join(s.value for s in DeliveryStatus) + ")$"


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "unit_code": "H886",
                    "include_subtree": True,
                    "event_types": ["report.submitted", "deadline.missed"],
                    "channel": "webhook",
                    "address": "https://egov.anbinh.demo.gov.vn/hooks/qcdc",
                    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                }
            ]
        },
    )

    unit_code: UnitCode
    include_subtree: bool = False
    event_types: list[Identifier] = Field(
        min_length=1, max_length=64, description="e.g. report.submitted or its CloudEvents type"
    )
    channel: Channel
    address: PrintableText = Field(
        min_length=3, max_length=2048, description="E-mail or webhook URL."
    )
    secret: PrintableText | None = Field(
        None,
        max_length=256,
        description="Webhooks: the signing secret. Standard scheme: `whsec_` followed by "
        "base64 of 24 to 64 random bytes; legacy scheme: 16+ characters.",
    )
    digest: bool = Field(False, description="E-mail: one daily digest instead of each message.")
    signature_scheme: SignatureScheme = Field(
        SignatureScheme.STANDARD,
        description="Webhooks: `standard` (Standard Webhooks headers) or `legacy` "
        "(X-QCDC-Signature, kept for systems built on it).",
    )


class SignatureIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]},
    )

    secret: PrintableText = Field(
        max_length=256, description="`whsec_` followed by base64 of 24 to 64 random bytes."
    )


class SubscriptionOut(BaseModel):
    """A subscription as shown: never its secret."""

    id: str
    unit_code: str
    include_subtree: bool
    event_types: list[str]
    channel: str
    address: str
    has_secret: bool
    signature_scheme: str
    digest: bool
    active: bool
    created_at: datetime


class DeliveryOut(BaseModel):
    key: str
    event_id: str
    event_type: str
    channel: str
    recipient: str
    unit_code: str
    unit_path: list[str]
    subject: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    subscription_id: str | None
    digest: bool
    digested_in: str | None


class DeliveryDetail(DeliveryOut):
    text: str
    html: str
    payload: str | None


def _subscription_out(subscription: Subscription) -> SubscriptionOut:
    return shown(SubscriptionOut, subscription, has_secret=bool(subscription.secret))


def _out(delivery: Delivery) -> DeliveryOut:
    return shown(DeliveryOut, delivery)


def _detail(delivery: Delivery) -> DeliveryDetail:
    return shown(DeliveryDetail, delivery)


router = APIRouter()


@router.post(
    "/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionOut,
    tags=["subscriptions"],
)
async def create_subscription(
    body: SubscriptionIn, caller: Caller, settings: Settings, uow: Uow
) -> SubscriptionOut:
    command = handlers.NewSubscription(**body.model_dump())
    created = await handlers.subscribe(
        command, uow, allowlist=settings.webhook_allowlist, caller=caller
    )
    return _subscription_out(created)


@router.put(
    "/subscriptions/{subscription_id}/signature",
    response_model=SubscriptionOut,
    tags=["subscriptions"],
    summary="Sign this webhook by the Standard Webhooks scheme, with a new whsec_ secret",
)
async def use_standard_signature(
    subscription_id: Identifier, body: SignatureIn, caller: Caller, uow: Uow
) -> SubscriptionOut:
    queries.not_an_integrator(caller, "subscriptions")
    changed = await handlers.use_standard_signature(
        subscription_id, body.secret, uow, caller=caller
    )
    return _subscription_out(changed)


@router.get("/subscriptions", response_model=list[SubscriptionOut], tags=["subscriptions"])
async def list_subscriptions(
    caller: Caller, unit: UnitCode | None = None, *, uow: Uow
) -> list[SubscriptionOut]:
    return [_subscription_out(s) for s in await queries.subscriptions(uow, unit, caller=caller)]


@router.get(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    tags=["subscriptions"],
)
async def get_subscription(
    subscription_id: Identifier, caller: Caller, uow: Uow
) -> SubscriptionOut:
    return _subscription_out(await queries.subscription(subscription_id, uow, caller=caller))


@router.delete(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    tags=["subscriptions"],
    summary="Deactivate a subscription (kept for the delivery log)",
)
async def delete_subscription(
    subscription_id: Identifier, caller: Caller, uow: Uow
) -> SubscriptionOut:
    return _subscription_out(await handlers.unsubscribe(subscription_id, uow, caller=caller))


@router.get("/deliveries", response_model=list[DeliveryOut], tags=["deliveries"])
async def list_deliveries(
    unit: UnitCode | None = Query(None, description="The unit or any unit below it."),
    event_type: Identifier | None = None,
    status: str | None = Query(None, pattern=STATUSES),
    channel: Channel | None = None,
    since: datetime | None = Query(None, description="Created at or after."),
    until: datetime | None = Query(None, description="Created before."),
    limit: int = Query(100, ge=1, le=1000),
    *,
    caller: Caller,
    uow: Uow,
) -> list[DeliveryOut]:
    where = DeliveryFilter(
        # The caller's own subtree unless it names a unit (then only what it covers).
        unit_code=unit or (None if caller.unit_code == "*" else caller.unit_code),
        event_type=_event_type(event_type),
        status=status,
        channel=channel.value if channel else None,
        since=since,
        until=until,
        limit=limit,
    )
    return [_out(d) for d in await queries.deliveries(where, uow, caller=caller)]


@router.get("/deliveries/{key}", response_model=DeliveryDetail, tags=["deliveries"])
async def get_delivery(key: Identifier, caller: Caller, uow: Uow) -> DeliveryDetail:
    return _detail(await queries.delivery(key, uow, caller=caller))


@router.post(
    "/deliveries/{key}/redeliver",
    response_model=DeliveryOut,
    tags=["deliveries"],
    summary="Send a failed delivery again, with a fresh budget of attempts",
    responses=openapi.conflict("The delivery is not a failed one."),
)
async def redeliver(key: Identifier, caller: Caller, uow: Uow) -> DeliveryOut:
    return _out(await delivery_handlers.redeliver(key, uow, caller=caller))


def build_routes(runtime: Runtime) -> APIRouter:
    return router


def _event_type(name: str | None) -> str | None:
    """Short names (report.submitted) work as filters too."""
    if not name:
        return None
    try:
        return event_type_of(name)
    except ValueError:
        return name
