"""Sending invitations and reminders: claim due messages, hand them to a channel, record the outcome.

Sending is kept out of the consumer on purpose: a crash between the hand-off and the commit
would otherwise redeliver the event and message the customer twice. Instead each message is
claimed (``sending``) in one transaction, sent, and its outcome recorded in the next. A claim
left behind by a sender that died is taken over after ``send_claim_timeout_s`` and counts as
an attempt, so a message that kills the sender cannot loop forever; an email sent again keeps
its Message-ID.

One pass claims up to ``send_concurrency`` messages, sends them concurrently (emails over a
small pool of reused SMTP connections) and records every outcome in one transaction. Every
rule that can hold a message back is applied at claim time, so it also covers retries and
reminders: opt-outs, erased contacts, expired links, invalid addresses, quiet hours in the
contact's timezone, and per-channel rate limits.

- ``sender``: ``InvitationSender``, the ``sender`` worker: one pass claims, sends concurrently and records;
- ``jobs``: a claimed message and everything needed to send it without the database;
- ``claims``: claiming due messages, and every rule that holds one back or stops it;
- ``delivery``: rendering a message and handing it to email, SMS/WhatsApp or chat;
- ``records``: recording every outcome of a pass: retries, fallbacks and the next reminder.
"""
