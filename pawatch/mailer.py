"""Email through SMTP (smtplib): STARTTLS, implicit TLS or none, with authentication.

The password is read from the environment variable named by ``email.password_env`` at the
moment of sending; it is never stored, logged or put in an error message. Every failure is a
``MailError`` subclass with a one-line message. ``MailError.uncertain`` is true when the
connection broke after the message was handed over, so the server may have accepted it.

Every reply is checked, the one to the end of DATA included: a message counts as sent only
when the server answered 2xx to it. A refusal is ``MailRejected`` with the server's words;
``permanent`` when the server answered 5xx to the message (it will never take it), else the
same events can be tried again later. A recipient refused while others were accepted is in
``SendResult.refused``; ``SendResult.deferred`` lists those refused with a 4xx (try again).
"""

from __future__ import annotations

import email.policy
import hashlib
import logging
import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from pawatch.config.model import EmailSettings
from pawatch.display import one_line, printable

log = logging.getLogger("pawatch.mail")
SUBJECT_LIMIT = 400  # characters: a 100 KB scraped name never makes a 100 KB header


class MailError(Exception):
    """Sending failed; ``str()`` is one line. ``kind`` names the failure for scripts."""

    kind = "error"

    def __init__(self, message: str, *, uncertain: bool = False) -> None:
        super().__init__(message)
        self.uncertain = uncertain


class MailConfigError(MailError):
    kind = "config"


class MailAuthError(MailError):
    kind = "auth"


class MailTLSError(MailError):
    kind = "tls"


class MailConnectError(MailError):
    kind = "connection"


class MailTimeout(MailError):
    kind = "timeout"


class MailRejected(MailError):
    """The server refused the sender, the message, or every recipient.

    ``reply`` is the server's answer ("554 5.6.0 rejected"); ``permanent`` is true for a 5xx
    refusal of the message itself (sending it again cannot help). A refused sender or every
    recipient refused is not permanent: that is fixed in the config, and then sent."""

    kind = "rejected"

    def __init__(
        self,
        message: str,
        *,
        reply: str = "",
        permanent: bool = False,
        refused: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.reply = reply
        self.permanent = permanent
        self.refused = dict(refused or {})


@dataclass(frozen=True)
class SendResult:
    message_id: str
    accepted: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)  # address -> the server's answer
    reply: str = ""  # the server's answer to the message, e.g. "250 OK queued as 1234"

    @property
    def deferred(self) -> tuple[str, ...]:
        """Refused recipients whose refusal was temporary (4xx): to be tried again."""
        return tuple(a for a, answer in self.refused.items() if is_temporary(answer))


def is_temporary(answer: str) -> bool:
    """True for a 4xx SMTP answer ("450 4.2.1 mailbox busy")."""
    return answer[:1] == "4"


def address_of(sender: str) -> str:
    return parseaddr(sender)[1]


def message_id_for(channel: str, event_ids: Sequence[int], sender: str, instance: str) -> str:
    """A Message-ID that depends only on the database (its ``instance`` id), the channel and
    the events: a re-send of the same message carries the same id, so receivers can recognise
    (and drop) a duplicate, and two databases never use the same id for different reports."""
    ids = ",".join(str(i) for i in sorted(event_ids))
    digest = hashlib.sha256(f"{instance}:{channel}:{ids}".encode()).hexdigest()[:24]
    return f"<pawatch.{channel.lower()}.{digest}@{domain_of(sender) or 'pawatch.invalid'}>"


def new_message_id(sender: str, tag: str = "pawatch") -> str:
    """A fresh, unique Message-ID (test messages, health reminders)."""
    return make_msgid(tag, domain_of(sender) or None)


def domain_of(sender: str) -> str:
    """The domain of a sender's address (``pawatch <a@example.org>`` -> ``example.org``), for
    the Message-IDs it sends; "" without one."""
    return address_of(sender).rpartition("@")[2]


def build_message(
    settings: EmailSettings,
    *,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    message_id: str | None = None,
    date: datetime | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message (text, then HTML); non-ASCII headers RFC 2047-encoded,
    bodies quoted-printable, so it is 7-bit clean for any server."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["Subject"] = one_line(subject, SUBJECT_LIMIT)  # no controls, no 100 KB header
    msg["From"] = settings.sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime((date or datetime.now(UTC)).astimezone(UTC), usegmt=True)
    msg["Message-ID"] = message_id or new_message_id(settings.sender)
    msg["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(printable(text), cte="quoted-printable")
    if html is not None:
        msg.add_alternative(printable(html), subtype="html", cte="quoted-printable")
    return msg


def password_of(settings: EmailSettings, env: Mapping[str, str] | None = None) -> str | None:
    """The SMTP password from the environment (None without a username)."""
    if not settings.username or not settings.password_env:
        return None
    value = (os.environ if env is None else env).get(settings.password_env)
    if not value:
        raise MailConfigError(
            f"the SMTP password is missing: set the environment variable {settings.password_env}"
        )
    if not value.isascii():  # smtplib sends AUTH as ASCII only
        raise MailConfigError(
            f"the SMTP password in {settings.password_env} has non-ASCII characters, "
            "which smtplib cannot send"
        )
    return value


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())


def _translate(exc: BaseException, settings: EmailSettings, uncertain: bool) -> MailError:
    where = f"{settings.smtp_host}:{settings.port}"
    if isinstance(exc, MailError):
        return exc
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return MailAuthError(
            f"authentication failed at {where} for user {settings.username!r}: "
            f"{exc.smtp_code} {_text(exc.smtp_error)}"
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return MailAuthError(f"authentication failed: {where} offers no AUTH on this connection")
    if isinstance(exc, smtplib.SMTPHeloError):  # EHLO and HELO both refused
        return MailConnectError(
            f"{where} refused the greeting: {exc.smtp_code} {_text(exc.smtp_error)}"
        )
    if isinstance(exc, smtplib.SMTPConnectError):  # the greeting was a refusal (421, 554)
        return MailConnectError(
            f"{where} refused the connection: {exc.smtp_code} {_text(exc.smtp_error)}"
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        reply = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        return MailRejected(f"{where} refused the sender: {reply}", reply=reply)
    if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 400:
        # SMTPDataError and the like: the server answered no to the message, a definite no
        reply = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        return MailRejected(
            f"{where} refused the message: {reply}",
            reply=reply,
            permanent=500 <= exc.smtp_code < 600,
        )
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return MailTLSError(f"TLS failed with {where}: {getattr(exc, 'reason', None) or exc}")
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
        exc.__context__, TimeoutError
    ):
        exc = exc.__context__  # smtplib reports a read timeout as a disconnection
    if isinstance(exc, TimeoutError):
        return MailTimeout(
            f"timeout: no answer from {where} within {settings.timeout:g}s", uncertain=uncertain
        )
    if isinstance(exc, ConnectionRefusedError):
        return MailConnectError(f"connection refused by {where} (is the SMTP server running?)")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return MailConnectError(f"{where} closed the connection: {exc}", uncertain=uncertain)
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        return MailConnectError(f"cannot talk to {where}: {reason}", uncertain=uncertain)
    # Anything else (an SMTP library error without a code, an encoding problem): one line,
    # and the events stay pending (or, if the message may have gone, are re-sent later with
    # the same Message-ID) instead of a traceback.
    log.error("unexpected error while sending through %s", where, exc_info=exc)
    return MailError(
        f"sending through {where} failed: {type(exc).__name__}: {exc}", uncertain=uncertain
    )


def _connect(settings: EmailSettings, password: str | None) -> smtplib.SMTP:
    context = ssl.create_default_context(cafile=settings.ca_bundle)
    smtp: smtplib.SMTP
    if settings.security == "tls":
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host, settings.port, timeout=settings.timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.port, timeout=settings.timeout)
    try:
        # EHLO, and HELO when EHLO is refused (a server without ESMTP); both refused: raises
        smtp.ehlo_or_helo_if_needed()
        if settings.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise MailTLSError(
                    f"TLS failed: {settings.smtp_host}:{settings.port} does not offer STARTTLS"
                )
            smtp.starttls(context=context)
            smtp.ehlo_or_helo_if_needed()  # STARTTLS forgets the first greeting
        if settings.username and password is not None:
            smtp.login(settings.username, password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _close(smtp: smtplib.SMTP) -> None:
    """QUIT and close; a failure here cannot undo an accepted message, so it is ignored."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


def send(
    settings: EmailSettings,
    msg: EmailMessage,
    to: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
) -> SendResult:
    """Send ``msg`` to ``to``. Returns the accepted and refused recipients and the server's
    answer; raises a ``MailError`` when nothing was accepted (``uncertain`` when the
    connection broke after the message was transmitted)."""
    password = password_of(settings, env)
    uncertain = False
    smtp: smtplib.SMTP | None = None
    try:
        smtp = _connect(settings, password)
        sender = address_of(settings.sender)
        code, resp = smtp.mail(sender)
        if not 200 <= code < 300:
            raise smtplib.SMTPSenderRefused(code, resp, sender)
        refused: dict[str, str] = {}
        for rcpt in to:
            code, resp = smtp.rcpt(rcpt)
            if not 200 <= code < 300:
                refused[rcpt] = f"{code} {_text(resp)}"
        if len(refused) == len(to):
            answers = "; ".join(f"{a}: {r}" for a, r in refused.items())
            raise MailRejected(
                f"every recipient was refused: {answers}",
                reply=next(iter(refused.values()), ""),
                refused=refused,  # not permanent: a wrong address is fixed in the config
            )
        data = msg.as_bytes(policy=email.policy.SMTP)
        uncertain = True  # from here on the server may have the message
        # smtplib's data() raises SMTPDataError when DATA itself is refused, but RETURNS the
        # answer to the end of the message: a 451 or 554 there is a refusal, checked here.
        code, resp = smtp.data(data)
        uncertain = False
        if not 200 <= code < 300:
            raise smtplib.SMTPDataError(code, resp)
    except BaseException as exc:
        if isinstance(exc, Exception):
            raise _translate(exc, settings, uncertain) from None
        raise
    finally:
        if smtp is not None:
            _close(smtp)
    accepted = tuple(r for r in to if r not in refused)
    result = SendResult(str(msg["Message-ID"]), accepted, refused, f"{code} {_text(resp)}")
    log.info("sent %s to %s: %s", result.message_id, ", ".join(accepted), result.reply)
    for rcpt, answer in refused.items():
        log.warning("recipient %s refused for %s: %s", rcpt, result.message_id, answer)
    return result


def send_test(
    settings: EmailSettings,
    to: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> SendResult:
    """Send a short test message to ``to`` (default: every configured recipient)."""
    recipients = list(to or _all_recipients(settings))
    text = (
        "This is a test message from pawatch.\n\n"
        f"Server: {settings.smtp_host}:{settings.port} ({settings.security})\n"
        f"Sender: {settings.sender}\n"
    )
    msg = build_message(
        settings, to=recipients, subject=f"{settings.subject_prefix}: test message", text=text
    )
    return send(settings, msg, recipients, env=env)


def _all_recipients(settings: EmailSettings) -> list[str]:
    everyone = list(settings.recipients)
    for addresses in settings.delegation_recipients.values():
        everyone += addresses
    return list(dict.fromkeys(everyone))
