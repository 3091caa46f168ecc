"""docs/asyncapi.yaml is generated from shared/events.py and must stay in step with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from closeloop.stack import SERVICE_PORTS as SERVICES
from shared.events import ALL_TOPICS, EVENT_TYPES, TOPICS, dead_letter_topic
from tests.support.docs import ROOT, doc_generator

gen = doc_generator("gen_asyncapi")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())


def test_committed_document_is_what_the_generator_produces_now() -> None:
    committed = (ROOT / "docs" / "asyncapi.yaml").read_text()
    assert committed == gen.render(), "docs/asyncapi.yaml is out of date: run `python docs/gen_asyncapi.py`"


def test_check_mode_reports_an_outdated_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "asyncapi.yaml"
    stale.write_text(gen.render().replace("closeloop.SurveyRequested.v1", "closeloop.SurveyRequested.v0"))
    monkeypatch.setattr(gen, "OUTPUT", stale)
    assert gen.main(["--check"]) == 1
    stale.write_text(gen.render())
    assert gen.main(["--check"]) == 0


def test_every_topic_and_its_dead_letter_topic_is_a_channel(document: dict[str, Any]) -> None:
    addresses = {channel["address"] for channel in document["channels"].values()}
    # Besides the topics, the outgoing webhooks: posted to each subscription's URL.
    assert addresses == set(ALL_TOPICS) | {"{subscriptionUrl}"}
    for topic in TOPICS:
        assert dead_letter_topic(topic) in addresses


def test_every_event_type_is_a_message_on_its_topic(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    names = {m["name"] for m in messages.values()}
    assert set(EVENT_TYPES) <= names
    for type_name, model in EVENT_TYPES.items():
        message = messages[model.__name__]
        assert message["name"] == type_name
        assert message["x-topic"] == model.topic
        assert model.__name__ in document["channels"][model.topic]["messages"]
        payload = message["payload"]["allOf"][1]["properties"]
        assert payload["type"]["const"] == type_name
        assert payload["data"] == {"$ref": f"#/components/schemas/{model.__name__}"}


def test_payload_schemas_are_the_pydantic_models(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for model in EVENT_TYPES.values():
        expected = model.model_json_schema(ref_template="#/components/schemas/{model}")
        expected.pop("$defs", None)
        assert schemas[model.__name__] == expected, model.__name__
    assert set(schemas["CloudEvent"]["properties"]) >= {
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "subject",
        "datacontenttype",
        "data",
    }


def test_record_keys_follow_the_partitioning_rule(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    for model in EVENT_TYPES.values():
        key = messages[model.__name__]["x-record-key"]
        if model.topic == "followups":
            assert key == "<workspace_id>:<task_id>", model.__name__
        elif "contact_id" in model.model_fields:
            assert key == "<workspace_id>:<contact_id>", model.__name__
        elif model.topic == "workspaces":  # a workspace's configuration changes stay in order
            assert key == "<workspace_id>", model.__name__
        else:
            assert key.startswith("<workspace_id>:"), model.__name__


def test_every_event_has_a_publisher_and_services_are_real(document: dict[str, Any]) -> None:
    for model in EVENT_TYPES.values():
        message = document["components"]["messages"][model.__name__]
        assert bool(message["x-published-by"]) != (model in gen.RESERVED), (
            f"{model.__name__}: publisher vs RESERVED"
        )
        assert set(message["x-published-by"]) | set(message["x-consumed-by"]) <= set(SERVICES)
    services = {op["x-service"] for op in document["operations"].values()}
    assert services == set(SERVICES)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    for ref in set(_refs(document)):
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
            node = node[part]


def test_operations_use_their_channels_messages(document: dict[str, Any]) -> None:
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/"), name


def test_every_public_webhook_type_is_a_message_of_the_webhooks_channel(document: dict[str, Any]) -> None:
    from services.dispatch.catalogue import CATALOGUE

    channel = document["channels"]["webhooks"]
    messages = document["components"]["messages"]
    names = {messages[ref["$ref"].rsplit("/", 1)[1]]["name"] for ref in channel["messages"].values()}
    assert names == {p.name for p in CATALOGUE}
    for public in CATALOGUE:
        message = messages["Webhook_" + public.name.replace(".", "_")]
        data = message["payload"]["properties"]["data"]["$ref"].rsplit("/", 1)[1]
        assert set(document["components"]["schemas"][data]["properties"]) == set(public.payload.model_fields)
