"""``/v1/users/{id}/people`` (serve scope): people this person should meet, scored on both
sides' predicted interest, with reasons both may see; ``/v1/users/{id}/feed`` (serve scope):
the ranked networking feed; ``/v1/introductions`` (admin scope): double opt-in introductions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from personify.api.deps import (
    AdminKey,
    ErasureCheckDep,
    FeedDep,
    IntroductionsDep,
    NetworkingDep,
    ServeKey,
)
from personify.api.responses import JSONBody
from personify.api.routing import KeyFirstRoute
from personify.domain._fields import Identifier
from personify.networking.feed import FeedResponse, parse_shares
from personify.networking.introductions import IntroductionKpi, IntroductionView
from personify.networking.service import IntroductionRequest, PeopleResponse, ProposalRequest
from personify.runtime.identity import refuse_erased

router = APIRouter(prefix="/v1/users", tags=["networking"], route_class=KeyFirstRoute)


@router.get(
    "/{user_id}/people",
    response_model=PeopleResponse,
    summary="People worth meeting (reciprocal), with reasons both sides may see",
)
async def get_people(
    user_id: Identifier, key: ServeKey, networking: NetworkingDep,
    n: Annotated[int, Query(ge=1, le=100, description="how many people (1..100)")] = 10,
) -> JSONBody:
    """Served on the event loop once the tenant's network is in memory (CPU work over cached
    rankings, a few milliseconds: a thread hop per request cost more than it saved and made the
    tail explode under load); the first request of a tenant loads its network in the thread
    pool."""

    def work() -> JSONBody:
        # the tenant's tombstones, read by the service at most once a second: no erasure
        # query per request (a per-person cache missed on almost every request)
        refuse_erased(lambda tenant, person: networking.erased(tenant, person), key.tenant,
                      user_id)
        return JSONBody(networking.people_body(key.tenant, user_id, n))

    if networking.loaded(key.tenant):
        return work()
    return await run_in_threadpool(work)


@router.get(
    "/{user_id}/feed",
    response_model=FeedResponse,
    summary="The networking home feed: people, events, groups, projects and posts, explained",
)
def get_feed(
    user_id: Identifier, key: ServeKey, feed: FeedDep, erased: ErasureCheckDep,
    n: Annotated[int, Query(ge=1, le=100, description="how many entries (1..100)")] = 20,
    shares: Annotated[str | None, Query(
        max_length=200, description="per-section shares, e.g. people:0.3,events:0.2,groups:0.1,"
        "projects:0.1,content:0.3 (sections not named get none; default: those)")] = None,
) -> FeedResponse:
    refuse_erased(erased, key.tenant, user_id)
    return feed.feed(key.tenant, user_id, n, parse_shares(shares))


intros = APIRouter(prefix="/v1/introductions", tags=["networking"], route_class=KeyFirstRoute)


@intros.post(
    "", response_model=IntroductionView, status_code=201,
    summary="A asks to be introduced to B (double opt-in); a retry answers 200 with the same",
)
def request_introduction(
    body: IntroductionRequest, response: Response, key: AdminKey, flow: IntroductionsDep,
) -> IntroductionView:
    view, created = flow.request(key.tenant, body)
    if not created:
        response.status_code = 200
    return view


@intros.post(
    ":propose", response_model=list[IntroductionView],
    summary="System-proposed introductions from a person to the best of their people list "
            "(up to n pending; a retry answers the same)",
)
def propose_introductions(body: ProposalRequest, key: AdminKey,
                          flow: IntroductionsDep) -> list[IntroductionView]:
    return flow.propose(key.tenant, body.user_id, body.n)


@intros.get("/kpi", response_model=IntroductionKpi,
            summary="Introductions requested, accepted, declined, expired; acceptance rate")
def introduction_kpi(key: AdminKey, flow: IntroductionsDep) -> IntroductionKpi:
    return flow.kpi(key.tenant)


@intros.get("/{introduction_id}", response_model=IntroductionView,
            summary="An introduction as one of its two people sees it (a decline stays silent)")
def get_introduction(
    introduction_id: Identifier, key: AdminKey, flow: IntroductionsDep,
    as_user: Annotated[Identifier, Query(description="the asking or the asked person")],
) -> IntroductionView:
    return flow.get(key.tenant, introduction_id, as_user)


@intros.post("/{introduction_id}/accept", response_model=IntroductionView,
             summary="B accepts: both get each other's contact")
def accept_introduction(introduction_id: Identifier, key: AdminKey,
                        flow: IntroductionsDep) -> IntroductionView:
    return flow.answer(key.tenant, introduction_id, True)


@intros.post("/{introduction_id}/decline", response_model=IntroductionView,
             summary="B declines: final, and A is not told")
def decline_introduction(introduction_id: Identifier, key: AdminKey,
                         flow: IntroductionsDep) -> IntroductionView:
    return flow.answer(key.tenant, introduction_id, False)
