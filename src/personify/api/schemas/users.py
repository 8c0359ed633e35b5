"""User bodies: the fields a client sends (Create / Update) and what the API returns (User)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from personify.api.schemas.common import Page
from personify.domain._fields import Identifier, Properties
from personify.domain.users import Profile, User, UserPatch

__all__ = ["AliasRequest", "UserCreate", "UserFields", "UserList", "UserPatch", "UserPublic"]

UserPublic = User
"""The public shape is the domain record (with ``created_at`` / ``updated_at`` set by the store)."""


class UserFields(BaseModel):
    """Body of ``PUT /v1/users/{user_id}``: the whole profile (replaces the stored one)."""

    model_config = ConfigDict(extra="forbid")

    anonymous_ids: list[Identifier] = Field(default_factory=list, max_length=100)
    profile: Profile = Field(default_factory=Profile)
    properties: Properties = Field(default_factory=dict)
    restricted: bool = False

    def to_user(self, user_id: str) -> User:
        return User.model_validate({**dict(self), "user_id": user_id})


class UserCreate(UserFields):
    """One record of ``POST /v1/users:bulk``: the fields plus the id."""

    user_id: Identifier

    def to_domain(self) -> User:
        return self.to_user(self.user_id)


class AliasRequest(BaseModel):
    """Body of ``POST /v1/users/{user_id}/aliases``: an anonymous / session id to merge in."""

    model_config = ConfigDict(extra="forbid")

    anonymous_id: Identifier


class UserList(Page):
    users: list[User]
