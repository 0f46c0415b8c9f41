"""What every repository of the reports service does with the unit of work's session: read
one row by its id, locked or not, and insert an object through its table's mapping."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.mapping import RowMapping

T = TypeVar("T")


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _row_by_id(self, table: sa.Table, key: str, *, lock: bool = False) -> Any | None:
        """The row of ``table`` whose ``id`` is ``key``, or None; ``lock``: locked until the
        unit of work ends (a command changes what it read)."""
        query = sa.select(table).where(table.c.id == key)
        return (await self.session.execute(query.with_for_update() if lock else query)).first()

    async def _insert(self, mapping: RowMapping[T], obj: T, **extra: Any) -> None:
        """One row of ``mapping``'s table for ``obj`` (``extra``: columns it has no field for)."""
        await self.session.execute(mapping.table.insert().values(**mapping.values(obj, **extra)))
