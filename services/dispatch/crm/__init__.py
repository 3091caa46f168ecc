"""Scores back into the CRM: connectors per workspace, the calls queued for them, and the ``crm`` worker.

- ``secrets.py``: credentials sealed at rest (AES-256-GCM, a key derived from the service secret);
- ``hubspot.py``: the HubSpot CRM v3 requests (contact properties, the contact update), pure;
- ``queue.py``: connectors (create, read, change) and the calls an event queues for them;
- ``worker.py``: ``CrmWorker`` sends due calls within each connector's burst budget, honours 429
  ``Retry-After``, retries 5xx and connection errors, and logs every HTTP request.
"""
