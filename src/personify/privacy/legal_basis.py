"""The legal basis of the data an installation processes: an explicit, recorded choice.

Without it, personalization and profiling are opt-in (only people with a recorded consent are
used). ``personify init --legal-basis`` (or the first ``personify import``) records one of:

* ``consent``: consent was collected elsewhere (the site's consent banner, a CRM) for the people
  whose data is imported; a withdrawal recorded here still wins.
* ``legitimate-interest``: GDPR art. 6(1)(f); people can object (record ``denied``).
* ``none``: no basis for the imported people; only those with a consent recorded here
  (``POST /v1/users/{id}/consents``) are personalized and trained on.

The first two make ``personalization`` and ``profiling`` opt-out defaults; ``consent_defaults`` in
the settings, when it names a purpose, still wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from personify.domain.consents import Purpose
from personify.domain.errors import InvalidInput
from personify.storage.sql.database import Database
from personify.storage.sql.meta import SqlMeta

META_NAME = "legal_basis"


class LegalBasis(StrEnum):
    CONSENT = "consent"
    LEGITIMATE_INTEREST = "legitimate-interest"
    NONE = "none"


DESCRIPTIONS: dict[LegalBasis, str] = {
    LegalBasis.CONSENT: "consent collected elsewhere (personalization and profiling opt-out)",
    LegalBasis.LEGITIMATE_INTEREST: "legitimate interest (personalization and profiling "
    "opt-out; people can object)",
    LegalBasis.NONE: "none (personalization and profiling opt-in: only people with a consent "
    "recorded here)",
}
CHOICES = ", ".join(b.value for b in LegalBasis)


def parse_basis(value: str, *, field: str = "legal_basis") -> LegalBasis:
    """The basis named ``value`` (``legitimate_interest`` is accepted for the dash)."""
    try:
        return LegalBasis(value.strip().lower().replace("_", "-"))
    except ValueError:
        raise InvalidInput(
            f"unknown legal basis {value!r}", field=field, accepted=CHOICES
        ) from None


@dataclass(frozen=True)
class RecordedBasis:
    basis: LegalBasis
    recorded_at: str

    def regimes(self) -> dict[str, str]:
        """The consent default regimes this basis gives."""
        if self.basis == LegalBasis.NONE:
            return {}
        return {Purpose.PERSONALIZATION.value: "opt-out", Purpose.PROFILING.value: "opt-out"}


def recorded_basis(db: Database | None) -> RecordedBasis | None:
    """The installation's recorded legal basis, or None when none was chosen yet."""
    if db is None:
        return None
    raw = SqlMeta(db).get(META_NAME)
    if raw is None:
        return None
    body = json.loads(raw)
    return RecordedBasis(LegalBasis(body["basis"]), str(body.get("recorded_at", "")))


def record_basis(db: Database, basis: LegalBasis, *, now: datetime | None = None) -> RecordedBasis:
    """Record the choice (replacing an earlier one)."""
    at = (now or datetime.now(UTC)).isoformat()
    SqlMeta(db).set(META_NAME, json.dumps({"basis": basis.value, "recorded_at": at}))
    return RecordedBasis(basis, at)
