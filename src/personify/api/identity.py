"""Identity operations shared by the users routes and the Segment endpoint: merge an anonymous id
into a user, merge profile traits, erase a user (everywhere: stores, online state, served model),
and the privacy services of the process built from settings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request

from personify.api.deps import AdminKey
from personify.api.erasure_check import CachedErasureCheck
from personify.api.errors import status_for
from personify.api.schemas.privacy import ErasureReceipt
from personify.domain.errors import Conflict, Erased, PersonifyError
from personify.domain.keys import ApiKey
from personify.domain.privacy import AuditEntry
from personify.domain.users import Profile, User
from personify.privacy.erasure import ErasureResult
from personify.privacy.model_influence import ModelForgetResult
from personify.privacy.runtime import PrivacyRuntime, open_runtime
from personify.settings import Settings
from personify.storage.online.port import OnlineState
from personify.storage.registry import Stores

if TYPE_CHECKING:
    from personify.api.engine import Engine


def refuse_erased(check: CachedErasureCheck, tenant: str, user_id: str) -> None:
    """Erased (410) if ``user_id`` was erased: replayed data must not re-create a person."""
    if check(tenant, user_id):
        raise Erased(
            f"user {user_id!r} was erased; data for this id is not accepted again",
            field="user_id",
            accepted="the id of a user who has not been erased",
        )


def link_anonymous(
    stores: Stores,
    tenant: str,
    user_id: str,
    anonymous_id: str,
    *,
    state: OnlineState | None = None,
) -> User:
    """Merge ``anonymous_id`` into ``user_id``: its past events count for the user from now on
    (in the event store and, with ``state``, in the online state), and it joins the user's
    ``anonymous_ids``. Creates a bare user when none exists yet; Conflict when the anonymous id
    already belongs to another user."""
    owner = stores.users.get_by_anonymous(tenant, anonymous_id)
    if owner is not None and owner.user_id != user_id:
        raise Conflict(
            f"anonymous id {anonymous_id!r} is already linked to another user",
            field="anonymous_id",
            accepted="an anonymous id not linked to a different user",
        )
    user = stores.users.get(tenant, user_id)
    if user is None:
        user = stores.users.upsert(tenant, [User(user_id=user_id, anonymous_ids=[anonymous_id])])[0]
    elif anonymous_id not in user.anonymous_ids:
        user = stores.users.upsert(
            tenant, [user.model_copy(update={"anonymous_ids": [*user.anonymous_ids, anonymous_id]})]
        )[0]
    stores.events.link_anonymous(tenant, anonymous_id, user_id)
    if state is not None:
        state.merge_users(tenant, f"anon:{anonymous_id}", user_id)
    return user


def merge_traits(
    stores: Stores,
    tenant: str,
    user_id: str,
    profile: Mapping[str, Any],
    properties: Mapping[str, Any],
) -> User:
    """Create or update ``user_id`` with the given profile fields and properties, keeping every
    field not mentioned (Segment ``identify`` / ``group`` semantics)."""
    user = stores.users.get(tenant, user_id)
    if user is None:
        user = User(user_id=user_id)
    merged_profile = {**user.profile.model_dump(exclude_none=True), **profile}
    candidate = User.model_validate(
        {
            **user.model_dump(exclude={"profile", "properties"}),
            "profile": Profile.model_validate(merged_profile),
            "properties": {**user.properties, **properties},
        }
    )
    return stores.users.upsert(tenant, [candidate])[0]


def open_privacy(settings: Settings, stores: Stores) -> PrivacyRuntime:
    """The privacy services for ``stores`` as ``settings`` configure them (see
    :func:`personify.privacy.runtime.open_runtime`)."""
    return open_runtime(stores, **settings.privacy_options())


def erase_subjects(
    privacy: PrivacyRuntime,
    check: CachedErasureCheck,
    tenant: str,
    *,
    user_ids: Sequence[str] = (),
    anonymous_id: str | None = None,
    engine: Engine | None = None,
) -> list[ErasureResult]:
    """Erase users (or one anonymous id) from every store, the online state (their vectors
    included) and the served model, and ask for a retrain when the model needs one."""

    def forget_model(tenant_: str, keys: list[str]) -> ModelForgetResult:
        if engine is None:
            return ModelForgetResult("no_model")
        return engine.models.forget(engine.bundles, tenant_, keys)

    service = privacy.erasure(
        state=engine.state if engine is not None else None,
        forget_model=forget_model,
        mark_erased=check.mark_erased,
        forgetters=engine.forgetters if engine is not None else (),
        fence=engine.replay_fence if engine is not None else None,
    )
    if anonymous_id is not None:
        results = [service.erase_anonymous(tenant, anonymous_id)]
    else:
        results = service.erase_many(tenant, user_ids)
    scheduler = engine.scheduler if engine is not None else None
    if scheduler is not None and any(r.retrain_pending for r in results):
        request = getattr(scheduler, "request", None)
        if callable(request):
            request(tenant)
    return results


def receipt_of(result: ErasureResult) -> ErasureReceipt:
    """The API receipt of one erasure."""
    return ErasureReceipt(
        user_id=result.subject,
        receipt_id=result.receipt_id,
        erased_at=result.erased_at,
        profile_deleted=result.profile_deleted,
        events_deleted=result.events_deleted,
        consents_deleted=result.consents_deleted,
        preferences_deleted=result.preferences_deleted,
        online_state_forgotten=result.online_subjects_forgotten,
        model_status=result.model.status,
        model_version=result.model.version,
        model_neighbours_exact=result.model.exact_neighbours,
        retrain_pending=result.retrain_pending,
        seconds=round(result.seconds, 4),
    )


def erase_user(
    stores: Stores,
    check: CachedErasureCheck,
    tenant: str,
    user_id: str,
    *,
    privacy: PrivacyRuntime | None = None,
    engine: Engine | None = None,
) -> ErasureReceipt:
    """Erase one user everywhere (see :func:`erase_subjects`); returns the receipt."""
    runtime = privacy if privacy is not None else open_privacy(Settings(), stores)
    results = erase_subjects(runtime, check, tenant, user_ids=[user_id], engine=engine)
    return receipt_of(results[0])


def get_privacy(request: Request) -> PrivacyRuntime:
    """The process's privacy services (built on first use from settings and stores)."""
    state = request.app.state
    runtime: PrivacyRuntime | None = getattr(state, "privacy", None)
    if runtime is None:
        runtime = state.privacy = open_privacy(state.settings, state.stores)
    return runtime


PrivacyDep = Annotated[PrivacyRuntime, Depends(get_privacy)]


def record_access(
    privacy: PrivacyRuntime, request: Request, key: ApiKey, *, subject: str | None = None,
    action: str | None = None, status: int = 200,
) -> None:
    """Append one audit entry: this key read or changed personal data (subject pseudonymized)."""
    route = request.scope.get("route")
    resource = f"{request.method} {getattr(route, 'path', request.url.path)}"
    verb = action or ("read" if request.method in ("GET", "HEAD") else "change")
    privacy.audit.record(
        AuditEntry(
            tenant=key.tenant, key_id=key.key_id, action=verb, resource=resource[:500],
            subject=privacy.pseudonyms.pseudonym(key.tenant, subject) if subject else None,
            status=status, at=datetime.now(UTC),
        )
    )


def audit_personal_data(
    request: Request, key: AdminKey, privacy: PrivacyDep
) -> Iterator[None]:
    """Router dependency: audit every admin call of a personal-data router (users, consents,
    privacy); the subject is the ``user_id`` / ``anonymous_id`` path parameter if any. The entry
    is written once the route has answered, with the status the caller got (a 404 is a 404)."""
    params = request.path_params
    subject = params.get("user_id") or (
        f"anon:{params['anonymous_id']}" if "anonymous_id" in params else None
    )
    try:
        yield
    except PersonifyError as exc:
        record_access(privacy, request, key, subject=subject, status=status_for(exc))
        raise
    except HTTPException as exc:
        record_access(privacy, request, key, subject=subject, status=exc.status_code)
        raise
    except Exception:
        record_access(privacy, request, key, subject=subject, status=500)
        raise
    route = request.scope.get("route")
    record_access(privacy, request, key, subject=subject,
                  status=getattr(route, "status_code", None) or 200)


Audited = Depends(audit_personal_data)
"""Add ``dependencies=[Audited]`` to a router whose routes read or change personal data."""
