"""API key bodies. The secret appears only in the answer to a create call."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from personify.domain._fields import Label
from personify.domain.keys import ApiKey, Scope

KeyPublic = ApiKey


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Label
    scopes: list[Scope] = Field(min_length=1, max_length=5)


class KeyCreated(BaseModel):
    """The new key's record and its secret, shown this once and never again."""

    key: ApiKey
    secret: str


class KeyList(BaseModel):
    keys: list[ApiKey]
