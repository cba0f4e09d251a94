"""The feed command (registered on `cli`)."""

from __future__ import annotations

import click

from pawatch.cli.common import EXIT_FAILURES, Context, fail


@click.command()
@click.option(
    "--out",
    metavar="PATH",
    help="Write the feed to this file (atomically: a reader never sees half of it) "
    "instead of stdout.",
)
@click.pass_obj
def feed(obj: Context, out: str | None) -> None:
    """Print an Atom 1.0 feed of the delegation-level changes: one entry per change, newest
    first, with the sources that saw it and the page lines before and after.

    Entry ids are stable and an entry's <updated> moves when another source confirms the
    change; the same database gives the same bytes. Set [feed] path to rewrite a file after
    every run and daemon cycle.
    """
    from pawatch.feed import build_feed, write_atomically

    with obj.store(create=False) as store:
        text = build_feed(obj.settings, store)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        changed = write_atomically(out, text)
    except OSError as exc:
        fail(f"cannot write the feed to {out}: {exc.strerror or exc}", EXIT_FAILURES)
    click.echo(f"feed {'written to' if changed else 'unchanged in'} {out}", err=True)
