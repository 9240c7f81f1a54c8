"""A real SMTP server for the tests: aiosmtpd, with a handler that keeps
every accepted message as an .eml file and misbehaves on request.

    python3 tests/smtpserver.py PORT MAILDIR [--light] [--auth USER:PASSWORD]
                                [--starttls CERT KEY] [--tls CERT KEY]
                                [--no-pipelining] [--one-ehlo]

Prints "ready" on standard output once it listens on 127.0.0.1:PORT.

The server offers PIPELINING (RFC 2920), as Postfix and most relays do,
unless --no-pipelining. With --one-ehlo it refuses a second EHLO in a
session (503), as a few strict servers do. For each transaction it notes in
MAILDIR/commands.log whether MAIL came with more commands already behind
it in the same read ("grouped") or alone ("single").

With --auth the server offers AUTH PLAIN and LOGIN (also without TLS),
accepts only USER with PASSWORD, and refuses mail from a session that has
not logged in (530). With --starttls it offers STARTTLS with that
certificate and key (tests/fixtures/smtp-tls holds a self-signed pair,
which clients rightly refuse); without it, no STARTTLS is offered. With
--tls it speaks TLS from the first byte (as on port 465) with that pair.

Recipients choose how they are treated by their local part:
- tempfail-N-...@   refused with 451 (temporary) for the first N tries
- reject-...@       refused with 550 5.1.1 (no such user)
- drop-N-...@       the connection is dropped during DATA for the first N tries
- slow-...@         the reply to DATA waits 0.2 s
anything else is accepted. Each accepted message is written to
MAILDIR/<n>.eml (n counting from 1, in order of acceptance), and each DATA
command is logged in MAILDIR/data.log as "START END" monotonic seconds, so
tests can see how many messages were in flight at once and how fast they came.
With --light (for tests of tens of thousands of messages) nothing is
written but one line per accepted message in MAILDIR/recipients.log: its
number and recipients.
"""

import asyncio
import itertools
import os
import re
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

TRIES = {}
COUNTER = itertools.count(1)


def tries(kind, address):
    key = (kind, address.lower())
    TRIES[key] = TRIES.get(key, 0) + 1
    return TRIES[key]


class Handler:
    def __init__(self, maildir, light, pipelining, one_ehlo):
        self.maildir = maildir
        self.light = light
        self.pipelining = pipelining
        self.one_ehlo = one_ehlo
        self.recipients = open(os.path.join(maildir, "recipients.log"), "a") if light else None
        self.commands = open(os.path.join(maildir, "commands.log"), "a")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if self.one_ehlo and getattr(session, "greeted", False):
            return ["503 5.5.1 Error: already greeted"]
        session.greeted = True
        session.host_name = hostname
        if self.pipelining:
            # Before the last line, which alone has "250 " (no dash).
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # What the client wrote after MAIL, already read from the socket.
        waiting = len(server._reader._buffer)
        self.commands.write("grouped\n" if waiting else "single\n")
        self.commands.flush()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        m = re.match(r"tempfail-(\d+)-", local)
        if m and tries("rcpt", address) <= int(m.group(1)):
            return "451 4.3.0 Try again later"
        if local.startswith("reject-"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.light:
            n = next(COUNTER)
            self.recipients.write(f"{n} {' '.join(envelope.rcpt_tos)}\n")
            self.recipients.flush()
            return f"250 2.0.0 Ok: queued as {n}"
        start = time.monotonic()
        reply = await self.data(server, envelope)
        with open(os.path.join(self.maildir, "data.log"), "a") as log:
            log.write(f"{start} {time.monotonic()}\n")
        return reply

    async def data(self, server, envelope):
        for rcpt in envelope.rcpt_tos:
            local = rcpt.split("@")[0].lower()
            m = re.match(r"drop-(\d+)-", local)
            if m and tries("data", rcpt) <= int(m.group(1)):
                server.transport.close()
                return "421 closing"
            if local.startswith("slow-"):
                await asyncio.sleep(0.2)
        n = next(COUNTER)
        path = os.path.join(self.maildir, f"{n:07d}.eml")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
        # The envelope sender (MAIL FROM) beside the message, for the VERP tests.
        with open(os.path.join(self.maildir, f"{n:07d}.from"), "w") as f:
            f.write(envelope.mail_from or "")
        os.rename(tmp, path)
        return f"250 2.0.0 Ok: queued as {n}"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == self.user and auth_data.password == self.password)
        # handled=False: aiosmtpd itself answers 535 to a refused login.
        return AuthResult(success=ok, handled=False)


def option(name, count):
    """The `count` values after --name, or None when it is absent."""
    args = sys.argv[3:]
    if name not in args:
        return None
    i = args.index(name)
    return args[i + 1:i + 1 + count]


def main():
    port, maildir = int(sys.argv[1]), sys.argv[2]
    light = "--light" in sys.argv[3:]
    pipelining = "--no-pipelining" not in sys.argv[3:]
    one_ehlo = "--one-ehlo" in sys.argv[3:]
    os.makedirs(maildir, exist_ok=True)
    extra = {}
    auth = option("--auth", 1)
    if auth:
        user, password = auth[0].split(":", 1)
        extra.update(authenticator=Authenticator(user, password), auth_required=True,
                     auth_require_tls=False)
    starttls = option("--starttls", 2)
    if starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(starttls[0], starttls[1])
        extra.update(tls_context=context, require_starttls=False)
    implicit = option("--tls", 2)
    if implicit:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(implicit[0], implicit[1])
        extra.update(ssl_context=context)
    controller = Controller(Handler(maildir, light, pipelining, one_ehlo), hostname="127.0.0.1", port=port,
                            decode_data=False, enable_SMTPUTF8=True, **extra)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_until_complete(asyncio.Event().wait())
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
