"""Subscriptions: who asked for which events, by which channel."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import sqlalchemy as sa

from services.notify.adapters.db import subscriptions
from services.notify.domain.model import SignatureScheme, Subscription
from shared.mapping import RowMapping
from shared.uow import Repository

SUBSCRIPTIONS = RowMapping(Subscription, subscriptions)


class SubscriptionRepository(Repository):
    async def add(self, subscription: Subscription) -> None:
        await self.session.execute(
            subscriptions.insert().values(**SUBSCRIPTIONS.values(subscription))
        )

    async def get(self, subscription_id: str) -> Subscription | None:
        row = (
            await self.session.execute(
                sa.select(subscriptions).where(subscriptions.c.id == subscription_id)
            )
        ).first()
        return SUBSCRIPTIONS.from_row(row) if row else None

    async def find(self, unit_code: str | None = None) -> list[Subscription]:
        query = sa.select(subscriptions).order_by(subscriptions.c.created_at, subscriptions.c.id)
        if unit_code:
            query = query.where(subscriptions.c.unit_code == unit_code)
        return [SUBSCRIPTIONS.from_row(row) for row in await self.session.execute(query)]

    async def active_on_path(self, unit_path: Sequence[str]) -> list[Subscription]:
        """Active subscriptions to a unit on the path: the candidates for an event there."""
        query = (
            sa.select(subscriptions)
            .where(subscriptions.c.active.is_(True), subscriptions.c.unit_code.in_(unit_path))
            .order_by(subscriptions.c.created_at, subscriptions.c.id)
        )
        return [SUBSCRIPTIONS.from_row(row) for row in await self.session.execute(query)]

    async def active(self, limit: int) -> list[Subscription]:
        """Every active subscription, at most ``limit`` (the caller's cache asks one more
        than it keeps, to know when there are too many to keep)."""
        query = (
            sa.select(subscriptions)
            .where(subscriptions.c.active.is_(True))
            .order_by(subscriptions.c.created_at, subscriptions.c.id)
            .limit(limit)
        )
        return [SUBSCRIPTIONS.from_row(row) for row in await self.session.execute(query)]

    async def change_signature(
        self, subscription_id: str, secret: str, scheme: SignatureScheme
    ) -> bool:
        result = await self.session.execute(
            subscriptions.update()
            .where(subscriptions.c.id == subscription_id)
            .values(secret=secret, signature_scheme=scheme.value)
        )
        return bool(getattr(result, "rowcount", 0))

    async def signing(self, ids: Collection[str]) -> dict[str, tuple[str, SignatureScheme]]:
        """Each webhook subscription's HMAC secret and signature scheme (those with one)."""
        columns = [subscriptions.c.id, subscriptions.c.secret, subscriptions.c.signature_scheme]
        rows = await self.session.execute(sa.select(*columns).where(subscriptions.c.id.in_(ids)))
        return {
            row.id: (str(row.secret), SignatureScheme(row.signature_scheme))
            for row in rows
            if row.secret
        }

    async def deactivate(self, subscription_id: str) -> bool:
        result = await self.session.execute(
            subscriptions.update().where(subscriptions.c.id == subscription_id).values(active=False)
        )
        return bool(getattr(result, "rowcount", 0))
