"""Composition root of the portal: settings in, the web app out.

The portal owns no business state and no database: it has no outbox, no inbox and no
durable consumer, so it does not use :class:`shared.service.ServiceDefinition`'s runtime;
it serves pages, calls the services' APIs and listens to the bus for live updates."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from services.portal.entrypoints.http import create_portal_app
from services.portal.settings import PortalSettings
from shared.http import serve
from shared.logging import configure_logging


@dataclass(frozen=True)
class PortalDefinition:
    name: str = "portal"

    def settings(self) -> PortalSettings:
        return PortalSettings()

    def app(self, settings: PortalSettings) -> FastAPI:
        return create_portal_app(settings)

    def serve(self, settings: PortalSettings | None = None) -> None:
        settings = settings or self.settings()
        configure_logging(self.name, settings.log_level)
        serve(self.app(settings), settings.http_host, settings.http_port)


SERVICE = PortalDefinition()
