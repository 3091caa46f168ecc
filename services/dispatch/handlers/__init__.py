"""What happens when a survey is requested, a provider reports, a customer responds or opts out,
and what a workspace configures: one module per use case, each function one step of a unit of work
on the caller's session.

- ``survey_requests``: a survey request becomes one invitation;
- ``routing``: which channel reaches a contact (opt-outs, hard-bounced addresses) and the fallback
  to the next one when a message can never arrive;
- ``optouts``: opt-outs (unsubscribe links, complaints, other services) and erasure;
- ``funnel``: clicks, opens and responses moving an invitation through the funnel;
- ``callbacks``: provider delivery reports (SendGrid, Mailgun, Twilio);
- ``configuration``: the workspace's settings, channels, templates and webhook subscriptions;
- ``workspace``: reading that configuration, cached per workspace, and picking a template;
- ``links``: the links a message carries (signed survey link, short link, unsubscribe);
- ``invitations``: steps shared by the use cases (event fields, recipient, failing pending ones).
"""
