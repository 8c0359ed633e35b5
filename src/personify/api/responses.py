"""JSON responses rendered with orjson (fast, and datetimes / UUIDs need no extra work)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONBody(Response):
    """A JSON response rendered with orjson; used by the hot ingestion paths and error bodies."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
