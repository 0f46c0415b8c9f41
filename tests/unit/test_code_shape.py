"""The shape every service shares, checked on the code itself (its syntax trees):

- routes are defined at module level (``router = APIRouter()`` and ``@router.get(...)``),
  never inside a function, so each names its dependencies and a test can override them;
- handlers (the service layer) import neither SQLAlchemy nor the process runtime: SQL lives
  in adapters, and a handler gets the unit of work (and the settings it needs) as arguments;
- route bodies do not reach for repositories: they call a handler or a query function.

A failure names the file and line that break the rule."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("plans", "reports", "notify", "portal")
ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route"}
FORBIDDEN_IN_HANDLERS = ("sqlalchemy", "shared.runtime")


def _files(*patterns: str) -> list[Path]:
    found = sorted({p for pattern in patterns for p in ROOT.glob(pattern)})
    assert found, f"nothing matches {patterns}: the layout changed, update this test"
    return found


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _where(path: Path, node: ast.AST) -> str:
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return f"{shown}:{getattr(node, 'lineno', 0)}"


def _route_decorators(node: ast.AST) -> Iterator[ast.expr]:
    """``@<anything>.get(...)``-style decorators of a function (routes, on a router or app)."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return
    for decorator in node.decorator_list:
        call = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(call, ast.Attribute) and call.attr in ROUTE_METHODS:
            yield decorator


def _nested_routes(path: Path) -> list[str]:
    """Routes whose definition sits inside another function's body."""
    found = []
    for outer in ast.walk(_tree(path)):
        if not isinstance(outer, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(outer):
            if inner is not outer and any(_route_decorators(inner)):
                found.append(f"{_where(path, inner)} ({outer.name} defines a route)")
        for call in ast.walk(outer):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr in ("add_api_route", "add_route")
            ):
                found.append(f"{_where(path, call)} ({outer.name} adds a route)")
    return found


def _imports(tree: ast.Module) -> Iterator[tuple[ast.AST, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node, node.module


ENTRYPOINTS = _files(
    *(f"services/{s}/entrypoints/http.py" for s in SERVICES if s == "notify"),
    *(f"services/{s}/entrypoints/http/*.py" for s in SERVICES if s != "notify"),
    "shared/http.py",
)
HANDLERS = _files(*(f"services/{s}/handlers/**/*.py" for s in SERVICES))


@pytest.mark.parametrize("path", ENTRYPOINTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_routes_are_defined_at_module_level(path: Path) -> None:
    assert _nested_routes(path) == []


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_handlers_import_neither_sqlalchemy_nor_the_runtime(path: Path) -> None:
    wrong = [
        f"{_where(path, node)} imports {name}"
        for node, name in _imports(_tree(path))
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_HANDLERS)
    ]
    assert wrong == []


@pytest.mark.parametrize("path", ENTRYPOINTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_route_bodies_call_handlers_not_repositories(path: Path) -> None:
    wrong = []
    for node in ast.walk(_tree(path)):
        if not any(_route_decorators(node)):
            continue
        for call in ast.walk(node):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
                name = call.func.id
                if name.endswith(("Repository", "Store", "Directory")):
                    wrong.append(f"{_where(path, call)} builds {name} in a route")
    assert wrong == []


SERVICE_ROUTES = [p for p in ENTRYPOINTS if p.relative_to(ROOT).parts[0] == "services"]


@pytest.mark.parametrize("path", SERVICE_ROUTES, ids=lambda p: str(p.relative_to(ROOT)))
def test_service_routes_take_the_unit_of_work_not_the_runtime(path: Path) -> None:
    """A service's route names what it needs (``Uow``, ``UowFactory``, ``Grouped``, its
    settings) rather than the whole runtime (``RuntimeDep`` is for the operations routes
    of ``shared/http.py``), nor opens ``runtime.uow()`` itself."""
    wrong = [
        f"{_where(path, node)} uses {node.id}"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.Name) and node.id == "RuntimeDep"
    ]
    assert wrong == []


def test_the_check_finds_a_nested_route(tmp_path: Path) -> None:
    """The inspection itself can fail: a closure that builds routes is caught."""
    sample = tmp_path / "nested_route.py"
    sample.write_text(
        "def build(router):\n"
        "    @router.get('/x')\n"
        "    async def x():\n"
        "        return 1\n"
        "    router.add_api_route('/y', x)\n"
    )
    found = _nested_routes(sample)
    assert len(found) == 2
    assert "build defines a route" in found[0]


ADAPTERS = _files(*(f"services/{s}/adapters/**/*.py" for s in SERVICES))
COPIED_FIELDS = 4
"""A call given this many ``name=row.name`` arguments copies a row by hand."""


def _hand_copies(path: Path) -> list[str]:
    """Calls that copy a row's columns into an object one by one (``Report(id=row.id,
    obligation_id=row.obligation_id, …)``): shared.mapping.RowMapping declares that once."""
    found = []
    for node in ast.walk(_tree(path)):
        pairs: list[tuple[object, ast.expr]]
        if isinstance(node, ast.Call):  # X(id=row.id, …)
            pairs = [(keyword.arg, keyword.value) for keyword in node.keywords]
        elif isinstance(node, ast.Dict):  # {"id": row.id, …}
            pairs = [
                (key.value if isinstance(key, ast.Constant) else None, value)
                for key, value in zip(node.keys, node.values, strict=True)
            ]
        else:
            continue
        copied = 0
        for name, value in pairs:
            while isinstance(value, ast.Call) and value.args:  # list(row.x), tuple(row.x)
                value = value.args[0]
            if (
                isinstance(value, ast.Attribute)
                and isinstance(value.value, ast.Name)
                and value.value.id in ("row", "r")
                and value.attr == name
            ):
                copied += 1
        if copied >= COPIED_FIELDS:
            found.append(f"{_where(path, node)} copies {copied} columns by hand")
    return found


@pytest.mark.parametrize("path", ADAPTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_adapters_map_rows_without_copying_them_by_hand(path: Path) -> None:
    assert _hand_copies(path) == []


def test_the_check_finds_a_hand_copy(tmp_path: Path) -> None:
    sample = tmp_path / "copying.py"
    sample.write_text(
        "def f(row):\n    return X(id=row.id, a=row.a, b=list(row.b), c=row.c)\n"
        "def g(r):\n    return {'id': r.id, 'a': r.a, 'b': r.b, 'c': r.c, 'd': 1}\n"
    )
    assert len(_hand_copies(sample)) == 2
