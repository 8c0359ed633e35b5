"""A small, deterministic shop for the dashboard tests: users with a favourite category, items,
views, carts, purchases, logged recommendations with clicks, consents, and a trained model."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.events import Context, Event, Location
from personify.domain.items import Item
from personify.domain.users import Profile, User
from personify.jobs.training import TrainingConfig, train_tenant
from personify.storage.model_files import FileModelStore, ModelManifest
from personify.storage.registry import Stores

TENANT = "default"
CATEGORIES = ("mugs", "lamps", "bags", "toys")
COUNTRIES = ("DE", "GB", "FR", "RU")
N_USERS = 30
N_ITEMS = 60


def item_id(i: int) -> str:
    return f"i{i:02d}"


def user_id(u: int) -> str:
    return f"u{u:02d}"


def make_items() -> list[Item]:
    return [
        Item(
            item_id=item_id(i),
            title=f"{CATEGORIES[i % 4].rstrip('s').title()} no. {i}",
            categories=[CATEGORIES[i % 4]],
            price=5.0 + i,
            currency="EUR",
            created_at=datetime(2024, 1, 1, tzinfo=UTC),
        )
        for i in range(N_ITEMS)
    ]


def make_users() -> list[User]:
    return [
        User(
            user_id=user_id(u),
            profile=Profile(
                name=f"Customer {u}",
                email=f"customer{u}@example.org",
                country=COUNTRIES[u % 4],
                language="ru" if u % 4 == 3 else "en",
            ),
        )
        for u in range(N_USERS)
    ]


def make_events(now: datetime, seed: int = 7) -> list[Event]:
    """About 1,500 events over the ten days before ``now``."""
    rng = random.Random(seed)
    events: list[Event] = []
    n = 0

    def add(**fields: object) -> None:
        nonlocal n
        n += 1
        events.append(Event(event_id=f"e{n:05d}", **fields))  # type: ignore[arg-type]

    for u in range(N_USERS):
        favourite = u % 4
        country = COUNTRIES[u % 4]
        for _ in range(35):
            ts = now - timedelta(minutes=rng.randint(5, 10 * 24 * 60))
            cat = favourite if rng.random() < 0.8 else rng.randrange(4)
            item = item_id(cat + 4 * rng.randrange(N_ITEMS // 4))
            kind = rng.choices(["view", "add_to_cart", "purchase"], [0.7, 0.15, 0.15])[0]
            add(type=kind, user_id=user_id(u), item_id=item, timestamp=ts,
                price=5.0 + int(item[1:]) if kind == "purchase" else None,
                order_id=f"o{n}" if kind == "purchase" else None,
                context=Context(channel="web", location=Location(country=country)))
        for k in range(4):
            ts = now - timedelta(hours=rng.randint(1, 200))
            shown = [item_id(rng.randrange(N_ITEMS)) for _ in range(5)]
            rec = f"r{u:02d}{k}"
            add(type="impression", user_id=user_id(u), item_ids=shown, recommendation_id=rec,
                timestamp=ts, context=Context(channel="web" if k % 2 else "app"),
                properties={"sources": ["collaborative", "popular", "trending", "session",
                                        "collaborative"]})
            if rng.random() < 0.4:
                add(type="click", user_id=user_id(u), item_id=shown[0], recommendation_id=rec,
                    timestamp=ts + timedelta(seconds=30), context=Context(channel="web"))
    return events


def load_shop(stores: Stores, *, now: datetime | None = None) -> None:
    """Fill ``stores`` with the shop (users, items, events, a few consents)."""
    now = now or datetime.now(UTC)
    stores.catalog.upsert(TENANT, make_items())
    stores.users.upsert(TENANT, make_users())
    stores.events.append(TENANT, make_events(now))
    stores.consents.append(
        TENANT, ConsentRecord(user_id=user_id(1), purpose="personalization",
                              state=ConsentState.GRANTED, source="test")
    )
    stores.consents.append(
        TENANT, ConsentRecord(user_id=user_id(2), purpose="email_marketing",
                              state=ConsentState.DENIED, source="test")
    )


def train_shop_model(stores: Stores, model_dir: Path) -> ModelManifest:
    """Train and promote a small item-kNN bundle on the shop's events."""
    return train_tenant(
        stores.events, FileModelStore(model_dir), TENANT,
        TrainingConfig(model="itemknn", learn_blend=False, train_ranker=False,
                       params={"k": 20, "shrink": 1.0, "similarity": "cosine", "alpha": 0.5}),
    )
