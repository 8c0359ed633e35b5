"""Email over SMTP: multipart/alternative (text + HTML), RFC 8058 one-click unsubscribe headers,
and a Message-ID derived from the outbox id so a resend after a crash is recognisable."""

from __future__ import annotations

import html as html_lib
import re
import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from personify.domain.consents import Purpose
from personify.domain.errors import InvalidInput
from personify.domain.users import User
from personify.messaging.channels import PermanentSendError, TransientSendError
from personify.messaging.mime import build_alternative, encode_header, format_address
from personify.messaging.records import OutboxMessage
from personify.messaging.templates import RenderedMessage
from personify.messaging.tracking import TrackingSigner

_BODY_OPEN = re.compile(r"<body[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body>", re.IGNORECASE)


@dataclass
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "news@example.com"
    sender_name: str = ""
    message_id_domain: str = "personify.local"
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0


_date_cache: tuple[int, str] = (0, "")


def _date_header() -> str:
    """The RFC 5322 ``Date`` of now, formatted once per second."""
    global _date_cache
    now = datetime.now(UTC)
    second = int(now.timestamp())
    if _date_cache[0] != second:
        _date_cache = (second, format_datetime(now.replace(microsecond=0)))
    return _date_cache[1]


def message_id_header(message_id: str, domain: str) -> str:
    """The RFC 5322 Message-ID of an outbox message: the same on every (re)send."""
    return f"<{message_id}@{domain}>"


def _insert_after_body_open(document: str, fragment: str) -> str:
    match = _BODY_OPEN.search(document)
    if match is None:
        return fragment + document
    return document[: match.end()] + fragment + document[match.end() :]


def _insert_before_body_close(document: str, fragment: str) -> str:
    matches = list(_BODY_CLOSE.finditer(document))
    if not matches:
        return document + fragment
    at = matches[-1].start()
    return document[:at] + fragment + document[at:]


class SmtpSender:
    """Channel ``email``: one persistent SMTP connection, reopened when the server drops it."""

    consent_purpose: str | None = Purpose.EMAIL_MARKETING.value

    def __init__(self, config: SmtpConfig, signer: TrackingSigner | None = None) -> None:
        self.config = config
        self.signer = signer
        self._smtp: smtplib.SMTP | None = None

    def build(
        self, message: OutboxMessage, rendered: RenderedMessage, user: User, *, resend: bool = False
    ) -> bytes:
        """The MIME message: text part, HTML alternative, tracking pixel, unsubscribe headers."""
        headers = [
            ("From", format_address(self.config.sender, self.config.sender_name)),
            ("To", format_address(user.profile.email or "", user.profile.name or "")),
            ("Subject", encode_header("Subject", rendered.subject)),
            ("Date", _date_header()),
            ("Message-ID", message_id_header(message.message_id, self.config.message_id_domain)),
            ("X-Personify-Message", message.message_id),
        ]
        if resend:
            headers.append(("X-Personify-Resend", "in-doubt"))
        html = rendered.html
        if rendered.preheader and html:
            hidden = (
                '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
                f"{html_lib.escape(rendered.preheader)}</div>"
            )
            html = _insert_after_body_open(html, hidden)
        if self.signer is not None and not message.transactional:
            unsubscribe = [
                f"<{self.signer.unsubscribe_url(message.tenant, message.user_id, 'email')}>"
            ]
            mailto = self.signer.unsubscribe_mailto(message.tenant, message.user_id, "email")
            if mailto:
                unsubscribe.insert(0, f"<{mailto}>")
            headers.append(("List-Unsubscribe", ",\r\n ".join(unsubscribe)))
            headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        if self.signer is not None and html:
            pixel_url = self.signer.open_url(message.tenant, message.message_id, message.user_id)
            pixel = f'<img src="{html_lib.escape(pixel_url)}" width="1" height="1" alt="">'
            html = _insert_before_body_close(html, pixel)
        return build_alternative(headers, rendered.text or " ", html or None)

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            smtp = smtplib.SMTP(self.config.host, self.config.port, timeout=self.config.timeout_s)
            if self.config.starttls:
                smtp.starttls()
            if self.config.username:
                smtp.login(self.config.username, self.config.password or "")
            smtp.ehlo_or_helo_if_needed()
            self._smtp = smtp
        return self._smtp

    def _transaction(self, smtp: smtplib.SMTP, recipient: str, data: bytes) -> None:
        """MAIL, RCPT, DATA for one recipient. ``smtplib.SMTP.sendmail`` does the same but
        re-parses both addresses on every call; these were checked when the message was built
        (:func:`personify.messaging.mime.format_address`)."""
        code, reply = smtp.docmd("mail", f"FROM:<{self.config.sender}>")
        if code != 250:
            self._reset(smtp, code)
            raise smtplib.SMTPSenderRefused(code, reply, self.config.sender)
        code, reply = smtp.docmd("rcpt", f"TO:<{recipient}>")
        if code not in (250, 251):
            self._reset(smtp, code)
            raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        code, reply = smtp.data(data)
        if code != 250:
            self._reset(smtp, code)
            raise smtplib.SMTPDataError(code, reply)

    def _reset(self, smtp: smtplib.SMTP, code: int) -> None:
        """After a refusal: RSET (or close, when the server said it is closing)."""
        if code == 421:
            self._drop()
            return
        try:
            smtp.rset()
        except smtplib.SMTPServerDisconnected:
            self._drop()

    def send(self, message: OutboxMessage, rendered: RenderedMessage, user: User) -> None:
        if not user.profile.email:
            raise PermanentSendError(f"user {user.user_id!r} has no email address")
        try:
            data = self.build(message, rendered, user, resend=message.in_doubt)
        except InvalidInput as exc:
            raise PermanentSendError(exc.message) from exc
        for attempt in (1, 2):
            try:
                self._transaction(self._connection(), user.profile.email, data)
                return
            except UnicodeEncodeError as exc:  # a non-ASCII address without SMTPUTF8
                raise PermanentSendError(f"address not sendable: {exc}") from exc
            except smtplib.SMTPServerDisconnected as exc:
                self._drop()
                if attempt == 2:
                    raise TransientSendError(f"SMTP server disconnected: {exc}") from exc
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                error = f"recipient refused: {exc.recipients}"
                if all(code >= 500 for code in codes):
                    raise PermanentSendError(error) from exc
                raise TransientSendError(error) from exc
            except smtplib.SMTPResponseException as exc:
                error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
                if exc.smtp_code >= 500:
                    raise PermanentSendError(error) from exc
                raise TransientSendError(error) from exc
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                raise TransientSendError(f"SMTP error: {exc}") from exc

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            finally:
                self._smtp = None
