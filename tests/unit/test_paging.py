"""The opaque cursor of ``shared.paging``: what it carries back, and what it refuses."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime

import pytest

from shared.errors import InvalidInput
from shared.paging import decode_cursor, encode_cursor, page

MOMENT = datetime(2026, 11, 30, 10, 0, 0, 123456, tzinfo=UTC)


def test_a_cursor_carries_the_sort_key_back_typed():
    cursor = encode_cursor("dispatch.invitations", (MOMENT, "inv-9"))
    assert decode_cursor(cursor, "dispatch.invitations", (datetime, str)) == (MOMENT, "inv-9")
    assert decode_cursor(encode_cursor("s", (date(2026, 1, 2), 7, "q")), "s", (date, int, str)) == (
        date(2026, 1, 2),
        7,
        "q",
    )
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor, "base64url without padding"


@pytest.mark.parametrize("position", range(0, 40))
def test_a_cursor_with_any_byte_changed_is_refused_naming_cursor(position):
    raw = bytearray(base64.urlsafe_b64decode(encode_cursor("trigger.decisions", (12345,)) + "=="))
    raw[position % len(raw)] ^= 0x01
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(InvalidInput) as refused:
        decode_cursor(tampered, "trigger.decisions", (int,))
    assert refused.value.errors == [{"field": "cursor", "message": refused.value.detail}]


@pytest.mark.parametrize(
    ("cursor", "kinds"),
    [
        (encode_cursor("followup.cases", (MOMENT, "c")), (datetime, str)),  # another list's cursor
        (encode_cursor("trigger.decisions", ("12",)), (int,)),  # a key of the wrong type
        (encode_cursor("trigger.decisions", (True,)), (int,)),
        (encode_cursor("trigger.decisions", (1, 2)), (int,)),  # too many parts
        ("not base64 at all!", (int,)),
        ("", (int,)),
        ("YWJj", (int,)),
    ],
)
def test_cursors_this_list_did_not_hand_out_are_refused(cursor, kinds):
    with pytest.raises(InvalidInput):
        decode_cursor(cursor, "trigger.decisions", kinds)


def test_a_page_read_with_one_row_more_knows_whether_another_follows():
    rows, following = page([1, 2, 3, 4], limit=3, scope="s", key=lambda n: (n,))
    assert rows == [1, 2, 3] and following is not None
    assert decode_cursor(following, "s", (int,)) == (3,)
    assert page([1, 2, 3], limit=3, scope="s", key=lambda n: (n,)) == ([1, 2, 3], None)
    assert page([], limit=3, scope="s", key=lambda n: (n,)) == ([], None)
