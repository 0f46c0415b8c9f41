"""A service's definition: the parts that differ between services, and how they are wired.

Each service's ``bootstrap.py`` declares one :class:`ServiceDefinition`; this is the
composition root's shared half, so the three services are wired the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from fastapi import APIRouter, FastAPI

from shared.bus.consumer import ConsumerSpec
from shared.clock import Clock
from shared.db import MessagingTables, SecurityTables
from shared.files import keep_private
from shared.http import audit_api, create_app, serve
from shared.logging import configure_logging
from shared.runtime import BackgroundJob, Runtime
from shared.security import check_open_mode, oidc_verifier
from shared.settings import ServiceSettings
from shared.tracing import Tracing

__all__ = ["BackgroundJob", "ServiceDefinition"]


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    title: str
    description: str
    settings_type: type[ServiceSettings]
    messaging: MessagingTables
    migrations: Path
    consumer_specs: Callable[[Any], list[ConsumerSpec]]
    routes: Callable[[Runtime], APIRouter]
    background_jobs: tuple[BackgroundJob, ...] = field(default=())
    responders: tuple[Callable[[Runtime], None], ...] = field(default=())
    """Request-reply subscribers, registered on the runtime's broker."""
    security: SecurityTables | None = None
    """API tokens and audit log tables: the service's HTTP API requires authentication."""
    refine_openapi: Callable[[dict[str, Any], Any], None] | None = None
    """What the OpenAPI document says that depends on this instance's settings (the routes
    are module-level, shared by every app): called with the document and the settings."""

    @classmethod
    def with_tables(cls, tables: ModuleType, *, name: str, **parts: Any) -> ServiceDefinition:
        """The service ``name`` (API title "QCDC <name>") whose tables module, its
        ``adapters/db.py``, declares ``messaging`` and ``security``, with the migrations in
        the folder beside it."""
        if tables.__file__ is None:
            raise ValueError(f"{tables.__name__} is not a file: its migrations cannot be found")
        return cls(
            name=name,
            title=f"QCDC {name}",
            messaging=tables.messaging,
            security=tables.security,
            migrations=Path(tables.__file__).parent / "migrations",
            **parts,
        )

    def settings(self) -> ServiceSettings:
        return self.settings_type()

    def runtime(
        self,
        settings: ServiceSettings | None = None,
        clock: Clock | None = None,
        tracing: Tracing | None = None,
    ) -> Runtime:
        settings = settings or self.settings()
        runtime = Runtime(
            self.name,
            settings,
            self.messaging,
            self.migrations,
            consumers=self.consumer_specs(settings),
            clock=clock,
            background_jobs=list(self.background_jobs),
            security=self.security,
            tracing=tracing,
        )
        for register in self.responders:
            register(runtime)
        return runtime

    def app(self, runtime: Runtime) -> FastAPI:
        # Every route is behind the authentication middleware: the caller is identified
        # (or refused) before any route runs, whatever the route declares.
        app = create_app(runtime, title=self.title, description=self.description)
        app.state.oidc = oidc_verifier(runtime.settings) if self.security is not None else None
        app.include_router(self.routes(runtime))
        if self.refine_openapi is not None:
            refine, settings = self.refine_openapi, runtime.settings
            app.state.refine_openapi = lambda document: refine(document, settings)
        if self.security is not None:
            app.include_router(audit_api)
        return app

    @asynccontextmanager
    async def offline(self, settings: ServiceSettings | None = None) -> AsyncIterator[Runtime]:
        """The service's database, migrated, without the bus: for CLI commands. Events they
        cause wait in the outbox until the running service's relay publishes them."""
        runtime = self.runtime(settings)
        await runtime.migrate()
        try:
            yield runtime
        finally:
            await runtime.engine.dispose()

    def serve(self, settings: ServiceSettings | None = None) -> None:
        settings = settings or self.settings()
        keep_private()
        configure_logging(self.name, settings.log_level)
        check_open_mode(settings, settings.http_host)
        runtime = self.runtime(settings)
        serve(self.app(runtime), settings.http_host, settings.http_port)
