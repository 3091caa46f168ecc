"""Generate the catalogue section of docs/webhooks.md from services/dispatch/catalogue.py.

    python docs/gen_webhooks.py            # rewrite the section between the markers
    python docs/gen_webhooks.py --check    # exit 1 when the committed file is out of date

Each public type gets its summary, the internal event it is made from, and one example body built by
its own payload model from sample values, so an example cannot show a field the model does not send.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "webhooks.md"
BEGIN, END = "<!-- catalogue:begin (docs/gen_webhooks.py) -->", "<!-- catalogue:end -->"

if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from services.dispatch.catalogue import CATALOGUE, PublicEvent  # noqa: E402

AT = "2026-11-30T14:05:09.512Z"
SCORES = [
    {"question_id": "q-nps", "metric": "nps", "score": 4, "classification": "detractor", "negative": True},
    {"question_id": "q-nls", "metric": "nls", "score": 9, "classification": "promoter", "negative": False},
]
SAMPLE: dict[str, Any] = {
    "invitation_id": "0b6f9c1e-4a57-4f0e-9d2b-5c1f3a7e8d21",
    "request_id": "5d2e7a90-1c3b-4e8f-a6d4-9b0c2f1e3a57",
    "response_id": "9a41c3d7-2b6e-4f18-8c05-e7d2b9f4a613",
    "contact_id": "crm-4711",
    "survey_id": "svy-support",
    "survey_version": 3,
    "kind": "transactional",
    "channel": "email",
    "locale": "nl",
    "occurred_at": AT,
    "hidden_fields": {"ticket_id": "T-1042", "agent": "Grace"},
    "answers": [
        {"question_id": "q-nps", "type": "nps", "value": 4},
        {"question_id": "q-nls", "type": "nls", "value": 9},
        {"question_id": "q-why", "type": "open", "value": "Nobody called me back."},
    ],
    "consent_to_contact": True,
    "started_at": AT,
    "completed_at": AT,
    "scores": SCORES,
    "negatives": SCORES[:1],
    "loyalty": "trapped",
    "negative": True,
    "comment": "Nobody called me back.",
    "scored_at": AT,
    "detected_at": AT,
    "task_id": "3c8e1f2a-7d94-4b60-a1e5-0f6b2d9c4e87",
    "actor": "system",
    "metric": "nps",
    "score": 4,
    "opened_because": "negative",
    "priority": "high",
    "team_id": "team-care",
    "assignee": "agent-ada",
    "first_contact_due_at": "2026-12-01T14:05:09Z",
    "resolution_due_at": "2026-12-03T14:05:09Z",
    "previous_assignee": None,
    "reason": "routing rule: detractors of support",
    "from_status": "open",
    "to_status": "in_progress",
    "root_cause_category": "process",
    "root_cause": "callback not scheduled",
    "action_taken": "called back, refunded shipping",
    "retention": "requested",
    "won_back": True,
    "retention_score": 5,
    "target_id": "7e2d9b41-0a6c-4f35-b8e1-c5d3f7a92e06",
    "name": "Support NPS at least 30",
    "filters": ["team=care"],
    "direction": "at_least",
    "threshold": 30.0,
    "window_days": 28,
    "previous_status": "met",
    "status": "at_risk",
    "value": 24.5,
    "n": 212,
    "low": 12.1,
    "high": 36.9,
    "changed_at": AT,
    "source": "unsubscribe_link",
    "opted_out_at": AT,
    "erased_at": AT,
}
PER_TYPE: dict[str, dict[str, Any]] = {
    "invitation.sent": {"reminder": 0},
    "invitation.bounced": {"hard": True},
    "invitation.failed": {"error": "no address for any channel the workspace configured"},
    "case.opened": {"assignee": None},
    "case.assigned": {"team_id": "team-care"},
    "contact.opted_out": {"channel": None},
}


def example(public: PublicEvent) -> dict[str, Any]:
    fields = dict(SAMPLE)
    fields.update(PER_TYPE.get(public.name, {}))
    data = public.payload.model_validate(fields).model_dump(mode="json", exclude_none=False)
    return {
        "id": "1f0d5c2b-8e4a-4b7d-9c61-2a3e5f7b9d04",
        "type": public.name,
        "version": public.version,
        "timestamp": AT,
        "workspace_id": "acme",
        "data": data,
    }


def section() -> str:
    lines = [BEGIN, "", "| type | version | made from | what happened |", "|---|---|---|---|"]
    for public in CATALOGUE:
        lines.append(
            f"| `{public.name}` | {public.version} | `{public.source.__name__}` | {public.summary} |"
        )
    for public in CATALOGUE:
        lines += [
            "",
            f"### `{public.name}`",
            "",
            public.summary,
            "",
            "```json",
            json.dumps(example(public), indent=2),
            "```",
        ]
    lines += ["", END]
    return "\n".join(lines)


def render(current: str) -> str:
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + section() + tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    current = OUTPUT.read_text()
    wanted = render(current)
    if args.check:
        if wanted != current:
            print("docs/webhooks.md is out of date: run python docs/gen_webhooks.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
