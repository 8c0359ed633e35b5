"""Drop-in compatibility with the Segment (and RudderStack) HTTP tracking API."""

from personify.runtime.segment.mapping import DEFAULT_TRACK_MAP, MappedBatch, SegmentMapper

__all__ = ["DEFAULT_TRACK_MAP", "MappedBatch", "SegmentMapper"]
