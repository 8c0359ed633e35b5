"""The privacy services of one process, built from ready stores (the edges read settings)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from personify.domain.consents import Purpose
from personify.privacy.audit import AuditLog, MemoryAuditLog
from personify.privacy.consent import ConsentDefaults, ConsentPolicy, Regime
from personify.privacy.erasure import ErasureService, Forgetter, ModelForgetter
from personify.privacy.export import ExportSources, InsightsReader, MessagesReader
from personify.privacy.legal_basis import recorded_basis
from personify.privacy.model_lock import ModelLock
from personify.privacy.model_versions import ErasureAwareModelStore
from personify.privacy.preferences import (
    MemoryPreferenceStore,
    PreferenceService,
    PreferenceStore,
)
from personify.privacy.processing import ProcessingGate
from personify.privacy.pseudonyms import Pseudonymizer, TombstoneKeyPseudonyms
from personify.privacy.replay import ReplayFence
from personify.privacy.retention import RetentionPolicy
from personify.privacy.training import TrainingPrivacy
from personify.storage.online.port import OnlineState
from personify.storage.ports import (
    CatalogStore,
    ConsentStore,
    ErasureStore,
    EventStore,
    UserStore,
)
from personify.storage.registry import Stores, open_privacy_stores
from personify.storage.sql.database import Database


@dataclass
class PrivacyRuntime:
    """Consent policy, processing gate, preferences, audit log, pseudonyms and retention over
    one set of stores; factories for erasure, export and training filters."""

    users: UserStore
    events: EventStore
    consents: ConsentStore
    erasures: ErasureStore
    catalog: CatalogStore
    policy: ConsentPolicy
    gate: ProcessingGate
    preferences: PreferenceService
    audit: AuditLog
    pseudonyms: Pseudonymizer
    retention: RetentionPolicy
    database: Database | None = None

    def training(self) -> TrainingPrivacy:
        """The argument for ``train_tenant(privacy=...)`` (influence rows keyed like the
        erasure tombstones)."""
        return TrainingPrivacy(
            self.gate, self.pseudonyms, self.retention,
            influence_keys=TombstoneKeyPseudonyms(self.erasures.user_id_hash),
        )

    def model_store(self, root: str | Path) -> ErasureAwareModelStore:
        """The model directory ``root`` with promotions that apply later erasures and the
        cross-process model lock (PostgreSQL advisory lock, else a file lock)."""
        return ErasureAwareModelStore(
            root,
            erasures=self.erasures,
            lock=ModelLock(root, self.database),
            legacy_keys_are_tombstone_keys=isinstance(self.pseudonyms, TombstoneKeyPseudonyms),
        )

    def export_sources(
        self, state: OnlineState | None = None, messages: MessagesReader | None = None,
        insights: InsightsReader | None = None,
    ) -> ExportSources:
        return ExportSources(
            self.users, self.events, self.consents, self.catalog, state,
            self.preferences.store, self.policy, messages, insights,
        )

    def erasure(
        self,
        *,
        state: OnlineState | None = None,
        forget_model: ModelForgetter | None = None,
        mark_erased: Callable[[str, str], None] | None = None,
        forgetters: Sequence[Forgetter] = (),
        fence: ReplayFence | None = None,
    ) -> ErasureService:
        return ErasureService(
            users=self.users, events=self.events, consents=self.consents,
            erasures=self.erasures, pseudonyms=self.pseudonyms,
            preferences=self.preferences.store, state=state, forget_model=forget_model,
            mark_erased=mark_erased, forgetters=forgetters, fence=fence,
        )


def open_runtime(
    stores: Stores,
    *,
    consent_defaults: Mapping[str, str] | None = None,
    consent_purposes: Sequence[str] = (),
    demo: bool = False,
    pseudonym_secret: bytes | None = None,
    retention_days: Mapping[str, float] | None = None,
) -> PrivacyRuntime:
    """The privacy services over ``stores``.

    The legal basis recorded by ``personify init`` (:mod:`personify.privacy.legal_basis`) sets
    the personalization and profiling defaults. Demo mode makes personalization and profiling
    opt-out (unless ``consent_defaults`` names
    them) so the demo stays personalized; everything else is opt-in by default. Without a
    ``pseudonym_secret`` the erasure store's per-database key is used.
    """
    regimes = dict(consent_defaults or {})
    basis = recorded_basis(stores.database)
    if basis is not None:  # the recorded legal basis; the settings' explicit defaults win
        for purpose, regime in basis.regimes().items():
            regimes.setdefault(purpose, regime)
    if demo:
        for purpose in (Purpose.PERSONALIZATION, Purpose.PROFILING):
            regimes.setdefault(purpose.value, Regime.OPT_OUT.value)
    policy = ConsentPolicy(stores.consents, ConsentDefaults.parse(regimes, consent_purposes))
    pseudonyms: Pseudonymizer = (
        Pseudonymizer(pseudonym_secret)
        if pseudonym_secret is not None
        else TombstoneKeyPseudonyms(stores.erasures.user_id_hash)
    )
    preference_store: PreferenceStore
    audit: AuditLog
    if stores.database is not None:
        tables = open_privacy_stores(stores.engine_url, database=stores.database)
        preference_store, audit = tables.preferences, tables.audit
    else:
        preference_store, audit = MemoryPreferenceStore(), MemoryAuditLog()
    return PrivacyRuntime(
        users=stores.users,
        events=stores.events,
        consents=stores.consents,
        erasures=stores.erasures,
        catalog=stores.catalog,
        policy=policy,
        gate=ProcessingGate(policy, stores.users, stores.erasures.is_erased),
        preferences=PreferenceService(preference_store),
        audit=audit,
        pseudonyms=pseudonyms,
        retention=RetentionPolicy(retention_days or {}),
        database=stores.database,
    )
