"""Delivery channels beside the ``[email]`` outbox: the ``[[channels]]`` tables.

Kinds: ``webhook`` (an HTTP POST of the JSON report, ``pawatch-report/2``; a 2xx answer is
delivery), ``apprise`` (an Apprise URL: Telegram, Matrix, Slack, ntfy, ...; Apprise's return
value is delivery; needs the ``pawatch[notify]`` extra) and ``email`` (``mailto:`` addresses
through the ``[email]`` SMTP server).

Each channel has its own outbox rows (outbox channel ``ch:<name>``), created at delivery time
for the events recorded since the channel was first seen (a new channel does not replay the
past), filtered by its ``delegations`` and ``kinds``. The rows follow the email outbox's
rules and its delivery policy, written once in storage/outbox.py (``Outbox.settle``): claimed
under one message id, marked delivered only after the channel accepted the message; a
permanent refusal (HTTP 4xx but 408/429, a redirect) marks them failed with the status and
the start of the answer; a temporary one (a refused connection, HTTP 5xx, 408, 429, Apprise
saying no) puts them back to pending, at most ``max_resends`` times in a row (``[email]
max_resends``, default 3), then failed; when the channel may have received the message (a
timeout or a cut after the request was sent) they stay in flight and are sent again with the
same id (``Idempotency-Key`` header for webhooks), at most ``max_resends`` times. See
docs/email.md, "Channels".
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

from pawatch import mailer
from pawatch.config.model import ChannelSettings, EmailSettings, Settings
from pawatch.display import one_line
from pawatch.reports import Report, build_report, render_html, render_json, render_text
from pawatch.storage import Store, format_time
from pawatch.storage import outbox as ob
from pawatch.storage.outbox import EXTRA

log = logging.getLogger("pawatch.channels")

USER_AGENT = "pawatch (report delivery)"


def outbox_name(channel: ChannelSettings) -> str:
    return f"{EXTRA}{channel.name}"


def shown_url(url: str) -> str:
    """A URL fit for messages and logs: no password, no token in the user part."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class ChannelError(Exception):
    """The channel did not accept the message; ``uncertain``: it may have received it;
    ``permanent``: it refused it for good (sending it again cannot help)."""

    def __init__(self, message: str, *, uncertain: bool = False, permanent: bool = False) -> None:
        super().__init__(message)
        self.uncertain = uncertain
        self.permanent = permanent


TEMPORARY_HTTP = frozenset({408, 429})  # 4xx answers that mean "not now": retried


def http_refusal_is_permanent(status: int) -> bool:
    """A 4xx other than 408/429 (the request itself is wrong: a bad URL, a revoked token) or
    a redirect (not followed): sending it again cannot help. A 5xx, 408, 429: try later."""
    return 300 <= status < 500 and status not in TEMPORARY_HTTP


@dataclass(frozen=True)
class ChannelResult:
    channel: str  # the [[channels]] name
    status: str  # sent | resent | dry-run | failed | uncertain | deferred
    #              | refused (marked failed: refused for good, or past max_resends)
    event_ids: tuple[int, ...] = ()
    message_id: str | None = None
    subject: str = ""
    reply: str = ""
    error: str | None = None


def message_id_for(channel: ChannelSettings, event_ids: Sequence[int]) -> str:
    """Depends only on the channel and the events: a re-send carries the same id."""
    ids = ",".join(str(i) for i in sorted(event_ids))
    digest = hashlib.sha256(f"{outbox_name(channel)}:{ids}".encode()).hexdigest()[:24]
    return f"pawatch.{channel.name}.{digest}"


def max_resends(settings: Settings) -> int:
    """``[email] max_resends`` (its default without an ``[email]`` table): the cap of the
    delivery policy for channels too."""
    return settings.email.max_resends if settings.email else EmailSettings.max_resends


def lease(channel: ChannelSettings) -> timedelta:
    """How long a message claimed by a running process is left alone by other processes."""
    return timedelta(seconds=60 + 3 * channel.timeout)


# ------------------------------------------------------------------ sending


def send(
    channel: ChannelSettings,
    settings: Settings,
    report: Report,
    message_id: str,
    *,
    env: Mapping[str, str] | None = None,
) -> str:
    """Send ``report`` through ``channel``; the channel's answer, or ``ChannelError``."""
    if channel.kind == "webhook":
        return _webhook(channel, report, message_id)
    if channel.kind == "apprise":
        return _apprise(channel, report)
    return _email(channel, settings, report, message_id, env)


def _webhook(channel: ChannelSettings, report: Report, message_id: str) -> str:
    import httpx

    where = shown_url(channel.url)
    try:
        response = httpx.post(
            channel.url,
            content=render_json(report).encode("utf-8"),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Idempotency-Key": message_id,
            },
            timeout=channel.timeout,
            follow_redirects=False,
        )
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise ChannelError(f"cannot connect to {where}: {exc}") from None
    except httpx.HTTPError as exc:  # sent, then cut off or timed out: it may have arrived
        raise ChannelError(
            f"no answer from {where}: {type(exc).__name__}: {exc}", uncertain=True
        ) from None
    answer = one_line(response.text[:1000], 160)
    status = response.status_code
    if not 200 <= status < 300:
        raise ChannelError(
            f"{where} answered HTTP {status}: {answer}",
            permanent=http_refusal_is_permanent(status),
        )
    return f"HTTP {response.status_code}" + (f": {answer}" if answer else "")


def _apprise(channel: ChannelSettings, report: Report) -> str:
    try:
        import apprise
    except ImportError:
        raise ChannelError(
            "Apprise is not installed: install pawatch with the notify extra "
            "(pip install 'pawatch[notify]')"
        ) from None
    notifier = apprise.Apprise()
    if not notifier.add(channel.url):
        raise ChannelError(
            f"Apprise does not accept the URL {shown_url(channel.url)}", permanent=True
        )
    if not notifier.notify(title=report.subject, body=render_text(report)):
        raise ChannelError(f"Apprise could not deliver to {shown_url(channel.url)}")
    return "accepted by Apprise"


def _email(
    channel: ChannelSettings,
    settings: Settings,
    report: Report,
    message_id: str,
    env: Mapping[str, str] | None,
) -> str:
    if settings.email is None:
        raise ChannelError("an email channel needs the [email] table (the SMTP server)")
    to = [a.strip() for a in channel.url.removeprefix("mailto:").split(",") if a.strip()]
    domain = mailer.domain_of(settings.email.sender) or "pawatch.invalid"
    msg = mailer.build_message(
        settings.email,
        to=to,
        subject=report.subject,
        text=render_text(report),
        html=render_html(report),
        message_id=f"<{message_id}@{domain}>",
        headers={"X-Pawatch-Channel": channel.name},
    )
    try:
        sent = mailer.send(settings.email, msg, to, env=env)
    except mailer.MailError as exc:
        permanent = isinstance(exc, mailer.MailRejected) and exc.permanent
        raise ChannelError(str(exc), uncertain=exc.uncertain, permanent=permanent) from None
    return sent.reply


# ------------------------------------------------------------------ the outbox


def _wanted(channel: ChannelSettings, kind: str, delegation: str | None) -> bool:
    if channel.kinds and kind not in channel.kinds:
        return False
    return not channel.delegations or delegation in channel.delegations


def enqueue(store: Store, channels: Sequence[ChannelSettings], now: str) -> int:
    """Give each channel its outbox rows for the events recorded since it was last given
    any (the first time: what is still pending elsewhere); rows of channels no longer
    configured are skipped. One transaction. Returns the number of rows added."""
    box = store.outbox
    added = 0
    with store.transaction():
        box.skip_extra_channels([outbox_name(c) for c in channels], now)
        for channel in channels:
            added += box.extend_channel(outbox_name(channel), partial(_wanted, channel), now)
    return added


def deliver_channels(
    settings: Settings,
    store: Store,
    now: datetime,
    *,
    dry_run: bool = False,
    out: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> list[ChannelResult]:
    """Deliver every ``[[channels]]`` table's pending rows, once each (``enqueue`` first)."""
    results: list[ChannelResult] = []
    for channel in settings.channels:
        results += _Channel(channel, settings, store, now, dry_run, out, env).run()
    return results


class _Channel:
    def __init__(
        self,
        channel: ChannelSettings,
        settings: Settings,
        store: Store,
        now: datetime,
        dry_run: bool,
        out: TextIO | None,
        env: Mapping[str, str] | None,
    ) -> None:
        self.channel, self.settings, self.store = channel, settings, store
        self.box, self.name = store.outbox, outbox_name(channel)
        self.now, self.stamp = now, format_time(now)
        self.stale_before = format_time(now - lease(channel))
        self.dry_run, self.out, self.env = dry_run, out, env
        self.max_resends = max_resends(settings)
        self.results: list[ChannelResult] = []

    def run(self) -> list[ChannelResult]:
        if self.dry_run:  # what the channel has open, and what enqueue would give it now
            added = self.box.channel_additions(self.name, partial(_wanted, self.channel))
            ids = sorted({*self.box.open_event_ids(self.name), *added})
            if ids:
                report = self._report(ids)
                if self.out is not None:
                    self.out.write(f"Channel {self.channel.name}:\n{render_text(report)}\n")
                self.results.append(
                    ChannelResult(self.channel.name, "dry-run", tuple(ids), subject=report.subject)
                )
            return self.results
        for flight in self.box.in_flight(self.name, self.stale_before):
            with self.store.transaction():
                verdict = self.box.resend_or_fail(
                    flight, self.max_resends, self.stale_before, self.stamp
                )
            if verdict == "resend":
                self._send(list(flight.event_ids), flight.message_id, resend=True)
            elif verdict == "failed":
                error = ob.unconfirmed_reason(flight, self.max_resends)
                log.error("delivery to channel %s given up: %s", self.channel.name, error)
                self.results.append(
                    ChannelResult(
                        self.channel.name, "refused", flight.event_ids, flight.message_id,
                        error=error,
                    )
                )  # fmt: skip
        if self.box.busy(self.name, self.stale_before):
            self.results.append(
                ChannelResult(
                    self.channel.name, "deferred", error="another pawatch process is sending it"
                )
            )
            return self.results
        with self.store.transaction():
            claimed = self.box.claim(
                self.name, self.stamp, lambda ids: message_id_for(self.channel, ids)
            )
        if claimed is not None:
            self._send(claimed[0], claimed[1])
        return self.results

    def _report(self, ids: Sequence[int]) -> Report:
        problems = [] if self.channel.delegations else self.box.problems()
        prefix = self.settings.subject_prefix
        return build_report(
            self.box.events_by_id(ids),
            problems,
            generated_at=self.now,
            channel=self.channel.name,
            prefix=prefix,
            store=self.store,
            base_url=self.settings.report.base_url,
        )

    def _send(self, ids: Sequence[int], message_id: str, resend: bool = False) -> None:
        report = self._report(ids)
        name = self.channel.name
        try:
            reply = send(self.channel, self.settings, report, message_id, env=self.env)
        except ChannelError as exc:  # the policy, the same as email's: storage/outbox.py
            failure = ob.classify(permanent=exc.permanent, uncertain=exc.uncertain, resend=resend)
            with self.store.transaction():
                settled = self.box.settle(
                    message_id, failure, str(exc), self.stamp, self.max_resends
                )
            status = "uncertain" if exc.uncertain else "failed"
            if settled.failed:
                status = "refused"
            log.warning("delivery to channel %s failed: %s", name, settled.error)
            self.results.append(
                ChannelResult(
                    name, status, tuple(ids), message_id, report.subject, error=settled.error
                )
            )
            return
        with self.store.transaction():
            self.box.mark_delivered(message_id, self.stamp)
        log.info("delivered %s to channel %s: %s", message_id, name, reply)
        status = "resent" if resend else "sent"
        self.results.append(
            ChannelResult(name, status, tuple(ids), message_id, report.subject, reply)
        )


def send_test(
    settings: Settings, channel: ChannelSettings, *, env: Mapping[str, str] | None = None
) -> str:
    """Send a short test report through ``channel``; its answer, or ``ChannelError``."""
    from datetime import UTC

    now = datetime.now(UTC)
    prefix = settings.subject_prefix
    report = build_report([], generated_at=now, channel=channel.name, prefix=prefix)
    digest = hashlib.sha256(json.dumps([channel.name, format_time(now)]).encode()).hexdigest()
    return send(channel, settings, report, f"pawatch.test.{digest[:24]}", env=env)
