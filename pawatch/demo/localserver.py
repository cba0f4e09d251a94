"""A small local HTTP/1.1 server for tests, the demo and benchmarks.

    with LocalServer() as server:
        server.set("/", Route(body="<p>Привет</p>"))
        server.set("/flaky", Route(sequence=[Route(status=500), Route(body="ok")]))
        url = server.url("/flaky")

Keep-alive, Nagle off, a thread per connection, a large listen backlog and one ``sendall``
per response keep it fast enough for a 1000-page benchmark. Unknown paths (and robots.txt
unless a route is set) answer 404. Every request is logged with its arrival time.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, NamedTuple

__all__ = ["Fault", "LocalServer", "RequestRecord", "Route"]

Fault = Literal["reset", "truncate", "huge", "redirect_loop", "slow_body"]

_HUGE_CHUNK = b"x" * 65536


@dataclass(frozen=True)
class Route:
    """What one path answers.

    ``body`` is bytes or str (encoded with ``charset``). ``content_type`` defaults to
    ``text/html; charset=<charset>`` for str bodies and plain ``text/html`` for bytes (so a
    windows-1251 page "without a header charset" is just ``Route(body=cp1251_bytes)``).
    ``etag`` / ``last_modified`` are sent and answer 304 when the request's validators match.
    ``delay`` waits before answering; ``sequence`` serves its routes in turn, the last one
    repeating; ``fault`` misbehaves (see :data:`Fault`); ``chunk_delay`` paces ``slow_body``;
    ``huge_size`` is how much ``huge`` streams at most.
    """

    status: int = 200
    body: bytes | str = b""
    charset: str = "utf-8"
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    sequence: tuple[Route, ...] | list[Route] = ()
    fault: Fault | None = None
    chunk_delay: float = 0.2
    huge_size: int = 1 << 30

    def payload(self) -> bytes:
        return self.body.encode(self.charset) if isinstance(self.body, str) else self.body

    def media_type(self) -> str:
        if self.content_type is not None:
            return self.content_type
        if isinstance(self.body, str):
            return f"text/html; charset={self.charset}"
        return "text/html"


class RequestRecord(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    time: float  # time.monotonic() when the request line arrived


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: LocalServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-response is normal here; stay quiet


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def do_GET(self) -> None:
        owner = self.server.owner
        route = owner._begin(self.command, self.path, self.headers.items())
        try:
            self._answer(route)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            owner._end()

    do_HEAD = do_GET

    def _answer(self, route: Route | None) -> None:
        if route is None:
            self._send(404, {"Content-Type": "text/plain; charset=utf-8"}, b"not found\n")
            return
        if route.delay:
            time.sleep(route.delay)
        fault = route.fault
        if fault == "reset":
            # SO_LINGER 0: close() sends RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if fault == "redirect_loop":
            self._send(302, {"Location": self.path, "Content-Type": "text/plain"}, b"")
            return
        headers = {"Content-Type": route.media_type(), **route.headers}
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if self._not_modified(route):
            # no Content-Length, as servers send it: a 304 never has a body (RFC 9110 15.4.5)
            kept = {k: v for k, v in headers.items() if k != "Content-Type"}
            self._send(304, kept, b"", length=False)
            return
        body = route.payload()
        if fault == "truncate":
            headers["Content-Length"] = str(len(body) + 1000)
            self._send(route.status, headers, body, length=False)
            self.close_connection = True
        elif fault == "huge":
            headers["Transfer-Encoding"] = "chunked"
            self._send(route.status, headers, b"", length=False)
            self._stream_huge(route.huge_size)
        elif fault == "slow_body":
            self._send(route.status, headers, b"", length=False, extra_length=len(body))
            for i in range(0, len(body), 16):
                time.sleep(route.chunk_delay)
                self._write(body[i : i + 16])
        else:
            self._send(route.status, headers, body)

    def _not_modified(self, route: Route) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            if route.etag is None:
                return False
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            return "*" in tags or route.etag.removeprefix("W/") in tags
        ims = self.headers.get("If-Modified-Since")
        return ims is not None and route.last_modified is not None and ims == route.last_modified

    def _stream_huge(self, size: int) -> None:
        sent = 0
        while sent < size:
            self._write(b"%x\r\n%s\r\n" % (len(_HUGE_CHUNK), _HUGE_CHUNK), count=len(_HUGE_CHUNK))
            sent += len(_HUGE_CHUNK)
        self._write(b"0\r\n\r\n", count=0)

    def _send(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        length: bool = True,
        extra_length: int | None = None,
    ) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        if length:
            lines.append(f"Content-Length: {len(body)}")
        elif extra_length is not None:
            lines.append(f"Content-Length: {extra_length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._write(head + (b"" if self.command == "HEAD" else body), count=len(body))

    def _write(self, data: bytes, count: int | None = None) -> None:
        self.wfile.write(data)
        self.server.owner._sent(self.path, len(data) if count is None else count)


class LocalServer:
    """A threaded HTTP/1.1 server on ``host`` (port 0 = a free port); a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._turns: Counter[str] = Counter()
        self._requests: list[RequestRecord] = []
        self._bytes: Counter[str] = Counter()
        self._active = 0
        self._max_active = 0
        self._connections: set[socket.socket] = set()
        self._accepted = 0
        self._httpd = _Server((host, port), self)
        self._thread: threading.Thread | None = None
        self.host = host
        self.port: int = self._httpd.server_address[1]

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> LocalServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"LocalServer:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread = None
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # unblock handler threads waiting on keep-alive sockets
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- routes -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def set(self, path: str, route: Route) -> None:
        """Serve ``route`` at ``path`` (matched with its query string first, then without)."""
        with self._lock:
            self._routes[path] = route
            self._turns.pop(path, None)

    def set_many(self, routes: Mapping[str, Route]) -> None:
        with self._lock:
            for path, route in routes.items():
                self._routes[path] = route
                self._turns.pop(path, None)

    def clear(self) -> None:
        """Forget every route, the request log and the counters."""
        with self._lock:
            self._routes.clear()
            self._turns.clear()
            self._requests.clear()
            self._bytes.clear()
            self._max_active = 0
            self._accepted = 0

    # -- observation --------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, in arrival order."""
        with self._lock:
            return list(self._requests)

    def hits(self, path: str) -> int:
        """How many requests asked for ``path`` (with or without a query string)."""
        with self._lock:
            return sum(1 for r in self._requests if r.path.split("?", 1)[0] == path)

    def bytes_sent(self, path: str) -> int:
        """Body bytes written for ``path`` so far (a ``huge`` stream stops early on hang-up)."""
        with self._lock:
            return self._bytes[path]

    @property
    def connections(self) -> int:
        """How many TCP connections were accepted since the last clear()."""
        with self._lock:
            return self._accepted

    @property
    def max_active(self) -> int:
        """The most requests being answered at the same moment since the last clear()."""
        with self._lock:
            return self._max_active

    # -- called by the handler ----------------------------------------------------------

    def _begin(self, method: str, path: str, headers: Any) -> Route | None:
        record = RequestRecord(method, path, {k.lower(): v for k, v in headers}, time.monotonic())
        with self._lock:
            self._requests.append(record)
            self._active += 1
            self._max_active = max(self._max_active, self._active)
            key = path if path in self._routes else path.split("?", 1)[0]
            route = self._routes.get(key)
            if route is not None and route.sequence:
                turn = self._turns[key]
                self._turns[key] = turn + 1
                route = route.sequence[min(turn, len(route.sequence) - 1)]
        return route

    def _end(self) -> None:
        with self._lock:
            self._active -= 1

    def _sent(self, path: str, count: int) -> None:
        with self._lock:
            self._bytes[path.split("?", 1)[0]] += count

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
                self._accepted += 1
            else:
                self._connections.discard(conn)
