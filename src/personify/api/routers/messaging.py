"""``/v1/messaging``: templates (CRUD and preview for a person), journeys (from YAML / JSON,
enable / disable, a person's run), campaigns, outbox status (admin scope); and the in-app inbox
a client pulls for one person (serve scope).

Definition bodies are JSON, or YAML with ``Content-Type: application/yaml``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, TypeAdapter
from starlette.concurrency import run_in_threadpool

from personify.api.deps import AdminKey, MessagingDep, ServeKey, SettingsDep
from personify.api.openapi import documented_body
from personify.api.routing import KeyFirstRoute, check_json_types
from personify.api.schemas.messaging import (
    CampaignList,
    CampaignOut,
    ChannelIn,
    ChannelList,
    ChannelOut,
    InboxEntryOut,
    InboxList,
    JourneyList,
    JourneyOut,
    JourneyStepResultsOut,
    MarkRead,
    MarkReadOut,
    MessageStatusOut,
    OutboxCounts,
    PreviewOut,
    PreviewRequest,
    RunOut,
    TemplateList,
    TemplateSummary,
    TestResultsOut,
)
from personify.domain._fields import Identifier
from personify.domain.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from personify.messaging.campaigns import Campaign
from personify.messaging.inbox import list_inbox, mark_read
from personify.messaging.journey_definitions import JourneyDefinition, SendStep
from personify.messaging.templates import MessageTemplate
from personify.runtime.messaging import MessagingRuntime
from personify.runtime.messaging_definitions import (
    CHANNEL,
    JOURNEY,
    TEMPLATE,
    builtin_journey_documents,
    parse_document,
)

router = APIRouter(prefix="/v1/messaging", tags=["messaging"], route_class=KeyFirstRoute)
inbox_router = APIRouter(prefix="/v1/messaging/inbox", tags=["inbox"], route_class=KeyFirstRoute)

DefinitionName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
]
MAX_DEFINITION_BYTES = 512 * 1024


_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {}


async def _document(
    request: Request, name: str, what: str, max_bytes: int, model: type[BaseModel] | None = None
) -> dict[str, Any]:
    """The body as a mapping whose ``name`` is the one in the path (filled in when absent); a
    JSON body's values have the JSON types ``model`` names (``false`` is not an integer)."""
    raw = await request.body()
    if len(raw) > min(max_bytes, MAX_DEFINITION_BYTES):
        raise LimitExceeded(
            f"the {what} is too large", field="body", accepted=f"<= {MAX_DEFINITION_BYTES} bytes"
        )
    document = parse_document(raw, request.headers.get("content-type"), what=what)
    if model is not None and "yaml" not in request.headers.get("content-type", ""):
        adapter = _ADAPTERS.get(model)
        if adapter is None:
            adapter = _ADAPTERS[model] = TypeAdapter(model)
        check_json_types(adapter, raw)
    if document.get("name") is None:  # absent or null: the URL's
        document["name"] = name
    if document["name"] != name:
        raise InvalidInput(
            f"the {what} is named {document['name']!r} but the URL says {name!r}",
            field="name",
            accepted=f"{name!r} (or leave name out of the body)",
        )
    return document


# -- templates -------------------------------------------------------------------------------


@router.get("/templates", response_model=TemplateList, summary="List message templates")
def list_templates(key: AdminKey, messaging: MessagingDep) -> TemplateList:
    summaries = []
    for stored in messaging.definitions.templates(key.tenant):
        template = MessageTemplate.parse(stored.body)
        summaries.append(
            TemplateSummary(
                name=template.name,
                channel=template.channel,
                recommendations=template.recommendations,
                variants=[f"{v.language}/{v.tone}" for v in template.variants],
                updated_at=stored.updated_at,
            )
        )
    return TemplateList(templates=summaries)


@router.put(
    "/templates/{name}",
    response_model=MessageTemplate,
    summary="Create or replace a template (JSON, or YAML with Content-Type: application/yaml)",
    openapi_extra=documented_body(MessageTemplate, many=False, from_path=("name",)),
)
async def put_template(
    name: DefinitionName, request: Request, response: Response, key: AdminKey,
    messaging: MessagingDep, settings: SettingsDep,
) -> MessageTemplate:
    document = await _document(
        request, name, "template", settings.max_request_bytes, MessageTemplate
    )
    template = await run_in_threadpool(messaging.definitions.save_template, key.tenant, document)
    warnings = messaging.definitions.template_warnings(template)
    if warnings:  # said when the template is configured, not discovered at the first click
        response.headers["X-Personify-Warning"] = " | ".join(warnings)
    return template


@router.get("/templates/{name}", response_model=MessageTemplate, summary="Get a template")
def get_template(name: DefinitionName, key: AdminKey, messaging: MessagingDep) -> MessageTemplate:
    stored = messaging.definitions.store.get(key.tenant, TEMPLATE, name)
    if stored is None:
        raise _missing("template", name)
    return MessageTemplate.parse(stored.body)


@router.delete("/templates/{name}", status_code=204, summary="Delete a template")
def delete_template(name: DefinitionName, key: AdminKey, messaging: MessagingDep) -> Response:
    if not messaging.definitions.delete(key.tenant, TEMPLATE, name):
        raise _missing("template", name)
    return Response(status_code=204)


@router.post(
    "/templates/{name}/preview",
    response_model=PreviewOut,
    summary="Render a template for one person with their current recommendations (not sent)",
)
def preview_template(
    name: DefinitionName, body: PreviewRequest, key: AdminKey, messaging: MessagingDep
) -> PreviewOut:
    rendered, items = messaging.preview(
        key.tenant, name, body.user_id, cart_item_ids=body.cart_item_ids,
        discount_percent=body.discount_percent, event=body.event,
    )
    return PreviewOut(
        subject=rendered.subject, preheader=rendered.preheader, html=rendered.html,
        text=rendered.text, language=rendered.language, tone=rendered.tone,
        recommendations=[i.item_id for i in items],
    )


# -- journeys --------------------------------------------------------------------------------


def _journey_out(
    messaging: MessagingRuntime, tenant: str, journey: JourneyDefinition, enabled: bool,
    document: dict[str, Any], updated_at: Any = None,
) -> JourneyOut:
    wanted = {s.template for s in journey.steps if isinstance(s, SendStep)}
    missing = sorted(t for t in wanted if messaging.definitions.template(tenant, t) is None)
    return JourneyOut(
        name=journey.name, enabled=enabled, description=journey.description,
        trigger=journey.trigger.model_dump(mode="json", exclude_defaults=True),
        document=document, missing_templates=missing, updated_at=updated_at,
    )


@router.get("/journeys", response_model=JourneyList, summary="List journeys and the examples")
def list_journeys(key: AdminKey, messaging: MessagingDep) -> JourneyList:
    found = []
    for stored in messaging.definitions.journeys(key.tenant):
        journey, enabled = messaging.definitions.journey(key.tenant, stored.name) or (None, False)
        if journey is not None:
            found.append(
                _journey_out(messaging, key.tenant, journey, enabled, stored.body,
                             stored.updated_at)
            )
    return JourneyList(journeys=found, builtin=sorted(builtin_journey_documents()))


@router.put(
    "/journeys/{name}",
    response_model=JourneyOut,
    summary="Create or replace a journey (JSON, or YAML with Content-Type: application/yaml)",
    openapi_extra=documented_body(JourneyDefinition, many=False, from_path=("name",)),
)
async def put_journey(
    name: DefinitionName, request: Request, key: AdminKey, messaging: MessagingDep,
    settings: SettingsDep, enabled: Annotated[bool, Query()] = True,
) -> JourneyOut:
    document = await _document(
        request, name, "journey", settings.max_request_bytes, JourneyDefinition
    )

    def save() -> JourneyOut:
        journey = messaging.definitions.save_journey(key.tenant, document, enabled=enabled)
        return _journey_out(messaging, key.tenant, journey, enabled, document)

    return await run_in_threadpool(save)


@router.get("/journeys/{name}", response_model=JourneyOut, summary="Get a journey")
def get_journey(name: DefinitionName, key: AdminKey, messaging: MessagingDep) -> JourneyOut:
    stored = messaging.definitions.store.get(key.tenant, JOURNEY, name)
    found = messaging.definitions.journey(key.tenant, name)
    if stored is None or found is None:
        raise _missing("journey", name)
    return _journey_out(messaging, key.tenant, found[0], found[1], stored.body, stored.updated_at)


@router.post(
    "/journeys/{name}/enable",
    response_model=JourneyOut,
    summary="Enable a stored journey, or copy and enable the example of that name",
)
def enable_journey(name: DefinitionName, key: AdminKey, messaging: MessagingDep) -> JourneyOut:
    if not messaging.definitions.set_journey_enabled(key.tenant, name, True):
        document = builtin_journey_documents().get(name)
        if document is None:
            raise _missing("journey", name, "a stored journey or an example (GET /journeys)")
        messaging.definitions.save_journey(key.tenant, document, enabled=True, source=name)
    return get_journey(name, key, messaging)


@router.post("/journeys/{name}/disable", response_model=JourneyOut, summary="Disable a journey")
def disable_journey(name: DefinitionName, key: AdminKey, messaging: MessagingDep) -> JourneyOut:
    if not messaging.definitions.set_journey_enabled(key.tenant, name, False):
        raise _missing("journey", name)
    return get_journey(name, key, messaging)


@router.delete("/journeys/{name}", status_code=204, summary="Delete a journey")
def delete_journey(name: DefinitionName, key: AdminKey, messaging: MessagingDep) -> Response:
    if not messaging.definitions.delete(key.tenant, JOURNEY, name):
        raise _missing("journey", name)
    return Response(status_code=204)


@router.get(
    "/journeys/{name}/runs/{user_id}",
    response_model=RunOut,
    summary="A person's latest run through a journey",
)
def get_run(
    name: DefinitionName, user_id: Identifier, key: AdminKey, messaging: MessagingDep
) -> RunOut:
    run = messaging.state.runs.latest(key.tenant, name, user_id)
    if run is None:
        raise NotFound(
            f"user {user_id!r} never entered journey {name!r}", field="user_id",
            accepted="a person who entered the journey",
        )
    return RunOut.of(run)


# -- campaigns and the outbox ----------------------------------------------------------------


@router.post(
    "/campaigns",
    response_model=CampaignOut,
    summary="Store and schedule a campaign: one message per person in the audience",
    openapi_extra=documented_body(Campaign, many=False),
)
async def post_campaign(
    request: Request, key: AdminKey, messaging: MessagingDep, settings: SettingsDep
) -> CampaignOut:
    raw = await request.body()
    document = parse_document(raw, request.headers.get("content-type"), what="campaign")

    def schedule() -> CampaignOut:
        campaign, enqueued = messaging.send_campaign(key.tenant, document)
        return CampaignOut(
            name=campaign.name, template=campaign.template, enqueued=enqueued,
            variants=[v.name for v in campaign.variants or []],
            decide_at=campaign.test_end().isoformat() if campaign.winner else None,
        )

    return await run_in_threadpool(schedule)


@router.get("/campaigns", response_model=CampaignList, summary="List stored campaigns")
def list_campaigns(key: AdminKey, messaging: MessagingDep) -> CampaignList:
    return CampaignList(campaigns=[s.body for s in messaging.definitions.campaigns(key.tenant)])


@router.get(
    "/campaigns/{name}/results",
    response_model=TestResultsOut,
    summary="A test campaign's analysis: opens, clicks, conversions, revenue per recipient, "
    "unsubscribes per variant, the comparisons with the control and the winner decision",
)
def campaign_results(
    name: DefinitionName, key: AdminKey, messaging: MessagingDep
) -> TestResultsOut:
    _, _, _, document = messaging.test_results(key.tenant, name)
    return TestResultsOut(campaign=name, **document)


@router.get(
    "/journeys/{name}/steps/{step_id}/results",
    response_model=JourneyStepResultsOut,
    summary="A journey step's A/B/n test: opens, clicks, conversions, revenue per recipient, "
    "unsubscribes per variant and the comparisons with the control",
)
def journey_step_results(
    name: DefinitionName, step_id: DefinitionName, key: AdminKey, messaging: MessagingDep,
    days: Annotated[float, Query(gt=0, le=3650, description="sends of the last days")] = 90,
) -> JourneyStepResultsOut:
    document = messaging.journey_step_results(key.tenant, name, step_id, days=days)
    return JourneyStepResultsOut(campaign=document["test"], **document)


@router.get("/outbox", response_model=OutboxCounts, summary="Messages per delivery status")
def outbox_counts(key: AdminKey, messaging: MessagingDep) -> OutboxCounts:
    return OutboxCounts(counts=messaging.state.outbox.counts(key.tenant))


@router.get(
    "/outbox/{message_id}", response_model=MessageStatusOut, summary="One message's status"
)
def outbox_message(
    message_id: Annotated[str, Path(max_length=64)], key: AdminKey, messaging: MessagingDep
) -> MessageStatusOut:
    message = messaging.state.outbox.get(message_id)
    if message is None or message.tenant != key.tenant:
        raise NotFound(
            f"no message {message_id!r}", field="message_id", accepted="an outbox message id"
        )
    return MessageStatusOut.of(message)


# -- webhook channels ------------------------------------------------------------------------


@router.get("/channels", response_model=ChannelList, summary="List webhook channels (no secrets)")
def list_channels(key: AdminKey, messaging: MessagingDep) -> ChannelList:
    return ChannelList(
        channels=[ChannelOut.model_validate(c) for c in messaging.channel_list(key.tenant)]
    )


@router.put(
    "/channels/{name}",
    response_model=ChannelOut,
    summary="Create or replace a webhook channel of this tenant (the secret is never returned)",
    openapi_extra=documented_body(ChannelIn, many=False),
)
async def put_channel(
    name: DefinitionName, request: Request, key: AdminKey, messaging: MessagingDep,
    settings: SettingsDep,
) -> ChannelOut:
    document = await _document(request, name, "channel", settings.max_request_bytes)
    saved = await run_in_threadpool(messaging.save_channel, key.tenant, document)
    return ChannelOut.model_validate(saved)


@router.get("/channels/{name}", response_model=ChannelOut, summary="Get a webhook channel")
def get_channel(name: DefinitionName, key: AdminKey, messaging: MessagingDep) -> ChannelOut:
    for channel in messaging.channel_list(key.tenant):
        if channel["name"] == name:
            return ChannelOut.model_validate(channel)
    raise _missing("channel", name)


@router.delete("/channels/{name}", status_code=204, summary="Delete a webhook channel")
def delete_channel(name: DefinitionName, key: AdminKey, messaging: MessagingDep) -> Response:
    if name in messaging.channels.configured:
        raise Conflict(
            f"channel {name!r} is configured in the settings", field="name",
            accepted="a channel created through the API (settings channels: edit the settings)",
        )
    if not messaging.definitions.delete(key.tenant, CHANNEL, name):
        raise _missing("channel", name)
    return Response(status_code=204)


def _missing(kind: str, name: str, accepted: str | None = None) -> NotFound:
    return NotFound(
        f"no {kind} {name!r}", field="name", accepted=accepted or f"the name of a stored {kind}"
    )


# -- the in-app inbox (serve scope) ----------------------------------------------------------


@inbox_router.get("/{user_id}", response_model=InboxList, summary="A person's in-app messages")
def get_inbox(
    user_id: Identifier,
    key: ServeKey,
    messaging: MessagingDep,
    unread_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> InboxList:
    entries = list_inbox(
        messaging.state.inbox, key.tenant, user_id, unread_only=unread_only, limit=limit
    )
    return InboxList(user_id=user_id, entries=[InboxEntryOut.of(e) for e in entries])


@inbox_router.post("/{user_id}/read", response_model=MarkReadOut, summary="Mark messages read")
def read_inbox(
    user_id: Identifier, body: MarkRead, key: ServeKey, messaging: MessagingDep
) -> MarkReadOut:
    changed = mark_read(messaging.state.inbox, key.tenant, user_id, body.entry_ids)
    return MarkReadOut(changed=changed)

