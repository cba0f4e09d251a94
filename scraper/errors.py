"""Typed fetch failures.

Every way a fetch can fail is a subclass of :class:`FetchError` with a short machine-readable
``kind`` (stored in the fetch log) and a one-line human message (``str(error)``) that names
the URL and what went wrong, never a traceback.
"""

from __future__ import annotations

__all__ = [
    "ConnectionFailed",
    "ConnectionRefused",
    "DNSError",
    "DecodeError",
    "EmptyBody",
    "FetchError",
    "FetchTimeout",
    "HTTPStatusError",
    "InvalidURL",
    "RedirectError",
    "RobotsDisallowed",
    "TLSError",
    "TooLarge",
]


class FetchError(Exception):
    """Base class: a source could not be fetched.

    ``url`` is the URL that failed (after redirects, where known), ``status`` the HTTP status
    if a response arrived, ``attempts`` how many attempts were made (retries included).
    """

    kind: str = "error"

    def __init__(
        self,
        message: str,
        *,
        url: str = "",
        status: int | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())  # one line, whatever the cause said
        self.url = url
        self.status = status
        self.attempts = attempts

    def __str__(self) -> str:
        if self.attempts > 1:
            return f"{self.message} (after {self.attempts} attempts)"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class DNSError(FetchError):
    """The host name could not be resolved."""

    kind = "dns"


class ConnectionRefused(FetchError):
    """The host actively refused the connection (nothing listening on the port)."""

    kind = "refused"


class ConnectionFailed(FetchError):
    """The connection broke: reset, protocol error, truncated body, proxy failure."""

    kind = "connection"


class TLSError(FetchError):
    """The TLS handshake failed (bad or untrusted certificate, protocol mismatch)."""

    kind = "tls"


class FetchTimeout(FetchError):
    """Connect or read timeout, or the total deadline for one attempt passed."""

    kind = "timeout"


class HTTPStatusError(FetchError):
    """The server answered with a status that is not a success (4xx, 5xx, unexpected 3xx/304)."""

    kind = "http_status"


class TooLarge(FetchError):
    """The body is larger than ``max_bytes`` (announced, or counted while streaming)."""

    kind = "too_large"


class RobotsDisallowed(FetchError):
    """robots.txt forbids the URL, or robots.txt could not be fetched (RFC 9309: disallow all)."""

    kind = "robots"


class DecodeError(FetchError):
    """The body could not be decoded (content encoding or charset)."""

    kind = "decode"


class RedirectError(FetchError):
    """A redirect loop, too many redirects, or a redirect to a non-http(s) URL."""

    kind = "redirect"


class EmptyBody(FetchError):
    """A success status with an empty body: a failed fetch, not an empty page."""

    kind = "empty"


class InvalidURL(FetchError):
    """The URL is not an absolute http(s) URL with a host."""

    kind = "invalid_url"
