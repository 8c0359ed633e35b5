"""Model versions that never bring an erased person back.

An erasure subtracts the person from the *served* version at once (:meth:`forget`), but the
model directory also keeps older versions for rollback, and a training that was running during
the erasure produces a version that still saw them. :class:`ErasureAwareModelStore` is the
:class:`~personify.storage.model_files.FileModelStore` every promotion goes through:

* ``promote`` / ``rollback`` (CLI, dashboard, ``train_tenant``) and the servers' registry
  (:meth:`servable`, before loading a version) look up every erasure tombstone recorded after
  the version's training data was read (``data_as_of``, minus :data:`CLOCK_SKEW`). People of
  those erasures still present in the version's influence index are subtracted with the exact
  :func:`~personify.privacy.model_influence.forget_rows`, producing a new cleaned version that is
  served instead (its manifest: ``derived_from``, ``erased_rows``, the base's ``data_as_of``);
* a version with erasures after it and no influence index that can name their rows (none saved,
  or keyed by a ``pseudonym_secret`` the tombstones do not use) is refused with a Conflict naming
  the version and the erasure: only a newer training can serve again;
* every read-modify-write of the promoted version (erasure, promotion, rollback, cleaning) holds
  the tenant's :class:`~personify.privacy.model_lock.ModelLock` and starts from the promoted
  version on disk, so concurrent erasures in several processes all end up in the final model.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from personify.domain.errors import Conflict
from personify.privacy.model_influence import (
    TOMBSTONE_KEYS,
    InfluenceIndex,
    ModelForgetResult,
    exact_neighbours,
    forget_rows,
    load_influence,
    save_influence,
    version_dir,
)
from personify.privacy.model_lock import ModelLock
from personify.privacy.pseudonyms import tombstone_key
from personify.storage.model_files import FileModelStore, ModelManifest, new_version
from personify.storage.ports import ErasureStore, Tombstone

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(seconds=60)
"""Erasures up to this long *before* a version's data time are checked too (clocks of the
erasing and the training process may differ; checking one too many costs nothing)."""
MAX_DERIVATION_DEPTH = 1_000


class BundleHolder(Protocol):
    """The served-bundle registry (``personify.serving.model_registry.BundleRegistry``)."""

    def get(self, tenant: str) -> Any: ...

    def set(self, tenant: str, bundle: Any) -> None: ...


class ErasureAwareModelStore(FileModelStore):
    """A model store whose promotions apply every later erasure (see the module docstring).

    Without ``erasures`` it only serializes writers (no tombstones to apply).
    ``legacy_keys_are_tombstone_keys`` says whether influence indexes written before they
    recorded their key scheme were keyed like the tombstones (true unless the installation set
    a ``pseudonym_secret``).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        erasures: ErasureStore | None = None,
        lock: ModelLock | None = None,
        legacy_keys_are_tombstone_keys: bool = True,
        clock_skew: timedelta = CLOCK_SKEW,
    ) -> None:
        super().__init__(root)
        self.erasures = erasures
        self.lock = lock if lock is not None else ModelLock(root)
        self.legacy_keys_are_tombstone_keys = legacy_keys_are_tombstone_keys
        self.clock_skew = clock_skew

    # -- promotion ------------------------------------------------------------------------------

    def promote(self, tenant: str, version: str) -> str:
        """Serve ``version`` (or its cleaned derivative, returned); Conflict when it cannot be
        served without bringing an erased person back."""
        with self.lock.hold(tenant):
            return super().promote(tenant, version)

    def rollback(self, tenant: str) -> str:
        with self.lock.hold(tenant):
            return super().rollback(tenant)

    def _servable(self, tenant: str, version: str) -> str:
        return self.clean(tenant, version)

    def servable(self, tenant: str, version: str) -> str:
        """The version a server may load now that ``version`` is promoted (the registry's
        ``prepare`` hook): the promoted version, cleaned and re-pointed when an erasure came
        after it; Conflict when it must not be served."""
        with self.lock.hold(tenant):
            current = self.promoted_version(tenant) or version
            served = self.clean(tenant, current)
            if served != current:
                self._repoint(tenant, served)
                log.info("promoted version %s replaced by %s for erasures", current, served)
            return served

    # -- erasures after a version ---------------------------------------------------------------

    def data_time(self, tenant: str, version: str) -> datetime:
        """When ``version``'s training data was read: ``data_as_of``, else (older manifests)
        that of the version it was derived from, else its creation time."""
        for _ in range(MAX_DERIVATION_DEPTH):
            data = self._manifest_data(tenant, version)
            if data is None:
                break
            if data.get("data_as_of"):
                return _parse_time(str(data["data_as_of"]))
            base = (data.get("metrics") or {}).get("derived_from")
            if not base:
                return _parse_time(str(data.get("created_at", "")))
            version = str(base)
        return datetime.min.replace(tzinfo=UTC)

    def pending_erasures(self, tenant: str, version: str) -> list[Tombstone]:
        """Tombstones recorded after ``version``'s data was read (oldest first)."""
        if self.erasures is None:
            return []
        return self.erasures.erased_since(
            tenant, self.data_time(tenant, version) - self.clock_skew
        )

    def maps_tombstones(self, index: InfluenceIndex) -> bool:
        """Whether ``index``'s row keys can be found from erasure tombstones."""
        if index.key_scheme:
            return index.key_scheme == TOMBSTONE_KEYS
        return self.legacy_keys_are_tombstone_keys

    def clean(self, tenant: str, version: str) -> str:
        """``version`` itself when no erased person is in it, else a new derived version
        without them (saved, not promoted). Conflict when that cannot be known."""
        with self.lock.hold(tenant):
            pending = self.pending_erasures(tenant, version)
            if not pending:
                return version
            index = load_influence(version_dir(self, tenant, version))
            if index is None or not self.maps_tombstones(index):
                raise _refusal(tenant, version, self.data_time(tenant, version), pending,
                               "no influence index" if index is None else
                               "an influence index keyed by another pseudonym secret")
            keys = {tombstone_key(t.user_id_hash) for t in pending}
            rows = index.rows_of(keys)
            if rows.size == 0:
                return version
            done = self._cleaned_before(tenant, version, keys)
            if done is not None:
                return done
            _, bundle = self.load(tenant, version)
            cleaned = self._derive(tenant, version, bundle, index, rows)
            log.info("model %s of %s: %d erased rows removed as %s", version, tenant,
                     rows.size, cleaned.version)
            return str(cleaned.version)

    # -- erasure of the served version ----------------------------------------------------------

    def forget(self, bundles: BundleHolder, tenant: str, keys: Iterable[str]) -> ModelForgetResult:
        """Subtract the rows of ``keys`` (and of any other erasure the promoted version still
        holds) from the promoted version, save and promote the result, swap it in here; then
        rewrite every other version on disk that still holds them (:meth:`purge`)."""
        wanted = set(keys)
        if not self._dir(tenant).exists():  # no model at all: no lock (and no lock file)
            return ModelForgetResult("no_model")
        with self.lock.hold(tenant):
            before = self.promoted_version(tenant)
            result = self._forget_promoted(bundles, tenant, wanted)
            rewritten, deleted = self.purge(tenant, wanted)
            if before is not None and self.promoted_version(tenant) != before:
                rewritten.insert(0, before)  # the base of the new version, rewritten in _derive
            return replace(result, versions_rewritten=tuple(rewritten),
                           versions_deleted=tuple(deleted))

    def _forget_promoted(
        self, bundles: BundleHolder, tenant: str, wanted: set[str]
    ) -> ModelForgetResult:
        version = self.promoted_version(tenant)
        if version is None:
            return ModelForgetResult("no_model")
        index = load_influence(version_dir(self, tenant, version))
        if index is None:
            return ModelForgetResult("no_influence_index", version)
        own = index.rows_of(wanted)
        rows = own
        if self.maps_tombstones(index):
            earlier = self.pending_erasures(tenant, version)
            rows = np.union1d(own, index.rows_of(tombstone_key(t.user_id_hash)
                                                 for t in earlier))
        if rows.size == 0:
            return ModelForgetResult("not_in_model", version)
        bundle = self._bundle(bundles, tenant, version)
        new_bundle = self._derive(tenant, version, bundle, index, rows)
        # it replaces the promoted version in the history: a rollback goes to the version
        # promoted before, not back to this one's uncleaned base
        self._repoint(tenant, new_bundle.version)
        bundles.set(tenant, new_bundle)
        return ModelForgetResult(
            "subtracted" if own.size else "not_in_model", new_bundle.version,
            exact_neighbours(bundle.model_name, bundle.params, index), int(own.size),
            lists_dropped=getattr(bundle, "user_lists", None) is not None,
        )

    def purge(self, tenant: str, keys: Iterable[str]) -> tuple[list[str], list[str]]:
        """Make every version on disk except the promoted one free of ``keys`` and of every
        erasure recorded after it: a version whose influence index holds such rows is
        rewritten in place (same version id, the exact subtraction of :meth:`forget`, lists
        and trained parts dropped); a version without a usable influence index built before
        now is deleted (it could never be served again: :meth:`clean` refuses it). Returns
        (rewritten, deleted) version ids. Call with the tenant's lock held."""
        wanted = set(keys)
        promoted = self.promoted_version(tenant)
        now = datetime.now(UTC)
        rewritten: list[str] = []
        deleted: list[str] = []
        for manifest in self.list(tenant):
            version = manifest.version
            if version == promoted:
                continue
            directory = version_dir(self, tenant, version)
            index = load_influence(directory)
            if index is None:
                if self.data_time(tenant, version) < now:
                    shutil.rmtree(directory, ignore_errors=True)
                    deleted.append(version)
                continue
            keys_here = set(wanted)
            if self.maps_tombstones(index):
                keys_here.update(tombstone_key(t.user_id_hash)
                                 for t in self.pending_erasures(tenant, version))
            rows = index.rows_of(keys_here)
            if rows.size == 0:
                continue
            _, bundle = self.load(tenant, version)
            self._rewrite(tenant, version, bundle, index, rows)
            rewritten.append(version)
        if rewritten or deleted:
            log.info("model versions of %s after an erasure: %d rewritten, %d deleted",
                     tenant, len(rewritten), len(deleted))
        return rewritten, deleted

    # -- helpers --------------------------------------------------------------------------------

    def _cleaned_before(self, tenant: str, version: str, keys: set[str]) -> str | None:
        """The newest version derived from ``version`` that holds none of ``keys`` (a rollback
        to the same version twice serves one cleaned version, not two)."""
        derived = [m for m in self.list(tenant) if m.metrics.get("derived_from") == version]
        for manifest in reversed(derived):
            index = load_influence(version_dir(self, tenant, manifest.version))
            if index is not None and index.rows_of(keys).size == 0:
                return manifest.version
        return None

    def _bundle(self, bundles: BundleHolder, tenant: str, version: str) -> Any:
        """The bundle of ``version``: the one served here when it is that version (a peek that
        never triggers a load), else read from disk."""
        peek = getattr(bundles, "peek", None)
        cached = peek(tenant) if callable(peek) else bundles.get(tenant)
        if cached is not None and getattr(cached, "version", None) == version:
            return cached
        return self.load(tenant, version)[1]

    def _derive(
        self, tenant: str, base: str, bundle: Any, index: InfluenceIndex, rows: np.ndarray
    ) -> Any:
        """A new version without ``rows``; the base is rewritten in place the same way, so no
        copy of the erased rows stays on disk (a rollback or a pinned experiment arm naming the
        base loads the cleaned content)."""
        version = new_version()
        new_bundle, new_index = forget_rows(bundle, index, rows, version)
        manifest = self._derived_manifest(tenant, base, version)
        manifest.metrics = {**manifest.metrics, "derived_from": base,
                            "erased_rows": int(rows.size)}
        self.save(tenant, new_bundle, manifest)
        save_influence(version_dir(self, tenant, version), new_index)
        self._store_rewrite(tenant, base, replace(new_bundle, version=base), new_index,
                            int(rows.size))
        return new_bundle

    def _rewrite(
        self, tenant: str, version: str, bundle: Any, index: InfluenceIndex, rows: np.ndarray
    ) -> None:
        """``version`` itself without ``rows`` (same id)."""
        new_bundle, new_index = forget_rows(bundle, index, rows, version)
        self._store_rewrite(tenant, version, new_bundle, new_index, int(rows.size))

    def _store_rewrite(
        self, tenant: str, version: str, bundle: Any, index: InfluenceIndex, rows: int
    ) -> None:
        found = self._manifest_data(tenant, version)
        try:
            manifest = ModelManifest(**found) if found is not None else None
        except TypeError:
            manifest = None
        if manifest is None:
            manifest = ModelManifest(version=version, tenant=tenant,
                                     created_at=datetime.now(UTC).isoformat(),
                                     data_as_of=self.data_time(tenant, version).isoformat())
        manifest.metrics = {**manifest.metrics,
                            "erased_rows": int(manifest.metrics.get("erased_rows", 0)) + rows,
                            "rewritten_at": datetime.now(UTC).isoformat()}
        manifest.promoted = False
        directory = version_dir(self, tenant, version)
        save_influence(directory, index)
        self.save(tenant, bundle, manifest)

    def _derived_manifest(self, tenant: str, base: str, version: str) -> ModelManifest:
        """The base version's manifest under the new version (a fresh one if unreadable)."""
        now = datetime.now(UTC).isoformat()
        data_as_of = self.data_time(tenant, base).isoformat()
        found = self._manifest_data(tenant, base)
        try:
            if found is None:
                raise ValueError(base)
            return replace(ModelManifest(**found), version=version, created_at=now,
                           promoted=False, data_as_of=data_as_of)
        except (ValueError, TypeError):
            return ModelManifest(version=version, tenant=tenant, created_at=now,
                                 data_as_of=data_as_of)

    def _manifest_data(self, tenant: str, version: str) -> dict[str, Any] | None:
        try:
            data = json.loads((version_dir(self, tenant, version) / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def forget_in_served_model(
    models: FileModelStore, bundles: BundleHolder, tenant: str, keys: Iterable[str]
) -> ModelForgetResult:
    """Subtract the rows of ``keys`` from the promoted version (see
    :meth:`ErasureAwareModelStore.forget`; a plain store gets the file lock and no tombstones)."""
    store = models if isinstance(models, ErasureAwareModelStore) else ErasureAwareModelStore(
        models.root
    )
    return store.forget(bundles, tenant, keys)


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _refusal(
    tenant: str, version: str, built: datetime, pending: list[Tombstone], why: str
) -> Conflict:
    first = pending[0]
    more = f" and {len(pending) - 1} later erasure(s)" if len(pending) > 1 else ""
    return Conflict(
        f"model version {version!r} of tenant {tenant!r} was built from data read at "
        f"{built.isoformat()}, before erasure {first.receipt_id} at "
        f"{first.erased_at.isoformat()}{more}, and has {why} to remove the erased person; "
        "serving it could bring them back",
        field="version",
        accepted="a version trained after the erasure (personify train), or one with an "
        "influence index (trained with the privacy gate)",
        details={"version": version, "erasure_receipt": first.receipt_id,
                 "erased_at": first.erased_at.isoformat(), "erasures": len(pending)},
    )
