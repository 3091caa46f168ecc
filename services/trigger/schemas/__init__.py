"""Request and response bodies of the trigger API, one module per resource (``integrations``,
``contacts``, ``rules``, ``settings``, ``events``) and ``common``. Never the ORM models, never the
event payloads. Import from the module; this package re-exports nothing."""
