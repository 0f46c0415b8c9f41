"""Units as notify knows them from the registry's events: names, paths, addresses, tags."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from services.notify.adapters.db import contacts, json_text_contains
from services.notify.domain.model import Contact
from shared.direct import fetch
from shared.mapping import RowMapping
from shared.uow import Repository

CONTACTS = RowMapping(Contact, contacts, read={"tags": lambda tags: tuple(tags or ())})
BY_CODES = sa.select(contacts).where(
    contacts.c.unit_code.in_(sa.bindparam("codes", expanding=True))
)
"""Read for every event: built once, not per event (see ``deliveries.MARK_SENT``)."""
BY_CODES_ARRAY = sa.select(contacts).where(
    contacts.c.unit_code == sa.any_(sa.bindparam("codes", type_=postgresql.ARRAY(sa.String)))
)
"""PostgreSQL: the codes as one array, so the statement's SQL is fixed and goes to the
driver directly (:func:`shared.direct.fetch`)."""


class ContactRepository(Repository):
    async def get(self, unit_code: str) -> Contact | None:
        found = await self.get_many([unit_code])
        return found.get(unit_code)

    async def get_many(self, unit_codes: Iterable[str]) -> dict[str, Contact]:
        codes = sorted(set(unit_codes))
        if not codes:
            return {}
        on_postgres = self.session.get_bind().dialect.name == "postgresql"
        rows = await fetch(
            self.session, BY_CODES_ARRAY if on_postgres else BY_CODES, {"codes": codes}
        )
        return {row.unit_code: CONTACTS.from_row(row) for row in rows}

    async def with_tag(self, tag: str) -> list[Contact]:
        """Units carrying ``tag``: a coarse text match in SQL, the exact test here."""
        query = (
            sa.select(contacts)
            .where(json_text_contains(contacts.c.tags, tag))
            .order_by(contacts.c.unit_code)
        )
        found = [CONTACTS.from_row(row) for row in await self.session.execute(query)]
        return [c for c in found if tag in c.tags]

    async def save(self, contact: Contact, now: datetime) -> None:
        values = CONTACTS.values(contact, updated_at=now)
        updated = await self.session.execute(
            contacts.update().where(contacts.c.unit_code == contact.unit_code).values(**values)
        )
        if not getattr(updated, "rowcount", 0):
            await self.session.execute(contacts.insert().values(**values))
