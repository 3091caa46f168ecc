"""What happens when a command or an event arrives, one module per concern: ``integrations``,
``contacts``, ``rules``, ``settings``, ``evaluate`` (the rules applied to stored events), ``ingest``
(events posted with the API key), ``dryrun``, ``imports``, ``audit``, and ``tx`` (transactions and
the outbox). Import from the module; this package re-exports nothing."""
