"""Catalogue items of several types in one catalogue."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from personify.domain._fields import (
    Identifier,
    LabelList,
    LongText,
    Name,
    Price,
    Properties,
    ShortText,
)


class ItemType(StrEnum):
    """Built-in item types; any other machine name is accepted as a custom type."""

    PRODUCT = "product"
    CONTENT = "content"
    PERSON = "person"
    EVENT = "event"
    GROUP = "group"
    PROJECT = "project"
    OFFER = "offer"


class Item(BaseModel):
    """One catalogue entry: a product, an article, a person, a meet-up, a group ..."""

    model_config = ConfigDict(extra="forbid")

    item_id: Identifier
    type: Name = ItemType.PRODUCT.value
    title: ShortText = ""
    description: LongText = ""
    categories: LabelList = Field(default_factory=list)
    tags: LabelList = Field(default_factory=list)
    price: Price | None = None
    currency: ShortText | None = Field(default=None, max_length=3)
    available: bool = True
    hidden: bool = False
    author_id: Identifier | None = Field(
        default=None, description="the user who owns the item (a person's own profile, a post)"
    )
    created_at: datetime | None = None
    expires_at: datetime | None = None
    properties: Properties = Field(default_factory=dict)
    updated_at: datetime | None = None


class ItemPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Name | None = None
    title: ShortText | None = None
    description: LongText | None = None
    categories: LabelList | None = None
    tags: LabelList | None = None
    price: Price | None = None
    currency: ShortText | None = Field(default=None, max_length=3)
    available: bool | None = None
    hidden: bool | None = None
    author_id: Identifier | None = None
    expires_at: datetime | None = None
    properties: Properties | None = None
