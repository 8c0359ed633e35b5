"""The web application for ``personify serve`` and ``personify demo``, and the ASGI factory
uvicorn imports for ``serve --workers N`` or ``--reload`` (each worker builds its app from the
same ``PERSONIFY_*`` environment the parent exported).

Serving is the one thing the command line needs the web application for, so it names it by
import string, as uvicorn does, instead of importing it: the edges ``cli`` and ``api`` stay
independent (see the import-linter contracts). Every other command uses the runtime
(:func:`personify.runtime.container.build_runtime`) directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.importer import import_from_string

from personify.settings import Settings, load_settings

API_FACTORY = "personify.app:create_app"
"""The API with the dashboard mounted (``personify.app``)."""


def api_factory() -> Callable[..., Any]:
    """``personify.app.create_app``, resolved at run time."""
    factory: Callable[..., Any] = import_from_string(API_FACTORY)
    return factory


def build_app(settings: Settings, **kwargs: Any) -> Any:
    """The FastAPI app for ``settings`` (raises ConfigurationError when it must not start)."""
    return api_factory()(settings, **kwargs)


def app_from_environment() -> Any:
    """``create_app`` over settings read from the environment (and ``PERSONIFY_CONFIG_FILE``)."""
    return build_app(load_settings())
