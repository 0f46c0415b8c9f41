"""What the notify service's routes depend on, beside :mod:`shared.dependencies`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.notify.settings import NotifySettings
from shared.dependencies import settings_of

get_settings = settings_of(NotifySettings)
Settings = Annotated[NotifySettings, Depends(get_settings)]
"""The notify service's settings: ``async def route(..., settings: Settings)``."""
