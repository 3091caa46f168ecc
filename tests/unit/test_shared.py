"""Pure parts of ``shared``: signatures, tokens, API keys, the event envelope."""

from __future__ import annotations

import dataclasses
import json
import time
import zlib

import pytest
from pydantic import ValidationError

from shared import standard_webhooks, tracing
from shared.events import (
    EVENT_TYPES,
    TOPICS,
    CloudEvent,
    ContactErased,
    SurveyRequested,
    UnknownEventType,
    new_id,
    read_event,
)
from shared.security import (
    ExpiredToken,
    InvalidToken,
    issue_api_key,
    sign_token,
    verify_api_key,
    verify_token,
)
from shared.survey_links import SurveyLink, issue_link_token, read_link_token

# The example from the Standard Webhooks specification's reference test vectors.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_standard_webhooks_signature_matches_the_specification_vector():
    assert standard_webhooks.sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def _headers(signature: str = SPEC_SIGNATURE, ts: int = SPEC_TS) -> dict[str, str]:
    return {"webhook-id": SPEC_ID, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_verify_accepts_a_valid_signature_among_several():
    headers = _headers(f"v1,bm90IHRoaXMgb25l {SPEC_SIGNATURE}")
    assert standard_webhooks.verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TS + 10) == SPEC_ID


@pytest.mark.parametrize(
    "change, header",
    [
        (lambda h, b: (h, b + b" "), "webhook-signature"),  # one byte more in the body
        (
            lambda h, b: ({**h, "webhook-id": "msg_other"}, b),
            "webhook-signature",
        ),  # replayed under another id
        (lambda h, b: ({**h, "webhook-timestamp": str(SPEC_TS - 301)}, b), "webhook-timestamp"),  # stale
        (lambda h, b: ({**h, "webhook-timestamp": str(SPEC_TS + 301)}, b), "webhook-timestamp"),  # future
        (lambda h, b: ({**h, "webhook-timestamp": "yesterday"}, b), "webhook-timestamp"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "webhook-signature"),
    ],
)
def test_verify_rejects_tampering_and_names_the_header(change, header):
    headers, body = change(_headers(), SPEC_BODY)
    with pytest.raises(standard_webhooks.SignatureError) as caught:
        standard_webhooks.verify(SPEC_SECRET, headers, body, now=SPEC_TS)
    assert caught.value.header == header


def test_verify_rejects_a_wrong_secret():
    with pytest.raises(standard_webhooks.SignatureError):
        standard_webhooks.verify(standard_webhooks.new_secret(), _headers(), SPEC_BODY, now=SPEC_TS)


def test_api_keys_verify_only_with_their_secret_and_unchanged():
    key = issue_api_key("s3cret", "acme-eu")
    assert verify_api_key("s3cret", key) == "acme-eu"
    with pytest.raises(InvalidToken):
        verify_api_key("other", key)
    forged = key.replace("clk_acme-eu.", "clk_acme-us.")
    with pytest.raises(InvalidToken):
        verify_api_key("s3cret", forged)
    with pytest.raises(ValueError):
        issue_api_key("s3cret", "Not A Workspace")


def test_tokens_expire_and_are_bound_to_their_purpose():
    token = sign_token("k", "survey-link", {"a": 1}, ttl_s=60)
    assert verify_token("k", "survey-link", token)["a"] == 1
    with pytest.raises(InvalidToken):
        verify_token("k", "api-key", token)
    with pytest.raises(ExpiredToken):
        verify_token("k", "survey-link", token, now=time.time() + 61)
    body, sig = token.split(".")
    with pytest.raises(InvalidToken):
        verify_token("k", "survey-link", body[:-2] + "xx." + sig)


def test_survey_link_round_trip():
    link = SurveyLink(
        "acme", "inv-1", "req-1", "svy-1", "con-1", kind="retention", locale="nl", context={"agent": "Grace"}
    )
    assert read_link_token("k", issue_link_token("k", link)) == link


def test_a_survey_link_carries_the_invitation_s_trace_in_few_characters():
    from shared.security import b64url
    from shared.survey_links import _cipher

    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    plain = SurveyLink("ws-acme", "inv-1", "req-1", "svy-1", "c-42", context={"agent": "Grace"})
    traced = dataclasses.replace(plain, traceparent=traceparent)
    token = issue_link_token("k", traced)
    assert read_link_token("k", token) == traced
    assert "4bf92f3577b34da6" not in token
    # 25 bytes in base64 inside the compressed, encrypted body: the token grows by about 60 characters.
    assert len(token) - len(issue_link_token("k", plain)) <= 64
    # A link without it (issued before links carried a trace) opens, with no trace to continue.
    assert read_link_token("k", issue_link_token("k", plain)).traceparent is None
    # An invalid traceparent is left out rather than spoiling the link.
    assert (
        read_link_token("k", issue_link_token("k", dataclasses.replace(plain, traceparent="00-zz"))) == plain
    )

    def token_with(claims: dict[str, object]) -> str:
        body = zlib.compress(json.dumps(claims).encode())
        nonce = b"\x00" * 12
        return b64url(nonce + _cipher("k").encrypt(nonce, body, b"closeloop survey link v2"))

    for garbage in ("AAAA", 42, "%%", b64url(b"\x00" * 25)):
        claims = {"ws": "w", "inv": "i", "req": "r", "svy": "s", "con": "c", "exp": 2**40, "tp": garbage}
        assert read_link_token("k", token_with(claims)).traceparent is None


def test_a_link_is_as_short_as_with_the_default_window_and_links_issued_before_still_open():
    link = SurveyLink(
        "ws-acme", "inv-1", "req-1", "svy-1", "c-42", context={"agent": "Grace"}, respondent={"name": "Ada"}
    )
    from shared.security import b64url, unb64url
    from shared.survey_links import _cipher

    token = issue_link_token("k", link, ttl_s=3600)
    raw = unb64url(token)
    nonce, sealed = raw[:12], raw[12:]
    body = _cipher("k").decrypt(nonce, sealed, b"closeloop survey link v2")
    claims = json.loads(zlib.decompress(body))
    assert len(body) <= len(zlib.compress(json.dumps(claims, separators=(",", ":")).encode(), 9))
    # A link issued with zlib's default window (before this change) opens as it did.
    before = zlib.compress(json.dumps(claims, separators=(",", ":")).encode(), 9)
    old_token = b64url(nonce + _cipher("k").encrypt(nonce, before, b"closeloop survey link v2"))
    assert read_link_token("k", old_token) == read_link_token("k", token) == link


def test_envelope_round_trip_and_routing():
    event = SurveyRequested(workspace_id="acme", request_id="r1", contact_id="c1", survey_id="s1")
    envelope = CloudEvent.wrap(event, source="trigger")
    parsed = CloudEvent.model_validate_json(envelope.model_dump_json())
    assert parsed.type == "closeloop.SurveyRequested.v1" and parsed.source == "/closeloop/trigger"
    assert parsed.parse_data() == event
    assert event.partition_key() == "acme:c1"
    assert {model.topic for model in EVENT_TYPES.values()} <= set(TOPICS)
    with pytest.raises(UnknownEventType):
        CloudEvent(**{**envelope.model_dump(), "type": "closeloop.Nope.v1"}).parse_data()


def test_events_are_frozen():
    event = SurveyRequested(workspace_id="acme", request_id="r1", contact_id="c1", survey_id="s1")
    with pytest.raises(ValueError):
        event.survey_id = "other"  # type: ignore[misc]


def test_a_token_with_non_ascii_characters_is_invalid_not_an_error():
    token = sign_token("k", "survey-link", {"a": 1}, ttl_s=60)
    with pytest.raises(InvalidToken):
        verify_token("k", "survey-link", token[:-1] + "é")


def test_wrap_json_is_the_envelope_model_dumped():
    data = SurveyRequested.model_validate(
        {
            "workspace_id": "ws-1",
            "request_id": new_id(),
            "contact_id": new_id(),
            "survey_id": "nps",
            "kind": "transactional",
            "channel": "email",
            "recipient": {"email": "ada@example.com", "name": "Ada"},
            "reason": "rule:r1",
        }
    )
    fast = CloudEvent.wrap_json(data, source="trigger", event_id="e-1")
    model = CloudEvent.wrap(data, source="trigger", event_id="e-1").model_dump(mode="json")
    assert {k: v for k, v in fast.items() if k != "time"} == {k: v for k, v in model.items() if k != "time"}
    assert CloudEvent.model_validate(fast).parse_data() == data
    assert fast["time"].endswith("Z") and list(fast) == list(model)


def _request() -> SurveyRequested:
    return SurveyRequested.model_validate(
        {
            "workspace_id": "ws-1",
            "request_id": new_id(),
            "contact_id": new_id(),
            "survey_id": "nps",
            "recipient": {"email": "ada@example.com", "name": "Ada"},
            "send_at": "2026-12-01T10:00:00+01:00",
            "context": {"agent": "Émile"},
        }
    )


def test_wrap_text_is_the_envelope_serialised_once():
    data = _request()
    with tracing.span("test") as traceparent:
        event_id, text = CloudEvent.wrap_text(data, source="trigger", traceparent=tracing.current())
    stored = json.loads(text)
    model = CloudEvent.wrap(data, source="trigger", event_id=event_id).model_dump(mode="json")
    assert {k: v for k, v in stored.items() if k not in ("time", "traceparent")} == {
        k: v for k, v in model.items() if k not in ("time", "traceparent")
    }
    assert stored["id"] == event_id and stored["traceparent"] == traceparent and stored["time"].endswith("Z")
    assert CloudEvent.model_validate_json(text).parse_data() == data


def test_read_event_validates_envelope_and_data_in_one_pass_as_the_two_step_path_would():
    data = _request()
    raw = CloudEvent.wrap(data, source="trigger").model_dump_json().encode()
    one_pass, typed = read_event(raw, declared_type=data.type_name())
    two_steps = CloudEvent.model_validate_json(raw)
    assert typed == data == two_steps.parse_data() and type(typed) is SurveyRequested
    assert (one_pass.id, one_pass.type, one_pass.time, one_pass.workspaceid) == (
        two_steps.id,
        two_steps.type,
        two_steps.time,
        two_steps.workspaceid,
    )
    # Without a header, or with one the envelope contradicts, the envelope's own type decides.
    for declared in (None, ContactErased.type_name(), "closeloop.Nope.v1"):
        assert read_event(raw, declared_type=declared)[1] == data


def test_read_event_raises_for_what_cannot_be_handled_whatever_the_header_says():
    envelope = CloudEvent.wrap(_request(), source="trigger").model_dump(mode="json")
    bad_data = json.dumps({**envelope, "data": {**envelope["data"], "survey_id": None}})
    with pytest.raises(ValidationError):
        read_event(bad_data, declared_type=SurveyRequested.type_name())
    unknown = json.dumps({**envelope, "type": "closeloop.Nope.v1"})
    with pytest.raises(UnknownEventType):
        read_event(unknown, declared_type=SurveyRequested.type_name())
    with pytest.raises(ValidationError):
        read_event(b"not json", declared_type=SurveyRequested.type_name())


def test_new_ids_are_random_version_4_uuids_and_a_forked_child_does_not_repeat_them():
    import os
    import uuid

    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert {uuid.UUID(i).version for i in ids} == {4} and {uuid.UUID(i).variant for i in ids} == {
        uuid.RFC_4122
    }
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the next id it makes
        os.write(write, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child != new_id() and child not in ids


async def test_cache_misses_under_load_share_one_load():
    import asyncio

    from shared.cache import TTLCache

    cache: TTLCache[str] = TTLCache(5)
    loads = 0
    release = asyncio.Event()

    async def load() -> str:
        nonlocal loads
        loads += 1
        await release.wait()
        return "integration"

    waiting = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == ["integration"] * 20
    assert loads == 1 and cache.get("k") == "integration"

    async def missing() -> None:
        return None

    async def broken() -> str:
        raise RuntimeError("database down")

    assert await cache.get_or_load("gone", missing) is None and cache.get("gone") is None
    failing = [asyncio.create_task(cache.get_or_load("x", broken)) for _ in range(3)]
    results = await asyncio.gather(*failing, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await cache.get_or_load("x", load) == "integration"  # the next caller loads again


def _autogroup_nice(proc_file: str | None) -> str:
    """The nice value in a /proc/<pid>/autogroup text, or "-" where the process has no autogroup.

    The file is missing on kernels without autogroups and empty for a process in a CPU cgroup other
    than the root one (a container's): autogroups only divide the root group.
    """
    fields = (proc_file or "").split()
    return fields[-1] if fields else "-"


def _read_autogroup() -> str | None:
    try:
        return open("/proc/self/autogroup").read()
    except OSError:
        return None


def test_a_worker_leading_its_own_session_lowers_its_scheduling_group_too():
    import json
    import os
    import subprocess
    import sys

    report = (
        "import json, os; from shared.process import lower_priority; lower_priority(7)\n"
        "try:\n    group = open('/proc/self/autogroup').read()\nexcept OSError:\n    group = None\n"
        "print(json.dumps([os.getpriority(os.PRIO_PROCESS, 0), group]))"
    )

    def child(**options: bool) -> tuple[int, str]:
        run = subprocess.run(
            [sys.executable, "-c", report], capture_output=True, text=True, check=True, **options
        )
        nice, group = json.loads(run.stdout)
        return nice, _autogroup_nice(group)

    # os.nice is relative: a test run that is itself niced (nice make test) starts its children there.
    expected = min(os.getpriority(os.PRIO_PROCESS, 0) + 7, 19)
    # A child started the way closeloop dev and the benches start services: its own session, which
    # autogroup scheduling makes its own group. Its nice value alone would weigh only inside it.
    assert child(start_new_session=True) in ((expected, "7"), (expected, "-"))  # "-": no autogroup
    # In a session it shares (a shell's), only the process's own priority changes.
    assert child() == (expected, _autogroup_nice(_read_autogroup()))


def test_a_survey_link_reveals_nothing_about_the_customer_and_cannot_be_altered():
    from shared.security import sign_token, unb64url
    from shared.survey_links import PURPOSE

    link = SurveyLink(
        workspace_id="ws-acme",
        invitation_id="inv-1",
        request_id="req-1",
        survey_id="svy-1",
        contact_id="c-42",
        context={"address": "Keizersgracht 1, Amsterdam", "attr.plan": "gold"},
        respondent={"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+31612345678"},
    )
    token = issue_link_token("k", link)
    assert read_link_token("k", token) == link
    for secret_text in (
        "ada",
        "Ada",
        "Lovelace",
        "example.com",
        "Keizersgracht",
        "31612345678",
        "c-42",
        "ws-acme",
    ):
        assert secret_text not in token
        assert secret_text.encode() not in unb64url(token)
    # Two links for the same invitation differ (a fresh nonce each), so links cannot be correlated.
    assert issue_link_token("k", link) != token
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    for bad, secret in ((flipped, "k"), (token, "other-secret"), (token[:-4], "k"), ("", "k"), ("%%%", "k")):
        with pytest.raises(InvalidToken):
            read_link_token(secret, bad)
    with pytest.raises(ExpiredToken):
        read_link_token("k", issue_link_token("k", link, ttl_s=-1))
    # A link of the first format, still in a mailbox, keeps working until it expires.
    old = sign_token(
        "k", PURPOSE, {"ws": "ws-acme", "inv": "i", "req": "r", "svy": "s", "con": "c"}, ttl_s=60
    )
    assert read_link_token("k", old).invitation_id == "i"
