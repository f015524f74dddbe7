#!/usr/bin/env python3
"""A real SMTP server for the notification tests: it accepts mail and files it in a folder.

The Rust harness (tests/src/mail.rs) starts it as its own process and reads the folder back.
It speaks plain SMTP, STARTTLS or implicit TLS (SMTPS), optionally demands AUTH PLAIN/LOGIN,
and can refuse the first N messages with a temporary error so that retries can be tested.

Folder layout (the only contract with the harness):
  DIR/<seq>.eml         the raw message as received after DATA (CRLF line ends, dots unstuffed)
  DIR/<seq>.json        its envelope: seq, mail_from, rcpt_tos, peer, auth_user, tls, received_at_ms
  DIR/refused-<n>.json  the envelope of the n-th message refused by --fail-first
Each file is written under a temporary name and renamed into place, and a message's .json is
renamed before its .eml, so a reader that lists *.eml never sees half a message.
Sequence numbers continue after the highest one already in DIR, so a sink restarted on the same
folder (the harness's start_again) keeps numbering where it stopped.

Usage:
  smtp_sink.py --host 127.0.0.1 --port N --maildir DIR [--tls-cert PEM --tls-key PEM]
               [--implicit-tls] [--auth USER:PASSWORD] [--fail-first N]
Prints "ready <port>" on stdout once listening (port 0 picks a free port), exits 0 on SIGTERM.
Exits 3 when aiosmtpd is missing, with the command that installs it on stderr.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import ssl
import sys
import time
import warnings

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    print(
        f"error: the Python package aiosmtpd is not installed for {sys.executable}; "
        "install it with: pip install aiosmtpd (scripts/test does this)",
        file=sys.stderr,
    )
    sys.exit(3)

TRY_AGAIN = "451 4.3.0 try again later"
SEQ_FILE = re.compile(r"^(\d+)\.(eml|json)$")
REFUSED_FILE = re.compile(r"^refused-(\d+)\.json$")


def write_atomically(path, data):
    """Writes bytes to a temporary name beside `path`, then renames it into place."""
    temporary = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def highest(maildir, pattern):
    """The highest number in the names of `maildir` that match `pattern`, or 0."""
    numbers = [int(match.group(1)) for name in os.listdir(maildir) if (match := pattern.match(name))]
    return max(numbers, default=0)


class Sink:
    """The aiosmtpd handler: files accepted messages, refuses the first `fail_first`."""

    def __init__(self, maildir, fail_first, implicit_tls):
        self.maildir = maildir
        self.fail_left = fail_first
        self.implicit_tls = implicit_tls
        self.seq = highest(maildir, SEQ_FILE)
        self.refused = highest(maildir, REFUSED_FILE)

    def envelope_of(self, session, envelope):
        auth_user = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            auth_user = session.auth_data.login.decode("utf-8", "replace")
        host, port = session.peer[0], session.peer[1]
        return {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "peer": f"{host}:{port}",
            "auth_user": auth_user,
            # session.ssl is set by STARTTLS only; an SMTPS connection is TLS from the start.
            "tls": self.implicit_tls or session.ssl is not None,
            "received_at_ms": int(time.time() * 1000),
        }

    async def handle_DATA(self, server, session, envelope):
        record = self.envelope_of(session, envelope)
        if self.fail_left > 0:
            self.fail_left -= 1
            self.refused += 1
            record["seq"] = self.refused
            path = os.path.join(self.maildir, f"refused-{self.refused}.json")
            write_atomically(path, json.dumps(record, ensure_ascii=False).encode())
            return TRY_AGAIN
        self.seq += 1
        record["seq"] = self.seq
        base = os.path.join(self.maildir, str(self.seq))
        write_atomically(base + ".json", json.dumps(record, ensure_ascii=False).encode())
        write_atomically(base + ".eml", envelope.original_content)
        return f"250 2.0.0 OK queued as {self.seq}"


def authenticator_for(user, password):
    """An aiosmtpd authenticator accepting exactly one user and password (PLAIN or LOGIN)."""
    expected = LoginPassword(user.encode(), password.encode())

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data == expected
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate


def parse_args():
    parser = argparse.ArgumentParser(description="SMTP server that files mail in a folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--tls-cert", help="PEM certificate chain (leaf first)")
    parser.add_argument("--tls-key", help="PEM private key")
    parser.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="require AUTH with these")
    parser.add_argument("--fail-first", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.implicit_tls and not args.tls_cert:
        parser.error("--implicit-tls needs --tls-cert and --tls-key")
    if args.auth is not None and ":" not in args.auth:
        parser.error("--auth takes USER:PASSWORD")
    return args


async def serve(args):
    os.makedirs(args.maildir, exist_ok=True)
    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)
    starttls = tls_context is not None and not args.implicit_tls
    handler = Sink(args.maildir, args.fail_first, args.implicit_tls)
    smtp_options = {
        # A fixed name: socket.getfqdn() may wait on DNS, which this machine may not have.
        "hostname": "smtp-sink.test",
        "enable_SMTPUTF8": True,
        "decode_data": False,
        "tls_context": tls_context if starttls else None,
        # Like a real submission server: with STARTTLS on offer, AUTH waits for TLS. An SMTPS
        # connection is already encrypted (aiosmtpd only knows about STARTTLS), and a plain
        # server on loopback lets tests try AUTH without TLS.
        "auth_require_tls": starttls,
        "auth_required": args.auth is not None,
    }
    if args.auth is not None:
        user, password = args.auth.split(":", 1)
        smtp_options["authenticator"] = authenticator_for(user, password)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, loop=loop, **smtp_options),
        host=args.host,
        port=args.port,
        ssl=tls_context if args.implicit_tls else None,
    )
    stop = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main():
    args = parse_args()
    # aiosmtpd warns (through warnings and its "mail.log" logger), on every connection, when AUTH
    # is required without STARTTLS: that is deliberate here (SMTPS, or plain SMTP on loopback).
    # Errors still reach stderr, which the harness keeps in smtp_sink.log.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
