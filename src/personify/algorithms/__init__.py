"""Recommendation models behind one interface (``personify.algorithms.base.Recommender``).

``create_model(name, **params)`` builds a model from the registry; modules are imported lazily
so the serving process does not pay for (or need) training-only libraries it does not use.
Other packages register further models with ``register(name, "module:Class")``.
"""

from __future__ import annotations

import importlib
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
}


def register(name: str, target: str) -> None:
    """Register ``target`` (``"package.module:Class"``) under ``name``."""
    if ":" not in target:
        raise InvalidInput(f"bad model target {target!r}", field="target",
                           accepted="'package.module:ClassName'")
    _REGISTRY[name] = target


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``."""
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


__all__ = ["Recommender", "available_models", "create_model", "model_class", "register", "top_n"]
