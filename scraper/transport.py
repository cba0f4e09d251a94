"""Connections for the fetcher: an httpx transport of one-connection slots per origin.

:class:`SlotTransport` is an ``httpx.AsyncBaseTransport`` (httpx's public extension point).
Each slot holds at most one connection; the fetcher's host gates bound how many slots an
origin ever has, so there is no pool to walk (httpcore's pool walks every connection on
every request and response).

* A direct slot is an ``httpcore.AsyncHTTPConnection`` on :class:`SocketBackend`, an
  ``httpcore.AsyncNetworkBackend`` (httpcore's public interface for network I/O) on plain
  non-blocking sockets and asyncio's own socket calls. The default backend goes through
  anyio's streams, cancel scopes and sniffio on every read and write: measured on loopback,
  0.96 ms of CPU per 304 through ``httpx.AsyncHTTPTransport`` against 0.45 ms here.
  TLS is asyncio's (``asyncio.open_connection(sock=..., ssl=...)``).
* A proxied slot is an ``httpx.AsyncHTTPTransport`` of one connection (proxies are rare:
  httpx's own proxy code is used as it is).

On Linux every read first sets ``TCP_QUICKACK``, so a kept-alive connection to a server
that writes headers and body in two sends without ``TCP_NODELAY`` does not wait ~40 ms
for the client's delayed ACK on every response (Nagle's algorithm holds the body back).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, NoReturn

import httpcore
import httpx

__all__ = ["SlotTransport", "SocketBackend"]

_ONE_CONNECTION = httpx.Limits(max_connections=1, max_keepalive_connections=1)
_ONE_REQUEST = httpx.Limits(max_connections=1, max_keepalive_connections=0)  # no reuse
_KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default)
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)

# httpcore's exceptions as the httpx ones httpx.AsyncHTTPTransport raises for them; the
# most derived class of an exception that is listed wins (see _raise_as_httpx).
_HTTPX_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


def _raise_as_httpx(exc: Exception) -> NoReturn:
    """Raise the httpx exception for an httpcore one, chained to it; anything else as it is.
    Call it in the ``except`` block that caught ``exc``."""
    for cls in type(exc).__mro__:
        mapped = _HTTPX_ERRORS.get(cls)
        if mapped is not None:
            raise mapped(str(exc)) from exc
    raise exc


# -- network backend ------------------------------------------------------------------------


def _quickack(sock: Any) -> Callable[[], None] | None:
    """What sets ``TCP_QUICKACK`` on ``sock`` before a read; None where there is none."""
    if _QUICKACK is None or sock is None or sock.family not in _TCP_FAMILIES:
        return None
    option = _QUICKACK

    def quickack() -> None:
        sock.setsockopt(socket.IPPROTO_TCP, option, 1)

    return quickack


def _failed(exc: OSError) -> str:
    return str(exc) or type(exc).__name__


@contextlib.asynccontextmanager
async def _bounded(
    timeout: float | None, on_timeout: type[Exception], on_error: type[Exception], doing: str
) -> AsyncIterator[None]:
    """Wait at most ``timeout`` seconds; a timeout or socket error becomes httpcore's
    ``on_timeout`` / ``on_error`` (chained to it), as httpcore's own backends raise them."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError as exc:
        raise on_timeout(f"timed out {doing}") from exc
    except OSError as exc:
        raise on_error(_failed(exc)) from exc


class _SocketStream(httpcore.AsyncNetworkStream):
    """A connected non-blocking TCP socket. Reads and writes are tried at once and only
    wait (through the event loop, bounded by ``timeout``) when the socket is not ready."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._quickack = _quickack(sock)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        sock = self._sock
        try:
            if self._quickack is not None:
                self._quickack()
            return sock.recv(max_bytes)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            raise httpcore.ReadError(_failed(exc)) from exc
        async with _bounded(timeout, httpcore.ReadTimeout, httpcore.ReadError, "reading"):
            return await self._loop.sock_recv(sock, max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        sock = self._sock
        try:
            sent = sock.send(buffer)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            raise httpcore.WriteError(_failed(exc)) from exc
        if sent == len(buffer):
            return
        async with _bounded(timeout, httpcore.WriteTimeout, httpcore.WriteError, "writing"):
            await self._loop.sock_sendall(sock, memoryview(buffer)[sent:])

    async def aclose(self) -> None:
        self._sock.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    sock=self._sock, ssl=ssl_context, server_hostname=server_hostname or ""
                )
        except TimeoutError as exc:
            self._sock.close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from exc
        except (OSError, ssl.SSLError) as exc:  # SSLError is an OSError; named for clarity
            self._sock.close()
            raise httpcore.ConnectError(_failed(exc)) from exc
        return _TLSStream(reader, writer)

    def get_extra_info(self, info: str) -> Any:
        if info == "socket":
            return self._sock
        if info == "is_readable":  # an idle connection is readable when the server closed it
            return _readable(self._sock)
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "client_addr":
            return self._sock.getsockname()
        return None


def _readable(sock: socket.socket) -> bool:
    try:
        sock.recv(1, socket.MSG_PEEK)  # data, or b"" at end of stream
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True  # broken: readable, so that the connection is dropped
    return True


class _TLSStream(httpcore.AsyncNetworkStream):
    """A TLS connection through asyncio's streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._sock = writer.get_extra_info("socket")
        self._quickack = _quickack(self._sock)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        async with _bounded(timeout, httpcore.ReadTimeout, httpcore.ReadError, "reading"):
            if self._quickack is not None:
                self._quickack()
            return await self._reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        async with _bounded(timeout, httpcore.WriteTimeout, httpcore.WriteError, "writing"):
            self._writer.write(buffer)
            await self._writer.drain()

    async def aclose(self) -> None:
        self._writer.close()  # sends close_notify when it can; never waits for the server

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self._reader.at_eof() or self._writer.is_closing()
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "socket":
            return self._sock
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        return None


class SocketBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on plain asyncio sockets (see the module docstring).

    Connecting resolves the host (an IP literal is used as it is), then tries its addresses
    in turn; each address gets an equal share of what is left of the connect timeout, the
    last one all of it. A resolver failure is raised with its ``socket.gaierror`` chained.
    """

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                addresses = await _resolve(loop, host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out resolving {host}") from exc
        except OSError as exc:  # socket.gaierror
            raise httpcore.ConnectError(str(exc)) from exc
        options = list(socket_options or ())
        error: OSError | None = None
        for index, (family, address) in enumerate(addresses):
            share = None
            if deadline is not None:
                share = loop.time() + (deadline - loop.time()) / (len(addresses) - index)
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for option in options:
                    sock.setsockopt(*option)
                if local_address is not None:
                    sock.bind((local_address, 0))
                async with asyncio.timeout_at(share):
                    await loop.sock_connect(sock, address)
            except TimeoutError as exc:
                sock.close()
                if index == len(addresses) - 1:
                    raise httpcore.ConnectTimeout(f"timed out connecting to {host}") from exc
                error = error or OSError(f"timed out connecting to {address[0]}")
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
            else:
                return _SocketStream(sock)
        assert error is not None
        raise httpcore.ConnectError(_failed(error)) from error

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[tuple[int, Any]]:
    """``(family, sockaddr)`` for each address of ``host``, IPv6 and IPv4 interleaved."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if literal.version == 6:
            return [(socket.AF_INET6, (host, port, 0, 0))]
        return [(socket.AF_INET, (host, port))]
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: set[Any] = set()
    by_family: dict[int, list[tuple[int, Any]]] = {}
    for family, _, _, _, address in infos:
        if address not in seen:
            seen.add(address)
            by_family.setdefault(family, []).append((family, address))
    queues = list(by_family.values())
    ordered: list[tuple[int, Any]] = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    if not ordered:
        raise socket.gaierror(socket.EAI_NONAME, f"no address for {host}")
    return ordered


# -- the transport --------------------------------------------------------------------------


class _Slot:
    """A direct slot: at most one connection, replaced when it can serve no more."""

    __slots__ = ("connection",)

    def __init__(self) -> None:
        self.connection: httpcore.AsyncHTTPConnection | None = None

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.aclose()
            self.connection = None


class _SlotStream(httpx.AsyncByteStream):
    """A response body that gives its slot back when closed (and closes the connection
    first when connections are not kept alive)."""

    def __init__(self, stream: Any, idle: list[Any], slot: Any, *, close: bool = False) -> None:
        self._stream = stream
        self._idle = idle
        self._slot: Any = slot
        self._close = close  # a direct slot whose connection is not kept alive

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except Exception as exc:
            _raise_as_httpx(exc)

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
            if self._close:
                await self._slot.close()
        except Exception as exc:
            _raise_as_httpx(exc)
        finally:
            if self._slot is not None:
                self._idle.append(self._slot)
                self._slot = None


class SlotTransport(httpx.AsyncBaseTransport):
    """One-connection slots per origin (scheme, host, port); see the module docstring.

    ``tls`` is called for the first slot that may need TLS, not before (loading the CA
    bundle costs 30-60 ms). ``proxy`` sends every request through httpx's proxy transport.
    """

    def __init__(
        self, tls: Callable[[], ssl.SSLContext], proxy: str | None, keep_alive: bool
    ) -> None:
        self._tls = tls
        self._proxy = proxy
        self._keep_alive = keep_alive
        self._backend = SocketBackend()
        self._idle: dict[tuple[bytes, bytes, int | None], list[Any]] = {}
        self._slots: list[Any] = []
        if proxy is not None:
            httpx.Proxy(proxy)  # a bad proxy URL fails here, when the fetcher is built

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        idle = self._idle.setdefault((url.raw_scheme, url.raw_host, url.port), [])
        if self._proxy is not None:
            return await self._via_proxy(request, idle)
        slot: _Slot = idle.pop() if idle else self._new_slot()
        try:
            connection = slot.connection
            if connection is None or not connection.is_available() or connection.has_expired():
                if connection is not None:
                    await connection.aclose()
                connection = slot.connection = httpcore.AsyncHTTPConnection(
                    httpcore.Origin(url.raw_scheme, url.raw_host, url.port or _port(url)),
                    ssl_context=self._tls() if url.raw_scheme == b"https" else None,
                    keepalive_expiry=_KEEPALIVE_EXPIRY,
                    network_backend=self._backend,
                )
            assert isinstance(request.stream, httpx.AsyncByteStream)
            response = await connection.handle_async_request(
                httpcore.Request(
                    method=request.method,
                    url=httpcore.URL(
                        scheme=url.raw_scheme,
                        host=url.raw_host,
                        port=url.port,
                        target=url.raw_path,
                    ),
                    headers=request.headers.raw,
                    content=request.stream,
                    extensions=request.extensions,
                )
            )
        except BaseException as exc:
            if slot.connection is not None and not slot.connection.is_available():
                await slot.close()  # half-used: never handed out again
            idle.append(slot)
            if isinstance(exc, Exception):
                _raise_as_httpx(exc)
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_SlotStream(response.stream, idle, slot, close=not self._keep_alive),
            extensions=response.extensions,
        )

    def _new_slot(self) -> _Slot:
        slot = _Slot()
        self._slots.append(slot)
        return slot

    async def _via_proxy(self, request: httpx.Request, idle: list[Any]) -> httpx.Response:
        slot: httpx.AsyncHTTPTransport
        if idle:
            slot = idle.pop()
        else:
            slot = httpx.AsyncHTTPTransport(
                verify=self._tls(),
                proxy=self._proxy,
                limits=_ONE_CONNECTION if self._keep_alive else _ONE_REQUEST,
                trust_env=False,
            )
            self._slots.append(slot)
        try:
            response = await slot.handle_async_request(request)
        except BaseException:
            idle.append(slot)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _SlotStream(response.stream, idle, slot)
        return response

    async def aclose(self) -> None:
        for slot in self._slots:
            await (slot.close() if isinstance(slot, _Slot) else slot.aclose())


def _port(url: httpx.URL) -> int:
    return 443 if url.raw_scheme == b"https" else 80
