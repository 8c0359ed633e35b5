"""Identity operations shared by the users routes and the Segment endpoint: merge an anonymous id
into a user, merge profile traits, erase a user (everywhere: stores, online state, served model),
and the privacy services of the process built from settings. The HTTP side (receipts, the audit
dependency) is in ``personify.api``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from personify.domain.consents import ConsentRecord
from personify.domain.errors import Conflict, Erased
from personify.domain.users import Profile, User
from personify.privacy.erasure import ErasureResult
from personify.privacy.model_influence import ModelForgetResult
from personify.privacy.runtime import PrivacyRuntime, open_runtime
from personify.runtime.erasure_check import CachedErasureCheck
from personify.serving.repetition import ShownLog
from personify.settings import Settings
from personify.storage.online.port import OnlineState
from personify.storage.registry import Stores

if TYPE_CHECKING:
    from personify.runtime.engine import Engine


def refuse_erased(check: Callable[[str, str], bool], tenant: str, user_id: str) -> None:
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
    shown: ShownLog | None = None,
) -> User:
    """Merge ``anonymous_id`` into ``user_id``: its past events count for the user from now on
    (in the event store and, with ``state``, in the online state), and it joins the user's
    ``anonymous_ids``. Creates a bare user when none exists yet; Conflict when the anonymous id
    already belongs to another user; Erased when the anonymous id was erased (its data must not
    come back through a link). With ``shown`` (the serving chain's anti-repetition memory) what
    the visitor was shown counts as shown to the user."""
    if stores.erasures.is_erased(tenant, f"anon:{anonymous_id}"):
        raise Erased(
            f"anonymous id {anonymous_id!r} was erased; it cannot be linked again",
            field="anonymous_id",
            accepted="an anonymous id that has not been erased",
        )
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
    carry_consents(stores, tenant, anonymous_id, user_id)
    stores.events.link_anonymous(tenant, anonymous_id, user_id)
    if state is not None:
        state.merge_users(tenant, f"anon:{anonymous_id}", user_id)
    if shown is not None:
        shown.merge(tenant, f"anon:{anonymous_id}", user_id)
    return user


def carry_consents(
    stores: Stores, tenant: str, anonymous_id: str, user_id: str
) -> list[ConsentRecord]:
    """At a merge, the anonymous visitor's consent decisions become the user's where they are
    the person's latest word: per purpose, the anonymous id's newest record is appended to the
    user's log (``source`` ``identify``, same state, text version and expiry) when the user has
    no record for that purpose or only older ones. So a grant given in the banner before login
    carries over, and a refusal (denied or withdrawn) made before login stays a refusal even if
    the account had granted earlier; a decision the user made later than the visitor keeps
    standing. The anonymous id's own records are kept (its audit trail). Returns the records
    appended."""
    visitor = _latest_by_purpose(stores.consents.history(tenant, anonymous_id))
    if not visitor:
        return []
    account = _latest_by_purpose(stores.consents.history(tenant, user_id))
    carried = []
    for purpose, record in sorted(visitor.items()):
        mine = account.get(purpose)
        if (mine is not None and mine.recorded_at is not None and record.recorded_at is not None
                and mine.recorded_at >= record.recorded_at):
            continue
        carried.append(stores.consents.append(tenant, ConsentRecord(
            user_id=user_id, purpose=purpose, state=record.state, source="identify",
            text_version=record.text_version, expires_at=record.expires_at,
        )))
    return carried


def _latest_by_purpose(history: Sequence[ConsentRecord]) -> dict[str, ConsentRecord]:
    """Per purpose, the newest record of a log read oldest first."""
    latest: dict[str, ConsentRecord] = {}
    for record in history:
        latest[record.purpose] = record
    return latest


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
