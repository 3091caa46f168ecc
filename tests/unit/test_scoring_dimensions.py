"""A response's dimensions and segment filters."""

from __future__ import annotations

import pytest

from services.scoring.domain import InvalidFilter, dimensions_of, parse_filters


def test_dimensions_are_the_response_its_event_and_its_contact_at_answer_time():
    dims = dimensions_of(
        channel="email",
        kind="transactional",
        locale="nl-BE",
        hidden_fields={
            "agent": "Ada",
            "attr.country": "NL",
            "attr.Journey-Stage": "onboarding",
            "attr.plan": "free",
            "plan": "pro",  # the event's own field wins over the contact's attribute
            "ticket_id": "T-1",
            "attr.email": "ada@example.com",
            "name": "Ada",
            "channel": "sms",  # cannot override the response's own channel
            "attr.tier": "  gold ",
        },
    )
    assert dims == {
        "agent": "Ada",
        "channel": "email",
        "country": "NL",
        "journey_stage": "onboarding",
        "kind": "transactional",
        "language": "nl",
        "plan": "pro",
        "tier": "gold",
    }


def test_contact_details_under_another_name_are_no_dimensions():
    """A dimension outlives the contact's erasure: an address, email or phone must never become one."""
    dims = dimensions_of(
        channel="email",
        kind="transactional",
        locale=None,
        hidden_fields={
            "shipping_address": "Keizersgracht 1",
            "attr.billing-email": "ada@example.com",
            "mobile_phone": "+31611122233",
            "order_id": "O-1",
            "product": "pro",
        },
    )
    assert dims == {"channel": "email", "kind": "transactional", "product": "pro"}


def test_filters_read_as_a_segment():
    segment = parse_filters(["country=NL", "country=BE", "plan!=free", "tier!=bronze"])
    assert segment.matches({"country": "BE", "plan": "pro"})
    assert not segment.matches({"country": "DE", "plan": "pro"})
    assert not segment.matches({"country": "NL", "plan": "free"})
    assert segment.matches({"country": "NL"})  # no plan differs from free
    assert not segment.declared  # tier is an ad-hoc attribute
    assert segment.as_filters() == ("country=NL", "country=BE", "plan!=free", "tier!=bronze")
    assert parse_filters(["url=https://x.test/?a=b"]).conditions[0].include == ("https://x.test/?a=b",)


@pytest.mark.parametrize("bad", ["country", "=NL", "Country=NL", "country=", "1x=2"])
def test_bad_filters_name_their_position(bad):
    with pytest.raises(InvalidFilter) as raised:
        parse_filters(["plan=pro", bad])
    assert raised.value.field == "filter.1"
