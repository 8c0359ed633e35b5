"""What the dashboard needs from objects the application keeps on ``app.state``, as protocols.

The dashboard is an edge like the API and must not import it; it reads ``app.state`` through
these shapes instead (``authenticator``, ``engine``, ``erasure_check``, ``ingestor``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from personify.domain.keys import ApiKey
from personify.serving.bundle import ModelBundle
from personify.serving.chain import RecommendationResult
from personify.serving.request import RecommendationRequest
from personify.storage.model_files import ModelManifest
from personify.storage.online.port import OnlineState


class KeyAuthenticator(Protocol):
    def authenticate(self, secret: str | None) -> ApiKey:
        """The key of ``secret``; raises Unauthorized when unknown or revoked."""
        ...


class Recommender(Protocol):
    def recommend(self, tenant: str, request: RecommendationRequest) -> RecommendationResult: ...

    def similar(
        self,
        tenant: str,
        item_id: str,
        n: int,
        *,
        user_id: str | None = None,
        explain: bool = False,
        language: str = "en",
    ) -> RecommendationResult: ...


class Bundles(Protocol):
    def get(self, tenant: str) -> ModelBundle | None: ...


class ModelFiles(Protocol):
    def list(self, tenant: str) -> list[ModelManifest]: ...

    def promote(self, tenant: str, version: str) -> None: ...

    def rollback(self, tenant: str) -> str: ...


class EngineView(Protocol):
    """The parts of ``personify.runtime.engine.Engine`` the dashboard reads."""

    service: Recommender
    bundles: Bundles
    models: ModelFiles
    state: OnlineState
    warnings: list[str]


class Ingestor(Protocol):
    def ingest(self, tenant: str, raws: Sequence[Any], *, start_index: int = 0) -> Any: ...

    def add_listener(self, listener: Any) -> None: ...


class ErasureMarker(Protocol):
    def mark_erased(self, tenant: str, user_id: str) -> None: ...


