"""Model versions older than an erasure never bring the person back: promote, rollback, the
servers' registry and a training that ran during the erasure all serve the version without them
(exactly), or refuse a version whose influence index cannot name them."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from personify.domain.errors import Conflict
from personify.domain.events import Event
from personify.jobs.training import TrainingConfig, train_bundle, train_tenant
from personify.privacy.erasure import ErasureService
from personify.privacy.model_influence import load_influence, save_influence, version_dir
from personify.privacy.model_versions import ErasureAwareModelStore
from personify.privacy.pseudonyms import tombstone_key
from personify.privacy.runtime import PrivacyRuntime
from personify.serving.bundle import ModelBundle
from personify.serving.model_registry import BundleRegistry
from personify.storage.model_files import FileModelStore
from personify.storage.registry import Stores

T = "default"
NOW = datetime.now(UTC).replace(microsecond=0)
CONFIG = TrainingConfig(learn_blend=False, train_ranker=False)


def _events(seed: int, users: range, items: int = 30) -> list[Event]:
    rng = random.Random(seed)
    return [
        Event(event_id=f"e{seed}-{u}-{j}", type=rng.choice(["view", "click", "purchase"]),
              user_id=f"u{u}", item_id=f"i{rng.randint(0, items)}",
              timestamp=NOW - timedelta(hours=rng.randint(1, 400)))
        for u in users for j in range(rng.randint(2, 7))
    ]


@pytest.fixture
def models(runtime: PrivacyRuntime, tmp_path: Path) -> ErasureAwareModelStore:
    return runtime.model_store(tmp_path / "models")


def _train(stores: Stores, models: FileModelStore, runtime: PrivacyRuntime | None,
           *, promote: bool = True) -> str:
    manifest = train_tenant(stores.events, models, T, CONFIG, promote=promote,
                            privacy=runtime.training() if runtime is not None else None)
    return manifest.version


def _erase(runtime: PrivacyRuntime, models: ErasureAwareModelStore, registry: Any,
           user_id: str) -> Any:
    service = runtime.erasure(forget_model=lambda t, keys: models.forget(registry, t, keys))
    return service.erase_user(T, user_id)


def _neighbours(bundle: ModelBundle) -> dict[tuple[str, str], float]:
    m = bundle.neighbours.tocoo()
    ids = bundle.items.ids
    return {(ids[r], ids[c]): round(float(v), 5)
            for r, c, v in zip(m.row, m.col, m.data, strict=True) if v != 0}


def _popularity(bundle: ModelBundle) -> dict[str, float]:
    return {i: round(float(v), 4) for i, v in zip(bundle.items.ids, bundle.popularity,
                                                   strict=True) if v > 0}


def _key(stores: Stores, user_id: str) -> str:
    return tombstone_key(stores.erasures.user_id_hash(T, user_id))


def test_rollback_past_an_erasure_serves_the_old_version_without_the_person(
    stores: Stores, runtime: PrivacyRuntime, models: ErasureAwareModelStore
) -> None:
    first = _events(1, range(25))
    stores.events.append(T, first)
    v1 = _train(stores, models, runtime)
    stores.events.append(T, _events(2, range(20, 40)))
    v2 = _train(stores, models, runtime)
    registry = BundleRegistry(models, prepare=models.servable)
    assert registry.version(T) == v2

    receipt = _erase(runtime, models, registry, "u3")
    assert receipt.model.status == "subtracted" and receipt.model.version != v2
    assert models.promoted_version(T) == receipt.model.version

    served = models.rollback(T)
    assert served == v1, "v1 was rewritten in place at the erasure: it is served as it is"
    assert models.promoted_version(T) == served and models.history(T)[-1] == served
    manifest, bundle = models.load(T, served)
    assert manifest.metrics["erased_rows"] == 1 and "derived_from" not in manifest.metrics
    index = load_influence(version_dir(models, T, served))
    assert index is not None and _key(stores, "u3") not in index.keys
    # exactly v1 as if u3 had never existed
    fresh, _ = train_bundle([e for e in first if e.user_id != "u3"], CONFIG, version="x")
    assert _neighbours(bundle) == _neighbours(fresh)
    assert _popularity(bundle) == _popularity(fresh)
    # promoting v1 again serves the same version (no new derivative each time)
    assert models.promote(T, v1) == served


def _holders(models: FileModelStore, stores: Stores, user_id: str) -> list[str]:
    """Every file under the model directory holding ``user_id``'s row key or plain id."""
    key = _key(stores, user_id).encode()
    found = []
    for path in Path(models.root).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if key in data or f"{user_id}\x00".encode() in data or (
                path.suffix == ".pkl" and _pickled_ids(path, user_id)
            ):
                found.append(str(path.relative_to(models.root)))
    return found


def _pickled_ids(path: Path, user_id: str) -> bool:
    from personify.storage.model_files import load_artifact

    bundle = load_artifact(path)
    lists = getattr(bundle, "user_lists", None)
    return bool(lists is not None and lists.users.get(user_id) >= 0) or (
        user_id in repr(getattr(bundle, "parts", None))
    )


def test_after_an_erasure_no_version_on_disk_holds_the_person(
    stores: Stores, runtime: PrivacyRuntime, models: ErasureAwareModelStore
) -> None:
    stores.events.append(T, _events(8, range(30)))
    v1 = _train(stores, models, runtime)
    v2 = _train(stores, models, runtime, promote=False)  # trained, never promoted
    no_index = _train(stores, models, None, promote=False)
    v3 = _train(stores, models, runtime)
    assert len(_holders(models, stores, "u6")) >= 4, "the check sees the person before"
    registry = BundleRegistry(models, prepare=models.servable)

    receipt = _erase(runtime, models, registry, "u6")

    assert _holders(models, stores, "u6") == []
    assert set(receipt.model.versions_rewritten) == {v1, v2, v3}
    assert receipt.model.versions_deleted == (no_index,)
    assert not version_dir(models, T, no_index).exists()
    # every kept version is exactly its training without the person
    fresh, _ = train_bundle([e for e in stores.events.scan(T)], CONFIG, version="x")
    for version in (v1, v2, v3, models.promoted_version(T)):
        _, bundle = models.load(T, version)
        assert _neighbours(bundle) == _neighbours(fresh), version
        assert _popularity(bundle) == _popularity(fresh), version
    # a rollback serves v1 as rewritten (no derivative needed)
    assert models.rollback(T) == v1


def test_a_version_without_influence_index_is_refused_after_an_erasure(
    stores: Stores, runtime: PrivacyRuntime, models: ErasureAwareModelStore
) -> None:
    stores.events.append(T, _events(3, range(20)))
    new = _train(stores, models, runtime)
    receipt = _erase(runtime, models, BundleRegistry(models), "u5")
    current = models.promoted_version(T)
    assert current is not None and current != new
    # a version without an index whose data predates the erasure (e.g. copied back from a
    # backup, or saved by a training that ran without the privacy gate during the erasure)
    old = _train(stores, models, None, promote=False)
    stores.erasures.record(T, stores.erasures.user_id_hash(T, "u5"), NOW + timedelta(hours=1),
                           receipt.receipt_id)

    with pytest.raises(Conflict) as refused:
        models.promote(T, old)
    message = refused.value.message
    assert old in message and receipt.receipt_id in message and "no influence index" in message
    assert refused.value.field == "version"
    assert refused.value.details["erasure_receipt"] == receipt.receipt_id
    assert models.promoted_version(T) == current

    raw = FileModelStore(models.root)  # history [.., current, old, current]: back to `old`
    raw.promote(T, old)
    raw.promote(T, current)
    history = models.history(T)
    with pytest.raises(Conflict):
        models.rollback(T)  # back to `old`: refused, nothing changes
    assert models.history(T) == history
    assert models.promoted_version(T) == current


def test_a_version_trained_after_the_erasure_needs_no_index(
    stores: Stores, runtime: PrivacyRuntime, tmp_path: Path
) -> None:
    models = ErasureAwareModelStore(tmp_path / "m", erasures=stores.erasures,
                                    clock_skew=timedelta(0))
    stores.events.append(T, _events(4, range(15)))
    ErasureService(
        users=stores.users, events=stores.events, consents=stores.consents,
        erasures=stores.erasures, pseudonyms=runtime.pseudonyms,
        clock=lambda: NOW - timedelta(minutes=5),
    ).erase_user(T, "u2")
    plain = _train(stores, models, None, promote=False)
    assert models.promote(T, plain) == plain, "its data was read after the erasure"


def test_registry_cleans_or_refuses_a_version_promoted_behind_its_back(
    stores: Stores, runtime: PrivacyRuntime, models: ErasureAwareModelStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stores.events.append(T, _events(5, range(20)))
    v1 = _train(stores, models, runtime)
    raw = FileModelStore(models.root)  # e.g. an older release promoting without the check
    # v1 as it was before the erasure (an older release kept no rewrite): a backup copy
    backup = "19990101T000000000000Z"
    _, v1_bundle = raw.load(T, v1)
    raw.save(T, v1_bundle, replace(raw.load(T, v1)[0], version=backup))
    v1_index = load_influence(version_dir(models, T, v1))
    assert v1_index is not None
    save_influence(version_dir(models, T, backup), v1_index)
    _erase(runtime, models, BundleRegistry(models), "u7")
    assert load_influence(version_dir(models, T, backup)) is None or _key(stores, "u7") not in (
        load_influence(version_dir(models, T, backup)).keys  # type: ignore[union-attr]
    ), "the sweep cleaned the copy too"
    # put the raw copy back behind the store's back and promote it with an older release
    raw.save(T, v1_bundle, replace(raw.load(T, v1)[0], version=backup))
    save_influence(version_dir(models, T, backup), v1_index)
    raw.promote(T, backup)

    registry = BundleRegistry(models, prepare=models.servable)
    bundle = registry.get(T)
    assert bundle is not None and bundle.version != backup
    assert models.promoted_version(T) == bundle.version, "the pointer follows the clean one"
    index = load_influence(version_dir(models, T, bundle.version))
    assert index is not None and _key(stores, "u7") not in index.keys

    no_index = _train(stores, models, None, promote=False)
    stores.erasures.record(T, stores.erasures.user_id_hash(T, "u7"), NOW + timedelta(hours=1),
                           "later")
    raw.promote(T, no_index)
    with caplog.at_level(logging.ERROR, logger="personify.serving.model_registry"):
        assert registry.refresh() == []
    assert registry.get(T) is bundle, "the refused version is not served; the clean one stays"
    assert no_index in caplog.text and "erasure" in caplog.text


def test_a_training_that_ran_during_an_erasure_is_promoted_without_the_person(
    stores: Stores, runtime: PrivacyRuntime, models: ErasureAwareModelStore
) -> None:
    events = _events(6, range(25))
    stores.events.append(T, events)

    class EraseMidScan:
        """The event store, with u4 erased right after the training pass read every event."""

        def __init__(self) -> None:
            self.erased = False

        def scan(self, tenant: str, **kwargs: Any) -> Iterator[Event]:
            yield from stores.events.scan(tenant, **kwargs)
            if not self.erased:
                self.erased = True
                _erase(runtime, models, BundleRegistry(models), "u4")

        def __getattr__(self, name: str) -> Any:
            return getattr(stores.events, name)

    manifest = train_tenant(EraseMidScan(), models, T, CONFIG, privacy=runtime.training())
    served = models.promoted_version(T)
    assert manifest.promoted is False and manifest.metrics["promoted_as"] == served
    trained = load_influence(version_dir(models, T, manifest.version))
    derived, _ = models.load(T, served)
    assert derived.metrics["derived_from"] == manifest.version
    assert derived.metrics["erased_rows"] == 1, "the model saw u4"
    assert trained is not None and _key(stores, "u4") not in trained.keys, (
        "the trained version itself was rewritten without u4 when promoted"
    )
    _, bundle = models.load(T, served)
    fresh, _ = train_bundle([e for e in events if e.user_id != "u4"], CONFIG, version="x")
    assert _popularity(bundle) == _popularity(fresh)
    assert _neighbours(bundle) == _neighbours(fresh)
