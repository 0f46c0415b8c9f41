"""What the notify API reads: subscriptions and the delivery log, as far as the caller may."""

from __future__ import annotations

from services.notify.adapters.contacts import ContactRepository
from services.notify.adapters.deliveries import DeliveryFilter, DeliveryRepository
from services.notify.adapters.subscriptions import SubscriptionRepository
from services.notify.domain.model import Delivery, Subscription
from shared.auth import Forbidden, Principal, Role
from shared.errors import Missing
from shared.uow import UnitOfWork


def not_an_integrator(caller: Principal, what: str) -> None:
    """An integrator reads events (on the bus), not mailboxes: no addresses, no messages."""
    if caller.role is Role.INTEGRATOR:
        raise Forbidden(f"an integrator token reads events, not {what}")


def may_read_body(caller: Principal, delivery: Delivery) -> None:
    """A message as sent is the recipient's: its own unit's tokens, and administrators
    above it, read it; others in the subtree see only the log's entry."""
    if caller.unit_code in ("*", delivery.unit_code):
        return
    if caller.role is Role.ADMINISTRATOR and caller.covers(delivery.unit_path):
        return
    raise Forbidden(
        f"the message of delivery {delivery.key} is for unit {delivery.unit_code}: only its "
        "own tokens and administrators above it read it"
    )


async def unit_paths(uow: UnitOfWork, codes: set[str]) -> dict[str, list[str]]:
    """Each unit's path, as the registry's events told notify (a unit not heard of yet is
    only its own)."""
    contacts = await uow.repository(ContactRepository).get_many(sorted(codes))
    return {code: contacts[code].unit_path if code in contacts else [code] for code in codes}


async def subscriptions(
    uow: UnitOfWork, unit: str | None, *, caller: Principal
) -> list[Subscription]:
    not_an_integrator(caller, "subscriptions")
    found = await uow.repository(SubscriptionRepository).find(unit)
    paths = await unit_paths(uow, {s.unit_code for s in found})
    return [s for s in found if caller.covers(paths[s.unit_code])]


async def subscription(subscription_id: str, uow: UnitOfWork, *, caller: Principal) -> Subscription:
    not_an_integrator(caller, "subscriptions")
    found = await uow.repository(SubscriptionRepository).get(subscription_id)
    if found is None:
        raise Missing(f"no subscription {subscription_id}")
    path = (await unit_paths(uow, {found.unit_code}))[found.unit_code]
    caller.require_read(path, None, f"subscription {subscription_id}")
    return found


async def deliveries(
    where: DeliveryFilter, uow: UnitOfWork, *, caller: Principal
) -> list[Delivery]:
    not_an_integrator(caller, "the delivery log")
    found = await uow.repository(DeliveryRepository).search(where)
    return [d for d in found if caller.covers(d.unit_path)]


async def delivery(key: str, uow: UnitOfWork, *, caller: Principal) -> Delivery:
    """One delivery with the message as sent, for its recipient's unit and those above."""
    not_an_integrator(caller, "the delivery log")
    found = await uow.repository(DeliveryRepository).get(key)
    if found is None:
        raise Missing(f"no delivery {key}")
    may_read_body(caller, found)
    return found
