"""Double opt-in introductions: A asks to be introduced to B; B is asked (a personalized message
through the messaging outbox, consent rules applying); only if B accepts do both get each other's
contact. A decline is final and silent: A keeps seeing the request as pending until it expires.

Every step is an event in the event log (``introduction_request`` by A, ``introduction_accept``
/ ``introduction_decline`` by B, each with ``properties.person_id`` the other person and
``properties.introduction_id``), with ids derived from the pair, so a retried request or answer
is stored once and the state is rebuilt from the log after a restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

EXPIRY = timedelta(days=14)


class IntroStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"


def introduction_id(tenant: str, a: str, b: str) -> str:
    """One introduction per ordered pair (a asks to meet b) and tenant."""
    return "intro_" + hashlib.sha256(f"{tenant}\x00{a}\x00{b}".encode()).hexdigest()[:24]


@dataclass(slots=True)
class Introduction:
    introduction_id: str
    from_user_id: str
    to_user_id: str
    requested_at: datetime
    source: str = "user"
    status: IntroStatus = IntroStatus.PENDING
    answered_at: datetime | None = None
    variant: str = "default"
    """the message variant B was asked with (``<language>-<tone>``, or the caller's, e.g. an
    experiment arm): acceptance is reported per variant."""

    @property
    def expires_at(self) -> datetime:
        return self.requested_at + EXPIRY

    def status_at(self, now: datetime) -> IntroStatus:
        if self.status == IntroStatus.PENDING and now >= self.expires_at:
            return IntroStatus.EXPIRED
        return self.status

    def seen_by(self, person: str, now: datetime) -> IntroStatus:
        """What ``person`` may see: a decline is shown to the asker as pending, then expired."""
        status = self.status_at(now)
        if status == IntroStatus.DECLINED and person == self.from_user_id:
            return IntroStatus.EXPIRED if now >= self.expires_at else IntroStatus.PENDING
        return status


class Contact(BaseModel):
    user_id: str
    name: str | None = None
    email: str | None = None
    profile_url: str | None = None


class IntroductionView(BaseModel):
    introduction_id: str
    from_user_id: str
    to_user_id: str
    status: IntroStatus
    requested_at: datetime
    expires_at: datetime
    source: str
    variant: str = "default"
    contact: Contact | None = Field(
        None, description="the other person's contact, once the introduction is accepted")
    message: str | None = Field(
        None, description="what happened to the message to the recipient (on creation)")


class IntroductionKpi(BaseModel):
    requested: int
    accepted: int
    declined: int
    expired: int
    pending: int
    acceptance_rate: float | None = Field(
        description="accepted / (accepted + declined + expired); null before any answer")
    by_source: dict[str, dict[str, float | int | None]] = Field(default_factory=dict)
    by_variant: dict[str, dict[str, float | int | None]] = Field(default_factory=dict)
    by_source_and_variant: dict[str, dict[str, float | int | None]] = Field(
        default_factory=dict, description="keyed '<source>/<variant>'")


def kpi(intros: list[Introduction], now: datetime) -> IntroductionKpi:
    def count(group: list[Introduction]) -> dict[str, float | int | None]:
        statuses = [i.status_at(now) for i in group]
        accepted = statuses.count(IntroStatus.ACCEPTED)
        closed = accepted + statuses.count(IntroStatus.DECLINED) + statuses.count(
            IntroStatus.EXPIRED)
        return {
            "requested": len(group),
            "accepted": accepted,
            "declined": statuses.count(IntroStatus.DECLINED),
            "expired": statuses.count(IntroStatus.EXPIRED),
            "pending": statuses.count(IntroStatus.PENDING),
            "acceptance_rate": round(accepted / closed, 4) if closed else None,
        }

    total = count(intros)
    sources = sorted({i.source for i in intros})
    return IntroductionKpi(
        requested=int(total["requested"] or 0), accepted=int(total["accepted"] or 0),
        declined=int(total["declined"] or 0), expired=int(total["expired"] or 0),
        pending=int(total["pending"] or 0),
        acceptance_rate=total["acceptance_rate"],
        by_source={s: count([i for i in intros if i.source == s]) for s in sources},
        by_variant={v: count([i for i in intros if i.variant == v])
                    for v in sorted({i.variant for i in intros})},
        by_source_and_variant={
            f"{s}/{v}": count([i for i in intros if (i.source, i.variant) == (s, v)])
            for s, v in sorted({(i.source, i.variant) for i in intros})},
    )
