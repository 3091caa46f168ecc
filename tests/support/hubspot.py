"""A local HTTP server that answers like HubSpot's CRM v3 API, as HubSpot documents it.

- every request needs ``Authorization: Bearer <private app token>`` (else 401, ``INVALID_AUTHENTICATION``)
  and, with a body, ``Content-Type: application/json``;
- ``POST /crm/v3/properties/contacts`` creates a contact property: ``name``, ``label``, ``type``,
  ``fieldType`` and ``groupName`` are required, ``type``/``fieldType`` must be a valid pair, enumerations
  need ``options`` with ``label`` and ``value``, the group must exist; 201, or 409 when the name exists;
- ``PATCH /crm/v3/objects/contacts/{id}`` (``?idProperty=email`` to name the contact by email) takes
  ``{"properties": {...}}`` of existing properties only (else 400, ``VALIDATION_ERROR``), 404 for an
  unknown contact, 200 with the object.

- ``GET /crm/v3/objects/contacts/{id}`` (or ``/{email}?idProperty=email``) returns the contact with its id;
- ``POST /crm/v3/objects/notes`` creates a note: ``properties.hs_timestamp`` is required and each
  association goes to an existing contact with ``HUBSPOT_DEFINED`` type 202 (note to contact).

``script`` answers the next requests with the statuses it lists instead (``429`` with
``Retry-After: retry_after``); every request is kept in ``requests`` (method, path, query, headers,
body, time) and every rule a request broke in ``violations``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from closeloop.infra import free_port
from tests.support.served import serve

PAIRS = {
    "string": {"text", "textarea", "phonenumber", "html", "file"},
    "number": {"number"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "bool": {"booleancheckbox"},
}
GROUPS = {"contactinformation"}
DEFAULT_PROPERTIES = {"email", "firstname", "lastname"}


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class FakeHubSpot:
    token: str
    port: int = 0
    contacts: dict[str, dict[str, str]] = field(default_factory=dict)
    """Contacts by email, each with its property values (the record id is ``c<n>``)."""
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    script: list[int] = field(default_factory=list)
    retry_after: int = 1
    requests: list[Seen] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _error(self, status: int, category: str, message: str, *, violation: bool = True) -> JSONResponse:
        if violation:
            self.violations.append(message)
        return JSONResponse({"status": "error", "message": message, "category": category}, status_code=status)

    async def _common(self, request: Request) -> tuple[Any, Response | None]:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        self.requests.append(
            Seen(
                request.method,
                request.url.path,
                dict(request.query_params),
                dict(request.headers),
                body,
                time.monotonic(),
            )
        )
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return body, self._error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
        if raw and not request.headers.get("content-type", "").startswith("application/json"):
            return body, self._error(415, "VALIDATION_ERROR", "Content-Type must be application/json")
        if self.script:
            status = self.script.pop(0)
            if status == 429:
                return body, JSONResponse(
                    {
                        "status": "error",
                        "message": "You have reached your ten_secondly_rolling limit.",
                        "errorType": "RATE_LIMIT",
                        "policyName": "TEN_SECONDLY_ROLLING",
                    },
                    status_code=429,
                    headers={"Retry-After": str(self.retry_after)},
                )
            return body, self._error(status, "INTERNAL_ERROR", "scripted failure", violation=False)
        return body, None

    async def create_property(self, request: Request) -> Response:
        body, refused = await self._common(request)
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            return self._error(400, "VALIDATION_ERROR", "a JSON object is required")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            return self._error(400, "VALIDATION_ERROR", f"missing {missing}")
        if body["fieldType"] not in PAIRS.get(body["type"], set()):
            return self._error(
                400, "VALIDATION_ERROR", f"{body['type']}/{body['fieldType']} is not a valid pair"
            )
        if body["groupName"] not in GROUPS:
            return self._error(400, "VALIDATION_ERROR", f"no property group {body['groupName']}")
        if body["type"] == "enumeration" and not all(
            isinstance(o, dict) and o.get("label") and o.get("value") for o in body.get("options") or [None]
        ):
            return self._error(400, "VALIDATION_ERROR", "enumeration options need label and value")
        if body["name"] in self.properties or body["name"] in DEFAULT_PROPERTIES:
            return self._error(409, "OBJECT_ALREADY_EXISTS", "Property already exists", violation=False)
        self.properties[body["name"]] = body
        return JSONResponse(body, status_code=201)

    def _email_of(self, key: str, *, by_email: bool) -> str | None:
        emails = list(self.contacts)
        if by_email:
            return key if key in self.contacts else None
        return emails[int(key[1:])] if key[1:].isdigit() and int(key[1:]) < len(emails) else None

    async def read_contact(self, request: Request) -> Response:
        _, refused = await self._common(request)
        if refused is not None:
            return refused
        email = self._email_of(
            request.path_params["id"], by_email=request.query_params.get("idProperty") == "email"
        )
        if email is None:
            return self._error(404, "OBJECT_NOT_FOUND", "resource not found", violation=False)
        return JSONResponse(
            {"id": f"c{list(self.contacts).index(email)}", "properties": self.contacts[email]}
        )

    async def create_note(self, request: Request) -> Response:
        body, refused = await self._common(request)
        if refused is not None:
            return refused
        if not isinstance(body, dict) or set(body) - {"properties", "associations"}:
            return self._error(400, "VALIDATION_ERROR", "the body has properties and associations")
        properties = body.get("properties") or {}
        if not properties.get("hs_timestamp"):
            return self._error(400, "VALIDATION_ERROR", "hs_timestamp is required")
        for association in body.get("associations") or []:
            target = association.get("to", {}).get("id")
            if self._email_of(str(target), by_email=False) is None:
                return self._error(400, "VALIDATION_ERROR", f"no contact {target} to associate")
            if association.get("types") != [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}
            ]:
                return self._error(400, "VALIDATION_ERROR", "a note-to-contact association is type 202")
        self.notes.append(body)
        return JSONResponse({"id": str(len(self.notes)), "properties": properties}, status_code=201)

    async def update_contact(self, request: Request) -> Response:
        body, refused = await self._common(request)
        if refused is not None:
            return refused
        key = request.path_params["id"]
        by_email = request.query_params.get("idProperty") == "email"
        emails = list(self.contacts)
        email = (
            key
            if by_email
            else (emails[int(key[1:])] if key[1:].isdigit() and int(key[1:]) < len(emails) else None)
        )
        if email not in self.contacts:
            return self._error(404, "OBJECT_NOT_FOUND", "resource not found", violation=False)
        if (
            not isinstance(body, dict)
            or set(body) != {"properties"}
            or not isinstance(body["properties"], dict)
        ):
            return self._error(400, "VALIDATION_ERROR", 'the body must be {"properties": {...}}')
        unknown = set(body["properties"]) - set(self.properties) - DEFAULT_PROPERTIES
        if unknown:
            return self._error(400, "VALIDATION_ERROR", f"Property values were not valid: {sorted(unknown)}")
        for name, value in body["properties"].items():
            if not isinstance(value, str):
                return self._error(400, "VALIDATION_ERROR", f"{name}: values are strings")
            options = [o["value"] for o in self.properties.get(name, {}).get("options", [])]
            if options and value not in options:
                return self._error(400, "VALIDATION_ERROR", f"{value!r} is not an option of {name}")
        self.contacts[email].update(body["properties"])
        return JSONResponse({"id": f"c{emails.index(email)}", "properties": self.contacts[email]})

    async def __aenter__(self) -> FakeHubSpot:
        self.port = self.port or free_port()
        app = Starlette(
            routes=[
                Route("/crm/v3/properties/contacts", self.create_property, methods=["POST"]),
                Route("/crm/v3/objects/contacts/{id}", self.update_contact, methods=["PATCH"]),
                Route("/crm/v3/objects/contacts/{id}", self.read_contact, methods=["GET"]),
                Route("/crm/v3/objects/notes", self.create_note, methods=["POST"]),
            ]
        )
        self._served = await serve(app, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._served.stop()
