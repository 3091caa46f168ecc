"""Provider formats: signature vectors (valid and forged) and the mapping of provider events."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from services.dispatch import providers
from services.dispatch.providers import InvalidSignature

# Twilio's published example (auth token "12345"): the signature over the URL and sorted params.
TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
TWILIO_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="

# SendGrid's published Event Webhook test vector (ECDSA P-256, SHA-256 over timestamp + payload).
SENDGRID_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZ"
    "FceEu/1FwCM/QmGUhA=="
)
OTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7G"
    "jUuFDb/R1NGe1OPzpA=="
)
SENDGRID_SIGNATURE = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0="
)
SENDGRID_FORGED = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0="
)
SENDGRID_TIMESTAMP = "1588788367"
SENDGRID_PAYLOAD = b'{"category":"example_payload","event":"test_event","message_id":"message_id"}'


def test_twilio_signature_matches_the_published_example():
    assert providers.twilio_signature(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS.items()) == TWILIO_SIGNATURE
    providers.verify_twilio(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS.items(), TWILIO_SIGNATURE)


@pytest.mark.parametrize(
    "token, url, params, signature",
    [
        ("54321", TWILIO_URL, TWILIO_PARAMS, TWILIO_SIGNATURE),  # another account's token
        (TWILIO_TOKEN, TWILIO_URL.replace("https", "http"), TWILIO_PARAMS, TWILIO_SIGNATURE),  # another URL
        (TWILIO_TOKEN, TWILIO_URL, {**TWILIO_PARAMS, "Digits": "9999"}, TWILIO_SIGNATURE),  # tampered body
        (TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B9="),  # forged
        (TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, None),  # missing
    ],
)
def test_twilio_signature_refuses_forgeries(token, url, params, signature):
    with pytest.raises(InvalidSignature) as refused:
        providers.verify_twilio(token, url, params.items(), signature)
    assert refused.value.field == "X-Twilio-Signature"


def test_sendgrid_signature_matches_the_published_vector_in_both_key_forms():
    providers.verify_sendgrid(
        SENDGRID_KEY,
        SENDGRID_PAYLOAD,
        SENDGRID_SIGNATURE,
        SENDGRID_TIMESTAMP,
        now=1588788367,
        tolerance_s=300,
    )
    pem = "-----BEGIN PUBLIC KEY-----\n" + SENDGRID_KEY + "\n-----END PUBLIC KEY-----\n"
    providers.verify_sendgrid(
        pem, SENDGRID_PAYLOAD, SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, now=1588788400, tolerance_s=300
    )


@pytest.mark.parametrize(
    "key, payload, signature, timestamp, now, field",
    [
        (SENDGRID_KEY, SENDGRID_PAYLOAD, SENDGRID_FORGED, SENDGRID_TIMESTAMP, 1588788367, "Signature"),
        (OTHER_KEY, SENDGRID_PAYLOAD, SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, 1588788367, "Signature"),
        (SENDGRID_KEY, b"payload", SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, 1588788367, "Signature"),
        (SENDGRID_KEY, SENDGRID_PAYLOAD, SENDGRID_SIGNATURE, "1588788368", 1588788367, "Signature"),
        (SENDGRID_KEY, SENDGRID_PAYLOAD, "not base64!", SENDGRID_TIMESTAMP, 1588788367, "Signature"),
        (SENDGRID_KEY, SENDGRID_PAYLOAD, None, SENDGRID_TIMESTAMP, 1588788367, "Signature"),
        (SENDGRID_KEY, SENDGRID_PAYLOAD, SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, 1588799999, "Timestamp"),
        (SENDGRID_KEY, SENDGRID_PAYLOAD, SENDGRID_SIGNATURE, "yesterday", 1588788367, "Timestamp"),
        ("not a key", SENDGRID_PAYLOAD, SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, 1588788367, "Signature"),
    ],
)
def test_sendgrid_signature_refuses_forged_tampered_and_stale_requests(
    key, payload, signature, timestamp, now, field
):
    with pytest.raises(InvalidSignature) as refused:
        providers.verify_sendgrid(key, payload, signature, timestamp, now=now, tolerance_s=300)
    assert refused.value.field == f"X-Twilio-Email-Event-Webhook-{field}"


def mailgun(key: str, timestamp: str, token: str) -> dict[str, str]:
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": digest}


def test_mailgun_signature_is_hmac_sha256_over_timestamp_and_token():
    signed = mailgun("key-abc", "1700000000", "a" * 50)
    assert providers.verify_mailgun("key-abc", signed, now=1700000010, tolerance_s=300) == "a" * 50


@pytest.mark.parametrize(
    "signature, now",
    [
        (mailgun("key-other", "1700000000", "a" * 50), 1700000000),
        ({**mailgun("key-abc", "1700000000", "a" * 50), "token": "b" * 50}, 1700000000),
        (mailgun("key-abc", "1700000000", "a" * 50), 1700009999),
        ({"timestamp": "1700000000", "token": "a" * 50}, 1700000000),
        ({}, 1700000000),
    ],
)
def test_mailgun_signature_refuses_forged_stale_and_incomplete_ones(signature, now):
    with pytest.raises(InvalidSignature) as refused:
        providers.verify_mailgun("key-abc", signature, now=now, tolerance_s=300)
    assert refused.value.field == "signature"


def test_sendgrid_events_map_onto_the_funnel():
    batch = [
        {"event": "processed", "sg_event_id": "1", "smtp-id": "<m@x>"},
        {"event": "delivered", "sg_event_id": "2", "smtp-id": "<m@x>", "timestamp": 1700000000},
        {"event": "open", "sg_event_id": "3", "smtp-id": "<m@x>"},
        {"event": "click", "sg_event_id": "4", "smtp-id": "<m@x>"},
        {
            "event": "bounce",
            "type": "bounce",
            "sg_event_id": "5",
            "smtp-id": "<m@x>",
            "reason": "550 unknown",
        },
        {"event": "bounce", "type": "blocked", "sg_event_id": "6", "smtp-id": "<m@x>"},
        {"event": "dropped", "sg_event_id": "7", "smtp-id": "<m@x>"},
        {"event": "spamreport", "sg_event_id": "8", "smtp-id": "<m@x>"},
        {"event": "group_unsubscribe", "sg_event_id": "9", "smtp-id": "<m@x>"},
        {"event": "deferred", "sg_event_id": "10", "smtp-id": "<m@x>"},
        {"event": "delivered", "smtp-id": "<m@x>"},  # no event id: cannot be deduplicated, ignored
        "garbage",
    ]
    mapped = [(e.state, e.hard, e.event_id) for e in providers.sendgrid_events(batch)]
    assert mapped == [
        ("delivered", True, "2"),
        ("opened", True, "3"),
        ("clicked", True, "4"),
        ("bounced", True, "5"),
        ("bounced", False, "6"),
        ("failed", True, "7"),
        ("complained", True, "8"),
        ("unsubscribed", True, "9"),
    ]
    assert providers.sendgrid_events(batch)[0].message_id == "m@x"


@pytest.mark.parametrize(
    "event, expected",
    [
        ({"event": "delivered"}, ("delivered", True)),
        ({"event": "opened"}, ("opened", True)),
        ({"event": "clicked"}, ("clicked", True)),
        ({"event": "failed", "severity": "permanent", "reason": "bounce"}, ("bounced", True)),
        ({"event": "failed", "severity": "temporary"}, ("bounced", False)),
        ({"event": "failed", "severity": "permanent", "reason": "old"}, ("failed", True)),
        ({"event": "complained"}, ("complained", True)),
        ({"event": "unsubscribed"}, ("unsubscribed", True)),
        ({"event": "accepted"}, None),
    ],
)
def test_mailgun_events_map_onto_the_funnel(event, expected):
    data = {**event, "id": "e1", "message": {"headers": {"message-id": "m@x"}}}
    mapped = providers.mailgun_event({"event-data": data})
    assert (None if mapped is None else (mapped.state, mapped.hard)) == expected
    if mapped is not None:
        assert mapped.message_id == "m@x" and mapped.event_id == "e1"


@pytest.mark.parametrize(
    "status, code, expected",
    [
        ("delivered", None, "delivered"),
        ("read", None, "opened"),
        ("undelivered", "30005", "bounced"),
        ("failed", "21211", "bounced"),
        ("undelivered", "30008", "failed"),
        ("sent", None, None),
        ("queued", None, None),
    ],
)
def test_twilio_statuses_map_onto_the_funnel(status, code, expected):
    params = {"MessageSid": "SM1", "MessageStatus": status, **({"ErrorCode": code} if code else {})}
    mapped = providers.twilio_event(params)
    assert (mapped.state if mapped else None) == expected
    if mapped:
        assert mapped.provider_message_id == "SM1" and mapped.event_id == f"SM1:{status}"


def test_twilio_message_request_as_documented():
    assert (
        providers.twilio_messages_url("https://api.twilio.com/", "AC1")
        == "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
    )
    assert providers.twilio_message_form(
        channel="sms", to="+14155550100", sender="+15005550006", body="Hi", status_callback="https://cb"
    ) == {"To": "+14155550100", "From": "+15005550006", "Body": "Hi", "StatusCallback": "https://cb"}
    assert providers.twilio_message_form(
        channel="whatsapp", to="+14155550100", sender="+14155238886", body="Hi", status_callback=None
    ) == {"To": "whatsapp:+14155550100", "From": "whatsapp:+14155238886", "Body": "Hi"}
    assert providers.twilio_message_form(
        channel="sms", to="+14155550100", sender="MG123", body="Hi", status_callback=None
    ) == {"To": "+14155550100", "MessagingServiceSid": "MG123", "Body": "Hi"}


@pytest.mark.parametrize(
    "status, body, permanent",
    [
        (400, b'{"code": 21211, "message": "invalid To"}', True),
        (401, b'{"code": 20003}', True),
        (429, b'{"code": 20429}', False),
        (503, b"", False),
    ],
)
def test_twilio_errors_say_whether_a_retry_can_help(status, body, permanent):
    message, is_permanent = providers.twilio_error(status, body)
    assert is_permanent is permanent and str(status) in message
    assert providers.is_hard_phone_error("21211") and not providers.is_hard_phone_error("30008")


def test_a_twilio_signature_is_accepted_with_or_without_the_default_port():
    token, params = "auth-token-1234", [("MessageSid", "SM1"), ("MessageStatus", "delivered")]
    for signed, received in (
        (
            "https://go.example:443/v1/providers/twilio/ws/status",
            "https://go.example/v1/providers/twilio/ws/status",
        ),
        (
            "https://go.example/v1/providers/twilio/ws/status",
            "https://go.example:443/v1/providers/twilio/ws/status",
        ),
        ("http://go.example:80/cb?x=1", "http://go.example/cb?x=1"),
    ):
        providers.verify_twilio(token, received, params, providers.twilio_signature(token, signed, params))
    other_port = providers.twilio_signature(token, "https://go.example:8443/cb", params)
    with pytest.raises(providers.InvalidSignature):
        providers.verify_twilio(token, "https://go.example/cb", params, other_port)
    assert providers.twilio_url_variants("https://go.example:8443/cb") == ["https://go.example:8443/cb"]
