"""FastAPI dependencies that every service's routes declare.

Routes are defined at module level (``router = APIRouter()``) and name what they depend on
as arguments, so a reader sees it and a test can replace it with
``app.dependency_overrides``. The caller is :data:`shared.security.Caller`.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from shared.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    """The service's runtime, set on the app by :func:`shared.http.create_app`."""
    return cast(Runtime, request.app.state.runtime)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
"""A route's runtime: ``async def route(..., runtime: RuntimeDep)``."""
