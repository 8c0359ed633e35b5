"""Places kept for cold items in the main list (``cold_slots``): of the n places, that many go
to items the trained model does not know yet that match the person by content; cold items the
blend ranked already count, the missing ones replace the lowest-ranked others and are spread
through the list; the tenant's default applies when the request does not say."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_chain import NOW, T, _click, service  # noqa: F401  (the shared fixture)

from personify.domain.items import Item
from personify.serving.chain import RecommendationService
from personify.serving.request import Filters, RecommendationRequest


def _shop(svc: RecommendationService) -> set[str]:
    """A toy fan, and five new toys (added after training) like what they clicked."""
    catalog = svc.catalogs(T)
    catalog.upsert([Item(item_id="i22", title="Wooden train set", categories=["toys"],
                         created_at=NOW - timedelta(days=80))])
    new = {f"n{k}": f"Wooden train wagon {k}" for k in range(5)}
    catalog.upsert([Item(item_id=i, title=title, categories=["toys"], price=float(k),
                         created_at=NOW - timedelta(minutes=5))
                    for k, (i, title) in enumerate(new.items())])
    return set(new)


def _answer(svc: RecommendationService, **options: object) -> list[str]:
    request = RecommendationRequest.model_validate({"user_id": "trainfan", "n": 10,
                                                    "sources": ["collaborative", "popular"],
                                                    "repetition": {"penalty": 1},
                                                    **options})
    return [i.item_id for i in svc.recommend(T, request).items]


def test_reserved_places_bring_cold_items_into_the_main_list(service) -> None:  # noqa: F811
    svc, state, _ = service
    new = _shop(svc)
    _click(state, "trainfan", "i22")
    warm = _answer(svc)
    assert not new & set(warm), "the trained sources cannot know new items"
    assert _answer(svc, cold_slots=0) == warm
    reserved = _answer(svc, cold_slots=3)
    cold = [i for i in reserved if i in new]
    assert len(reserved) == 10 and len(cold) == 3
    assert [i for i in reserved if i not in new] == warm[:7]  # the 3 lowest-ranked gave way
    positions = [reserved.index(i) for i in cold]
    assert positions != [7, 8, 9], positions  # spread through the list, not appended
    assert len([i for i in _answer(svc, cold_slots=8) if i in new]) == 5  # all there are
    assert len(_answer(svc, n=2, cold_slots=5)) == 2
    # the default chain asks cold_content in the blend already: its candidates are reused
    default_chain = _answer(svc, cold_slots=3, sources=None)
    assert len([i for i in default_chain if i in new]) >= 3
    # the request's filters hold for reserved places too
    cheap = _answer(svc, cold_slots=3, filters=Filters(price_max=1).model_dump())
    assert {i for i in cheap if i in new} <= {"n0", "n1"}


def test_the_tenant_default_applies_unless_the_request_says(service) -> None:  # noqa: F811
    svc, state, _ = service
    new = _shop(svc)
    _click(state, "trainfan", "i22")
    svc.cold_slots = lambda tenant: 2 if tenant == T else 0
    assert len([i for i in _answer(svc) if i in new]) == 2
    assert len([i for i in _answer(svc, cold_slots=4) if i in new]) == 4
    assert not new & set(_answer(svc, cold_slots=0))


def test_no_reserved_places_without_personalization(service) -> None:  # noqa: F811
    svc, _, _ = service
    new = _shop(svc)
    def answer(slots: int) -> list[str]:
        request = RecommendationRequest(user_id="optout", n=10, cold_slots=slots,
                                        sources=["popular"])
        return [i.item_id for i in svc.recommend(T, request).items]

    assert answer(3) == answer(0) and not new & set(answer(3))


@pytest.mark.parametrize("bad", [-1, 201])
def test_out_of_range_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="cold_slots"):
        RecommendationRequest(user_id="u", cold_slots=bad)


def test_places_are_kept_when_the_gathering_stops_before_cold_content(service  # noqa: F811
                                                                       ) -> None:
    """A fallback source that fills the pool ends the gathering before ``cold_content`` is
    asked (regression: the reserved places then stayed empty on a real catalogue)."""
    from personify.domain.events import Event

    svc, state, _ = service
    new = _shop(svc)
    _click(state, "trainfan", "i22")
    crowd = [Item(item_id=f"c{k}", title=f"Crowd pleaser {k}") for k in range(80)]
    svc.catalogs(T).upsert(crowd)
    state.apply(T, [Event.model_validate({
        "event_id": f"crowd-{k}-{j}", "type": "view", "user_id": f"fan{j}", "item_id": f"c{k}",
        "timestamp": NOW - timedelta(minutes=k)}) for k in range(80) for j in range(12)],
        now=NOW)
    answer = _answer(svc, cold_slots=3, sources=["trending", "popular", "cold_content"])
    bundle = svc.bundles(T)
    assert bundle is not None
    unknown = [i for i in answer if i not in bundle.items]  # the crowd's items are cold too
    assert len(unknown) == 3 and new & set(unknown), answer
    assert not new & set(_answer(svc, sources=["trending", "popular", "cold_content"]))
