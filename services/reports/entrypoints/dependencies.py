"""What the reports service's routes depend on, beside :mod:`shared.dependencies`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request

from services.reports.adapters.storage import AttachmentStore
from services.reports.handlers.intake import AttachmentRules
from services.reports.settings import ReportsSettings
from shared.dependencies import settings_of
from shared.limits import read_limited

get_settings = settings_of(ReportsSettings)
Settings = Annotated[ReportsSettings, Depends(get_settings)]
"""The reports service's settings: ``async def route(..., settings: Settings)``."""


async def attachment_rules(settings: Settings) -> AttachmentRules:
    return AttachmentRules(settings.attachment_max_bytes, tuple(settings.attachment_types))


async def attachment_store(settings: Settings) -> AttachmentStore:
    return AttachmentStore(Path(settings.data_dir) / "attachments")


Rules = Annotated[AttachmentRules, Depends(attachment_rules)]
"""The size and types an attached file may have (a report's file, a conference's minutes)."""
Store = Annotated[AttachmentStore, Depends(attachment_store)]
"""Where attached files are kept."""


async def attachment_content(request: Request, rules: Rules) -> bytes:
    """The file, read before the route's unit of work opens (declare it before ``Uow``)."""
    return await read_limited(request, rules.max_bytes)


AttachmentContent = Annotated[bytes, Depends(attachment_content)]
"""The raw body of an attachment route, within :data:`Rules`' size."""


def attachment_body(settings: ReportsSettings) -> dict[str, Any]:
    """The attachment route's request body in OpenAPI: the raw bytes, of the types this
    instance accepts (a report's attachments, a conference's minutes;
    ``refine_openapi`` says each instance's own)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in settings.attachment_types
            },
        },
    }
