"""A typed Python client for the Personify HTTP API (sync and async, on httpx). Every public
route has a method on both clients, defined once in :mod:`personify.client._calls`."""

from personify.client.async_client import AsyncPersonifyClient
from personify.client.results import (
    Assignment,
    Assignments,
    BulkResult,
    Consents,
    CreatedKey,
    Decision,
    ErasureReceipt,
    EventAck,
    Exposure,
    IngestResult,
    RankedAction,
    Recommendations,
    RecommendedItem,
    RejectedRecord,
)
from personify.client.sync import PersonifyClient

__all__ = [
    "Assignment",
    "Assignments",
    "AsyncPersonifyClient",
    "BulkResult",
    "Consents",
    "CreatedKey",
    "Decision",
    "ErasureReceipt",
    "EventAck",
    "Exposure",
    "IngestResult",
    "PersonifyClient",
    "RankedAction",
    "Recommendations",
    "RecommendedItem",
    "RejectedRecord",
]
