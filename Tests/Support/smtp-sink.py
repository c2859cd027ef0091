#!/usr/bin/env python3
"""A local SMTP sink for Accord's tests (aiosmtpd): every message it accepts is appended to a
JSON-lines file. It prints "ready <port>" once it listens.

  smtp-sink.py --port P --out FILE [--fail-first N] [--tls-cert CERT --tls-key KEY] [--auth USER:PASSWORD]

--fail-first N  answers the first N messages with 451 (a temporary failure).
--tls-cert/key  offers STARTTLS with that certificate, and then requires it.
--auth          offers AUTH PLAIN and requires these credentials.
"""
import argparse
import asyncio
import json
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out, fail_first):
        self.out = out
        self.fail_first = fail_first
        self.seen = 0

    async def handle_DATA(self, server, session, envelope):
        self.seen += 1
        if self.seen <= self.fail_first:
            return "451 4.3.0 Try again later"
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
            "authenticated": session.authenticated,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--auth")
    args = parser.parse_args()
    options = {}
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
            if ok:
                return AuthResult(success=True)
            return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")

        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(args.tls_cert))
    controller = Controller(Sink(args.out, args.fail_first), hostname="127.0.0.1", port=args.port, **options)
    controller.start()
    print(f"ready {args.port}", flush=True)
    try:
        sys.stdin.read()  # until the test closes standard input
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
