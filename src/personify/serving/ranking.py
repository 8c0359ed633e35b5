"""The learned ranker: LightGBM LambdaRank over ``personify.serving.features``, trained offline
from logged impressions and the clicks / purchases attributed to them.

The booster travels as its text model, so a serving process without the ``train`` extra still
loads the bundle: it then ranks with the offline-learned blend and says so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from personify.serving.features import feature_matrix, feature_names

if TYPE_CHECKING:
    from personify.serving.sources import RequestScope

log = logging.getLogger(__name__)


@dataclass
class LambdaRankRanker:
    """Scores candidates with a LightGBM booster stored as text."""

    model_text: str
    feature_names: tuple[str, ...] = field(default_factory=feature_names)
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._booster: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "model_text": self.model_text,
            "feature_names": self.feature_names,
            "metrics": self.metrics,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._booster = None

    def booster(self) -> Any:
        if self._booster is None:
            import lightgbm

            self._booster = lightgbm.Booster(model_str=self.model_text)
        return self._booster

    def predict(self, features: NDArray[np.float32]) -> NDArray[np.float64]:
        return np.asarray(self.booster().predict(features, num_threads=1), dtype=np.float64)

    def score(
        self, scope: RequestScope, candidates: Sequence[tuple[str, Mapping[str, float]]]
    ) -> list[float]:
        catalog = scope.catalog
        items = {i: catalog.get(i) for i, _ in candidates}
        popularity: dict[str, float] = {}
        if scope.bundle is not None:
            idx = scope.bundle.items.indices([i for i, _ in candidates])
            popularity = {
                i: float(scope.bundle.popularity[j]) if j >= 0 else 0.0
                for (i, _), j in zip(candidates, idx, strict=True)
            }
        profile = scope.user.profile if scope.user is not None else None
        location = scope.request.context.location
        country = (location.country if location is not None else None) or (
            profile.country if profile is not None else None
        )
        features = feature_matrix(
            candidates,
            when=scope.now,
            context=scope.request.context,
            time_zone=profile.time_zone if profile is not None else None,
            country=country,
            items=items,
            popularity=popularity,
        )
        if self.feature_names != feature_names():  # trained before features were added
            features = features[:, self._columns()]
        return [float(s) for s in self.predict(features)]

    def _columns(self) -> list[int]:
        """Where this ranker's features sit in today's :func:`feature_names` (a feature it
        knows that no longer exists, e.g. of a plugin source since removed, raises)."""
        today = feature_names()
        return [today.index(name) for name in self.feature_names]
