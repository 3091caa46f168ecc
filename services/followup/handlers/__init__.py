"""What happens when events arrive and when agents work cases, one module per concern: ``opening``
(scores in: cases opened or why not, erasure), ``outcomes`` (retention answers, failed retention
invitations, climbs), ``work`` (agents' changes), ``escalate`` (the ladder's pass), ``config`` (the
workspace's set-up), with ``common``, ``routing`` and ``notify`` underneath."""
