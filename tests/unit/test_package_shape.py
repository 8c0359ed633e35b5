"""The shape the import-linter contracts cannot see: ``personify.api`` is the HTTP layer only.

Every module under ``src/personify/api`` imports FastAPI or Starlette (routers, dependencies,
error mapping, middleware) except the request / response schemas; application logic lives in
``personify.runtime`` (and the capability packages), where every edge can use it."""

from __future__ import annotations

import ast
from pathlib import Path

import personify.api
import personify.runtime

API = Path(personify.api.__file__).parent
RUNTIME = Path(personify.runtime.__file__).parent
WEB_PACKAGES = ("fastapi", "starlette")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _is_web(module: str) -> bool:
    return module.split(".")[0] in WEB_PACKAGES


def _has_code(path: Path) -> bool:
    """More than a docstring and imports (an ``__init__`` that only re-exports is no module of
    its own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = [n for n in tree.body if not isinstance(n, ast.Import | ast.ImportFrom)]
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return any(not (isinstance(n, ast.Assign) and _is_all(n)) for n in body)


def _is_all(node: ast.Assign) -> bool:
    return any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)


def test_every_api_module_but_the_schemas_is_http() -> None:
    offenders = [
        str(path.relative_to(API))
        for path in sorted(API.rglob("*.py"))
        if path.relative_to(API).parts[0] != "schemas"
        and _has_code(path)
        and not any(_is_web(m) for m in _imports(path))
    ]
    assert offenders == [], (
        f"modules in personify/api without a FastAPI / Starlette import: {offenders}; "
        "application logic goes to personify/runtime (docs/CONTRIBUTING.md, where things live)"
    )


def test_the_runtime_does_not_import_the_web_framework() -> None:
    offenders = [
        str(path.relative_to(RUNTIME))
        for path in sorted(RUNTIME.rglob("*.py"))
        if any(_is_web(m) for m in _imports(path))
    ]
    assert offenders == [], f"personify/runtime modules importing FastAPI / Starlette: {offenders}"


def test_the_check_sees_a_module_without_the_framework(tmp_path: Path) -> None:
    plain = tmp_path / "logic.py"
    plain.write_text('"""Logic."""\n\nimport math\n\n\ndef f() -> float:\n    return math.pi\n')
    web = tmp_path / "router.py"
    web.write_text("from fastapi import APIRouter\n\nrouter = APIRouter()\n")
    init = tmp_path / "__init__.py"
    init.write_text('"""A package."""\n\nfrom x import y\n\n__all__ = ["y"]\n')
    assert _has_code(plain) and not any(_is_web(m) for m in _imports(plain))
    assert any(_is_web(m) for m in _imports(web))
    assert not _has_code(init)
