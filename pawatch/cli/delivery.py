"""Delivery commands (reports, email): registered on the main `cli` group."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from pawatch.cli.common import EXIT_FAILURES, Context, fail, format_option
from pawatch.storage import outbox as ob
from pawatch.times import format_time


@click.command()
@click.option(
    "--dry-run", is_flag=True, help="Print what would be sent; send nothing, mark nothing."
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="First put the events marked failed (refused for good, or never confirmed) back "
    "to pending, after fixing what made them fail.",
)
@click.pass_obj
def deliver(obj: Context, dry_run: bool, retry_failed: bool) -> None:
    """Send the pending change events: by email with an [email] table in the config, else
    print the report to stdout (cron mails it on).

    Events are marked delivered only after the SMTP server accepted the message. Exit
    code 1 when a message failed (a 4xx or a broken connection: its events stay pending for
    the next run; a 5xx: they are marked failed, see `pawatch status`) or a recipient was
    refused; a summary goes to stderr.
    """
    from pawatch.delivery import deliver_pending

    settings = obj.settings
    with obj.store(create=False) as store, obj.writing(store, "deliver"):
        if retry_failed and not dry_run:
            with store.transaction():
                again = store.outbox.retry_failed()
            click.echo(f"{again} failed outbox row(s) pending again", err=True)
        result = deliver_pending(settings, store, dry_run=dry_run, out=sys.stdout)
    if dry_run and not result.messages:
        click.echo("nothing pending")
    quiet = result.mode == "stdout" and result.ok and obj.verbosity < 1
    if not quiet:
        for line in result.summary_lines():
            click.echo(line, err=True)
    sys.exit(result.exit_code)


@click.command()
@click.option(
    "--since",
    metavar="PERIOD|DATE",
    help="Every event detected since then ('7d', '12h', '2026-11-01') instead of the pending ones.",
)
@format_option("text", "html", "json", help="Report format (json: see docs/email.md).")
@click.pass_obj
def report(obj: Context, since: str | None, fmt: str) -> None:
    """Print a change report without sending or marking anything.

    By default it covers the events still pending delivery; with --since, every event
    detected since then. Current failing/broken sources are listed at the end.
    """
    from pawatch.reports import RENDERERS, build_report, parse_since

    now = datetime.now(UTC)
    if since is not None:
        try:
            start = parse_since(since, now)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
    with obj.store(create=False) as store:
        box = store.outbox
        if since is None:
            events = box.events_by_id(box.open_event_ids(ob.ALL))
        else:
            events = box.events_since(format_time(start))
        problems = box.problems()
        prefix = obj.settings.subject_prefix
        rep = build_report(
            events,
            problems,
            generated_at=now,
            prefix=prefix,
            store=store,
            base_url=obj.settings.report.base_url,
            operator=fmt == "text",
        )
    click.echo(RENDERERS[fmt](rep), nl=False)


@click.command("test-email")
@click.option(
    "--to",
    "to",
    multiple=True,
    metavar="ADDRESS",
    help="Send to this address (repeatable) instead of every configured recipient.",
)
@click.pass_obj
def test_email(obj: Context, to: tuple[str, ...]) -> None:
    """Send a test message with the [email] settings and print the server's answer, or a
    one-line error (authentication failed, TLS failed, refused, timeout). Exit code 1 when
    the message was not accepted or a recipient was refused."""
    from pawatch.mailer import MailError, MailRejected, send_test

    email = obj.settings.email
    if email is None:
        fail("no [email] table in the config: nothing to test (see docs/email.md)")
    try:
        result = send_test(email, list(to) or None)
    except MailRejected as exc:
        fail(f"refused: {exc.reply or exc} ({exc})", EXIT_FAILURES)
    except MailError as exc:
        fail(f"test email failed ({exc.kind}): {exc}", EXIT_FAILURES)
    click.echo(f"accepted by {email.smtp_host}:{email.port}: {result.reply}")
    click.echo(f"Message-ID {result.message_id} to {', '.join(result.accepted)}")
    for address, answer in result.refused.items():
        click.echo(f"refused: {answer} (recipient {address})", err=True)
    sys.exit(EXIT_FAILURES if result.refused else 0)


@click.command("test-channel")
@click.argument("name")
@click.pass_obj
def test_channel(obj: Context, name: str) -> None:
    """Send a test report through the [[channels]] table named NAME (webhook, apprise or
    email) and print the channel's answer, or one line saying why it failed (exit 1)."""
    from pawatch.channels import ChannelError, send_test, shown_url

    channels = {c.name: c for c in obj.settings.channels}
    if name not in channels:
        known = ", ".join(channels) or "none configured"
        fail(f"no channel named {name!r} in the config's [[channels]] (known: {known})")
    channel = channels[name]
    try:
        answer = send_test(obj.settings, channel)
    except ChannelError as exc:
        fail(f"test through channel {name} failed: {exc}", EXIT_FAILURES)
    click.echo(f"channel {name} ({channel.kind}, {shown_url(channel.url)}) accepted: {answer}")
