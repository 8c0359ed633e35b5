"""Domain errors: one place, each with a stable code, the offending field and what is accepted.

The API maps these to HTTP status codes in ``personify.api.errors``; the CLI prints them.
"""

from __future__ import annotations

from typing import Any


class PersonifyError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        accepted: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.accepted = accepted
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.accepted is not None:
            body["accepted"] = self.accepted
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(PersonifyError):
    """A value does not satisfy the schema or a documented limit."""

    code = "invalid_input"


class LimitExceeded(InvalidInput):
    """A payload, batch, string or property count is over a documented limit."""

    code = "limit_exceeded"


class NotFound(PersonifyError):
    code = "not_found"


class Conflict(PersonifyError):
    code = "conflict"


class Unauthorized(PersonifyError):
    """No credentials, unknown or revoked key."""

    code = "unauthorized"


class Forbidden(PersonifyError):
    """Valid credentials without the scope the action needs."""

    code = "forbidden"


class Erased(PersonifyError):
    """The subject was erased; replayed data must not re-create them."""

    code = "erased"


class NotFitted(PersonifyError):
    """A model was used before ``fit`` (or no trained model is available yet)."""

    code = "not_fitted"


class Unavailable(PersonifyError):
    """A backing service is down or an optional extra is not installed."""

    code = "unavailable"


class ConfigurationError(PersonifyError):
    code = "configuration_error"


class RateLimited(PersonifyError):
    """Too many requests for a key's (or a tenant's) rate limit; retry after ``retry_after_s``."""

    code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float = 0.0,
        field: str | None = None,
        accepted: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, field=field, accepted=accepted, details=details)
        self.retry_after_s = retry_after_s
