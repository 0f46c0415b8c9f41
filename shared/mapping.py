"""Rows and domain objects, mapped once per table: no repository copies fields by hand.

A :class:`RowMapping` pairs a domain dataclass with a table. It reads the dataclass's fields
and their types once, and from them converts both ways: a column holding an enum's value
becomes the enum, a JSON list becomes the tuple or list the field declares, a JSON object a
fresh dict, a JSON object the pydantic model a field declares; and back (an enum to its
value, a tuple to a list, a model to its JSON). Columns the dataclass has
no field for are left out when reading (``opened_at``); fields the table has no column for
take their defaults (``events``). A column whose stored value is not simply a field's (an
obligation's ``next_step_at`` is when the clock next looks at it, not the field) is given
by ``written``::

    OBLIGATIONS = RowMapping(Obligation, obligations,
                             written={"next_step_at": lambda o: o.on_the_clock_at})
    obligation = OBLIGATIONS.from_row(row)           # a row of sa.select(obligations, …)
    await session.execute(obligations.insert().values(**OBLIGATIONS.values(obligation)))

Reading is by position (the table's columns first, in its order, as ``sa.select(table)``
gives them): a repository converting a hundred thousand rows in a pass pays no lookup by
name; :meth:`RowMapping.from_mapping` reads by name, for rows of other shapes.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import pydantic
import sqlalchemy as sa

T = TypeVar("T")
Convert = Callable[[Any], Any]


def _reader(hint: Any) -> Convert | None:
    """How a stored value becomes the field's type (NULL stays None); None: as it is."""
    convert = _converter(hint)
    if convert is None:
        return None
    return lambda value: None if value is None else convert(value)


def _nested(hint: Any) -> bool:
    """The type holds dataclasses, models or enums inside containers: JSON, read and
    written by pydantic (a plan's schedule entries, its assignee rule, its legal basis)."""
    if dataclasses.is_dataclass(hint):
        return True
    return any(
        _nested(arg) or (isinstance(arg, type) and issubclass(arg, pydantic.BaseModel | enum.Enum))
        for arg in typing.get_args(hint)
    )


def _converter(hint: Any) -> Convert | None:
    if _nested(hint):
        return pydantic.TypeAdapter(hint).validate_python
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _converter(inner[0]) if len(inner) == 1 else None
    if isinstance(hint, type) and issubclass(hint, pydantic.BaseModel):
        return hint.model_validate
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        members = {member.value: member for member in hint}
        return members.__getitem__
    if origin is tuple or hint is tuple:
        return tuple
    if origin is list or hint is list:
        return list
    if origin is dict or hint is dict:
        return dict
    return None


def _writer(hint: Any) -> Convert:
    """How a field's value becomes what its column stores."""
    if _nested(hint):
        adapter = pydantic.TypeAdapter(hint)
        return lambda value: adapter.dump_python(value, mode="json")
    return _stored


def _stored(value: Any) -> Any:
    """A field's value as a column stores it."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    return value


class RowMapping(Generic[T]):
    """How one dataclass maps to one table (see the module's documentation)."""

    def __init__(
        self,
        cls: type[T],
        table: sa.Table,
        *,
        renamed: Mapping[str, str] | None = None,
        written: Mapping[str, Callable[[T], Any]] | None = None,
        read: Mapping[str, Convert] | None = None,
        given: tuple[str, ...] = (),
        packed: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        """``renamed``: column → field where the names differ; ``written``: column → how
        its value comes from the object (instead of the field of its name); ``read``:
        field → conversion of the stored value (NULL included), where the field's type does
        not say it; ``packed``: a JSON column → the fields it holds as one object (a
        field missing from it, or null, takes its default); ``given``: fields
        without a column that the reader passes (``from_row(row, history=…)``)."""
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} is not a dataclass")
        self.cls = cls
        self.table = table
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        renamed = dict(renamed or {})
        read = dict(read or {})
        self._written = dict(written or {})
        self._plan: list[tuple[str, int, Convert | None]] = []
        self._columns: list[tuple[str, str, Convert]] = []
        self._packed: list[tuple[int, str, list[tuple[str, Convert, Convert]]]] = []
        packed = dict(packed or {})
        for index, column in enumerate(table.columns):
            if column.name in packed:
                parts = [
                    (
                        name,
                        read.get(name) or _converter(hints[name]) or (lambda v: v),
                        _writer(hints[name]),
                    )
                    for name in packed[column.name]
                ]
                self._packed.append((index, column.name, parts))
                continue
            name = renamed.get(column.name, column.name)
            if name not in fields:
                continue
            self._plan.append((name, index, read.get(name, _reader(hints[name]))))
            self._columns.append((column.name, name, _writer(hints[name])))
        unpacked = {name for _, _, parts in self._packed for name, _, _ in parts}
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.init
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
            and f.name not in {name for name, _, _ in self._plan}
            and f.name not in given
            and f.name not in unpacked
        ]
        if missing:
            raise TypeError(f"{table.name} has no column for {cls.__name__}.{missing[0]}")
        self._from_row = self._compiled_reader()

    def _compiled_reader(self) -> Callable[..., T] | None:
        """``from_row`` as one generated function (as ``dataclasses`` generates
        ``__init__``): no dict built per row, no loop over the columns. The deadline clock
        reads a hundred thousand obligations in a pass. None where columns are packed."""
        if self._packed:
            return None
        scope: dict[str, Any] = {"cls": self.cls}
        arguments = []
        for number, (name, index, convert) in enumerate(self._plan):
            if convert is None:
                arguments.append(f"{name}=row[{index}]")
            else:
                scope[f"convert_{number}"] = convert
                arguments.append(f"{name}=convert_{number}(row[{index}])")
        source = f"def from_row(row, **given):\n    return cls({', '.join(arguments)}, **given)\n"
        exec(source, scope)  # the names and indexes of this mapping only
        reader: Callable[..., T] = scope["from_row"]
        return reader

    def from_row(self, row: Any, **given: Any) -> T:
        """The object of a row whose first columns are the table's, in its order."""
        if self._from_row is not None:
            return self._from_row(row, **given)
        return self.cls(
            **{
                name: row[index] if convert is None else convert(row[index])
                for name, index, convert in self._plan
            },
            **self._unpacked(row),
            **given,
        )

    def _unpacked(self, row: Any) -> dict[str, Any]:
        return self._unpack([(parts, row[index]) for index, _column, parts in self._packed])

    def _unpacked_by_name(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return self._unpack([(parts, row[column]) for _index, column, parts in self._packed])

    @staticmethod
    def _unpack(packs: list[tuple[list[tuple[str, Convert, Convert]], Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for parts, held in packs:
            held = held or {}
            for name, convert, _write in parts:
                if held.get(name) is not None:
                    found[name] = convert(held[name])
        return found

    def from_mapping(self, row: Mapping[str, Any] | Any, **given: Any) -> T:
        """The object of a row read by column name (a ``RowMapping`` or a ``Row``)."""
        found = row if isinstance(row, Mapping) else row._mapping
        columns = [c.name for c in self.table.columns]
        return self.cls(
            **{
                name: found[columns[index]] if convert is None else convert(found[columns[index]])
                for name, index, convert in self._plan
            },
            **self._unpacked_by_name(found),
            **given,
        )

    def values(self, obj: T, **extra: Any) -> dict[str, Any]:
        """The row of an object, for an insert: each mapped column, and ``extra``."""
        row = {column: write(getattr(obj, name)) for column, name, write in self._columns}
        for _index, column, parts in self._packed:
            row[column] = {name: write(getattr(obj, name)) for name, _read, write in parts}
        for column, value_of in self._written.items():
            row[column] = _stored(value_of(obj))
        row.update(extra)
        return row

    def changes(self, obj: T, *columns: str) -> dict[str, Any]:
        """Some columns of an object's row, for an update."""
        row = self.values(obj)
        return {column: row[column] for column in columns}


M = TypeVar("M", bound=pydantic.BaseModel)


def shown(model: type[M], obj: object, **values: Any) -> M:
    """The API model (or the event) of a domain object: each of the model's fields from the
    object's attribute of the same name (enums become their values, tuples lists, nested
    dataclasses their models), except those given in ``values``."""
    if not values:
        return model.model_validate(obj, from_attributes=True)
    found = {
        name: getattr(obj, name)
        for name in model.model_fields
        if name not in values and hasattr(obj, name)
    }
    return model.model_validate({**found, **values}, from_attributes=True)


_validators: dict[type[Any], pydantic.TypeAdapter[Any]] = {}


def _validator(cls: type[Any]) -> pydantic.TypeAdapter[Any]:
    """Built once per class: building one costs far more than validating with it."""
    found = _validators.get(cls)
    if found is None:
        found = _validators[cls] = pydantic.TypeAdapter(cls)
    return found


def taken(cls: type[T], model: pydantic.BaseModel, **values: Any) -> T:
    """The domain object (a dataclass: a command, a plan) of an input model (an API body, a
    row of an import), the reverse of :func:`shown`: each of the dataclass's fields from the
    model's field of the same name (lists become the tuples the dataclass declares, nested
    models its nested dataclasses), except those given in ``values``. The model has
    validated the input already."""
    fields = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    found = model.model_dump(include=fields - values.keys())
    return typing.cast(T, _validator(cls).validate_python({**found, **values}))
