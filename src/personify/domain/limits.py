"""Documented input limits, enforced by the domain types, the API and the importers.

Change them here only; docs/api.md quotes them.
"""

from __future__ import annotations

from datetime import timedelta

MAX_ID_LENGTH = 128
"""User, item, event, order and recommendation ids: 1..128 characters."""
MAX_NAME_LENGTH = 64
"""Event types, item types, purposes, property names, tenant names."""
MAX_IDEMPOTENCY_KEY_LENGTH = 255
"""An ``Idempotency-Key`` header: 1..255 visible ASCII characters."""
MAX_SHORT_TEXT = 512
"""Titles, search queries, pages, single attribute values."""
MAX_LONG_TEXT = 20_000
"""Descriptions and bios."""
MAX_EVENT_TEXT = 8_000
"""An event's ``text`` (a review, comment, message, reply): at most 8,000 characters (the text
analysis reads the first 2,000 of them)."""
MAX_PROPERTIES = 64
"""Free properties per record (and context extras)."""
MAX_LIST_LENGTH = 100
"""Categories, tags, skills, interests, goals."""
MAX_EVENT_BYTES = 32 * 1024
"""One serialized event, as Segment: 32 KiB."""
MAX_AMOUNT = 1_000_000_000.0
"""Prices and event values (in the currency's units): finite, at most a billion in magnitude."""
MAX_QUANTITY = 1_000_000.0
"""Units in one event (quantity): finite, 0..a million."""
MAX_OFFSET = 100_000_000
"""Largest ``offset`` of a listing (past it, a database's integer would overflow long before a
catalogue or a user base is that large: page by filters or an export instead)."""
MAX_BATCH_EVENTS = 10_000
"""Events per batch call."""
MAX_BATCH_RECORDS = 10_000
"""Users or items per bulk call."""
MAX_REQUEST_BYTES = 16 * 1024 * 1024
"""One HTTP request body."""
FUTURE_TOLERANCE = timedelta(hours=24)
"""How far in the future a client timestamp may be (clock skew)."""
OLDEST_TIMESTAMP_YEAR = 1995
"""Client timestamps before this year are refused as absurd."""
