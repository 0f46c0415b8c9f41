"""What the reports service's routes depend on, beside :mod:`shared.dependencies`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.reports.settings import ReportsSettings
from shared.dependencies import settings_of

get_settings = settings_of(ReportsSettings)
Settings = Annotated[ReportsSettings, Depends(get_settings)]
"""The reports service's settings: ``async def route(..., settings: Settings)``."""
