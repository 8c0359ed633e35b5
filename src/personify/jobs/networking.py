"""``personify networking train``: learn the directional interest model of a tenant from its
person -> person events (who requested, accepted, followed, messaged, replied to, endorsed whom)
and the stored profiles; the API picks the file up within seconds."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from personify.domain.events import Event
from personify.networking.service import (
    DECISION_TYPES,
    INTERACTION_TYPES,
    model_path,
    profile_of,
    to_decision,
    to_interaction,
)
from personify.networking.state import Decision, Interaction, Profile
from personify.networking.training import fit_directional
from personify.storage.registry import Stores


@dataclass(frozen=True)
class NetworkingTrainResult:
    path: Path
    interactions: int
    people: int
    seconds: float
    forward_share: float = 0.5
    """the reciprocal combination's forward share chosen on the validation period."""
    decisions: int = 0
    """accepts / declines of the validation period used as explicit labels."""


def train_networking(
    stores: Stores, model_dir: str | Path, tenant: str, *,
    event_filter: Callable[[Event], bool] | None = None, l2: float | None = None,
) -> NetworkingTrainResult:
    """Fit on every admitted interaction event and write ``<model_dir>/networking/<tenant>.json``.
    Accepts and declines of connection requests and introductions are explicit labels
    (:func:`personify.networking.training.fit_directional`).

    Raises ValueError when there are too few interactions (fewer than 10) or no new pair in the
    most recent fifth of them to learn from."""
    started = time.perf_counter()
    interactions: list[Interaction] = []
    decisions: list[Decision] = []
    for event in stores.events.scan(tenant, types=sorted(INTERACTION_TYPES | set(DECISION_TYPES))):
        if event_filter is not None and not event_filter(event):
            continue
        x = to_interaction(event)
        if x is not None:
            interactions.append(x)
        d = to_decision(event)
        if d is not None:
            decisions.append(d)
    profiles: dict[str, Profile] = {}
    offset = 0
    while True:
        users = stores.users.list(tenant, limit=1000, offset=offset)
        for user in users:
            profiles[user.user_id] = profile_of(user)
        if len(users) < 1000:
            break
        offset += 1000
    model = fit_directional(interactions, profiles=profiles, l2=l2, decisions=decisions)
    path = model_path(model_dir, tenant)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(model.to_dict()), encoding="utf-8")
    tmp.replace(path)
    people = {p for x in interactions for p in (x.actor, x.target)}
    return NetworkingTrainResult(path, len(interactions), len(people),
                                 time.perf_counter() - started, model.forward_share,
                                 int(model.validation.get("decisions", 0)))
