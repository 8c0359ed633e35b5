"""User errors on the command line: one red line with the field and what is accepted, exit 2.

Every command runs under :class:`ErrorHandlingGroup`, so a ``PersonifyError`` (or an invalid
setting) raised anywhere below prints like this instead of a traceback::

    error: unknown record kind 'orders' (field: kind; accepted: users, items, events)
"""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text
from sqlalchemy import exc as sa_exc
from typer.core import TyperGroup

from personify.domain.errors import PersonifyError

USER_ERROR_EXIT = 2


def error_line(error: PersonifyError) -> str:
    """``message (field: f; accepted: a)`` without markup."""
    extras = []
    if error.field:
        extras.append(f"field: {error.field}")
    if error.accepted:
        extras.append(f"accepted: {error.accepted}")
    return error.message + (f" ({'; '.join(extras)})" if extras else "")


def settings_error_line(exc: ValidationError) -> str:
    """The first problem of invalid settings, naming the setting."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"invalid setting {where}: {first.get('msg', 'invalid value')}"


def database_error_line(exc: sa_exc.OperationalError) -> str:
    """The driver's first line for a database that cannot be reached or refused the command."""
    lines = str(exc.orig or exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    return (f"the database cannot be reached: {reason} (field: database_url; accepted: a "
            "reachable database; check host, port and credentials)")


def print_error(message: str) -> None:
    """One red line on stderr (no wrapping, no markup interpretation)."""
    text = Text("error: ", style="bold red")
    text.append(message, style="red")
    Console(stderr=True, soft_wrap=True).print(text)


class ErrorHandlingGroup(TyperGroup):
    """The top-level command group: turns user errors raised by any command into one line."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except PersonifyError as exc:
            print_error(error_line(exc))
            raise typer.Exit(USER_ERROR_EXIT) from None
        except ValidationError as exc:
            print_error(settings_error_line(exc))
            raise typer.Exit(USER_ERROR_EXIT) from None
        except sa_exc.OperationalError as exc:  # an unreachable / refusing database
            print_error(database_error_line(exc))
            raise typer.Exit(USER_ERROR_EXIT) from None
