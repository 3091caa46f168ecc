"""Pure rules of the dispatch service: whom to reach, over which channel, what to say, when."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from email.utils import parseaddr
from itertools import pairwise
from zoneinfo import ZoneInfo

from services.dispatch import wording
from shared.events import Recipient
from shared.vocabulary import CHANNELS, Channel, SendChannel

MAX_RETRY_DELAY_S = 3600.0
PHONE_CHANNELS: tuple[SendChannel, ...] = ("sms", "whatsapp")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


# --- whom and over which channel --------------------------------------------------------------


def choose_recipient(requested: Recipient | None, previous: Recipient | None) -> Recipient | None:
    """Return the recipient the request names, else the one the contact was last invited at.

    A request without a recipient (a retention survey from followup) means "reach the contact
    the way dispatch reached them last"; a request that names one is authoritative.
    """
    return requested if requested is not None else previous


def address_for(channel: str, recipient: Recipient | None) -> str | None:
    """Return the address a channel sends to: the email, the phone number, or None (chat, link)."""
    if recipient is None:
        return None
    if channel == "email":
        return normalise_email(recipient.email)
    if channel in PHONE_CHANNELS:
        return normalise_phone(recipient.phone)
    return None


def normalise_email(email: str | None) -> str | None:
    cleaned = (email or "").strip()
    return cleaned.lower() if cleaned else None


def normalise_phone(phone: str | None) -> str | None:
    """Return the number in E.164 (``+4915112345678``), or None when it is not one."""
    if not phone:
        return None
    digits = re.sub(r"[\s().-]", "", phone)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    return digits if E164.match(digits) else None


def undeliverable_reason(
    channel: str,
    recipient: Recipient | None,
    *,
    configured: Iterable[str] = CHANNELS,
    invalid: Iterable[str] = (),
) -> str | None:
    """Return why an invitation over ``channel`` cannot be delivered, or None when it can."""
    if channel == "link":
        return None
    if channel not in configured:
        return f"channel {channel} is not configured for this workspace"
    if channel == "chat":
        return None
    what = "email address" if channel == "email" else "phone number"
    if recipient is None:
        return (
            f"no {what} known: the request named no recipient and the contact "
            "has no earlier invitation with an address"
        )
    address = address_for(channel, recipient)
    if address is None:
        # The reason is stored and published: it names the problem, never the address itself.
        given = recipient.email if channel == "email" else recipient.phone
        if given:
            return f"the recipient's {what} is not valid"
        return f"no {what} known: the request's recipient has no {what}"
    if address in set(invalid):
        return f"the {what} bounced before and is marked invalid"
    return None


@dataclass(frozen=True)
class ChannelChoice:
    channel: Channel
    fallbacks: tuple[Channel, ...]
    """Channels still to try after ``channel``, in order."""
    problem: str | None
    """Why no channel can reach the contact (then ``channel`` is the first one asked for)."""


def choose_channel(
    channel: Channel,
    fallbacks: Iterable[Channel],
    recipient: Recipient | None,
    *,
    configured: Iterable[str] = CHANNELS,
    invalid: Iterable[str] = (),
) -> ChannelChoice:
    """Return the first channel, of ``channel`` then ``fallbacks``, that can reach the recipient."""
    configured, invalid = tuple(configured), tuple(invalid)
    order = list(dict.fromkeys([channel, *fallbacks]))
    problems = []
    for i, candidate in enumerate(order):
        problem = undeliverable_reason(candidate, recipient, configured=configured, invalid=invalid)
        if problem is None:
            return ChannelChoice(candidate, tuple(order[i + 1 :]), None)
        problems.append(f"{candidate}: {problem}" if len(order) > 1 else problem)
    return ChannelChoice(channel, (), "; ".join(problems))


def is_opted_out(opt_outs: Iterable[str | None], channel: str) -> bool:
    """Return whether opt-outs (a channel, or None / "" for every channel) cover ``channel``."""
    return any(o in (None, "", channel) for o in opt_outs)


# --- what to say -----------------------------------------------------------------------------


def clean_name(name: str | None) -> str | None:
    """Return the name on one line with single spaces, or None when there is none."""
    cleaned = " ".join((name or "").split())
    return cleaned or None


def first_name(name: str | None) -> str | None:
    """Return the first word of the name, the way a person is greeted."""
    cleaned = clean_name(name)
    return cleaned.split(" ")[0] if cleaned else None


def question(
    kind: str, *, product: str | None = None, agent: str | None = None, language: str | None = "en"
) -> str:
    """Return the question a subject line asks: about the person who helped, the product, or us."""
    w = wording.words(language)
    if kind == "transactional":
        agent_first = first_name(agent)
        if agent_first:
            return w["question.agent"].format(agent=agent_first)
        product = clean_name(product)
        if product:
            return w["question.product"].format(product=product)
    return w.get(f"question.{kind}", w["question.transactional"])


def subject(
    kind: str,
    name: str | None,
    *,
    product: str | None = None,
    agent: str | None = None,
    language: str | None = "en",
) -> str:
    """Return the subject line: the question, addressed by first name when it is known."""
    asked = question(kind, product=product, agent=agent, language=language)
    first = first_name(name)
    return f"{first}, {asked}" if first else asked[0].upper() + asked[1:]


def greeting(name: str | None, language: str | None = "en") -> str:
    """Return "Hi Ada," (nl: "Hallo Ada,") or, without a name, "Hi,"."""
    w = wording.words(language)
    first = first_name(name)
    return w["greeting"].format(name=first) if first else w["greeting.anonymous"]


def intro(kind: str, language: str | None = "en", *, reminder: bool = False) -> str:
    """Return the opening sentence for the kind of survey; a reminder says so first."""
    w = wording.words(language)
    text = w.get(f"intro.{kind}", w["intro.transactional"])
    return f"{w['reminder.intro']} {text[0].lower()}{text[1:]}" if reminder else text


_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.!?;:])")
_LEADING_PUNCT = re.compile(r"^[ \t]*[,;:][ \t]*", re.MULTILINE)
_DOUBLE_SPACE = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_EMPTY_PARENS = re.compile(r"\(\s*\)")


def tidy(text: str) -> str:
    """Repair what empty merge fields leave behind: "Hi ," → "Hi,", ", how was" → "How was"."""
    # Each pattern runs only where its first characters occur (a message seldom has any of them).
    if "(" in text:
        text = _EMPTY_PARENS.sub("", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    if "  " in text or "\t" in text:
        text = _DOUBLE_SPACE.sub(" ", text)
    lines = []
    for line in text.split("\n"):
        first = line.lstrip(" \t")[:1]
        stripped = _LEADING_PUNCT.sub("", line) if first and first in ",;:" else line
        if stripped != line and stripped[:1].islower():
            stripped = stripped[0].upper() + stripped[1:]
        lines.append(stripped)
    return "\n".join(lines)


def tidy_line(text: str) -> str:
    """Return a one-line value (a subject, an SMS) tidied and with single spaces."""
    return " ".join(tidy(text).split())


def merge_fields(
    *,
    name: str | None,
    context: Mapping[str, str],
    brand_name: str | None,
    language: str | None = "en",
) -> dict[str, object]:
    """Return the merge fields every template sees; empty ones are "" so templates can test them."""
    cleaned = clean_name(name)
    ctx = {k: v.strip() for k, v in context.items() if isinstance(v, str) and v.strip()}
    first = first_name(cleaned)
    return {
        "name": cleaned or "",
        "first_name": first or "",
        "greeting": greeting(cleaned, language),
        "brand": brand_name or "",
        "product": ctx.get("product", ""),
        "agent": ctx.get("agent") or ctx.get("agent_name") or ctx.get("employee", ""),
        "agent_first_name": first_name(ctx.get("agent") or ctx.get("agent_name") or ctx.get("employee"))
        or "",
        "ticket_id": ctx.get("ticket_id", ""),
        "context": ctx,
    }


# --- when ------------------------------------------------------------------------------------


def retry_delay_s(attempts: int, *, base_s: float, cap_s: float = MAX_RETRY_DELAY_S) -> float:
    """Return the wait after the ``attempts``-th failed attempt: base, 2×base, 4×base …, capped."""
    return min(base_s * 2 ** max(attempts - 1, 0), cap_s)


def jittered_delay_s(
    attempts: int, *, base_s: float, jitter: float, cap_s: float = MAX_RETRY_DELAY_S
) -> float:
    """Return the exponential backoff scaled by ``0.5 + jitter`` (``jitter`` in [0, 1))."""
    return retry_delay_s(attempts, base_s=base_s, cap_s=cap_s) * (0.5 + jitter)


def gives_up(attempts: int, *, max_attempts: int, permanent: bool = False) -> bool:
    """Return whether a failed send is final: a permanent error, or no attempts left."""
    return permanent or attempts >= max_attempts


def is_permanent_smtp_code(code: int | None) -> bool:
    """5xx replies (unknown mailbox, rejected sender) will not change on a retry; 4xx and I/O errors may."""
    return code is not None and 500 <= code < 600


def due_at(send_at: datetime | None, now: datetime) -> datetime:
    """Return when the invitation is due: the requested time, or now."""
    return send_at or now


def days_left(expires_at: datetime | None, now: datetime, *, default_days: int) -> int:
    """Return the whole days a link still works, as a message states it: a 30-day link sent a moment
    after it was made works for 30 days (not 29); one resent 2 days later for 28. At least 1."""
    if expires_at is None:
        return default_days
    return max(round((expires_at - now).total_seconds() / 86400), 1)


def link_ttl_s(ttl_days: int, *, send_at: datetime, now: datetime) -> int:
    """Return the survey link's lifetime, counted from when it is sent rather than created."""
    return ttl_days * 86400 + max(int((send_at - now).total_seconds()), 0)


def parse_hhmm(value: str) -> time:
    """Return ``"21:30"`` as a time; raise ValueError for anything else."""
    match = re.fullmatch(r"([01][0-9]|2[0-3]):([0-5][0-9])", value or "")
    if not match:
        raise ValueError(f"{value!r} is not a time of day as HH:MM")
    return time(int(match[1]), int(match[2]))


def quiet_until(at: datetime, *, tz: ZoneInfo, start: time, end: time) -> datetime | None:
    """Return when quiet hours that cover ``at`` end (in UTC terms of ``at``), or None if ``at`` is not quiet.

    Quiet hours run from ``start`` to ``end`` in the contact's local time and may span midnight
    (21:00–08:00). ``start == end`` means no quiet hours.
    """
    if start == end:
        return None
    local = at.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    spans_midnight = start > end
    quiet = (t >= start or t < end) if spans_midnight else (start <= t < end)
    if not quiet:
        return None
    end_day = local.date()
    if spans_midnight and t >= start:
        end_day += timedelta(days=1)
    naive_end = datetime.combine(end_day, end)
    # Resolve the wall-clock end in the zone (a DST gap moves it forward, never backward).
    resolved = naive_end.replace(tzinfo=tz)
    return max(resolved.astimezone(at.tzinfo), at)


def reminder_due(sent_at: datetime, *, seq: int, interval_days: float) -> datetime:
    """Return when reminder ``seq`` (1, 2, …) is due: ``seq × interval`` after the invitation went out."""
    return sent_at + timedelta(days=interval_days * seq)


def next_reminder(
    *,
    sent_at: datetime,
    reminders_sent: int,
    max_reminders: int,
    interval_days: float,
    expires_at: datetime | None,
) -> tuple[int, datetime] | None:
    """Return (seq, due) of the next reminder, or None when none is left or the link expires first."""
    seq = reminders_sent + 1
    if max_reminders <= 0 or seq > max_reminders:
        return None
    due = reminder_due(sent_at, seq=seq, interval_days=interval_days)
    if expires_at is not None and due >= expires_at - timedelta(hours=1):
        return None
    return seq, due


def parse_rate_limits(spec: str) -> dict[str, int]:
    """Return ``"sms=60, whatsapp=30"`` as ``{"sms": 60, "whatsapp": 30}``; raise ValueError when malformed."""
    limits: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        channel, sep, value = part.partition("=")
        channel = channel.strip()
        if not sep or channel not in CHANNELS or not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"{part!r}: expected <channel>=<sends per minute>, channel one of {CHANNELS}")
        limits[channel] = int(value)
    return limits


def rate_allowance(limit: int | None, used: int) -> int | None:
    """Return how many more sends fit in the current minute, or None for no limit."""
    return None if limit is None else max(limit - used, 0)


# --- links and ids ---------------------------------------------------------------------------


def survey_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/s/{token}"


def public_link(base_url: str, path: str) -> str:
    return f"{base_url.rstrip('/')}{path}"


@functools.lru_cache(maxsize=256)
def mail_domain(mail_from: str) -> str:
    _, at, domain = parseaddr(mail_from)[1].rpartition("@")
    return domain if at and domain else "closeloop.localhost"


def message_id(invitation_id: str, mail_from: str, *, reminder: int = 0) -> str:
    """Return the RFC 5322 Message-ID of an invitation (or its reminder), stable across attempts."""
    suffix = f".r{reminder}" if reminder else ""
    return f"<invitation.{invitation_id}{suffix}@{mail_domain(mail_from)}>"


def bare_message_id(value: str | None) -> str:
    """Return a Message-ID without angle brackets or whitespace (providers report either form)."""
    return (value or "").strip().strip("<>").strip()


# --- the funnel ------------------------------------------------------------------------------

FUNNEL_STAGES = ("invited", "delivered", "opened", "clicked", "started", "completed")


def funnel_stage(
    *,
    sent: bool,
    delivered: bool,
    opened: bool,
    clicked: bool,
    started: bool,
    completed: bool,
) -> int:
    """Return how far an invitation got (0 = not invited … 6 = completed).

    The funnel is monotone: a later stage implies the earlier ones, because providers report
    opens unreliably (images off, privacy proxies) and a started survey was certainly clicked.
    """
    reached = (sent, delivered, opened, clicked, started, completed)
    return max((i + 1 for i, r in enumerate(reached) if r), default=0)


STAGE_COLUMNS = {
    "invited": "sent_at",
    "delivered": "delivered_at",
    "opened": "opened_at",
    "clicked": "clicked_at",
    "started": "started_at",
    "completed": "completed_at",
}
"""Where each step is recorded when it is observed: our send, a provider callback or the open pixel, the
short link, a response event."""


@dataclass(frozen=True)
class Step:
    reached: bool
    at: datetime | None
    """When it was observed (None: not reached, or reached only by inference)."""
    inferred: bool


def funnel_steps(observed: Mapping[str, datetime | None]) -> dict[str, Step]:
    """Return each funnel step of one invitation from the times its steps were observed: a step before
    the furthest observed one is reached too, inferred when nobody reported it (a click without a
    delivery report was delivered and opened)."""
    furthest = funnel_stage(**{key: observed.get(stage) is not None for key, stage in _STAGE_FLAGS})
    steps = {}
    for i, stage in enumerate(FUNNEL_STAGES):
        at = observed.get(stage)
        reached = i < furthest
        steps[stage] = Step(reached, at, reached and at is None)
    return steps


_STAGE_FLAGS = (
    ("sent", "invited"),
    ("delivered", "delivered"),
    ("opened", "opened"),
    ("clicked", "clicked"),
    ("started", "started"),
    ("completed", "completed"),
)


def funnel_rates(counts: Mapping[str, int]) -> dict[str, float | None]:
    """Return each stage as a share of the one before it (None when the previous stage is 0)."""
    rates: dict[str, float | None] = {}
    for previous, stage in pairwise(FUNNEL_STAGES):
        base = counts.get(previous, 0)
        rates[stage] = round(counts.get(stage, 0) / base, 4) if base else None
    return rates
