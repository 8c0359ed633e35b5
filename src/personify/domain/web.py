"""The web channel's rules: which origins a tenant's pages may call from, and which visitor a
public ``browser`` key acts for in one request (docs/web.md, docs/security.md).

A browser key is bound to one *visitor* per request:

* an **anonymous id** the snippet made up (``anon-`` followed by 16-64 characters of
  ``A-Z a-z 0-9 _ -``): free-form, so nobody needs to vouch for it, but recognisable, so a
  browser key can never name a real user id by pretending it is anonymous;
* and, after login, a **user id** — only with a valid person token for that user
  (``X-Person-Token``, signed by the site's backend), exactly as for public keys elsewhere.

Every id the request names (an event's ``user_id`` / ``anonymous_id``, the person asked
recommendations for, the person whose consent changes) must be that visitor's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from personify.domain.errors import Forbidden, InvalidInput

ANONYMOUS_PREFIX = "anon-"
ANONYMOUS_ID_RE = re.compile(r"^anon-[A-Za-z0-9_-]{16,64}$")
ANONYMOUS_HEADER = "X-Personify-Anonymous-Id"
USER_HEADER = "X-Personify-User-Id"
ANONYMOUS_ACCEPTED = "'anon-' followed by 16-64 letters, digits, '_' or '-' (the snippet's id)"


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case, or InvalidInput naming ``allowed_origins``."""
    text = value.strip().rstrip("/").lower()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        raise InvalidInput(
            f"invalid origin {value!r}", field="allowed_origins",
            accepted="origins such as https://shop.example or http://localhost:3000 "
            "(scheme, host and optional port; no path)",
        )
    return f"{parts.scheme}://{parts.netloc}"


def check_origin(origin: str | None, allowed: list[str], own: str | None) -> None:
    """Return when a browser key may be used from ``origin`` (a page of the API's own origin
    ``own`` always may; a request without Origin is not from a page); Forbidden otherwise."""
    if origin is None:
        return
    text = origin.strip().lower()
    if text == own or text in allowed:
        return
    raise Forbidden(
        f"origin {origin!r} is not allowed to use this tenant's browser key",
        field="Origin",
        accepted="a page served from one of the tenant's allowed_origins (settings: "
        'allowed_origins = {"<tenant>": ["https://shop.example"]}; docs/web.md)',
    )


def check_anonymous_id(value: str, field: str = ANONYMOUS_HEADER) -> str:
    if not ANONYMOUS_ID_RE.match(value):
        raise Forbidden(
            f"a browser key acts only for anonymous ids made by the snippet, not {value!r}",
            field=field, accepted=ANONYMOUS_ACCEPTED + "; a logged-in user id needs "
            "X-Personify-User-Id with a person token (X-Person-Token)",
        )
    return value


@dataclass(frozen=True)
class Visitor:
    """The one person a browser-key request acts for (see the module docstring)."""

    anonymous_id: str | None
    user_id: str | None = None
    """Set only when the request carried a valid person token for it."""

    @property
    def key(self) -> str:
        """The visitor's rate-limit bucket name."""
        return f"user:{self.user_id}" if self.user_id else f"anon:{self.anonymous_id}"

    def owns(self, user_id: str | None = None, anonymous_id: str | None = None) -> bool:
        """Whether the ids a request names are this visitor's (at least one must be given)."""
        if user_id is None and anonymous_id is None:
            return False
        if anonymous_id is not None and anonymous_id != self.anonymous_id:
            return False
        return user_id is None or user_id == self.user_id

    def is_self(self, person_id: str) -> bool:
        """Whether ``person_id`` (a path's user id) is this visitor: their user id, or their
        anonymous id (an anonymous visitor's consent is recorded under it)."""
        return person_id in (self.user_id, self.anonymous_id)

    def check(self, user_id: str | None = None, anonymous_id: str | None = None,
              field: str = "user_id") -> None:
        if not self.owns(user_id, anonymous_id):
            named = user_id if user_id is not None else anonymous_id
            raise Forbidden(
                f"a browser key may act only for the current visitor, not {named!r}",
                field=field,
                accepted="the visitor's own anonymous id (X-Personify-Anonymous-Id) or the "
                "user id of a valid person token (X-Personify-User-Id + X-Person-Token)",
            )

    def foreign_event(self, raw: Any) -> str | None:
        """Why event ``raw`` (a parsed JSON value) is not this visitor's, or None."""
        if not isinstance(raw, dict):
            return None  # the ingestor reports the malformed value itself
        user_id, anonymous_id = raw.get("user_id"), raw.get("anonymous_id")
        if not isinstance(user_id, str | None) or not isinstance(anonymous_id, str | None):
            return None
        if user_id is None and anonymous_id is None:
            return None
        if self.owns(user_id, anonymous_id):
            return None
        return "a browser key may send events only for the current visitor"
