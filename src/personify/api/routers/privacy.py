"""Privacy endpoints: consent decisions and changes, export, erasure by anonymous id and in bulk,
preferences and "not interested", explanations of logged recommendations, the audit log and
the retention purge. Personal data needs the ``admin`` scope and every such call is audited;
consent changes and feedback come from the site (``ingest``); explanations from ``serve``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from personify.api.audit import Audited, record_access
from personify.api.deps import (
    AdminKey,
    EngineDep,
    ErasureCheckDep,
    IngestAccess,
    IngestKey,
    PersonGuardDep,
    PrivacyDep,
    RuntimeDep,
    ServeKey,
    SettingsDep,
    runtime_of,
)
from personify.api.routing import KeyFirstRoute
from personify.api.schemas.common import QueryDateTime
from personify.api.schemas.privacy import ErasureReceipt, receipt_of
from personify.domain._fields import Identifier, Label, Name, ShortText
from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.errors import InvalidInput
from personify.domain.events import BUILTIN_EVENT_TYPES
from personify.domain.privacy import AuditEntry, Preferences
from personify.domain.users import UserPatch
from personify.privacy.explain import explain_recommendation
from personify.privacy.export import export_archive, export_person
from personify.privacy.preferences import MuteKind
from personify.runtime.identity import erase_subjects, refuse_erased

router = APIRouter(tags=["privacy"], route_class=KeyFirstRoute)
audited = APIRouter(dependencies=[Audited], route_class=KeyFirstRoute)
"""Routes reading or changing personal data: included in ``router``, every call audited."""

ACTIONS = {"grant": ConsentState.GRANTED, "deny": ConsentState.DENIED,
           "withdraw": ConsentState.WITHDRAWN}


class ConsentChange(BaseModel):
    """Body of a grant / deny / withdraw: what the person saw and where."""

    model_config = ConfigDict(extra="forbid")

    source: ShortText = "api"
    text_version: ShortText | None = None
    expires_at: datetime | None = None


class DecisionOut(BaseModel):
    allowed: bool
    basis: str = Field(description="granted / denied / withdrawn, or default:opt-in|opt-out")
    record: ConsentRecord | None = None


class DecisionsOut(BaseModel):
    user_id: str
    decisions: dict[str, DecisionOut]


class BulkErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: list[Identifier] = Field(min_length=1, max_length=1000)


class BulkErasureOut(BaseModel):
    receipts: list[ErasureReceipt]


class NotInterestedIn(BaseModel):
    """Exactly one of ``item_id``, ``category``, ``person_id``."""

    model_config = ConfigDict(extra="forbid")

    item_id: Identifier | None = None
    category: Label | None = None
    person_id: Identifier | None = None

    @model_validator(mode="after")
    def _one(self) -> NotInterestedIn:
        if sum(v is not None for v in (self.item_id, self.category, self.person_id)) != 1:
            raise ValueError("give exactly one of item_id, category, person_id")
        return self

    def target(self) -> tuple[MuteKind, str]:
        if self.item_id is not None:
            return MuteKind.ITEM, self.item_id
        if self.category is not None:
            return MuteKind.CATEGORY, self.category
        return MuteKind.PERSON, str(self.person_id)


class AuditOut(BaseModel):
    entries: list[AuditEntry]


class PurgeOut(BaseModel):
    deleted: dict[str, int]
    audit_entries_deleted: int = 0


@router.post(
    "/v1/users/{user_id}/consents/{purpose}:{action}",
    response_model=ConsentRecord,
    status_code=201,
    summary="Grant, deny or withdraw one purpose (append-only; as easy to withdraw as to grant)",
    description="An admin key changes anyone's consent; an ingest key only with a person token "
    "for this user in X-Person-Token; a browser key only its visitor's (docs/security.md).",
)
def change_consent(
    user_id: Identifier, purpose: Name, action: Literal["grant", "deny", "withdraw"],
    body: ConsentChange, access: IngestAccess, guard: PersonGuardDep, privacy: PrivacyDep,
    erased: ErasureCheckDep,
) -> ConsentRecord:
    if access.visitor is not None:  # a browser key: the visitor's own (anonymous) id, or the
        if not access.visitor.is_self(user_id):  # user of its person token
            access.check(user_id)
    else:
        guard.check(user_id)
    refuse_erased(erased, access.tenant, user_id)
    return privacy.policy.record(
        access.tenant, user_id, purpose, ACTIONS[action], source=body.source,
        text_version=body.text_version, expires_at=body.expires_at,
    )


@audited.get(
    "/v1/users/{user_id}/consent-decisions",
    response_model=DecisionsOut,
    summary="The consent decision in force per purpose (records and defaults)",
)
def consent_decisions(user_id: Identifier, key: AdminKey, privacy: PrivacyDep) -> DecisionsOut:
    decisions = privacy.policy.decide_all(key.tenant, user_id)
    return DecisionsOut(
        user_id=user_id,
        decisions={
            p: DecisionOut(allowed=d.allowed, basis=d.basis, record=d.record)
            for p, d in decisions.items()
        },
    )


@audited.get(
    "/v1/users/{user_id}/export",
    summary="Everything stored about a person: JSON, or a ZIP of JSON and CSV files",
    responses={200: {"content": {"application/json": {}, "application/zip": {}}}},
)
def export_user(
    request: Request,
    user_id: Identifier,
    key: AdminKey,
    privacy: PrivacyDep,
    engine: EngineDep,
    format: Literal["json", "zip"] = "json",
    anonymized: Annotated[
        bool, Query(description="pseudonymize ids and drop personal fields (for analysts)")
    ] = False,
) -> Any:
    runtime = runtime_of(request)
    data = export_person(
        privacy.export_sources(
            engine.state, runtime.messaging.state.sent_to, runtime.insights.export
        ),
        key.tenant, user_id,
    )
    if anonymized:
        data = privacy.pseudonyms.anonymize(key.tenant, data)
    if format == "zip":
        return Response(
            export_archive(data), media_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="personify-export.zip"'},
        )
    return data


@audited.delete(
    "/v1/anonymous/{anonymous_id}",
    response_model=ErasureReceipt,
    summary="Erase an anonymous visitor (or, if linked, the whole user)",
)
def erase_anonymous(
    anonymous_id: Identifier, key: AdminKey, privacy: PrivacyDep, erased: ErasureCheckDep,
    engine: EngineDep,
) -> ErasureReceipt:
    results = erase_subjects(privacy, erased, key.tenant, anonymous_id=anonymous_id,
                             engine=engine)
    return receipt_of(results[0])


@audited.post(
    "/v1/users:erase",
    response_model=BulkErasureOut,
    summary="Erase many users at once (the served model is rewritten once)",
)
def erase_many(
    body: BulkErasureIn, key: AdminKey, privacy: PrivacyDep, erased: ErasureCheckDep,
    engine: EngineDep, request: Request,
) -> BulkErasureOut:
    results = erase_subjects(privacy, erased, key.tenant, user_ids=body.user_ids, engine=engine)
    for user_id in body.user_ids:
        record_access(privacy, request, key, subject=user_id, action="erase")
    return BulkErasureOut(receipts=[receipt_of(r) for r in results])


@audited.get(
    "/v1/users/{user_id}/preferences", response_model=Preferences,
    summary="Declared interests and what the person does not want to see",
)
def get_preferences(user_id: Identifier, key: AdminKey, privacy: PrivacyDep) -> Preferences:
    return privacy.preferences.get(key.tenant, user_id)


@audited.put(
    "/v1/users/{user_id}/preferences", response_model=Preferences,
    summary="Replace preferences; declared interests become the profile's interests",
)
def put_preferences(
    user_id: Identifier, body: Preferences, key: AdminKey, privacy: PrivacyDep,
    erased: ErasureCheckDep,
) -> Preferences:
    refuse_erased(erased, key.tenant, user_id)
    stored = privacy.preferences.replace(key.tenant, user_id, body)
    if privacy.users.get(key.tenant, user_id) is not None:
        privacy.users.patch(
            key.tenant, user_id,
            UserPatch(profile={"interests": list(stored.declared_interests)}),
        )
    return stored


class MutedOut(BaseModel):
    """The acknowledgement of a "not interested": what was muted, nothing else of the person."""

    user_id: str
    kind: MuteKind
    value: str


@router.post(
    "/v1/users/{user_id}/not-interested", response_model=MutedOut,
    summary='"Not interested" in an item, a category or a person: never shown again',
    description="An admin key mutes for anyone; an ingest key only with a person token for this "
    "user in X-Person-Token (docs/security.md). The answer echoes only what was muted; read the "
    "preferences with GET /v1/users/{user_id}/preferences (admin).",
)
def not_interested(
    user_id: Identifier, body: NotInterestedIn, key: IngestKey, guard: PersonGuardDep,
    privacy: PrivacyDep, erased: ErasureCheckDep,
) -> MutedOut:
    guard.check(user_id)
    refuse_erased(erased, key.tenant, user_id)
    kind, value = body.target()
    privacy.preferences.mute(key.tenant, user_id, kind, value)
    return MutedOut(user_id=user_id, kind=kind, value=value)


@router.get(
    "/v1/recommendations/{recommendation_id}/explain",
    summary="Why these items: the logged recommendation, item by item, in plain language",
)
def explain(
    recommendation_id: Identifier, key: ServeKey, engine: EngineDep, privacy: PrivacyDep,
    language: Literal["en", "ru"] = "en",
) -> dict[str, Any]:
    engine.impressions.flush()
    return explain_recommendation(privacy.events, key.tenant, recommendation_id,
                                  language=language)


@audited.get("/v1/privacy/audit", response_model=AuditOut, summary="Who read or changed whose data")
def audit_log(
    key: AdminKey,
    privacy: PrivacyDep,
    user_id: Identifier | None = None,
    key_id: ShortText | None = None,
    since: QueryDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditOut:
    subject = privacy.pseudonyms.pseudonym(key.tenant, user_id) if user_id else None
    return AuditOut(
        entries=privacy.audit.list(key.tenant, subject=subject, key_id=key_id, since=since,
                                   limit=limit)
    )


@audited.post(
    "/v1/privacy/retention:purge", response_model=PurgeOut,
    summary="Delete events older than their type's retention now (also a scheduled job)",
)
def purge(
    key: AdminKey, privacy: PrivacyDep, settings: SettingsDep, runtime: RuntimeDep,
    audit_days: Annotated[float | None, Query(gt=0)] = None,
) -> PurgeOut:
    types = (BUILTIN_EVENT_TYPES | set(settings.custom_event_types)
             | set(runtime.event_types.declared(key.tenant)))
    if not privacy.retention.days and audit_days is None:
        raise InvalidInput(
            "no retention is configured", field="retention_days",
            accepted='settings.retention_days, e.g. {"view": 90, "*": 730}',
        )
    deleted = privacy.retention.purge(privacy.events, key.tenant, known_types=types)
    audit_deleted = 0
    if audit_days is not None:
        from datetime import UTC, timedelta

        cutoff = datetime.now(UTC) - timedelta(days=audit_days)
        audit_deleted = privacy.audit.delete_older_than(key.tenant, cutoff)
    return PurgeOut(deleted=deleted, audit_entries_deleted=audit_deleted)


router.include_router(audited)
