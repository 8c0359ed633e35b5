"""User control: declared interests and "not interested" in an item, a category or a person.

The serving chain asks :meth:`PreferenceService.muted_item_ids` on every personalized call, so a
change is honoured by the very next request. A muted item is never shown again, nor anything in
a muted category, nor a muted person (their person item and what they authored); the closest
trained neighbours of a muted item are withheld too (the "similar items demoted" rule: the
chain's hook is an exclusion set, so demotion means the nearest ``hide_similar`` are removed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from personify.domain.errors import InvalidInput
from personify.domain.privacy import MAX_MUTED, Preferences
from personify.domain.tenants import validate_tenant_id


class PreferenceStore(Protocol):
    """One :class:`Preferences` document per (tenant, user)."""

    def get(self, tenant: str, user_id: str) -> Preferences | None: ...

    def put(self, tenant: str, user_id: str, preferences: Preferences) -> Preferences: ...

    def delete_user(self, tenant: str, user_id: str) -> bool: ...


class MemoryPreferenceStore:
    """The in-process :class:`PreferenceStore` (tests, stores without a database)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], Preferences] = {}
        self._lock = threading.Lock()

    def get(self, tenant: str, user_id: str) -> Preferences | None:
        with self._lock:
            return self._data.get((validate_tenant_id(tenant), user_id))

    def put(self, tenant: str, user_id: str, preferences: Preferences) -> Preferences:
        with self._lock:
            self._data[(validate_tenant_id(tenant), user_id)] = preferences
        return preferences

    def delete_user(self, tenant: str, user_id: str) -> bool:
        with self._lock:
            return self._data.pop((validate_tenant_id(tenant), user_id), None) is not None


class MuteKind(StrEnum):
    ITEM = "item"
    CATEGORY = "category"
    PERSON = "person"


_FIELD = {
    MuteKind.ITEM: "muted_items",
    MuteKind.CATEGORY: "muted_categories",
    MuteKind.PERSON: "muted_people",
}


class CatalogView(Protocol):
    """What muting needs of the catalogue snapshot."""

    def with_label(self, label: str) -> list[str]: ...

    def authored_by(self, user_id: str) -> set[str]: ...


Neighbours = Callable[[str, int], list[tuple[str, float]]]
"""``(item_id, n) -> [(item_id, similarity)]`` from the served model."""


class PreferenceService:
    """Reads and edits preferences; resolves them into item ids the chain must not show."""

    def __init__(
        self,
        store: PreferenceStore,
        *,
        hide_similar: int = 3,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.hide_similar = hide_similar
        self.clock = clock

    def get(self, tenant: str, user_id: str) -> Preferences:
        return self.store.get(tenant, user_id) or Preferences()

    def replace(self, tenant: str, user_id: str, preferences: Preferences) -> Preferences:
        stamped = preferences.model_copy(update={"updated_at": self.clock()})
        return self.store.put(tenant, user_id, _deduplicated(stamped))

    def mute(self, tenant: str, user_id: str, kind: MuteKind, value: str) -> Preferences:
        """Add "not interested" in one item / category / person (idempotent)."""
        current = self.get(tenant, user_id)
        name = _FIELD[kind]
        values: list[str] = list(getattr(current, name))
        if value not in values:
            if len(values) >= MAX_MUTED:
                raise InvalidInput(
                    f"at most {MAX_MUTED} muted {kind.value}s per person",
                    field=name,
                    accepted="unmute some first",
                )
            values.append(value)
        return self.replace(tenant, user_id, current.model_copy(update={name: values}))

    def unmute(self, tenant: str, user_id: str, kind: MuteKind, value: str) -> Preferences:
        current = self.get(tenant, user_id)
        name = _FIELD[kind]
        values = [v for v in getattr(current, name) if v != value]
        return self.replace(tenant, user_id, current.model_copy(update={name: values}))

    def muted_item_ids(
        self,
        tenant: str,
        user_id: str,
        catalog: CatalogView | None = None,
        neighbours: Neighbours | None = None,
    ) -> set[str]:
        """Every item id the person asked not to see, with the nearest neighbours of muted
        items; empty (and cheap) for people without preferences."""
        prefs = self.store.get(tenant, user_id)
        if prefs is None:
            return set()
        out = set(prefs.muted_items)
        if neighbours is not None and self.hide_similar > 0:
            for item_id in prefs.muted_items:
                out.update(i for i, _ in neighbours(item_id, self.hide_similar))
        for person in prefs.muted_people:
            out.add(person)
            if catalog is not None:
                out |= catalog.authored_by(person)
        if catalog is not None:
            for category in prefs.muted_categories:
                out.update(catalog.with_label(category))
        return out


def _deduplicated(prefs: Preferences) -> Preferences:
    return prefs.model_copy(
        update={
            name: list(dict.fromkeys(getattr(prefs, name)))
            for name in ("declared_interests", *_FIELD.values())
        }
    )


def merge_interests(profile_interests: Iterable[str], declared: Iterable[str]) -> list[str]:
    """Profile interests with the declared ones first, without repeats."""
    return list(dict.fromkeys([*declared, *profile_interests]))
