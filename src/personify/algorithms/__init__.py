"""Recommendation models behind one interface (``personify.algorithms.base.Recommender``).

``create_model(name, **params)`` builds a model from the registry; modules are imported lazily
so the serving process does not pay for (or need) training-only libraries it does not use.
Other packages register further models with ``register(name, "module:Class")``, or, installed
beside personify, declare them as entry points of the ``personify.models`` group
(``name = "module:Class"``), discovered the first time the registry is asked (and by
:func:`load_model_plugins`); their modules too are imported only when the model is used.
"""

from __future__ import annotations

import importlib
import logging
import threading
from importlib.metadata import entry_points
from typing import Any

from personify.algorithms.base import Recommender, top_n
from personify.domain.errors import InvalidInput

_REGISTRY: dict[str, str] = {
    "popularity": "personify.algorithms.popularity:Popularity",
    "random": "personify.algorithms.random_items:RandomItems",
    "itemknn": "personify.algorithms.itemknn:ItemKNN",
    "rp3beta": "personify.algorithms.rp3beta:RP3beta",
    "ease": "personify.algorithms.ease:EASE",
    "als": "personify.algorithms.als:ALS",
    "gfcf": "personify.algorithms.gfcf:GFCF",
    "bspm": "personify.algorithms.bspm:BSPM",
    "blend": "personify.algorithms.blend:ScoreBlend",
    "hybrid": "personify.algorithms.hybrid:HybridRecommender",
}


BUILTIN_MODELS = frozenset(_REGISTRY)
ENTRY_POINT_GROUP = "personify.models"
"""The entry-point group third-party models are declared in (``name = "module:Class"``)."""
log = logging.getLogger(__name__)
_discovered = False
_discovering = threading.Lock()


def load_model_plugins() -> list[str]:
    """Register every ``personify.models`` entry point under its name, without importing it;
    returns the names registered. An entry point naming a built-in model, or whose value is not
    ``module:Class``, is skipped with a warning (never fatal: a broken plugin must not stop
    the others or personify)."""
    global _discovered
    loaded = []
    with _discovering:
        for point in entry_points(group=ENTRY_POINT_GROUP):
            if point.name in BUILTIN_MODELS:
                log.warning("model plugin %s (%s) skipped: %r is a built-in model",
                            point.name, point.value, point.name)
                continue
            module, _, attr = point.value.partition(":")
            if not module or not attr or " " in point.value:
                log.warning("model plugin %s skipped: %r is not 'package.module:ClassName'",
                            point.name, point.value)
                continue
            _REGISTRY[point.name] = point.value
            loaded.append(point.name)
        _discovered = True
    return loaded


def _discover() -> None:
    if not _discovered:
        load_model_plugins()


def register(name: str, target: str) -> None:
    """Register ``target`` (``"package.module:Class"``) under ``name``."""
    if ":" not in target:
        raise InvalidInput(f"bad model target {target!r}", field="target",
                           accepted="'package.module:ClassName'")
    _REGISTRY[name] = target


def available_models() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``."""
    if name not in _REGISTRY:
        _discover()
    if name not in _REGISTRY:
        raise InvalidInput(f"unknown model {name!r}", field="model",
                           accepted=", ".join(available_models()))
    module_name, _, attr = _REGISTRY[name].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise InvalidInput(f"{_REGISTRY[name]} is not a Recommender", field="model")
    return cls


def create_model(name: str, **params: Any) -> Recommender:
    """A new, unfitted model: ``create_model("ease", l2=200.0)``."""
    return model_class(name)(**params)


__all__ = [
    "ENTRY_POINT_GROUP",
    "Recommender",
    "available_models",
    "create_model",
    "load_model_plugins",
    "model_class",
    "register",
    "top_n",
]
