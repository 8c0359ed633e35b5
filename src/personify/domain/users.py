"""Users: the people a business serves, with profile attributes and identities."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from personify.domain._fields import (
    Identifier,
    LabelList,
    LongText,
    Properties,
    ShortText,
)


class Profile(BaseModel):
    """Well-known profile attributes; all optional. ``properties`` holds anything else."""

    model_config = ConfigDict(extra="forbid")

    name: ShortText | None = None
    email: ShortText | None = None
    country: ShortText | None = None
    city: ShortText | None = None
    time_zone: ShortText | None = None
    language: ShortText | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    birthday: ShortText | None = Field(default=None, description="MM-DD or YYYY-MM-DD")
    gender: ShortText | None = None
    profession: ShortText | None = None
    industry: ShortText | None = None
    experience_years: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    skills: LabelList = Field(default_factory=list)
    interests: LabelList = Field(default_factory=list)
    goals: LabelList = Field(default_factory=list)
    bio: LongText | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: name too long
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'"
            ) from exc
        return value


class User(BaseModel):
    """A person known to one tenant.

    ``anonymous_ids`` are the session / device ids seen before login; events sent under them are
    attributed to this user once linked (see ``identity merge``).
    """

    model_config = ConfigDict(extra="forbid")

    user_id: Identifier
    anonymous_ids: list[Identifier] = Field(default_factory=list, max_length=100)
    profile: Profile = Field(default_factory=Profile)
    properties: Properties = Field(default_factory=dict)
    restricted: bool = Field(
        default=False, description="processing restricted (GDPR art. 18): data kept, not used"
    )
    created_at: datetime | None = None
    updated_at: datetime | None = None


class UserPatch(BaseModel):
    """A partial update: only the fields present are changed; profile fields merge one by one."""

    model_config = ConfigDict(extra="forbid")

    anonymous_ids: list[Identifier] | None = Field(default=None, max_length=100)
    profile: dict[str, object] | None = None
    properties: Properties | None = None
    restricted: bool | None = None
