"""Signed webhooks: SSRF refusals after resolution, pinned address, no redirects, timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from personify.domain.errors import InvalidInput
from personify.domain.users import User
from personify.messaging.channels import PermanentSendError, TransientSendError
from personify.messaging.network_guard import resolve_public
from personify.messaging.outbox import new_message
from personify.messaging.templates import RenderedMessage
from personify.messaging.webhooks import WebhookSender, WebhookTarget, verify_signature

SECRET = b"w" * 32
REFUSED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "100.64.0.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2001:db8::1",
    "2002:7f00:1::1",
]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused_after_resolution(address: str) -> None:
    with pytest.raises(Exception) as info:
        resolve_public("hooks.example.com", 443, resolver=lambda h, p: [address])
    assert info.value.__class__.__name__ == "Forbidden"
    assert info.value.field == "url"


def test_any_private_address_among_several_refuses_the_host() -> None:
    with pytest.raises(Exception, match=r"private|loopback"):
        resolve_public("h.example.com", 443, resolver=lambda h, p: ["93.184.216.34", "10.0.0.5"])
    assert (
        resolve_public("h.example.com", 443, resolver=lambda h, p: ["93.184.216.34"])
        == "93.184.216.34"
    )


def test_literal_ip_hosts_are_checked_without_dns() -> None:
    def boom(h: str, p: int) -> list[str]:
        raise AssertionError("no DNS lookup for a literal")

    with pytest.raises(Exception, match="loopback"):
        resolve_public("127.0.0.1", 80, resolver=boom)
    with pytest.raises(Exception, match="loopback"):
        resolve_public("[::ffff:7f00:1]", 80, resolver=boom)


def test_plain_http_needs_explicit_development_flag() -> None:
    with pytest.raises(InvalidInput) as info:
        WebhookSender(WebhookTarget("http://hooks.example.com/x", SECRET))
    assert info.value.field == "url"
    with pytest.raises(InvalidInput):
        WebhookSender(WebhookTarget("ftp://hooks.example.com/x", SECRET))


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    mode = "ok"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        if type(self).mode == "redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
        elif type(self).mode == "slow":
            time.sleep(0.6)
            self.send_response(200)
        elif type(self).mode == "error":
            self.send_response(503)
        else:
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def hook_server() -> Iterator[tuple[int, type[_Hook]]]:
    _Hook.received = []
    _Hook.mode = "ok"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _Hook
    server.shutdown()
    server.server_close()
    thread.join(5)


def _send(sender: WebhookSender) -> None:
    user = User(user_id="ann")
    message = new_message("t", "ann", "push_tpl", dedup_key="k", channel="push")
    sender.send(message, RenderedMessage("Hi", "", "", "Sale", "en", "formal"), user)


def _sender(port: int, lookups: list[str], timeout: float = 2.0) -> WebhookSender:
    def resolver(host: str, p: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    return WebhookSender(
        WebhookTarget(f"http://hooks.test:{port}/push", SECRET, timeout_s=timeout),
        allow_http=True,
        allow_hosts={"127.0.0.1"},
        resolver=resolver,
    )


def test_signed_delivery_to_the_pinned_address(hook_server) -> None:
    port, hook = hook_server
    lookups: list[str] = []
    sender = _sender(port, lookups)
    _send(sender)
    sender.close()
    assert lookups == ["hooks.test"]  # resolved once; 'hooks.test' does not exist in DNS
    [(headers, body)] = hook.received
    assert headers["Host"] == f"hooks.test:{port}"
    ts = int(headers["X-Personify-Timestamp"])
    assert verify_signature(SECRET, ts, body, headers["X-Personify-Signature"], now=time.time())
    assert not verify_signature(
        SECRET, ts, body + b" ", headers["X-Personify-Signature"], now=time.time()
    )
    assert not verify_signature(
        SECRET, ts, body, headers["X-Personify-Signature"], now=time.time() + 3600
    )


def test_loopback_is_refused_without_the_allow_list(hook_server) -> None:
    port, hook = hook_server
    sender = WebhookSender(WebhookTarget(f"http://localhost:{port}/push", SECRET), allow_http=True)
    with pytest.raises(PermanentSendError, match="loopback"):
        _send(sender)
    sender.close()
    assert hook.received == []


def test_redirects_are_not_followed(hook_server) -> None:
    port, hook = hook_server
    hook.mode = "redirect"
    sender = _sender(port, [])
    with pytest.raises(PermanentSendError, match="redirect"):
        _send(sender)
    sender.close()
    assert len(hook.received) == 1


def test_timeouts_and_server_errors_are_transient(hook_server) -> None:
    port, hook = hook_server
    hook.mode = "slow"
    sender = _sender(port, [], timeout=0.2)
    with pytest.raises(TransientSendError, match="timed out"):
        _send(sender)
    hook.mode = "error"
    with pytest.raises(TransientSendError, match="503"):
        _send(sender)
    sender.close()
