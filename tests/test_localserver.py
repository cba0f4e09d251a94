"""The local test server's own behaviour (plain http.client, no pawatch code involved)."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator

import pytest

from pawatch.demo.localserver import LocalServer, Route


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


def connect(server: LocalServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(server.host, server.port, timeout=5)


def get(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def test_binds_port_zero_and_builds_urls(server: LocalServer) -> None:
    assert server.port > 0
    assert server.base_url == f"http://127.0.0.1:{server.port}"
    assert server.url("/a?b=1") == f"{server.base_url}/a?b=1"
    assert server.url("x") == f"{server.base_url}/x"


def test_unknown_paths_and_robots_are_404(server: LocalServer) -> None:
    conn = connect(server)
    assert get(conn, "/nothing-here")[0] == 404
    assert get(conn, "/robots.txt")[0] == 404
    server.set("/robots.txt", Route(body="User-agent: *\nDisallow:\n", content_type="text/plain"))
    status, headers, body = get(conn, "/robots.txt")
    assert status == 200 and headers["Content-Type"] == "text/plain"
    assert body.startswith(b"User-agent")


def test_str_body_is_encoded_and_typed_bytes_body_has_no_charset(server: LocalServer) -> None:
    server.set_many(
        {
            "/ru": Route(body="Привет", charset="windows-1251"),
            "/raw": Route(body="Привет".encode("cp1251")),
        }
    )
    conn = connect(server)
    status, headers, body = get(conn, "/ru")
    assert status == 200 and body == "Привет".encode("cp1251")
    assert headers["Content-Type"] == "text/html; charset=windows-1251"
    assert headers["Content-Length"] == str(len(body))
    assert get(conn, "/raw")[1]["Content-Type"] == "text/html"


def test_keep_alive_serves_many_requests_on_one_connection(server: LocalServer) -> None:
    server.set("/k", Route(body="k"))
    conn = connect(server)
    for _ in range(3):
        assert get(conn, "/k")[2] == b"k"
    assert conn.sock is not None  # still the same open socket
    assert server.hits("/k") == 3


def test_etag_and_last_modified_answer_304(server: LocalServer) -> None:
    lm = "Mon, 02 Nov 2026 10:00:00 GMT"
    server.set("/doc", Route(body="v1", etag='"e1"', last_modified=lm))
    conn = connect(server)
    status, headers, _ = get(conn, "/doc")
    assert status == 200 and headers["ETag"] == '"e1"' and headers["Last-Modified"] == lm
    assert get(conn, "/doc", {"If-None-Match": '"e0", W/"e1"'})[0] == 304
    assert get(conn, "/doc", {"If-None-Match": '"other"'})[0] == 200
    assert get(conn, "/doc", {"If-Modified-Since": lm})[0] == 304
    status, _, body = get(conn, "/doc", {"If-None-Match": '"e1"'})
    assert status == 304 and body == b""


def test_sequence_serves_in_turn_and_repeats_the_last(server: LocalServer) -> None:
    server.set("/s", Route(sequence=[Route(status=500), Route(status=429), Route(body="ok")]))
    conn = connect(server)
    assert [get(conn, "/s")[0] for _ in range(5)] == [500, 429, 200, 200, 200]
    server.set("/s", Route(sequence=[Route(status=503), Route(body="again")]))  # resets the turn
    assert get(conn, "/s")[0] == 503


def test_delay_and_request_log(server: LocalServer) -> None:
    server.set("/slow", Route(body="z", delay=0.2))
    conn = connect(server)
    started = time.monotonic()
    get(conn, "/slow?x=1", {"X-Probe": "yes"})
    assert time.monotonic() - started >= 0.2
    (record,) = server.requests
    assert record.method == "GET" and record.path == "/slow?x=1"
    assert record.headers["x-probe"] == "yes" and record.time >= started
    assert server.hits("/slow") == 1
    server.clear()
    assert server.requests == [] and get(conn, "/slow")[0] == 404


def test_redirect_loop_points_at_itself(server: LocalServer) -> None:
    server.set("/loop", Route(fault="redirect_loop"))
    status, headers, _ = get(connect(server), "/loop")
    assert status == 302 and headers["Location"] == "/loop"


def test_reset_closes_without_a_response(server: LocalServer) -> None:
    server.set("/reset", Route(fault="reset"))
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        get(connect(server), "/reset")


def test_truncate_sends_less_than_announced(server: LocalServer) -> None:
    server.set("/t", Route(body=b"abc", fault="truncate"))
    conn = connect(server)
    conn.request("GET", "/t")
    response = conn.getresponse()
    assert response.getheader("Content-Length") == "1003"
    with pytest.raises(http.client.IncompleteRead):
        response.read()


def test_huge_streams_chunked_until_the_client_leaves(server: LocalServer) -> None:
    server.set("/huge", Route(fault="huge", huge_size=1 << 30))
    conn = connect(server)
    conn.request("GET", "/huge")
    response = conn.getresponse()
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert len(response.read(200_000)) == 200_000
    conn.close()
    time.sleep(0.2)
    assert 200_000 <= server.bytes_sent("/huge") < 64 * 1024 * 1024
