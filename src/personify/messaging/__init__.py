"""Personalized messages: templates, channels, a durable outbox, tracking, journeys and timing.

Inner code only: the runtime opens the stores (``state_stores.open_state_stores``)
and wire the callables (users, consent, recommendations) into :class:`OutboxWorker` and
:class:`JourneyEngine`.
"""
