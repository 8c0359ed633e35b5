"""The Quantum Computing Stack Exchange network as demo data (``personify demo --dataset
network``): its people as users (name, about-me, topics they answer as skills and ask about as
interests, the profile link and the CC BY-SA attribution in properties), its answers and
comments as ``reply`` events between them (thread, topics, the post's link), its tags as
``group`` items (the tag wiki excerpt as description) and its questions as ``post`` items (title,
author, tags, link, attribution) for the networking feed.

The data set is not bundled (CC BY-SA: anything derived from it must stay CC BY-SA): it is read
from the shared datasets folder.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from personify.data.stackexchange import ATTRIBUTION, DATASET_NAME, SENetwork, load_stackexchange
from personify.domain import limits
from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import Profile, User
from personify.ingestion.events import EventIngestor
from personify.networking import stackexchange as se
from personify.storage.registry import Stores

ATTRIBUTION_SHORT = (
    "Source: Quantum Computing Stack Exchange (https://quantumcomputing.stackexchange.com), "
    "by its contributors, CC BY-SA 3.0/4.0"
)


@dataclass(frozen=True)
class NetworkCounts:
    people: int
    events: int
    items: int = 0


def default_dataset_dir() -> Path:
    root = os.environ.get("PERSONIFY_DATASETS_DIR")
    if root:
        return Path(root) / DATASET_NAME
    return Path.cwd().parent / "shared" / "datasets" / DATASET_NAME


def network_users(network: SENetwork) -> list[User]:
    offers: dict[str, Counter[str]] = {}
    seeks: dict[str, Counter[str]] = {}
    for x in se.interactions(network):
        giver, taker = (x.actor, x.target) if x.offered is not False else (x.target, x.actor)
        offers.setdefault(giver, Counter()).update(x.tags)
        seeks.setdefault(taker, Counter()).update(x.tags)
    active = set(offers) | set(seeks)
    users = []
    for pid in sorted(active):
        person = network.people[pid]
        users.append(User(
            user_id=pid,
            profile=Profile(
                name=person.display_name[: limits.MAX_SHORT_TEXT] or None,
                bio=person.about_me[: limits.MAX_LONG_TEXT] or None,
                skills=[t for t, _ in offers.get(pid, Counter()).most_common(5)],
                interests=[t for t, _ in seeks.get(pid, Counter()).most_common(5)],
            ),
            properties={"profile_url": person.profile_url, "attribution": ATTRIBUTION_SHORT},
        ))
    return users


def network_events(network: SENetwork) -> list[Event]:
    urls = {q.question_id: q.url for q in network.questions.values()}
    events = []
    for i, x in enumerate(se.interactions(network)):
        props: dict[str, object] = {"person_id": x.target, "topics": list(x.tags[:20]),
                                    "offered": x.offered is not False, "source": "stackexchange"}
        if x.thread is not None:
            props["thread"] = x.thread
            if x.thread in urls:
                props["url"] = urls[x.thread]
        events.append(Event.model_validate({
            "event_id": f"se-{i}-{x.kind}-{x.actor}-{x.target}", "type": "reply",
            "user_id": x.actor, "timestamp": x.timestamp, "properties": props,
        }))
    return events


def network_items(network: SENetwork) -> list[Item]:
    """Tags as groups and questions as posts (the question's link, its author and the
    attribution in properties: whoever shows them can credit the source and the author)."""
    site = "https://quantumcomputing.stackexchange.com"
    items = [
        Item(item_id=f"tag:{tag}", type="group", title=tag[: limits.MAX_SHORT_TEXT],
             description=(excerpt or "")[: limits.MAX_LONG_TEXT], tags=[tag],
             properties={"url": f"{site}/questions/tagged/{tag}",
                         "attribution": ATTRIBUTION_SHORT})
        for tag, excerpt in sorted(network.tags.items())
    ]
    for q in sorted(network.questions.values(), key=lambda q: q.question_id):
        author = network.people.get(q.owner)
        if author is None:  # no author to credit (a deleted account): not shown
            continue
        items.append(Item(
            item_id=f"q:{q.question_id}", type="post", title=q.title[: limits.MAX_SHORT_TEXT],
            tags=list(q.tags[:20]), author_id=author.user_id, created_at=q.created,
            properties={"url": q.url, "attribution": ATTRIBUTION_SHORT, "source": "stackexchange",
                        "author_name": author.display_name[: limits.MAX_SHORT_TEXT],
                        "author_url": author.profile_url},
        ))
    return items


def load_network_demo(stores: Stores, tenant: str, ingestor: EventIngestor,
                      dataset: str | Path | None = None) -> NetworkCounts:
    """Load (idempotently: users are upserted, events keep their ids) the whole network."""
    network = load_stackexchange(dataset or default_dataset_dir())
    users = network_users(network)
    stores.users.upsert(tenant, users)
    items = network_items(network)
    stores.catalog.upsert(tenant, items)
    events = network_events(network)
    result = ingestor.ingest(tenant, events)
    if result.rejected:
        first = result.rejected[0]
        raise ValueError(f"{len(result.rejected)} network events refused, e.g. {first}")
    return NetworkCounts(len(users), len(events), len(items))


__all__ = ["ATTRIBUTION", "ATTRIBUTION_SHORT", "NetworkCounts", "load_network_demo"]
