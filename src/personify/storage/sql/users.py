"""SQL user profiles: JSON document plus the columns search needs; anonymous ids in their own
table so one id belongs to exactly one user."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from personify.domain.errors import NotFound
from personify.domain.users import Profile, User, UserPatch
from personify.storage.sql._dialect import like_pattern, upsert_insert
from personify.storage.sql._validation import invalid_input
from personify.storage.sql.database import Database
from personify.storage.sql.schema import user_anonymous_ids, users

_U = users.c
_A = user_anonymous_ids.c
_CHUNK = 500
"""Ids per ``IN (...)`` list in bulk reads."""


class SqlUserStore:
    """The :class:`~personify.storage.ports.UserStore` on SQLite or PostgreSQL.

    ``upsert`` replaces profile and properties but keeps ``created_at`` and only ever adds
    anonymous ids (an id seen under another user moves to this one); ``patch`` merges.
    Anonymous ids come back sorted.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def upsert(self, tenant: str, users_: Sequence[User]) -> list[User]:
        """Insert or replace ``users_`` (the last of repeated ids wins); returns what is stored."""
        latest = {user.user_id: user for user in users_}
        now = datetime.now(UTC)
        with self._db.write() as conn:
            stored = self._load(conn, tenant, list(latest))
            final = []
            for user_id, user in latest.items():
                old = stored.get(user_id)
                anonymous = sorted({*(old.anonymous_ids if old else ()), *user.anonymous_ids})
                created = old.created_at if old else (user.created_at or now)
                final.append(
                    user.model_copy(
                        update={
                            "anonymous_ids": anonymous,
                            "created_at": created,
                            "updated_at": now,
                        }
                    )
                )
            self._write(conn, tenant, final)
        return final

    def patch(self, tenant: str, user_id: str, patch: UserPatch) -> User:
        """Merge ``patch`` into the stored user (profile fields one by one) and validate it."""
        with self._db.write() as conn:
            current = self._load(conn, tenant, [user_id], lock=True).get(user_id)
            if current is None:
                raise NotFound(f"user {user_id!r} does not exist", field="user_id")
            update: dict[str, Any] = {"updated_at": datetime.now(UTC)}
            if patch.profile is not None:
                merged = current.profile.model_dump() | patch.profile
                try:
                    update["profile"] = Profile.model_validate(merged)
                except ValidationError as exc:
                    raise invalid_input(exc, prefix="profile") from exc
            if patch.properties is not None:
                properties = current.properties | patch.properties
                try:
                    User.model_validate({"user_id": user_id, "properties": properties})
                except ValidationError as exc:
                    raise invalid_input(exc) from exc
                update["properties"] = properties
            if patch.anonymous_ids is not None:
                update["anonymous_ids"] = sorted({*current.anonymous_ids, *patch.anonymous_ids})
            if patch.restricted is not None:
                update["restricted"] = patch.restricted
            user = current.model_copy(update=update)
            self._write(conn, tenant, [user])
        return user

    def get(self, tenant: str, user_id: str) -> User | None:
        with self._db.read() as conn:
            return self._load(conn, tenant, [user_id]).get(user_id)

    def get_many(self, tenant: str, user_ids: Sequence[str]) -> dict[str, User]:
        """The users that exist among ``user_ids``, by id (bulk reads, e.g. a batch's gate)."""
        ids = list(dict.fromkeys(user_ids))
        found: dict[str, User] = {}
        with self._db.read() as conn:
            for start in range(0, len(ids), _CHUNK):
                found.update(self._load(conn, tenant, ids[start : start + _CHUNK]))
        return found

    def get_many_by_anonymous(
        self, tenant: str, anonymous_ids: Sequence[str]
    ) -> dict[str, User]:
        """Anonymous id -> the user it is linked to, for the linked ones among ``anonymous_ids``."""
        ids = list(dict.fromkeys(anonymous_ids))
        owners: dict[str, str] = {}
        with self._db.read() as conn:
            for start in range(0, len(ids), _CHUNK):
                query = sa.select(_A.anonymous_id, _A.user_id).where(
                    _A.tenant == tenant, _A.anonymous_id.in_(ids[start : start + _CHUNK])
                )
                owners.update((row.anonymous_id, row.user_id) for row in conn.execute(query))
            wanted = list(set(owners.values()))
            loaded: dict[str, User] = {}
            for start in range(0, len(wanted), _CHUNK):
                loaded.update(self._load(conn, tenant, wanted[start : start + _CHUNK]))
        return {anon: loaded[user] for anon, user in owners.items() if user in loaded}

    def get_by_anonymous(self, tenant: str, anonymous_id: str) -> User | None:
        owner = sa.select(_A.user_id).where(_A.tenant == tenant, _A.anonymous_id == anonymous_id)
        with self._db.read() as conn:
            user_id = conn.execute(owner).scalar_one_or_none()
            if user_id is None:
                return None
            return self._load(conn, tenant, [user_id]).get(user_id)

    def list(
        self, tenant: str, *, query: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[User]:
        """Users by id; ``query`` matches id, name or e-mail, case-insensitively (any script)."""
        ids = sa.select(_U.user_id).where(_U.tenant == tenant)
        if query:
            pattern = like_pattern(query.casefold())
            ids = ids.where(_U.search_text.like(pattern, escape="\\"))
        ids = ids.order_by(_U.user_id).limit(limit).offset(offset)
        with self._db.read() as conn:
            found = list(conn.execute(ids).scalars())
            loaded = self._load(conn, tenant, found)
        return [loaded[user_id] for user_id in found if user_id in loaded]

    def count(self, tenant: str) -> int:
        query = sa.select(sa.func.count()).select_from(users).where(_U.tenant == tenant)
        with self._db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def delete(self, tenant: str, user_id: str) -> bool:
        """Delete the user and their anonymous-id links (not their events)."""
        with self._db.write() as conn:
            conn.execute(
                sa.delete(user_anonymous_ids).where(_A.tenant == tenant, _A.user_id == user_id)
            )
            result = conn.execute(
                sa.delete(users).where(_U.tenant == tenant, _U.user_id == user_id)
            )
            return bool(getattr(result, "rowcount", 0))

    def _load(
        self, conn: Connection, tenant: str, user_ids: Sequence[str], *, lock: bool = False
    ) -> dict[str, User]:
        if not user_ids:
            return {}
        query = sa.select(
            _U.user_id, _U.restricted, _U.created_at, _U.updated_at, _U.payload
        ).where(_U.tenant == tenant, _U.user_id.in_(list(user_ids)))
        if lock and self._db.is_postgres:
            query = query.with_for_update()
        anonymous: dict[str, list[str]] = {}
        links = (
            sa.select(_A.user_id, _A.anonymous_id)
            .where(_A.tenant == tenant, _A.user_id.in_(list(user_ids)))
            .order_by(_A.anonymous_id)
        )
        for link in conn.execute(links):
            anonymous.setdefault(link.user_id, []).append(link.anonymous_id)
        found = {}
        for row in conn.execute(query):
            document = orjson.loads(row.payload)
            found[row.user_id] = User.model_validate(
                {
                    **document,
                    "user_id": row.user_id,
                    "anonymous_ids": anonymous.get(row.user_id, []),
                    "restricted": row.restricted,
                    "created_at": row.created_at,
                    "updated_at": row.updated_at,
                }
            )
        return found

    def _write(self, conn: Connection, tenant: str, users_: Sequence[User]) -> None:
        rows = [_row(tenant, user) for user in users_]
        insert = upsert_insert(self._db.dialect, users)
        replace = {
            name: insert.excluded[name]
            for name in (
                "name",
                "email",
                "country",
                "search_text",
                "restricted",
                "updated_at",
                "payload",
            )
        }
        conn.execute(
            insert.on_conflict_do_update(index_elements=["tenant", "user_id"], set_=replace), rows
        )
        links = [
            {"tenant": tenant, "anonymous_id": anonymous_id, "user_id": user.user_id}
            for user in users_
            for anonymous_id in user.anonymous_ids
        ]
        if links:
            link = upsert_insert(self._db.dialect, user_anonymous_ids)
            conn.execute(
                link.on_conflict_do_update(
                    index_elements=["tenant", "anonymous_id"],
                    set_={"user_id": link.excluded.user_id},
                ),
                links,
            )


def _row(tenant: str, user: User) -> dict[str, Any]:
    profile = user.profile
    search = "\n".join(part for part in (user.user_id, profile.name, profile.email) if part)
    document = {
        "profile": profile.model_dump(mode="json", exclude_none=True),
        "properties": user.properties,
    }
    return {
        "tenant": tenant,
        "user_id": user.user_id,
        "name": profile.name,
        "email": profile.email.casefold() if profile.email else None,
        "country": profile.country,
        "search_text": search.casefold(),
        "restricted": user.restricted,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
        "payload": orjson.dumps(document).decode(),
    }
