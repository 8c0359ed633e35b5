"""The audit dependency of the personal-data routers: every admin call that reads or changes a
person's data appends one entry to the privacy audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from personify.api.deps import AdminKey, PrivacyDep
from personify.api.errors import status_for
from personify.domain.errors import PersonifyError
from personify.domain.keys import ApiKey
from personify.domain.privacy import AuditEntry
from personify.privacy.runtime import PrivacyRuntime


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
    except RequestValidationError:  # FastAPI validates parameters and bodies inside this scope
        record_access(privacy, request, key, subject=subject, status=422)
        raise
    except Exception:
        record_access(privacy, request, key, subject=subject, status=500)
        raise
    route = request.scope.get("route")
    record_access(privacy, request, key, subject=subject,
                  status=getattr(route, "status_code", None) or 200)


Audited = Depends(audit_personal_data)
"""Add ``dependencies=[Audited]`` to a router whose routes read or change personal data."""
