"""Outbound URLs a tenant sets reach public addresses only, checked at save time and at connect time."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.netguard import BlockedDestination, OutboundGuard, guarded_client, is_allowed, parse_networks

BLOCKED_URLS = [
    "http://localhost/hook",
    "http://127.0.0.1:5432/",
    "http://127.1:8002/v1/invitations",
    "http://2130706433/",  # 127.0.0.1 as a decimal number
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://[::1]:8001/",
    "http://0.0.0.0:8003/",
    "http://[::]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.7/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://224.0.0.1/",
    "http://metadata.internal/",
    "http://printer.local/",
]


@pytest.mark.parametrize("url", BLOCKED_URLS)
async def test_internal_destinations_are_refused_at_save_time(url):
    with pytest.raises(BlockedDestination):
        await OutboundGuard().check_url(url)


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.com/x", "must start with"),
        ("https://user:secret@example.com/", "user name or password"),
        ("https:///nohost", "no host"),
        ("https://example.com:99999/", "port"),
    ],
)
async def test_malformed_urls_are_refused_with_the_reason(url, message):
    with pytest.raises(BlockedDestination, match=message):
        await OutboundGuard().check_url(url)


async def test_public_addresses_and_names_that_do_not_resolve_yet_are_accepted():
    guard = OutboundGuard()
    assert await guard.check_url("https://93.184.215.14/hook") == "https://93.184.215.14/hook"
    # No DNS here: the name cannot be checked now, so it is checked on every request instead.
    assert await guard.check_url("https://hooks.example.invalid/x") == "https://hooks.example.invalid/x"


def test_an_operator_can_allow_a_network():
    allowed = parse_networks("127.0.0.0/8, ::1/128")
    assert is_allowed(ipaddress.ip_address("127.0.0.1"), allowed)
    assert is_allowed(ipaddress.ip_address("::ffff:127.0.0.1"), allowed)
    assert not is_allowed(ipaddress.ip_address("10.0.0.1"), allowed)
    with pytest.raises(ValueError):
        parse_networks("127.0.0.0/33")


@pytest.fixture
async def local_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A bare HTTP server on 127.0.0.1 that records each request's head."""
    heads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, heads


async def test_a_request_is_refused_at_connect_time_when_the_name_resolves_to_a_blocked_address(local_server):
    port, heads = local_server
    # The name passed any save-time check long ago; now it resolves to loopback (DNS rebinding).
    async with guarded_client(OutboundGuard()) as client:
        with pytest.raises(httpx.ConnectError, match="non-public"):
            await client.get(f"http://localhost:{port}/hook")
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/hook")
    assert heads == []


async def test_an_allowed_network_is_reached_at_the_checked_address_with_the_original_host_header(
    local_server,
):
    port, heads = local_server
    guard = OutboundGuard(parse_networks("127.0.0.0/8,::1/128"))
    async with guarded_client(guard) as client:
        response = await client.get(f"http://localhost:{port}/hook")
    assert response.status_code == 200
    assert f"host: localhost:{port}".encode() in heads[0].lower()


async def test_redirects_are_not_followed(local_server):
    async with guarded_client(OutboundGuard(parse_networks("127.0.0.0/8"))) as client:
        assert client.follow_redirects is False
