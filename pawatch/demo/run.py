"""``pawatch demo``: the main job, offline, against example sites served on 127.0.0.1.

Two local servers stand in for the Assembly's site and a national parliament's site. The demo
checks version 1 of both, switches them to version 2, checks again, and shows what changed and
where the database is.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from importlib import resources
from pathlib import Path

import click

from pawatch.config import Settings
from pawatch.config.model import EmailSettings
from pawatch.delivery import deliver_pending
from pawatch.demo.localserver import LocalServer, Route
from pawatch.demo.smtpcapture import save_eml, smtp_capture
from pawatch.display import event_line
from pawatch.pipeline import RunSummary, run_once
from pawatch.reports import build_report, delegation_name
from pawatch.settings import settings_from_text
from pawatch.storage import Store

# path on the server -> (file in site/vN, content type)
ASSEMBLY_PAGES = {
    "/": ("pacsto-home.html", "text/html; charset=utf-8"),
    "/events": ("pacsto-events.html", "text/html; charset=utf-8"),
    "/countries/kyrgyz-republic": ("pacsto-country-kg.html", "text/html; charset=utf-8"),
    "/ru/": ("paodkb-home.html", "text/html"),  # windows-1251, declared only in <meta>
}
NATIONAL_PAGES = {
    "/ru/deputies": ("kenesh-deputies.html", "text/html; charset=utf-8"),
}
ROBOTS = "User-agent: *\nDisallow: /admin/\n"


def demo_config(assembly: str, national: str, db_path: str) -> str:
    """The demo's config file: the same shape a user writes (see README)."""
    return f"""\
# Written by `pawatch demo`: the example sites are served on 127.0.0.1 while the demo runs.
[storage]
path = {json.dumps(db_path)}

[http]
per_host_delay = 0.1
retries = 1

[[sources]]
id = "demo-assembly-en"
url = "{assembly}/"
parser = "delegations"
schedule = "6h"

[[sources]]
id = "demo-assembly-ru"
url = "{assembly}/ru/"
parser = "delegations"
schedule = "6h"

[[sources]]
id = "demo-assembly-events"
url = "{assembly}/events"
parser = "news-list"
schedule = "2h"

[[sources]]
id = "demo-country-kg"
url = "{assembly}/countries/kyrgyz-republic"
parser = "delegation-page"
delegation = "KG"
schedule = "1d"

[[sources]]
id = "demo-kenesh-deputies"
url = "{national}/ru/deputies"
parser = "roster"
delegation = "KG"
schedule = "1d"
[sources.options]
item = ".deputy-card"
name = ".deputy-name"
role = ".deputy-role"
link = "a"
min_items = 3
"""


def _page(version: str, name: str) -> bytes:
    return resources.files("pawatch.demo").joinpath("site", version, name).read_bytes()


def publish(server: LocalServer, pages: dict[str, tuple[str, str]], version: str) -> None:
    """Serve ``version`` of the example pages (with an ETag, so unchanged pages answer 304)."""
    for path, (name, content_type) in pages.items():
        body = _page(version, name)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        server.set(path, Route(body=body, content_type=content_type, etag=etag))
    server.set("/robots.txt", Route(body=ROBOTS.encode(), content_type="text/plain"))


@contextmanager
def demo_servers() -> Iterator[tuple[LocalServer, LocalServer]]:
    """The Assembly site on 127.0.0.1 and a national site on 127.0.0.2 (or .1 if unavailable)."""
    with ExitStack() as stack:
        assembly = stack.enter_context(LocalServer("127.0.0.1"))
        try:
            national = stack.enter_context(LocalServer("127.0.0.2"))
        except OSError:
            national = stack.enter_context(LocalServer("127.0.0.1"))
        yield assembly, national


def _show(summary: RunSummary, store: Store) -> None:
    data = summary.as_json()
    counts = data["counts"]
    click.echo(
        f"  {data['checked']} sources: {counts['new']} new, {counts['changed']} changed, "
        f"{counts['unchanged'] + counts['not_modified']} unchanged, {counts['failed']} failed"
    )
    for source_id, error in sorted(data["errors"].items()):
        click.echo(f"  failed: {source_id}: {error}")


def deliver_to_local_smtp(settings: Settings, store: Store, eml_path: Path) -> Path | None:
    """Deliver the pending events to an SMTP server on 127.0.0.1 and save what it received."""
    with smtp_capture() as server:
        email = EmailSettings(
            smtp_host=server.host,
            smtp_port=server.port,
            security="none",
            sender="pawatch demo <pawatch-demo@localhost>",
            recipients=("desk@localhost",),
        )
        result = deliver_pending(replace(settings, email=email), store, out=io.StringIO())
        received = server.wait_for(1, timeout=10)
    click.echo(f"\nDelivery to a local SMTP server ({server.host}:{server.port}):")
    for line in result.summary_lines():
        click.echo(f"  {line}")
    if not received or not result.ok:
        click.echo("  no message was received", err=True)
        return None
    message = received[0].message()
    click.echo(f"  received: {message['Subject']}")
    return save_eml(received[0], eml_path)


def command_path(name: str) -> str:
    """How the user can call ``name``: bare when on PATH, else its path in our venv."""
    if shutil.which(name):
        return name
    beside = Path(sys.executable).parent / name
    if beside.exists():
        try:
            return str(beside.relative_to(Path.cwd()))
        except ValueError:
            return str(beside)
    return name


def run_demo(out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "pawatch.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)

    with demo_servers() as (assembly, national):
        config_text = demo_config(assembly.base_url, national.base_url, str(db_path.resolve()))
        config_file = out / "pawatch-demo.toml"
        config_file.write_text(config_text, encoding="utf-8")
        settings = settings_from_text(config_text, str(config_file))
        click.echo(
            f"Example sites: {assembly.base_url} (Assembly), {national.base_url} "
            f"(national parliament)"
        )
        with Store.open(db_path) as store:
            exit_code = 0
            for version in ("v1", "v2"):
                publish(assembly, ASSEMBLY_PAGES, version)
                publish(national, NATIONAL_PAGES, version)
                click.echo(f"\nCheck with the sites at version {version[1]}:")
                summary = run_once(settings, settings.enabled_sources, store)
                _show(summary, store)
                exit_code = max(exit_code, summary.exit_code)
            events = store.events()
            report = build_report(events)
            changes = [i for g in report.groups for i in g.items] + report.news
            click.echo(
                f"\nWhat changed between the two versions: {len(report.items)} change(s) and "
                f"{len(report.news)} news item(s), from {len(events)} event(s) of the sources:"
            )
            for change in changes:
                where = f"{delegation_name(change.delegation)}: " if change.delegation else ""
                n = len(change.sightings)
                click.echo(f"  {where}{change.headline} (seen on {n} source{'s' * (n != 1)})")
            click.echo("The events, one per source:")
            for event in events:
                click.echo("  " + event_line(event))
            eml = deliver_to_local_smtp(settings, store, out / "report.eml")
            exit_code = max(exit_code, 0 if eml else 1)
    pawatch, sqlite_utils = command_path("pawatch"), command_path("sqlite-utils")
    click.echo(f"""
Database: {db_path}
Config:   {config_file}
Report:   {out / "report.eml"} (the email as received; open it in a mail program)
Query it (see README, "The database"):
  {pawatch} --db {db_path} changes --kind composition --kind representative
  {pawatch} --db {db_path} history KG
  {pawatch} --db {db_path} changes --format json
  {pawatch} --config {config_file} status
  {sqlite_utils} {db_path} "SELECT * FROM current_composition WHERE delegation = 'KG'" --table
  sqlite3 {db_path} "SELECT delegation, name, valid_from, valid_to FROM representatives"
""")
    return exit_code
