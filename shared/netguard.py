"""Outbound URLs that a tenant sets (chat, webhooks, SMS/WhatsApp providers, CRMs) reach public
addresses only.

A URL is checked twice: when it is saved (``check_url``: a clear 422 at once) and when a request is
made (``GuardedTransport``: after DNS resolution, so a name that resolved to a public address at
save time and to ``127.0.0.1`` now — DNS rebinding — is still refused). The transport connects to
the very address it checked (TLS still verifies the host name), so a second lookup cannot swap it.

Refused: every address that is not globally routable — loopback, private (RFC 1918, unique-local
IPv6), link-local (169.254.0.0/16 with the cloud metadata service, fe80::/10), carrier-grade NAT,
documentation and reserved ranges, multicast, unspecified (0.0.0.0, ::) — in any spelling the
resolver accepts (``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``). An operator may allow
networks (``CLOSELOOP_OUTBOUND_ALLOW_NETWORKS``, e.g. ``127.0.0.0/8`` for the dev stack and the
tests, or a partner's VPN range).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedDestination(ValueError):
    """The URL points at an address tenants may not reach; the message says why, for the tenant."""


def parse_networks(value: str | Iterable[str]) -> tuple[IPNetwork, ...]:
    """Return the networks in a comma-separated string (or an iterable); raise ValueError on a bad one."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_allowed(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> bool:
    """Return whether ``address`` may be connected to: public, or in an operator-allowed network."""
    address = _unmapped(address)
    if any(address in network for network in allowed):
        return True
    return address.is_global and not address.is_multicast


class OutboundGuard:
    """Checks URLs and resolved addresses against the operator's allowed networks."""

    def __init__(
        self, allowed: Sequence[IPNetwork] = (), *, schemes: tuple[str, ...] = ("https", "http")
    ) -> None:
        self.allowed = tuple(allowed)
        self.schemes = schemes

    def check_address(self, address: str, *, host: str) -> IPAddress:
        """Return ``address`` parsed when it may be reached; raise ``BlockedDestination`` otherwise."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # a scoped IPv6 address: fe80::1%eth0
        if not is_allowed(ip, self.allowed):
            raise BlockedDestination(
                f"{host} points at {_unmapped(ip)}, a loopback, private, link-local or otherwise "
                "non-public address; use a public address (an operator can allow a network with "
                "CLOSELOOP_OUTBOUND_ALLOW_NETWORKS)"
            )
        return ip

    async def resolve(self, host: str, port: int) -> IPAddress:
        """Return the first address of ``host``, after checking every address it resolves to."""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:  # an address needs no resolver (and no trip through its thread pool)
            return self.check_address(str(literal), host=host)
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpx.ConnectError(f"cannot resolve {host}") from exc
        addresses = [self.check_address(str(info[4][0]), host=host) for info in infos]
        if not addresses:
            raise httpx.ConnectError(f"{host} has no address")
        return addresses[0]

    async def check_url(self, url: str) -> str:
        """Return ``url`` when it may be saved; raise ``BlockedDestination`` naming what is wrong.

        A host that does not resolve now is accepted (it may be created later): every request is
        checked again when it is made.
        """
        parts = urlsplit(url)
        if parts.scheme not in self.schemes:
            raise BlockedDestination(
                f"the URL must start with {' or '.join(s + '://' for s in self.schemes)}"
            )
        host = parts.hostname
        if not host:
            raise BlockedDestination("the URL has no host")
        if parts.username or parts.password:
            raise BlockedDestination(
                "the URL must not carry a user name or password; use the credentials fields"
            )
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            if not self.allowed:
                raise BlockedDestination(f"{host} is a local host name; use a public host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise BlockedDestination("the URL's port is not a number from 1 to 65535") from exc
        try:
            await self.resolve(host, port)
        except httpx.ConnectError:
            pass
        return url


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that resolves each request's host, refuses blocked addresses and connects
    to the checked address (with the original name for TLS and the ``Host`` header)."""

    def __init__(self, guard: OutboundGuard, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.guard = guard
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in self.guard.schemes:
            raise BlockedDestination(
                f"the URL must start with {' or '.join(s + '://' for s in self.guard.schemes)}"
            )
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            address = await self.guard.resolve(host, port)
        except BlockedDestination as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        if str(address) != host.strip("[]"):
            request.url = url.copy_with(host=str(address))
            request.extensions = {**request.extensions, "sni_hostname": host}
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def guarded_client(guard: OutboundGuard, *, timeout: float | httpx.Timeout = 10.0) -> httpx.AsyncClient:
    """Return an ``httpx.AsyncClient`` whose every request goes through ``guard``; redirects are not
    followed (a public endpoint could redirect to an internal one)."""
    return httpx.AsyncClient(transport=GuardedTransport(guard), follow_redirects=False, timeout=timeout)
