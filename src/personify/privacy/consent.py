"""Consent per purpose, decided at use time: the latest unexpired record, else the purpose's
configured default regime (opt-in unless the operator chose opt-out).

Example::

    policy = ConsentPolicy(stores.consents, ConsentDefaults.parse({"personalization": "opt-out"}))
    policy.allows("default", "u1", "profiling")      # False: opt-in and nothing granted
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from personify.domain.consents import ConsentRecord, ConsentState, Purpose
from personify.domain.errors import ConfigurationError, InvalidInput
from personify.storage.ports import ConsentStore


class Regime(StrEnum):
    """What no (or an expired) record means: opt-in = not allowed, opt-out = allowed."""

    OPT_IN = "opt-in"
    OPT_OUT = "opt-out"


BUILTIN_PURPOSES: tuple[str, ...] = tuple(p.value for p in Purpose)


@dataclass(frozen=True)
class ConsentDefaults:
    """The default regime of each purpose; ``purposes`` also lists operator-defined ones."""

    regimes: Mapping[str, Regime] = field(default_factory=dict)
    fallback: Regime = Regime.OPT_IN
    extra_purposes: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls,
        regimes: Mapping[str, str] | None = None,
        purposes: Iterable[str] = (),
        *,
        fallback: str = Regime.OPT_IN.value,
    ) -> ConsentDefaults:
        """From settings: ``{"personalization": "opt-out"}`` plus operator purposes."""
        parsed: dict[str, Regime] = {}
        known = {*BUILTIN_PURPOSES, *purposes}
        for purpose, value in (regimes or {}).items():
            if purpose not in known:
                raise ConfigurationError(
                    f"consent default for unknown purpose {purpose!r}",
                    field="consent_defaults",
                    accepted=", ".join(sorted(known)) + " (declare others in consent_purposes)",
                )
            parsed[purpose] = _regime(value, f"consent_defaults.{purpose}")
        extra = tuple(p for p in dict.fromkeys(purposes) if p not in BUILTIN_PURPOSES)
        return cls(parsed, _regime(fallback, "consent_defaults"), extra)

    @property
    def purposes(self) -> tuple[str, ...]:
        return (*BUILTIN_PURPOSES, *self.extra_purposes)

    def regime(self, purpose: str) -> Regime:
        return self.regimes.get(purpose, self.fallback)


def _regime(value: str, name: str) -> Regime:
    try:
        return Regime(value)
    except ValueError:
        raise ConfigurationError(
            f"unknown consent regime {value!r}", field=name, accepted="opt-in, opt-out"
        ) from None


@dataclass(frozen=True)
class ConsentDecision:
    """Whether a purpose is allowed now, and why (``basis``: the record's state or a default)."""

    purpose: str
    allowed: bool
    basis: str
    record: ConsentRecord | None = None


class ConsentPolicy:
    """Decides consent at the moment of use; records changes append-only through the store."""

    def __init__(
        self,
        store: ConsentStore,
        defaults: ConsentDefaults | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.defaults = defaults or ConsentDefaults()
        self.clock = clock

    def check_purpose(self, purpose: str) -> str:
        """``purpose`` if it is built in or declared by the operator, else InvalidInput."""
        if purpose not in self.defaults.purposes:
            raise InvalidInput(
                f"unknown consent purpose {purpose!r}",
                field="purpose",
                accepted=", ".join(self.defaults.purposes),
            )
        return purpose

    def decide(self, tenant: str, user_id: str, purpose: str) -> ConsentDecision:
        """The decision for one purpose: the latest unexpired record, else the default."""
        record = self.store.current(tenant, user_id, now=self.clock()).get(purpose)
        return self._decision(purpose, record)

    def decide_all(self, tenant: str, user_id: str) -> dict[str, ConsentDecision]:
        """The decision for every known purpose (and any other purpose with a record)."""
        current = self.store.current(tenant, user_id, now=self.clock())
        purposes = dict.fromkeys([*self.defaults.purposes, *current])
        return {p: self._decision(p, current.get(p)) for p in purposes}

    def allows(self, tenant: str, user_id: str, purpose: str) -> bool:
        """The one call other capabilities make (serving, messaging at send time, training)."""
        return self.decide(tenant, user_id, purpose).allowed

    def _decision(self, purpose: str, record: ConsentRecord | None) -> ConsentDecision:
        if record is None:
            regime = self.defaults.regime(purpose)
            return ConsentDecision(purpose, regime == Regime.OPT_OUT, f"default:{regime.value}")
        return ConsentDecision(
            purpose, record.state == ConsentState.GRANTED, record.state.value, record
        )

    def record(
        self,
        tenant: str,
        user_id: str,
        purpose: str,
        state: ConsentState,
        *,
        source: str = "api",
        text_version: str | None = None,
        expires_at: datetime | None = None,
    ) -> ConsentRecord:
        """Append one change (grant, deny or withdraw); past records are never touched."""
        self.check_purpose(purpose)
        if expires_at is not None and state != ConsentState.GRANTED:
            raise InvalidInput(
                "only a grant can expire",
                field="expires_at",
                accepted="expires_at together with state 'granted', or no expires_at",
            )
        return self.store.append(
            tenant,
            ConsentRecord(
                user_id=user_id,
                purpose=purpose,
                state=state,
                source=source,
                text_version=text_version,
                expires_at=expires_at,
                recorded_at=self.clock(),
            ),
        )
