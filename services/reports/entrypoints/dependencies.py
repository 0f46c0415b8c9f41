"""What the reports service's routes depend on, beside :mod:`shared.dependencies`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request

from services.reports.adapters.storage import AttachmentStore
from services.reports.handlers.intake import Attach, AttachmentRules
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


@dataclass(frozen=True)
class Upload:
    """A file as an attachment route receives it: the name its path gives, the type its
    request says, and its bytes."""

    filename: str
    content_type: str
    content: bytes

    def attached_to(self, report_id: str) -> Attach:
        """The command attaching it (to a report, or to a conference: its id)."""
        return Attach(report_id, self.filename, self.content_type, self.content)


async def upload(filename: str, request: Request, content: AttachmentContent) -> Upload:
    # async: a plain def dependency costs a worker-thread hop per request.
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    return Upload(filename, content_type, content)


Uploaded = Annotated[Upload, Depends(upload)]
"""The file of a route whose path ends ``/{filename}`` (declare it after ``Caller``: the
body is read once the caller is known, and before ``Uow``)."""


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
