"""The fetcher's transport (pawatch.scraper.transport) against real servers on 127.0.0.1.

TLS through a local HTTPS server whose certificate is signed by a test CA
(tests/fixtures/tls: ca.pem, and server.pem/server.key for 127.0.0.1 and localhost),
kept-alive connections the server closes while idle, falling back to the next address of a
host, and the order addresses are tried in.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pawatch.config.model import HttpSettings, Source
from pawatch.demo.localserver import LocalServer, Route
from pawatch.scraper.errors import TLSError
from pawatch.scraper.fetch import Fetcher
from pawatch.scraper.transport import SocketBackend

pytestmark = [pytest.mark.timeout(30), pytest.mark.anyio]

TLS = Path(__file__).parent / "fixtures" / "tls"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def http(**overrides: Any) -> HttpSettings:
    base: dict[str, Any] = {
        "user_agent": "pawatch-test/1.0",
        "per_host_delay": 0.0,
        "per_host_concurrency": 1,
        "retries": 0,
        "timeout": 5.0,
        "connect_timeout": 3.0,
        "read_timeout": 3.0,
        "respect_robots": False,
    }
    base.update(overrides)
    return HttpSettings(**base)


class _HTTPSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PageHandler)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(TLS / "server.pem", TLS / "server.key")
        self.connections = 0

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        try:
            wrapped = self.context.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError):
            sock.close()
            raise
        self.connections += 1
        return wrapped, address


class _PageHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = f"secure page {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def https() -> Iterator[_HTTPSServer]:
    server = _HTTPSServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _source(url: str, sid: str = "s", **kw: Any) -> Source:
    return Source(id=sid, url=url, parser="page", **kw)


async def test_https_with_the_sites_ca_bundle_is_fetched_over_one_kept_connection(
    https: _HTTPSServer,
) -> None:
    port = https.server_address[1]
    sources = [
        _source(f"https://127.0.0.1:{port}/{i}", f"s{i}", ca_bundle=str(TLS / "ca.pem"))
        for i in range(3)
    ]
    async with Fetcher(http(keep_alive=True), sources) as fetcher:
        bodies = [(await fetcher.fetch(s)).body for s in sources]
    assert bodies == [f"secure page /{i}".encode() for i in range(3)]
    assert https.connections == 1  # one TLS handshake served all three


async def test_https_with_an_unknown_ca_is_a_tls_error(https: _HTTPSServer) -> None:
    source = _source(f"https://127.0.0.1:{https.server_address[1]}/")
    async with Fetcher(http(), [source]) as fetcher:
        with pytest.raises(TLSError) as info:
            await fetcher.fetch(source)
    assert "certificate" in str(info.value)


async def test_a_kept_connection_the_server_closed_while_idle_is_not_reused() -> None:
    """The server answers each connection once, keep-alive style, then closes it. With no
    retries allowed, the second fetch only succeeds if the closed connection is noticed
    (it is readable at end of stream) and a new one is opened."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[int] = []

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            accepted.append(1)
            conn.recv(65536)
            body = b"once"
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\n" + body
            )
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    sources = [_source(f"http://127.0.0.1:{port}/{i}", f"s{i}") for i in range(2)]
    try:
        async with Fetcher(http(keep_alive=True), sources) as fetcher:
            first = await fetcher.fetch(sources[0])
            await asyncio.sleep(0.05)  # the server's FIN arrives
            second = await fetcher.fetch(sources[1])
    finally:
        thread.join(5)
        listener.close()
    assert (first.body, second.body) == (b"once", b"once")
    assert len(accepted) == 2


async def test_connect_falls_back_to_the_next_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """``multi.test`` resolves to a port nobody listens on (IPv6 ::1 when the machine has
    it), then to the server: the fetch succeeds through the second address."""
    with LocalServer() as server:
        server.set("/page", Route(body="found on the second address"))
        port = int(server.base_url.rsplit(":", 1)[1].rstrip("/"))
        loop = asyncio.get_running_loop()
        asked: list[str] = []

        async def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
            asked.append(host)
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]

        monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
        backend = SocketBackend()
        stream = await backend.connect_tcp("multi.test", port, timeout=3.0)
        try:
            assert stream.get_extra_info("server_addr")[:2] == ("127.0.0.1", port)
        finally:
            await stream.aclose()
        assert asked == ["multi.test"]


async def test_addresses_alternate_between_families(monkeypatch: pytest.MonkeyPatch) -> None:
    from pawatch.scraper import transport

    loop = asyncio.get_running_loop()

    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::1", port, 0, 0)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::2", port, 0, 0)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", port)),
        ]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    ordered = await transport._resolve(loop, "two.test", 80)
    assert [address[0] for _, address in ordered] == ["2001:db8::1", "192.0.2.1", "2001:db8::2"]
    assert await transport._resolve(loop, "192.0.2.7", 81) == [(socket.AF_INET, ("192.0.2.7", 81))]
