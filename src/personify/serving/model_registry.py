"""Hot model swap: the served bundle of each tenant, reloaded when a new version is promoted.

A new version is loaded completely off the request path and then swapped in with one reference
assignment, so no request ever sees half a model or waits for a load.
"""

from __future__ import annotations

import logging
import threading

from personify.domain.errors import NotFound
from personify.serving.bundle import ModelBundle
from personify.serving.periodic import Periodic
from personify.storage.model_files import FileModelStore

log = logging.getLogger(__name__)


class BundleRegistry:
    """Current bundle per tenant; ``refresh`` (called by a background thread) swaps new ones in."""

    def __init__(self, store: FileModelStore) -> None:
        self.store = store
        self._bundles: dict[str, ModelBundle | None] = {}
        self._lock = threading.Lock()
        self._poller: Periodic | None = None

    def get(self, tenant: str) -> ModelBundle | None:
        if tenant not in self._bundles:
            self._load(tenant)
        return self._bundles.get(tenant)

    def set(self, tenant: str, bundle: ModelBundle | None) -> None:
        self._bundles[tenant] = bundle

    def version(self, tenant: str) -> str | None:
        bundle = self.get(tenant)
        return bundle.version if bundle is not None else None

    def _load(self, tenant: str) -> bool:
        with self._lock:
            current = self._bundles.get(tenant)
            wanted = self.store.promoted_version(tenant)
            if wanted is None:
                self._bundles.setdefault(tenant, None)
                return False
            if current is not None and current.version == wanted:
                return False
            try:
                _, bundle = self.store.load(tenant, wanted)
            except (NotFound, OSError, EOFError) as exc:
                log.warning("could not load model %s for %s: %s", wanted, tenant, exc)
                self._bundles.setdefault(tenant, None)
                return False
            if not isinstance(bundle, ModelBundle):
                log.warning("model %s for %s is not a serving bundle", wanted, tenant)
                return False
            self._bundles[tenant] = bundle
            log.info("serving model %s for tenant %s", wanted, tenant)
            return True

    def refresh(self) -> list[str]:
        """Reload every known tenant whose promoted version changed; returns those swapped."""
        return [t for t in list(self._bundles) if self._load(t)]

    def start(self, interval_s: float = 5.0) -> None:
        """Poll for promoted versions in a daemon thread."""
        if self._poller is None:
            self._poller = Periodic(self.refresh, interval_s, "personify-model-refresh")
            self._poller.start()

    def stop(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
