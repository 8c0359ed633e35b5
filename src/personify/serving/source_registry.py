"""Serving sources declared once: each candidate source of the chain is a :class:`SourceSpec`
in the :class:`SourceRegistry`, and everything that used to repeat source names reads it — the
chain (which sources exist, their default order and weights, what they need from the bundle),
the bundle (default weights, the parts a source trains), the ranking features (``score_<name>``),
the explanations (the sentences of the reason kinds a source emits) and the blend learner
(which weights are learned, on which grid, scored offline how).

Built-in specs live in :mod:`personify.serving.builtin_sources`. A plugin adds a source without
editing the package, either by calling ``source_registry().register(spec)`` or through an entry
point in the ``personify.sources`` group whose object is a ``SourceSpec`` (or a callable taking
the registry). Example::

    source_registry().register(SourceSpec(
        name="editorial", source=EditorialSource(), personal=False, default_weight=0.3,
        position=55, explanations={"editors_pick": {"en": "Picked by our editors"}},
    ))
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError

if TYPE_CHECKING:
    from personify.serving.bundle import ModelBundle
    from personify.serving.sources import CandidateSource

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "personify.sources"

UserScores = Mapping[int, float] | NDArray[np.float32]
"""A source's offline scores for one person: item index -> score (relative to its best), or a
dense vector over every item (the same for everyone, e.g. popularity)."""


@dataclass(frozen=True)
class TrainingLog:
    """What a source's ``train`` reads: the training interactions and, per log row, whether it
    was a purchase (None when unknown)."""

    data: Interactions
    purchased: NDArray[np.bool_] | None = None

    def purchases(self) -> Interactions | None:
        """The purchase rows in the same id space, or None when there are none."""
        mask = self.purchased
        if mask is None or not mask.any():
            return None
        data = self.data
        return Interactions.from_arrays(
            data.users.lookup(data.user_idx[mask]), data.items.lookup(data.item_idx[mask]),
            data.weights[mask], None if data.timestamps is None else data.timestamps[mask],
            users=data.users, items=data.items,
        )


@dataclass(frozen=True)
class BlendContext:
    """What the blend learner hands each source's offline scorer: the validation bundle (trained
    without each person's held-out last interaction), that reduced log, and items' labels."""

    bundle: ModelBundle
    data: Interactions
    labels: Mapping[str, Sequence[str]] | None
    k: int
    held_at: Mapping[int, float] = field(default_factory=dict)
    """Person index -> the time (epoch seconds) of their held-out event: when they "asked"."""


class OfflineScorer(Protocol):
    def __call__(self, user: int, history: NDArray[np.int32],
                 weights: NDArray[np.float64]) -> UserScores: ...


@dataclass(frozen=True)
class BlendLearning:
    """How the blend learns a source's weight: ``grid`` (a single value = fixed, the reference
    every other weight is relative to) and ``prepare``, which returns a per-person scorer that
    scores as the online source does, or None when the source cannot serve this training run
    (no factors, no labels, no purchases): its weight is then not learned."""

    grid: tuple[float, ...]
    prepare: Callable[[BlendContext], OfflineScorer | None]


@dataclass(frozen=True)
class SourceSpec:
    """One candidate source, declared once.

    ``needs`` names what the source needs from the bundle (a ``ModelBundle`` attribute such as
    ``factors``, or a part that ``train`` builds): the chain does not ask it, and the blend does
    not learn it, while the served bundle lacks one. ``train`` builds the source's trained state
    from the training log (stored as ``bundle.parts[name]``; None = this data gives none).
    ``feature``: its score is a ranking feature (``score_<name>``) and logged with impressions.
    ``explanations``: reason kind -> language -> sentence template of the reasons it emits.
    ``repeats``: it recommends what the person already bought (exempt from ``exclude.bought``).
    ``in_default_order``: asked when a request names no sources (else only when named)."""

    name: str
    source: CandidateSource
    personal: bool
    default_weight: float
    position: float
    needs: tuple[str, ...] = ()
    train: Callable[[TrainingLog], Any | None] | None = None
    feature: bool = True
    explanations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    blend: BlendLearning | None = None
    repeats: bool = False
    in_default_order: bool = True

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ConfigurationError(f"invalid source name {self.name!r}: use a Python identifier")
        if getattr(self.source, "name", self.name) != self.name:
            raise ConfigurationError(
                f"source spec {self.name!r} wraps a source named {self.source.name!r}"
            )
        for kind, templates in self.explanations.items():
            if "en" not in templates:
                raise ConfigurationError(f"reason {kind!r} of source {self.name!r} has no 'en'")


class SourceRegistry:
    """The registered sources, ordered by ``position`` then name."""

    def __init__(self, specs: Sequence[SourceSpec] = ()) -> None:
        self._specs: dict[str, SourceSpec] = {}
        self._lock = threading.Lock()
        self.version = 0
        """Bumped by every change (callers cache derived views by it)."""
        self._views: dict[str, Any] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: SourceSpec, *, replace: bool = False) -> SourceSpec:
        with self._lock:
            if spec.name in self._specs and not replace:
                raise ConfigurationError(f"a source named {spec.name!r} is already registered")
            self._specs[spec.name] = spec
            self._changed()
        return spec

    def unregister(self, name: str) -> SourceSpec | None:
        with self._lock:
            spec = self._specs.pop(name, None)
            self._changed()
        return spec

    def _changed(self) -> None:
        self.version += 1
        self._views = {}

    def _view(self, key: str, build: Callable[[], Any]) -> Any:
        views = self._views
        if key not in views:
            views[key] = build()
        return views[key]

    def get(self, name: str) -> SourceSpec | None:
        return self._specs.get(name)

    def specs(self) -> list[SourceSpec]:
        return self._view("specs", lambda: sorted(self._specs.values(),
                                                  key=lambda s: (s.position, s.name)))

    def sources(self) -> dict[str, CandidateSource]:
        return self._view("sources", lambda: {s.name: s.source for s in self.specs()})

    def default_order(self) -> tuple[str, ...]:
        return self._view("order", lambda: tuple(s.name for s in self.specs()
                                                  if s.in_default_order))

    def default_weights(self) -> dict[str, float]:
        return dict(self._view("weights", lambda: {s.name: s.default_weight
                                                   for s in self.specs()}))

    def features(self) -> tuple[str, ...]:
        """Source names whose score is a ranking feature, in registry order."""
        return self._view("features", lambda: tuple(s.name for s in self.specs()
                                                     if s.feature))

    def repeating(self) -> frozenset[str]:
        return self._view("repeats", lambda: frozenset(s.name for s in self.specs()
                                                        if s.repeats))

    def sentences(self, kind: str) -> Mapping[str, str] | None:
        table: dict[str, Mapping[str, str]] = self._view("sentences", lambda: {
            k: v for s in self.specs() for k, v in s.explanations.items()
        })
        return table.get(kind)

    def trainers(self) -> list[SourceSpec]:
        return [s for s in self.specs() if s.train is not None]

    def learned(self) -> list[SourceSpec]:
        return [s for s in self.specs() if s.blend is not None]


_REGISTRY: SourceRegistry | None = None
_LOADING = threading.Lock()


def source_registry() -> SourceRegistry:
    """The process-wide registry: the built-in sources, then the ``personify.sources`` entry
    points (a plugin that fails to load is logged and skipped, never fatal)."""
    global _REGISTRY
    if _REGISTRY is not None:
        return _REGISTRY
    with _LOADING:
        if _REGISTRY is None:
            registry = SourceRegistry()
            builtin = importlib.import_module("personify.serving.builtin_sources")
            for spec in builtin.BUILTIN_SPECS:
                registry.register(spec)
            load_plugins(registry)
            _REGISTRY = registry
    return _REGISTRY


def load_plugins(registry: SourceRegistry) -> list[str]:
    """Register every ``personify.sources`` entry point; returns the names loaded."""
    loaded = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = point.load()
            if isinstance(target, SourceSpec):
                registry.register(target)
            else:
                target(registry)
            loaded.append(point.name)
        except Exception:
            log.exception("source plugin %s could not be loaded", point.name)
    return loaded
