"""Signed tracking tokens: events flow back, no open redirect, one-click unsubscribe."""

from __future__ import annotations

import pytest

from personify.domain.errors import InvalidInput, NotFound, Unauthorized
from personify.messaging.outbox import new_message
from personify.messaging.records import TrackedLink
from personify.messaging.state_stores import memory_state
from personify.messaging.tracking import TrackingHandler, TrackingSigner


@pytest.fixture
def setup(clock):
    signer = TrackingSigner(b"k" * 32, "https://track.example/", mailto_domain="example.com")
    state = memory_state()
    outbox, suppressions = state.outbox, state.suppressions
    events: list = []
    handler = TrackingHandler(
        signer, outbox, suppressions, lambda t, e: events.append((t, e)), clock=clock
    )
    message = new_message("shop", "ann", "news", dedup_key="k", now=clock())
    outbox.enqueue(message)
    outbox.save_links(
        message.message_id, {"r0": TrackedLink("https://shop.example/p/1", "p1", "rec-9")}
    )
    return signer, handler, message, events, suppressions


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_click_emits_event_and_redirects_to_stored_url(setup) -> None:
    signer, handler, message, events, _ = setup
    url = signer.click_url("shop", message.message_id, "ann", "r0")
    click = handler.click(_token(url))
    assert click.redirect_url == "https://shop.example/p/1"
    [(tenant, event)] = events
    assert tenant == "shop" and event.type == "email_click"
    assert event.item_id == "p1" and event.recommendation_id == "rec-9" and event.user_id == "ann"


def test_open_pixel_emits_open_with_recommendation_id(setup) -> None:
    signer, handler, message, _, _ = setup
    event = handler.open(_token(signer.open_url("shop", message.message_id, "ann")))
    assert event.type == "email_open"
    assert event.recommendation_id == f"msg-{message.message_id}"


def test_tampered_or_foreign_tokens_are_refused(setup) -> None:
    signer, handler, message, events, _ = setup
    token = _token(signer.click_url("shop", message.message_id, "ann", "r0"))
    body, mac = token.split(".")
    with pytest.raises(Unauthorized):
        handler.click(body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac)
    other = TrackingSigner(b"x" * 32, "https://evil.example")
    with pytest.raises(Unauthorized):
        handler.click(_token(other.click_url("shop", message.message_id, "ann", "r0")))
    with pytest.raises(Unauthorized):  # an open token is not a click token
        handler.click(_token(signer.open_url("shop", message.message_id, "ann")))
    with pytest.raises(NotFound):  # a validly signed link id that was never stored
        handler.click(_token(signer.click_url("shop", message.message_id, "ann", "r7")))
    assert events == []


def test_one_click_unsubscribe(setup) -> None:
    signer, handler, _, _, suppressions = setup
    url = signer.unsubscribe_url("shop", "ann", "email")
    assert handler.unsubscribe(_token(url)) == ("shop", "ann", "email")
    assert suppressions.is_suppressed("shop", "ann", "email")
    mailto = signer.unsubscribe_mailto("shop", "ann", "email")
    assert mailto.startswith("mailto:unsubscribe@example.com?subject=unsubscribe%20")


def test_short_secret_is_refused() -> None:
    with pytest.raises(InvalidInput):
        TrackingSigner(b"short", "https://t.example")
