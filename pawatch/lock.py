"""The single-writer lock on a pawatch database: an ``fcntl.flock`` on ``<db>.lock``.

``pawatch run`` holds it for the whole run, ``pawatch daemon`` while it checks or delivers. A
second writer waits up to a timeout, then gives up with :class:`LockTimeout` (``pawatch run``
exits with :data:`EXIT_LOCKED`). The kernel drops the lock when its holder exits, however it
exits, so a crash never leaves a stale lock behind. The lock file is never deleted (deleting a
flock'ed file lets two processes lock two different files); after taking the lock the holder
writes one JSON line into it (pid, purpose, since) so the waiter can say who holds it.

The daemon also holds ``<db>.daemon.lock`` for its whole life: one daemon per database.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

EXIT_LOCKED = 3  # `pawatch run` could not take the database lock in time
_POLL = 0.05


class LockTimeout(Exception):
    """The lock stayed held by another process for the whole timeout."""

    def __init__(self, path: str, waited: float, holder: dict[str, Any] | None) -> None:
        self.path, self.waited, self.holder = path, waited, holder
        super().__init__(self.describe())

    def describe(self) -> str:
        who = describe_holder(self.holder)
        return f"{self.path} is held by {who}; gave up after waiting {self.waited:g} s"


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    parts = [f"pid {holder.get('pid', '?')}"]
    if holder.get("purpose"):
        parts.append(str(holder["purpose"]))
    if holder.get("since"):
        parts.append(f"since {holder['since']}")
    return "another pawatch (" + ", ".join(parts) + ")"


def lock_path(db_path: str, suffix: str = ".lock") -> str:
    return str(db_path) + suffix


class FileLock:
    """An exclusive ``flock`` on one file; reentrant use is not supported.

    ``acquire(timeout)`` polls every 50 ms (flock has no timed wait) and raises
    :class:`LockTimeout`; ``acquire_async`` does the same without blocking the event loop.
    """

    def __init__(self, path: str, purpose: str = "") -> None:
        self.path = str(path)
        self.purpose = purpose
        self._fd: int | None = None

    @classmethod
    def for_database(cls, db_path: str, purpose: str = "", suffix: str = ".lock") -> FileLock:
        return cls(lock_path(db_path, suffix), purpose)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free right now; True when taken."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: already held by this process")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._write_holder()
        return True

    def acquire(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds (0: try once) for the lock."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise LockTimeout(self.path, timeout, self.holder())
            time.sleep(min(_POLL, max(deadline - time.monotonic(), 0.0)))

    async def acquire_async(self, timeout: float | None) -> None:
        """Like :meth:`acquire` in an event loop; ``None`` waits for ever."""
        import asyncio  # here: the commands that only take the lock do not import asyncio

        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        while not self.try_acquire():
            if deadline is not None and time.monotonic() >= deadline:
                raise LockTimeout(self.path, timeout or 0.0, self.holder())
            await asyncio.sleep(_POLL)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # the next reader sees no stale holder
        except OSError:
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def holder(self) -> dict[str, Any] | None:
        """Who wrote the lock file last (the holder while it is held), or None."""
        try:
            text = Path(self.path).read_text(encoding="utf-8").strip()
            data = json.loads(text) if text else None
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write_holder(self) -> None:
        assert self._fd is not None
        info = {
            "pid": os.getpid(),
            "purpose": self.purpose,
            "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, (json.dumps(info) + "\n").encode(), 0)

    @contextlib.contextmanager
    def hold(self, timeout: float) -> Iterator[FileLock]:
        self.acquire(timeout)
        try:
            yield self
        finally:
            self.release()

    def __enter__(self) -> FileLock:
        self.acquire(0)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
