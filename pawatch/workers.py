"""Worker processes for CPU work that holds the GIL (parsing a small run's pages, re-parsing).

A :class:`WorkerPool` keeps ``size`` worker processes, each serving one call at a time over a
pipe. The event loop waits for a result with ``loop.add_reader`` (no helper thread), so the
fetching and the database writes go on while the workers use the other cores. A call that
takes longer than ``timeout`` seconds is abandoned: its worker is killed (a C parser stuck
in a pathological page cannot be interrupted any other way) and replaced by a fresh one, and
the caller gets :class:`WorkerTimeout`. A worker that dies (killed for memory, crashed)
gives :class:`WorkerDied` and is replaced too.

Workers are forked where the platform allows it (they inherit the imported modules: no
start-up cost), spawned elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

__all__ = [
    "WorkerDied",
    "WorkerError",
    "WorkerPool",
    "WorkerTimeout",
    "become_worker",
    "widen_pipe",
]

T = TypeVar("T")


class WorkerError(Exception):
    """A call could not be completed by a worker."""


class WorkerTimeout(WorkerError):
    """The call took longer than the pool's timeout; its worker was killed and replaced."""


class WorkerDied(WorkerError):
    """The worker process ended during the call (killed, out of memory, crashed)."""


def _die_with_parent(parent: int) -> None:
    """On Linux, ask the kernel to kill this worker when the process that started it dies
    (SIGKILLed mid-run): a worker stuck in a page must not outlive it, holding copies of its
    files (the database lock among them) for minutes."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1


def become_worker(parent: int) -> None:
    """What a process forked to work for ``parent`` does first: leave the parent's signal
    handling alone and die with it."""
    # Forked from a process that may run an event loop: its signal wake-up fd is shared with
    # the parent, so a signal here must not write to it. Ctrl-C is the parent's to handle.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)


def _serve(conn: Connection, parent: int) -> None:
    """A worker's loop: run each (func, args) received, send back ("ok", result) or
    ("error", exception)."""
    become_worker(parent)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        func, args = job
        try:
            reply: tuple[str, Any] = ("ok", func(*args))
        except Exception as exc:  # sent back and raised in the caller
            reply = ("error", exc)
        try:
            conn.send(reply)
        except Exception as exc:  # an unpicklable result or exception
            conn.send(("error", WorkerError(f"{type(exc).__name__}: {exc}")))


class _Worker:
    __slots__ = ("conn", "process")

    def __init__(self, context: BaseContext) -> None:
        self.process, self.conn = start_process(context, _serve, (), "pawatch-worker")

    def kill(self) -> None:
        stop_process(self.process, self.conn, kill=True)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        stop_process(self.process, self.conn, kill=False)


def start_process(
    context: BaseContext, target: Callable[..., None], args: tuple[Any, ...], name: str
) -> tuple[BaseProcess, Connection]:
    """A daemon process running ``target(its end of a pipe, this process's pid, *args)``,
    and this process's end of the pipe (both ends widened: ``widen_pipe``)."""
    parent, child = multiprocessing.Pipe()
    for end in (parent, child):
        widen_pipe(end)
    process: BaseProcess = context.Process(  # type: ignore[attr-defined]
        target=target, args=(child, os.getpid(), *args), name=name, daemon=True
    )
    process.start()
    child.close()
    return process, parent


def stop_process(process: BaseProcess, conn: Connection, *, kill: bool) -> None:
    """Close the pipe to ``process`` and wait for it to end (killed at once with ``kill``,
    else after 5 s)."""
    conn.close()
    if kill and process.is_alive():
        process.kill()
    process.join(5)
    if process.is_alive():
        process.kill()
        process.join(5)


async def wait_readable(conn: Connection, timeout: float | None) -> bool:
    """Wait until ``conn`` has data or is closed; False after ``timeout`` seconds."""
    if conn.poll():
        return True
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        async with asyncio.timeout(timeout):
            await ready
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


_BUFFER = 1 << 20


def widen_pipe(conn: Connection) -> None:
    """Ask for socket buffers that hold a whole page (the kernel caps them at its maximum,
    often 208 KB): sending a 60 KB body then never waits for the worker to read it."""
    with contextlib.suppress(OSError):
        sock = socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)  # a dup
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _BUFFER)


def _context() -> BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class WorkerPool:
    """``size`` worker processes; ``await pool.run(func, *args)`` runs ``func`` in one of
    them within ``timeout`` seconds. ``func``, its arguments and result must pickle."""

    def __init__(self, size: int, timeout: float) -> None:
        self.size = max(1, size)
        self.timeout = timeout
        self.replaced = 0  # workers killed and replaced (timeouts and deaths)
        self._context = _context()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._free: asyncio.Semaphore | None = None
        self._closed = False

    def _take(self) -> _Worker:
        if self._idle:
            return self._idle.pop()
        worker = _Worker(self._context)
        self._all.add(worker)
        return worker

    def _drop(self, worker: _Worker) -> None:
        self._all.discard(worker)
        worker.kill()
        self.replaced += 1

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise RuntimeError("the worker pool is closed")
        if self._free is None:
            self._free = asyncio.Semaphore(self.size)
        async with self._free:
            worker = self._take()
            try:
                worker.conn.send((func, args))
                if not await wait_readable(worker.conn, self.timeout):
                    raise TimeoutError
                status, value = worker.conn.recv()
            except TimeoutError:
                self._drop(worker)
                raise WorkerTimeout(f"took longer than {self.timeout:g} s") from None
            except (EOFError, OSError):  # (BrokenPipeError is one)
                code = worker.process.exitcode
                self._drop(worker)
                raise WorkerDied(f"the worker process ended (exit code {code})") from None
            except BaseException:  # cancelled mid-call: the worker's state is unknown
                self._drop(worker)
                raise
            self._idle.append(worker)
        if status == "error":
            raise value
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop every worker (idle ones politely, busy ones are killed by their callers)."""
        self._closed = True
        for worker in list(self._all):
            if worker in self._idle:
                worker.stop()
            else:
                worker.kill()
        self._all.clear()
        self._idle.clear()

    def pids(self) -> list[int]:
        """Process ids of the live workers (for tests and logs)."""
        return [w.process.pid for w in self._all if w.process.pid is not None]


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
