"""Deliver what is pending in the outbox: by email with an ``[email]`` table, else to stdout.

``deliver_pending`` is called by ``pawatch run`` after checking and by ``pawatch deliver``.
Per channel (``all`` -> ``email.recipients``, ``KG`` -> ``email.delegation_recipients.KG``)
it sends one message with every pending event, and marks the events delivered only after the
SMTP server accepted it (a 2xx answer to the end of DATA). A temporary refusal (4xx) leaves
them pending (at most ``max_resends`` times in a row), a permanent one (5xx) marks them
failed (the policy, shared with the ``[[channels]]``, is ``Outbox.settle``); a recipient
refused with a 4xx gets the events again later, alone. The guarantees are in docs/email.md.
All reads and writes go through ``Store.outbox`` inside ``Store.transaction()``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, TextIO

from pawatch import mailer
from pawatch.channels import deliver_channels, enqueue
from pawatch.config.model import EmailSettings, Settings
from pawatch.reports import Report, build_report, render_html, render_text
from pawatch.storage import Store, format_time, parse_time
from pawatch.storage import outbox as ob
from pawatch.storage.outbox import Outbox

log = logging.getLogger("pawatch.delivery")

FATAL_KINDS = ("config", "auth", "tls", "connection", "timeout")  # no use trying other channels


def lease(settings: EmailSettings) -> timedelta:
    """How long a message claimed by a running process is left alone by other processes."""
    return timedelta(seconds=60 + 3 * settings.timeout)


@dataclass(frozen=True)
class MessageOutcome:
    channel: str
    status: str  # sent | resent | printed | dry-run | failed | uncertain | not-attempted
    #              | refused (marked failed: refused for good, or past max_resends)
    event_ids: tuple[int, ...]
    recipients: tuple[str, ...] = ()
    message_id: str | None = None
    subject: str = ""
    reply: str = ""  # the server's answer
    error: str | None = None
    error_kind: str | None = None
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("sent", "resent", "printed", "dry-run")


@dataclass
class DeliveryResult:
    """What one delivery did: messages sent or failed, channels deferred, rows skipped."""

    mode: str  # email | stdout
    dry_run: bool = False
    messages: list[MessageOutcome] = field(default_factory=list)
    deferred: dict[str, str] = field(default_factory=dict)  # channel -> why not now
    skipped: int = 0  # outbox rows of channels nobody receives
    pending: int = 0  # outbox rows still pending or sending afterwards

    @property
    def failed(self) -> list[MessageOutcome]:
        return [m for m in self.messages if not m.ok]

    @property
    def refused(self) -> dict[str, str]:
        return {a: r for m in self.messages for a, r in m.refused.items()}

    @property
    def ok(self) -> bool:
        return not self.failed and not self.refused

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary_lines(self) -> list[str]:
        lines = []
        for m in self.messages:
            events = f"{len(m.event_ids)} event(s)" if m.event_ids else "health reminder"
            if m.status == "printed":
                lines.append(f"printed the report ({events}) to stdout")
            elif m.status == "dry-run":
                lines.append(f"would send to {', '.join(m.recipients)} ({events}): {m.subject}")
            elif m.ok:
                again = " again (same Message-ID)" if m.status == "resent" else ""
                accepted = ", ".join(a for a in m.recipients if a not in m.refused)
                lines.append(f"sent {m.message_id}{again} to {accepted} ({events}): {m.reply}")
            else:
                kept = "kept pending" if m.event_ids else "not sent"
                if m.status == "refused":
                    kept = "marked failed, not sent again"
                lines.append(f"FAILED channel {m.channel} ({events} {kept}): {m.error}")
            for a, r in m.refused.items():
                again = " (tried again later)" if mailer.is_temporary(r) else ""
                lines.append(f"REFUSED recipient {a}: {r}{again}")
        lines += [f"deferred channel {c}: {why}" for c, why in self.deferred.items()]
        if self.skipped:
            lines.append(f"skipped {self.skipped} outbox row(s) of channels without recipients")
        if not lines:
            lines.append("nothing to deliver")
        if self.pending and not self.dry_run:
            lines.append(f"{self.pending} outbox row(s) still pending")
        return lines


def deliver_pending(
    settings: Settings,
    store: Store,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    out: TextIO = sys.stdout,
    env: Mapping[str, str] | None = None,
) -> DeliveryResult:
    """Send (or, without ``[email]``, print to ``out``) every pending event, once.

    ``dry_run`` prints the reports that would go out and changes nothing. ``env`` replaces
    ``os.environ`` for the password lookup (tests).
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if settings.channels and not dry_run:  # before the email marks what a new channel gets
        enqueue(store, settings.channels, format_time(now))
    base_url = settings.report.base_url
    if settings.email is None:
        result = _to_stdout(store, now, dry_run, out, base_url)
    else:
        result = _Email(settings.email, store, now, dry_run, out, env, base_url).run()
    if settings.channels:  # [[channels]]: their own outbox rows (pawatch/channels.py)
        for c in deliver_channels(settings, store, now, dry_run=dry_run, out=out, env=env):
            if c.status == "deferred":
                result.deferred[c.channel] = c.error or ""
                continue
            result.messages.append(
                MessageOutcome(
                    c.channel, c.status, c.event_ids, (c.channel,), c.message_id, c.subject,
                    c.reply, c.error, "channel" if c.error else None,
                )
            )  # fmt: skip
        result.pending = store.outbox.count_open()
    return result


def _to_stdout(
    store: Store, now: datetime, dry_run: bool, out: TextIO, base_url: str | None
) -> DeliveryResult:
    box = store.outbox
    result = DeliveryResult(mode="stdout", dry_run=dry_run)
    stamp = format_time(now)
    if not dry_run:
        with store.transaction():
            result.skipped = box.skip_channels([ob.ALL], stamp)
    ids = box.open_event_ids(ob.ALL)
    if ids:
        report = build_report(
            box.events_by_id(ids),
            box.problems(),
            generated_at=now,
            store=store,
            base_url=base_url,
            operator=True,
        )
        out.write(render_text(report))
        out.flush()
        if not dry_run:
            with store.transaction():
                box.mark_printed(ob.ALL, ids, stamp)
        status = "dry-run" if dry_run else "printed"
        result.messages.append(MessageOutcome(ob.ALL, status, tuple(ids), subject=report.subject))
    result.pending = box.count_open()
    return result


class _Email:
    def __init__(
        self,
        email: EmailSettings,
        store: Store,
        now: datetime,
        dry_run: bool,
        out: TextIO,
        env: Mapping[str, str] | None,
        base_url: str | None = None,
    ) -> None:
        self.email, self.store, self.base_url = email, store, base_url
        self.box: Outbox = store.outbox
        self.now, self.stamp = now, format_time(now)
        self.dry_run, self.out, self.env = dry_run, out, env
        self.stale_before = format_time(now - lease(email))
        self.result = DeliveryResult(mode="email", dry_run=dry_run)
        self.fatal: mailer.MailError | None = None
        routes = {ob.ALL: email.recipients, **email.delegation_recipients}
        self.routes: dict[str, tuple[str, ...]] = {c: tuple(to) for c, to in routes.items() if to}
        for channel in self.box.open_channels():  # one recipient's retries (a 4xx earlier)
            base, address = ob.split_channel(channel)
            if address is not None and address in self.routes.get(base, ()):
                self.routes[channel] = (address,)
        self._instance: str | None = None

    def run(self) -> DeliveryResult:
        problems = self.box.problems()
        if not self.dry_run:
            with self.store.transaction():
                self.result.skipped = self.box.skip_channels(list(self.routes), self.stamp)
                self.box.prune_health_notices({(p["source_id"], p["condition"]) for p in problems})
        for channel in sorted(self.routes, key=lambda c: (c != ob.ALL, c)):
            base = ob.split_channel(channel)[0]
            mine = [p for p in problems if base == ob.ALL or p["delegation"] == base]
            self._channel(channel, mine)
        self.result.pending = self.box.count_open()
        return self.result

    def _message_id(self, channel: str, ids: list[int]) -> str:
        if self._instance is None:
            self._instance = self.store.instance_id()
        return mailer.message_id_for(channel, ids, self.email.sender, self._instance)

    def _channel(self, channel: str, problems: list[dict[str, Any]]) -> None:
        if self.dry_run:
            ids = self.box.open_event_ids(channel)
            if ids or self._reminder_due(channel, problems):
                self._send(channel, ids, None, problems)
            return
        # 1. Messages a killed or cut-off run may or may not have delivered: the same events
        #    again, under the same Message-ID (receivers can drop the duplicate), at most
        #    email.max_resends times; then they are marked failed for a person to look.
        for flight in self.box.in_flight(channel, self.stale_before):
            with self.store.transaction():
                verdict = self.box.resend_or_fail(
                    flight, self.email.max_resends, self.stale_before, self.stamp
                )
            if verdict == "resend":
                self._send(channel, list(flight.event_ids), flight.message_id, problems, True)
            elif verdict == "failed":
                self._given_up(channel, flight)
        if self.box.busy(channel, self.stale_before):
            self.result.deferred[channel] = "another pawatch process is sending it now"
            return
        has_pending = self.box.has_pending(channel)
        if not has_pending and not self._reminder_due(channel, problems):
            return
        if not self._digest_allows(channel):
            return
        if not has_pending:
            self._send(channel, [], None, problems)
            return
        with self.store.transaction():
            claimed = self.box.claim(
                channel, self.stamp, lambda ids: self._message_id(channel, ids)
            )
        if claimed is not None:
            self._send(channel, claimed[0], claimed[1], problems)

    def _given_up(self, channel: str, flight: ob.InFlight) -> None:
        error = ob.unconfirmed_reason(flight, self.email.max_resends)
        log.error("delivery to channel %s given up: %s", channel, error)
        self.result.messages.append(
            MessageOutcome(
                channel,
                "refused",
                flight.event_ids,
                self.routes[channel],
                flight.message_id,
                error=error,
                error_kind="unconfirmed",
            )
        )

    def _reminder_due(self, channel: str, problems: list[dict[str, Any]]) -> bool:
        """Health repeats: a failing/broken source not shown for ``health_repeat``."""
        if channel != ob.ALL or not problems:
            return False
        notices = self.box.health_notices()
        for p in problems:
            notice = notices.get((p["source_id"], p["condition"]))
            if notice is None or notice[0] != p["since"]:
                return True
            repeat = self.email.health_repeat
            if repeat is not None and self.now >= parse_time(notice[1]) + repeat:
                return True
        return False

    def _digest_allows(self, channel: str) -> bool:
        if self.email.digest is None:
            return True
        last = self.box.get_state(f"digest:{channel}")
        if last is None:
            return True
        next_at = parse_time(last) + self.email.digest
        if self.now >= next_at:
            return True
        self.result.deferred[channel] = f"digest: next email after {format_time(next_at)}"
        return False

    def _send(
        self,
        channel: str,
        ids: Sequence[int],
        message_id: str | None,
        problems: list[dict[str, Any]],
        resend: bool = False,
    ) -> None:
        to = tuple(self.routes[channel])
        report = build_report(
            self.box.events_by_id(ids),
            problems,
            generated_at=self.now,
            channel=ob.split_channel(channel)[0],
            prefix=self.email.subject_prefix,
            reminder=not ids,
            store=self.store,
            base_url=self.base_url,
        )
        if self.dry_run:
            self.out.write(f"To: {', '.join(to)}\n{render_text(report)}\n")
            self.result.messages.append(
                MessageOutcome(channel, "dry-run", tuple(ids), to, subject=report.subject)
            )
            return
        if message_id is None:  # a health reminder: not in the outbox, a fresh id
            message_id = mailer.new_message_id(self.email.sender, "pawatch.health")
        outcome = MessageOutcome(
            channel, "resent" if resend else "sent", tuple(ids), to, message_id, report.subject
        )
        if self.fatal is not None:
            self._failed(outcome, self.fatal, attempted=False)
            return
        msg = self._message(report, to, message_id, ids)
        try:
            sent = mailer.send(self.email, msg, to, env=self.env)
        except mailer.MailError as exc:
            self._failed(outcome, exc, attempted=True)
            return
        note = "; ".join(f"refused {a}: {r}" for a, r in sent.refused.items()) or None
        with self.store.transaction():
            if ids:
                self.box.mark_delivered(message_id, self.stamp, note)
                for address in sent.deferred:  # a 4xx for this one: it gets them later
                    self.box.retry_for(channel, address, ids, self.stamp)
            if not resend:
                self.box.set_state(f"digest:{channel}", self.stamp)
            if channel == ob.ALL:
                shown = [(p["source_id"], p["condition"], p["since"]) for p in problems]
                self.box.record_health_notices(shown, self.stamp)
        self.result.messages.append(replace(outcome, reply=sent.reply, refused=sent.refused))

    def _message(
        self, report: Report, to: Sequence[str], message_id: str, ids: Sequence[int]
    ) -> EmailMessage:
        headers = {"X-Pawatch-Channel": report.channel}
        if ids:
            headers["X-Pawatch-Events"] = f"{len(ids)} (ids {min(ids)}-{max(ids)})"
        return mailer.build_message(
            self.email,
            to=to,
            subject=report.subject,
            text=render_text(report),
            html=render_html(report),
            message_id=message_id,
            date=self.now,
            headers=headers,
        )

    def _failed(self, outcome: MessageOutcome, exc: mailer.MailError, attempted: bool) -> None:
        message = str(exc) if attempted else f"not attempted after: {exc}"
        permanent = attempted and isinstance(exc, mailer.MailRejected) and exc.permanent
        uncertain = attempted and exc.uncertain  # a message never handed over cannot be kept
        status = "uncertain" if uncertain else ("failed" if attempted else "not-attempted")
        if outcome.event_ids and outcome.message_id:  # the policy: storage/outbox.py
            failure = ob.classify(
                permanent=permanent, uncertain=uncertain, resend=outcome.status == "resent"
            )
            with self.store.transaction():
                settled = self.box.settle(
                    outcome.message_id, failure, message, self.stamp, self.email.max_resends,
                    counted=attempted,
                )  # fmt: skip
            if settled.failed:  # a 5xx, or past max_resends failures: a person must look
                status, message = "refused", settled.error
        if exc.kind in FATAL_KINDS:
            self.fatal = exc
        log.warning("delivery to channel %s failed: %s", outcome.channel, message)
        self.result.messages.append(
            replace(outcome, status=status, error=message, error_kind=exc.kind)
        )
