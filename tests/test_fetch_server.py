"""Fetcher against a real HTTP server on 127.0.0.1 (port 0) with fault modes.

Small real timeouts and delays; each fault must end as the right typed error or success,
and must not disturb other sources fetched at the same time.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pawatch.config.model import HttpSettings, Source
from pawatch.demo.localserver import LocalServer, Route
from pawatch.scraper.charset import decode_body
from pawatch.scraper.errors import (
    ConnectionFailed,
    ConnectionRefused,
    DNSError,
    FetchTimeout,
    HTTPStatusError,
    RedirectError,
    RobotsDisallowed,
    TLSError,
    TooLarge,
)
from pawatch.scraper.fetch import Fetcher, FetchResult, Validators

pytestmark = pytest.mark.timeout(30)

RU = "Делегация Республики Таджикистан в ПА ОДКБ состоит из 12 депутатов."


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


def http(**overrides: Any) -> HttpSettings:
    base: dict[str, Any] = {
        "user_agent": "pawatch-test/1.0",
        "per_host_delay": 0.0,
        "per_host_concurrency": 4,
        "retries": 2,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "timeout": 3.0,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
    }
    base.update(overrides)
    return HttpSettings(**base)


def src(url: str, sid: str = "s", **kw: Any) -> Source:
    return Source(id=sid, url=url, parser="page", **kw)


async def fetch_one(settings: HttpSettings, source: Source, **kw: Any) -> FetchResult:
    async with Fetcher(settings, [source]) as fetcher:
        return await fetcher.fetch(source, **kw)


@pytest.mark.anyio
async def test_slow_response_past_the_deadline_times_out(server: LocalServer) -> None:
    server.set("/slow", Route(body="late", delay=2.0))
    started = time.monotonic()
    with pytest.raises(FetchTimeout) as info:
        await fetch_one(http(retries=0), src(server.url("/slow"), timeout=0.3))
    assert time.monotonic() - started < 1.5
    assert info.value.kind == "timeout" and "0.3 s" in str(info.value)


@pytest.mark.anyio
async def test_slow_body_trickle_hits_the_total_deadline(server: LocalServer) -> None:
    server.set("/trickle", Route(body="x" * 200, fault="slow_body", chunk_delay=0.1))
    with pytest.raises(FetchTimeout):
        await fetch_one(http(retries=0, timeout=0.4, read_timeout=5.0), src(server.url("/trickle")))


@pytest.mark.anyio
async def test_500_then_200_succeeds_on_the_second_attempt(server: LocalServer) -> None:
    server.set("/flaky", Route(sequence=[Route(status=500), Route(body="<p>ok</p>")]))
    result = await fetch_one(http(), src(server.url("/flaky")))
    assert result.body == b"<p>ok</p>" and result.attempts == 2
    assert server.hits("/flaky") == 2


@pytest.mark.anyio
async def test_429_with_retry_after_waits_then_succeeds(server: LocalServer) -> None:
    server.set(
        "/busy",
        Route(sequence=[Route(status=429, headers={"Retry-After": "1"}), Route(body="ok")]),
    )
    started = time.monotonic()
    result = await fetch_one(http(), src(server.url("/busy")))
    assert result.body == b"ok" and result.attempts == 2
    times = [r.time for r in server.requests if r.path == "/busy"]
    assert times[1] - times[0] >= 0.95
    assert time.monotonic() - started < 3


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["reset", "truncate"])
async def test_broken_connections_are_connection_failures(server: LocalServer, fault: str) -> None:
    server.set("/broken", Route(body="x" * 5000, fault=fault))  # type: ignore[arg-type]
    with pytest.raises(ConnectionFailed) as info:
        await fetch_one(http(retries=1), src(server.url("/broken")))
    assert info.value.kind == "connection" and info.value.attempts == 2
    assert server.hits("/broken") == 2


@pytest.mark.anyio
async def test_body_over_the_cap_stops_reading(server: LocalServer) -> None:
    server.set("/huge", Route(fault="huge", huge_size=512 * 1024 * 1024))
    with pytest.raises(TooLarge) as info:
        await fetch_one(http(max_bytes=200_000), src(server.url("/huge")))
    assert info.value.attempts == 1 and server.hits("/huge") == 1  # not retried
    await asyncio.sleep(0.2)  # let the server notice the hang-up
    assert server.bytes_sent("/huge") < 32 * 1024 * 1024  # far from the 512 MB on offer


@pytest.mark.anyio
async def test_redirect_loop(server: LocalServer) -> None:
    server.set("/loop", Route(fault="redirect_loop"))
    with pytest.raises(RedirectError) as info:
        await fetch_one(http(max_redirects=3), src(server.url("/loop")))
    assert "loop" in str(info.value)
    assert server.hits("/loop") == 4  # the first request and 3 redirects, no retries


@pytest.mark.anyio
async def test_robots_disallow_never_requests_the_page(server: LocalServer) -> None:
    server.set("/robots.txt", Route(body="User-agent: pawatch\nDisallow: /private\n"))
    server.set("/private/page", Route(body="secret"))
    server.set("/public", Route(body="hello"))
    private, public = src(server.url("/private/page"), "a"), src(server.url("/public"), "b")
    async with Fetcher(http(), [private, public]) as fetcher:
        with pytest.raises(RobotsDisallowed) as info:
            await fetcher.fetch(private)
        assert (await fetcher.fetch(public)).body == b"hello"
    assert server.hits("/private/page") == 0 and server.hits("/robots.txt") == 1
    assert info.value.kind == "robots" and "/private/page" in str(info.value)


@pytest.mark.anyio
async def test_robots_server_error_fails_the_source_as_robots(server: LocalServer) -> None:
    server.set("/robots.txt", Route(status=500))
    server.set("/page", Route(body="x"))
    with pytest.raises(RobotsDisallowed) as info:
        await fetch_one(http(retries=1), src(server.url("/page")))
    assert "robots.txt could not be fetched" in str(info.value)
    assert server.hits("/page") == 0 and server.hits("/robots.txt") == 2  # retried like a page


@pytest.mark.anyio
async def test_robots_missing_allows_everything(server: LocalServer) -> None:
    server.set("/page", Route(body="x"))
    result = await fetch_one(http(), src(server.url("/page")))
    assert result.body == b"x" and server.hits("/robots.txt") == 1


@pytest.mark.anyio
async def test_conditional_get_with_etag_gets_304(server: LocalServer) -> None:
    server.set(
        "/doc", Route(body="v1", etag='"abc"', last_modified="Mon, 02 Nov 2026 10:00:00 GMT")
    )
    source = src(server.url("/doc"))
    async with Fetcher(http(), [source]) as fetcher:
        first = await fetcher.fetch(source)
        second = await fetcher.fetch(source, Validators(first.etag, first.last_modified))
    assert first.status == 200 and first.etag == '"abc"' and first.body == b"v1"
    assert second.status == 304 and second.not_modified and second.body == b""
    assert second.etag == '"abc"'
    last = [r for r in server.requests if r.path == "/doc"][-1]
    assert last.headers["if-none-match"] == '"abc"'


@pytest.mark.anyio
async def test_304s_leave_their_connection_to_the_next_request(server: LocalServer) -> None:
    """A 304 has no body, but its end must still be read for the connection to be reused."""
    server.set("/doc", Route(body="v1", etag='"abc"'))
    source = src(server.url("/doc"))
    settings = http(per_host_concurrency=1, respect_robots=False)
    async with Fetcher(settings, [source]) as fetcher:
        first = await fetcher.fetch(source)
        statuses = [
            (await fetcher.fetch(source, Validators(first.etag, None))).status for _ in range(3)
        ]
    assert statuses == [304, 304, 304]
    assert len(server.requests) == 4 and server.connections == 1


@pytest.mark.anyio
async def test_windows_1251_without_header_charset_decodes_right(server: LocalServer) -> None:
    page = f"<html><body><p>{RU}</p></body></html>"
    server.set("/tj", Route(body=page.encode("cp1251")))  # bytes: Content-Type has no charset
    result = await fetch_one(http(), src(server.url("/tj")))
    assert result.content_type == "text/html"
    decoded = decode_body(result.body, result.content_type)
    assert decoded.text == page and decoded.encoding == "cp1251"


@pytest.mark.anyio
async def test_per_host_delay_spaces_request_starts(server: LocalServer) -> None:
    sources = [src(server.url(f"/p{i}"), f"s{i}") for i in range(4)]
    for i in range(4):
        server.set(f"/p{i}", Route(body=f"page {i}"))
    settings = http(per_host_concurrency=1, per_host_delay=0.2, respect_robots=False)
    async with Fetcher(settings, sources) as fetcher:
        await asyncio.gather(*(fetcher.fetch(s) for s in sources))
    starts = sorted(r.time for r in server.requests)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 4 and min(gaps) >= 0.17, gaps


@pytest.mark.anyio
async def test_per_host_concurrency_limit(server: LocalServer) -> None:
    sources = [src(server.url(f"/p{i}"), f"s{i}") for i in range(8)]
    for i in range(8):
        server.set(f"/p{i}", Route(body="x", delay=0.15))
    async with Fetcher(http(per_host_concurrency=2, respect_robots=False), sources) as fetcher:
        await asyncio.gather(*(fetcher.fetch(s) for s in sources))
    assert server.max_active == 2


@pytest.mark.anyio
async def test_global_concurrency_limit_across_hosts() -> None:
    with LocalServer("127.0.0.1") as one, LocalServer("127.0.0.2") as two:
        sources = []
        for n, server in enumerate((one, two)):
            for i in range(3):
                server.set(f"/p{i}", Route(body="x", delay=0.1))
                sources.append(src(server.url(f"/p{i}"), f"h{n}-{i}"))
        settings = http(per_host_concurrency=3, global_concurrency=1, respect_robots=False)
        started = time.monotonic()
        async with Fetcher(settings, sources) as fetcher:
            await asyncio.gather(*(fetcher.fetch(s) for s in sources))
        elapsed = time.monotonic() - started
        assert one.max_active == 1 and two.max_active == 1
        assert elapsed >= 0.6  # six 0.1 s requests, one at a time


@pytest.mark.anyio
async def test_one_faulty_source_does_not_disturb_the_others(server: LocalServer) -> None:
    server.set_many(
        {
            "/a": Route(body="page a"),
            "/reset": Route(fault="reset"),
            "/b": Route(body="page b", delay=0.1),
            "/gone": Route(status=404),
            "/c": Route(body="page c"),
        }
    )
    paths = ["/a", "/reset", "/b", "/gone", "/c"]
    sources = [src(server.url(p), p) for p in paths]
    async with Fetcher(http(retries=1), sources) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(s) for s in sources), return_exceptions=True)
    by_path = dict(zip(paths, results, strict=True))
    assert isinstance(by_path["/reset"], ConnectionFailed)
    assert isinstance(by_path["/gone"], HTTPStatusError) and by_path["/gone"].status == 404
    for path in ("/a", "/b", "/c"):
        result = by_path[path]
        assert isinstance(result, FetchResult) and result.body == f"page {path[1]}".encode()


@pytest.mark.anyio
async def test_refused_port_is_connection_refused() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionRefused) as info:
        await fetch_one(http(retries=1), src(f"http://127.0.0.1:{port}/"))
    assert info.value.kind == "refused" and str(port) in str(info.value)
    assert info.value.attempts == 2


@pytest.mark.anyio
@pytest.mark.parametrize("robots", [True, False])
async def test_unresolvable_host_is_dns_error(robots: bool) -> None:
    # .invalid never resolves (RFC 2606): no traffic leaves the machine
    with pytest.raises(DNSError) as info:
        await fetch_one(http(respect_robots=robots), src("http://pawatch-test.invalid/page"))
    assert info.value.kind == "dns" and "pawatch-test.invalid" in str(info.value)
    assert info.value.attempts == 1  # NXDOMAIN is not retried


@pytest.mark.anyio
async def test_per_source_proxy_is_mounted_for_that_host_only(server: LocalServer) -> None:
    # The local server acts as a plain HTTP proxy: it sees absolute URLs as request targets.
    server.set("http://via-proxy.invalid/page", Route(body="proxied"))
    proxied = src("http://via-proxy.invalid/page", "p", proxy=server.base_url)
    direct = src("http://direct.invalid/page", "d")
    async with Fetcher(http(retries=0), [proxied, direct]) as fetcher:
        result = await fetcher.fetch(proxied)
        with pytest.raises(DNSError):  # no proxy for this host: resolved locally, and fails
            await fetcher.fetch(direct)
    assert result.body == b"proxied"
    assert server.hits("http://via-proxy.invalid/robots.txt") == 1


@pytest.mark.anyio
async def test_global_proxy_from_settings(server: LocalServer) -> None:
    server.set("http://anywhere.invalid/", Route(body="global proxy"))
    result = await fetch_one(http(proxy=server.base_url), src("http://anywhere.invalid/"))
    assert result.body == b"global proxy"


@pytest.mark.anyio
async def test_unreadable_ca_bundle_fails_that_source_as_tls(tmp_path: Any) -> None:
    missing = str(tmp_path / "no-such-bundle.pem")
    source = src("https://gov.invalid/", "tls", ca_bundle=missing)
    with pytest.raises(TLSError) as info:
        await fetch_one(http(), source)
    assert "no-such-bundle.pem" in str(info.value)


@pytest.mark.anyio
async def test_connections_are_kept_alive_and_bounded_per_host(server: LocalServer) -> None:
    sources = [src(server.url(f"/p{i}"), f"s{i}") for i in range(30)]
    for i in range(30):
        server.set(f"/p{i}", Route(body=f"page {i}" * 100))
    async with Fetcher(http(per_host_concurrency=3, keep_alive=True), sources) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(s) for s in sources))
    assert [r.body for r in results] == [f"page {i}".encode() * 100 for i in range(30)]
    assert len(server.requests) == 31  # robots.txt + 30 pages
    assert server.connections <= 3  # reused, never more than the per-host limit


@pytest.mark.anyio
async def test_no_tls_context_is_built_for_plain_http(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    made: list[object] = []
    real = httpx.create_ssl_context

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    server.set("/page", Route(body="plain"))
    with socket.socket() as sock:  # a port with no listener: https to it is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    page, tls = src(server.url("/page"), "page"), src(f"https://127.0.0.1:{port}/", "tls")
    async with Fetcher(http(retries=0), [page, tls]) as fetcher:
        assert (await fetcher.fetch(page)).body == b"plain"
        assert made == []  # the CA bundle is only loaded for the first https request
        with pytest.raises(ConnectionRefused):
            await fetcher.fetch(tls)
        assert len(made) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(("keep_alive", "connections"), [(False, 4), (True, 1)])
async def test_keep_alive_decides_whether_a_connection_serves_the_next_request(
    server: LocalServer, keep_alive: bool, connections: int
) -> None:
    sources = [src(server.url(f"/p{i}"), f"s{i}") for i in range(4)]
    for i in range(4):
        server.set(f"/p{i}", Route(body=f"page {i}"))
    settings = http(per_host_concurrency=1, keep_alive=keep_alive, respect_robots=False)
    async with Fetcher(settings, sources) as fetcher:
        for s in sources:  # one after the other: a kept connection is free for the next
            assert (await fetcher.fetch(s)).status == 200
    assert len(server.requests) == 4 and server.connections == connections
