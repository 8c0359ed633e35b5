"""A typed Python client for the Personify HTTP API (sync and async, on httpx). Every public
route has a method on both clients, defined once in :mod:`personify.client._calls`."""

from personify.client.async_client import AsyncPersonifyClient
from personify.client.results import (
    BulkResult,
    Consents,
    CreatedKey,
    Decision,
    ErasureReceipt,
    EventAck,
    IngestResult,
    RankedAction,
    Recommendations,
    RecommendedItem,
    RejectedRecord,
)
from personify.client.sync import PersonifyClient

__all__ = [
    "AsyncPersonifyClient",
    "BulkResult",
    "Consents",
    "CreatedKey",
    "Decision",
    "ErasureReceipt",
    "EventAck",
    "IngestResult",
    "PersonifyClient",
    "RankedAction",
    "Recommendations",
    "RecommendedItem",
    "RejectedRecord",
]
