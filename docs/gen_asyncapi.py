"""Generate docs/asyncapi.yaml (AsyncAPI 3.0) from the event catalogue in shared/events.py.

    python docs/gen_asyncapi.py            # rewrite docs/asyncapi.yaml
    python docs/gen_asyncapi.py --check    # exit 1 when the committed file is out of date

Payload schemas come from the pydantic models themselves and record keys from their
``partition_key()``, so the document cannot drift from the code. Which service publishes and
which consumes each event type is declared in ``PUBLISHERS`` and ``CONSUMERS`` below.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "asyncapi.yaml"

if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402  (PyYAML comes with uvicorn[standard])
from pydantic import BaseModel  # noqa: E402
from pydantic.json_schema import JsonSchemaMode, models_json_schema  # noqa: E402

from services.dispatch.catalogue import CATALOGUE, PublicEvent  # noqa: E402
from shared import events  # noqa: E402
from shared.events import EVENT_TYPES, TOPICS, CloudEvent, EventData, dead_letter_topic  # noqa: E402
from shared.vocabulary import STACK_SERVICES  # noqa: E402

# Who writes each event type (through its transactional outbox) ...
# Events in the catalogue that no service publishes yet; every other event must have a publisher.
RESERVED: frozenset[type[EventData]] = frozenset()

PUBLISHERS: dict[type[EventData], tuple[str, ...]] = {
    events.CustomerEventReceived: ("trigger",),
    events.ContactOptedOut: ("trigger", "dispatch"),  # the contacts API; unsubscribe links, spam complaints
    events.ContactErased: ("trigger",),
    events.SurveyRequested: ("trigger", "followup"),
    events.InvitationCreated: ("dispatch",),
    events.InvitationSent: ("dispatch",),
    events.InvitationDelivered: ("dispatch",),
    events.InvitationOpened: ("dispatch",),
    events.InvitationClicked: ("dispatch",),
    events.InvitationBounced: ("dispatch",),
    events.InvitationComplained: ("dispatch",),
    events.InvitationFailed: ("dispatch",),
    # followup: cases tell staff; scoring: a low answer, a target's change
    events.NotificationRequested: ("followup", "scoring"),
    events.ResponseStarted: ("responses",),
    events.ResponseCompleted: ("responses",),
    events.SurveyPublished: ("responses",),  # created, or a new version
    events.SurveyClosed: ("responses",),
    events.SurveyReopened: ("responses",),
    events.BrandingChanged: ("responses",),  # the one owner of a workspace's look
    events.QuietHoursChanged: ("trigger",),  # trigger decides when to send; its settings keep them
    events.AnonymisationDue: ("trigger",),  # the retention policy's daily run
    # The console revokes keys; every service that checks keys notes their use (KeyUsage, once a minute).
    events.KeyRevoked: ("console",),
    events.KeyUsed: ("console", "trigger", "dispatch", "responses", "scoring", "followup"),
    events.ResponseScored: ("scoring",),
    events.NegativeFeedbackDetected: ("scoring",),
    events.TargetStatusChanged: ("scoring",),
    events.FollowUpOpened: ("followup",),
    events.FollowUpAssigned: ("followup",),
    events.FollowUpResolved: ("followup",),
    events.FollowUpOutcomeRecorded: ("followup",),
    events.FollowUpStatusChanged: ("followup",),
    events.FollowUpPriorityChanged: ("followup",),
    events.FollowUpNoteAdded: ("followup",),
    events.FollowUpReopened: ("followup",),
    events.FollowUpEscalated: ("followup",),
    events.FollowUpClimbed: ("followup",),
}

# ... and who acts on it (through its consumer group ``closeloop-<service>`` and its inbox, or the group
# ``OWN_GROUP`` names).
CONSUMERS: dict[type[EventData], tuple[str, ...]] = {
    events.CustomerEventReceived: (),
    events.ContactOptedOut: ("trigger", "dispatch"),
    events.ContactErased: ("dispatch", "responses", "scoring", "followup"),
    events.SurveyRequested: ("dispatch",),
    events.InvitationCreated: ("scoring",),
    events.InvitationSent: ("scoring",),
    events.InvitationDelivered: ("scoring",),
    events.InvitationOpened: ("scoring",),
    events.InvitationClicked: ("scoring",),
    events.InvitationBounced: ("scoring",),
    events.InvitationComplained: ("scoring",),
    # followup: a retention survey that cannot be sent closes its case
    events.InvitationFailed: ("scoring", "followup"),
    events.NotificationRequested: ("dispatch",),
    events.ResponseStarted: ("dispatch",),
    events.ResponseCompleted: ("scoring", "dispatch"),
    # trigger: which surveys exist and are open; dispatch: the first question an email embeds;
    # scoring: which surveys exist.
    events.SurveyPublished: ("trigger", "dispatch", "scoring", "followup"),
    events.SurveyClosed: ("trigger", "scoring", "followup"),
    events.SurveyReopened: ("trigger", "scoring", "followup"),
    events.BrandingChanged: ("dispatch",),  # the look of every email
    events.QuietHoursChanged: ("dispatch",),  # held sends and reminders
    events.AnonymisationDue: ("dispatch", "responses", "scoring", "followup"),
    # Every service that authenticates keys keeps the revoked ids in its own table (shared/revocation.py).
    events.KeyRevoked: (
        "console",
        "trigger",
        "dispatch",
        "responses",
        "scoring",
        "followup",
    ),  # see OWN_GROUP
    events.KeyUsed: ("console",),
    events.ResponseScored: ("followup",),
    events.NegativeFeedbackDetected: ("followup",),
    events.TargetStatusChanged: (),
    events.FollowUpOpened: ("scoring",),  # case outcomes in the responses export
    events.FollowUpAssigned: (),
    events.FollowUpResolved: ("scoring",),
    events.FollowUpOutcomeRecorded: ("scoring",),
    events.FollowUpStatusChanged: ("scoring",),
    events.FollowUpPriorityChanged: (),
    events.FollowUpNoteAdded: (),
    events.FollowUpReopened: ("scoring",),
    events.FollowUpEscalated: (),
    events.FollowUpClimbed: (),
}

# Events some services consume in a group of their own, ``closeloop-<service>-<suffix>``: a backlog of the
# service's other events never holds them up (a revoked key is refused within seconds).
OWN_GROUP: dict[type[EventData], tuple[str, tuple[str, ...]]] = {
    events.KeyRevoked: ("revocations", ("trigger", "dispatch", "responses", "scoring", "followup")),
}

# Further groups a service consumes in besides its main one, ``closeloop-<service>-<suffix>``, with the
# events each reads there (they may be read in the main group too): dispatch's ``outbound`` group turns
# every public event into webhook deliveries (services/dispatch/catalogue.py).
ALSO_GROUPS: dict[tuple[str, str], frozenset[type[EventData]]] = {
    ("dispatch", "outbound"): frozenset(p.source for p in CATALOGUE),
}

TOPIC_DESCRIPTIONS = {
    events.CUSTOMER_EVENTS: "What happened to a customer in a CRM or helpdesk (deduplicated), and erasure requests.",
    events.SURVEY_REQUESTS: "Decisions to ask a contact for feedback: transactional, relationship or retention surveys.",
    events.INVITATIONS: "The invitation funnel: created, sent, delivered, opened, clicked, bounced, failed.",
    events.RESPONSES: "Survey responses as customers start and complete them.",
    events.SCORES: "Scored responses (NPS, NLS, CSAT, CES, ratings), the negative-feedback (detractor) events "
    "and experience targets' status changes.",
    events.FOLLOWUPS: "The life of a follow-up case, every change with its actor, up to whether the customer was won back.",
    events.NOTIFICATIONS: "Messages for staff: a new task, a breached SLA.",
    events.SURVEYS: "Survey definitions as they are published, closed and reopened.",
    events.WORKSPACES: "Workspace configuration one service owns and others apply: branding, quiet hours, "
    "API keys revoked (every service refuses them within seconds) and used.",
}

DESCRIPTION = """\
The events closeloop's services (the five feedback services and the console) exchange over Kafka.

**Envelope.** Every record value is a CloudEvents 1.0 event in structured JSON mode
(`application/cloudevents+json`): `specversion`, `id`, `source` (`/closeloop/<service>`), `type`
(`closeloop.<Name>.v<version>`), `time`, `subject` (the contact id, when there is one),
`datacontenttype`, the extension attribute `workspaceid`, and `data`, the event payload. The headers
`ce_specversion`, `ce_id`, `ce_type`, `ce_source` and `content-type` repeat the attributes so that
routers can filter without parsing the value.

**Record key.** `<workspace_id>:<contact_id>` for everything about a customer, so that one
customer's events stay in order on one partition; `<workspace_id>:<task_id>` for follow-up task
events; `<workspace_id>:<notification_id>` for staff notifications. Each message states its key.

**Versions.** Additive changes keep an event's version; a breaking change publishes a new type
`closeloop.<Name>.v2` and consumers upcast the old one. Consumers ignore fields they do not know.

**Delivery.** Producers write through a transactional outbox (at least once, in commit order per
key); consumers are idempotent through an inbox keyed by (consumer, event `id`), so a redelivered
event has no second effect. Each service consumes in the group `closeloop-<service>`.

**Dead letters.** A record a consumer cannot process after its retries is copied unchanged to
`<topic>.dlq` with the headers `dlq_error`, `dlq_consumer`, `dlq_original_topic`,
`dlq_original_partition`, `dlq_original_offset` and `dlq_attempts`; the partition moves on and the
record can be replayed.

Generated by `docs/gen_asyncapi.py` from `shared/events.py`; do not edit by hand."""


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(parts)}


def _camel(topic: str) -> str:
    return "".join(word.capitalize() for word in topic.replace(".", "-").split("-"))


def _key_rule(model: type[EventData]) -> str:
    """Return the record key of ``model`` with placeholders, computed by its own ``partition_key``."""
    placeholders = {name: f"<{name}>" for name in model.model_fields}
    return model.model_construct(**placeholders).partition_key()


def _components(models: list[type[BaseModel]], mode: JsonSchemaMode) -> dict[str, Any]:
    """Return the JSON Schemas of ``models`` in ``mode``, with shared definitions hoisted, by name."""
    _, top = models_json_schema([(m, mode) for m in models], ref_template="#/components/schemas/{model}")
    return dict(sorted(top["$defs"].items()))


def _schemas() -> dict[str, Any]:
    """Return JSON Schemas of the envelope and every payload, with shared definitions hoisted."""
    return _components([CloudEvent, *EVENT_TYPES.values()], "validation")


def _ce_headers() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "ce_specversion": {"type": "string", "const": "1.0"},
            "ce_id": {"type": "string", "description": "The CloudEvent `id`; consumers deduplicate on it."},
            "ce_type": {"type": "string", "description": "The CloudEvent `type`."},
            "ce_source": {
                "type": "string",
                "description": "The CloudEvent `source`: `/closeloop/<service>`.",
            },
            "content-type": {"type": "string", "const": "application/cloudevents+json"},
        },
        "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "content-type"],
    }


def _dead_letter_headers() -> dict[str, Any]:
    dlq = {
        "dlq_error": "The last error: exception class and message.",
        "dlq_consumer": "The service whose consumer gave up.",
        "dlq_original_topic": "Where the record came from.",
        "dlq_original_partition": "Its partition there.",
        "dlq_original_offset": "Its offset there.",
        "dlq_attempts": "How often it was tried (0: it could never be parsed).",
    }
    headers = _ce_headers()
    return {
        "type": "object",
        "description": "The original record's headers (usually the `ce_` headers) plus the `dlq_` headers.",
        "properties": {
            **headers["properties"],
            **{name: {"type": "string", "description": text} for name, text in dlq.items()},
        },
        "required": list(dlq),
    }


def _message(model: type[EventData]) -> dict[str, Any]:
    name = model.__name__
    sources = [f"/closeloop/{service}" for service in PUBLISHERS[model]]
    key = _key_rule(model)
    summary = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else None
    message: dict[str, Any] = {
        "name": model.type_name(),
        "title": name,
        "contentType": "application/cloudevents+json",
        "headers": _ref("components", "schemas", "CloudEventHeaders"),
        "payload": {
            "allOf": [
                _ref("components", "schemas", "CloudEvent"),
                {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "const": model.type_name()},
                        "source": {"type": "string", "enum": sources},
                        "data": _ref("components", "schemas", name),
                    },
                },
            ]
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": f"`{key}`"},
                "bindingVersion": "0.5.0",
            }
        },
        "x-topic": model.topic,
        "x-record-key": key,
        "x-published-by": list(PUBLISHERS[model]),
        "x-consumed-by": list(CONSUMERS[model]),
    }
    if summary:
        message["summary"] = summary
    return message


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "DeadLetteredRecord",
        "title": "Dead-lettered record",
        "summary": "A record a consumer gave up on, copied unchanged with the error in its headers.",
        "headers": _ref("components", "schemas", "DeadLetterHeaders"),
        "payload": {
            "description": "The original record value, byte for byte: usually a CloudEvent of the original "
            "topic, possibly unparseable."
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original record key."},
                "bindingVersion": "0.5.0",
            }
        },
    }


def _kafka_operation_binding(group: str) -> dict[str, Any]:
    return {
        "kafka": {
            "groupId": {"type": "string", "enum": [group]},
            "clientId": {"type": "string", "enum": [group]},
            "bindingVersion": "0.5.0",
        }
    }


def _webhook_name(public: PublicEvent) -> str:
    return "Webhook_" + public.name.replace(".", "_")


def _public_schemas() -> dict[str, Any]:
    """Return JSON Schemas of the public webhook payloads (their own models, apart from the events)."""
    return _components(sorted({p.payload for p in CATALOGUE}, key=lambda m: m.__name__), "serialization")


def _webhook_headers() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "webhook-id": {
                "type": "string",
                "description": "The event's id: the same on retries; deduplicate on it.",
            },
            "webhook-timestamp": {"type": "string", "description": "Unix seconds of the attempt."},
            "webhook-signature": {
                "type": "string",
                "description": "`v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>` keyed with the `whsec_` secret.",
            },
            "content-type": {"type": "string", "const": "application/json"},
        },
        "required": ["webhook-id", "webhook-timestamp", "webhook-signature", "content-type"],
    }


def _webhook_message(public: PublicEvent) -> dict[str, Any]:
    return {
        "name": public.name,
        "title": f"{public.name} (v{public.version})",
        "summary": public.summary,
        "contentType": "application/json",
        "headers": _ref("components", "schemas", "StandardWebhooksHeaders"),
        "payload": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "description": "The event id, also `webhook-id`."},
                "type": {"type": "string", "const": public.name},
                "version": {"type": "integer", "const": public.version},
                "timestamp": {"type": "string", "format": "date-time"},
                "workspace_id": {"type": "string"},
                "data": _ref("components", "schemas", public.payload.__name__),
            },
            "required": ["id", "type", "version", "timestamp", "workspace_id", "data"],
        },
        "x-made-from": public.source.type_name(),
    }


def build_document() -> dict[str, Any]:
    """Return the AsyncAPI document as plain data."""
    if set(PUBLISHERS) != set(EVENT_TYPES.values()) or set(CONSUMERS) != set(EVENT_TYPES.values()):
        raise SystemExit(
            "PUBLISHERS and CONSUMERS in docs/gen_asyncapi.py must list every event in EVENT_TYPES"
        )
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    by_topic = {topic: [m for m in EVENT_TYPES.values() if m.topic == topic] for topic in TOPICS}

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TOPICS:
        models = by_topic[topic]
        channels[topic] = {
            "address": topic,
            "title": topic,
            "description": TOPIC_DESCRIPTIONS[topic],
            "messages": {m.__name__: _ref("components", "messages", m.__name__) for m in models},
            "bindings": {"kafka": {"topic": topic, "bindingVersion": "0.5.0"}},
        }
        dlq = dead_letter_topic(topic)
        channels[dlq] = {
            "address": dlq,
            "title": dlq,
            "description": f"Dead letters of `{topic}`: records a consumer could not process.",
            "messages": {"DeadLetteredRecord": _ref("components", "messages", "DeadLetteredRecord")},
            "bindings": {"kafka": {"topic": dlq, "bindingVersion": "0.5.0"}},
        }
        for service in STACK_SERVICES:
            sent = [m for m in models if service in PUBLISHERS[m]]
            received = [m for m in models if service in CONSUMERS[m]]
            apart = [m for m in received if service in OWN_GROUP.get(m, ("", ()))[1]]
            if sent:
                operations[f"{service}Sends{_camel(topic)}"] = {
                    "action": "send",
                    "channel": _ref("channels", topic),
                    "summary": f"{service} publishes to {topic} through its outbox.",
                    "messages": [_ref("channels", topic, "messages", m.__name__) for m in sent],
                    "x-service": service,
                }
            for suffix, group_models in [
                ("", [m for m in received if m not in apart]),
                *((OWN_GROUP[m][0], [m]) for m in apart),
            ]:
                if not group_models:
                    continue
                group = f"closeloop-{service}" + (f"-{suffix}" if suffix else "")
                operations[f"{service}Receives{_camel(topic)}{_camel(suffix) if suffix else ''}"] = {
                    "action": "receive",
                    "channel": _ref("channels", topic),
                    "summary": f"{service} consumes {topic} in the group {group}.",
                    "messages": [_ref("channels", topic, "messages", m.__name__) for m in group_models],
                    "bindings": _kafka_operation_binding(group),
                    "x-service": service,
                }
            for (owner, suffix), also in ALSO_GROUPS.items():
                extra = [m for m in models if owner == service and m in also]
                if extra:
                    group = f"closeloop-{service}-{suffix}"
                    operations[f"{service}Receives{_camel(topic)}{_camel(suffix)}"] = {
                        "action": "receive",
                        "channel": _ref("channels", topic),
                        "summary": f"{service} consumes {topic} in the group {group}.",
                        "messages": [_ref("channels", topic, "messages", m.__name__) for m in extra],
                        "bindings": _kafka_operation_binding(group),
                        "x-service": service,
                    }
                    received = received or extra
            if received:
                operations[f"{service}DeadLetters{_camel(topic)}"] = {
                    "action": "send",
                    "channel": _ref("channels", dlq),
                    "summary": f"{service} parks records of {topic} it cannot process.",
                    "messages": [_ref("channels", dlq, "messages", "DeadLetteredRecord")],
                    "x-service": service,
                }

    channels["webhooks"] = {
        "address": "{subscriptionUrl}",
        "title": "Outgoing webhooks",
        "description": "The public events dispatch posts to each webhook subscription's URL, signed with "
        "Standard Webhooks (docs/webhooks.md). `webhook-id` is the internal event's id; the body is "
        "`{id, type, version, timestamp, workspace_id, data}` with `data` the public payload of the type.",
        "parameters": {"subscriptionUrl": {"description": "The subscription's `url` (POST)."}},
        "servers": [_ref("servers", "integrators")],
        "messages": {_webhook_name(p): _ref("components", "messages", _webhook_name(p)) for p in CATALOGUE},
    }
    operations["dispatchSendsWebhooks"] = {
        "action": "send",
        "channel": _ref("channels", "webhooks"),
        "summary": "dispatch posts each public event to every subscription that wants it (type, survey, metric).",
        "messages": [_ref("channels", "webhooks", "messages", _webhook_name(p)) for p in CATALOGUE],
        "x-service": "dispatch",
    }
    schemas = {
        "CloudEventHeaders": _ce_headers(),
        "DeadLetterHeaders": _dead_letter_headers(),
        "StandardWebhooksHeaders": _webhook_headers(),
        **_schemas(),
        **_public_schemas(),
    }
    messages = {m.__name__: _message(m) for m in EVENT_TYPES.values()}
    messages["DeadLetteredRecord"] = _dead_letter_message()
    messages.update({_webhook_name(p): _webhook_message(p) for p in CATALOGUE})
    return {
        "asyncapi": "3.0.0",
        "id": "urn:closeloop:events",
        "info": {
            "title": "closeloop events",
            "version": version,
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {
            "production": {
                "host": "closeloop-kafka-bootstrap.kafka.svc:9092",
                "protocol": "kafka",
                "description": "The Kafka cluster in deploy/ (KAFKA_BOOTSTRAP_SERVERS).",
            },
            "development": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The local broker of `make run`.",
            },
            "integrators": {
                "host": "{receiver}",
                "protocol": "https",
                "description": "An integrator's webhook endpoint (a subscription's URL): outgoing webhooks only.",
                "variables": {"receiver": {"description": "The host of the subscription's URL."}},
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


class _Dumper(yaml.SafeDumper):
    """Block style everywhere; multi-line strings as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    """Return the document as YAML text, exactly as committed."""
    body = yaml.dump(build_document(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
    return "# Generated by docs/gen_asyncapi.py from shared/events.py - do not edit.\n" + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/asyncapi.yaml is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print("docs/asyncapi.yaml is out of date: run python docs/gen_asyncapi.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
