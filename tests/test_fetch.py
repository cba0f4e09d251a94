"""Fetcher request/response rules, against respx (no sockets, no real waits)."""

from __future__ import annotations

import asyncio
import email.utils
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from pawatch.config.model import HttpSettings, Source
from pawatch.scraper.errors import (
    ConnectionFailed,
    DNSError,
    EmptyBody,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidURL,
    RedirectError,
    RobotsDisallowed,
    TooLarge,
)
from pawatch.scraper.fetch import Fetcher, FetchResult, Validators

BASE = "https://pacsto.test"
PAGE = f"{BASE}/countries/kyrgyz"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Sleeps(list[float]):
    """An injected ``sleep`` that records what it was asked to wait and returns at once."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def router() -> respx.Router:
    router = respx.Router(assert_all_mocked=True)
    router.get(f"{BASE}/robots.txt").respond(404)
    return router


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def settings(**overrides: Any) -> HttpSettings:
    base: dict[str, Any] = {
        "user_agent": "pawatch-test/1.0 (+mailto:ops@example.org)",
        "per_host_delay": 0.0,
        "retries": 3,
        "backoff_base": 0.5,
        "backoff_max": 10.0,
        "retry_after_max": 60.0,
    }
    base.update(overrides)
    return HttpSettings(**base)


def source(url: str = PAGE, **kw: Any) -> Source:
    return Source(id=kw.pop("id", "kg"), url=url, parser="page", **kw)


async def fetch(
    router: respx.Router,
    src: Source | None = None,
    validators: Validators | None = None,
    *,
    sleeps: Sleeps | None = None,
    rand: Callable[[], float] = lambda: 1.0,
    **http: Any,
) -> FetchResult:
    transport = httpx.MockTransport(router.async_handler)
    async with Fetcher(
        settings(**http),
        transport=transport,
        sleep=sleeps if sleeps is not None else Sleeps(),
        rand=rand,
    ) as fetcher:
        return await fetcher.fetch(src or source(), validators)


# -- request headers --------------------------------------------------------------------


@pytest.mark.anyio
async def test_sends_identifying_user_agent_and_global_headers(router: respx.Router) -> None:
    route = router.get(PAGE).respond(200, html="<p>ok</p>")
    result = await fetch(router, headers={"Accept-Language": "en"})
    request = route.calls.last.request
    assert request.headers["user-agent"] == "pawatch-test/1.0 (+mailto:ops@example.org)"
    assert request.headers["accept-language"] == "en"
    assert "if-none-match" not in request.headers
    assert result.body == b"<p>ok</p>"
    assert result.status == 200 and not result.not_modified and result.attempts == 1
    assert result.final_url == PAGE and result.source_id == "kg"
    assert result.content_type is not None and result.content_type.startswith("text/html")
    assert result.started_at.tzinfo is not None and result.duration >= 0


@pytest.mark.anyio
async def test_per_source_user_agent_and_headers_override_global(router: respx.Router) -> None:
    route = router.get(PAGE).respond(200, text="ok")
    src = source(user_agent="Mozilla/5.0 (browser-like)", headers={"accept-language": "ru"})
    await fetch(router, src, headers={"Accept-Language": "en", "X-Global": "1"})
    request = route.calls.last.request
    assert request.headers["user-agent"] == "Mozilla/5.0 (browser-like)"
    assert request.headers.get_list("accept-language") == ["ru"]
    assert request.headers["x-global"] == "1"


@pytest.mark.anyio
async def test_conditional_get_sends_validators_and_304_is_not_modified(
    router: respx.Router,
) -> None:
    route = router.get(PAGE).respond(304, headers={"ETag": '"v2"'})
    validators = Validators(etag='"v1"', last_modified="Wed, 21 Oct 2026 07:28:00 GMT")
    result = await fetch(router, validators=validators)
    request = route.calls.last.request
    assert request.headers["if-none-match"] == '"v1"'
    assert request.headers["if-modified-since"] == "Wed, 21 Oct 2026 07:28:00 GMT"
    assert result.not_modified and result.status == 304 and result.body == b""
    assert result.etag == '"v2"'  # the response's validator wins
    assert result.last_modified == "Wed, 21 Oct 2026 07:28:00 GMT"  # kept from the request


@pytest.mark.anyio
async def test_validators_from_response_are_returned(router: respx.Router) -> None:
    router.get(PAGE).respond(
        200, text="x", headers={"ETag": 'W/"abc"', "Last-Modified": "Mon, 02 Nov 2026 10:00:00 GMT"}
    )
    result = await fetch(router)
    assert (result.etag, result.last_modified) == ('W/"abc"', "Mon, 02 Nov 2026 10:00:00 GMT")


@pytest.mark.anyio
async def test_304_to_an_unconditional_request_is_an_error(router: respx.Router) -> None:
    router.get(PAGE).respond(304)
    with pytest.raises(HTTPStatusError) as info:
        await fetch(router)
    assert info.value.status == 304


# -- retries ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_500_then_200_is_retried(router: respx.Router, sleeps: Sleeps) -> None:
    router.get(PAGE).mock(side_effect=[httpx.Response(500), httpx.Response(200, text="ok")])
    result = await fetch(router, sleeps=sleeps)
    assert result.body == b"ok" and result.attempts == 2
    assert sleeps == [0.5]


@pytest.mark.anyio
async def test_503_every_time_gives_up_after_retries(router: respx.Router, sleeps: Sleeps) -> None:
    route = router.get(PAGE).respond(503)
    with pytest.raises(HTTPStatusError) as info:
        await fetch(router, sleeps=sleeps, retries=3)
    err = info.value
    assert route.call_count == 4 and err.attempts == 4 and err.status == 503
    assert err.kind == "http_status"
    assert "503 Service Unavailable" in str(err) and "4 attempts" in str(err)
    assert len(sleeps) == 3


@pytest.mark.anyio
async def test_429_retry_after_seconds_is_honoured(router: respx.Router, sleeps: Sleeps) -> None:
    router.get(PAGE).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, text="ok"),
        ]
    )
    result = await fetch(router, sleeps=sleeps)
    assert result.attempts == 2 and sleeps == [7.0]


@pytest.mark.anyio
async def test_503_retry_after_http_date_is_honoured(router: respx.Router, sleeps: Sleeps) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    header = email.utils.format_datetime(when, usegmt=True)
    router.get(PAGE).mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": header}),
            httpx.Response(200, text="ok"),
        ]
    )
    result = await fetch(router, sleeps=sleeps)
    assert result.attempts == 2
    assert len(sleeps) == 1 and 27.0 <= sleeps[0] <= 30.0


@pytest.mark.anyio
async def test_retry_after_longer_than_the_limit_gives_up(
    router: respx.Router, sleeps: Sleeps
) -> None:
    route = router.get(PAGE).respond(429, headers={"Retry-After": "3600"})
    with pytest.raises(HTTPStatusError) as info:
        await fetch(router, sleeps=sleeps, retry_after_max=300)
    assert route.call_count == 1 and sleeps == []
    assert info.value.status == 429 and info.value.attempts == 1
    assert "giving up" in str(info.value) and "3600" in str(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 403, 404, 410])
async def test_other_4xx_are_not_retried(router: respx.Router, sleeps: Sleeps, status: int) -> None:
    route = router.get(PAGE).respond(status)
    with pytest.raises(HTTPStatusError) as info:
        await fetch(router, sleeps=sleeps)
    assert route.call_count == 1 and sleeps == []
    assert info.value.status == status and info.value.attempts == 1
    assert str(status) in str(info.value) and PAGE in str(info.value)


@pytest.mark.anyio
async def test_408_is_retried(router: respx.Router, sleeps: Sleeps) -> None:
    router.get(PAGE).mock(side_effect=[httpx.Response(408), httpx.Response(200, text="ok")])
    result = await fetch(router, sleeps=sleeps)
    assert result.attempts == 2 and len(sleeps) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ConnectError("connection reset"), ConnectionFailed),
        (httpx.ReadTimeout("slow"), FetchTimeout),
        (httpx.RemoteProtocolError("peer closed connection"), ConnectionFailed),
    ],
)
async def test_connection_errors_are_retried_then_reported(
    router: respx.Router, sleeps: Sleeps, exc: Exception, error: type[FetchError]
) -> None:
    route = router.get(PAGE).mock(side_effect=[exc, httpx.Response(200, text="ok")])
    result = await fetch(router, sleeps=sleeps)
    assert result.attempts == 2 and route.call_count == 2
    route.mock(side_effect=exc)
    with pytest.raises(error) as info:
        await fetch(router, sleeps=sleeps, retries=1)
    assert info.value.attempts == 2


class _NoSuchHost(httpx.AsyncBaseTransport):
    """Fails like the real transport does for NXDOMAIN (respx would drop the cause chain)."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as cause:
            raise httpx.ConnectError(str(cause), request=request) from cause


@pytest.mark.anyio
async def test_name_resolution_failure_is_not_retried(sleeps: Sleeps) -> None:
    transport = _NoSuchHost()
    async with Fetcher(settings(respect_robots=False), transport=transport, sleep=sleeps) as f:
        with pytest.raises(DNSError) as info:
            await f.fetch(source())
    assert transport.calls == 1 and sleeps == []
    assert info.value.kind == "dns" and "pacsto.test" in str(info.value)


@pytest.mark.anyio
async def test_backoff_grows_exponentially_with_full_jitter(router: respx.Router) -> None:
    router.get(PAGE).respond(500)
    sleeps = Sleeps()
    with pytest.raises(HTTPStatusError):
        await fetch(router, sleeps=sleeps, rand=lambda: 1.0, retries=5, backoff_max=5.0)
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 5.0]  # ceilings: base * 2**n, capped at backoff_max

    values = iter([0.25, 0.9, 0.0, 0.5])
    sleeps = Sleeps()
    with pytest.raises(HTTPStatusError):
        await fetch(router, sleeps=sleeps, rand=lambda: next(values), retries=4)
    ceilings = [0.5, 1.0, 2.0, 4.0]
    assert sleeps == pytest.approx([0.125, 0.9, 0.0, 2.0])
    assert all(0.0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))


# -- bodies -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_200_with_empty_body_is_a_failed_fetch(router: respx.Router) -> None:
    router.get(PAGE).respond(200, content=b"")
    with pytest.raises(EmptyBody) as info:
        await fetch(router)
    assert info.value.kind == "empty" and info.value.status == 200


@pytest.mark.anyio
async def test_announced_content_length_over_the_cap(router: respx.Router) -> None:
    router.get(PAGE).respond(200, content=b"x" * 2000)
    with pytest.raises(TooLarge) as info:
        await fetch(router, max_bytes=1000)
    assert "2000" in str(info.value) and info.value.kind == "too_large"


@pytest.mark.anyio
async def test_streamed_body_over_the_cap_stops_reading(router: respx.Router) -> None:
    produced: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(1000):
            produced.append(1)
            yield b"y" * 1000

    router.get(PAGE).mock(return_value=httpx.Response(200, content=chunks()))
    with pytest.raises(TooLarge):
        await fetch(router, max_bytes=5000)
    assert len(produced) < 10  # stopped right after the cap, not at the end of the stream


# -- redirects --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_redirect_is_followed_and_final_url_reported(router: respx.Router) -> None:
    router.get(PAGE).respond(301, headers={"Location": "/countries/kyrgyz-republic"})
    router.get(f"{BASE}/countries/kyrgyz-republic").respond(200, text="moved")
    result = await fetch(router)
    assert result.final_url == f"{BASE}/countries/kyrgyz-republic"
    assert result.url == PAGE and result.body == b"moved"


@pytest.mark.anyio
async def test_redirect_limit(router: respx.Router) -> None:
    for i in range(5):
        router.get(f"{BASE}/r{i}").respond(302, headers={"Location": f"/r{i + 1}"})
    router.get(f"{BASE}/r5").respond(200, text="end")
    ok = await fetch(router, source(f"{BASE}/r0"), max_redirects=5)
    assert ok.body == b"end"
    with pytest.raises(RedirectError) as info:
        await fetch(router, source(f"{BASE}/r0"), max_redirects=4)
    assert "too many redirects" in str(info.value) and info.value.kind == "redirect"


@pytest.mark.anyio
async def test_redirect_loop(router: respx.Router, sleeps: Sleeps) -> None:
    router.get(f"{BASE}/a").respond(302, headers={"Location": f"{BASE}/b"})
    router.get(f"{BASE}/b").respond(302, headers={"Location": f"{BASE}/a"})
    with pytest.raises(RedirectError) as info:
        await fetch(router, source(f"{BASE}/a"), sleeps=sleeps)
    assert "loop" in str(info.value) and sleeps == []


@pytest.mark.anyio
async def test_redirect_to_ftp_is_refused(router: respx.Router) -> None:
    router.get(PAGE).respond(302, headers={"Location": "ftp://pacsto.test/file.txt"})
    with pytest.raises(RedirectError) as info:
        await fetch(router)
    assert "ftp://" in str(info.value) and "http(s)" in str(info.value)


@pytest.mark.anyio
async def test_redirect_to_an_unparsable_location_is_a_redirect_error(
    router: respx.Router, sleeps: Sleeps
) -> None:
    route = router.get(PAGE).respond(302, headers={"Location": "http://[::1"})
    with pytest.raises(RedirectError) as info:
        await fetch(router, sleeps=sleeps)
    assert "invalid URL" in str(info.value) and info.value.attempts == 1
    assert route.call_count == 1 and sleeps == []  # the server's answer: not retried


@pytest.mark.anyio
@pytest.mark.parametrize("url", ["ftp://pacsto.test/", "file:///etc/passwd", "https:///nohost"])
async def test_invalid_urls_fail_without_a_request(router: respx.Router, url: str) -> None:
    with pytest.raises(InvalidURL) as info:
        await fetch(router, source(url))
    assert info.value.kind == "invalid_url"
    assert len(router.calls) == 0


# -- robots.txt -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_robots_disallow_blocks_the_page_without_requesting_it() -> None:
    router = respx.Router(assert_all_mocked=True)
    robots = router.get(f"{BASE}/robots.txt").respond(
        200, text="User-agent: pawatch\nDisallow: /countries/\n\nUser-agent: *\nAllow: /\n"
    )
    page = router.get(PAGE).respond(200, text="secret")
    with pytest.raises(RobotsDisallowed) as info:
        await fetch(router)
    assert page.call_count == 0 and robots.call_count == 1
    assert info.value.kind == "robots" and "disallows" in str(info.value)


@pytest.mark.anyio
async def test_robots_fetched_once_per_origin_for_concurrent_requests() -> None:
    router = respx.Router(assert_all_mocked=True)
    robots = router.get(f"{BASE}/robots.txt").respond(200, text="User-agent: *\nDisallow: /x\n")
    router.get(url__startswith=f"{BASE}/p").respond(200, text="ok")
    transport = httpx.MockTransport(router.async_handler)
    async with Fetcher(settings(per_host_concurrency=4), transport=transport) as fetcher:
        results = await asyncio.gather(
            *(fetcher.fetch(source(f"{BASE}/p{i}", id=f"s{i}")) for i in range(8))
        )
        assert all(r.body == b"ok" for r in results)
        await fetcher.fetch(source(f"{BASE}/p9"))
    assert robots.call_count == 1


@pytest.mark.anyio
async def test_robots_server_error_disallows_everything() -> None:
    router = respx.Router(assert_all_mocked=True)
    router.get(f"{BASE}/robots.txt").respond(500)
    page = router.get(PAGE).respond(200, text="x")
    with pytest.raises(RobotsDisallowed) as info:
        await fetch(router, retries=0)
    assert page.call_count == 0
    assert "robots.txt could not be fetched" in str(info.value)


@pytest.mark.anyio
async def test_robots_not_checked_when_disabled() -> None:
    router = respx.Router(assert_all_mocked=True)
    robots = router.get(f"{BASE}/robots.txt").respond(200, text="User-agent: *\nDisallow: /\n")
    router.get(PAGE).respond(200, text="x")
    result = await fetch(router, respect_robots=False)
    assert result.body == b"x" and robots.call_count == 0


# -- errors -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_unexpected_transport_exceptions_become_fetch_errors(
    router: respx.Router,
) -> None:
    router.get(PAGE).mock(side_effect=RuntimeError("weird\nmultiline failure"))
    with pytest.raises(FetchError) as info:
        await fetch(router, retries=0)
    assert "\n" not in str(info.value) and "RuntimeError" in str(info.value)


def test_error_messages_are_one_line_with_kind_and_attempts() -> None:
    err = HTTPStatusError("HTTP 503 Service Unavailable\nfrom x", url="https://x/", status=503)
    assert str(err) == "HTTP 503 Service Unavailable from x"
    err.attempts = 3
    assert str(err) == "HTTP 503 Service Unavailable from x (after 3 attempts)"
    assert err.kind == "http_status" and err.url == "https://x/" and err.status == 503
    assert isinstance(err, FetchError) and FetchError.kind == "error"
    assert repr(err).startswith("HTTPStatusError(")


# -- what the client's send() did, kept without it --------------------------------------


@pytest.mark.anyio
async def test_request_carries_host_first_and_client_defaults(router: respx.Router) -> None:
    route = router.get(PAGE).respond(200, text="ok")
    await fetch(router, validators=Validators(etag='"v1"'))
    request = route.calls.last.request
    assert request.headers.raw[0] == (b"Host", b"pacsto.test")
    assert request.headers["accept-encoding"] and request.headers["accept"] == "*/*"
    assert request.headers["if-none-match"] == '"v1"' and request.content == b""
    assert request.extensions["timeout"]["connect"] == HttpSettings().connect_timeout


@pytest.mark.anyio
async def test_cookies_set_by_a_response_are_sent_afterwards(router: respx.Router) -> None:
    router.get(f"{BASE}/a").respond(200, text="a", headers={"Set-Cookie": "sid=42; Path=/"})
    second = router.get(f"{BASE}/b").respond(200, text="b")
    transport = httpx.MockTransport(router.async_handler)
    async with Fetcher(settings(), transport=transport) as fetcher:
        await fetcher.fetch(source(f"{BASE}/a", id="a"))
        await fetcher.fetch(source(f"{BASE}/b", id="b"))
    assert second.calls.last.request.headers["cookie"] == "sid=42"


@pytest.mark.anyio
async def test_credentials_in_the_url_are_sent_as_basic_auth(router: respx.Router) -> None:
    route = router.get(PAGE).respond(200, text="ok")
    await fetch(router, source("https://user:secret@pacsto.test/countries/kyrgyz"))
    assert route.calls.last.request.headers["authorization"] == "Basic dXNlcjpzZWNyZXQ="


@pytest.mark.anyio
async def test_a_source_fetched_again_reuses_what_was_derived(router: respx.Router) -> None:
    route = router.get(PAGE).respond(200, text="ok")
    transport = httpx.MockTransport(router.async_handler)
    src = source(headers={"X-A": "1"})
    async with Fetcher(settings(), transport=transport) as fetcher:
        await fetcher.fetch(src)
        changed = source(headers={"X-A": "2"})  # same id, other settings: derived again
        await fetcher.fetch(changed)
    assert [c.request.headers["x-a"] for c in route.calls] == ["1", "2"]


def test_no_private_attribute_of_another_object_is_touched() -> None:
    """httpx's public surface only (issue 10): in the fetching code, an attribute starting
    with an underscore is only ever read on ``self`` (our own classes' state)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = []
    for path in [*sorted((root / "scraper").glob("*.py")), root / "pawatch" / "workers.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                # our own state, and os._exit (public, named so that it is not called lightly)
                and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
                and not (isinstance(node.value, ast.Name) and node.value.id == "os")
            ):
                found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert found == []
