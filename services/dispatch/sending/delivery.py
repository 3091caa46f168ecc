"""Handing one claimed message to its channel: rendered from its template, sent by email (SMTP),
SMS or WhatsApp (the provider's HTTP API) or to a chat webhook."""

from __future__ import annotations

from services.dispatch import domain, emails, embeds, redaction, templates, wording
from services.dispatch.channels import HttpChannels, SendError, SmtpPool
from services.dispatch.handlers.links import short_url, unsubscribe_url
from services.dispatch.handlers.workspace import brand_of
from services.dispatch.sending.jobs import Job
from services.dispatch.settings import DispatchSettings
from shared.clock import Clock

EMBEDS_KEPT = 1024


class Deliverer:
    """Renders claimed messages and sends them over the process's SMTP pool and HTTP client."""

    def __init__(
        self, settings: DispatchSettings, *, clock: Clock, smtp: SmtpPool, http: HttpChannels
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.smtp = smtp
        self.http = http
        self._embeds: dict[tuple[str, str, int, str], embeds.EmbeddedQuestion | None] = {}

    def render(self, job: Job, *, unsubscribe: str | None = None) -> templates.Rendered:
        """Return the message rendered for its channel, in the contact's language, with the links it
        carries (every one the short link; ``unsubscribe``, when given, the unsubscribe link), the
        survey's first question embedded (email) and the open pixel when enabled."""
        inv, ws, survey = job.invitation, job.workspace, job.survey
        languages = survey.languages if survey is not None else ()
        language = wording.message_language(inv.locale, languages)
        spec = job.template
        embed = self._embedded(job, language) if survey is not None and job.channel == "email" else None
        link = self.link(job)
        fields = templates.fields_for(
            channel=job.channel,
            kind=inv.kind,
            name=inv.recipient_name,
            context=inv.context or {},
            brand=brand_of(ws),
            survey_url=link,
            short_url=link,
            unsubscribe_url=unsubscribe or unsubscribe_url(self.settings, inv),
            ttl_days=domain.days_left(
                inv.expires_at, self.clock.now(), default_days=self.settings.link_ttl_days
            ),
            locale=inv.locale,
            language=language,
            embed=embed,
            reminder=job.seq,
        )
        tracking = ws.open_tracking if ws.open_tracking is not None else self.settings.open_tracking
        pixel = (
            domain.public_link(self.settings.public_url, f"/o/{inv.short_code}.gif")
            if tracking and inv.short_code and job.channel == "email"
            else None
        )
        return templates.render(job.channel, fields, spec, open_pixel_url=pixel)

    def _embedded(self, job: Job, language: str) -> embeds.EmbeddedQuestion | None:
        """Return the survey's first question as emails in ``language`` embed it, worked out once per
        survey version and language (it is the same for every recipient)."""
        survey = job.survey
        assert survey is not None
        key = (job.invitation.workspace_id, job.invitation.survey_id, survey.version, language)
        if key not in self._embeds:
            if len(self._embeds) >= EMBEDS_KEPT:
                self._embeds.clear()
            self._embeds[key] = embeds.embedded_question(
                survey.first_question, language=language, languages=survey.languages
            )
        return self._embeds[key]

    def link(self, job: Job) -> str:
        """Return the link a message shows: the short personal link (the survey link itself for an
        invitation without one)."""
        return short_url(self.settings, job.invitation) or job.invitation.survey_url

    async def deliver(self, job: Job) -> str | None:
        """Send the message; return the provider's id for it (None for SMTP and chat)."""
        inv = job.invitation
        # One signed link for the body and the List-Unsubscribe header.
        unsubscribe = unsubscribe_url(self.settings, inv)
        try:
            rendered = self.render(job, unsubscribe=unsubscribe)
        except templates.TemplateProblem as exc:
            raise SendError(str(exc), permanent=True) from exc
        if job.channel == "email":
            await self._email(job, rendered, unsubscribe)
            return None
        if job.channel in domain.PHONE_CHANNELS:
            return await self.http.send_message(
                job.config,
                to=domain.normalise_phone(inv.recipient_phone) or "",
                body=rendered.text,
                status_callback=domain.public_link(
                    self.settings.public_url, f"/v1/providers/twilio/{inv.workspace_id}/status"
                ),
            )
        if job.channel == "chat":
            await self.http.post_json(
                job.config.webhook_url or "",
                {
                    "text": rendered.text,
                    "invitation": {
                        "id": inv.id,
                        "contact_id": inv.contact_id,
                        "survey_id": inv.survey_id,
                        "kind": inv.kind,
                        "survey_url": self.link(job),
                        "reminder": job.seq,
                    },
                },
                trusted=job.config.trusted,
            )
            return None
        raise SendError(f"channel {job.channel} cannot be sent", permanent=True)

    async def _email(self, job: Job, rendered: templates.Rendered, unsubscribe: str) -> None:
        """Build the email (as SMTP bytes, or a message when an address needs SMTPUTF8) and send it."""
        inv = job.invitation
        to, mail_from = inv.recipient_email or "", job.config.mail_from or self.settings.mail_from
        try:
            built = emails.build_invitation(
                emails.InvitationEmail(
                    to_email=to,
                    to_name=inv.recipient_name,
                    rendered=rendered,
                    message_id=job.message_id or "",
                    mail_from=mail_from,
                    reply_to=job.config.reply_to,
                    unsubscribe_url=unsubscribe,
                    traceparent=inv.traceparent,  # the survey request's trace, for mail logs
                )
            )
        except ValueError as exc:  # an address no header can carry: retrying will not fix it
            raise SendError(
                f"cannot build the email: {redaction.redact_addresses(str(exc))}", permanent=True
            ) from exc
        if isinstance(built, bytes):
            await self.smtp.send_raw(built, sender=emails.envelope_sender(mail_from), to=to)
        else:
            await self.smtp.send(built, to)
