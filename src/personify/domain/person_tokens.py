"""Per-person tokens: a site's backend signs "this visitor is user U until time T" so that a public
(``ingest``) key may change U's own consent, preferences and profile from the browser.

Format: ``v1.<expiry unix seconds>.<base64url HMAC-SHA256>`` where the HMAC is taken with the
tenant's token secret over ``v1.<user id>.<expiry>``. The user id is not in the token: the
request names it and the signature binds it. See docs/security.md for how a site issues one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from personify.domain.errors import Forbidden

VERSION = "v1"
MAX_LIFETIME_S = 7 * 24 * 3600
"""A token may not be valid for longer than this (an expiry further away is refused)."""
HEADER = "X-Person-Token"
"""The request header carrying a person token (Segment messages may carry
``context.person_token`` instead)."""

_ACCEPTED = (
    "a trusted key (admin scope), or a person token for this user in the X-Person-Token header "
    "(Segment: context.person_token) signed by the site's backend; see docs/security.md"
)


def tenant_secret(master: bytes, tenant: str) -> bytes:
    """The signing secret of one tenant, derived from the installation's token secret (the
    site's backend holds only its own tenant's secret: ``personify person-tokens secret``)."""
    return hmac.new(master, b"personify-person-token\n" + tenant.encode(), hashlib.sha256).digest()


def _signature(secret: bytes, user_id: str, expiry: int) -> str:
    mac = hmac.new(secret, f"{VERSION}.{user_id}.{expiry}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def issue(secret: bytes, user_id: str, *, expiry: int) -> str:
    """A token for ``user_id`` valid until ``expiry`` (unix seconds), signed with ``secret``
    (a tenant secret: :func:`tenant_secret`)."""
    return f"{VERSION}.{expiry}.{_signature(secret, user_id, expiry)}"


def verify(secret: bytes, token: str, user_id: str, *, now: float) -> None:
    """Return when ``token`` is a valid, unexpired token for ``user_id``; Forbidden otherwise."""
    version, _, rest = token.strip().partition(".")
    expiry_text, _, signature = rest.partition(".")
    if version != VERSION or not expiry_text.isdigit() or not signature:
        raise Forbidden("the person token is malformed", field=HEADER, accepted=_ACCEPTED)
    expiry = int(expiry_text)
    if not hmac.compare_digest(signature.encode(), _signature(secret, user_id, expiry).encode()):
        raise Forbidden(f"the person token is not valid for user {user_id!r}", field=HEADER,
                        accepted=_ACCEPTED)
    if expiry <= now:
        raise Forbidden("the person token has expired", field=HEADER, accepted=_ACCEPTED)
    if expiry > now + MAX_LIFETIME_S:
        raise Forbidden(
            "the person token's expiry is too far away", field=HEADER,
            accepted=f"an expiry at most {MAX_LIFETIME_S // 3600} hours ahead",
        )


def refusal(user_id: str) -> Forbidden:
    """Forbidden: a public key without a person token tried to change ``user_id``."""
    return Forbidden(
        f"this key may not change user {user_id!r}'s consent, preferences, profile or identity",
        field=HEADER, accepted=_ACCEPTED,
    )


class PersonGuard:
    """Who may change a person's consent, preferences, profile and identity in one request:
    a trusted key (``admin`` scope) for anyone; another key only for the user its valid person
    token names (``token``, or a per-message token given to :meth:`may_change`)."""

    def __init__(
        self, *, trusted: bool, secret: bytes | None, token: str | None, now: float
    ) -> None:
        self.trusted, self.secret, self.token, self.now = trusted, secret, token, now

    def check(self, user_id: str, token: str | None = None) -> None:
        """Return when this request may change ``user_id``; Forbidden otherwise."""
        if self.trusted:
            return
        token = token or self.token
        if not token:
            raise refusal(user_id)
        if self.secret is None:
            raise Forbidden(
                "person tokens are not enabled on this server", field=HEADER,
                accepted="a trusted key (admin scope); or set PERSONIFY_PERSON_TOKEN_SECRET",
            )
        verify(self.secret, token, user_id, now=self.now)

    def may_change(self, user_id: str, token: str | None = None) -> bool:
        try:
            self.check(user_id, token)
        except Forbidden:
            return False
        return True
