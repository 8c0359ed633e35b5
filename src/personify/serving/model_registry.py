"""Hot model swap: the served bundle of each tenant, reloaded when a new version is promoted.

A new version is loaded completely off the request path and then swapped in with one reference
assignment, so no request ever sees half a model or waits for a load.

Model-vs-model experiments also serve *pinned* versions (:meth:`BundleRegistry.pinned`): a few
extra bundles per registry, loaded from the model store on first use (or ahead with
:meth:`BundleRegistry.preload`) and kept in a small LRU cache. A load holds only that version's
own lock, never the registry's, so requests for the live bundle or other versions do not wait;
nothing is ever trained on the request path.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from personify.domain.errors import NotFound, PersonifyError
from personify.serving.bundle import ModelBundle
from personify.serving.periodic import Periodic
from personify.storage.model_files import FileModelStore

log = logging.getLogger(__name__)


MAX_PINNED = 3
"""Extra (non-live) bundles kept loaded for model-vs-model experiments, over all tenants."""


Prepare = Callable[[str, str], str]
"""``(tenant, promoted version) -> version to load``; raises PersonifyError to refuse it."""


class BundleRegistry:
    """Current bundle per tenant; ``refresh`` (called by a background thread) swaps new ones in.

    ``prepare`` vets a newly promoted version before it is loaded (the privacy capability applies
    erasures recorded after it, or refuses it); a refused version is not served and the current
    bundle stays.
    """

    def __init__(
        self,
        store: FileModelStore,
        *,
        prepare: Prepare | None = None,
        vet_pinned: Prepare | None = None,
        max_pinned: int = MAX_PINNED,
    ) -> None:
        self.store = store
        self.prepare = prepare
        self._bundles: dict[str, ModelBundle | None] = {}
        self._lock = threading.Lock()
        self._poller: Periodic | None = None
        self._refused: dict[str, str] = {}
        self.vet_pinned = vet_pinned
        """``(tenant, version) -> version to load`` for pinned versions (the privacy
        capability's cleaning: a version holding erased people is served without them)."""
        self.max_pinned = max_pinned
        self._pinned: OrderedDict[tuple[str, str], ModelBundle] = OrderedDict()
        self._pinned_lock = threading.Lock()
        self._loading: dict[tuple[str, str], threading.Lock] = {}
        self.pinned_loads = 0
        """Pinned versions read from the model store so far (tests, diagnostics)."""
        self.loaded: dict[str, tuple[str, float | None, float]] = {}
        """``tenant -> (version, trained at, swapped in at)`` (Unix times) of the live bundles."""
        self.on_swap: Callable[[str, str], None] | None = None
        """Told ``(tenant, version)`` after every swap (the metrics)."""

    def get(self, tenant: str) -> ModelBundle | None:
        if tenant not in self._bundles:
            self._load(tenant)
        return self._bundles.get(tenant)

    def peek(self, tenant: str) -> ModelBundle | None:
        """The bundle served now, without loading anything."""
        return self._bundles.get(tenant)

    def tried(self, tenant: str) -> bool:
        """Whether this process has tried to load ``tenant``'s promoted version (at the warm-up
        or the first request), successfully or not."""
        return tenant in self._bundles

    def set(self, tenant: str, bundle: ModelBundle | None) -> None:
        self._bundles[tenant] = bundle

    def version(self, tenant: str) -> str | None:
        bundle = self.get(tenant)
        return bundle.version if bundle is not None else None

    def _load(self, tenant: str) -> bool:
        wanted = self.store.promoted_version(tenant)
        if wanted is None:
            self._bundles.setdefault(tenant, None)
            return False
        current = self._bundles.get(tenant)
        if current is not None and current.version == wanted:
            return False
        if self.prepare is not None:  # outside the lock: it may wait for an erasure
            if self._refused.get(tenant) == wanted:
                return False
            try:
                wanted = self.prepare(tenant, wanted)
            except PersonifyError as exc:
                self._refused[tenant] = wanted
                log.error("not serving model %s for %s: %s", wanted, tenant, exc.message)
                self._bundles.setdefault(tenant, None)
                return False
        with self._lock:
            current = self._bundles.get(tenant)
            if current is not None and current.version == wanted:
                return False
            try:
                manifest, bundle = self.store.load(tenant, wanted)
            except (NotFound, OSError, EOFError, pickle.UnpicklingError) as exc:
                log.warning("could not load model %s for %s: %s", wanted, tenant, exc)
                self._bundles.setdefault(tenant, None)
                return False
            if not isinstance(bundle, ModelBundle):
                log.warning("model %s for %s is not a serving bundle", wanted, tenant)
                return False
            self._bundles[tenant] = bundle
            self.loaded[tenant] = (wanted, _epoch(manifest.created_at), time.time())
        log.info("serving model %s for tenant %s", wanted, tenant)
        if self.on_swap is not None:
            self.on_swap(tenant, wanted)
        return True

    def refresh(self) -> list[str]:
        """Reload every known tenant whose promoted version changed; returns those swapped."""
        return [t for t in list(self._bundles) if self._load(t)]

    def pinned(self, tenant: str, version: str) -> ModelBundle | None:
        """The bundle of a stored ``version`` for a model-vs-model experiment (the live bundle
        when it is live), loaded from the model store on first use and kept in a small LRU
        cache; None when the version cannot be loaded or ``prepare`` refuses it."""
        live = self.get(tenant)
        if live is not None and live.version == version:
            return live
        key = (tenant, version)
        with self._pinned_lock:
            found = self._pinned.get(key)
            if found is not None:
                self._pinned.move_to_end(key)
                return found
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one load per version; the registry's own locks stay free meanwhile
            with self._pinned_lock:
                found = self._pinned.get(key)
            if found is not None:
                return found
            bundle = self._read_pinned(tenant, version)
            with self._pinned_lock:
                self._loading.pop(key, None)
                if bundle is not None:
                    self._keep_pinned(key, bundle)
            return bundle

    def preload(self, tenant: str, versions: Iterable[str]) -> threading.Thread:
        """Load pinned versions in a daemon thread (e.g. when an experiment starts)."""
        wanted = list(dict.fromkeys(versions))[: self.max_pinned]

        def run() -> None:
            for version in wanted:
                self.pinned(tenant, version)

        thread = threading.Thread(target=run, daemon=True, name="personify-model-preload")
        thread.start()
        return thread

    def _keep_pinned(self, key: tuple[str, str], bundle: ModelBundle) -> None:
        """Cache a pinned bundle, evicting the least recently used beyond ``max_pinned``
        (call with ``_pinned_lock`` held)."""
        self._pinned[key] = bundle
        self._pinned.move_to_end(key)
        while len(self._pinned) > self.max_pinned:
            (tenant, version), _ = self._pinned.popitem(last=False)
            log.info("unloaded pinned model %s for %s", version, tenant)

    def _read_pinned(self, tenant: str, version: str) -> ModelBundle | None:
        wanted = version
        if self.vet_pinned is not None:
            try:
                wanted = self.vet_pinned(tenant, version)
            except PersonifyError as exc:
                log.error("not serving pinned model %s for %s: %s", version, tenant, exc.message)
                return None
        try:
            _, bundle = self.store.load(tenant, wanted)
        except (NotFound, OSError, EOFError, pickle.UnpicklingError) as exc:
            log.warning("could not load pinned model %s for %s: %s", wanted, tenant, exc)
            return None
        if not isinstance(bundle, ModelBundle):
            log.warning("pinned model %s for %s is not a serving bundle", wanted, tenant)
            return None
        self.pinned_loads += 1
        log.info("loaded pinned model %s for tenant %s", wanted, tenant)
        return bundle

    def forget_pinned(self, tenant: str, subjects: Sequence[str] = ()) -> int:
        """Erasure hook: drop the tenant's pinned bundles and load them again (vetted anew, so
        without the people erased since) in the background; returns how many were dropped."""
        with self._pinned_lock:
            keys = [k for k in self._pinned if k[0] == tenant]
            for key in keys:
                del self._pinned[key]
        if keys:
            self.preload(tenant, [version for _, version in keys])
        return 0

    def start(self, interval_s: float = 5.0) -> None:
        """Poll for promoted versions in a daemon thread: a version promoted by any process
        sharing the model directory is served here within ``interval_s`` plus its load time."""
        if self._poller is None:
            self._poller = Periodic(self.refresh, interval_s, "personify-model-refresh")
            self._poller.start()

    def stop(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return None
