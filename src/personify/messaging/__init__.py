"""Personalized messages: templates, channels, a durable outbox, tracking, journeys and timing.

Inner code only: the API / CLI edges choose the stores (``memory_stores`` / ``sqlite_stores``)
and wire the callables (users, consent, recommendations) into :class:`OutboxWorker` and
:class:`JourneyEngine`.
"""
