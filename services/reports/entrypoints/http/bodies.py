"""What every request body of the reports API shares: its configuration, and how it becomes
the handler's command."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

C = TypeVar("C")


def refusing_extra(example: dict[str, Any] | None = None) -> ConfigDict:
    """A request body's configuration: a field the API does not know is refused (a misspelt
    one must not be dropped silently), and ``example`` is shown in the API's document."""
    if example is None:
        return ConfigDict(extra="forbid")
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


def command_of(command_type: type[C], body: BaseModel, **values: Any) -> C:
    """The handler's command for a request body: each of the command's fields from the
    body's field of the same name, except those given in ``values`` (from the path, or
    converted)."""
    names = [f.name for f in dataclasses.fields(command_type)]  # type: ignore[arg-type]
    found = {n: getattr(body, n) for n in names if n not in values and n in type(body).model_fields}
    return command_type(**found, **values)
