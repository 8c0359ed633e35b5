"""The ``factors`` candidate source and the ingest-time fold-in of user vectors.

At ingest (:class:`UserVectorUpdater`, an ingestion listener step) every subject of an applied
batch gets their latent vector recomputed from their recent history in the online state and
stored there with ``set_user_vector`` (bounded and expiring with the rest of the user's state,
erased with it), followed by a fingerprint of the history row it was folded from. At request
time :class:`FactorSource` scores ``item_factors @ vector`` with the stored vector when its
fingerprint matches the request's history, else folds that history in on the fly (a new model
version, a restart, a merge, a bulk batch, a user known only from the event store): the answer
is always the fold-in of the current history. numpy only: no training library.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from personify.domain.errors import Unavailable
from personify.domain.events import Event
from personify.serving.bundle import ModelBundle
from personify.serving.explanations import Reason
from personify.storage.online.port import Interaction, OnlineState

if TYPE_CHECKING:
    from personify.serving.sources import RequestScope, Scored

log = logging.getLogger(__name__)

ANCHOR_SHARE = 0.3
"""A history item is named as the reason ("because you viewed X") when its contribution is at
least this share of the item's score; otherwise the reason is the generic "matches your taste"."""


class FactorSource:
    """Items whose factors best match the user's latent vector (personal)."""

    name = "factors"
    personal = True

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        from personify.serving.sources import Scored  # sources imports this module

        bundle = scope.bundle
        factors = bundle.factors if bundle is not None else None
        if bundle is None or factors is None or scope.subject is None:
            return []
        recent = scope.user_state.recent if scope.user_state is not None else []
        idx, weights = factors.history_row(bundle.items, recent)
        if idx.size == 0:  # nothing known liked: the fold-in is the zero vector
            return []
        vector = None
        if scope.state is not None:
            try:
                stored = scope.state.get_user_vector(
                    scope.tenant, factors.version, scope.subject, now=scope.now
                )
            except Unavailable as exc:
                scope.warnings.append(f"user vector unavailable: {exc.message}")
            else:
                vector = factors.unpack(stored, idx, weights) if stored is not None else None
        contrib = None  # per-history-item shares, only for explained answers
        if scope.request.explain:
            folded, contrib = factors.explained(idx, weights)
            vector = folded if vector is None else vector
        elif vector is None:
            vector = factors.fold_in(idx, weights)
        top, scores = factors.top(vector, n, exclude=idx)
        if top.size == 0:
            return []
        anchors: list[tuple[int, float]] = []
        if contrib is not None:
            parts = factors.item_factors[top].astype(np.float64) @ contrib
            best = np.argmax(parts, axis=1)
            anchors = [(int(b), float(parts[r, b])) for r, b in enumerate(best)]
        kinds = _kinds(recent) if anchors else {}
        anchor_ids = bundle.items.lookup(idx) if anchors else []
        out = []
        for r, (i, score) in enumerate(zip(bundle.items.lookup(top), scores, strict=True)):
            value = float(score)
            reason = Reason("matches_your_taste", self.name, value)
            if anchors and anchors[r][1] >= ANCHOR_SHARE * value:
                anchor = anchor_ids[anchors[r][0]]
                item = scope.catalog.get(anchor)
                title = item.title if item is not None and item.title else anchor
                kind = "because_you_bought" if kinds.get(anchor) == "purchase" else (
                    "because_you_viewed"
                )
                reason = Reason(kind, self.name, value, {"item_id": anchor, "title": title})
            out.append(Scored(i, value, reason))
        return out


def _kinds(recent: Sequence[Interaction]) -> dict[str, str]:
    """Item -> "purchase" when the history bought it, else its newest interaction type."""
    kinds: dict[str, str] = {}
    for inter in recent:
        if inter.type == "purchase" or inter.item_id not in kinds:
            kinds[inter.item_id] = inter.type
    return kinds


class UserVectorUpdater:
    """Folds each subject of an applied batch into a fresh user vector in the online state.

    Called right after ``state.apply`` with the events the privacy gate admitted; reads each
    subject's recent history back from the state (so the vector reflects everything the state
    holds, across server processes) and stores the vector, with the fingerprint of the history
    row it came from, under the factors' training version. At most ``max_subjects`` subjects
    per batch (the real-time path sends a few; a bulk batch would pay a state read per person):
    the source folds the others in on the fly, as it does whenever the fingerprint no longer
    matches the history. Does nothing while the live bundle has no factors.
    """

    def __init__(
        self,
        state: OnlineState,
        bundles: Callable[[str], ModelBundle | None],
        *,
        max_subjects: int = 64,
    ) -> None:
        self.state = state
        self.bundles = bundles
        self.max_subjects = max_subjects

    def update(self, tenant: str, events: Sequence[Event]) -> int:
        """Recompute and store the vectors of the events' subjects; returns how many."""
        bundle = self.bundles(tenant)
        factors = bundle.factors if bundle is not None else None
        if bundle is None or factors is None:
            return 0
        subjects = list(dict.fromkeys(e.subject for e in events if e.item_id is not None))
        done = 0
        for subject in subjects[: self.max_subjects]:
            recent = self.state.user_state(tenant, subject).recent
            idx, weights = factors.history_row(bundle.items, recent)
            if idx.size == 0:  # unknown, expired, erased meanwhile or nothing liked
                continue
            stored = factors.pack(factors.fold_in(idx, weights), idx, weights)
            self.state.set_user_vector(tenant, factors.version, subject, stored)
            done += 1
        return done

    def __call__(self, tenant: str, events: Sequence[Event]) -> None:
        """As :meth:`update`; a failure is logged and never fails the ingest."""
        try:
            self.update(tenant, events)
        except Unavailable as exc:
            log.warning("user vectors not updated: %s", exc.message)
        except Exception:
            log.exception("user vectors not updated")
