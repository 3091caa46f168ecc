"""What happens when an event or a command arrives.

- ``ingest``: a completed response scored, counted, read and published;
- ``erasure``: a contact erased, and responses of erased contacts kept without naming them;
- ``retention``: responses older than the workspace's retention policy anonymised;
- ``surveys``: known surveys (from the ``surveys`` topic and from answers), scales, workspace settings;
- ``funnel``: the invitation funnel from dispatch's events;
- ``notify``: notification rules for low scores;
- ``themes``: a workspace's theme rules;
- ``targets``: experience targets and their evaluator.
"""
