"""A local SMTP server that keeps what it receives (aiosmtpd), for the demo and the tests.

    with smtp_capture() as server:          # 127.0.0.1, a free port
        ... send to server.host:server.port ...
        save_eml(server.messages[0], "report.eml")

Options: ``auth`` (a login -> password mapping; AUTH is then required), ``tls_context`` with
``require_starttls``, ``implicit_tls`` (the whole connection in TLS), ``reject`` (addresses
answered ``550``), ``defer`` (addresses answered ``450``: try again later), ``port`` (a given
port, e.g. to bring a "down" server back up), ``data_delay`` (keep a message but answer that
late: a client timing out after sending), ``data_reply`` (refuse every message at the end of
DATA with this answer, e.g. ``"451 4.3.0 try again later"`` or ``"554 5.6.0 rejected"``; the
message is counted in ``refused`` instead of ``messages``). ``server.configure(...)`` changes
``reject``, ``defer`` and ``data_reply`` while it runs.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (aiosmtpd's Controller cannot take port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One message as the server got it: envelope and raw bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None = None  # the authenticated user, if any
    tls: bool = False  # received over TLS (STARTTLS or implicit)

    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Handler:
    reject: Collection[str] = ()
    defer: Collection[str] = ()
    data_delay: float = 0.0
    data_reply: str | None = None
    messages: list[Received] = field(default_factory=list)
    refused: list[Received] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.reject:
            return f"550 5.1.1 <{address}>: recipient rejected by the test server"
        if address in self.defer:
            return f"450 4.2.1 <{address}>: mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        received = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(envelope.original_content or envelope.content),
            login=login,
            tls=session.ssl is not None
            or server.transport.get_extra_info("sslcontext") is not None,
        )
        with self.lock:
            if self.data_reply is not None:
                self.refused.append(received)
                return self.data_reply
            self.messages.append(received)
            self.lock.notify_all()
        if self.data_delay:
            await asyncio.sleep(self.data_delay)  # the client may give up before the answer
        return f"250 OK queued as pawatch-capture-{len(self.messages)}"


class _Authenticator:
    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(login) == password:
                return AuthResult(success=True, auth_data=auth_data.login)
        return AuthResult(success=False, handled=False)


@dataclass
class SmtpCapture:
    host: str
    port: int
    handler: _Handler

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def refused(self) -> list[Received]:
        """Messages answered with ``data_reply`` at the end of DATA (not kept)."""
        with self.handler.lock:
            return list(self.handler.refused)

    def configure(
        self,
        *,
        reject: Collection[str] = (),
        defer: Collection[str] = (),
        data_reply: str | None = None,
    ) -> None:
        """Change how the server answers from the next command on."""
        with self.handler.lock:
            self.handler.reject, self.handler.defer = set(reject), set(defer)
            self.handler.data_reply = data_reply

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Wait until ``count`` messages arrived (or ``timeout``); return all received."""
        deadline = time.monotonic() + timeout
        with self.handler.lock:
            while len(self.handler.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.handler.lock.wait(left)
            return list(self.handler.messages)


@contextmanager
def smtp_capture(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    auth: Mapping[str, str] | None = None,
    tls_context: ssl.SSLContext | None = None,
    require_starttls: bool = False,
    implicit_tls: bool = False,
    reject: Collection[str] = (),
    defer: Collection[str] = (),
    data_delay: float = 0.0,
    data_reply: str | None = None,
) -> Iterator[SmtpCapture]:
    """Run a capturing SMTP server on ``host`` while the block runs."""
    handler = _Handler(
        reject=set(reject), defer=set(defer), data_delay=data_delay, data_reply=data_reply
    )
    kwargs: dict[str, Any] = {}
    if auth is not None:
        kwargs.update(
            authenticator=_Authenticator(auth),
            auth_required=True,
            auth_require_tls=tls_context is not None,
        )
    if tls_context is not None and not implicit_tls:
        kwargs.update(tls_context=tls_context, require_starttls=require_starttls)
    chosen = port or free_port(host)
    controller = Controller(
        handler,
        hostname=host,
        port=chosen,
        ssl_context=tls_context if implicit_tls else None,
        **kwargs,
    )
    controller.start()
    try:
        yield SmtpCapture(host, chosen, handler)
    finally:
        controller.stop()


def save_eml(message: Received | EmailMessage | bytes, path: str | Path) -> Path:
    """Write a message as an ``.eml`` file any mail program opens; returns the path."""
    if isinstance(message, Received):
        data = message.data
    elif isinstance(message, EmailMessage):
        data = message.as_bytes(policy=policy.SMTP)
    else:
        data = message
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target
