"""``pawatch serve``: the database in Datasette, read-only, with pawatch's metadata.

Datasette is the optional extra ``pawatch[web]``. The metadata (``pawatch/datasette.json``)
describes every table and view, offers the README's example queries as canned queries and
facets on delegation, kind and source.
"""

from __future__ import annotations

import importlib.util
import json
from importlib import resources
from pathlib import Path
from typing import Any

import click

from pawatch.cli.common import Context, fail

METADATA_FILE = "datasette.json"


def datasette_metadata(database_name: str) -> dict[str, Any]:
    """The packaged metadata, for the database Datasette names after the file's stem."""
    text = resources.files("pawatch").joinpath(METADATA_FILE).read_text(encoding="utf-8")
    metadata: dict[str, Any] = json.loads(text)
    metadata["databases"] = {database_name: metadata["databases"]["pawatch"]}
    return metadata


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8001, show_default=True, help="TCP port."
)
@click.option(
    "--immutable",
    is_flag=True,
    help="Open the database as immutable (faster; only for a copy no pawatch writes to: "
    "changes made while serving are not seen).",
)
@click.pass_obj
def serve(obj: Context, host: str, port: int, immutable: bool) -> None:
    """Browse and query the database in Datasette (read-only), with descriptions of every
    table and view, the README's queries and facets. Needs `pip install 'pawatch[web]'`.

    The database is opened read-only (SQLite mode=ro: the daemon may keep writing; new checks
    show up on reload). Stop with Ctrl-C.
    """
    if importlib.util.find_spec("datasette") is None:
        fail(
            "pawatch serve needs Datasette: pip install 'pawatch[web]' (or: pip install datasette)"
        )
    with obj.store(create=False) as store:  # migrated: the views and full-text tables exist
        path = store.path
    import asyncio

    import uvicorn
    from datasette.app import Datasette

    ds = Datasette(
        [path],
        immutables=[path] if immutable else [],
        metadata=datasette_metadata(Path(path).stem),
        settings={"allow_download": False},  # the file holds every stored page
    )
    asyncio.run(ds.invoke_startup())
    click.echo(f"Serving {path} read-only on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on")
