"""The SMTP greeting's reply is checked: a server without ESMTP refuses EHLO and is greeted
with HELO (as smtplib's own sendmail does), and a server that refuses both is a connection
failure that names the greeting. A real server on 127.0.0.1, written out here because
aiosmtpd always speaks ESMTP."""

from __future__ import annotations

import socket
import threading

import pytest

from pawatch.config.model import EmailSettings
from pawatch.mailer import MailConnectError, send_test

pytestmark = pytest.mark.timeout(30)


class _PlainSMTP(threading.Thread):
    """One connection of an SMTP server from before ESMTP: EHLO is an unknown command, and
    MAIL before a greeting is refused. ``helo=False``: HELO is refused too."""

    def __init__(self, *, helo: bool = True) -> None:
        super().__init__(daemon=True)
        self.helo = helo
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.commands: list[str] = []

    def run(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 old.example SMTP\r\n")
            greeted = False
            for raw in lines:
                verb = raw.split(b" ", 1)[0].strip().upper().decode()
                self.commands.append(verb)
                if verb == "EHLO":
                    reply = b"502 command not recognized"
                elif verb == "HELO" and self.helo:
                    greeted, reply = True, b"250 old.example"
                elif verb == "HELO":
                    reply = b"550 not here"
                elif verb in ("MAIL", "RCPT"):
                    reply = b"250 ok" if greeted else b"503 greet me first"
                elif verb == "DATA":
                    conn.sendall(b"354 go on\r\n")
                    for body_line in lines:
                        if body_line == b".\r\n":
                            break
                    reply = b"250 queued"
                elif verb == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    reply = b"500 what"
                conn.sendall(reply + b"\r\n")


def _settings(port: int) -> EmailSettings:
    return EmailSettings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        security="none",
        sender="pawatch <pawatch@example.org>",
        recipients=("desk@example.org",),
        timeout=5.0,
    )


def test_a_server_without_esmtp_is_greeted_with_helo() -> None:
    server = _PlainSMTP()
    server.start()
    result = send_test(_settings(server.port))
    server.join(5)
    assert result.accepted == ("desk@example.org",) and result.reply == "250 queued"
    assert server.commands[:3] == ["EHLO", "HELO", "MAIL"]


def test_a_refused_greeting_is_a_connection_failure_that_says_so() -> None:
    server = _PlainSMTP(helo=False)
    server.start()
    with pytest.raises(MailConnectError) as info:
        send_test(_settings(server.port))
    server.join(5)
    assert "refused the greeting: 550 not here" in str(info.value)
    assert "MAIL" not in server.commands
