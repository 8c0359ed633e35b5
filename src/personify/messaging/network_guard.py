"""Resolve a webhook host once and refuse non-public addresses (SSRF / DNS rebinding guard)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection

from personify.domain.errors import Forbidden

Resolver = Callable[[str, int], list[str]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal_reason(address: IpAddress) -> str | None:
    """Why ``address`` must not be contacted, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            reason = refusal_reason(mapped)
            return f"IPv4-mapped {reason}" if reason else None
        if address.teredo is not None:
            return "Teredo tunnel address"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    for name, hit in checks:
        if hit:
            return f"{name} address {address}"
    return None


def ip_literal(host: str) -> IpAddress | None:
    """The address ``host`` spells, in any spelling the C resolver accepts (``127.1``,
    ``2130706433``, ``0x7f.0.0.1``, ``[::1]``), or None for a name."""
    text = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if text and all(c in "0123456789abcdefxABCDEFX." for c in text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def resolve_public(
    host: str,
    port: int,
    *,
    resolver: Resolver = system_resolver,
    allow: Collection[str] = (),
) -> str:
    """Resolve ``host`` once and return one address to connect to.

    Refuses the host if ANY resolved address is non-public, unless the host or address is in
    ``allow`` (a development / test override).
    """
    try:
        literal: IpAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    try:
        addresses = [str(literal)] if literal is not None else resolver(host, port)
    except OSError as exc:
        raise Forbidden(f"cannot resolve webhook host {host!r}: {exc}", field="url") from exc
    if not addresses:
        raise Forbidden(f"webhook host {host!r} has no address", field="url")
    if host in allow:
        return addresses[0]
    for text in addresses:
        if text in allow:
            continue
        reason = refusal_reason(ipaddress.ip_address(text.split("%")[0]))
        if reason:
            raise Forbidden(
                f"webhook host {host!r} resolves to a {reason}",
                field="url",
                accepted="a host whose every address is public",
            )
    return addresses[0]
