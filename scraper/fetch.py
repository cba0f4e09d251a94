"""Polite HTTP fetching: one shared ``httpx.AsyncClient`` for every source.

A :class:`Fetcher` turns a :class:`~config.model.Source` into a :class:`FetchResult` (raw
bytes, never decoded here: see :func:`scraper.charset.decode_body`) or raises one of the
:mod:`scraper.errors` classes. What it does on the way:

* politeness: a global concurrency limit, ``per_host_concurrency`` requests at a time per
  host and at least ``per_host_delay`` seconds between the starts of two requests to one host.
  Retries, redirect hops and robots.txt go through the same limits. A request waiting for its
  turn holds no global slot.
* robots.txt (RFC 9309) for every URL requested, redirect targets included, loaded once per
  origin through the same client (:mod:`scraper.robots`).
* an identifying User-Agent (per-source override), global headers with per-source headers
  merged over them, conditional GET from :class:`Validators`.
* connect/read/write/pool timeouts on the client plus a total deadline per attempt (a
  source's ``timeout`` overrides it); time spent waiting for a politeness slot is not counted.
* redirects followed by hand: at most ``max_redirects``, http and https only.
* a body-size cap checked against Content-Length and again on the decoded stream as it
  grows (gzip/deflate undone here, bounded: a compression bomb costs at most the cap).
* retries with exponential backoff and full jitter on connection errors, timeouts, 5xx, 408
  and 429, honouring ``Retry-After`` (seconds or HTTP date) up to ``retry_after_max``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from types import TracebackType

import httpx

from pawatch.config.model import HttpSettings, Source
from pawatch.scraper.errors import (
    ConnectionFailed,
    ConnectionRefused,
    DecodeError,
    DNSError,
    EmptyBody,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidURL,
    RedirectError,
    TLSError,
    TooLarge,
)
from pawatch.scraper.robots import ROBOTS_MAX_BYTES, RobotsCache, RobotsResponse
from pawatch.scraper.transport import SlotTransport

__all__ = ["FetchResult", "Fetcher", "Validators"]

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRY_STATUSES = frozenset({408, 429})
_SCHEMES = frozenset({"http", "https"})
_DRAIN_MAX = 64 * 1024
_NO_BODY_STATUSES = frozenset({101, 102, 103, 204, 304})  # RFC 9110 6.4.1: never a body
_NO_BODY = httpx.ByteStream(b"")  # immutable: shared by every GET
_HTTPX_LOG = logging.getLogger("httpx")  # AsyncClient.send logs each request here at INFO


@dataclass(frozen=True)
class Validators:
    """What the last good fetch of a source returned, sent back for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """One successful fetch. On 304, ``body`` is ``b""`` and ``not_modified`` is True.

    ``etag``/``last_modified`` are the response's validators; on a 304 that omits them, the
    ones that were sent, so they can be stored again unchanged.
    """

    source_id: str
    url: str
    final_url: str
    status: int
    not_modified: bool
    body: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    started_at: datetime
    duration: float
    attempts: int


@dataclass(frozen=True)
class _Response:
    status: int
    reason: str
    url: httpx.URL
    headers: httpx.Headers
    body: bytes  # only read for 2xx


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What ``fetch`` derives from a source, once per source per fetcher."""

    source: Source
    url: httpx.URL
    headers: httpx.Headers  # client defaults, global and per-source headers, User-Agent
    budget: float


class _HostGate:
    __slots__ = ("next_start", "semaphore")

    def __init__(self, concurrency: int) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self.next_start = 0.0


class _TransientDNSError(DNSError):
    """A temporary resolver failure (EAI_AGAIN): worth a retry, unlike NXDOMAIN."""


_RETRYABLE_ERRORS = (FetchTimeout, ConnectionFailed, ConnectionRefused, _TransientDNSError)


class _NoRetry(Exception):
    """Carries a FetchError that must not be retried (a robots.txt verdict) out of an attempt."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(str(error))
        self.error = error


class Fetcher:
    """Fetch sources politely through one shared client; use as ``async with Fetcher(...)``.

    ``sources`` must include every source that has its own ``proxy`` or ``ca_bundle``: those
    become client mounts keyed by host (``all://host``), so there is still a single client.
    ``transport`` replaces the network transport (tests); mounts are then not created.
    ``sleep`` and ``rand`` are used for retry waits and jitter, so tests need not wait.
    """

    def __init__(
        self,
        http: HttpSettings,
        sources: Sequence[Source] = (),
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._http = http
        self._sleep = sleep
        self._rand = rand
        self._global = asyncio.Semaphore(max(1, http.global_concurrency))
        self._gates: dict[str, _HostGate] = {}
        self._robots = RobotsCache(self._load_robots) if http.respect_robots else None
        # host -> (proxy, ca_bundle) mounted for it; source id -> error to raise when fetched
        self._mounted: dict[str, tuple[str | None, str | None]] = {}
        self._source_errors: dict[str, FetchError] = {}
        self._tls: ssl.SSLContext | None = None
        self._prepared: dict[str, _Prepared] = {}
        mounts: dict[str, httpx.AsyncBaseTransport] = {}
        self._custom_transport = transport is not None
        if transport is None:
            transport = self._transport(http.proxy, http.ca_bundle)
            mounts = self._mounts(sources)
        # The fetcher routes requests itself (public handle_async_request): every mount is
        # "all://host" and built here, so a host's transport is its mount or the default one.
        self._default_transport = transport
        self._routes: dict[str, httpx.AsyncBaseTransport] = {
            pattern.removeprefix("all://"): mount for pattern, mount in mounts.items()
        }
        self._client = httpx.AsyncClient(
            transport=transport,
            mounts=dict(mounts),
            headers={
                "User-Agent": http.user_agent,
                "Accept-Encoding": _ACCEPT_ENCODING,
                **http.headers,
            },
            timeout=httpx.Timeout(
                connect=http.connect_timeout,
                read=http.read_timeout,
                write=http.read_timeout,
                pool=http.connect_timeout,
            ),
            follow_redirects=False,
            trust_env=False,  # proxies and CA bundles come from the config, not the environment
        )
        self._base_headers = httpx.Headers(self._client.headers)  # what build_request merges
        self._timeouts = self._client.timeout.as_dict()

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client and its connections."""
        if self._robots is not None:
            self._robots.cancel_pending()
        await self._client.aclose()

    # -- public -------------------------------------------------------------------------

    async def fetch(self, source: Source, validators: Validators | None = None) -> FetchResult:
        """Fetch ``source`` once (with retries); raise a FetchError subclass on failure."""
        started_at = datetime.now(UTC)
        t0 = time.monotonic()
        prepared = self._prepare(source)
        url = prepared.url
        headers = prepared.headers
        conditional = False
        if validators is not None and (validators.etag or validators.last_modified):
            headers = httpx.Headers(headers)  # a copy: the prepared one is shared
            if validators.etag:
                headers["If-None-Match"] = validators.etag
                conditional = True
            if validators.last_modified:
                headers["If-Modified-Since"] = validators.last_modified
                conditional = True

        response, attempts = await self._request(
            url, headers, budget=prepared.budget, limit=self._http.max_bytes, truncate=False
        )
        final = str(response.url)
        status = response.status
        etag = response.headers.get("etag")
        last_modified = response.headers.get("last-modified")
        if status == 304 and conditional:
            assert validators is not None
            return FetchResult(
                source_id=source.id,
                url=source.url,
                final_url=final,
                status=status,
                not_modified=True,
                body=b"",
                content_type=response.headers.get("content-type"),
                etag=etag or validators.etag,
                last_modified=last_modified or validators.last_modified,
                started_at=started_at,
                duration=time.monotonic() - t0,
                attempts=attempts,
            )
        if not 200 <= status < 300:
            if status in _REDIRECT_STATUSES:
                message = f"{final} answered HTTP {status} without a Location header"
                raise RedirectError(message, url=final, status=status, attempts=attempts)
            raise HTTPStatusError(
                _status_message(response), url=final, status=status, attempts=attempts
            )
        if not response.body:
            raise EmptyBody(
                f"{final} answered HTTP {status} with an empty body",
                url=final,
                status=status,
                attempts=attempts,
            )
        return FetchResult(
            source_id=source.id,
            url=source.url,
            final_url=final,
            status=status,
            not_modified=False,
            body=response.body,
            content_type=response.headers.get("content-type"),
            etag=etag,
            last_modified=last_modified,
            started_at=started_at,
            duration=time.monotonic() - t0,
            attempts=attempts,
        )

    def _prepare(self, source: Source) -> _Prepared:
        """The parsed URL, merged headers and deadline of ``source``, derived once."""
        prepared = self._prepared.get(source.id)
        if prepared is not None and (prepared.source is source or prepared.source == source):
            return prepared
        url = _parse_url(source.url)
        self._check_source(source, url)
        headers = self._base_headers
        if source.headers or source.user_agent:
            extra = dict(source.headers)
            if source.user_agent:
                extra["User-Agent"] = source.user_agent
            headers = httpx.Headers(headers)
            headers.update(extra)
        budget = source.timeout if source.timeout is not None else self._http.timeout
        prepared = _Prepared(source, url, headers, budget)
        self._prepared[source.id] = prepared
        return prepared

    # -- retries ------------------------------------------------------------------------

    def backoff(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (1-based): full jitter, capped."""
        http = self._http
        ceiling = min(http.backoff_max, http.backoff_base * 2.0 ** (attempt - 1))
        return self._rand() * ceiling

    async def _request(
        self,
        url: httpx.URL,
        headers: httpx.Headers,
        *,
        budget: float,
        limit: int,
        truncate: bool,
        robots: bool = True,
    ) -> tuple[_Response, int]:
        """GET ``url`` with retries. Returns the final response (success, 304, or a status
        that is not retried) and the number of attempts; raises FetchError otherwise."""
        retries = max(0, self._http.retries)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._attempt(url, headers, budget, limit, truncate, robots)
            except _NoRetry as verdict:
                raise verdict.error from None
            except FetchError as exc:
                exc.attempts = attempt
                if attempt > retries or not isinstance(exc, _RETRYABLE_ERRORS):
                    raise
                wait = self.backoff(attempt)
            else:
                status = response.status
                if status < 500 and status not in _RETRY_STATUSES:
                    return response, attempt
                message = _status_message(response)
                final = str(response.url)
                retry_after = _parse_retry_after(response.headers.get("retry-after"))
                if retry_after is not None and retry_after > self._http.retry_after_max:
                    raise HTTPStatusError(
                        f"{message}; Retry-After asks for {retry_after:.0f} s, more than "
                        f"retry_after_max ({self._http.retry_after_max:g} s): giving up",
                        url=final,
                        status=status,
                        attempts=attempt,
                    )
                if attempt > retries:
                    raise HTTPStatusError(message, url=final, status=status, attempts=attempt)
                wait = retry_after if retry_after is not None else self.backoff(attempt)
            await self._sleep(wait)

    async def _attempt(
        self,
        url: httpx.URL,
        headers: httpx.Headers,
        budget: float,
        limit: int,
        truncate: bool,
        robots: bool,
    ) -> _Response:
        """One attempt: the request and its redirects, within ``budget`` seconds in total."""
        visited = [url]
        remaining = budget
        while True:
            if robots and self._robots is not None:
                try:
                    await self._robots.check(url)
                except FetchError as exc:
                    raise _NoRetry(exc) from None
            response, elapsed = await self._hop(url, headers, remaining, budget, limit, truncate)
            remaining -= elapsed
            location = response.headers.get("location")
            if response.status not in _REDIRECT_STATUSES or not location:
                return response
            try:
                target = url.join(location)
            except (httpx.InvalidURL, ValueError) as exc:
                raise RedirectError(
                    f"{url} redirects to an invalid URL {location!r}: {exc}",
                    url=str(url),
                    status=response.status,
                ) from None
            if target.scheme not in _SCHEMES or not target.host:
                raise RedirectError(
                    f"{url} redirects to {target}: only http(s) URLs are followed",
                    url=str(url),
                    status=response.status,
                )
            if len(visited) > self._http.max_redirects:
                if target in visited:
                    chain = " -> ".join(str(u) for u in [*visited[-3:], target])
                    message = f"redirect loop: {chain}"
                else:
                    message = (
                        f"too many redirects from {visited[0]} "
                        f"(more than {self._http.max_redirects})"
                    )
                raise RedirectError(message, url=str(url), status=response.status)
            visited.append(target)
            url = target

    # -- one HTTP exchange --------------------------------------------------------------

    async def _hop(
        self,
        url: httpx.URL,
        headers: httpx.Headers,
        remaining: float,
        budget: float,
        limit: int,
        truncate: bool,
    ) -> tuple[_Response, float]:
        gate = self._gates.get(url.host)
        if gate is None:
            gate = self._gates[url.host] = _HostGate(max(1, self._http.per_host_concurrency))
        async with gate.semaphore:
            await self._take_turn(gate)
            loop = asyncio.get_running_loop()
            start = loop.time()
            try:
                async with asyncio.timeout(remaining):
                    response = await self._exchange(url, headers, limit, truncate)
            except TimeoutError:
                raise FetchTimeout(
                    f"{url} did not complete within the {budget:g} s deadline", url=str(url)
                ) from None
            finally:
                self._global.release()
            return response, loop.time() - start

    async def _take_turn(self, gate: _HostGate) -> None:
        """Wait until this host may start a request and take a global slot (caller releases)."""
        loop = asyncio.get_running_loop()
        while True:
            wait = gate.next_start - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await self._global.acquire()
            if gate.next_start > loop.time():  # another request to this host went first
                self._global.release()
                continue
            gate.next_start = loop.time() + self._http.per_host_delay
            return

    async def _exchange(
        self, url: httpx.URL, headers: httpx.Headers, limit: int, truncate: bool
    ) -> _Response:
        try:
            response = await self._send(url, headers)
            try:
                status = response.status_code
                body = b""
                if 200 <= status < 300:
                    body = await _read_body(response, limit, truncate)
                elif _small(response):
                    await _drain(response)
                return _Response(
                    status, response.reason_phrase, response.url, response.headers, body
                )
            finally:
                await response.aclose()
        except FetchError:
            raise
        except Exception as exc:
            raise _map_error(exc, url) from exc

    async def _send(self, url: httpx.URL, headers: httpx.Headers) -> httpx.Response:
        """``client.send(client.build_request("GET", url, headers=...), stream=True)``
        without the layers the fetcher does not use (the client's redirects, auth flow,
        event hooks, URL and header merging per request): ~0.2 ms CPU per request.

        Kept from ``send``: the closed-client check, Basic auth from the URL's userinfo,
        the client's cookie jar (sent, and updated from Set-Cookie), the client's
        timeouts, routing through the client's mounts, the ``httpx`` INFO log line.
        """
        client = self._client
        if client.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        if "host" not in headers:  # what Request() adds, first; a source's own Host is kept
            headers = httpx.Headers([(b"Host", url.netloc), *headers.raw])
        # stream=: skips Request's body encoding and header re-preparation (~30 us); read()
        # then sets .content to b"" as for a request built without a stream.
        request = httpx.Request(
            "GET", url, headers=headers, stream=_NO_BODY, extensions={"timeout": self._timeouts}
        )
        request.read()
        if url.userinfo and (url.username or url.password):
            next(httpx.BasicAuth(url.username, url.password).auth_flow(request))
        cookies = client.cookies
        if cookies:
            cookies.set_cookie_header(request)
        transport = self._routes.get(url.host, self._default_transport)
        response = await transport.handle_async_request(request)
        response.request = request
        try:
            if "set-cookie" in response.headers or "set-cookie2" in response.headers:
                cookies.extract_cookies(response)  # a no-op without them, but not a cheap one
            if _HTTPX_LOG.isEnabledFor(logging.INFO):
                _HTTPX_LOG.info(
                    'HTTP Request: %s %s "%s %d %s"',
                    request.method,
                    request.url,
                    response.http_version,
                    response.status_code,
                    response.reason_phrase,
                )
        except BaseException:
            await response.aclose()  # gives the connection slot back
            raise
        return response

    # -- robots.txt ---------------------------------------------------------------------

    async def _load_robots(self, robots_url: str) -> RobotsResponse:
        response, _ = await self._request(
            httpx.URL(robots_url),
            self._base_headers,
            budget=self._http.timeout,
            limit=ROBOTS_MAX_BYTES,
            truncate=True,
            robots=False,
        )
        return RobotsResponse(response.status, response.body)

    # -- per-source transports ----------------------------------------------------------

    def _transport(self, proxy: str | None, ca_bundle: str | None) -> SlotTransport:
        if ca_bundle:
            if os.path.isdir(ca_bundle):
                context = ssl.create_default_context(capath=ca_bundle)
            else:
                context = ssl.create_default_context(cafile=ca_bundle)
            return SlotTransport(lambda: context, proxy or None, self._http.keep_alive)
        return SlotTransport(self._default_tls, proxy or None, self._http.keep_alive)

    def _default_tls(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = httpx.create_ssl_context(trust_env=False)
        return self._tls

    def _mounts(self, sources: Sequence[Source]) -> dict[str, httpx.AsyncBaseTransport]:
        mounts: dict[str, httpx.AsyncBaseTransport] = {}
        for source in sources:
            if not (source.proxy or source.ca_bundle):
                continue
            host = source.host
            spec = (source.proxy or self._http.proxy, source.ca_bundle or self._http.ca_bundle)
            if host in self._mounted:
                if self._mounted[host] != spec:
                    self._source_errors[source.id] = ConnectionFailed(
                        f"source {source.id!r} asks for a proxy/CA bundle for {host} that "
                        "differs from another source on the same host",
                        url=source.url,
                    )
                continue
            self._mounted[host] = spec
            try:
                mounts[f"all://{host}"] = self._transport(*spec)
            except (OSError, ssl.SSLError) as exc:
                self._source_errors[source.id] = TLSError(
                    f"cannot load CA bundle {spec[1]!r} for {host}: {exc}", url=source.url
                )
            except (ValueError, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                self._source_errors[source.id] = ConnectionFailed(
                    f"bad proxy {spec[0]!r} for {host}: {exc}", url=source.url
                )
        return mounts

    def _check_source(self, source: Source, url: httpx.URL) -> None:
        error = self._source_errors.get(source.id)
        if error is not None:
            raise type(error)(error.message, url=error.url)
        if self._custom_transport or not (source.proxy or source.ca_bundle):
            return
        if url.host not in self._mounted:
            raise ValueError(
                f"source {source.id!r} has its own proxy or ca_bundle: pass it to Fetcher(...)"
            )


# -- helpers ------------------------------------------------------------------------------


def _parse_url(raw: str) -> httpx.URL:
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise InvalidURL(f"invalid URL {raw!r}: {exc}", url=raw) from None
    if url.scheme not in _SCHEMES or not url.host:
        raise InvalidURL(f"invalid URL {raw!r}: need an absolute http(s) URL", url=raw)
    return url


class _Decoder:
    """Undoes a body's Content-Encoding (identity, gzip, deflate; chained) without ever
    holding more than ``limit`` + 1 decoded bytes from one network chunk: the cap applies to
    the decompressed stream as it grows, so a compression bomb costs at most ``limit``."""

    def __init__(self, encoding: str | None, url: str) -> None:
        self._url = url
        self._stages: list[_Stage] = []
        for name in reversed([e.strip().lower() for e in (encoding or "").split(",")]):
            if name in ("", "identity"):
                continue
            if name not in _ENCODINGS:
                raise DecodeError(f"{url} sent an unsupported Content-Encoding {name!r}", url=url)
            self._stages.append(_Stage(name))

    def decode(self, data: bytes, room: int) -> bytes:
        """``data`` decoded: at most ``room`` + 1 bytes (more than ``room`` means too large)."""
        try:
            for stage in self._stages:
                data = stage.decode(data, room)
        except zlib.error as exc:
            raise DecodeError(
                f"cannot decode the content encoding of {self._url}: {exc}", url=self._url
            ) from None
        return data

    def flush(self, room: int) -> bytes:
        data = b""
        try:
            for stage in self._stages:
                data = stage.decode(data, room) + stage.flush(room)
        except zlib.error as exc:
            raise DecodeError(
                f"cannot decode the content encoding of {self._url}: {exc}", url=self._url
            ) from None
        return data

    def check_complete(self) -> None:
        """Raise DecodeError unless every compressed stream ended, and nothing followed: a
        body cut short would otherwise read as a page that lost its end (members removed)."""
        for stage in self._stages:
            if not stage.complete():
                raise DecodeError(
                    f"the {stage.name}-compressed body of {self._url} is cut short or has data "
                    "after its end",
                    url=self._url,
                )


_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})
_ACCEPT_ENCODING = "gzip, deflate"  # what _Decoder can bound; br and zstd are not asked for


class _Stage:
    __slots__ = ("_first", "_name", "_z")

    def __init__(self, name: str) -> None:
        self._name = name
        self._first = True
        wbits = zlib.MAX_WBITS | 16 if name != "deflate" else zlib.MAX_WBITS
        self._z = zlib.decompressobj(wbits)

    def decode(self, data: bytes, room: int) -> bytes:
        if not data:
            return b""
        if self._first and self._name == "deflate":
            self._first = False
            try:  # "deflate" is zlib-wrapped by the RFC, raw in practice (httpx does the same)
                return self._bounded(data, room)
            except zlib.error:
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._bounded(data, room)

    def _bounded(self, data: bytes, room: int) -> bytes:
        out = self._z.decompress(data, room + 1)
        if len(out) <= room and self._z.unconsumed_tail:
            parts = [out]
            size = len(out)
            while self._z.unconsumed_tail and size <= room:
                more = self._z.decompress(self._z.unconsumed_tail, room + 1 - size)
                if not more:
                    break
                parts.append(more)
                size += len(more)
            out = b"".join(parts)
        return out

    def flush(self, room: int) -> bytes:
        return self._bounded(b"", room) if self._z.unconsumed_tail else self._z.flush(room + 1)

    @property
    def name(self) -> str:
        return self._name

    def complete(self) -> bool:
        """The compressed stream ended, with nothing after it."""
        return self._z.eof and not self._z.unused_data


async def _read_body(response: httpx.Response, limit: int, truncate: bool) -> bytes:
    """Read the body, at most ``limit`` decoded bytes: TooLarge beyond (announced, or counted
    on the decompressed stream as it grows), or cut short if ``truncate``."""
    url = str(response.url)
    length = response.headers.get("content-length")
    if not truncate and length is not None and length.isdigit() and int(length) > limit:
        raise TooLarge(
            f"{url} announces {int(length)} bytes, more than max_bytes ({limit})",
            url=url,
            status=response.status_code,
        )
    if response.is_stream_consumed:  # built in memory (a mock transport): already decoded
        body = response.content
        if len(body) > limit and not truncate:
            raise TooLarge(
                f"{url} sent more than max_bytes ({limit} bytes)",
                url=url,
                status=response.status_code,
            )
        return body[:limit]
    decoder = _Decoder(response.headers.get("content-encoding"), url)
    chunks: list[bytes] = []
    size = 0
    raw = response.aiter_raw()
    while True:
        try:
            data = await anext(raw)
        except StopAsyncIteration:
            chunk = decoder.flush(limit - size)
            last = True
        else:
            chunk = decoder.decode(data, limit - size)
            last = False
        size += len(chunk)
        if size > limit:
            if truncate:
                chunks.append(chunk[: len(chunk) - (size - limit)])
                break
            raise TooLarge(
                f"{url} sent more than max_bytes ({limit} bytes) once decoded; stopped reading",
                url=url,
                status=response.status_code,
            )
        if chunk:
            chunks.append(chunk)
        if last:
            decoder.check_complete()
            break
    return b"".join(chunks)


async def _drain(response: httpx.Response) -> None:
    """Read and drop a short error/redirect body without decoding it: keeps keep-alive."""
    if response.is_stream_consumed:
        return
    async for _ in response.aiter_raw():
        pass


def _small(response: httpx.Response) -> bool:
    """A body worth reading to the end so the connection can serve the next request: one
    that cannot exist (304, 204, 1xx: reading it only takes the end of the message) or that
    announces at most ``_DRAIN_MAX`` bytes."""
    if response.status_code in _NO_BODY_STATUSES:
        return True
    length = response.headers.get("content-length")
    return length is not None and length.isdigit() and int(length) <= _DRAIN_MAX


def _status_message(response: _Response) -> str:
    reason = response.reason
    if not reason:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
    return f"HTTP {response.status} {reason}".rstrip() + f" from {response.url}"


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _map_error(exc: Exception, url: httpx.URL) -> FetchError:
    """The FetchError for an exception raised by httpx (or the socket layer below it)."""
    where = str(url)
    host = url.host
    if isinstance(exc, httpx.TimeoutException):
        what = {
            httpx.ConnectTimeout: f"timed out connecting to {host}",
            httpx.ReadTimeout: f"timed out reading from {where}",
            httpx.WriteTimeout: f"timed out sending to {where}",
            httpx.PoolTimeout: f"timed out waiting for a free connection to {host}",
        }.get(type(exc), f"timed out fetching {where}")
        return FetchTimeout(what, url=where)
    if isinstance(exc, httpx.DecodingError):
        return DecodeError(f"cannot decode the content encoding of {where}: {exc}", url=where)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return InvalidURL(f"cannot request {where}: {exc}", url=where)
    if isinstance(exc, httpx.ProxyError):
        return ConnectionFailed(f"proxy failed for {where}: {exc}", url=where)
    chain = _causes(exc)
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            reason = cause.strerror or str(cause)
            if cause.errno == socket.EAI_AGAIN:
                return _TransientDNSError(f"cannot resolve {host}: {reason}", url=where)
            return DNSError(f"cannot resolve {host}: {reason}", url=where)
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or str(cause)
            return TLSError(f"TLS certificate of {host} rejected: {reason}", url=where)
        if isinstance(cause, ssl.SSLError):
            return TLSError(f"TLS error with {host}: {cause.reason or cause}", url=where)
        if isinstance(cause, ConnectionRefusedError):
            port = url.port or (443 if url.scheme == "https" else 80)
            return ConnectionRefused(f"connection to {host}:{port} refused", url=where)
        if isinstance(cause, ConnectionResetError):
            return ConnectionFailed(f"connection reset by {host} while fetching {where}", url=where)
    if isinstance(exc, httpx.RemoteProtocolError):
        return ConnectionFailed(f"{host} broke the connection for {where}: {exc}", url=where)
    if isinstance(exc, httpx.ConnectError):
        return ConnectionFailed(f"cannot connect to {host}: {exc}", url=where)
    if isinstance(exc, httpx.TransportError):
        return ConnectionFailed(f"network error fetching {where}: {exc}", url=where)
    return ConnectionFailed(f"error fetching {where}: {type(exc).__name__}: {exc}", url=where)
