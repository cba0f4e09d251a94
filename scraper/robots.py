"""robots.txt per origin, following RFC 9309, parsed by protego.

The cache does no I/O itself: the :class:`~scraper.fetch.Fetcher` gives it a loader that
fetches ``/robots.txt`` through the shared client and its politeness limits. Each origin
(``scheme://host:port``) is loaded once for the life of the cache, even when many requests
to it start at the same moment.

RFC 9309 section 2.3.1: a 2xx answer is parsed; any 4xx (and a redirect chain that goes
nowhere) means no rules (allow all); a 5xx or any other answer means the site is unreachable
and everything is disallowed, so the source fails as ``robots`` with a message saying
robots.txt could not be fetched. When robots.txt fails at the network level (DNS, refused,
TLS, timeout, broken connection), the page would fail the same way, so the source fails with
that error's class (``dns``, ``refused``...) and a message naming robots.txt: the kind tells
the user what is really wrong. Either way the outcome is cached for the origin, so a dead
host is not retried once per source.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from protego import Protego

from pawatch.scraper.errors import (
    ConnectionFailed,
    ConnectionRefused,
    DNSError,
    FetchError,
    FetchTimeout,
    RedirectError,
    RobotsDisallowed,
    TLSError,
)

__all__ = ["ROBOTS_AGENT", "ROBOTS_MAX_BYTES", "RobotsCache", "RobotsPolicy", "RobotsResponse"]

ROBOTS_AGENT = "pawatch"
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least 500 KiB; the rest is ignored


@dataclass(frozen=True)
class RobotsResponse:
    """What the loader returns: the final status and (for 2xx) the body, possibly cut short."""

    status: int
    body: bytes


@dataclass(frozen=True)
class RobotsPolicy:
    """The rules of one origin: parsed rules, allow-all (``rules is None``) or an error."""

    origin: str
    rules: Any = None  # a protego.Protego, or None for "no rules"
    error: str | None = None  # set when robots.txt was unreachable: everything is disallowed
    cause: FetchError | None = None  # the network failure behind ``error``, if that was it

    def allows(self, url: str, agent: str = ROBOTS_AGENT) -> bool:
        if self.error is not None:
            return False
        if self.rules is None:
            return True
        return bool(self.rules.can_fetch(url, agent))


_NETWORK_ERRORS = (DNSError, ConnectionRefused, ConnectionFailed, TLSError, FetchTimeout)

RobotsLoader = Callable[[str], Awaitable[RobotsResponse]]


def origin_of(url: httpx.URL) -> str:
    """``scheme://host:port`` with the default port made explicit."""
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.scheme}://{url.host}:{port}"


class RobotsCache:
    """Per-origin robots.txt policies, loaded on first use through ``loader``."""

    def __init__(self, loader: RobotsLoader, agent: str = ROBOTS_AGENT) -> None:
        self._loader = loader
        self._agent = agent
        self._policies: dict[str, RobotsPolicy] = {}
        self._pending: dict[str, asyncio.Task[RobotsPolicy]] = {}
        # URLs found allowed: an origin's policy never changes once loaded, so neither does
        # the verdict. Retries and later fetches of a URL skip the origin and rule matching.
        self._allowed: set[str] = set()

    async def policy(self, url: httpx.URL) -> RobotsPolicy:
        """The policy for ``url``'s origin; concurrent callers share one load."""
        origin = origin_of(url)
        policy = self._policies.get(origin)
        if policy is not None:
            return policy
        task = self._pending.get(origin)
        if task is None:
            task = asyncio.ensure_future(self._load(origin))
            self._pending[origin] = task
        # shield: one caller being cancelled must not cancel the load the others wait for
        return await asyncio.shield(task)

    async def check(self, url: httpx.URL) -> None:
        """Raise RobotsDisallowed unless robots.txt lets ``pawatch`` fetch ``url``."""
        target = str(url)
        if target in self._allowed:
            return
        policy = await self.policy(url)
        if policy.allows(target, self._agent):
            self._allowed.add(target)
            return
        if policy.cause is not None:
            cause = policy.cause
            raise type(cause)(
                f"{cause.message} (while fetching robots.txt of {policy.origin})",
                url=str(url),
                status=cause.status,
                attempts=cause.attempts,
            )
        if policy.error is not None:
            raise RobotsDisallowed(
                f"robots.txt could not be fetched from {policy.origin} ({policy.error}); "
                f"treating {url} as disallowed",
                url=str(url),
            )
        raise RobotsDisallowed(
            f"robots.txt of {policy.origin} disallows {url} for {self._agent}", url=str(url)
        )

    def cancel_pending(self) -> None:
        """Cancel loads still in flight (the fetcher is closing)."""
        for task in self._pending.values():
            task.cancel()

    async def _load(self, origin: str) -> RobotsPolicy:
        try:
            policy = await self._fetch_policy(origin)
        finally:
            self._pending.pop(origin, None)
        self._policies[origin] = policy
        return policy

    async def _fetch_policy(self, origin: str) -> RobotsPolicy:
        try:
            response = await self._loader(f"{origin}/robots.txt")
        except RedirectError:
            return RobotsPolicy(origin)  # RFC 9309 2.3.1.2: too many redirects = unavailable
        except _NETWORK_ERRORS as exc:
            return RobotsPolicy(origin, error=str(exc), cause=exc)
        except FetchError as exc:
            return RobotsPolicy(origin, error=str(exc))
        if 200 <= response.status < 300:
            text = response.body.decode("utf-8", errors="replace")
            return RobotsPolicy(origin, rules=Protego.parse(text) if text.strip() else None)
        if 400 <= response.status < 500:
            return RobotsPolicy(origin)  # "unavailable": no rules apply
        return RobotsPolicy(origin, error=f"HTTP {response.status}")
