"""The provider request an SMS becomes, as a small HTTP/1.1 server on 127.0.0.1 receives it: Twilio's
Create Message request (basic auth, a form-encoded body) over a kept-alive connection, the reply's SID
read back, and a request whose connection was lost never made twice."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs

import pytest

from services.dispatch.channels import ChannelSettings, HttpChannels, SendError
from services.dispatch.settings import DispatchSettings
from shared.netguard import OutboundGuard
from tests.unit.test_poster import read_request, serve

SID = "AC" + "0" * 32
CREATED = b'{"sid":"SM0123456789abcdef","status":"queued"}'


def channels() -> HttpChannels:
    settings = DispatchSettings(database_url="postgresql://unused/x", http_timeout_s=2)  # type: ignore[call-arg]
    return HttpChannels(settings, OutboundGuard(()))


def sms(port: int) -> ChannelSettings:
    return ChannelSettings(
        "sms",
        base_url=f"http://127.0.0.1:{port}",
        account_sid=SID,
        auth_token="tok:en",
        sender="+15005550006",
        trusted=True,  # the deployment's own provider URL: not held to the (here: strict) guard
    )


async def test_an_sms_is_twilios_create_message_request_over_one_kept_connection() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def provider(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(CREATED), CREATED))
            await writer.drain()

    server, port, connections = await serve(provider)
    http = channels()
    body = "Hoi Zoë & co: 1+1=2? https://go.test/s/abc?x=1"
    for _ in range(2):
        sid = await http.send_message(
            sms(port), to="+31612345678", body=body, status_callback="https://cb.test/s"
        )
        assert sid == "SM0123456789abcdef"
    await http.close()
    server.close()
    assert len(connections) == 1
    head, raw = seen[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == f"POST /2010-04-01/Accounts/{SID}/Messages.json HTTP/1.1"
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    assert headers["authorization"] == "Basic " + base64.b64encode(f"{SID}:tok:en".encode()).decode()
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["host"] == f"127.0.0.1:{port}" and int(headers["content-length"]) == len(raw)
    assert parse_qs(raw.decode(), strict_parsing=True) == {
        "To": ["+31612345678"],
        "Body": [body],
        "From": ["+15005550006"],
        "StatusCallback": ["https://cb.test/s"],
    }


async def test_an_error_reply_is_read_and_a_lost_answer_is_retryable_and_not_resent() -> None:
    requests: list[bytes] = []

    async def provider(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append((await read_request(reader))[1])
        error = b'{"code":21211,"message":"The \'To\' number is not valid.","status":400}'
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(error), error))
        await writer.drain()
        requests.append((await read_request(reader))[1])  # then closed without an answer

    server, port, _ = await serve(provider)
    http = channels()
    with pytest.raises(SendError) as bounced:
        await http.send_message(sms(port), to="+31600000000", body="a", status_callback=None)
    assert bounced.value.hard_bounce and "code 21211" in str(bounced.value)
    with pytest.raises(SendError) as lost:
        await http.send_message(sms(port), to="+31600000001", body="b", status_callback=None)
    assert not lost.value.permanent
    assert len(requests) == 2, "the request whose answer was lost was not made again"
    await http.close()
    server.close()
