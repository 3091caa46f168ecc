"""Inbound sources, pure: how each vendor signs its webhooks, and how its payloads become events.

Every source is verified the way its vendor documents it, with constant-time comparisons and a
timestamp tolerance where the scheme has a timestamp; then its body is normalised into
``Incoming`` events (source event id, type, time, contact reference, properties). No I/O here.
``kinds`` dispatches by integration kind to ``hubspot``, ``zendesk``, ``standard``, ``cloudevents``
and ``generic``; ``common`` holds what they share; ``contact_rows`` reads the rows of a contact
import (CSV or JSON lines). Import from the module; this package re-exports nothing.
"""
