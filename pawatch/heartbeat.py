"""The daemon's heartbeat file ``<db>.daemon.json``: who runs, since when, the next run per
source and the last error. The daemon writes it; ``pawatch status`` reads it."""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from pawatch.schedules import utcnow
from pawatch.storage.store import parse_time

HEARTBEAT_SUFFIX = ".daemon.json"


def heartbeat_path(db_path: str) -> str:
    """The daemon's heartbeat file: ``<db>.daemon.json`` next to the database."""
    return str(db_path) + HEARTBEAT_SUFFIX


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def read_heartbeat(db_path: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The heartbeat file plus ``alive`` and ``beat_age`` (seconds), or None without a file.

    Alive: the daemon says it is running, its last beat is recent (three heartbeat intervals,
    at least 15 s) and, on this host, its pid exists.
    """
    try:
        data = json.loads(Path(heartbeat_path(db_path)).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"alive": False, "state": "unreadable", "error": str(exc)}
    if not isinstance(data, dict):
        return {"alive": False, "state": "unreadable", "error": "not a JSON object"}
    now = now or utcnow()
    age = None
    alive = False
    try:
        age = (now - parse_time(str(data["last_beat"]))).total_seconds()
        interval = float(data.get("heartbeat_interval") or 5)
        alive = data.get("state") in ("running", "stopping") and age <= max(3 * interval, 15)
        if alive and data.get("host") == socket.gethostname():
            alive = _pid_alive(int(data["pid"]))
    except (KeyError, TypeError, ValueError):
        alive = False
    data["alive"] = alive
    data["beat_age"] = age
    return data
